"""Case input: every supported shape gives the same result; bad input is reported, never dropped."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import DEMO

import drgkit
from drgkit import _demo
from drgkit._codes import IdTracker
from drgkit.errors import CaseDataError

RESULT = ["case_id", "status", "reason", "mdc", "adrg", "drg"]


@pytest.fixture(scope="module")
def cases() -> pa.Table:
    table = _demo.generate_cases(1500, seed=11)
    # one version only, so every shape groups with the same ruleset
    return table


def _result(table: pa.Table) -> dict:
    return table.select(RESULT).to_pydict()


@pytest.fixture(scope="module")
def expected(cases: pa.Table) -> dict:
    return _result(drgkit.group(cases, "demo_2024"))


def _text_csv(cases: pa.Table, path: Path) -> None:
    from drgkit._write import _plain_for_csv

    pacsv.write_csv(_plain_for_csv(cases), path)


def test_every_input_shape_groups_the_same(cases: pa.Table, expected: dict, tmp_path: Path):
    import pandas as pd
    import polars as pl

    csv_path = tmp_path / "cases.csv"
    _text_csv(cases, csv_path)
    pq_path = tmp_path / "cases.parquet"
    pq.write_table(cases, pq_path, row_group_size=400)
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(cases.slice(0, 700), folder / "part-0.parquet")
    pq.write_table(cases.slice(700), folder / "part-1.parquet")
    arrow_path = tmp_path / "cases.arrow"
    import pyarrow.feather as feather

    feather.write_feather(cases, arrow_path)
    shapes = {
        "csv": csv_path,
        "parquet": pq_path,
        "parquet-folder": folder,
        "arrow-file": arrow_path,
        "table": cases,
        "batch": cases.combine_chunks().to_batches()[0],
        "batches": cases.to_batches(max_chunksize=333),
        "reader": pa.RecordBatchReader.from_batches(
            cases.schema, cases.to_batches(max_chunksize=250)
        ),
        "pandas": cases.to_pandas(),
        "polars": pl.from_arrow(cases),
        "polars-lazy": pl.from_arrow(cases).lazy(),
        "c-stream": _CStream(cases),
    }
    for name, shape in shapes.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = _result(drgkit.group(shape, "demo_2024"))
        assert got == expected, name
    # and any batch size
    for rows in (1, 7, 500):
        got = _result(drgkit.group(cases, "demo_2024", batch_rows=rows))
        assert got == expected, rows
    assert isinstance(pd, object)


class _CStream:
    """Anything that speaks the Arrow C stream protocol."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self.table.__arrow_c_stream__(requested_schema)


def test_layouts_are_detected_and_can_be_overridden(cases: pa.Table, expected: dict) -> None:
    from drgkit.schema import LAYOUTS

    for layout in ("opendrg", "settlement-list", "zh"):
        columns = LAYOUTS[layout].columns
        renamed = cases.rename_columns([columns.get(n, n) for n in cases.column_names])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = _result(drgkit.group(renamed, "demo_2024"))
        assert got == expected, layout
    # a file with its own names, mapped by the user
    odd = cases.rename_columns(
        [{"case_id": "病案号", "diagnoses": "DX"}.get(n, n) for n in cases.column_names]
    )
    got = _result(drgkit.group(odd, "demo_2024", columns={"case_id": "病案号", "diagnoses": "DX"}))
    assert got == expected


def test_missing_required_column_is_an_error_naming_it(cases: pa.Table, tmp_path: Path):
    path = tmp_path / "no_dx.csv"
    _text_csv(cases.drop_columns(["diagnoses"]), path)
    with pytest.raises(CaseDataError) as info:
        drgkit.group(path, "demo_2024")
    err = info.value
    assert err.file == str(path) and err.column == "diagnoses"
    assert "Columns found: case_id" in str(err)


