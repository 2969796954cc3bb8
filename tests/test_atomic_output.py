"""Outputs are atomic: a run that fails midway leaves the old file (or none), never a part."""

from __future__ import annotations

import pyarrow as pa
import pytest

from drgkit._write import open_writer


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
    from drgkit.grouping import _stream

    real = _stream.group_batches

    def broken(*args, **kwargs):
        for k, batch in enumerate(real(*args, **kwargs)):
            if k == 1:
                raise OSError("No space left on device")
            yield batch

    monkeypatch.setattr(_stream, "group_batches", broken)
    cases = tmp_path / "cases.csv"
    rows = ["case_id,sex,age,diagnoses,procedures"]
    rows += [f"{i},1,40,K35.800x001," for i in range(50)]
    cases.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out.parquet"
    with pytest.raises(OSError):
        drgkit.group_file(cases, out, "demo_2024", batch_rows=10)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cases.csv"]


# ---------------------------------------------------------------- issue 12: real processes

import errno  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pyarrow.parquet as pq  # noqa: E402

import drgkit  # noqa: E402
from drgkit._write import atomic_output  # noqa: E402
from drgkit.errors import CaseDataError, DrgkitError, OutputError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DRGKIT = Path(sys.executable).with_name("drgkit")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> Path:
    # ~34 MB: big enough that the old streaming reader was still reading ahead (in a
    # background thread) when an error was raised
    path = tmp_path_factory.mktemp("big") / "cases.csv"
    pad = "x" * 120
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("case_id,hospital_id,sex,age,diagnoses,procedures,total_cost,note\n")
        for i in range(200_000):
            fh.write(f'"c{i}","H1","1","40","K35.800x001|I10.x00x004","","1234.50","{pad}"\n')
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["group", "-r", "demo_2024", "--keep", "nosuch"],
        ["group", "-r", "demo_2024", "--layout", "nosuch"],
        ["group", "-r", "demo_2024", "--map", "diagnoses=nosuch"],
        ["settle", "-r", "demo_2024", "-p", "demo", "--keep", "nosuch"],
    ],
    ids=["keep", "layout", "map", "settle-keep"],
)
def test_a_usage_error_on_a_large_csv_exits_cleanly(big_csv: Path, tmp_path: Path, args):
    out = tmp_path / "out.csv"
    proc = subprocess.run(
        [str(DRGKIT), args[0], str(big_csv), "-o", str(out), *args[1:]],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert "Fatal Python error" not in proc.stderr
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith("Error:") or "\nError:" in proc.stderr, proc.stderr[-2000:]
    assert not out.exists()


def test_sigkill_midway_leaves_no_output_file(big_csv: Path, tmp_path: Path):
    out = tmp_path / "out.csv"
    proc = subprocess.Popen(
        [
            str(DRGKIT),
            "group",
            str(big_csv),
            "-r",
            "demo_2024",
            "-o",
            str(out),
            "--batch-rows",
            "5000",
        ],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        part = None
        while time.monotonic() < deadline and proc.poll() is None:
            parts = [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
            if parts and parts[0].stat().st_size > 200_000:  # writing has started
                part = parts[0]
                break
            time.sleep(0.02)
        assert part is not None, "the run never started writing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()  # at most the hidden .part file is left, never out.csv


def test_an_error_after_writing_started_leaves_no_file(big_csv: Path, tmp_path: Path):
    import gzip

    data = gzip.compress(big_csv.read_bytes(), compresslevel=1)
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "out.csv"
    proc = subprocess.run(
        [str(DRGKIT), "group", str(cut), "-r", "demo_2024", "-o", str(out), "--batch-rows", "5000"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "gzip" in proc.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.csv.gz"]


# ---------------------------------------------------------------- write failures


def _small_csv(tmp_path: Path) -> Path:
    cases = tmp_path / "cases.csv"
    cases.write_text(
        "case_id,sex,age,diagnoses,procedures\n"
        + "".join(f"{i},1,40,K35.800x001,\n" for i in range(30)),
        encoding="utf-8",
    )
    return cases


def test_a_full_disk_is_one_drgkit_error_and_leaves_nothing(tmp_path, monkeypatch):
    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    cases = _small_csv(tmp_path)
    out = tmp_path / "out.parquet"
    with pytest.raises(OutputError, match="No space left on device") as info:
        drgkit.group_file(cases, out, "demo_2024", batch_rows=10)
    assert isinstance(info.value, DrgkitError) and str(out) in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cases.csv"]


@pytest.mark.parametrize("where", ["folder", "under-a-file"])
def test_an_unwritable_output_path_is_one_drgkit_error(tmp_path, where):
    cases = _small_csv(tmp_path)
    if where == "folder":
        out = tmp_path / "taken"
        out.mkdir()
    else:
        out = cases / "out.csv"  # a path below a file
    with pytest.raises(DrgkitError):
        drgkit.group_file(cases, out, "demo_2024")
    assert cases.read_text(encoding="utf-8").startswith("case_id")


def test_the_cli_reports_a_full_disk_in_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from drgkit.cli import cli

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    cases = _small_csv(tmp_path)
    result = CliRunner().invoke(
        cli, ["group", str(cases), "-r", "demo_2024", "-o", str(tmp_path / "out.parquet")]
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)  # a handled exit, not a crash
    assert "No space left on device" in result.output
    assert "Traceback" not in result.output


def test_a_device_or_pipe_target_is_written_through_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    with atomic_output(fifo) as target:
        target.write_bytes(b"hello\n")
    reader.join(timeout=10)
    assert got == [b"hello\n"]
    assert fifo.is_fifo()  # not renamed over by a regular file
    with pytest.raises(CaseDataError):
        drgkit.group_file(_small_csv(tmp_path), tmp_path / "no" / "out.csv", "demo_2024")
