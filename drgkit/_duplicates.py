"""The dataset-wide duplicate case-id check of a partitioned run, with bounded driver memory.

Pass 1 of a partitioned job (settlement, grouping, DIP) computes the 128-bit fingerprints of
each partition's case ids (:func:`drgkit._codes.fingerprints`) and, rather than return them to
the driver, spills them to ``<out_dir>/.duplicate-ids.tmp/ids-<index:05d>.bin`` grouped by
shard (:class:`IdSpill`, created by :func:`spill_area`). The driver then resolves the repeats
one shard at a time (:func:`resolve_duplicates`): ids of different shards never collide, so
it holds one shard's tracker, whatever the number of cases, and finds exactly the rows one
tracker over the whole dataset (partition order, then row) finds. Pass 2 of each partition
gets its repeated rows as a :class:`KnownDuplicates` tracker.

Nothing here knows about settlement or grouping: only fingerprints, partitions, spill files
and shards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import attrs
import numpy as np
import pyarrow as pa

from ._codes import IdTracker
from ._runners import Partition
from .errors import DrgkitError

__all__ = [
    "SHARD_IDS",
    "SPILL_DIR",
    "IdSpill",
    "KnownDuplicates",
    "PartitionIds",
    "SpillTo",
    "by_shard",
    "partition_ids",
    "remove_spill",
    "resolve_duplicates",
    "shard_count",
    "shard_of",
    "spill_area",
]

#: ids per shard of the driver's duplicate check: an IdTracker for 3M ids has 2**23 slots of
#: 24 bytes (192 MiB), and hashing spreads the ids evenly, far from the 2**22 ids that would
#: double it
SHARD_IDS = 3_000_000

#: the folder, inside the output folder, where pass 1 spills the fingerprints
SPILL_DIR = ".duplicate-ids.tmp"


# ------------------------------------------------------------------ pass-2 tracker


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


# ------------------------------------------------------------------ sharded fingerprints


def shard_count(ids: int, per_shard: int | None = None) -> int:
    """The number of shards (a power of two) so that a shard holds about ``per_shard`` ids at
    most (default :data:`SHARD_IDS`)."""
    per_shard = per_shard or SHARD_IDS
    k = 1
    while k * per_shard < ids:
        k *= 2
    return k


def shard_of(fp: np.ndarray, shards: int) -> np.ndarray:
    """The shard of each fingerprint: the top bits of its first hash. The trackers place an
    id by the low bits of that hash, so the ids of one shard still spread over its table."""
    if shards < 1 or shards > 1 << 16 or shards & (shards - 1):
        raise ValueError(f"the number of shards must be a power of two ≤ 65536, not {shards}")
    if shards == 1:
        return np.zeros(len(fp), dtype=np.uint16)
    bits = np.uint64(64 - (shards.bit_length() - 1))
    # 16-bit keys: numpy's stable sort of them is a radix sort
    return (fp[:, 0] >> bits).astype(np.uint16)


def by_shard(fp: np.ndarray, shards: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``fp`` regrouped by shard: (fingerprints, their partition-local rows, offsets). Shard
    ``s`` is entries ``offsets[s]:offsets[s + 1]``, in row order (a stable sort), so tracking
    a shard's entries meets its ids in the order a single pass over all rows meets them."""
    key = shard_of(fp, shards)
    order = np.argsort(key, kind="stable")
    offsets = np.zeros(shards + 1, dtype=np.int64)
    np.cumsum(np.bincount(key, minlength=shards), out=offsets[1:])
    rows = order.astype(np.uint32 if len(fp) <= 1 << 32 else np.int64)
    return fp[order], rows, offsets


@attrs.frozen(slots=True)
class SpillTo:
    """Where pass 1 writes a partition's fingerprints, and in how many shards."""

    folder: str
    shards: int