def test_missing_optional_columns_warn_once_and_every_row_is_reported(cases: pa.Table):
    partial = cases.drop_columns(["sex", "age_days", "birth_weight"])
    with pytest.warns(drgkit.DataWarning, match="no column for sex") as record:
        result = drgkit.group(partial, "demo_2024")
    assert len(record) == 1
    assert result.num_rows == cases.num_rows
    assert set(result.column("reason").to_pylist()) >= {"sex_missing"}
    assert set(result.column("status").to_pylist()) == {"invalid"}


def test_bad_input_csv_every_row_accounted_for(tmp_path: Path) -> None:
    """The issue's file: missing columns, unknown codes, empty diagnoses, text ages,
    duplicated ids — and a malformed line. Every row comes out, each bad one with a reason."""
    path = tmp_path / "bad.csv"
    path.write_text(
        "case_id,sex,age,diagnoses,procedures\n"  # no age_days, weight, los… columns
        "c1,1,45,I21.000|E11.900,\n"  # fine
        "c2,2,30,ZZZ.999,\n"  # unknown principal diagnosis
        "c3,1,50,,\n"  # empty diagnoses
        "c4,2,abc,K35.800x001,47.0100\n"  # text age
        "c1,1,45,I21.000,\n"  # duplicated id
        "c6,,70,I21.000,\n"  # missing sex
        "c7,1,0,P07.100,\n"  # newborn without age in days
        ",1,60,I21.000,\n"  # no case id
        "c9,1,60\n"  # malformed: too few fields
        "c10,2,33,O80.000,\n",
        encoding="utf-8",
    )
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        result = drgkit.group(path, "demo_2024")
    rows = result.to_pylist()
    assert len(rows) == 10  # every data line, including the malformed one
    by_id = {}
    for r in rows:
        by_id.setdefault(r["case_id"], []).append(r)
    assert by_id["c1"][0]["status"] == "ok"
    assert by_id["c1"][1]["reason"] == "duplicate_case_id"
    assert "row 1" in by_id["c1"][1]["detail"] and "row 5" in by_id["c1"][1]["detail"]
    assert by_id["c2"][0]["reason"] == "no_mdc"
    assert by_id["c3"][0]["reason"] == "no_mdc"
    assert by_id["c4"][0]["reason"] == "age_not_integer"
    assert "'abc'" in by_id["c4"][0]["detail"]
    assert by_id["c6"][0]["reason"] == "sex_missing"
    assert by_id["c7"][0]["reason"] == "age_days_missing"
    assert by_id[None][0]["reason"] == "case_id_missing"
    assert by_id["c9"][0]["reason"] == "malformed_row"
    assert "3 fields" in by_id["c9"][0]["detail"] and "5" in by_id["c9"][0]["detail"]
    assert by_id["c10"][0]["status"] in ("ok", "ungroupable")
    for r in rows:
        assert (r["reason"] is None) == (r["status"] == "ok"), r


