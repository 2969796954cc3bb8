"""Every way cases arrive, turned into one stream of Arrow record batches.

:func:`open_cases` accepts a CSV or Parquet path (or a folder of Parquet files), an Arrow
table, record batch, reader or list of batches, a pandas or polars frame, or anything that
speaks the Arrow C stream protocol, and returns a :class:`CaseSource`: a schema, a name for
messages, and an iterator of batches. CSV is read with every column as text so that codes
keep their trailing zeros and a text age stays a text age.

Nothing is lost: a CSV is read line by line (one physical line is one case); a line that
cannot be read as a case is kept aside with its line number, column and reason
(:class:`MalformedRow`), and the source counts what it read (:class:`ReadCounts`), so a
caller can show that every line went to the output or to a rejects file
(:func:`drgkit._write.write_rejects`). Writing (atomic outputs, CSV/Parquet writers, rejects
files) lives in :mod:`drgkit._write`.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .errors import CaseDataError

__all__ = ["CaseSource", "DataWarning", "MalformedRow", "ReadCounts", "open_cases", "suffix_of"]

DEFAULT_BATCH_ROWS = 1 << 18
CSV_SUFFIXES = (".csv", ".txt", ".tsv", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.xz")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")


class DataWarning(UserWarning):
    """Something about the input that the user should know but that does not stop the run."""


@attrs.define(slots=True, eq=False)
class MalformedRow:
    """A CSV line that could not be read as a case, with where and why."""

    #: physical line number in the file (header = 1)
    row: int | None
    #: the line's text (bad bytes shown as backslash escapes)
    text: str
    expected: int
    #: fields found, when the line could be split
    actual: int | None
    #: short reason code: field_count, unclosed_quote, bad_encoding, nul_byte,
    #: stray_carriage_return, field_too_long
    reason: str = "field_count"
    #: the column the damage is in, when known
    column: str | None = None
    message: str = ""
    #: the line's fields, when it could be split (used to find its case id)
    fields: list[str] | None = None

    def describe(self) -> str:
        where = f"line {self.row}" if self.row else "a line"
        if self.column:
            where += f", column {self.column!r}"
        text = self.message or f"{self.actual} fields, the header has {self.expected}"
        return f"{where}: {text}: {self.text[:120]!r}"


@attrs.define(slots=True, eq=False)
class CaseSource:
    """A stream of case batches with a name for messages."""

    name: str
    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    #: total rows when known in advance (Parquet, in-memory tables), else None
    num_rows: int | None = None
    #: CSV only: lines that could not be read as cases; reported, never dropped
    malformed: list[MalformedRow] = attrs.field(factory=list)
    #: fraction of the input consumed so far (0..1), for progress bars; None if unknown
    progress: Callable[[], float] | None = None
    #: rows consumed so far (CSV: read as cases or set aside in ``malformed``) and blank lines
    counts: ReadCounts | None = None


def suffix_of(path: Path) -> str:
    name = path.name.lower()
    for suffix in CSV_SUFFIXES + PARQUET_SUFFIXES + ARROW_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


# ------------------------------------------------------------------------------ CSV
#
# The CSV reader is line-based on purpose: one physical line is one case. pyarrow parses the
# clean blocks (the fast path); a block with anything unusual (an unclosed quote, a field count
# that does not match the header, bad bytes for the encoding, a NUL byte, a stray carriage
# return, a blank line, a line longer than pyarrow's block) is split line by line in Python,
# and each bad line is set aside with its line number and reason instead of shifting or
# swallowing its neighbours. A quoted field can therefore not span lines: such a field is
# reported as an unclosed quote (its continuation lines usually as field-count mismatches).
# No background thread and no Python callback outlives a call, so an error raised between
# batches (or before the first one) leaves nothing running.

#: raw bytes read per step; a block holds whole lines only
_BLOCK_BYTES = 1 << 22
#: longest field accepted, as Python's csv module (a larger field is damage, not a case)
MAX_FIELD_CHARS = 1 << 17
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
)


@attrs.define(slots=True)
class ReadCounts:
    """What a reader has consumed so far: data rows (read as cases or rejected) and blank
    lines. For a CSV file, 1 (header) + rows + blank lines == the file's physical lines."""

    rows: int = 0
    blank_lines: int = 0


