"""Partitioned runs: partitions of a Parquet dataset, runners that map tasks over them, part
files written atomically, and the manifest that makes a run resumable.

Nothing here knows about settlement: a partitioned job (settlement, DIP, alliances) cuts its
work into pure functions of one :class:`Partition`, maps them with a runner, writes one part
file per partition with :class:`PartWriter` and keeps a :class:`Manifest` in the output folder.

Runners: :class:`LocalRunner` (this process, one task after the other) and
:class:`DaskRunner` (``dask.distributed``; an optional dependency: ``pip install
"drgkit[dask]"``). ``runner.map(fn, *iterables, done=None)`` returns the results in task
order; ``done(result)`` is called in the calling process as each task finishes (in any order),
so that the caller can record progress while the rest still runs.

The manifest (``_drgkit_manifest.json``, JSON, written atomically) holds what decides the
output: fingerprints of the inputs (path, size, mtime, SHA-256 of the Parquet footer), content
hashes of what the job was run with, the drgkit version, the job's first-pass results (opaque
here) and, per finished part, its row count and SHA-256. A resumed run compares the manifest
with what it would write now (:meth:`Manifest.differences`), keeps the parts whose file still
has the recorded checksum (:meth:`Manifest.verified_parts`), and redoes the others.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ._io import PARQUET_SUFFIXES, want_pandas
from ._write import atomic_output
from .errors import CaseDataError, DrgkitError, TableError

__all__ = [
    "MANIFEST_NAME",
    "PART_NAME",
    "ROW_GROUP_ROWS",
    "WRITER_OPTIONS",
    "DaskRunner",
    "LocalRunner",
    "Manifest",
    "ManifestError",
    "PartRecord",
    "PartWriter",
    "Partition",
    "file_sha256",
    "input_fingerprint",
    "partitions_of",
]

#: rows per row group of a part file (the last one of a file may be shorter)
ROW_GROUP_ROWS = 1 << 17
#: Parquet writer options of every part file: fixed, so that the bytes are reproducible
#: (pyarrow writes no timestamp; ``created_by`` names the pyarrow version, which must match)
WRITER_OPTIONS: Mapping[str, Any] = {
    "compression": "zstd",
    "compression_level": 1,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "write_batch_size": 1024,
    "data_page_size": 1 << 20,
    "store_schema": True,
    "write_page_index": False,
}
PART_NAME = "part-{:05d}.parquet"
MANIFEST_NAME = "_drgkit_manifest.json"
MANIFEST_FORMAT = 1


class ManifestError(TableError):
    """A manifest that cannot be read, or that does not match the run being resumed."""


# ------------------------------------------------------------------ partitions


@attrs.frozen(slots=True)
class Partition:
    """One unit of work: a Parquet file, or some of its row groups."""

    index: int
    path: str
    row_groups: tuple[int, ...] | None  # None: the whole file
    rows: int
    start: int  # global row number (0-based) of its first row

    @property
    def name(self) -> str:
        if self.row_groups is None:
            return self.path
        groups = self.row_groups
        span = str(groups[0]) if len(groups) == 1 else f"{groups[0]}-{groups[-1]}"
        return f"{self.path} (row groups {span})"

    def schema(self) -> pa.Schema:
        return pq.ParquetFile(self.path).schema_arrow

    def batches(
        self, batch_rows: int, columns: Sequence[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        pf = pq.ParquetFile(self.path)
        groups = list(self.row_groups) if self.row_groups is not None else None
        read = 0
        if groups == []:
            return
        for batch in pf.iter_batches(
            batch_size=batch_rows,
            row_groups=groups,
            columns=list(columns) if columns is not None else None,
        ):
            read += batch.num_rows
            yield batch
        if read != self.rows:
            raise CaseDataError(
                f"the partition has {read} rows now, {self.rows} when the run "
                "started: the input changed during the run",
                file=self.path,
            )


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(PARQUET_SUFFIXES)


def partitions_of(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    row_groups_per_partition: int = 1,
) -> list[Partition]:
    """The partitions of ``source``: a folder of Parquet files (one per file, in the order of
    ``pyarrow.dataset`` discovery, which is how ``settle(folder)`` reads it), a list of
    Parquet files (in that order), or one Parquet file (``row_groups_per_partition`` of its
    row groups each)."""
    if not isinstance(source, (str, os.PathLike)):
        return _file_partitions([os.path.abspath(p) for p in source])
    path = Path(source)
    if not path.exists():
        raise CaseDataError("no such file or folder", file=path)
    if path.is_dir():
        import pyarrow.dataset as ds

        try:
            files = list(ds.dataset(path, format="parquet").files)
        except (pa.ArrowInvalid, OSError) as exc:
            raise CaseDataError(f"not a folder of Parquet files: {exc}", file=path) from None
        if not files:
            raise CaseDataError("the folder holds no Parquet files", file=path)
        return _file_partitions([os.path.abspath(f) for f in files])
    if not _is_parquet(path):
        raise CaseDataError(
            "a partitioned run reads Parquet: give a .parquet file or a folder of them", file=path
        )
    try:
        meta = pq.ParquetFile(path).metadata
    except (pa.ArrowInvalid, OSError) as exc:
        raise CaseDataError(f"not a readable Parquet file: {exc}", file=path) from None
    k = max(1, int(row_groups_per_partition))
    out: list[Partition] = []
    start = 0
    for first in range(0, meta.num_row_groups, k):
        groups = tuple(range(first, min(first + k, meta.num_row_groups)))
        rows = sum(meta.row_group(g).num_rows for g in groups)
        out.append(Partition(len(out), os.path.abspath(path), groups, rows, start))
        start += rows
    if not out:
        out.append(Partition(0, os.path.abspath(path), None, 0, 0))
    return out


def _file_partitions(files: Sequence[str]) -> list[Partition]:
    out = []
    start = 0
    for k, f in enumerate(files):
        try:
            rows = pq.ParquetFile(f).metadata.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            raise CaseDataError(f"not a readable Parquet file: {exc}", file=f) from None
        out.append(Partition(k, str(f), None, rows, start))
        start += rows
    return out


# ------------------------------------------------------------------ runners


class LocalRunner:
    """Runs the tasks in this process, one after the other, in order."""

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        done: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        out = []
        for args in zip(*iterables, strict=True):
            result = fn(*args)
            if done is not None:
                done(result)
            out.append(result)
        return out

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DaskRunner:
    """Runs the tasks on a ``dask.distributed`` cluster.

    ``address``: a scheduler to connect to (``"tcp://host:8786"``), or None for a
    ``LocalCluster`` in this machine (``cluster_options`` go to it, e.g. ``n_workers=2,
    processes=False``); ``client``: an existing :class:`distributed.Client` instead. Workers
    must be able to import drgkit and read the inputs at the same paths; they write the part
    files themselves. Results come back in task order whatever order the tasks finish in.
    """

    def __init__(
        self, address: str | None = None, *, client: Any = None, **cluster_options: Any
    ) -> None:
        want_pandas()  # Dask hands pyarrow pandas objects (see drgkit._io.without_pandas)
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise DrgkitError(
                "DaskRunner needs dask.distributed, which is not installed: "
                'pip install "drgkit[dask]"'
            ) from None
        self._own: list[Any] = []
        if client is not None:
            self.client = client
        elif address is not None:
            self.client = Client(address)
            self._own.append(self.client)
        else:
            cluster_options.setdefault("dashboard_address", None)
            cluster = LocalCluster(**cluster_options)
            self.client = Client(cluster)
            self._own += [self.client, cluster]

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        done: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        args = [list(it) for it in iterables]
        if not args or not args[0]:
            return []
        futures = self.client.map(fn, *args, pure=False)
        if done is not None:
            from distributed import as_completed

            for _future, result in as_completed(futures, with_results=True):
                done(result)
        return self.client.gather(futures)

    def close(self) -> None:
        for thing in self._own:
            thing.close()
        self._own = []

    def __enter__(self) -> DaskRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------ part files


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class PartWriter:
    """Writes a part file atomically (a temporary file beside it, renamed when complete) in
    row groups of exactly ``rows`` rows (the last may be shorter), each with its dictionaries
    rebuilt from its values, so the bytes do not depend on how the rows arrived in batches.

    Use as a context manager; on leaving without an error the file is complete and
    :attr:`sha256` holds its checksum. On an error (or a killed process) no file appears under
    the final name."""

    def __init__(
        self, path: str | os.PathLike[str], schema: pa.Schema, rows: int = ROW_GROUP_ROWS
    ) -> None:
        self.path = Path(path)
        self.schema = schema
        self.rows = rows
        self.pending: list[pa.RecordBatch] = []
        self.count = 0
        self.written = 0
        self.sha256 = ""
        self._atomic: Any = None
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> PartWriter:
        self._atomic = atomic_output(self.path)
        tmp = self._atomic.__enter__()
        try:
            self._writer = pq.ParquetWriter(tmp, self.schema, **WRITER_OPTIONS)
        except BaseException as exc:
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._tmp = tmp
        return self

    def write(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        self.pending.append(batch)
        self.count += batch.num_rows
        while self.count >= self.rows:
            table = pa.Table.from_batches(self.pending, schema=self.schema)
            self._emit(table.slice(0, self.rows))
            rest = table.slice(self.rows)
            self.pending = rest.to_batches()
            self.count = rest.num_rows

    def _emit(self, table: pa.Table) -> None:
        columns = []
        for field, col in zip(self.schema, table.columns, strict=True):
            if pa.types.is_dictionary(field.type):
                plain = pc.cast(col, field.type.value_type).combine_chunks()
                col = pc.dictionary_encode(plain).cast(field.type)
            else:
                col = col.combine_chunks()
            columns.append(col)
        table = pa.Table.from_arrays(columns, schema=self.schema)
        assert self._writer is not None
        self._writer.write_table(table, row_group_size=self.rows)
        self.written += table.num_rows

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool | None:
        assert self._writer is not None and self._atomic is not None
        try:
            if kind is None:
                if self.count or not self.written:
                    self._emit(pa.Table.from_batches(self.pending, schema=self.schema))
                self.pending = []
            self._writer.close()
            if kind is None:
                # checksum of the complete file, before it gets its final name
                self.sha256 = file_sha256(self._tmp)
        except BaseException as failure:
            self._atomic.__exit__(type(failure), failure, failure.__traceback__)
            raise
        return self._atomic.__exit__(kind, exc, tb)


# ------------------------------------------------------------------ manifest


def input_fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What identifies an input file without reading it all: path, size, mtime (ns) and the
    SHA-256 of its Parquet footer (row groups, their sizes and statistics)."""
    path = os.fspath(path)
    st = os.stat(path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        if st.st_size >= 12:
            fh.seek(st.st_size - 8)
            tail = fh.read(8)
            length = int.from_bytes(tail[:4], "little")
            if tail[4:] == b"PAR1" and length + 8 <= st.st_size:
                fh.seek(st.st_size - 8 - length)
                digest.update(fh.read(length + 8))
            else:  # not a Parquet footer: hash the whole file
                fh.seek(0)
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
        else:
            digest.update(fh.read())
    return {
        "path": path,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "footer_sha256": digest.hexdigest(),
    }


@attrs.frozen(slots=True)
class PartRecord:
    """A finished part file: its name in the output folder, rows and SHA-256, and what the
    job wants to keep about it (JSON values; settlement keeps the part's totals)."""

    name: str
    rows: int
    sha256: str
    info: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.define(slots=True, eq=False)
class Manifest:
    """What a partitioned run was, and how far it got. See the module documentation.

    ``identity``: everything that decides the output and must match on resume (inputs,
    content hashes, options, version), as JSON values; ``first_pass``: the job's first-pass
    results, as JSON values (exact: Decimals as strings); ``parts``: partition index ->
    :class:`PartRecord` of the parts written so far."""

    identity: dict[str, Any]
    first_pass: dict[str, Any]
    parts: dict[int, PartRecord] = attrs.field(factory=dict)

    @classmethod
    def path_in(cls, folder: str | os.PathLike[str]) -> Path:
        return Path(folder) / MANIFEST_NAME

    def to_json(self) -> str:
        doc = {
            "format": MANIFEST_FORMAT,
            "identity": self.identity,
            "first_pass": self.first_pass,
            "parts": {str(k): attrs.asdict(r) for k, r in sorted(self.parts.items())},
        }
        return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"

    def write(self, folder: str | os.PathLike[str]) -> None:
        with atomic_output(self.path_in(folder)) as tmp:
            tmp.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def read(cls, folder: str | os.PathLike[str]) -> Manifest | None:
        """The manifest of ``folder``; None when there is none."""
        path = cls.path_in(folder)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            doc = json.loads(text)
            if doc.get("format") != MANIFEST_FORMAT:
                raise ManifestError(
                    f"manifest format {doc.get('format')!r}, this drgkit "
                    f"reads format {MANIFEST_FORMAT}",
                    file=path,
                )
            parts = {
                int(k): PartRecord(
                    str(v["name"]), int(v["rows"]), str(v["sha256"]), dict(v.get("info") or {})
                )
                for k, v in doc["parts"].items()
            }
            return cls(dict(doc["identity"]), dict(doc["first_pass"]), parts)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(f"not a readable manifest: {exc}", file=path) from None

    def differences(self, current: Mapping[str, Any]) -> list[str]:
        """What differs between this manifest's identity and ``current`` (empty: none), one
        line per difference, naming the input or setting."""
        out: list[str] = []
        old, new = self.identity, dict(current)
        for key in sorted({*old, *new}):
            if key == "inputs":
                out += _input_differences(old.get(key) or [], new.get(key) or [])
            else:
                out += _value_differences(key, old.get(key), new.get(key))
        return out

    def verified_parts(self, folder: str | os.PathLike[str]) -> set[int]:
        """Parts whose file exists in ``folder`` with the recorded SHA-256."""
        ok = set()
        for index, record in self.parts.items():
            path = Path(folder) / record.name
            if path.is_file() and file_sha256(path) == record.sha256:
                ok.add(index)
        return ok


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _value_differences(name: str, old: Any, new: Any) -> list[str]:
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            line
            for key in sorted({*old, *new})
            for line in _value_differences(f"{name}.{key}", old.get(key), new.get(key))
        ]
    return [f"{name} was {_short(old)} when the run started, {_short(new)} now"]


def _input_differences(
    old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]
) -> list[str]:
    out: list[str] = []
    before = {f["path"]: f for f in old}
    now = {f["path"]: f for f in new}
    for path in before.keys() - now.keys():
        out.append(f"input {path} is gone")
    for path in now.keys() - before.keys():
        out.append(f"input {path} is new")
    for path in before.keys() & now.keys():
        changed = [
            k
            for k in ("size", "mtime_ns", "footer_sha256")
            if before[path].get(k) != now[path].get(k)
        ]
        if changed:
            out.append(f"input {path} changed ({', '.join(changed)})")
    if not out and [f["path"] for f in old] != [f["path"] for f in new]:
        out.append("the inputs are in another order")
    return sorted(out)
