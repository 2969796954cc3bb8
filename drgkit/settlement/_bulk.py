"""Settlement of a partitioned Parquet dataset, in one process or on a cluster.

A dataset is a folder of Parquet files (one partition per file, in the order pyarrow's dataset
discovery lists them) or one Parquet file split by row groups. The work is cut into pure
functions of one partition, so that any runner can map them:

1. pass 1, :func:`partial_of_partition`: the integer :class:`~drgkit.settlement.Partial` of the
   partition (points method) and the 128-bit fingerprints of its case ids, read with the same
   column plan as settlement;
2. the driver, :func:`reduce_facts`: Σ partials → :func:`~drgkit.settlement.point_values`, and
   the duplicate case ids of the whole dataset, found in one fixed order (partition order, then
   row) exactly as a single-process run finds them;
3. pass 2, :func:`settle_partition`: settle the partition with a tracker that knows its
   repeated rows (:class:`KnownDuplicates`) and ``row_offset`` = the partition's first global
   row, and write ``<out_dir>/part-<index:05d>.parquet`` with fixed writer options.

Determinism: partial sums are integers; duplicate ids are resolved by the driver in partition
order, never by whichever worker finishes first; every case is settled by itself; part files
are written in fixed row groups of :data:`ROW_GROUP_ROWS` rows with their dictionaries rebuilt
per row group, so a part file's bytes depend on its partition's rows only: not on the batch
size, the runner, the number of workers or threads. The concatenated part files equal
``settle()`` of the whole dataset in one process, row for row.

Runners: :class:`LocalRunner` (this process, one partition after the other) and
:class:`DaskRunner` (``dask.distributed``; an optional dependency: ``pip install
"drgkit[dask]"``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._codes import _hash128, _probe, _regrow, string_buffers
from .._io import DEFAULT_BATCH_ROWS, PARQUET_SUFFIXES, DataWarning
from .._jit import jit, set_threads
from ..errors import CaseDataError, DrgkitError
from ..ruleset._model import Ruleset, RulesetSeries
from ._policy import Policy
from ._settle import (
    Partial,
    Reduced,
    SettleRun,
    SettleSummary,
    _hospitals,
    _policy_of,
    point_values,
)

__all__ = [
    "ROW_GROUP_ROWS",
    "WRITER_OPTIONS",
    "DaskRunner",
    "DatasetResult",
    "KnownDuplicates",
    "LocalRunner",
    "Partition",
    "PartitionFacts",
    "PartitionOutput",
    "SettleContext",
    "correction_of_partition",
    "partial_of_partition",
    "partitions_of",
    "reduce_facts",
    "settle_dataset",
    "settle_partition",
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


# ------------------------------------------------------------------ fingerprints of case ids


@jit
def _fingerprints(offsets, data, valid):
    """(n, 2) uint64: the 128-bit fingerprint of each id (``_codes._hash128``, as the
    :class:`~drgkit._codes.IdTracker` uses); a null id gets (0, 0)."""
    n = len(offsets) - 1
    out = np.zeros((n, 2), dtype=np.uint64)
    for i in range(n):
        if valid is not None and not valid[i]:
            continue
        h1, h2 = _hash128(data, offsets[i], offsets[i + 1])
        out[i, 0] = h1
        out[i, 1] = h2
    return out


@jit
def _track_fingerprints(fp, row0, table, count):
    """Insert each fingerprint; return the earlier row of those already seen (-1 when new).
    The same open addressing as ``_codes._track``, on precomputed fingerprints."""
    n = len(fp)
    first = np.full(n, -1, dtype=np.int64)
    mask = np.uint64(len(table) - 1)
    for i in range(n):
        h1 = fp[i, 0]
        if h1 == 0:
            continue
        first[i] = _probe(table, mask, h1, fp[i, 1], row0 + i, count)
    return first


def fingerprints(ids: pa.Array) -> np.ndarray:
    """128-bit fingerprints of case ids (a string array), as ``(n, 2)`` uint64."""
    offsets, data, valid = string_buffers(ids)
    return _fingerprints(offsets, data, valid)


class FingerprintTable:
    """Every fingerprint seen so far with the row where it was first seen (like
    :class:`~drgkit._codes.IdTracker`, fed with fingerprints instead of strings)."""

    def __init__(self, expected_rows: int = 0) -> None:
        capacity = 1 << 16
        while capacity < 2 * expected_rows:
            capacity *= 2
        self.table = np.zeros((capacity, 3), dtype=np.uint64)
        self.count = np.zeros(1, dtype=np.int64)

    def add(self, fp: np.ndarray, row0: int) -> np.ndarray:
        need = int(self.count[0]) + len(fp)
        if need * 2 > len(self.table):
            capacity = len(self.table)
            while need * 2 > capacity:
                capacity *= 2
            self.table = _regrow(self.table, capacity)
        return _track_fingerprints(fp, np.int64(row0), self.table, self.count)


class _Recorder:
    """Pass-1 tracker: keeps the fingerprints of the ids grouping reads and flags repeats
    inside the partition only (the driver finds the rest)."""

    def __init__(self, rows: int) -> None:
        self.local = FingerprintTable(rows)
        self.chunks: list[np.ndarray] = []

    def check(self, ids: pa.Array, row0: int) -> np.ndarray:
        fp = fingerprints(ids)
        self.chunks.append(fp)
        return self.local.add(fp, row0)

    def result(self) -> np.ndarray:
        if not self.chunks:
            return np.zeros((0, 2), dtype=np.uint64)
        return np.concatenate(self.chunks) if len(self.chunks) > 1 else self.chunks[0]


@attrs.frozen(slots=True, eq=False)
class KnownDuplicates:
    """Pass-2 tracker of one partition: its rows that repeat an earlier case id of the
    dataset, and the global row where each id was first seen. ``check(ids, row0)`` answers
    like :meth:`drgkit._codes.IdTracker.check` for the rows ``row0 ..`` (global numbers)."""

    start: int  # the partition's first global row
    rows: np.ndarray  # partition-local rows, ascending
    first: np.ndarray  # global row of the id's first occurrence, per entry of ``rows``

    @classmethod
    def none(cls, start: int) -> KnownDuplicates:
        return cls(start, np.zeros(0, np.int64), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.rows)

    def check(self, ids: pa.Array, row0: int) -> np.ndarray:
        n = len(ids)
        out = np.full(n, -1, dtype=np.int64)
        lo = row0 - self.start
        a, b = np.searchsorted(self.rows, [lo, lo + n])
        out[self.rows[a:b] - lo] = self.first[a:b]
        return out


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

    def batches(self, batch_rows: int, columns: Sequence[str] | None = None
                ) -> Iterator[pa.RecordBatch]:
        pf = pq.ParquetFile(self.path)
        groups = list(self.row_groups) if self.row_groups is not None else None
        read = 0
        if groups == []:
            return
        for batch in pf.iter_batches(batch_size=batch_rows, row_groups=groups,
                                     columns=list(columns) if columns is not None else None):
            read += batch.num_rows
            yield batch
        if read != self.rows:
            raise CaseDataError(f"the partition has {read} rows now, {self.rows} when the run "
                                "started: the input changed during the run", file=self.path)


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(PARQUET_SUFFIXES)


def partitions_of(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
                  row_groups_per_partition: int = 1) -> list[Partition]:
    """The partitions of ``source``: a folder of Parquet files (one per file, in the order of
    ``pyarrow.dataset`` discovery, which is how ``settle(folder)`` reads it), a list of
    Parquet files (in that order), or one Parquet file (``row_groups_per_partition`` of its
    row groups each)."""
    if isinstance(source, (str, os.PathLike)):
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
            raise CaseDataError("settle_dataset reads Parquet: give a .parquet file or a folder "
                                "of them", file=path)
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
    return _file_partitions([os.path.abspath(p) for p in source])


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


# ------------------------------------------------------------------ the context


def _ruleset_spec(ruleset: Any) -> Any:
    """A small picklable stand-in for a ruleset: the spec text, or the versions' infos
    (workers reopen the compiled tables from the drgkit cache)."""
    if ruleset is None or isinstance(ruleset, str):
        return ruleset
    if isinstance(ruleset, os.PathLike):
        return os.fspath(ruleset)
    if isinstance(ruleset, Ruleset):
        return ("ruleset", ruleset.info)
    if isinstance(ruleset, RulesetSeries):
        return ("series", ruleset.region, tuple(v.info for v in ruleset.versions))
    if isinstance(ruleset, tuple):
        return ruleset
    raise TypeError(f"cannot use a {type(ruleset).__name__} as a ruleset: give an id, a region, "
                    "a folder or a Ruleset")


def _open_ruleset(spec: Any) -> Any:
    if isinstance(spec, tuple) and spec and spec[0] == "ruleset":
        return Ruleset(spec[1])
    if isinstance(spec, tuple) and spec and spec[0] == "series":
        return RulesetSeries(spec[1], tuple(Ruleset(info) for info in spec[2]))
    return spec


def _frozen_items(mapping: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple((str(k), v) for k, v in (mapping or {}).items())


@attrs.frozen(slots=True, eq=False)
class _Resources:
    policy: Policy
    ruleset: Any  # Ruleset, RulesetSeries, None, or a spec that did not resolve
    hospitals: Mapping[str, tuple[str | None, Decimal | None]] | None


_CACHE: dict[str, _Resources] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 4


@attrs.frozen(slots=True, eq=False)
class SettleContext:
    """What every partition task needs, small and picklable: specs, not built objects.

    ``policy``: a registered id or a TOML path (or a :class:`Policy`, pickled as it is);
    ``weights``: the published table of the policy; ``overrides``: policy values to replace;
    ``ruleset``: id, region or folder (None: the one the policy names; a :class:`Ruleset` is
    carried as its info and reopened from the drgkit cache); ``hospitals``: a table path or a
    mapping. :meth:`resources` builds Policy, Ruleset and hospitals once per process.
    """

    policy: Any
    ruleset: Any = attrs.field(default=None, converter=_ruleset_spec)
    weights: str | None = attrs.field(
        default=None, converter=lambda w: os.fspath(w) if w is not None else None)
    overrides: tuple[tuple[str, Any], ...] = attrs.field(default=(), converter=_frozen_items)
    hospitals: Any = attrs.field(
        default=None, converter=lambda h: os.fspath(h) if isinstance(h, os.PathLike) else h)
    layout: Any = None
    columns: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_frozen_items)
    keep: tuple[str, ...] = attrs.field(default=(), converter=lambda k: tuple(k or ()))
    check_duplicates: bool = True
    batch_rows: int = DEFAULT_BATCH_ROWS
    threads: int | None = None

    def __attrs_post_init__(self) -> None:
        if isinstance(self.policy, os.PathLike):
            object.__setattr__(self, "policy", os.fspath(self.policy))

    def _key(self) -> str:
        policy = (("policy", self.policy.content_hash) if isinstance(self.policy, Policy)
                  else self.policy)
        return repr((policy, self.ruleset, self.weights, self.overrides, self.hospitals))

    def resources(self) -> _Resources:
        """Policy, ruleset and hospitals, built on first use in this process and cached."""
        key = self._key()
        with _CACHE_LOCK:
            found = _CACHE.get(key)
            if found is not None:
                return found
            policy = _policy_of(self.policy, self.weights, dict(self.overrides) or None)
            ruleset = _open_ruleset(self.ruleset)
            if isinstance(ruleset, str):
                # resolved once per process; SettleRun resolves what it is given (and applies
                # the policy's default to None) exactly as in a single-process run
                from ..grouping._group import _resolve

                with contextlib.suppress(DrgkitError):  # else SettleRun reports it, or
                    ruleset = _resolve(ruleset)  # ignores it for grouped input
            hospitals = _hospitals(self.hospitals, policy) if self.hospitals is not None \
                else None
            found = _Resources(policy, ruleset, hospitals)
            while len(_CACHE) >= _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = found
            return found

    def run(self, part: Partition, *, tracker: Any = None, check_duplicates: bool | None = None,
            schema: pa.Schema | None = None) -> SettleRun:
        res = self.resources()
        check = self.check_duplicates if check_duplicates is None else check_duplicates
        run = SettleRun(res.policy, res.ruleset, schema or part.schema(), part.name,
                        layout=self.layout, columns=dict(self.columns) or None,
                        hospitals=res.hospitals, keep=list(self.keep) or None,
                        check_duplicates=check, tracker=tracker if check else None,
                        row_offset=part.start)
        _share_price_book(run, self._key())
        return run


_BOOKS = threading.local()


def _share_price_book(run: SettleRun, key: str) -> None:
    """Reuse one PriceBook per policy and thread across the runs of a process. A book prices
    its cells on demand, in Python (about 60 µs a cell, thousands of cells per partition),
    and only cell ids internal to a run depend on the order they were built in. Per thread,
    because building a cell mutates the book."""
    books = getattr(_BOOKS, "books", None)
    if books is None:
        books = _BOOKS.books = {}
    book = books.get(key)
    if book is None or book.policy is not run.policy:
        books.clear()
        books[key] = run.book
        return
    run.book = book


class _Threads:
    def __init__(self, threads: int | None) -> None:
        self.threads = threads
        self.previous: int | None = None

    def __enter__(self) -> None:
        if self.threads:
            self.previous = set_threads(self.threads)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            set_threads(self.previous)


# ------------------------------------------------------------------ pass 1


@attrs.frozen(slots=True, eq=False)
class PartitionFacts:
    """What pass 1 learns about one partition."""

    index: int
    rows: int
    partial: Partial | None  # None when the point values were not asked for
    #: (rows, 2) uint64 fingerprints of the case ids grouping reads; (0, 0) for a null id.
    #: None when the run checks no ids (already grouped input, or check_duplicates off).
    fingerprints: np.ndarray | None


def _tracks_ids(run: SettleRun, ctx: SettleContext) -> bool:
    return run.group_run is not None and ctx.check_duplicates


def partial_of_partition(ctx: SettleContext, part: Partition, partial: bool | None = None
                         ) -> PartitionFacts:
    """Pass 1 of one partition: its :class:`Partial` (points method, or ``partial=True``) and
    the fingerprints of its case ids. Repeats inside the partition are already left out of
    the partial; repeats of ids of earlier partitions are corrected by the driver."""
    with _Threads(ctx.threads):
        recorder = _Recorder(part.rows)
        run = ctx.run(part, tracker=recorder)
        tracked = _tracks_ids(run, ctx)
        want = run.policy.method == "points" if partial is None else partial
        if want:
            total = Partial.zero()
            for batch in part.batches(ctx.batch_rows):
                total = total + run.partial(run.prepare(batch))
            return PartitionFacts(part.index, part.rows, total,
                                  recorder.result() if tracked else None)
        if not tracked:
            return PartitionFacts(part.index, part.rows, None, None)
        # only the ids are needed: read the id column alone, make the ids as grouping does
        group_run = run.group_run
        source = group_run.plan.source.get("case_id")
        row = part.start
        if source is None:
            for lo in range(0, part.rows, ctx.batch_rows):
                n = min(ctx.batch_rows, part.rows - lo)
                recorder.check(group_run.case_ids(None, n, row), row)
                row += n
        else:
            for batch in part.batches(ctx.batch_rows, columns=[source]):
                n = batch.num_rows
                recorder.check(group_run.case_ids(batch.column(0), n, row), row)
                row += n
        return PartitionFacts(part.index, part.rows, None, recorder.result())


def correction_of_partition(ctx: SettleContext, part: Partition, rows: np.ndarray) -> Partial:
    """What ``rows`` (partition-local) added to the partition's pass-1 partial: they were the
    first of their id inside the partition, but repeat an id of an earlier partition, so the
    whole dataset leaves them unsettled. Every case is priced by itself, so settling the rows
    alone gives exactly their share."""
    rows = np.asarray(rows, dtype=np.int64)
    if not len(rows):
        return Partial.zero()
    with _Threads(ctx.threads):
        schema = part.schema()
        taken: list[pa.RecordBatch] = []
        lo = 0
        for batch in part.batches(ctx.batch_rows):
            a, b = np.searchsorted(rows, [lo, lo + batch.num_rows])
            if b > a:
                taken.append(batch.take(pa.array(rows[a:b] - lo)))
            lo += batch.num_rows
        run = ctx.run(part, check_duplicates=False, schema=schema)
        total = Partial.zero()
        for batch in taken:
            total = total + run.partial(run.prepare(batch))
        return Partial(total.points, total.by_item, 0)


# ------------------------------------------------------------------ driver


@attrs.frozen(slots=True, eq=False)
class Reduction:
    """The driver's answer after pass 1: point values, and each partition's repeated rows."""

    reduced: Reduced
    duplicates: Mapping[int, KnownDuplicates]
    #: partition -> rows to take out of the pass-1 partial (see correction_of_partition)
    corrections: Mapping[int, np.ndarray]

    @property
    def duplicate_rows(self) -> int:
        return sum(len(d) for d in self.duplicates.values())


def resolve_duplicates(parts: Sequence[Partition], facts: Sequence[PartitionFacts]
                       ) -> tuple[dict[int, KnownDuplicates], dict[int, np.ndarray]]:
    """Repeated case ids over the whole dataset, in partition order, then row: for each
    partition, its rows that repeat an earlier id (with the id's first global row), and the
    rows that pass 1 counted because their id's earlier row is in another partition."""
    by_index = {f.index: f for f in facts}
    table = FingerprintTable(sum(p.rows for p in parts
                                 if by_index[p.index].fingerprints is not None))
    duplicates: dict[int, KnownDuplicates] = {}
    corrections: dict[int, np.ndarray] = {}
    for part in sorted(parts, key=lambda p: p.index):
        fp = by_index[part.index].fingerprints
        if fp is None:
            continue
        if len(fp) != part.rows:
            raise DrgkitError(f"{part.name}: pass 1 read {len(fp)} case ids, the partition has "
                              f"{part.rows} rows")
        first = table.add(fp, part.start)
        rows = np.flatnonzero(first >= 0).astype(np.int64)
        firsts = first[rows]
        duplicates[part.index] = KnownDuplicates(part.start, rows, firsts)
        earlier = firsts < part.start
        if earlier.any():
            # the first row of each such id inside this partition was counted in pass 1
            _u, at = np.unique(firsts[earlier], return_index=True)
            corrections[part.index] = np.sort(rows[earlier][at])
    return duplicates, corrections


def reduce_facts(ctx: SettleContext, parts: Sequence[Partition], facts: Sequence[PartitionFacts],
                 runner: Any = None, *, reduced: Reduced | None = None) -> Reduction:
    """Σ partials (integers) → point values; duplicate ids resolved globally. Partials of
    rows that turn out to repeat an id of an earlier partition are taken back out (a task per
    partition concerned, through ``runner``)."""
    duplicates, corrections = resolve_duplicates(parts, facts)
    if reduced is None:
        total = Partial.zero()
        for f in sorted(facts, key=lambda f: f.index):
            total = total + (f.partial if f.partial is not None else
                             Partial({}, {}, f.rows))
        policy = ctx.resources().policy
        if corrections and policy.method == "points":
            runner = runner or LocalRunner()
            todo = sorted(corrections)
            by_index = {p.index: p for p in parts}
            fixes = runner.map(correction_of_partition, [ctx] * len(todo),
                               [by_index[k] for k in todo], [corrections[k] for k in todo])
            for fix in fixes:
                total = total + Partial({k: -v for k, v in fix.points.items()},
                                        {k: -v for k, v in fix.by_item.items()}, 0)
        reduced = point_values(policy, total)
    return Reduction(reduced, duplicates, corrections)


# ------------------------------------------------------------------ pass 2


@attrs.frozen(slots=True, eq=False)
class PartitionOutput:
    """A written part file (usable as its path) and its partition's totals."""

    index: int
    path: str
    rows: int
    summary: SettleSummary

    def __fspath__(self) -> str:
        return self.path


class _PartWriter:
    """Writes a part file in row groups of exactly ``rows`` rows (the last may be shorter),
    each with its dictionaries rebuilt from its values, so the bytes do not depend on how
    the rows arrived in batches."""

    def __init__(self, path: Path, schema: pa.Schema, rows: int = ROW_GROUP_ROWS) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self.schema = schema
        self.rows = rows
        self.pending: list[pa.RecordBatch] = []
        self.count = 0
        self.written = 0
        self.writer = pq.ParquetWriter(self.tmp, schema, **WRITER_OPTIONS)

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
        self.writer.write_table(table, row_group_size=self.rows)
        self.written += table.num_rows

    def close(self) -> None:
        if self.count or not self.written:
            self._emit(pa.Table.from_batches(self.pending, schema=self.schema))
        self.pending = []
        self.writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self.writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def settle_partition(ctx: SettleContext, part: Partition, reduced: Reduced | None,
                     dup_info: KnownDuplicates | None, out_dir: str | os.PathLike[str]
                     ) -> PartitionOutput:
    """Pass 2 of one partition: settle it and write ``<out_dir>/part-<index:05d>.parquet``.

    ``dup_info``: the partition's repeated rows from the driver (None: the partition has
    none). Rows are numbered from ``part.start``, so reasons and row numbers in messages are
    those of a single-process run over the whole dataset."""
    with _Threads(ctx.threads):
        tracker = dup_info if dup_info is not None else KnownDuplicates.none(part.start)
        run = ctx.run(part, tracker=tracker)
        if reduced is not None:
            run.summary.point_values = dict(reduced.point_values)
        path = Path(out_dir) / PART_NAME.format(part.index)
        writer = _PartWriter(path, run.schema)
        try:
            for batch in part.batches(ctx.batch_rows):
                writer.write(run.finish(run.prepare(batch), reduced))
        except BaseException:
            writer.abort()
            raise
        writer.close()
        return PartitionOutput(part.index, str(path), run.summary.rows, run.summary)


# ------------------------------------------------------------------ runners


class LocalRunner:
    """Runs the partition tasks in this process, one after the other, in order."""

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any]) -> list[Any]:
        return [fn(*args) for args in zip(*iterables, strict=True)]

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DaskRunner:
    """Runs the partition tasks on a ``dask.distributed`` cluster.

    ``address``: a scheduler to connect to (``"tcp://host:8786"``), or None for a
    ``LocalCluster`` in this machine (``cluster_options`` go to it, e.g. ``n_workers=2,
    processes=False``); ``client``: an existing :class:`distributed.Client` instead. Workers
    must be able to import drgkit and read the input, the policy, its weights table and the
    ruleset at the same paths; they write the part files themselves. Results come back in
    partition order whatever order the tasks finish in.
    """

    def __init__(self, address: str | None = None, *, client: Any = None,
                 **cluster_options: Any) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise DrgkitError('DaskRunner needs dask.distributed, which is not installed: '
                              'pip install "drgkit[dask]"') from None
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

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any]) -> list[Any]:
        args = [list(it) for it in iterables]
        if not args or not args[0]:
            return []
        futures = self.client.map(fn, *args, pure=False)
        return self.client.gather(futures)

    def close(self) -> None:
        for thing in self._own:
            thing.close()
        self._own = []

    def __enter__(self) -> DaskRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------ entry point