@attrs.frozen(slots=True, eq=False)
class IdSpill:
    """A partition's case-id fingerprints in a file, grouped by shard (see :func:`by_shard`):
    the ``(n, 2)`` uint64 fingerprints, then the ``n`` partition-local rows (``row_dtype``)."""

    path: str
    count: int
    offsets: np.ndarray  # (shards + 1,) int64
    row_dtype: str

    @property
    def shards(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def write(cls, fp: np.ndarray, index: int, to: SpillTo) -> IdSpill:
        sorted_fp, rows, offsets = by_shard(fp, to.shards)
        path = Path(to.folder) / f"ids-{index:05d}.bin"
        # written under a temporary name and renamed: a task run twice (a Dask retry) or a
        # killed one never leaves a half file under the final name
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
        with open(tmp, "wb") as fh:
            fh.write(np.ascontiguousarray(sorted_fp, dtype=np.uint64).tobytes())
            fh.write(rows.tobytes())
        os.replace(tmp, path)
        return cls(str(path), len(fp), offsets, rows.dtype.str)

    def shard(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        """Shard ``s``: its fingerprints and partition-local rows (ascending)."""
        a, b = int(self.offsets[s]), int(self.offsets[s + 1])
        dtype = np.dtype(self.row_dtype)
        with open(self.path, "rb") as fh:
            fh.seek(16 * a)
            fp = np.fromfile(fh, dtype=np.uint64, count=2 * (b - a)).reshape(b - a, 2)
            fh.seek(16 * self.count + dtype.itemsize * a)
            rows = np.fromfile(fh, dtype=dtype, count=b - a)
        if len(rows) != b - a:
            raise DrgkitError(f"{self.path}: the spilled case ids are cut short")
        return fp, rows


class _InMemory:
    """The :meth:`IdSpill.shard` view of fingerprints given in memory."""

    def __init__(self, fp: np.ndarray, shards: int) -> None:
        self.count = len(fp)
        self.fp, self.rows, self.offsets = by_shard(fp, shards)

    def shard(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = int(self.offsets[s]), int(self.offsets[s + 1])
        return self.fp[a:b], self.rows[a:b]


# ------------------------------------------------------------------ pass 1 → driver


class HasIds(Protocol):
    """What the driver needs of a partition's pass-1 answer (a :class:`PartitionIds`, or a
    job's richer record with the same fields)."""

    @property
    def index(self) -> int: ...
    @property
    def fingerprints(self) -> np.ndarray | None: ...
    @property
    def spill(self) -> IdSpill | None: ...
    @property
    def tracked(self) -> bool: ...


@attrs.frozen(slots=True, eq=False)
class PartitionIds:
    """A partition's case ids after pass 1: their fingerprints in memory, or (the usual
    case) the file they were spilled to; neither when the run checks no ids."""

    index: int
    rows: int
    fingerprints: np.ndarray | None
    spill: IdSpill | None = None

    @property
    def tracked(self) -> bool:
        """Whether the partition's case ids are checked."""
        return self.fingerprints is not None or self.spill is not None


def partition_ids(part: Partition, fp: np.ndarray | None, spill: SpillTo | None) -> PartitionIds:
    """The pass-1 answer of ``part`` for the ids ``fp`` (None: not checked): written to
    ``spill`` when given, so that only the file's shard offsets go back to the driver."""
    if fp is None or spill is None:
        return PartitionIds(part.index, part.rows, fp)
    return PartitionIds(part.index, part.rows, None, IdSpill.write(fp, part.index, spill))


def remove_spill(out_dir: str | os.PathLike[str]) -> None:
    """Remove the fingerprints a pass 1 spilled into ``out_dir`` (also a killed run's)."""
    shutil.rmtree(Path(out_dir) / SPILL_DIR, ignore_errors=True)


@contextlib.contextmanager
def spill_area(
    out_dir: str | os.PathLike[str], rows: int, enabled: bool = True
) -> Iterator[SpillTo | None]:
    """The spill folder of a run over ``rows`` cases, inside ``out_dir`` (workers write the
    files: the folder must be shared with the driver, as the part files' folder is), with
    :func:`shard_count` shards; removed on leaving, whatever happened. None when not
    ``enabled`` (the run checks no ids)."""
    if not enabled:
        yield None
        return
    remove_spill(out_dir)  # a killed run's leftovers
    spill = SpillTo(str(Path(out_dir) / SPILL_DIR), shard_count(rows))
    Path(spill.folder).mkdir()
    try:
        yield spill
    finally:
        remove_spill(out_dir)


def resolve_duplicates(
    parts: Sequence[Partition], facts: Sequence[HasIds], shards: int | None = None
) -> tuple[dict[int, KnownDuplicates], dict[int, np.ndarray]]:
    """Repeated case ids over the whole dataset, in partition order, then row: for each
    tracked partition, its rows that repeat an earlier id (with the id's first global row),
    and its rows that are the first of their id in the partition although the id came in an
    earlier partition (what a pass 1 that counted per partition must take back).

    One shard at a time (``shards``: the number of the spilled fingerprints, else
    :func:`shard_count` of the ids, or as given): ids of different shards never collide,
    and within a shard the partitions come in order and each one's rows in order, so every
    id's first row is the one a single tracker over all rows finds. Memory: one shard's
    tracker, whatever the number of cases."""
    by_index = {f.index: f for f in facts}
    ordered = [p for p in sorted(parts, key=lambda p: p.index) if by_index[p.index].tracked]
    if not ordered:
        return {}, {}
    for part in ordered:
        got = by_index[part.index]
        n = got.spill.count if got.spill is not None else len(got.fingerprints)
        if n != part.rows:
            raise DrgkitError(
                f"{part.name}: pass 1 read {n} case ids, the partition has {part.rows} rows"
            )
    spilled = {by_index[p.index].spill.shards for p in ordered if by_index[p.index].spill}
    if len(spilled) > 1:
        raise DrgkitError(f"pass 1 spilled the case ids in different numbers of shards: {spilled}")
    if spilled:
        shards = spilled.pop()
    elif shards is None:
        shards = shard_count(sum(p.rows for p in ordered))
    sources = [
        by_index[p.index].spill or _InMemory(by_index[p.index].fingerprints, shards)
        for p in ordered
    ]
    found_rows: dict[int, list[np.ndarray]] = {p.index: [] for p in ordered}
    found_first: dict[int, list[np.ndarray]] = {p.index: [] for p in ordered}
    for s in range(shards):
        size = sum(int(src.offsets[s + 1] - src.offsets[s]) for src in sources)
        table = IdTracker.for_rows(size)
        # the tracker numbers the shard's ids 0, 1, … in the order it meets them; this maps
        # those numbers back to global rows
        global_rows = np.empty(size, dtype=np.int64)
        at = 0
        for part, src in zip(ordered, sources, strict=True):
            fp, rows = src.shard(s)
            m = len(rows)
            global_rows[at : at + m] = rows
            global_rows[at : at + m] += part.start
            first = table.add(fp, at)
            hit = np.flatnonzero(first >= 0)
            if len(hit):
                found_rows[part.index].append(rows[hit].astype(np.int64))
                found_first[part.index].append(global_rows[first[hit]])
            at += m
        del table, global_rows
    duplicates: dict[int, KnownDuplicates] = {}
    corrections: dict[int, np.ndarray] = {}
    for part in ordered:
        rows = np.concatenate([np.zeros(0, np.int64), *found_rows[part.index]])
        firsts = np.concatenate([np.zeros(0, np.int64), *found_first[part.index]])
        order = np.argsort(rows, kind="stable")
        rows, firsts = rows[order], firsts[order]
        duplicates[part.index] = KnownDuplicates(part.start, rows, firsts)
        earlier = firsts < part.start
        if earlier.any():
            # the first row of each such id inside this partition was counted in pass 1
            _u, where = np.unique(firsts[earlier], return_index=True)
            corrections[part.index] = np.sort(rows[earlier][where])
    return duplicates, corrections
