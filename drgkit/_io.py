"""Every way cases arrive, turned into one stream of Arrow record batches.

:func:`open_cases` accepts a CSV or Parquet path (or a folder of Parquet files), an Arrow
table, record batch, reader or list of batches, a pandas or polars frame, or anything that
speaks the Arrow C stream protocol, and returns a :class:`CaseSource`: a schema, a name for
messages, and an iterator of batches. CSV is read with every column as text so that codes
keep their trailing zeros and a text age stays a text age.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .errors import CaseDataError

__all__ = ["CaseSource", "DataWarning", "atomic_output", "open_cases", "open_writer"]

DEFAULT_BATCH_ROWS = 1 << 18
CSV_SUFFIXES = (".csv", ".txt", ".tsv", ".csv.gz", ".csv.bz2", ".csv.zst")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")


class DataWarning(UserWarning):
    """Something about the input that the user should know but that does not stop the run."""


@attrs.define(slots=True, eq=False)
class MalformedRow:
    """A CSV row whose field count does not match its header."""

    row: int | None
    text: str
    expected: int
    actual: int


@attrs.define(slots=True, eq=False)
class CaseSource:
    """A stream of case batches with a name for messages."""

    name: str
    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    #: total rows when known in advance (Parquet, in-memory tables), else None
    num_rows: int | None = None
    #: CSV only: rows the parser could not split; reported as invalid cases, never dropped
    malformed: list[MalformedRow] = attrs.field(factory=list)
    #: fraction of the input consumed so far (0..1), for progress bars; None if unknown
    progress: Callable[[], float] | None = None


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in CSV_SUFFIXES + PARQUET_SUFFIXES + ARROW_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


class _CountingFile(io.RawIOBase):
    """Read-only file wrapper that counts bytes, so a CSV stream can report progress."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "rb")
        self.size = max(1, os.fstat(self._f.fileno()).st_size)
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._f.readinto(buffer)
        self.read_bytes += n or 0
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


def _read_csv_header(path: Path, encoding: str, delimiter: str) -> list[str]:
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding=encoding if encoding != "utf-8" else "utf-8-sig",
                    newline="") as handle:
            header = next(csv.reader(handle, delimiter=delimiter), None)
    except UnicodeDecodeError as exc:
        raise CaseDataError(
            f"cannot decode the header as {encoding} ({exc.reason}); pass the file's encoding "
            "(e.g. --encoding gbk)", file=path, row=1) from None
    if not header:
        raise CaseDataError("the file is empty: a header row is required", file=path, row=1)
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise CaseDataError(f"column {name!r} appears twice in the header", file=path,
                                row=1, column=name)
        seen.add(name)
    return header


