"""The pipelined grouping path (read ahead, write behind) gives the plain path's bytes.

Reading the next batch and writing the previous one in background threads must change
nothing: the same output bytes (CSV and Parquet), the same rejects file, the same row
accounting, errors raised where they happen.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import drgkit
from drgkit import _demo
from drgkit._io import prefetch
from drgkit.grouping import group_file


@pytest.fixture(scope="module")
def messy_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 demo cases as CSV with what a real export has: unreadable lines, blank lines, a
    repeated case id, an empty id."""
    folder = tmp_path_factory.mktemp("messy")
    table = _demo.generate_cases(400, seed=5, bad_fraction=0.0)  # only the damage below
    text = table.select(["case_id", "sex", "age", "age_days", "los", "diagnoses", "procedures"])
    for name in ("diagnoses", "procedures"):
        i = text.schema.get_field_index(name)
        text = text.set_column(i, name, pc.binary_join(text.column(name), "|"))
    path = folder / "cases.csv"
    pacsv.write_csv(text, path)
    lines = path.read_text(encoding="utf-8").splitlines()
    first = lines[1]
    lines[50] = "too,few,fields"  # malformed: field count
    lines[120] = ""  # blank
    lines[121] = '"unclosed,1,40,0,3,I21.000,'  # malformed: open quote
    lines[200] = first  # a repeated case id
    lines[260] = "," + lines[260].split(",", 1)[1]  # an empty case id
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(src: Path, out: Path, pipeline: bool, **options) -> drgkit.GroupSummary:
    return group_file(src, out, "demo_2024", pipeline=pipeline, batch_rows=37, **options)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("with_rejects", [False, True])
def test_pipelined_csv_input_gives_the_plain_bytes_and_accounting(
    messy_csv: Path, tmp_path: Path, suffix: str, with_rejects: bool
) -> None:
    runs = {}
    for pipeline in (False, True):
        out = tmp_path / f"out-{pipeline}{suffix}"
        rejects = tmp_path / f"rejects-{pipeline}.csv" if with_rejects else None
        summary = _run(messy_csv, out, pipeline, rejects=rejects)
        runs[pipeline] = (
            out.read_bytes(),
            rejects.read_bytes() if rejects else None,
            summary,
        )
    plain, piped = runs[False], runs[True]
    assert piped[0] == plain[0]
    assert piped[1] == plain[1]
    a, b = plain[2], piped[2]
    assert (b.rows_in, b.rows_out, b.rows_rejected, b.blank_lines) == (
        a.rows_in,
        a.rows_out,
        a.rows_rejected,
        a.blank_lines,
    )
    assert (b.by_status, b.by_reason, b.by_drg) == (a.by_status, a.by_reason, a.by_drg)
    # the data really had what the test is about: 400 lines, 1 blank, 2 unreadable
    assert a.rows_in == 399 and a.blank_lines == 1
    assert a.rows_rejected == (2 if with_rejects else 0)
    assert a.rows_out == 399 - a.rows_rejected
    assert a.by_reason["duplicate_case_id"] == 1 and a.by_reason["case_id_missing"] == 1


def test_pipelined_parquet_input_gives_the_plain_bytes(messy_csv: Path, tmp_path: Path) -> None:
    src = tmp_path / "cases.parquet"
    pq.write_table(_demo.generate_cases(300, seed=9), src, row_group_size=50)
    outs = []
    for pipeline in (False, True):
        out = tmp_path / f"out-{pipeline}.parquet"
        _run(src, out, pipeline)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert pq.read_metadata(tmp_path / "out-True.parquet").num_rows == 300


def test_prefetch_keeps_order_and_raises_where_the_source_failed() -> None:
    def source():
        yield from range(5)
        raise ValueError("damaged after 5")

    seen = []
    with pytest.raises(ValueError, match="damaged after 5"):
        for item in prefetch(source(), depth=2):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_prefetch_closed_early_closes_its_source() -> None:
    closed = []

    def source():
        try:
            yield from range(1000)
        finally:
            closed.append(True)

    stream = prefetch(source(), depth=2)
    assert [next(stream), next(stream)] == [0, 1]
    stream.close()
    assert closed == [True]


