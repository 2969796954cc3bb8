"""The two passes of a partitioned settlement, as pure functions of one partition.

1. pass 1, :func:`partial_of_partition`: the integer :class:`~drgkit.settlement.Partial` of the
   partition (points method) and the 128-bit fingerprints of its case ids, read with the same
   column plan as settlement;
2. the driver, :func:`reduce_facts`: Σ partials → :func:`~drgkit.settlement.point_values`, and
   the duplicate case ids of the whole dataset, found in one fixed order (partition order, then
   row) exactly as a single-process run finds them. The driver's memory for that stays bounded
   whatever the number of cases: pass 1 can spill each partition's fingerprints to a file,
   grouped by shard (:class:`IdSpill`), and :func:`resolve_duplicates` tracks one shard at a
   time (ids of different shards never collide); that machinery is shared with
   :func:`~drgkit.grouping.group_dataset` and lives in :mod:`drgkit._duplicates`;
3. pass 2, :func:`settle_partition`: settle the partition with a tracker that knows its
   repeated rows (:class:`KnownDuplicates`) and ``row_offset`` = the partition's first global
   row, and write ``<out_dir>/part-<index:05d>.parquet`` with a :class:`~drgkit._runners.
   PartWriter`.

:class:`SettleContext` is what every task needs, small and picklable. The entry point and the
resumable manifest are in :mod:`drgkit.settlement._bulk`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pyarrow as pa

from .._codes import IdTracker, fingerprints
from .._duplicates import (
    SPILL_DIR,
    IdSpill,
    KnownDuplicates,
    SpillTo,
    partition_ids,
    resolve_duplicates,
    shard_count,
)
from .._io import DEFAULT_BATCH_ROWS
from .._jit import threads
from .._resolve import RESOLVER, Names
from .._runners import PART_NAME, LocalRunner, Partition, PartWriter
from ..ruleset._model import Ruleset, RulesetSeries
from ._inputs import read_hospitals
from ._policy import Policy
from ._schemes import run_class, two_pass
from ._settle import (
    Partial,
    Reduced,
    SettleRun,
    SettleSummary,
    point_values,
)

__all__ = [
    "SPILL_DIR",
    "IdSpill",
    "KnownDuplicates",
    "PartitionFacts",
    "PartitionOutput",
    "Reduction",
    "SettleContext",
    "SpillTo",
    "correction_of_partition",
    "partial_of_partition",
    "reduce_facts",
    "resolve_duplicates",
    "settle_partition",
    "shard_count",
]


# ------------------------------------------------------------------ case-id trackers


class _Recorder:
    """Pass-1 tracker: keeps the fingerprints of the ids grouping reads and flags repeats
    inside the partition only (the driver finds the rest)."""

    def __init__(self, rows: int) -> None:
        self.local = IdTracker.for_rows(rows)
        self.chunks: list[np.ndarray] = []

    def check(self, ids: pa.Array, row0: int) -> np.ndarray:
        fp = fingerprints(ids)
        self.chunks.append(fp)
        return self.local.add(fp, row0)

    def result(self) -> np.ndarray:
        if not self.chunks:
            return np.zeros((0, 2), dtype=np.uint64)
        return np.concatenate(self.chunks) if len(self.chunks) > 1 else self.chunks[0]


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
    raise TypeError(
        f"cannot use a {type(ruleset).__name__} as a ruleset: give an id, a region, "
        "a folder or a Ruleset"
    )


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
        default=None, converter=lambda w: os.fspath(w) if w is not None else None
    )
    overrides: tuple[tuple[str, Any], ...] = attrs.field(default=(), converter=_frozen_items)
    hospitals: Any = attrs.field(
        default=None, converter=lambda h: os.fspath(h) if isinstance(h, os.PathLike) else h
    )
    layout: Any = None
    columns: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_frozen_items)
    keep: tuple[str, ...] = attrs.field(default=(), converter=lambda k: tuple(k or ()))
    check_duplicates: bool = True
    batch_rows: int = DEFAULT_BATCH_ROWS
    threads: int | None = None
    #: resolves the specs in each process (default :data:`drgkit._resolve.RESOLVER`: it is
    #: picklable and asks the registry of the process it runs in)
    names: Names = attrs.field(factory=lambda: RESOLVER)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.policy, os.PathLike):
            object.__setattr__(self, "policy", os.fspath(self.policy))

    def _key(self) -> str:
        policy = (
            ("policy", self.policy.content_hash) if isinstance(self.policy, Policy) else self.policy
        )
        return repr((policy, self.ruleset, self.weights, self.overrides, self.hospitals))

    def resources(self) -> _Resources:
        """Policy, ruleset and hospitals, built on first use in this process and cached."""
        key = self._key()
        with _CACHE_LOCK:
            found = _CACHE.get(key)
            if found is not None:
                return found
            policy = self.names.policy(self.policy, self.weights, dict(self.overrides) or None)
            ruleset = _open_ruleset(self.ruleset)
            if isinstance(ruleset, str):
                # resolved once per process; SettleRun resolves what it is given (and applies
                # the policy's default to None) exactly as in a single-process run; a name
                # that does not resolve stays: SettleRun reports it, or ignores it for
                # grouped input
                ruleset = self.names.try_ruleset(ruleset) or ruleset
            hospitals = (
                read_hospitals(self.hospitals, policy) if self.hospitals is not None else None
            )
            found = _Resources(policy, ruleset, hospitals)
            while len(_CACHE) >= _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = found
            return found

    def run(
        self,
        part: Partition,
        *,
        tracker: Any = None,
        check_duplicates: bool | None = None,
        schema: pa.Schema | None = None,
    ) -> SettleRun:
        res = self.resources()
        check = self.check_duplicates if check_duplicates is None else check_duplicates
        run = run_class(res.policy)(
            res.policy,
            res.ruleset,
            schema or part.schema(),
            part.name,
            layout=self.layout,
            columns=dict(self.columns) or None,
            hospitals=res.hospitals,
            keep=list(self.keep) or None,
            check_duplicates=check,
            tracker=tracker if check else None,
            row_offset=part.start,
            names=self.names,
        )
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


# ------------------------------------------------------------------ pass 1


@attrs.frozen(slots=True, eq=False)
class PartitionFacts:
    """What pass 1 learns about one partition."""

    index: int
    rows: int
    partial: Partial | None  # None when the point values were not asked for
    #: (rows, 2) uint64 fingerprints of the case ids grouping reads; (0, 0) for a null id.
    #: None when the run checks no ids (already grouped input, or check_duplicates off), or
    #: when they were spilled to ``spill``.
    fingerprints: np.ndarray | None
    spill: IdSpill | None = None

    @property
    def tracked(self) -> bool:
        """Whether the partition's case ids are checked."""
        return self.fingerprints is not None or self.spill is not None


