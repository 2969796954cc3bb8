"""Every output drgkit writes, atomically: a temporary file beside the target, fsynced and
renamed on success, removed on error (:func:`atomic_output`); batch writers for CSV and Parquet
(:func:`open_writer`), with spreadsheet formulas neutralised in CSV text cells; the rejects file
of a run (:func:`write_rejects`); and the check that an output never replaces its input.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ._io import PARQUET_SUFFIXES, MalformedRow, suffix_of
from .errors import CaseDataError, OutputError

__all__ = ["REJECTS_SCHEMA", "atomic_output", "check_not_input", "open_writer", "write_rejects"]


def _output_error(path: Path, exc: OSError) -> OutputError:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return OutputError(f"{path}: cannot write the output: {reason}")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is flushed to disk and renamed
    onto ``path``, on any error (or interruption) it is removed.

    A reader of ``path`` therefore sees the old file or the complete new one, never a
    truncated one; a killed process leaves at most a ``.<name>.*.part`` file behind, never a
    file under the final name. Every output drgkit writes goes through here. A failure of
    its own steps (no permission, a full disk at flush time, a folder under the target's
    name) is an :class:`~drgkit.errors.OutputError` naming the target.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: cannot write the output: it is a folder")
    if path.exists() and not path.is_file():
        # a device or pipe (/dev/null, /dev/stdout, a FIFO): renaming a file onto it would
        # replace the device itself, and there is nothing to keep atomic
        yield path
        return
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise _output_error(path, exc) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # mkstemp makes the file 0600; an output should get the mode any new file gets here
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        try:
            _fsync_file(tmp)
            os.replace(tmp, path)
        except OSError as exc:
            raise _output_error(path, exc) from None
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
            batch = _neutralise_formulas(_plain_for_csv(batch))
        try:
            if self._writer is None:
                if self.fmt == "parquet":
                    self._writer = pq.ParquetWriter(self._tmp, batch.schema, compression="zstd")
                else:
                    self._writer = pacsv.CSVWriter(
                        str(self._tmp),
                        batch.schema,
                        write_options=pacsv.WriteOptions(quoting_style="needed"),
                    )
            self._writer.write_batch(batch)
        except OSError as exc:  # a full disk, a lost mount: one clear error, nothing left
            self.abort()
            raise _output_error(self.path, exc) from None
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
        except OSError as exc:
            self.abort()
            raise _output_error(self.path, exc) from None
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


#: a cell a spreadsheet would run as a formula starts with one of these
_FORMULA_START = "^[=+\\-@\t\r]"
#: ... unless it is a plain number, such as a negative amount kept as text
_PLAIN_NUMBER = "^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?$"


def _neutralise_formulas(data):
    """Prefix ``'`` to text cells that a spreadsheet would run as a formula.

    The rule (CSV output only, text columns only): a cell of a text column that starts with
    ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``, unless the
    whole cell is a plain number (``-55.80``, ``+3``, ``1e5``), which a spreadsheet reads as
    a number anyway. Number, decimal and date columns are written unchanged, so amounts such
    as -55.80 stay numbers. Parquet output is never changed.
    """
    import pyarrow.compute as pc

    columns = list(data.columns)
    changed = False
    for k, (field, col) in enumerate(zip(data.schema, columns, strict=True)):
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        risky = pc.and_kleene(
            pc.match_substring_regex(col, _FORMULA_START),
            pc.invert(pc.match_substring_regex(col, _PLAIN_NUMBER)),
        )
        if not pc.any(risky).as_py():
            continue
        quoted = pc.binary_join_element_wise(
            pa.scalar("'", field.type), col, pa.scalar("", field.type)
        )
        columns[k] = pc.if_else(risky, quoted, col)
        changed = True
    if not changed:
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.RecordBatch.from_arrays(columns, schema=data.schema)
    return pa.Table.from_arrays(columns, schema=data.schema)


def check_not_input(out: str | os.PathLike[str], *inputs: Any) -> None:
    """Refuse an output path that is (or lies inside) one of the input paths: writing it
    would replace the data being read."""
    target = Path(out)
    resolved = target.resolve()
    for source in inputs:
        if not isinstance(source, (str, os.PathLike)):
            continue
        src = Path(source)
        same = resolved == src.resolve()
        if not same and target.exists() and src.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(target, src)
        if same:
            raise CaseDataError(
                "the output path is the input file: writing it would replace "
                "the input; choose another output path",
                file=target,
            )
        if src.is_dir() and resolved.is_relative_to(src.resolve()):
            raise CaseDataError(
                f"the output path is inside the input folder {src}: it would "
                "be read as input next time; write it elsewhere",
                file=target,
            )


REJECTS_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("line", pa.int64()),
        ("column", pa.string()),
        ("reason", pa.string()),
        ("message", pa.string()),
        ("text", pa.string()),
    ]
)


def write_rejects(
    path: str | os.PathLike[str], rows: list[MalformedRow], source: str, fmt: str | None = None
) -> int:
    """Write the lines that could not be read as cases to ``path`` (CSV or Parquet, by
    extension), atomically: file, line (header = 1), column (when known), reason code, a
    message and the raw text of the line. A run without rejects writes a file with the
    header only, so a rejects file always belongs to its run. Returns the rows written."""
    table = pa.table(
        {
            "file": pa.array([source] * len(rows), pa.string()),
            "line": pa.array([r.row for r in rows], pa.int64()),
            "column": pa.array([r.column for r in rows], pa.string()),
            "reason": pa.array([r.reason for r in rows], pa.string()),
            "message": pa.array([r.message or r.describe() for r in rows], pa.string()),
            "text": pa.array([r.text for r in rows], pa.string()),
        },
        schema=REJECTS_SCHEMA,
    )
    with open_writer(path, fmt) as writer:
        for batch in table.to_batches():
            writer.write(batch)
        writer.close(REJECTS_SCHEMA)
    return len(rows)


def open_writer(path: str | os.PathLike[str], fmt: str | None = None) -> _Writer:
    """A batch writer for ``path``: Parquet for .parquet/.pq, CSV otherwise (or ``fmt``)."""
    path = Path(path)
    if fmt is None:
        fmt = "parquet" if suffix_of(path) in PARQUET_SUFFIXES else "csv"
    if fmt not in ("csv", "parquet"):
        raise CaseDataError(f"unknown output format {fmt!r}: use csv or parquet", file=path)
    if path.parent and not path.parent.exists():
        raise CaseDataError("the output folder does not exist", file=path.parent)
    return _Writer(path, fmt)