def test_a_write_error_behind_the_grouping_stops_the_run_and_leaves_no_output(
    messy_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drgkit import _write

    calls = []
    original = _write._Writer.write

    def failing(self, batch: pa.RecordBatch) -> None:
        calls.append(batch.num_rows)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(self.path))
        original(self, batch)

    monkeypatch.setattr(_write._Writer, "write", failing)
    out = tmp_path / "out.csv"
    with pytest.raises(OSError, match="No space left"):
        _run(messy_csv, out, True)
    assert not out.exists()
    assert len(calls) == 3  # nothing was written after the failure
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind either


# --------------------------------------------------------------------------- partitioned


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pa.Table]:
    """Three Parquet files of demo cases, with case ids repeated inside a file and across
    files, and the whole dataset as one table (in partition order)."""
    folder = tmp_path_factory.mktemp("dataset")
    table = _demo.generate_cases(900, seed=21, bad_fraction=0.0)
    ids = table.column("case_id").to_pylist()
    ids[10] = ids[3]  # a repeat inside the first file
    ids[450] = ids[5]  # a repeat in the second file of an id of the first
    ids[899] = ids[450]  # and again in the third
    table = table.set_column(0, "case_id", pa.array(ids, pa.string()))
    for k, start in enumerate((0, 300, 600)):
        pq.write_table(table.slice(start, 300), folder / f"cases-{k}.parquet", row_group_size=70)
    return folder, table


def _parts(folder: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted(folder.glob("part-*.parquet")))


def _plain(table: pa.Table) -> list[dict]:
    return [
        {k: (str(v) if v is not None else None) for k, v in row.items()}
        for row in table.to_pylist()
    ]


def test_group_dataset_holds_what_one_process_gives(dataset, tmp_path: Path) -> None:
    from drgkit.grouping._stream import group_dataset

    folder, table = dataset
    whole = drgkit.group(table, "demo_2024", keep=["hospital_id"])
    result = group_dataset(folder, tmp_path / "a", "demo_2024", keep=["hospital_id"])
    parts = _parts(tmp_path / "a")
    assert len(result.paths) == 3 and result.rows == 900 == parts.num_rows
    assert parts.schema == whole.schema
    assert _plain(parts) == _plain(whole)
    reasons = parts.column("reason").to_pylist()
    assert [i for i, r in enumerate(reasons) if r == "duplicate_case_id"] == [10, 450, 899]
    assert "row 6" in parts.column("detail")[450].as_py()  # the first row, dataset-wide
    assert result.summary.by_reason["duplicate_case_id"] == 3
    counts = {}
    for s in parts.column("status").to_pylist():
        counts[s] = counts.get(s, 0) + 1
    assert dict(result.summary.by_status) == counts
    # batch size and partitioning by row groups change no byte of a part
    group_dataset(folder, tmp_path / "b", "demo_2024", keep=["hospital_id"], batch_rows=17)
    for a, b in zip(
        sorted((tmp_path / "a").glob("part-*")),
        sorted((tmp_path / "b").glob("part-*")),
        strict=True,
    ):
        assert a.read_bytes() == b.read_bytes()


