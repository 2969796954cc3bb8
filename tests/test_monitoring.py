"""drgkit.monitoring.indicators: against a naive reference on generated data, hand-worked
examples, streaming equal to in-memory, the inputs it takes."""

from __future__ import annotations

import datetime as dt
import warnings
from decimal import Decimal
from fractions import Fraction
from typing import Any

import monitoring_reference as naive
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drgkit import monitoring
from drgkit.errors import CaseDataError
from drgkit.monitoring import INDICATOR_COLUMNS, indicator_schema, indicators


@pytest.fixture(scope="module")
def settled() -> pa.Table:
    from drgkit._demo import generate_cases
    from drgkit.settlement import settle

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return settle(generate_cases(400, bad_fraction=0.05), "demo")


@pytest.fixture(scope="module")
def previous() -> pa.Table:
    from drgkit._demo import generate_cases
    from drgkit.settlement import settle

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = settle(generate_cases(300, seed=7, bad_fraction=0.05), "demo")
    # last year: the same hospitals, discharged a year earlier
    dates = [
        None if d is None else d.replace(year=d.year - 1, day=min(d.day, 28))
        for d in table.column("discharge_date").to_pylist()
    ]
    index = table.schema.get_field_index("discharge_date")
    return table.set_column(index, "discharge_date", pa.array(dates, pa.date32()))


def _plain_rows(table: pa.Table) -> list[dict[str, Any]]:
    rows = table.to_pylist()
    return rows


@pytest.mark.parametrize(
    "by",
    [(), ("hospital_id",), ("hospital_id", "month"), ("mdc",), ("drg",), ("department", "scheme")],
)
def test_every_column_equals_the_naive_reference(settled, previous, by):
    got = indicators(settled, by=by, previous=previous)
    want = naive.indicators(_plain_rows(settled), tuple(by), _plain_rows(previous))
    assert got.schema.equals(indicator_schema(by))
    rows = got.to_pylist()
    assert len(rows) == len(want)
    for mine, theirs in zip(rows, want, strict=True):
        assert mine == theirs, {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}
    # no case is dropped: the keys partition the input
    assert sum(got.column("cases").to_pylist()) == settled.num_rows


def test_contract_columns_and_types(settled):
    got = indicators(settled, by=("hospital_id",))
    names = got.column_names
    assert names[0] == "hospital_id"
    assert names[1 : 1 + len(INDICATOR_COLUMNS)] == [n for n, _t in INDICATOR_COLUMNS]
    assert got.schema.field("cases").type == pa.int64()
    assert got.schema.field("total_cost").type == pa.decimal128(18, 2)
    assert got.schema.field("cmi").type == pa.float64()


def test_streaming_in_batches_of_seven_equals_the_whole(settled, previous, tmp_path):
    whole = indicators(settled, by=("hospital_id", "month"), previous=previous)
    batches = settled.to_batches(max_chunksize=7)
    streamed = indicators(
        (b for b in batches), by=("hospital_id", "month"), previous=previous.to_batches(7)
    )
    assert streamed.equals(whole)
    # a Parquet file read in row groups, and a folder of files
    pq.write_table(settled, tmp_path / "s.parquet", row_group_size=13)
    seen: list[int] = []
    from_file = indicators(
        tmp_path / "s.parquet", by=("hospital_id", "month"), previous=previous, progress=seen.append
    )
    assert from_file.equals(whole)
    assert seen[-1] == settled.num_rows
    folder = tmp_path / "parts"
    folder.mkdir()
    half = settled.num_rows // 2
    pq.write_table(settled.slice(0, half), folder / "a.parquet")
    pq.write_table(settled.slice(half), folder / "b.parquet")
    assert indicators(folder, by=("hospital_id", "month"), previous=previous).equals(whole)