def _tracks_ids(run: SettleRun, ctx: SettleContext) -> bool:
    return run.group_run is not None and ctx.check_duplicates


def _facts(
    part: Partition, partial: Partial | None, fp: np.ndarray | None, spill: SpillTo | None
) -> PartitionFacts:
    ids = partition_ids(part, fp, spill)
    return PartitionFacts(part.index, part.rows, partial, ids.fingerprints, ids.spill)


def partial_of_partition(
    ctx: SettleContext,
    part: Partition,
    partial: bool | None = None,
    spill: SpillTo | None = None,
) -> PartitionFacts:
    """Pass 1 of one partition: its :class:`Partial` (points method, or ``partial=True``) and
    the fingerprints of its case ids, returned, or written to a file in ``spill.folder``
    (grouped by shard) so that the driver need not hold every partition's. Repeats inside the
    partition are already left out of the partial; repeats of ids of earlier partitions are
    corrected by the driver."""
    with threads(ctx.threads):
        recorder = _Recorder(part.rows)
        run = ctx.run(part, tracker=recorder)
        tracked = _tracks_ids(run, ctx)
        want = two_pass(run.policy) if partial is None else partial
        if want:
            total = Partial.zero()
            for batch in part.batches(ctx.batch_rows):
                total = total + run.partial(run.prepare(batch))
            return _facts(part, total, recorder.result() if tracked else None, spill)
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
        return _facts(part, None, recorder.result(), spill)