@attrs.frozen(slots=True, eq=False)
class DatasetResult:
    """The outcome of :func:`settle_dataset`."""

    partitions: tuple[Partition, ...]
    rows: int
    point_values: Mapping[str, Decimal]
    paths: tuple[str, ...]
    summary: SettleSummary  # every partition's summary added up
    reduced: Reduced
    duplicates: int  # rows flagged as repeating an earlier case id

    @property
    def hospitals(self) -> dict[str, dict[str, int]]:
        """hospital id -> {cases, settled, payment, fund_payment, patient_share, total_cost}
        (amounts in cents)."""
        return self.summary.hospitals

    def total(self, name: str) -> int:
        """A region total (cents for amounts) over every hospital."""
        return self.summary.total(name)

    def table(self) -> pa.Table:
        """Every settled row, in dataset order (reads the part files back)."""
        return pa.concat_tables([pq.read_table(p) for p in self.paths])


def merge_summaries(summaries: Iterable[SettleSummary],
                    point_values_: Mapping[str, Decimal] | None = None) -> SettleSummary:
    out = SettleSummary()
    for s in summaries:
        out.rows += s.rows
        out.settled += s.settled
        out.by_class.update(s.by_class)
        out.by_reason.update(s.by_reason)
        for hosp, sums in s.hospitals.items():
            out.hospitals.setdefault(hosp, Counter()).update(sums)
        out.add_checks(s)
    out.hospitals = dict(sorted(out.hospitals.items()))
    out.point_values = dict(point_values_ or {})
    return out


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    stale = sorted(out_dir.glob("part-*.parquet"))
    if stale and not overwrite:
        raise CaseDataError(f"the output folder already holds {len(stale)} part file(s); "
                            "choose an empty folder or pass overwrite=True", file=out_dir)
    for path in stale:
        path.unlink()