def test_a_settled_csv_reads_back_to_the_same_indicators(settled, tmp_path):
    import pyarrow.csv as pcsv

    path = tmp_path / "settled.csv"
    pcsv.write_csv(
        settled.cast(
            pa.schema(
                [
                    f.with_type(f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
                    for f in settled.schema
                ]
            )
        ),
        path,
    )
    assert indicators(path, by=("hospital_id",)).equals(indicators(settled, by=("hospital_id",)))


# --------------------------------------------------------------------------- hand-worked


def _case(
    cid: str,
    hospital: str,
    drg: str,
    rw: str | None,
    cost: str,
    los: int | None,
    *,
    status: str = "ok",
    settled: bool = True,
    leaving: str | None = "1",
    pclass: str = "normal",
    readmitted: bool | None = False,
    month: int = 3,
    payment: str | None = None,
) -> dict[str, Any]:
    pay = Decimal(payment if payment is not None else cost)
    return {
        "case_id": cid,
        "hospital_id": hospital,
        "department": "D1",
        "insurance_type": "310",
        "hospital_level": "3",
        "discharge_date": dt.date(2023, month, 10),
        "status": status,
        "drg": drg,
        "scheme": "drg",
        "group": drg,
        "rw": None if rw is None else Decimal(rw),
        "payment_class": pclass,
        "settled": settled,
        "total_cost": Decimal(cost),
        "payment": pay if settled else None,
        "fund_payment": pay * Decimal("0.5") if settled else None,
        "gain_loss": pay - Decimal(cost) if settled else None,
        "readmitted_31d": readmitted,
        "los": los,
        "leaving_type": leaving,
        "drug_cost": Decimal(cost) / 4,
        "consumables_cost": Decimal(cost) / 5,
    }


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows)


def test_cmi_rises_while_the_cost_index_falls():
    """Hospital A takes on heavier cases (CMI up) and treats them for less than the region
    (cost index down): both measured against the same regional reference.

    Region (the reference): DRG X (RW 1) mean cost 10,000, DRG Y (RW 3) mean cost 30,000.
    Year 1, A: 2 × X at 12,000 -> CMI 1, cost index 24,000 ÷ 20,000 = 1.2.
    Year 2, A: 1 × X at 11,000 + 1 × Y at 27,000 -> CMI (1 + 3) ÷ 2 = 2,
                cost index 38,000 ÷ (10,000 + 30,000) = 0.95."""
    reference = pa.table(
        {"drg": ["X", "Y"], "mean_cost": ["10000", "30000"], "mean_los": ["5", "10"]}
    )
    year1 = _table([_case("1", "A", "X", "1", "12000", 6), _case("2", "A", "X", "1", "12000", 6)])
    year2 = _table([_case("3", "A", "X", "1", "11000", 5), _case("4", "A", "Y", "3", "27000", 8)])
    one = indicators(year1, reference=reference).to_pylist()[0]
    two = indicators(year2, reference=reference).to_pylist()[0]
    assert (one["cmi"], two["cmi"]) == (1.0, 2.0)
    assert one["cost_index"] == 1.2 and two["cost_index"] == 0.95
    assert one["time_index"] == 12 / 10 and two["time_index"] == 13 / 15
    assert two["expected_cost"] == 40000.0 and two["indexed_cost"] == Decimal("38000.00")
    assert two["cost_per_weight"] == 38000 / 4
    assert two["drg_count"] == 2 and one["drg_count"] == 1