def test_gbk_csv_needs_and_accepts_its_encoding(tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes("病例编号,性别,年龄,诊断编码,手术操作编码\n甲1,男,40,I21.000,\n".encode("gbk"))
    with pytest.raises(CaseDataError, match="--encoding gbk"):
        drgkit.group(path, "demo_2024")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = drgkit.group(path, "demo_2024", encoding="gbk")
    assert result.column("case_id").to_pylist() == ["甲1"]
    assert result.column("status").to_pylist() == ["ok"]


def test_utf8_bom_and_codes_keep_trailing_zeros(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffcase_id,sex,age,diagnoses\n001,1,40,I21.000\n".encode())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = drgkit.group(path, "demo_2024")
    assert result.column("case_id").to_pylist() == ["001"]  # not the number 1
    assert result.column("status").to_pylist() == ["ok"]


def test_unknown_file_type_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaseDataError, match="no such file"):
        drgkit.group(tmp_path / "nope.csv", "demo_2024")
    odd = tmp_path / "cases.xlsx"
    odd.write_bytes(b"PK")
    with pytest.raises(CaseDataError, match="unknown file type"):
        drgkit.group(odd, "demo_2024")
    with pytest.raises(CaseDataError, match="cannot read cases from a int"):
        drgkit.group(42, "demo_2024")


def test_keep_columns(cases: pa.Table) -> None:
    result = drgkit.group(cases, "demo_2024", keep=["hospital_id", "total_cost"])
    assert result.column_names[:2] == ["hospital_id", "total_cost"]
    assert result.column("total_cost").equals(cases.column("total_cost"))
    with pytest.raises(CaseDataError, match="not in the input"):
        drgkit.group(cases, "demo_2024", keep=["nope"])


def test_group_file_writes_csv_and_parquet(cases: pa.Table, expected: dict, tmp_path: Path):
    for name in ("out.csv", "out.parquet"):
        out = tmp_path / name
        summary = drgkit.group_file(cases, out, "demo_2024")
        assert summary.rows == cases.num_rows
        if name.endswith(".csv"):
            table = pacsv.read_csv(
                out,
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in RESULT}, strings_can_be_null=True
                ),
            )
        else:
            table = pq.read_table(out)
        got = {c: table.column(c).cast(pa.string()).to_pylist() for c in RESULT}
        assert got == expected


def test_id_tracker_matches_a_set() -> None:
    rng = np.random.default_rng(3)
    ids = [f"id-{x}" for x in rng.integers(0, 5000, size=20000)]
    tracker = IdTracker(capacity=16)  # forces growth
    first_seen: dict[str, int] = {}
    got = []
    for start in range(0, len(ids), 777):
        chunk = pa.array(ids[start : start + 777])
        got.extend(tracker.check(chunk, start).tolist())
    want = []
    for row, value in enumerate(ids):
        want.append(first_seen.get(value, -1))
        first_seen.setdefault(value, row)
    assert got == want


def test_demo_ruleset_folder_path_is_a_series(cases: pa.Table) -> None:
    target = drgkit.default_registry().resolve(str(DEMO))
    assert isinstance(target, drgkit.RulesetSeries)
    result = drgkit.group(cases, str(DEMO))
    assert set(result.column("ruleset").to_pylist()) <= {"demo_2023", "demo_2024", None}


# ---------------------------------------------------------------- issue 12: nothing lost

HEADER = "case_id,sex,age,diagnoses,procedures"


def _good_line(i: int) -> str:
    # quoted like pyarrow writes it: an unclosed quote then flips every later line's quotes
    return f'"c{i}","1","40","K35.800x001",""'


def _write_lines(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def _quiet_group(path, **options) -> pa.Table:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return drgkit.group(path, "demo_2024", **options)


def test_unclosed_quote_costs_one_line_not_half_the_file(tmp_path: Path) -> None:
    lines = [_good_line(i) for i in range(2000)]
    lines[700] = '"c700","1","40,K35.800x001,'  # the quote before 40 never closes
    path = _write_lines(tmp_path / "q.csv", lines)
    result = _quiet_group(path)
    assert result.num_rows == 2000
    ids = result.column("case_id").to_pylist()
    assert ids[:700] + ids[700:1999] == [f"c{i}" for i in range(2000) if i != 700]
    assert result.column("status").to_pylist()[:1999] == ["ok"] * 1999
    last = result.slice(1999).to_pylist()[0]
    assert last["case_id"] == "c700" and last["reason"] == "malformed_row"
    assert "line 702" in last["detail"] and "quote" in last["detail"]


def test_rejects_file_accounts_for_every_line(tmp_path: Path) -> None:
    lines = [_good_line(i) for i in range(300)]
    lines[10] = '"c10","1","40'  # unclosed quote and too few fields
    lines[20] = '"c20";"1";"40";"K35.800x001";""'  # wrong delimiter
    lines[30] = ""  # blank line: not a row
    lines[40] = '"c40","1","40","K35.800x001","","x"'  # one field too many
    path = _write_lines(tmp_path / "r.csv", lines)
    out, rejects = tmp_path / "out.csv", tmp_path / "rejects.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = drgkit.group_file(path, out, "demo_2024", rejects=rejects)
    assert (summary.rows_in, summary.rows_out, summary.rows_rejected) == (299, 296, 3)
    assert summary.blank_lines == 1
    got = pacsv.read_csv(
        out, convert_options=pacsv.ConvertOptions(column_types={"case_id": pa.string()})
    )
    assert got.column("case_id").to_pylist() == [
        f"c{i}" for i in range(300) if i not in (10, 20, 30, 40)
    ]
    import csv

    with open(rejects, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["line"], r["reason"]) for r in rows] == [
        ("12", "unclosed_quote"),
        ("22", "field_count"),
        ("42", "field_count"),
    ]
    assert rows[1]["text"] == lines[20] and rows[0]["file"] == str(path)