def _absolute(spec: Any, kind: str = "file") -> Any:
    """A relative path made absolute (workers may run in another folder). A registered
    policy id, ruleset id or region stays as it is, as the registry resolves those first."""
    if not isinstance(spec, (str, os.PathLike)) or not os.path.exists(spec):
        return spec
    if kind != "file":
        from ..registry import default_registry

        reg = default_registry()
        text = os.fspath(spec)
        known = reg.policies if kind == "policy" else {**reg.rulesets, **reg.regions()}
        if text in known:
            return spec
    return os.path.abspath(spec)


def settle_dataset(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    policy: Any,
    ruleset: Any = None,
    *,
    weights: Any = None,
    runner: Any = None,
    overrides: Mapping[str, Any] | None = None,
    hospitals: Any = None,
    layout: str | None = None,
    columns: Mapping[str, str] | None = None,
    keep: Sequence[str] | None = None,
    check_duplicates: bool = True,
    batch_rows: int | None = None,
    threads: int | None = None,
    row_groups_per_partition: int = 1,
    reduced: Reduced | None = None,
    overwrite: bool = False,
) -> DatasetResult:
    """Settle a partitioned Parquet dataset into ``out_dir/part-NNNNN.parquet``, one part
    file per partition, in two passes (see the module documentation).

    ``source``: a folder of Parquet files, a list of them, or one file (split by row groups,
    ``row_groups_per_partition`` each). ``runner``: :class:`LocalRunner` (default) or
    :class:`DaskRunner`. ``reduced``: point values decided elsewhere (pass 1 then only reads
    the case ids). The other options are those of :func:`~drgkit.settlement.settle`. The part
    files, concatenated in order, equal ``settle()`` of the whole dataset in one process; the
    output does not depend on the runner, the batch size or the number of threads.
    """
    ctx = SettleContext(_absolute(policy, "policy"), _absolute(ruleset, "ruleset"),
                        _absolute(weights), overrides,
                        _absolute(hospitals), layout, columns, keep, check_duplicates,
                        batch_rows or DEFAULT_BATCH_ROWS, threads)
    parts = partitions_of(source, row_groups_per_partition=row_groups_per_partition)
    out = Path(out_dir).absolute()
    _prepare_out_dir(out, overwrite)
    runner = runner if runner is not None else LocalRunner()
    ctx.resources()  # fail early, in the driver, on a bad policy or ruleset
    facts = runner.map(partial_of_partition, [ctx] * len(parts), parts,
                       [None if reduced is None else False] * len(parts))
    reduction = reduce_facts(ctx, parts, facts, runner, reduced=reduced)
    outputs = runner.map(settle_partition, [ctx] * len(parts), parts,
                         [reduction.reduced] * len(parts),
                         [reduction.duplicates.get(p.index) for p in parts],
                         [str(out)] * len(parts))
    outputs = sorted(outputs, key=lambda o: o.index)
    point_values_ = dict(reduction.reduced.point_values)
    summary = merge_summaries((o.summary for o in outputs), point_values_)
    for message in summary.data_warnings(ctx.resources().policy):  # merged from every part
        warnings.warn(message, DataWarning, stacklevel=2)
    return DatasetResult(tuple(parts), summary.rows, point_values_,
                         tuple(o.path for o in outputs), summary, reduction.reduced,
                         reduction.duplicate_rows)