def test_group_cli_partitions_equals_the_single_file_run(dataset, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from drgkit.cli import cli

    _folder, table = dataset
    single = tmp_path / "single.parquet"
    whole = tmp_path / "whole.parquet"
    pq.write_table(table, whole, row_group_size=100)
    runner = CliRunner()
    done = runner.invoke(cli, ["group", str(whole), "-r", "demo_2024", "-o", str(single)])
    assert done.exit_code == 0, done.output
    done = runner.invoke(
        cli,
        ["group", str(whole), "-r", "demo_2024", "-o", str(tmp_path / "parts"), "--partitions"],
    )
    assert done.exit_code == 0, done.output
    assert "wrote 9 part files" in done.output  # one per row group of the single file
    assert _plain(_parts(tmp_path / "parts")) == _plain(pq.read_table(single))


def test_group_dataset_on_dask_writes_the_same_bytes(dataset, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from drgkit._runners import DaskRunner
    from drgkit.grouping._stream import group_dataset

    folder, _table = dataset
    local = group_dataset(folder, tmp_path / "local", "demo_2024")
    with DaskRunner(n_workers=2, threads_per_worker=1, processes=False) as runner:
        remote = group_dataset(folder, tmp_path / "dask", "demo_2024", runner=runner)
    assert [Path(p).name for p in remote.paths] == [Path(p).name for p in local.paths]
    for a, b in zip(local.paths, remote.paths, strict=True):
        assert Path(a).read_bytes() == Path(b).read_bytes()
    assert remote.summary.by_reason == local.summary.by_reason


def test_group_file_parquet_bytes_repeat_from_run_to_run(tmp_path: Path) -> None:
    """Many cases with the same specific detail text (here an implausible age): the detail
    dictionary holds each text once, and two runs write the same bytes (with the text once
    per case, the Parquet writer's bytes differed between runs)."""
    table = _demo.generate_cases(20_000, seed=3, bad_fraction=0.0)
    ages = pa.array(["-1" if k % 3 else "200" for k in range(table.num_rows)], pa.string())
    table = table.set_column(table.schema.get_field_index("age"), "age", ages)
    src = tmp_path / "cases.parquet"
    pq.write_table(table, src)
    outs = []
    for k in range(3):
        out = tmp_path / f"out-{k}.parquet"
        group_file(src, out, "demo_2024", batch_rows=10_000)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]
    detail = pq.read_table(tmp_path / "out-0.parquet").column("detail")
    assert detail.num_chunks == 2
    for chunk in detail.chunks:
        values = chunk.dictionary.to_pylist()
        assert len(values) == len(set(values))
    assert "age '-1' is not plausible" in detail[1].as_py()


# ----------------------------------------------------------- blocked split + lookup kernel


def _split_reference(texts, known: dict[str, int], seps: str, empty_is_one: bool, empty_id):
    """Per-row code ids and SUSPECT bits computed in plain Python, as the kernel should."""
    import re

    ws = " \t\r\n\v\f"
    ids: list[int] = []
    flags: list[int] = []
    lengths: list[int] = []
    for text in texts:
        t = "" if text is None else text.strip(ws)
        bits = 0
        if not t:
            pieces = [None] if empty_is_one else []
        else:
            pieces = [p.strip(ws) for p in re.split("[" + re.escape(seps) + "]", t)]
        for p in pieces:
            if p is None:
                ids.append(empty_id)
                continue
            ident = known.get(p, -1)
            ids.append(ident)
            if ident < 0:
                for k, c in enumerate(p):
                    if c == ";":
                        bits |= 1
                    elif c == "/":
                        bits |= 2
                    elif c in ws:
                        bits |= 4
                    elif "a" <= c <= "z" and (c != "x" or k == 0):
                        bits |= 8
        lengths.append(len(pieces))
        flags.append(bits)
    return lengths, ids, flags


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("empty_is_one", [True, False])
def test_split_and_map_in_blocks_matches_plain_python(threads: int, empty_is_one: bool) -> None:
    """Splitting and looking up codes in blocks of rows (hash a block, then probe) gives, over
    many blocks with empty, null, unknown, long (> 16 bytes) and suspect codes, exactly what a
    plain Python split and dict lookup gives."""
    import random

    import numpy as np

    from drgkit._codes import CodeTable
    from drgkit._jit import threads as jit_threads

    rng = random.Random(11)
    codes = ["", "I10.x05", "E11.900", "K35.800x001", "A" * 17, "Z" * 40, "J18.9"]
    codes += [f"C{i:05d}.{i % 97:03d}" for i in range(300)]
    table = CodeTable(codes)
    known = {c: i for i, c in enumerate(codes)}
    menu = [*codes[1:], "NOPE", "i10.x05", "I10.x05;E11.900", "A/B", "A" * 18, "  ", "x1"]
    texts: list[str | None] = []
    for _ in range(5000):  # PARALLEL_MIN_ROWS and many blocks
        r = rng.random()
        if r < 0.03:
            texts.append(None)
        elif r < 0.06:
            texts.append(rng.choice(["", "   ", "\t"]))
        else:
            k = rng.randint(1, 9)
            texts.append(rng.choice(["|", ",", " | "]).join(rng.choice(menu) for _ in range(k)))
    arr = pa.array(texts, pa.string())
    lengths, ids, flags = _split_reference(texts, known, "|,", empty_is_one, 0)
    with jit_threads(threads):
        offsets, got_ids, got_flags = table.split_and_map(arr, b"|,", empty_is_one, 0)
        sliced = table.split_and_map(arr.slice(777, 3000), b"|,", empty_is_one, 0)
    assert np.diff(offsets).tolist() == lengths
    assert got_ids.tolist() == ids
    assert got_flags.tolist() == flags
    # an array that starts inside its buffers (a slice of a batch)
    want = _split_reference(texts[777:3777], known, "|,", empty_is_one, 0)
    assert np.diff(sliced[0]).tolist() == want[0]
    assert sliced[1].tolist() == want[1]
    assert sliced[2].tolist() == want[2]


# --------------------------------------------------------- settle_file: read ahead, write behind


@pytest.fixture(scope="module")
def settle_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 demo cases with costs and hospitals as CSV, two unreadable lines among them (and
    the same cases, undamaged, as ``cases.parquet`` beside it)."""
    folder = tmp_path_factory.mktemp("settle")
    table = _demo.generate_cases(400, seed=7, bad_fraction=0.0)
    for name in ("diagnoses", "procedures"):
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pc.binary_join(table.column(name), "|"))
    pq.write_table(table, folder / "cases.parquet", row_group_size=50)
    path = folder / "cases.csv"
    pacsv.write_csv(table, path)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[60] = "too,few,fields"
    lines[200] = '"unclosed,1,40'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("policy", ["demo", "demo-points"])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_pipelined_settle_file_gives_the_plain_bytes_and_totals(
    settle_csv: Path, tmp_path: Path, policy: str, suffix: str
) -> None:
    """settle_file reading ahead and writing behind (both passes of a points policy) writes
    the bytes, rejects and totals of the plain path, over many small batches."""
    from drgkit.settlement import settle_file

    runs = {}
    for pipeline in (False, True):
        out = tmp_path / f"settled-{pipeline}{suffix}"
        rejects = tmp_path / f"rejects-{pipeline}.csv"
        summary = settle_file(
            settle_csv, out, policy, rejects=rejects, batch_rows=37, pipeline=pipeline
        )
        runs[pipeline] = (out.read_bytes(), rejects.read_bytes(), summary)
    plain, piped = runs[False], runs[True]
    assert piped[0] == plain[0]
    assert piped[1] == plain[1]
    assert piped[2].rows == plain[2].rows > 300
    assert piped[2].rows_rejected == plain[2].rows_rejected == 2
    assert piped[2].by_reason == plain[2].by_reason
    assert piped[2].point_values == plain[2].point_values
    # Parquet input: the same bytes again
    src = settle_csv.with_name("cases.parquet")
    a, b = tmp_path / f"pq-plain{suffix}", tmp_path / f"pq-piped{suffix}"
    settle_file(src, a, policy, batch_rows=37, pipeline=False)
    settle_file(src, b, policy, batch_rows=37, pipeline=True)
    assert a.read_bytes() == b.read_bytes()


def test_a_write_error_behind_settling_stops_the_run_and_leaves_no_output(
    settle_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure of the background writer is raised by settle_file, and no output appears."""
    from drgkit import _write
    from drgkit.settlement import settle_file

    calls = []
    original = _write._Writer.write

    def failing(self, batch: pa.RecordBatch) -> None:
        calls.append(batch.num_rows)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(self.path))
        original(self, batch)

    monkeypatch.setattr(_write._Writer, "write", failing)
    out = tmp_path / "settled.parquet"
    with pytest.raises(OSError, match="No space left"):
        settle_file(settle_csv, out, "demo", rejects=tmp_path / "r.csv", batch_rows=37)
    assert len(calls) == 3  # nothing was written after the failure
    assert not out.exists()
    assert not (tmp_path / "r.csv").exists()
