"""The dataset-wide duplicate case-id check of a partitioned run (settlement and grouping share
it: drgkit._duplicates), resolved shard by shard from fingerprints spilled to files: the same
rows as one tracker over the whole dataset (and as a plain dict of the ids), the same bytes,
and resumable."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drgkit import _demo, _duplicates, group
from drgkit._codes import fingerprints
from drgkit._duplicates import (
    SPILL_DIR,
    IdSpill,
    PartitionIds,
    SpillTo,
    by_shard,
    resolve_duplicates,
    shard_count,
    shard_of,
)
from drgkit._runners import Manifest
from drgkit.errors import DrgkitError
from drgkit.grouping import _stream
from drgkit.grouping._stream import group_dataset
from drgkit.settlement import _bulk, _passes, settle
from drgkit.settlement._bulk import (
    DaskRunner,
    LocalRunner,
    SettleContext,
    partial_of_partition,
    partitions_of,
    settle_dataset,
)

N = 3000
CUTS = (0, 500, 500, 1200, 2000, 3000)  # one empty partition


def repeated_ids(n: int = N, seed: int = 5) -> pa.Table:
    """Demo cases whose ids repeat inside and across partitions (some three times or more),
    with two missing ids and an empty one."""
    table = _demo.generate_cases(n, seed=seed)
    ids = table.column("case_id").to_pylist()
    rng = random.Random(seed)
    for row in rng.sample(range(1, n), 250):
        ids[row] = ids[rng.randrange(row)]  # an earlier row's id, near or far
    ids[501] = ids[500] = ids[499]  # across a partition boundary, three times
    ids[10], ids[11], ids[2999] = None, "", None
    return table.set_column(
        table.schema.get_field_index("case_id"), "case_id", pa.array(ids, pa.string())
    )


def expected(ids: list[str | None]) -> tuple[dict[int, dict[int, int]], dict[int, list[int]]]:
    """Independently of any tracker: per partition, {local row: global first row} of its rows
    that repeat an earlier id, and the local rows pass 1 counted although their id came in an
    earlier partition (the first such row of each id)."""
    first: dict[str, int] = {}
    repeats: dict[int, dict[int, int]] = {}
    corrections: dict[int, list[int]] = {}
    for k, (a, b) in enumerate(itertools.pairwise(CUTS)):
        repeats[k] = {}
        seen_here: set[str] = set()
        for row in range(a, b):
            case_id = ids[row]
            if case_id is None or case_id == "":  # an empty id is no id
                continue
            if case_id in first:
                repeats[k][row - a] = first[case_id]
                if first[case_id] < a and case_id not in seen_here:
                    corrections.setdefault(k, []).append(row - a)
            else:
                first[case_id] = row
            seen_here.add(case_id)
    return repeats, corrections


def as_plain(duplicates, corrections) -> tuple[dict, dict]:
    return (
        {
            k: dict(zip(d.rows.tolist(), d.first.tolist(), strict=True))
            for k, d in duplicates.items()
        },
        {k: v.tolist() for k, v in corrections.items()},
    )


@pytest.fixture(scope="module")
def cases() -> pa.Table:
    return repeated_ids()


@pytest.fixture(scope="module")
def dataset(cases, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cases")
    for k, (a, b) in enumerate(itertools.pairwise(CUTS)):
        pq.write_table(cases.slice(a, b - a), folder / f"cases-{k:03d}.parquet")
    return folder


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory) -> Path:
    """A run with one shard (the default for 3,000 rows)."""
    out = tmp_path_factory.mktemp("ref") / "out"
    settle_dataset(dataset, out, "demo-points")
    return out


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --------------------------------------------------------------------------- shards


def test_shard_count_keeps_each_shard_small() -> None:
    assert shard_count(0) == shard_count(3_000_000) == 1
    assert shard_count(3_000_001) == 2
    assert shard_count(100_000_000) == 64  # 1.6M ids a shard: a 96 MiB tracker
    assert shard_count(N, per_shard=400) == 8
    with pytest.raises(ValueError, match="power of two"):
        shard_of(np.zeros((3, 2), np.uint64), 6)


def test_by_shard_keeps_row_order_within_each_shard(cases) -> None:
    fp = fingerprints(cases.column("case_id").combine_chunks())
    key = shard_of(fp, 8)
    assert len(np.unique(key)) == 8  # the ids spread over every shard
    sorted_fp, rows, offsets = by_shard(fp, 8)
    assert offsets[0] == 0 and offsets[-1] == len(fp)
    for s in range(8):
        a, b = offsets[s], offsets[s + 1]
        assert rows[a:b].tolist() == np.flatnonzero(key == s).tolist()
        assert np.array_equal(sorted_fp[a:b], fp[key == s])


def test_spill_file_reads_back_each_shard(cases, tmp_path) -> None:
    fp = fingerprints(cases.column("case_id").combine_chunks())
    spill = IdSpill.write(fp, 3, SpillTo(str(tmp_path), 8))
    assert Path(spill.path).name == "ids-00003.bin"
    assert Path(spill.path).stat().st_size == 20 * len(fp)  # 16 bytes of hashes, 4 of row
    assert [p.name for p in tmp_path.iterdir()] == ["ids-00003.bin"]  # no temporary left
    key = shard_of(fp, 8)
    for s in range(8):
        got_fp, got_rows = spill.shard(s)
        assert got_rows.tolist() == np.flatnonzero(key == s).tolist()
        assert np.array_equal(got_fp, fp[key == s])


@pytest.mark.parametrize("shards", [1, 2, 8, 64])
def test_sharded_resolution_equals_one_tracker_and_a_dict(cases, dataset, shards) -> None:
    ctx = SettleContext("demo-points")
    parts = partitions_of(dataset)
    facts = [partial_of_partition(ctx, p) for p in parts]
    random.Random(shards).shuffle(facts)  # the driver orders them by partition itself
    want = expected(cases.column("case_id").to_pylist())
    got = as_plain(*resolve_duplicates(parts, facts, shards))
    assert got == want
    # the test data exercises what sharding could break: repeats in every shard, inside one
    # partition, across partitions, and ids seen three times or more
    repeats, corrections = want
    assert sum(len(r) for r in repeats.values()) > 200
    assert len(corrections) == 3 and sum(len(c) for c in corrections.values()) > 50
    fp = fingerprints(cases.column("case_id").combine_chunks())
    rows = [a + r for k, (a, _b) in enumerate(itertools.pairwise(CUTS)) for r in repeats[k]]
    assert len(np.unique(shard_of(fp[rows], 8))) == 8


def test_spilled_facts_resolve_like_facts_in_memory(cases, dataset, tmp_path) -> None:
    ctx = SettleContext("demo-points")
    parts = partitions_of(dataset)
    spill = SpillTo(str(tmp_path), 8)
    facts = [partial_of_partition(ctx, p, None, spill) for p in parts]
    assert all(f.fingerprints is None and f.spill.shards == 8 for f in facts)
    in_memory = [partial_of_partition(ctx, p) for p in parts]
    assert [f.partial for f in facts] == [f.partial for f in in_memory]
    got = as_plain(*resolve_duplicates(parts, facts))
    assert got == as_plain(*resolve_duplicates(parts, in_memory, 1))
    assert got == expected(cases.column("case_id").to_pylist())


def test_spill_of_the_wrong_length_is_an_error(dataset, tmp_path) -> None:
    ctx = SettleContext("demo")
    parts = partitions_of(dataset)
    spill = SpillTo(str(tmp_path), 4)
    facts = [partial_of_partition(ctx, p, None, spill) for p in parts]
    short = IdSpill.write(np.zeros((5, 2), np.uint64), 9, spill)
    facts[2] = _passes.PartitionFacts(2, parts[2].rows, None, None, short)
    with pytest.raises(DrgkitError, match=r"cases-002\.parquet.*read 5 case ids.*700 rows"):
        resolve_duplicates(parts, facts)


# --------------------------------------------------------------------------- end to end


class Watching(LocalRunner):
    """Keeps what pass 1 (settlement's, or ``pass1``) returns to the driver, and the spill
    folder's files meanwhile (the spill is pass 1's last argument)."""

    def __init__(self, pass1=_bulk.partial_of_partition) -> None:
        self.pass1 = pass1
        self.facts: list = []
        self.spilled: list[str] = []

    def map(self, fn, *iterables, done=None):
        out = super().map(fn, *iterables, done=done)
        if fn is self.pass1:
            self.facts = out
            spill = iterables[-1][0]
            self.spilled = sorted(p.name for p in Path(spill.folder).iterdir()) if spill else []
        return out


@pytest.mark.parametrize("policy", ["demo", "demo-points"])
def test_tiny_shards_give_the_same_bytes(
    cases, dataset, tmp_path, monkeypatch, policy, reference
) -> None:
    base = tmp_path / "base"
    settle_dataset(dataset, base, policy)
    monkeypatch.setattr(_duplicates, "SHARD_IDS", 400)
    runner = Watching()
    out = tmp_path / "sharded"
    result = settle_dataset(dataset, out, policy, runner=runner)
    # the driver got no fingerprints, only the files' shard offsets
    assert all(f.fingerprints is None and f.spill.shards == 8 for f in runner.facts)
    assert runner.spilled == [f"ids-{k:05d}.bin" for k in range(len(CUTS) - 1)]
    assert not (out / SPILL_DIR).exists()  # removed after the first pass
    assert folder_bytes(out) == folder_bytes(base)  # the manifest too
    assert result.table().to_pylist() == settle(cases, policy).to_pylist()
    assert result.duplicates == sum(
        len(r) for r in expected(cases["case_id"].to_pylist())[0].values()
    )
    if policy == "demo-points":
        assert folder_bytes(out) == folder_bytes(reference)


def test_no_duplicate_check_spills_nothing(dataset, tmp_path) -> None:
    runner = Watching()
    settle_dataset(dataset, tmp_path / "out", "demo", runner=runner, check_duplicates=False)
    assert runner.spilled == []
    assert all(f.fingerprints is None and f.spill is None for f in runner.facts)


class CrashInPass2(LocalRunner):
    def map(self, fn, *iterables, done=None):
        if fn is not _bulk.settle_partition:
            return super().map(fn, *iterables, done=done)
        args = list(zip(*iterables, strict=True))
        done(fn(*args[0]))
        done(fn(*args[1]))
        raise KeyboardInterrupt("killed")


class CrashInPass1(LocalRunner):
    def map(self, fn, *iterables, done=None):
        args = list(zip(*iterables, strict=True))
        fn(*args[0])
        fn(*args[2])
        raise KeyboardInterrupt("killed")


def test_resume_with_shards_is_byte_identical(dataset, tmp_path, monkeypatch, reference) -> None:
    monkeypatch.setattr(_duplicates, "SHARD_IDS", 400)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        settle_dataset(dataset, out, "demo-points", runner=CrashInPass2())
    assert len(Manifest.read(out).parts) == 2
    # what a SIGKILL during a first pass leaves behind is cleared when the run resumes
    (out / SPILL_DIR).mkdir()
    (out / SPILL_DIR / "ids-00001.bin").write_bytes(b"\0" * 40)
    settle_dataset(dataset, out, "demo-points", resume=True)
    assert folder_bytes(out) == folder_bytes(reference)


def test_the_settlement_modules_keep_their_names() -> None:
    # one implementation, still importable where callers found it
    assert _passes.resolve_duplicates is resolve_duplicates
    assert _passes.KnownDuplicates is _duplicates.KnownDuplicates
    assert _bulk.KnownDuplicates is _duplicates.KnownDuplicates
    assert _passes.IdSpill is IdSpill and _passes.SPILL_DIR == SPILL_DIR


# --------------------------------------------------------------------------- group_dataset


def duplicate_rows(cases: pa.Table) -> list[int]:
    """The global rows that repeat an earlier id, by a dict of the ids (no tracker)."""
    repeats = expected(cases["case_id"].to_pylist())[0]
    return sorted(a + r for k, (a, _b) in enumerate(itertools.pairwise(CUTS)) for r in repeats[k])


def reasons_of(paths) -> list:
    return pa.concat_tables(pq.read_table(p) for p in paths).column("reason").to_pylist()


@pytest.fixture(scope="module")
def grouped(dataset, tmp_path_factory) -> Path:
    """group_dataset with one shard (the default for 3,000 rows)."""
    out = tmp_path_factory.mktemp("grouped") / "out"
    group_dataset(dataset, out, "demo_2024")
    return out


def test_group_dataset_driver_gets_no_ids_and_tiny_shards_change_nothing(
    cases, dataset, tmp_path, monkeypatch, grouped
) -> None:
    monkeypatch.setattr(_duplicates, "SHARD_IDS", 400)
    out = tmp_path / "sharded"
    # what a killed run's pass 1 leaves behind is cleared first
    (out / SPILL_DIR).mkdir(parents=True)
    (out / SPILL_DIR / "ids-00001.bin").write_bytes(b"\0" * 40)
    runner = Watching(_stream._id_fingerprints)
    result = group_dataset(dataset, out, "demo_2024", runner=runner)
    # the driver got no fingerprints, only the files' shard offsets
    assert len(runner.facts) == len(CUTS) - 1
    assert all(isinstance(i, PartitionIds) for i in runner.facts)
    assert all(i.fingerprints is None and i.spill.shards == 8 for i in runner.facts)
    assert runner.spilled == [f"ids-{k:05d}.bin" for k in range(len(CUTS) - 1)]
    assert not (out / SPILL_DIR).exists()  # removed after the first pass
    assert folder_bytes(out) == folder_bytes(grouped)  # K=8 writes what K=1 writes
    whole = group(cases, "demo_2024")
    parts = pa.concat_tables(pq.read_table(p) for p in result.paths)
    assert parts.to_pylist() == whole.to_pylist()  # and what one process gives
    reasons = parts.column("reason").to_pylist()
    assert [i for i, r in enumerate(reasons) if r == "duplicate_case_id"] == duplicate_rows(cases)
    assert result.summary.by_reason["duplicate_case_id"] == len(duplicate_rows(cases)) > 200


def test_group_dataset_without_the_check_spills_nothing(dataset, tmp_path) -> None:
    runner = Watching(_stream._id_fingerprints)
    result = group_dataset(
        dataset, tmp_path / "out", "demo_2024", runner=runner, check_duplicates=False
    )
    assert runner.facts == [] and runner.spilled == []
    assert "duplicate_case_id" not in reasons_of(result.paths)


# --------------------------------------------------------------------------- both jobs

#: each partitioned job that shares the check: how to run it, and its one-shard fixture
JOBS = {
    "settle": (lambda src, out, **kw: settle_dataset(src, out, "demo-points", **kw), "reference"),
    "group": (lambda src, out, **kw: group_dataset(src, out, "demo_2024", **kw), "grouped"),
}


@pytest.mark.parametrize("job", sorted(JOBS))
def test_a_crash_in_pass_1_leaves_no_spill(dataset, tmp_path, request, job) -> None:
    run, base = JOBS[job]
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run(dataset, out, runner=CrashInPass1())
    assert not (out / SPILL_DIR).exists()
    assert Manifest.read(out) is None
    # settlement: resume without a manifest is a fresh run
    run(dataset, out, **({"resume": True} if job == "settle" else {}))
    assert folder_bytes(out) == folder_bytes(request.getfixturevalue(base))


@pytest.mark.parametrize("job", sorted(JOBS))
def test_dask_workers_spill_the_same(dataset, tmp_path, monkeypatch, request, job) -> None:
    pytest.importorskip("distributed")
    run, base = JOBS[job]
    monkeypatch.setattr(_duplicates, "SHARD_IDS", 400)
    with DaskRunner(n_workers=2, threads_per_worker=1, processes=False) as runner:
        run(dataset, tmp_path / "out", runner=runner)
    assert folder_bytes(tmp_path / "out") == folder_bytes(request.getfixturevalue(base))