def _ascii_compatible(encoding: str, path: Path) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise CaseDataError(
            f"unknown encoding {encoding!r} (try utf-8 or gbk)", file=path
        ) from None
    if '\n,;\t"'.encode(name, errors="replace") != b'\n,;\t"':
        raise CaseDataError(
            f"encoding {encoding!r} is not supported for CSV: use an "
            "ASCII-compatible encoding such as utf-8, gbk or gb18030",
            file=path,
        )
    return name


class _RawInput:
    """The bytes of a CSV file, decompressed by what the file holds (not by its name), with
    the position in the file on disk for progress."""

    def __init__(self, path: Path) -> None:
        try:
            self._file = open(path, "rb")  # closed by close()
        except OSError as exc:
            raise CaseDataError(f"cannot open: {exc.strerror or exc}", file=path) from None
        self.size = max(1, os.fstat(self._file.fileno()).st_size)
        head = self._file.read(8)
        self._file.seek(0)
        kind = next((k for magic, k in _MAGIC if head.startswith(magic)), None)
        self.kind = kind
        if kind == "zip":
            self._file.close()
            raise CaseDataError("this is a ZIP archive, not a CSV file: unzip it first", file=path)
        self._stream: Any
        if kind == "gzip":
            import gzip

            self._stream = gzip.GzipFile(fileobj=self._file, mode="rb")
        elif kind == "bz2":
            import bz2

            self._stream = bz2.BZ2File(self._file, mode="rb")
        elif kind == "xz":
            import lzma

            self._stream = lzma.LZMAFile(self._file, mode="rb")
        elif kind == "zstd":
            self._stream = pa.CompressedInputStream(pa.PythonFile(self._file, mode="r"), "zstd")
        else:
            self._stream = self._file
        self.path = path

    def read(self, n: int) -> bytes:
        try:
            return bytes(self._stream.read(n))
        except (OSError, EOFError, pa.ArrowException) as exc:
            what = f"{self.kind}-compressed data" if self.kind else "the file"
            raise CaseDataError(f"cannot read {what}: {exc}", file=self.path) from None

    def position(self) -> float:
        try:
            return min(1.0, self._file.tell() / self.size)
        except (OSError, ValueError):
            return 1.0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._stream is not self._file:
                self._stream.close()
        self._file.close()


def _lines(raw: _RawInput) -> Iterator[bytes]:
    """Blocks of whole lines (each ending in a newline, except a last unterminated line)."""
    tail = b""
    while True:
        chunk = raw.read(_BLOCK_BYTES)
        if not chunk:
            break
        data = tail + chunk if tail else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            tail = data
            continue
        tail = data[cut + 1 :]
        yield data[: cut + 1]
    if tail:
        yield tail


def _split_header(line: bytes, encoding: str, delimiter: str, path: Path) -> list[str]:
    if line.endswith(b"\r"):
        line = line[:-1]
    if encoding == "utf-8" and line.startswith(codecs.BOM_UTF8):
        line = line[len(codecs.BOM_UTF8) :]
    try:
        text = line.decode(encoding)
    except UnicodeDecodeError as exc:
        raise CaseDataError(
            f"cannot decode the header as {encoding} ({exc.reason} at byte {exc.start + 1}); "
            "pass the file's encoding (e.g. --encoding gbk)",
            file=path,
            row=1,
        ) from None
    try:
        header = next(csv.reader([text], delimiter=delimiter), None) if text.strip() else None
    except csv.Error as exc:  # e.g. a stray carriage return inside the header line
        raise CaseDataError(
            f"the header is not a readable CSV line: {exc}", file=path, row=1
        ) from None
    if not header:
        raise CaseDataError("the file is empty: a header row is required", file=path, row=1)
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise CaseDataError(
                f"column {name!r} appears twice in the header", file=path, row=1, column=name
            )
        seen.add(name)
    return header


