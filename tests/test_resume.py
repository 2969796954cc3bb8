"""Resumable partitioned settlement: a manifest in the output folder, parts written atomically,
``settle_dataset(..., resume=True)`` finishing an interrupted run byte for byte."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import drgkit
from drgkit import _demo
from drgkit._runners import MANIFEST_NAME, LocalRunner, Manifest, ManifestError, PartWriter
from drgkit.errors import DrgkitError
from drgkit.settlement import Partial, Reduced, _bulk, settle
from drgkit.settlement._bulk import SettleContext, settle_dataset
from drgkit.settlement._passes import KnownDuplicates, Reduction

REPO = Path(__file__).resolve().parents[1]
DRGKIT = Path("/work/main/.venv/bin/drgkit")


def write_dataset(folder: Path, n: int, parts: int, seed: int = 7) -> Path:
    table = _demo.generate_cases(n, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-n // parts)
    for k in range(parts):
        pq.write_table(table.slice(k * size, size), folder / f"cases-{k:03d}.parquet")
    return folder


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("in"), 3000, 6)


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("ref") / "out"
    settle_dataset(dataset, out, "demo-points", batch_rows=700)
    return folder_bytes(out)


class FailingRunner(LocalRunner):
    """Runs pass 2 for ``parts`` partitions, then fails as a crash would."""

    def __init__(self, parts: int) -> None:
        self.parts = parts

    def map(self, fn, *iterables, done=None):
        if fn is not _bulk.settle_partition:
            return super().map(fn, *iterables, done=done)
        out = []
        for args in list(zip(*iterables, strict=True))[: self.parts]:
            out.append(fn(*args))
            if done is not None:
                done(out[-1])
        raise KeyboardInterrupt("killed")


class CountingRunner(LocalRunner):
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def map(self, fn, *iterables, done=None):
        args = [list(it) for it in iterables]
        self.calls.append((fn.__name__, len(args[0]) if args else 0))
        return super().map(fn, *args, done=done)


# --------------------------------------------------------------------------- the manifest


def test_manifest_records_first_pass_and_parts_exactly(dataset, tmp_path, reference) -> None:
    out = tmp_path / "out"
    result = settle_dataset(dataset, out, "demo-points")
    doc = json.loads((out / MANIFEST_NAME).read_text())
    assert doc["identity"]["drgkit_version"] == drgkit.__version__
    policy = SettleContext("demo-points").resources().policy
    assert doc["identity"]["policy_hash"] == policy.content_hash
    assert [f["path"] for f in doc["identity"]["inputs"]] == [
        str(p) for p in sorted(dataset.iterdir())
    ]
    assert all(f["size"] > 0 and len(f["footer_sha256"]) == 64 for f in doc["identity"]["inputs"])
    # point values exactly, as strings
    assert doc["first_pass"]["point_values"] == {k: str(v) for k, v in result.point_values.items()}
    assert Decimal(doc["first_pass"]["point_values"]["all"]) == result.point_values["all"]
    dups = sum(len(d["rows"]) for d in doc["first_pass"]["duplicates"].values())
    assert dups == result.duplicates
    for k, path in enumerate(result.paths):
        record = doc["parts"][str(k)]
        assert record["name"] == Path(path).name
        assert record["rows"] == pq.read_metadata(path).num_rows
        import hashlib

        assert record["sha256"] == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert folder_bytes(out) == reference  # batch size changes nothing, manifest included
    # Arrow's dataset discovery skips "_" files: the folder still reads as the part files
    assert pq.read_table(out).to_pylist() == result.table().to_pylist()


def test_part_writer_leaves_nothing_on_error(tmp_path) -> None:
    schema = pa.schema([("x", pa.int64())])
    target = tmp_path / "part-00000.parquet"
    with pytest.raises(RuntimeError, match="boom"), PartWriter(target, schema, rows=4) as w:
        w.write(pa.record_batch([pa.array(range(10))], schema=schema))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with PartWriter(target, schema, rows=4) as w:
        w.write(pa.record_batch([pa.array(range(10))], schema=schema))
    assert pq.read_table(target).column("x").to_pylist() == list(range(10))
    assert [rg.num_rows for rg in map(pq.ParquetFile(target).metadata.row_group, range(3))] == [
        4,
        4,
        2,
    ]
    assert list(tmp_path.iterdir()) == [target]


# --------------------------------------------------------------------------- resume


@pytest.mark.parametrize("done", [0, 2, 5])
def test_resume_after_a_crash_is_byte_identical(dataset, tmp_path, reference, done) -> None:
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        settle_dataset(dataset, out, "demo-points", runner=FailingRunner(done))
    assert len(Manifest.read(out).parts) == done
    runner = CountingRunner()
    result = settle_dataset(dataset, out, "demo-points", runner=runner, resume=True)
    # the first pass is not run again, and only the missing parts are settled
    assert runner.calls == [("settle_partition", 6 - done)]
    assert folder_bytes(out) == reference
    assert result.rows == 3000
    assert result.table().to_pylist() == settle(dataset, "demo-points").to_pylist()


def test_resume_reuses_the_stored_first_pass(dataset, tmp_path, reference, monkeypatch) -> None:
    """The parts still to do are settled with the manifest's point value, not a new one."""
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        settle_dataset(dataset, out, "demo-points", runner=FailingRunner(3))
    path = out / MANIFEST_NAME
    doc = json.loads(path.read_text())
    doc["first_pass"]["point_values"]["all"] = "1.5"
    path.write_text(json.dumps(doc))
    given = settle_dataset(
        dataset, tmp_path / "given", "demo-points", reduced=Reduced({"all": Decimal("1.5")})
    )

    def no_first_pass(*args, **kwargs):
        raise AssertionError("pass 1 ran again")

    monkeypatch.setattr(_bulk, "partial_of_partition", no_first_pass)
    result = settle_dataset(dataset, out, "demo-points", resume=True)
    assert result.point_values == {"all": Decimal("1.5")}
    for k, p in enumerate(result.paths):
        name = Path(p).name
        if k < 3:
            assert Path(p).read_bytes() == reference[name]
        else:
            assert Path(p).read_bytes() == Path(given.paths[k]).read_bytes() != reference[name]