def test_malformed_ids_follow_the_delimiter_and_the_id_column(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text(
        "sex\tcase_id\tage\tdiagnoses\n1\ta1\t40\tK35.800x001\n2\ta2\t40\n1\ta3\t40\tK35.800x001\n",
        encoding="utf-8",
    )
    result = _quiet_group(path)
    assert result.column("case_id").to_pylist() == ["a1", "a3", "a2"]
    assert result.column("reason").to_pylist()[2] == "malformed_row"


def test_bad_utf8_on_a_data_line_names_that_line_and_column(tmp_path: Path) -> None:
    lines = [_good_line(i) for i in range(1500)]
    path = _write_lines(tmp_path / "u.csv", lines)
    data = path.read_bytes().replace(b'"c1234","1","40"', b'"c1234","1","4\xff0"')
    path.write_bytes(data)
    result = _quiet_group(path)
    assert result.num_rows == 1500
    last = result.slice(1499).to_pylist()[0]
    assert last["case_id"] == "c1234" and last["reason"] == "malformed_row"
    assert "line 1236" in last["detail"] and "'age'" in last["detail"]
    assert "utf-8" in last["detail"]


def test_a_2mb_field_is_one_rejected_line_naming_row_and_column(tmp_path: Path) -> None:
    lines = [_good_line(i) for i in range(50)]
    lines[25] = f'"c25","1","40","{"K" * 2_000_000}",""'
    path = _write_lines(tmp_path / "wide.csv", lines)
    result = _quiet_group(path)
    assert result.num_rows == 50
    assert result.column("status").to_pylist()[:49] == ["ok"] * 49
    last = result.slice(49).to_pylist()[0]
    assert last["case_id"] == "c25" and last["reason"] == "malformed_row"
    assert "line 27" in last["detail"] and "'diagnoses'" in last["detail"]


@pytest.mark.parametrize("kind", ["gzip-named-csv", "bz2", "zst", "xz"])
def test_compressed_files_are_read_by_content(tmp_path: Path, kind: str) -> None:
    import bz2
    import gzip
    import lzma

    raw = ("\n".join([HEADER] + [_good_line(i) for i in range(40)]) + "\n").encode()
    if kind == "gzip-named-csv":
        path, data = tmp_path / "cases.csv", gzip.compress(raw)
    elif kind == "bz2":
        path, data = tmp_path / "cases.csv.bz2", bz2.compress(raw)
    elif kind == "xz":
        path, data = tmp_path / "cases.csv.xz", lzma.compress(raw)
    else:
        path, data = tmp_path / "cases.csv.zst", None
        with pa.CompressedOutputStream(str(path), "zstd") as fh:
            fh.write(raw)
    if data is not None:
        path.write_bytes(data)
    result = _quiet_group(path)
    assert result.column("case_id").to_pylist() == [f"c{i}" for i in range(40)]
    assert set(result.column("status").to_pylist()) == {"ok"}


def test_truncated_gzip_is_one_clear_error(tmp_path: Path) -> None:
    import gzip

    raw = ("\n".join([HEADER] + [_good_line(i) for i in range(20000)]) + "\n").encode()
    path = tmp_path / "cut.csv.gz"
    data = gzip.compress(raw)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CaseDataError, match="gzip"):
        _quiet_group(path)