def test_hand_worked_region_with_statuses_outliers_and_money():
    rows = [
        _case("1", "A", "X", "1", "100.00", 4, pclass="high_outlier", payment="80.00"),
        _case("2", "A", "X", "1", "300.00", 6, readmitted=True),
        _case("3", "B", "X", "1", "200.00", 5, leaving="5", readmitted=None),
        _case("4", "B", "0000", None, "50.00", 2, status="ungroupable", pclass="ungroupable"),
        _case("5", "B", "0000", None, "70.00", None, status="invalid", settled=False),
    ]
    got = {r["hospital_id"]: r for r in indicators(_table(rows)).to_pylist()}
    a, b = got["A"], got["B"]
    # region mean of X = (100 + 300 + 200) / 3 = 200; A: 400 / 400, B: 200 / 200
    assert a["cost_index"] == 1.0 and b["cost_index"] == 1.0
    # region LOS of X = 15 / 3 = 5: A 10 / 10; B 5 / 5
    assert a["time_index"] == 1.0 and b["time_index"] == 1.0
    assert (b["cases"], b["grouped"], b["status_ungroupable"], b["status_invalid"]) == (3, 1, 1, 1)
    assert b["grouping_rate"] == 1 / 3
    assert b["settled"] == 2 and b["total_cost"] == Decimal("250.00")
    assert b["mean_cost"] == 125.0
    assert b["total_los"] == 7 and b["los_cases"] == 2 and b["mean_los"] == 3.5
    assert a["high_outliers"] == 1 and a["high_outlier_share"] == 0.5
    assert a["payment"] == Decimal("380.00") and a["gain_loss"] == Decimal("-20.00")
    assert a["readmissions_31d"] == 1 and a["readmission_rate"] == 0.5
    assert b["readmission_known"] == 0 and b["readmission_rate"] is None  # flag unknown
    assert b["deaths"] == 1 and b["mortality_cases"] == 3
    assert a["drug_share"] == 0.25 and a["consumable_share"] == 0.2
    assert a["cost_growth"] is None and a["previous_total_cost"] is None  # no previous given


def test_low_risk_groups_from_the_z_score_of_log_mortality():
    """Four DRGs with mortality 1/100, 1/10, 1/2 and 0 (A..D): ln m = −4.605, −2.303, −0.693;
    mean −2.534, sd 1.604: z = −1.291 (low), 0.144 (medium_high), 1.147 (high); D has no
    deaths: low by default, no level with zero_deaths='none'."""
    rows = []
    for drg, n, deaths in (("A", 100, 1), ("B", 10, 1), ("C", 2, 1), ("D", 5, 0)):
        for k in range(n):
            rows.append(
                _case(f"{drg}{k}", "H", drg, "1", "10", 3, leaving="5" if k < deaths else "1")
            )
    ref = monitoring.drg_reference(_table(rows)).to_pylist()
    levels = {r["drg"]: r["risk_level"] for r in ref}
    assert levels == {"A": "low", "B": "medium_high", "C": "high", "D": "low"}
    got = indicators(_table(rows), by=()).to_pylist()[0]
    assert (got["low_risk_cases"], got["low_risk_deaths"]) == (105, 1)
    assert got["low_risk_mortality"] == 1 / 105
    strict = monitoring.RiskCutoffs(zero_deaths="none")
    got = indicators(_table(rows), by=(), risk=strict).to_pylist()[0]
    assert (got["low_risk_cases"], got["low_risk_deaths"]) == (100, 1)
    # the reference of another period decides the levels when given
    given = pa.table({"drg": ["B"], "mean_cost": ["10"], "mean_los": ["3"], "risk_level": ["low"]})
    got = indicators(_table(rows), by=(), reference=given).to_pylist()[0]
    assert got["low_risk_cases"] == 10 and got["cost_index"] is None  # A, C, D: no mean


def test_growth_against_the_same_month_a_year_earlier():
    now = [
        _case("1", "A", "X", "1", "108.00", 4, month=3),
        _case("2", "A", "X", "1", "1", 1, month=4),
    ]
    before = [_case("9", "A", "X", "1", "100.00", 4, month=3)]
    before[0]["discharge_date"] = dt.date(2022, 3, 1)
    got = indicators(_table(now), by=("month",), previous=_table(before)).to_pylist()
    march, april = got
    assert march["month"] == "2023-03" and march["previous_total_cost"] == Decimal("100.00")
    assert march["cost_growth"] == float(Fraction(108, 100) - 1)
    assert march["previous_cost_per_case"] == 100.0
    assert april["previous_total_cost"] is None and april["cost_growth"] is None