def _open_csv(path: Path, *, encoding: str, delimiter: str | None,
              batch_rows: int) -> CaseSource:
    if delimiter is None:
        delimiter = "\t" if path.name.lower().endswith(".tsv") else ","
    header = _read_csv_header(path, encoding, delimiter)
    malformed: list[MalformedRow] = []

    def on_invalid(row) -> str:
        malformed.append(MalformedRow(row.number, row.text, row.expected_columns,
                                      row.actual_columns))
        return "skip"

    counting = _CountingFile(path) if not path.name.lower().endswith(
        (".gz", ".bz2", ".zst")) else None
    source: Any = counting if counting is not None else pa.input_stream(
        str(path), compression="detect")
    try:
        reader = pacsv.open_csv(
            source,
            # small blocks keep the reader's own buffers small (16 MiB blocks cost ~250 MiB
            # of reader memory on a 120 MB file); _merge builds full-size batches from them
            read_options=pacsv.ReadOptions(encoding=encoding, block_size=1 << 20),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise CaseDataError(f"cannot read as CSV: {exc}", file=path) from None

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from _merge(reader, batch_rows)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise CaseDataError(f"cannot read as CSV ({encoding}): {exc}", file=path) from None
        finally:
            if counting is not None:
                counting.close()

    progress = (lambda: counting.read_bytes / counting.size) if counting is not None else None
    return CaseSource(str(path), reader.schema, batches(), None, malformed, progress)


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
            yield from _rechunk(table.to_batches(), rows)
            pending, count = [], 0
    if pending:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


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
    return CaseSource(name, table.schema, _rechunk(table.to_batches(max_chunksize=batch_rows),
                                                   batch_rows), table.num_rows)


def open_cases(
    cases: Any,
    *,
    encoding: str = "utf-8",
    delimiter: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    columns: list[str] | None = None,
) -> CaseSource:
    """Coerce any supported case input to a :class:`CaseSource`.

    ``columns`` (Parquet only) limits what is read from disk.
    """
    if isinstance(cases, CaseSource):
        return cases
    if isinstance(cases, (str, os.PathLike)):
        path = Path(cases)
        if not path.exists():
            raise CaseDataError("no such file or folder", file=path)
        if path.is_dir():
            import pyarrow.dataset as ds

            try:
                dataset = ds.dataset(path, format="parquet")
            except (pa.ArrowInvalid, OSError) as exc:
                raise CaseDataError(f"not a folder of Parquet files: {exc}", file=path) from None
            names = [c for c in columns if c in dataset.schema.names] if columns else None
            return CaseSource(str(path), dataset.schema if names is None else pa.schema(
                [dataset.schema.field(c) for c in names]),
                _rechunk(_guarded(dataset.to_batches(columns=names, batch_size=batch_rows),
                                  path), batch_rows),
                _guarded_call(dataset.count_rows, path))
        suffix = _suffix(path)
        if suffix in PARQUET_SUFFIXES:
            try:
                pf = pq.ParquetFile(path)
            except (pa.ArrowInvalid, OSError) as exc:
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
                except (pa.ArrowException, OSError) as exc:
                    # a damaged page or column chunk: the rows from here on cannot be read
                    raise CaseDataError(f"damaged Parquet data after {read:,} rows: {exc}",
                                        file=path) from None
            total = pf.metadata.num_rows
            return CaseSource(
                str(path),
                schema if names is None else pa.schema([schema.field(c) for c in names]),
                batches(), total, progress=lambda: read / max(1, total))
        if suffix in ARROW_SUFFIXES:
            import pyarrow.feather as feather

            try:
                table = feather.read_table(path)
            except (pa.ArrowInvalid, OSError) as exc:
                raise CaseDataError(f"not a readable Arrow IPC file: {exc}", file=path) from None
            return _from_table(str(path), table, batch_rows)
        if suffix in CSV_SUFFIXES or suffix == "":
            return _open_csv(path, encoding=encoding, delimiter=delimiter,
                             batch_rows=batch_rows)
        raise CaseDataError(
            f"unknown file type {suffix!r}: use .csv, .parquet or .arrow", file=path)
    if isinstance(cases, pa.Table):
        return _from_table("<table>", cases, batch_rows)
    if isinstance(cases, pa.RecordBatch):
        return _from_table("<batch>", pa.Table.from_batches([cases]), batch_rows)
    if isinstance(cases, pa.RecordBatchReader):
        return CaseSource("<reader>", cases.schema, _rechunk(cases, batch_rows))
    if isinstance(cases, (list, tuple)) and cases and all(
            isinstance(b, pa.RecordBatch) for b in cases):
        return _from_table("<batches>", pa.Table.from_batches(list(cases)), batch_rows)
    module = type(cases).__module__.split(".")[0]
    if module == "pandas":
        return _from_table("<pandas>", pa.Table.from_pandas(cases, preserve_index=False),
                           batch_rows)
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
        "table, batch or reader, or a pandas or polars frame")


# ------------------------------------------------------------------------------ writing