@pytest.mark.parametrize("rows", [0, -1, -262144])
def test_batch_rows_below_one_is_refused_and_writes_nothing(tmp_path: Path, rows: int) -> None:
    path = _write_lines(tmp_path / "c.csv", [_good_line(i) for i in range(5)])
    out = tmp_path / "out.csv"
    with pytest.raises(CaseDataError, match="batch_rows"):
        drgkit.group_file(path, out, "demo_2024", batch_rows=rows)
    with pytest.raises(CaseDataError, match="batch_rows"):
        drgkit.settlement.settle_file(path, out, "demo", batch_rows=rows)
    with pytest.raises(CaseDataError, match="batch_rows"):
        drgkit.group(path, "demo_2024", batch_rows=rows)
    assert not out.exists()


def test_an_output_naming_the_input_is_refused(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "c.csv", [_good_line(i) for i in range(5)])
    before = path.read_bytes()
    with pytest.raises(CaseDataError, match="replace the input"):
        drgkit.group_file(path, tmp_path / "." / "c.csv", "demo_2024")
    link = tmp_path / "link.csv"
    link.symlink_to(path)
    with pytest.raises(CaseDataError, match="replace the input"):
        drgkit.group_file(path, link, "demo_2024")
    assert path.read_bytes() == before
    table = _quiet_group(path)
    pq_path = tmp_path / "grouped.parquet"
    pq.write_table(table, pq_path)
    pq_before = pq_path.read_bytes()
    with pytest.raises(CaseDataError, match="replace the input"):
        drgkit.settlement.settle_file(pq_path, pq_path, "demo")
    assert pq_path.read_bytes() == pq_before


def test_csv_output_neutralises_formulas_in_text_columns_only(tmp_path: Path) -> None:
    import csv
    from decimal import Decimal

    ids = ["=1+2", "@SUM(A1)", "+cmd", "-x", "-55.80", "ok", "\t=x"]
    table = pa.table(
        {
            "case_id": ids,
            "department": ['=HYPERLINK("http://x")'] * len(ids),
            "sex": ["1"] * len(ids),
            "age": ["40"] * len(ids),
            "diagnoses": ["K35.800x001"] * len(ids),
            "total_cost": pa.array([Decimal("-55.80")] * len(ids), pa.decimal128(14, 2)),
        }
    )
    out = tmp_path / "out.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        drgkit.group_file(table, out, "demo_2024", keep=["department", "total_cost"])
    with open(out, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["case_id"] for r in rows] == [
        "'=1+2",
        "'@SUM(A1)",
        "'+cmd",
        "'-x",
        "-55.80",
        "ok",
        "'\t=x",
    ]
    assert {r["department"] for r in rows} == {'\'=HYPERLINK("http://x")'}
    assert {r["total_cost"] for r in rows} == {"-55.80"}  # a number stays a number
    # Parquet output keeps the text as it is
    pq_out = tmp_path / "out.parquet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        drgkit.group_file(table, pq_out, "demo_2024")
    assert pq.read_table(pq_out).column("case_id").to_pylist() == ids