def test_a_key_of_the_previous_period_only_is_listed_with_no_cases():
    now = [_case("1", "A", "X", "1", "100.00", 4)]
    before = [_case("2", "A", "X", "1", "90.00", 4), _case("3", "Z", "X", "1", "50.00", 4)]
    got = {
        r["hospital_id"]: r for r in indicators(_table(now), previous=_table(before)).to_pylist()
    }
    assert got["Z"]["cases"] == 0 and got["Z"]["previous_total_cost"] == Decimal("50.00")
    assert got["Z"]["cost_growth"] is None


def test_columns_the_input_lacks_are_null_not_zero():
    rows = [_case("1", "A", "X", "1", "100.00", 4)]
    for r in rows:
        for name in ("los", "leaving_type", "drug_cost", "consumables_cost", "readmitted_31d"):
            del r[name]
    got = indicators(_table(rows)).to_pylist()[0]
    for name in (
        "total_los",
        "mean_los",
        "time_index",
        "drug_cost",
        "drug_share",
        "consumable_cost",
        "consumable_share",
        "deaths",
        "low_risk_cases",
        "low_risk_mortality",
        "readmissions_31d",
        "readmission_rate",
    ):
        assert got[name] is None, name
    assert got["cmi"] == 1.0 and got["cost_index"] == 1.0


def test_a_settled_case_without_a_drug_cost_makes_the_share_unknown():
    rows = [_case("1", "A", "X", "1", "100.00", 4), _case("2", "A", "X", "1", "100.00", 4)]
    rows[1]["drug_cost"] = None
    got = indicators(_table(rows)).to_pylist()[0]
    assert got["drug_cost"] is None and got["drug_share"] is None
    assert got["consumable_cost"] == Decimal("40.00")


def test_cases_table_supplies_the_columns_the_settled_table_lacks():
    rows = [_case("1", "A", "X", "1", "100.00", 4), _case("2", "A", "X", "1", "100.00", 4)]
    lean = [
        {k: v for k, v in r.items() if k not in ("los", "leaving_type", "drug_cost")} for r in rows
    ]
    case_rows = pa.table(
        {
            "case_id": ["1", "2"],
            "los": [4, 6],
            "leaving_type": ["1", "5"],
            "drug_cost": ["10", "30.5"],
        }
    )
    got = indicators(_table(lean), cases=case_rows).to_pylist()[0]
    assert got["total_los"] == 10 and got["deaths"] == 1 and got["drug_cost"] == Decimal("40.50")
    shuffled = case_rows.take([1, 0])
    with pytest.raises(CaseDataError, match="row for row") as err:
        indicators(_table(lean), cases=shuffled)
    assert err.value.row == 1
    with pytest.raises(CaseDataError, match="fewer rows"):
        indicators(_table(lean), cases=case_rows.slice(0, 1))
    with pytest.raises(CaseDataError, match="more rows"):
        indicators(_table(lean), cases=pa.concat_tables([case_rows, case_rows.slice(0, 1)]))


def test_bad_inputs_are_errors_naming_what():
    rows = [_case("1", "A", "X", "1", "100.00", 4)]
    with pytest.raises(CaseDataError, match="unknown key 'ward'"):
        indicators(_table(rows), by=("ward",))
    with pytest.raises(CaseDataError, match="no such column") as err:
        indicators(_table(rows), by=("doctor",))
    assert err.value.column == "doctor"
    bad = [dict(rows[0], status="grouped")]
    with pytest.raises(CaseDataError, match="unknown grouping status") as err:
        indicators(_table(bad))
    assert err.value.row == 1 and err.value.column == "status"
    with pytest.raises(CaseDataError, match="'settled' column"):
        indicators(_table(rows).drop(["settled"]))


