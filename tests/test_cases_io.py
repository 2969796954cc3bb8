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
    from drgkit._io import _plain_for_csv

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
        "reader": pa.RecordBatchReader.from_batches(cases.schema,
                                                    cases.to_batches(max_chunksize=250)),
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
    odd = cases.rename_columns([{"case_id": "病案号", "diagnoses": "DX"}.get(n, n)
                                for n in cases.column_names])
    got = _result(drgkit.group(odd, "demo_2024", columns={"case_id": "病案号",
                                                          "diagnoses": "DX"}))
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
        "case_id,sex,age,diagnoses,procedures\n"       # no age_days, weight, los… columns
        "c1,1,45,I21.000|E11.900,\n"                     # fine
        "c2,2,30,ZZZ.999,\n"                             # unknown principal diagnosis
        "c3,1,50,,\n"                                    # empty diagnoses
        "c4,2,abc,K35.800x001,47.0100\n"                 # text age
        "c1,1,45,I21.000,\n"                             # duplicated id
        "c6,,70,I21.000,\n"                              # missing sex
        "c7,1,0,P07.100,\n"                              # newborn without age in days
        ",1,60,I21.000,\n"                               # no case id
        "c9,1,60\n"                                      # malformed: too few fields
        "c10,2,33,O80.000,\n",
        encoding="utf-8")
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
    path.write_bytes("病例编号,性别,年龄,诊断编码,手术操作编码\n甲1,男,40,I21.000,\n"
                     .encode("gbk"))
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
            table = pacsv.read_csv(out, convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in RESULT}, strings_can_be_null=True))
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
        chunk = pa.array(ids[start:start + 777])
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