def _read_header(path: Path, encoding: str, delimiter: str) -> tuple[list[str], int]:
    """The header's fields and the number of bytes (of decompressed data) it takes."""
    raw = _RawInput(path)
    try:
        data = b""
        while b"\n" not in data:
            chunk = raw.read(1 << 16)
            if not chunk:
                break
            data += chunk
    finally:
        raw.close()
    cut = data.find(b"\n")
    line = data if cut < 0 else data[:cut]
    return _split_header(line, encoding, delimiter, path), (len(data) if cut < 0 else cut + 1)


class _BlockParser:
    """Turns blocks of lines into tables of text columns plus set-aside bad lines."""

    def __init__(self, path: Path, header: list[str], encoding: str, delimiter: str) -> None:
        self.path = path
        self.header = header
        self.encoding = encoding
        self.delimiter = delimiter
        self.utf8 = encoding == "utf-8"
        self.delim_bytes = delimiter.encode(encoding)
        self.schema = pa.schema([(name, pa.string()) for name in header])
        self.convert = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        self.parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)

    def block(
        self, data: bytes, line0: int, counts: ReadCounts, rejects: list[MalformedRow]
    ) -> pa.Table | None:
        """Parse ``data`` whose first line is line ``line0`` of the file (header = 1)."""
        n_lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        table = self._fast(data, n_lines)
        if table is None:
            table = self._slow(data, line0, counts, rejects)
        else:
            counts.rows += table.num_rows
        return table if table.num_rows else None

    def _fast(self, data: bytes, n_lines: int) -> pa.Table | None:
        # anything unusual goes the careful way; these checks are single passes in C
        if (
            b"\x00" in data
            or b"\n\n" in data
            or b"\n\r\n" in data
            or data.startswith((b"\n", b"\r\n"))
            or data.count(b"\r") != data.count(b"\r\n")
        ):
            return None
        if len(data) > MAX_FIELD_CHARS and max(map(len, data.split(b"\n"))) > MAX_FIELD_CHARS:
            return None  # a line that may hold an over-long field: checked field by field
        try:
            text = data if self.utf8 else data.decode(self.encoding).encode("utf-8")
            if self.utf8:
                data.decode("utf-8")  # validates; pyarrow's own message names no line
        except UnicodeDecodeError:
            return None
        try:
            table = pacsv.read_csv(
                pa.py_buffer(text),
                read_options=pacsv.ReadOptions(column_names=self.header, block_size=1 << 20),
                parse_options=self.parse,
                convert_options=self.convert,
            )
        except pa.ArrowInvalid:  # a field-count mismatch, a line longer than a block, ...
            return None
        # every record is at least one line (no bare CR, no blank line), so equal counts
        # mean one record per line: no quote ran over a line end
        if table.num_rows != n_lines:
            return None
        return table

    def _slow(
        self, data: bytes, line0: int, counts: ReadCounts, rejects: list[MalformedRow]
    ) -> pa.Table:
        width = len(self.header)
        rows: list[list[str]] = []

        def reject(row: MalformedRow) -> None:
            if row.fields is None:  # a best guess, to find the line's case id
                row.fields = [f.strip('"') for f in row.text.split(self.delimiter)]
            rejects.append(row)

        raw_lines = data.split(b"\n")
        if data.endswith(b"\n"):
            raw_lines.pop()
        for k, raw in enumerate(raw_lines):
            line = line0 + k
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if not raw:
                counts.blank_lines += 1
                continue
            counts.rows += 1
            try:
                text = raw.decode(self.encoding)
            except UnicodeDecodeError as exc:
                column = self._column_at(raw, exc.start)
                reject(
                    MalformedRow(
                        line,
                        raw.decode(self.encoding, errors="backslashreplace"),
                        width,
                        None,
                        "bad_encoding",
                        column,
                        f"bytes that are not {self.encoding} ({exc.reason}) at byte "
                        f"{exc.start + 1} of the line",
                    )
                )
                continue
            if "\x00" in text:
                reject(
                    MalformedRow(
                        line,
                        text,
                        width,
                        None,
                        "nul_byte",
                        self._column_at(raw, raw.index(b"\x00")),
                        "a NUL byte (binary damage)",
                    )
                )
                continue
            if "\r" in text:
                reject(
                    MalformedRow(
                        line,
                        text,
                        width,
                        None,
                        "stray_carriage_return",
                        self._column_at(raw, raw.index(b"\r")),
                        "a carriage return inside the line",
                    )
                )
                continue
            if '"' in text:
                # a second element shows whether the quote ran over the line's end
                reader = csv.reader([text, "\x01"], delimiter=self.delimiter)
                try:
                    fields = next(reader)
                except csv.Error:  # a field over the csv module's limit
                    naive = text.split(self.delimiter)
                    longest = max(range(len(naive)), key=lambda i: len(naive[i]))
                    reject(
                        MalformedRow(
                            line,
                            text[:200] + "…",
                            width,
                            None,
                            "field_too_long",
                            self.header[longest] if longest < width else None,
                            f"a field of about {len(naive[longest]):,} characters (limit "
                            f"{MAX_FIELD_CHARS:,})",
                        )
                    )
                    continue
                if reader.line_num > 1:
                    reject(
                        MalformedRow(
                            line,
                            text,
                            width,
                            None,
                            "unclosed_quote",
                            self._column_at(raw, self._open_quote(text)),
                            "a quote opened and not closed on this line",
                        )
                    )
                    continue
            else:
                fields = text.split(self.delimiter)
            if len(fields) != width:
                reject(
                    MalformedRow(
                        line,
                        text,
                        width,
                        len(fields),
                        "field_count",
                        None,
                        f"{len(fields)} field{'' if len(fields) == 1 else 's'}, the header has "
                        f"{width}",
                        fields,
                    )
                )
                continue
            longest = max(range(width), key=lambda i: len(fields[i]))
            if len(fields[longest]) > MAX_FIELD_CHARS:
                reject(
                    MalformedRow(
                        line,
                        text[:200] + "…",
                        width,
                        width,
                        "field_too_long",
                        self.header[longest],
                        f"a field of {len(fields[longest]):,} characters (limit "
                        f"{MAX_FIELD_CHARS:,})",
                        fields,
                    )
                )
                continue
            rows.append(fields)
        columns = (
            [pa.array(list(col), pa.string()) for col in zip(*rows, strict=True)]
            if rows
            else [pa.array([], pa.string()) for _ in self.header]
        )
        return pa.Table.from_arrays(columns, schema=self.schema)

    def _column_at(self, raw: bytes, offset: int) -> str | None:
        # the field an offset falls in, counting delimiters (quotes ignored: a good guess)
        index = raw.count(self.delim_bytes, 0, offset)
        return self.header[index] if index < len(self.header) else None

    def _open_quote(self, text: str) -> int:
        # start of the last field that opens a quote (the unclosed one)
        pos = 0
        start = 0
        for field in text.split(self.delimiter):
            if field.startswith('"'):
                start = pos
            pos += len(field) + len(self.delimiter)
        return len(text[:start].encode(self.encoding, errors="replace"))