def test_mdc_comes_from_the_drg_when_the_table_has_none():
    rows = [
        _case("1", "A", "GZ13", "1", "100.00", 4),
        _case("2", "A", "0000", None, "1", 1, status="ungroupable"),
    ]
    got = indicators(_table(rows), by=("mdc",)).to_pylist()
    assert [(r["mdc"], r["cases"]) for r in got] == [("MDCG", 1), (None, 1)]


def test_settle_carries_what_monitoring_needs(tmp_path):
    """Case input with los, leaving type, cost categories (consumable_cost spelled as generated
    data spells it) and doctor: settle writes them typed, and indicators read them."""
    from drgkit._demo import generate_cases
    from drgkit.settlement import settle

    cases = generate_cases(40, bad_fraction=0.0)
    cases = cases.rename_columns(
        ["consumable_cost" if n == "consumables_cost" else n for n in cases.column_names]
    )
    if "doctor" in cases.column_names:  # the generator writes one: replace it with known ids
        cases = cases.drop_columns(["doctor"])
    cases = cases.append_column("doctor", pa.array([f"D{k % 3}" for k in range(cases.num_rows)]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = settle(cases, "demo")
    assert out.column_names[-6:] == [
        "mdc",
        "los",
        "leaving_type",
        "drug_cost",
        "consumables_cost",
        "doctor",
    ]
    assert out.schema.field("consumables_cost").type == pa.decimal128(18, 2)
    assert out.column("consumables_cost").to_pylist() == [
        None if v is None else Decimal(str(v)).quantize(Decimal("0.01"))
        for v in cases.column("consumable_cost").to_pylist()
    ]
    assert out.column("doctor").to_pylist()[:4] == ["D0", "D1", "D2", "D0"]
    by_doctor = indicators(out, by=("doctor",))
    assert by_doctor.column("doctor").to_pylist() == ["D0", "D1", "D2"]
    assert by_doctor.column("consumable_cost").null_count == 0


def test_settle_leaves_a_bad_cost_category_empty_and_warns():
    from drgkit._demo import generate_cases
    from drgkit._io import DataWarning
    from drgkit.settlement import settle

    cases = generate_cases(5, bad_fraction=0.0)
    drug = pa.array(["12.5", "abc", "-3", None, "1.234"])
    cases = cases.set_column(cases.schema.get_field_index("drug_cost"), "drug_cost", drug)
    with pytest.warns(DataWarning, match=r"3 case\(s\) have a drug_cost.*first: row 2"):
        out = settle(cases, "demo")
    assert out.column("drug_cost").to_pylist() == [Decimal("12.50"), None, None, None, None]


def test_null_keys_are_keys_of_their_own_listed_last():
    rows = [
        _case("1", "B", "X", "1", "10", 3),
        _case("2", None, "X", "1", "20", 3),
        _case("3", "A", "X", "1", "30", 3),
        _case("4", "A", "X", "1", "40", 3),
    ]
    rows[3]["discharge_date"] = None
    got = indicators(_table(rows), by=("hospital_id", "month"))
    keys = [(r["hospital_id"], r["month"], r["cases"]) for r in got.to_pylist()]
    assert keys == [("A", "2023-03", 1), ("A", None, 1), ("B", "2023-03", 1), (None, "2023-03", 1)]
    for size in (1, 2, 3):
        batches = _table(rows).to_batches(max_chunksize=size)
        assert indicators(iter(batches), by=("hospital_id", "month")).equals(got)


def test_a_dip_settled_table_counts_packets_and_has_no_cmi():
    from drgkit._demo import generate_cases
    from drgkit.settlement import settle

    cases = generate_cases(120, bad_fraction=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dip = settle(cases, "dip-national-1.0")
    got = indicators(dip, by=(), cases=cases).to_pylist()[0]
    packets = {r["group"] for r in dip.to_pylist() if r["status"] == "ok"}
    assert got["drg_count"] == len(packets) and got["cases"] == 120
    assert got["cmi"] is None and got["total_weight"] is None
    assert got["cost_index"] is not None and got["time_index"] is not None  # LOS from cases=