def test_corrupted_file_every_row_accounted_by_kind(tmp_path: Path) -> None:
    """The corruption script at ~5k rows: every damaged line's fate is exact."""
    from benchmarks.corrupt_rows import KINDS, run

    report = run(5000, seed=7, fraction=0.05, workdir=tmp_path, library=True)
    assert report["physical_lines"] == 1 + 5000 + report["blank_lines"]
    assert report["rows_in"] == 5000
    assert report["rows_in"] == report["rows_out"] + report["rows_rejected"]
    assert report["run"]["rows_in"] == report["rows_in"]
    assert report["run"]["rows_out"] == report["rows_out"]
    assert report["run"]["rows_rejected"] == report["rows_rejected"]
    assert report["run"]["blank_lines"] == report["blank_lines"] == 20
    outcomes = report["outcomes"]
    assert set(outcomes) == {*KINDS, "truncated_last_line"}
    rejected_as = {
        "unclosed_quote": "unclosed_quote",
        "extra_field": "field_count",
        "missing_field": "field_count",
        "bad_utf8": "bad_encoding",
        "nul_byte": "nul_byte",
        "wrong_delimiter": "field_count",
        "stray_cr": "stray_carriage_return",
        "huge_field": "field_too_long",
        "truncated_last_line": "unclosed_quote",
    }
    for kind, reason in rejected_as.items():
        assert list(outcomes[kind]) == [f"rejects file: {reason}"], (kind, outcomes[kind])
    assert outcomes["text_in_numeric"] == {"output: invalid/age_not_integer": 20}
    assert outcomes["duplicate_id"] == {"output: invalid/duplicate_case_id": 20}
    assert outcomes["missing_id"] == {"output: invalid/case_id_missing": 20}
    for kind in ("crlf", "blank_line_before"):  # read as the clean line would be
        assert all(not k.startswith("rejects") for k in outcomes[kind]), outcomes[kind]
    assert report["rows_rejected"] == sum(
        n for kind in rejected_as for n in outcomes[kind].values()
    )


def test_the_last_batch_keeps_every_chunk(monkeypatch) -> None:
    """combine_chunks may leave several chunks (a text column over 2 GiB); the tail batch
    must still carry every row. Simulated: a table type whose combine_chunks combines nothing."""
    import types

    from drgkit import _io

    class Uncombined:
        def __init__(self, table: pa.Table) -> None:
            self.table = table

        def combine_chunks(self) -> pa.Table:
            return self.table

        @staticmethod
        def from_batches(batches) -> Uncombined:
            return Uncombined(pa.Table.from_batches(batches))

    monkeypatch.setattr(_io, "pa", types.SimpleNamespace(Table=Uncombined))
    parts = [
        pa.RecordBatch.from_pydict({"case_id": [f"{k}-{i}" for i in range(3)]}) for k in range(4)
    ]
    merged = list(_io._merge(iter(parts), 100))
    assert sum(b.num_rows for b in merged) == 12


def test_a_stray_carriage_return_in_the_header_is_one_clear_error(tmp_path: Path) -> None:
    # found by tests/test_fuzz.py: csv.reader raised its own error on this header
    path = tmp_path / "cr.csv"
    path.write_bytes(b"case_id,se\rx,age,diagnoses\n1,1,40,K35.800x001\n")
    with pytest.raises(drgkit.CaseDataError, match="header") as info:
        drgkit.group(path, "demo_2024")
    assert info.value.row == 1 and info.value.file == str(path)


def test_parquet_with_a_column_name_that_is_not_utf8_is_a_case_data_error(tmp_path):
    """A damaged footer can leave a column name that is not UTF-8: pyarrow raises a
    UnicodeDecodeError, which drgkit reports as the file's CaseDataError (found by the fuzzer)."""
    import pyarrow.parquet as pq

    from drgkit import CaseDataError, group

    path = tmp_path / "cases.parquet"
    pq.write_table(pa.table({"case_id": ["1"], "diagnoses": ["I21.000"]}), path)
    data = path.read_bytes()
    # every stored copy of the name (schema element, column-chunk path) gets a non-UTF-8 byte
    path.write_bytes(data.replace(b"diagnoses", b"\x80iagnoses"))
    with pytest.raises(CaseDataError) as info:
        group(path, "demo_2024")
    assert str(path) in str(info.value)