def _open_csv(path: Path, *, encoding: str, delimiter: str | None, batch_rows: int) -> CaseSource:
    if delimiter is None:
        delimiter = "\t" if path.name.lower().endswith(".tsv") else ","
    if len(delimiter) != 1:
        raise CaseDataError(f"the delimiter must be one character, got {delimiter!r}", file=path)
    codec = _ascii_compatible(encoding, path)
    encoding = "utf-8" if codec == "utf-8" else encoding
    header, header_bytes = _read_header(path, encoding, delimiter)
    parser = _BlockParser(path, header, encoding, delimiter)
    malformed: list[MalformedRow] = []
    counts = ReadCounts()
    state: dict[str, _RawInput] = {}

    def tables() -> Iterator[pa.RecordBatch]:
        # the file is opened only when the first batch is asked for, so a source that is
        # never iterated (an error in the caller's setup) holds nothing open
        raw = state["raw"] = _RawInput(path)
        try:
            skip = header_bytes
            line = 2
            for data in _lines(raw):
                if skip:
                    taken = min(skip, len(data))
                    data, skip = data[taken:], skip - taken
                    if not data:
                        continue
                table = parser.block(data, line, counts, malformed)
                line += data.count(b"\n")
                if table is not None:
                    yield from table.to_batches()
        finally:
            raw.close()

    def progress() -> float:
        return state["raw"].position() if "raw" in state else 0.0

    return CaseSource(
        str(path), parser.schema, _merge(tables(), batch_rows), None, malformed, progress, counts
    )