def correction_of_partition(ctx: SettleContext, part: Partition, rows: np.ndarray) -> Partial:
    """What ``rows`` (partition-local) added to the partition's pass-1 partial: they were the
    first of their id inside the partition, but repeat an id of an earlier partition, so the
    whole dataset leaves them unsettled. Every case is priced by itself, so settling the rows
    alone gives exactly their share."""
    rows = np.asarray(rows, dtype=np.int64)
    if not len(rows):
        return Partial.zero()
    with threads(ctx.threads):
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
        return attrs.evolve(total, cases=0)


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


def reduce_facts(
    ctx: SettleContext,
    parts: Sequence[Partition],
    facts: Sequence[PartitionFacts],
    runner: Any = None,
    *,
    reduced: Reduced | None = None,
) -> Reduction:
    """Σ partials (integers) → point values; duplicate ids resolved globally. Partials of
    rows that turn out to repeat an id of an earlier partition are taken back out (a task per
    partition concerned, through ``runner``)."""
    duplicates, corrections = resolve_duplicates(parts, facts)
    if reduced is None:
        total = Partial.zero()
        for f in sorted(facts, key=lambda f: f.index):
            total = total + (f.partial if f.partial is not None else Partial({}, {}, f.rows))
        policy = ctx.resources().policy
        if corrections and two_pass(policy):
            runner = runner or LocalRunner()
            todo = sorted(corrections)
            by_index = {p.index: p for p in parts}
            fixes = runner.map(
                correction_of_partition,
                [ctx] * len(todo),
                [by_index[k] for k in todo],
                [corrections[k] for k in todo],
            )
            fixed = dict(zip(todo, fixes, strict=True))
            for fix in fixes:
                total = total.minus(fix)
        else:
            fixed = {}
        reduced = point_values(policy, total)
        if policy.method == "dip":  # each partition's start for the exact fund rounding
            from ._dip_values import dip_offsets

            by_index = {f.index: f for f in facts}
            reduced = dip_offsets(
                policy,
                reduced,
                [
                    (
                        p.start,
                        by_index[p.index].partial.minus(fixed[p.index])
                        if p.index in fixed
                        else by_index[p.index].partial,
                    )
                    for p in sorted(parts, key=lambda p: p.index)
                ],
            )
    return Reduction(reduced, duplicates, corrections)


# ------------------------------------------------------------------ pass 2


@attrs.frozen(slots=True, eq=False)
class PartitionOutput:
    """A written part file (usable as its path) and its partition's totals."""

    index: int
    path: str
    rows: int
    summary: SettleSummary
    sha256: str = ""  # of the part file, as written

    def __fspath__(self) -> str:
        return self.path


def settle_partition(
    ctx: SettleContext,
    part: Partition,
    reduced: Reduced | None,
    dup_info: KnownDuplicates | None,
    out_dir: str | os.PathLike[str],
) -> PartitionOutput:
    """Pass 2 of one partition: settle it and write ``<out_dir>/part-<index:05d>.parquet``.

    ``dup_info``: the partition's repeated rows from the driver (None: the partition has
    none). Rows are numbered from ``part.start``, so reasons and row numbers in messages are
    those of a single-process run over the whole dataset."""
    with threads(ctx.threads):
        tracker = dup_info if dup_info is not None else KnownDuplicates.none(part.start)
        run = ctx.run(part, tracker=tracker)
        if reduced is not None:
            run.summary.point_values = dict(reduced.point_values)
        path = Path(out_dir) / PART_NAME.format(part.index)
        with PartWriter(path, run.schema) as writer:
            for batch in part.batches(ctx.batch_rows):
                writer.write(run.finish(run.prepare(batch), reduced))
        return PartitionOutput(part.index, str(path), run.summary.rows, run.summary, writer.sha256)
