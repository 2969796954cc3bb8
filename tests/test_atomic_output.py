"""Outputs are atomic: a run that fails midway leaves the old file (or none), never a part."""

from __future__ import annotations

import pyarrow as pa
import pytest

from drgkit._io import open_writer


def _batches(fail_after: int):
    for k in range(5):
        if k == fail_after:
            raise RuntimeError("disk on fire")
        yield pa.RecordBatch.from_pydict({"case_id": [f"{k}-{i}" for i in range(3)]})


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_failed_run_leaves_no_file_and_no_temporary(tmp_path, suffix):
    out = tmp_path / f"out.{suffix}"
    with pytest.raises(RuntimeError), open_writer(out) as writer:
        for batch in _batches(fail_after=3):
            writer.write(batch)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_failed_run_keeps_the_previous_file(tmp_path, suffix):
    out = tmp_path / f"out.{suffix}"
    with open_writer(out) as writer:
        writer.write(pa.RecordBatch.from_pydict({"case_id": ["old"]}))
    before = out.read_bytes()
    with pytest.raises(RuntimeError), open_writer(out) as writer:
        for batch in _batches(fail_after=2):
            writer.write(batch)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_group_file_failing_midway_writes_nothing(tmp_path, monkeypatch):
    import drgkit
    from drgkit.grouping import _group

    real = _group.group_batches

    def broken(*args, **kwargs):
        for k, batch in enumerate(real(*args, **kwargs)):
            if k == 1:
                raise OSError("No space left on device")
            yield batch

    monkeypatch.setattr(_group, "group_batches", broken)
    cases = tmp_path / "cases.csv"
    rows = ["case_id,sex,age,diagnoses,procedures"]
    rows += [f"{i},1,40,K35.800x001," for i in range(50)]
    cases.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out.parquet"
    with pytest.raises(OSError):
        drgkit.group_file(cases, out, "demo_2024", batch_rows=10)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cases.csv"]