def _guarded(batches: Iterable[pa.RecordBatch], path: Path) -> Iterator[pa.RecordBatch]:
    """``batches`` of a Parquet folder; damaged data is a CaseDataError naming the folder."""
    read = 0
    try:
        for batch in batches:
            read += batch.num_rows
            yield batch
    except (pa.ArrowException, OSError) as exc:
        raise CaseDataError(f"damaged Parquet data after {read:,} rows: {exc}",
                            file=path) from None


def _guarded_call(func: Callable[[], Any], path: Path) -> Any:
    try:
        return func()
    except (pa.ArrowException, OSError) as exc:
        raise CaseDataError(f"damaged Parquet data: {exc}", file=path) from None


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is flushed to disk and renamed
    onto ``path``, on any error (or interruption) it is removed.

    A reader of ``path`` therefore sees the old file or the complete new one, never a
    truncated one; a killed process leaves at most a ``.<name>.*.part`` file behind, never a
    file under the final name. Every output drgkit writes goes through here.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # mkstemp makes the file 0600; an output should get the mode any new file gets here
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    # the umask can only be read by setting it; set it straight back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a folder; the rename itself is atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Writer:
    """Batches to one CSV or Parquet file, atomically: use it as a context manager (or call
    :meth:`close` on success and :meth:`abort` on failure). Until ``close`` the rows go to a
    temporary file beside the target; ``close`` renames it into place."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.fmt = fmt
        self._writer: Any = None
        self._atomic = atomic_output(path)
        self._tmp = self._atomic.__enter__()
        self._done = False
        self.rows = 0

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, batch: pa.RecordBatch) -> None:
        if self.fmt == "csv":
            batch = _plain_for_csv(batch)
        if self._writer is None:
            if self.fmt == "parquet":
                self._writer = pq.ParquetWriter(self._tmp, batch.schema, compression="zstd")
            else:
                self._writer = pacsv.CSVWriter(
                    str(self._tmp), batch.schema,
                    write_options=pacsv.WriteOptions(quoting_style="needed"))
        self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def close(self, schema: pa.Schema | None = None) -> None:
        """Finish the file and move it into place."""
        if self._done:
            return
        try:
            if self._writer is None and schema is not None:
                # no rows at all: still write a file with the header / schema
                self.write(pa.RecordBatch.from_pylist([], schema=schema))
            if self._writer is not None:
                self._writer.close()
        except BaseException:
            self.abort()
            raise
        self._done = True
        self._atomic.__exit__(None, None, None)

    def abort(self) -> None:
        """Drop what was written; the target keeps its old content (or stays absent)."""
        if self._done:
            return
        self._done = True
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        with contextlib.suppress(Exception):
            self._atomic.__exit__(RuntimeError, RuntimeError("aborted"), None)


def _plain_for_csv(data):
    """CSV has no dictionaries or lists: decode dictionaries, join code lists with ``|``."""
    import pyarrow.compute as pc

    columns = []
    fields = []
    for field, col in zip(data.schema, data.columns, strict=True):
        if pa.types.is_dictionary(field.type):
            col = col.cast(field.type.value_type)
        elif pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            col = pc.binary_join(col, "|")
        columns.append(col)
        fields.append(pa.field(field.name, col.type))
    if isinstance(data, pa.RecordBatch):
        return pa.RecordBatch.from_arrays(columns, schema=pa.schema(fields))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def open_writer(path: str | os.PathLike[str], fmt: str | None = None) -> _Writer:
    """A batch writer for ``path``: Parquet for .parquet/.pq, CSV otherwise (or ``fmt``)."""
    path = Path(path)
    if fmt is None:
        fmt = "parquet" if _suffix(path) in PARQUET_SUFFIXES else "csv"
    if fmt not in ("csv", "parquet"):
        raise CaseDataError(f"unknown output format {fmt!r}: use csv or parquet", file=path)
    if path.parent and not path.parent.exists():
        raise CaseDataError("the output folder does not exist", file=path.parent)
    return _Writer(path, fmt)


def warn(message: str) -> None:
    warnings.warn(message, DataWarning, stacklevel=3)