def test_resume_redoes_a_damaged_part_and_keeps_the_others(dataset, tmp_path, reference) -> None:
    out = tmp_path / "out"
    settle_dataset(dataset, out, "demo-points")
    damaged = out / "part-00002.parquet"
    damaged.write_bytes(damaged.read_bytes()[:-100])
    (out / "part-00004.parquet").unlink()
    (out / ".part-00005.parquet.abc.part").write_bytes(b"half")  # a killed writer's leftover
    before = {p.name: p.stat().st_ino for p in out.glob("part-*.parquet")}
    runner = CountingRunner()
    settle_dataset(dataset, out, "demo-points", runner=runner, resume=True)
    assert runner.calls == [("settle_partition", 2)]
    assert folder_bytes(out) == reference
    after = {p.name: p.stat().st_ino for p in out.glob("part-*.parquet")}
    kept = {n for n in before if n != "part-00002.parquet"}
    assert all(after[n] == before[n] for n in kept)  # verified parts are not rewritten
    assert after["part-00002.parquet"] != before["part-00002.parquet"]


def test_resume_refuses_changed_inputs_or_settings(dataset, tmp_path, monkeypatch) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for p in dataset.iterdir():
        (src / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        settle_dataset(src, out, "demo-points", runner=FailingRunner(1))
    with pytest.raises(ManifestError, match=r"points\.reserve|policy_hash"):
        settle_dataset(src, out, "demo-points", overrides={"points.reserve": "0.2"}, resume=True)
    with pytest.raises(ManifestError, match="options"):
        settle_dataset(src, out, "demo-points", keep=["los"], resume=True)
    monkeypatch.setattr(drgkit, "__version__", "99.0")
    with pytest.raises(ManifestError, match=r"drgkit_version.*99\.0"):
        settle_dataset(src, out, "demo-points", resume=True)
    monkeypatch.undo()
    changed = src / "cases-003.parquet"
    pq.write_table(pq.read_table(changed).slice(1), changed)
    with pytest.raises(ManifestError, match=r"input .*cases-003\.parquet changed"):
        settle_dataset(src, out, "demo-points", resume=True)
    (src / "cases-009.parquet").write_bytes((src / "cases-000.parquet").read_bytes())
    with pytest.raises(ManifestError, match=r"cases-009\.parquet is new") as info:
        settle_dataset(src, out, "demo-points", resume=True)
    assert isinstance(info.value, DrgkitError) and str(out / MANIFEST_NAME) in str(info.value)
    # the folder is as the failed run left it; a fresh run with overwrite replaces it
    fresh = settle_dataset(src, out, "demo-points", overwrite=True)
    assert fresh.rows == 3000 - 1 + 500


def test_without_resume_a_folder_with_parts_is_refused(dataset, tmp_path) -> None:
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        settle_dataset(dataset, out, "demo", runner=FailingRunner(2))
    with pytest.raises(DrgkitError, match="already holds 2 part"):
        settle_dataset(dataset, out, "demo")
    # resume without a manifest (a run killed before pass 1 ended) is a fresh run
    empty = tmp_path / "empty"
    empty.mkdir()
    assert settle_dataset(dataset, empty, "demo", resume=True).rows == 3000


def test_unreadable_manifest_is_a_clear_error(dataset, tmp_path) -> None:
    out = tmp_path / "out"
    settle_dataset(dataset, out, "demo")
    (out / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ManifestError, match="not a readable manifest"):
        settle_dataset(dataset, out, "demo", resume=True)


# --------------------------------------------------------------------------- SIGKILL


def _kill_at(proc: subprocess.Popen, out: Path, rng: random.Random, mode: str) -> None:
    """Kill ``proc`` with SIGKILL: after a random delay, once the manifest exists, or once
    some part files exist (then a little later), as ``mode`` says."""
    deadline = time.monotonic() + 60
    if mode == "parts":
        want = rng.randint(1, 10)
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(out.glob("part-*.parquet"))) >= want:
                break
            time.sleep(0.005)
    elif mode == "manifest":
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / MANIFEST_NAME).exists():
                break
            time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.05) if mode != "time" else rng.uniform(0.2, 2.5))
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def test_sigkill_at_random_points_then_resume_is_byte_identical(tmp_path) -> None:
    """A real ``drgkit settle --partitions`` killed with SIGKILL (seeded points: any time,
    right after the first pass, after some parts); the library resumes it (the CLI has no
    --resume yet) and the folder ends byte for byte as an uninterrupted run leaves it."""
    src = write_dataset(tmp_path / "in", 24000, 12, seed=3)
    ref = tmp_path / "ref"
    settle_dataset(src, ref, "demo-points", batch_rows=1000)
    reference = folder_bytes(ref)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = random.Random(20261204)
    killed = 0
    states = []
    modes = ["time", "manifest", "parts", "parts", "time", "parts"]
    for k, mode in enumerate(modes):
        out = tmp_path / f"out-{k}"
        proc = subprocess.Popen(
            [
                str(DRGKIT),
                "settle",
                str(src),
                "-p",
                "demo-points",
                "-o",
                str(out),
                "--partitions",
                "--batch-rows",
                "1000",
                "--threads",
                "1",
                "--silent",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _kill_at(proc, out, rng, mode)
        killed += proc.returncode == -signal.SIGKILL
        if proc.returncode not in (0, -signal.SIGKILL):
            pytest.fail(f"run {k} failed: {proc.stderr.read().decode()[-2000:]}")
        proc.stderr.close()
        done = sorted(out.glob("part-*.parquet")) if out.exists() else []
        for part in done:  # never a truncated file under a final name
            pq.read_metadata(part)
        states.append((mode, (out / MANIFEST_NAME).exists(), len(done)))
        settle_dataset(src, out, "demo-points", batch_rows=1000, resume=True)
        assert folder_bytes(out) == reference, (k, mode)
    assert killed >= 4, states
    # some runs were killed between parts, with the first pass already recorded
    assert any(manifest and 0 < parts < 12 for _m, manifest, parts in states), states


def test_resume_on_dask_records_parts_as_they_finish(dataset, tmp_path, reference) -> None:
    pytest.importorskip("distributed")
    from drgkit._runners import DaskRunner

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        settle_dataset(dataset, out, "demo-points", runner=FailingRunner(2))
    with DaskRunner(n_workers=2, threads_per_worker=1, processes=False) as runner:
        settle_dataset(dataset, out, "demo-points", runner=runner, resume=True)
    assert folder_bytes(out) == reference
    assert sorted(Manifest.read(out).parts) == list(range(6))


@settings(max_examples=40, deadline=None)
@given(
    values=st.dictionaries(
        st.text(min_size=1, max_size=5),
        st.decimals(allow_nan=False, allow_infinity=False, places=None),
        max_size=4,
    ),
    points=st.dictionaries(st.text(max_size=4), st.integers(-(10**40), 10**40), max_size=3),
    dup_rows=st.lists(st.integers(0, 10**12), max_size=20, unique=True),
)
def test_first_pass_reads_back_exactly(values, points, dup_rows) -> None:
    """Point values keep every digit and exponent, sums every integer, through JSON."""
    rows = np.array(sorted(dup_rows), np.int64)
    reduction = Reduction(
        Reduced(values, Partial(points, {"x": -1}, 7)),
        {3: KnownDuplicates(10, rows, rows // 2)},
        {3: rows[:1]},
    )
    doc = json.loads(json.dumps(_bulk._first_pass_json(reduction)))
    back = _bulk._reduction_of(doc)
    assert {k: (v, str(v)) for k, v in back.reduced.point_values.items()} == {
        k: (v, str(v)) for k, v in values.items()
    }
    assert back.reduced.totals == reduction.reduced.totals
    assert back.duplicates[3].rows.tolist() == rows.tolist()
    assert back.duplicates[3].first.tolist() == (rows // 2).tolist()
    assert back.duplicates[3].start == 10 and back.corrections[3].tolist() == rows[:1].tolist()