def _merge(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Gather small batches into batches of about ``rows`` rows (never more)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            table = pa.Table.from_batches(pending).combine_chunks()
            # the parsed blocks are copied into ``table``: let them go before the batch is
            # yielded, not after it has been processed (a generator holds its locals while it
            # waits, and a reading thread keeps it waiting while the queue is full)
            pending, count = [], 0
            yield from _rechunk(table.to_batches(), rows)
    if pending:
        # every chunk of the tail, not only the first (combine_chunks may leave several)
        table = pa.Table.from_batches(pending).combine_chunks()
        pending = []
        yield from _rechunk(table.to_batches(), rows)


def _rechunk(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Re-slice batches to at most ``rows`` rows each (tiny batches are not merged)."""
    for batch in batches:
        if batch.num_rows <= rows:
            if batch.num_rows:
                yield batch
            continue
        for start in range(0, batch.num_rows, rows):
            yield batch.slice(start, rows)


def _from_table(name: str, table: pa.Table, batch_rows: int) -> CaseSource:
    return CaseSource(
        name,
        table.schema,
        _rechunk(table.to_batches(max_chunksize=batch_rows), batch_rows),
        table.num_rows,
    )


def open_cases(
    cases: Any,
    *,
    encoding: str = "utf-8",
    delimiter: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    columns: list[str] | None = None,
) -> CaseSource:
    """Coerce any supported case input to a :class:`CaseSource`.

    ``columns`` (Parquet only) limits what is read from disk. ``batch_rows`` must be a
    positive whole number. CSV files are read line by line: one physical line is one case, a
    line that cannot be read as one (see :class:`MalformedRow`) is set aside in
    ``source.malformed`` with its line number and reason, blank lines are counted
    (``source.counts``) and skipped. gzip, bz2, xz and zstd files are recognised by their
    content, whatever their name.
    """
    if isinstance(cases, CaseSource):
        return cases
    check_batch_rows(batch_rows)
    src = _open_cases(
        cases, encoding=encoding, delimiter=delimiter, batch_rows=batch_rows, columns=columns
    )
    if src.counts is None:
        src.counts = ReadCounts()
        src.batches = _counted(src.batches, src.counts)
    return src


def check_batch_rows(batch_rows: Any) -> int:
    """``batch_rows`` if it is a positive whole number, else a :class:`CaseDataError`."""
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise CaseDataError(f"batch_rows must be a whole number of at least 1, got {batch_rows!r}")
    return batch_rows


def _counted(batches: Iterator[pa.RecordBatch], counts: ReadCounts) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        counts.rows += batch.num_rows
        yield batch


def _open_cases(
    cases: Any, *, encoding: str, delimiter: str | None, batch_rows: int, columns: list[str] | None
) -> CaseSource:
    if isinstance(cases, (str, os.PathLike)):
        path = Path(cases)
        if not path.exists():
            raise CaseDataError("no such file or folder", file=path)
        if path.is_dir():
            import pyarrow.dataset as ds

            try:
                dataset = ds.dataset(path, format="parquet")
            except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
                raise CaseDataError(f"not a folder of Parquet files: {exc}", file=path) from None
            names = [c for c in columns if c in dataset.schema.names] if columns else None
            return CaseSource(
                str(path),
                dataset.schema
                if names is None
                else pa.schema([dataset.schema.field(c) for c in names]),
                _rechunk(
                    _guarded(dataset.to_batches(columns=names, batch_size=batch_rows), path),
                    batch_rows,
                ),
                _guarded_call(dataset.count_rows, path),
            )
        suffix = suffix_of(path)
        if suffix in PARQUET_SUFFIXES:
            try:
                pf = pq.ParquetFile(path)
            except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
                raise CaseDataError(f"not a readable Parquet file: {exc}", file=path) from None
            schema = pf.schema_arrow
            names = [c for c in columns if c in schema.names] if columns else None
            read = 0

            def batches() -> Iterator[pa.RecordBatch]:
                nonlocal read
                try:
                    for batch in pf.iter_batches(batch_size=batch_rows, columns=names):
                        read += batch.num_rows
                        yield batch
                except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
                    # a damaged page or column chunk: the rows from here on cannot be read
                    raise CaseDataError(
                        f"damaged Parquet data after {read:,} rows: {exc}", file=path
                    ) from None

            total = pf.metadata.num_rows
            return CaseSource(
                str(path),
                schema if names is None else pa.schema([schema.field(c) for c in names]),
                batches(),
                total,
                progress=lambda: read / max(1, total),
            )
        if suffix in ARROW_SUFFIXES:
            import pyarrow.feather as feather

            try:
                table = feather.read_table(path)
            except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
                raise CaseDataError(f"not a readable Arrow IPC file: {exc}", file=path) from None
            return _from_table(str(path), table, batch_rows)
        if suffix in CSV_SUFFIXES or suffix == "":
            return _open_csv(path, encoding=encoding, delimiter=delimiter, batch_rows=batch_rows)
        raise CaseDataError(
            f"unknown file type {suffix!r}: use .csv, .parquet or .arrow", file=path
        )
    if isinstance(cases, pa.Table):
        return _from_table("<table>", cases, batch_rows)
    if isinstance(cases, pa.RecordBatch):
        return _from_table("<batch>", pa.Table.from_batches([cases]), batch_rows)
    if isinstance(cases, pa.RecordBatchReader):
        return CaseSource("<reader>", cases.schema, _rechunk(cases, batch_rows))
    if (
        isinstance(cases, (list, tuple))
        and cases
        and all(isinstance(b, pa.RecordBatch) for b in cases)
    ):
        return _from_table("<batches>", pa.Table.from_batches(list(cases)), batch_rows)
    module = type(cases).__module__.split(".")[0]
    if module == "pandas":
        return _from_table(
            "<pandas>", pa.Table.from_pandas(cases, preserve_index=False), batch_rows
        )
    if module == "polars":
        if type(cases).__name__ == "LazyFrame":
            cases = cases.collect()
        return _from_table("<polars>", cases.to_arrow(), batch_rows)
    if hasattr(cases, "__arrow_c_stream__"):
        reader = pa.RecordBatchReader.from_stream(cases)
        return CaseSource("<stream>", reader.schema, _rechunk(reader, batch_rows))
    if isinstance(cases, dict):
        return _from_table("<dict>", pa.table(cases), batch_rows)
    raise CaseDataError(
        f"cannot read cases from a {type(cases).__name__}: give a CSV or Parquet path, an Arrow "
        "table, batch or reader, or a pandas or polars frame"
    )


# ------------------------------------------------------------------------------ Parquet guards


def _guarded(batches: Iterable[pa.RecordBatch], path: Path) -> Iterator[pa.RecordBatch]:
    """``batches`` of a Parquet folder; damaged data is a CaseDataError naming the folder."""
    read = 0
    try:
        for batch in batches:
            read += batch.num_rows
            yield batch
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise CaseDataError(f"damaged Parquet data after {read:,} rows: {exc}", file=path) from None


def _guarded_call(func: Callable[[], Any], path: Path) -> Any:
    try:
        return func()
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise CaseDataError(f"damaged Parquet data: {exc}", file=path) from None


def warn(message: str) -> None:
    warnings.warn(message, DataWarning, stacklevel=3)


# ------------------------------------------------------------------------------ cold start


class _NoPandas:
    """An import finder that refuses pandas (see :func:`without_pandas`)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("pandas is not used by this run", name=name)


_NO_PANDAS = _NoPandas()


@contextlib.contextmanager
def without_pandas() -> Iterator[None]:
    """Run the block with pandas not importable (unless it is imported already).

    pyarrow imports pandas (about 0.3 s and 300 modules) the first time it builds an array
    from Python values or converts one to numpy, only to recognise pandas objects and
    pandas' missing-value markers. A command-line run reads files and hands pyarrow no
    pandas object, so its built-in commands run in this block (``drgkit.cli.main``); pyarrow
    then records that pandas is absent and works without it. Code that needs pandas inside
    the block calls :func:`want_pandas` first (the Dask runner does).

    Afterwards pyarrow still believes pandas absent for its sniffing of Python objects
    (its own pandas conversions retry the import and work): a long-lived process that goes on
    to hand pyarrow pandas Series should call :func:`want_pandas`.
    """
    if "pandas" in sys.modules:
        yield
        return
    sys.meta_path.insert(0, _NO_PANDAS)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(_NO_PANDAS)


def want_pandas() -> None:
    """Make pandas importable again (inside :func:`without_pandas`) and let pyarrow recognise
    pandas objects; nothing happens when pandas is not installed."""
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(_NO_PANDAS)
    with contextlib.suppress(ImportError):
        pa.lib._pandas_api.pd  # noqa: B018 - pyarrow's conversion import, which retries


# ------------------------------------------------------------------------------ pipelining

_END = object()


def prefetch(items: Iterable[Any], depth: int = 2) -> Iterator[Any]:
    """``items`` in their order, produced by a background thread up to ``depth`` ahead.

    Reading and decoding a batch (CSV parsing, Parquet pages) runs in Arrow's C++ without the
    GIL, as do drgkit's kernels: with the next batch read while the current one is grouped,
    the two overlap. One producer and a FIFO queue keep the order; ``depth`` bounds the
    memory (that many batches in flight). An exception of ``items`` is raised here, at the
    position where it happened. Closing this generator early stops the producer and closes
    ``items`` (in the producer's thread, which is the only one that ever touches it).
    """
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        it = iter(items)
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.05)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((_END, None))
        except BaseException as exc:  # handed to the consumer, raised there
            q.put((_END, exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="drgkit-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if item is _END:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # let a producer blocked on a full queue finish
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.05)
        thread.join()


@contextlib.contextmanager
def write_behind(writer: Any, depth: int = 1) -> Iterator[Callable[[pa.RecordBatch | None], None]]:
    """``write(batch)`` that hands each batch to a background thread, which writes them in
    order (encoding and compressing run in Arrow's C++ without the GIL, so writing overlaps
    grouping); ``write(None)`` waits until all are written. A writing error is raised by
    the next ``write``; on leaving early the thread is stopped before the writer is aborted.
    ``depth``: batches waiting to be written; 0 writes at once, in the caller's thread."""
    import queue
    import threading

    if depth <= 0:
        yield lambda batch: None if batch is None else writer.write(batch)
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    failed: list[BaseException] = []

    def drain() -> None:
        while True:
            batch = q.get()
            try:
                if batch is None:
                    return
                if not failed:
                    writer.write(batch)
            except BaseException as exc:  # raised in the grouping thread
                failed.append(exc)
            finally:
                q.task_done()

    thread = threading.Thread(target=drain, name="drgkit-write", daemon=True)
    thread.start()

    def write(batch: pa.RecordBatch | None) -> None:
        if failed:
            raise failed[0]
        if batch is None:
            q.join()
            if failed:
                raise failed[0]
            return
        q.put(batch)

    try:
        yield write
    except BaseException as exc:
        failed.append(exc)  # the output is aborted: the batches still queued are not written
        raise
    finally:
        q.put(None)
        thread.join()
