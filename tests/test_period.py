"""Period settlement: retention and over-spend bands, quality deductions, monthly
pre-settlement and annual clearing, against numbers worked out by hand in the comments.

The settled tables are built by hand with the columns of ``settle_schema`` (amounts in yuan
as text, as a person would write them); the expectations are literal numbers, never the output
of the code under test."""

from __future__ import annotations

import datetime as dt
import sys
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import drgkit
from drgkit import _demo
from drgkit.errors import CaseDataError
from drgkit.settlement import PolicyError, settle
from drgkit.settlement._period import (
    OverspendBand,
    PeriodRules,
    QualityRule,
    RetentionBand,
    hospital_totals,
    presettle,
    presettle_all,
    quality_deductions,
    settle_period,
)
from drgkit.settlement._settle import settle_schema

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

D = Decimal


@pytest.fixture(scope="module")
def demo() -> Any:
    return drgkit.default_registry().policy("demo")


def with_period(policy: Any, period: Any) -> Any:
    """The policy with another [period] section (everything else unchanged)."""
    config = dict(policy.config)
    if period is None:
        config.pop("period", None)
    else:
        config["period"] = period
    return attrs.evolve(policy, config=config)


def case(
    hospital: str | None,
    payment: str | None,
    cost: str,
    *,
    fund: str | None = None,
    drg: str = "A1",
    readmitted: bool | None = None,
    discharged: str | None = "2024-03-15",
    settled: bool = True,
    case_id: str | None = None,
) -> dict[str, Any]:
    """One settled case (yuan as text); the fund pays everything unless ``fund`` is given."""
    fund = payment if fund is None else fund
    row: dict[str, Any] = {
        "case_id": case_id,
        "hospital_id": hospital,
        "drg": drg,
        "readmitted_31d": readmitted,
        "settled": settled,
        "total_cost": D(cost),
        "status": "ok",
        "payment_class": "normal" if settled else "not_settled",
        "discharge_date": dt.date.fromisoformat(discharged) if discharged else None,
    }
    if settled:
        assert payment is not None
        row.update(
            payment=D(payment),
            fund_payment=D(fund),
            patient_share=D(payment) - D(fund),
            gain_loss=D(payment) - D(cost),
            standard=D(payment),
        )
    else:
        row["reason"] = "level_unknown"
    return row


def table(policy: Any, rows: list[dict[str, Any]]) -> pa.Table:
    """A settled-case table with exactly the columns of ``settle_schema``."""
    for k, row in enumerate(rows):
        if row.get("case_id") is None:
            row["case_id"] = f"c{k}"
        row.setdefault("policy", policy.id)
    return pa.Table.from_pylist(rows, schema=settle_schema(policy))


def one(result: pa.Table, hospital: str | None = "H1") -> dict[str, Any]:
    rows = [r for r in result.to_pylist() if r["hospital_id"] == hospital]
    assert len(rows) == 1, rows
    return rows[0]


# --------------------------------------------------------------------------- rules


def test_rules_of_the_demo_policy_are_exact_decimals(demo: Any) -> None:
    rules = PeriodRules.from_policy(demo)
    assert rules.retention == (RetentionBand(D("0.10"), D("1")), RetentionBand(None, D("0.5")))
    assert rules.overspend == (OverspendBand(D("0.10"), D("0.5")), OverspendBand(None, D("0")))
    assert rules.quality == (QualityRule("readmitted_31d", D("0.20"), D("0.10")),)
    assert rules.presettlement_ratio == D("0.90")
    assert rules.policy_id == "demo" and rules.policy_hash == demo.content_hash


@pytest.mark.parametrize(
    "policy_id", ["demo", "suzhou-2022", "suzhou-2023", "wuxi-2022", "jilin-2022", "demo-points"]
)
def test_every_shipped_policy_has_valid_period_rules(policy_id: str) -> None:
    path = Path(drgkit.__file__).parent / "policies" / f"{policy_id}.toml"
    period = tomllib.loads(path.read_text("utf-8"))["period"]
    rules = PeriodRules.from_config(period, path=path)
    assert rules.retention[-1].up_to is None and rules.overspend[-1].up_to is None


OK_RETENTION = [{"up_to": "0.10", "keep": "1"}, {"keep": "0.5"}]
OK_OVERSPEND = [{"up_to": "0.10", "fund_share": "0.5"}, {"fund_share": "0"}]


@pytest.mark.parametrize(
    ("period", "message"),
    [
        (None, "no [period] section"),
        ("yes", "[period] must be a table"),
        (
            {"retention": OK_RETENTION, "overspend": OK_OVERSPEND, "retension": []},
            "unknown key 'retension'",
        ),
        ({"overspend": OK_OVERSPEND}, "period.retention is required"),
        ({"retention": OK_RETENTION}, "period.overspend is required"),
        ({"retention": [], "overspend": OK_OVERSPEND}, "period.retention must be a non-empty"),
        (
            {
                "retention": [
                    {"up_to": "0.2", "keep": "1"},
                    {"up_to": "0.1", "keep": "0.8"},
                    {"keep": "0.5"},
                ],
                "overspend": OK_OVERSPEND,
            },
            "period.retention must be ordered: period.retention[1].up_to",
        ),
        (
            {"retention": [{"up_to": "0.1", "keep": "1"}], "overspend": OK_OVERSPEND},
            "period.retention must end with an open band",
        ),
        (
            {"retention": [{"keep": "1"}, {"keep": "0.5"}], "overspend": OK_OVERSPEND},
            "period.retention[0] has no up_to",
        ),
        (
            {
                "retention": [{"up_to": "0", "keep": "1"}, {"keep": "0.5"}],
                "overspend": OK_OVERSPEND,
            },
            "period.retention[0].up_to must be a positive number",
        ),
        (
            {
                "retention": [{"up_to": "0.1", "keep": "1.5"}, {"keep": "0.5"}],
                "overspend": OK_OVERSPEND,
            },
            "period.retention[0].keep must be at most 1",
        ),
        (
            {
                "retention": [{"up_to": "0.1", "keep": "abc"}, {"keep": "0.5"}],
                "overspend": OK_OVERSPEND,
            },
            "period.retention[0].keep must be a number",
        ),
        (
            {
                "retention": [{"up_to": "0.1", "keep": True}, {"keep": "0.5"}],
                "overspend": OK_OVERSPEND,
            },
            "period.retention[0].keep must be a number",
        ),
        (
            {
                "retention": [{"up_to": "0.1", "kep": "1"}, {"keep": "0.5"}],
                "overspend": OK_OVERSPEND,
            },
            "period.retention[0] has an unknown key 'kep'",
        ),
        (
            {"retention": OK_RETENTION, "overspend": [{"up_to": "0.1"}, {"fund_share": "0"}]},
            "period.overspend[0].fund_share is required",
        ),
        (
            {
                "retention": OK_RETENTION,
                "overspend": [{"up_to": "0.1", "fund_share": "-0.5"}, {"fund_share": "0"}],
            },
            "period.overspend[0].fund_share must be a non-negative number",
        ),
        (
            {
                "retention": OK_RETENTION,
                "overspend": [{"up_to": "0.1234567", "fund_share": "0.5"}, {"fund_share": "0"}],
            },
            "period.overspend[0].up_to may have at most 6 decimals",
        ),
        (
            {
                "retention": OK_RETENTION,
                "overspend": OK_OVERSPEND,
                "quality": [{"metric": "deaths", "above_average_by": "0.2", "deduct": "0.1"}],
            },
            "period.quality[0].metric must be one of readmitted_31d",
        ),
        (
            {
                "retention": OK_RETENTION,
                "overspend": OK_OVERSPEND,
                "quality": [{"metric": "readmitted_31d", "above_average_by": "0.2"}],
            },
            "period.quality[0].deduct is required",
        ),
        (
            {"retention": OK_RETENTION, "overspend": OK_OVERSPEND, "quality": {"metric": "x"}},
            "period.quality must be an array of tables",
        ),
        (
            {
                "retention": OK_RETENTION,
                "overspend": OK_OVERSPEND,
                "presettlement": {"ratio": "1.5"},
            },
            "period.presettlement.ratio must be at most 1",
        ),
        (
            {
                "retention": OK_RETENTION,
                "overspend": OK_OVERSPEND,
                "presettlement": {"rate": "0.9"},
            },
            "[period.presettlement] has an unknown key 'rate'",
        ),
    ],
)
def test_malformed_period_rules_are_named(demo: Any, period: Any, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        PeriodRules.from_policy(with_period(demo, period))
    assert message in str(err.value)
    assert err.value.file == str(demo.path)


def test_toml_floats_are_read_as_the_decimals_written(demo: Any) -> None:
    # TOML floats 0.1 / 0.5 become Decimal("0.1") / Decimal("0.5"), not binary fractions
    rules = PeriodRules.from_policy(
        with_period(
            demo,
            {
                "retention": [{"up_to": 0.1, "keep": 1}, {"keep": 0.5}],
                "overspend": [{"fund_share": 0}],
            },
        )
    )
    assert rules.retention[0].up_to == D("0.1") and rules.retention[1].keep == D("0.5")
    assert rules.quality == () and rules.presettlement_ratio is None


# --------------------------------------------------------------------------- hospital totals


def test_hospital_totals_by_hand(demo: Any) -> None:
    rows = [
        case("H2", "200.00", "150.00", fund="140.00"),
        case("H1", "100.00", "80.00", fund="70.00"),
        case("H1", "50.50", "60.25", fund="40.40"),
        case("H1", None, "999.99", settled=False),  # counted as a case, no money
        case(None, "10.00", "5.00"),  # no hospital id: its own group, last
    ]
    totals = hospital_totals(table(demo, rows)).to_pylist()
    assert [t["hospital_id"] for t in totals] == ["H1", "H2", None]
    h1 = totals[0]
    # H1: 3 rows, 2 settled; payment 100.00 + 50.50 = 150.50; fund 70.00 + 40.40 = 110.40;
    # patient 30.00 + 10.10 = 40.10; cost 80.00 + 60.25 = 140.25 (the unsettled 999.99 is
    # not a settled cost); gain 20.00 − 9.75 = 10.25
    assert h1 == {
        "hospital_id": "H1",
        "cases": 3,
        "settled": 2,
        "payment": D("150.50"),
        "fund_payment": D("110.40"),
        "patient_share": D("40.10"),
        "total_cost": D("140.25"),
        "gain_loss": D("10.25"),
    }
    assert totals[1]["payment"] == D("200.00") and totals[1]["gain_loss"] == D("50.00")
    assert totals[2]["cases"] == 1 and totals[2]["payment"] == D("10.00")
    # Σ hospitals = Σ cases: payment 150.50 + 200.00 + 10.00 = 360.50
    assert sum(t["payment"] for t in totals) == D("360.50")
    assert sum(t["cases"] for t in totals) == 5


# --------------------------------------------------------------------------- retention


def period_of(demo: Any, rows: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    return one(settle_period(table(demo, rows), demo, **kwargs))


def test_surplus_inside_the_first_band_is_kept_in_full(demo: Any) -> None:
    # payment 100.00, cost 95.00: surplus 5.00 = 5% of 100.00 (≤ 10%): all kept
    r = period_of(demo, [case("H1", "100.00", "95.00", fund="70.00")])
    assert (r["surplus"], r["kept"], r["returned"]) == (D("5.00"), D("5.00"), D("0.00"))
    assert (r["overspend"], r["fund_overspend"]) == (D("0.00"), D("0.00"))
    # fund_due = fund 70.00 − deduction 0 − returned 0 + 0 = 70.00
    assert r["fund_due"] == D("70.00") and r["hospital_result"] == D("5.00")
    assert r["base_kind"] == "due" and r["base"] == D("100.00")


def test_surplus_across_bands(demo: Any) -> None:
    # payment 100.00, cost 80.00: surplus 20.00 = 20% of payment; first 10% (10.00) kept,
    # next 10.00 half kept → kept 15.00, returned 5.00
    r = period_of(
        demo,
        [case("H1", "60.00", "50.00", fund="45.00"), case("H1", "40.00", "30.00", fund="25.00")],
    )
    assert (r["payment"], r["due"], r["cost"]) == (D("100.00"), D("100.00"), D("80.00"))
    assert (r["balance"], r["surplus"]) == (D("20.00"), D("20.00"))
    assert (r["kept"], r["returned"]) == (D("15.00"), D("5.00"))
    # fund_due = fund 70.00 − returned 5.00 = 65.00; the hospital ends at +15.00
    assert r["fund_due"] == D("65.00") and r["hospital_result"] == D("15.00")


def test_surplus_exactly_on_the_boundary(demo: Any) -> None:
    # payment 100.00, cost 90.00: surplus 10.00 = exactly 10%: all in the first band
    r = period_of(demo, [case("H1", "100.00", "90.00")])
    assert (r["kept"], r["returned"]) == (D("10.00"), D("0.00"))


def test_kept_surplus_is_rounded_once_half_up(demo: Any) -> None:
    # payment 100.00, cost 79.99: surplus 20.01; first 10.00 kept, then 10.01 × 0.5 = 5.005:
    # kept 15.005 → 15.01 (half up, once, at the hospital), returned 20.01 − 15.01 = 5.00
    r = period_of(demo, [case("H1", "100.00", "79.99")])
    assert (r["surplus"], r["kept"], r["returned"]) == (D("20.01"), D("15.01"), D("5.00"))


def test_budget_is_the_base_of_the_bands(demo: Any) -> None:
    # payment 100.00, cost 80.00, budget 200.00: first band up to 10% × 200.00 = 20.00, so the
    # whole surplus 20.00 is kept
    r = period_of(demo, [case("H1", "100.00", "80.00")], budgets={"H1": 20000})
    assert (r["base_kind"], r["base"]) == ("budget", D("200.00"))
    assert (r["kept"], r["returned"]) == (D("20.00"), D("0.00"))
    # budget 50.00: first band 5.00 kept, the next 15.00 half → kept 12.50, returned 7.50
    r = period_of(demo, [case("H1", "100.00", "80.00")], budgets={"H1": 5000})
    assert (r["kept"], r["returned"]) == (D("12.50"), D("7.50"))


# --------------------------------------------------------------------------- over-spend


def test_overspend_inside_the_first_band(demo: Any) -> None:
    # payment 100.00, cost 105.00: over-spend 5.00 = 5%: the fund bears half, 2.50
    r = period_of(demo, [case("H1", "100.00", "105.00", fund="70.00")])
    assert (r["balance"], r["surplus"], r["overspend"]) == (D("-5.00"), D("0.00"), D("5.00"))
    assert (r["fund_overspend"], r["hospital_overspend"]) == (D("2.50"), D("2.50"))
    # fund_due = 70.00 + 2.50 = 72.50; the hospital ends at −2.50
    assert r["fund_due"] == D("72.50") and r["hospital_result"] == D("-2.50")


def test_overspend_across_bands_and_on_the_boundary(demo: Any) -> None:
    # cost 130.00: over-spend 30.00 = 30%; first 10.00 half borne (5.00), the rest not (超支不补)
    r = period_of(demo, [case("H1", "100.00", "130.00")])
    assert (r["fund_overspend"], r["hospital_overspend"]) == (D("5.00"), D("25.00"))
    # cost 110.00: over-spend 10.00 = exactly 10%: fund 5.00, hospital 5.00
    r = period_of(demo, [case("H1", "100.00", "110.00")])
    assert (r["fund_overspend"], r["hospital_overspend"]) == (D("5.00"), D("5.00"))


def test_overspend_share_is_rounded_half_up(demo: Any) -> None:
    # payment 100.00, cost 100.01: over-spend 0.01; fund 0.005 → 0.01, hospital 0.00
    r = period_of(demo, [case("H1", "100.00", "100.01")])
    assert (r["fund_overspend"], r["hospital_overspend"]) == (D("0.01"), D("0.00"))


def test_no_payment_puts_the_overspend_in_the_open_band(demo: Any) -> None:
    # payment 0.00, cost 50.00: base 0, so the first band is empty and the fund bears nothing
    r = period_of(demo, [case("H1", "0.00", "50.00")])
    assert (r["fund_overspend"], r["hospital_overspend"]) == (D("0.00"), D("50.00"))


# --------------------------------------------------------------------------- quality


def quality_cases() -> list[dict[str, Any]]:
    a = [
        # DRG A1 at H1: 4 known flags, 1 readmitted → rate 1/4 = 0.25; one unknown flag
        case("H1", "250.00", "200.00", readmitted=True),
        case("H1", "250.00", "200.00", readmitted=False),
        case("H1", "250.00", "200.00", readmitted=False),
        case("H1", "250.05", "200.00", readmitted=False),
        case("H1", "100.00", "80.00", readmitted=None),
    ]
    # DRG A1 at H2: 6 known, none readmitted → regional 1/10 = 0.1, threshold 0.1 × 1.2 = 0.12
    a += [case("H2", "300.00", "250.00", readmitted=False) for _ in range(6)]
    # DRG B1: H1 5 known, 3 readmitted (0.6); H2 5 known, 2 readmitted → regional 5/10 = 0.5,
    # threshold 0.5 × 1.2 = 0.6: H1's 0.6 is exactly on it, not above → no deduction
    b = [case("H1", "100.00", "90.00", drg="B1", readmitted=k < 3) for k in range(5)]
    b += [case("H2", "100.00", "90.00", drg="B1", readmitted=k < 2) for k in range(5)]
    # DRG C1 at H1: no known flag → rate unknown, nothing deducted
    c = [case("H1", "500.00", "400.00", drg="C1", readmitted=None) for _ in range(2)]
    # DRG D1: nobody readmitted → regional rate 0, nobody above it
    d = [
        case("H1", "80.00", "70.00", drg="D1", readmitted=False),
        case("H2", "80.00", "70.00", drg="D1", readmitted=False),
    ]
    # a case that is not settled counts nowhere in the quality link
    e = [case("H2", None, "10.00", drg="A1", readmitted=True, settled=False)]
    return a + b + c + d + e


def test_quality_deduction_above_the_threshold(demo: Any) -> None:
    q = quality_deductions(table(demo, quality_cases()), demo)
    rows = {(r["hospital_id"], r["drg"]): r for r in q.to_pylist()}
    assert list(rows) == [
        ("H1", "A1"),
        ("H1", "B1"),
        ("H1", "C1"),
        ("H1", "D1"),
        ("H2", "A1"),
        ("H2", "B1"),
        ("H2", "D1"),
    ]
    a1 = rows["H1", "A1"]
    # rate 0.25 > 0.12: deduct 10% of the payment of all 5 cases (the unknown flag included):
    # 250.00 × 3 + 250.05 + 100.00 = 1100.05; × 0.10 = 110.005 → 110.01 (half up)
    assert (a1["cases"], a1["known"], a1["readmitted"]) == (5, 4, 1)
    assert (a1["rate"], a1["regional_rate"]) == (D("0.25"), D("0.1"))
    assert (a1["regional_known"], a1["regional_readmitted"]) == (10, 1)
    assert a1["exceeded"] and a1["payment"] == D("1100.05")
    assert a1["deduction"] == D("110.01") and a1["rule"] == 0
    b1 = rows["H1", "B1"]
    assert (b1["rate"], b1["regional_rate"]) == (D("0.6"), D("0.5"))
    assert not b1["exceeded"] and b1["deduction"] == D("0.00")
    c1 = rows["H1", "C1"]
    assert c1["rate"] is None and c1["known"] == 0 and c1["regional_rate"] is None
    assert not c1["exceeded"] and c1["deduction"] == D("0.00") and c1["payment"] == D("1000.00")
    assert rows["H1", "D1"]["regional_rate"] == D("0") and not rows["H1", "D1"]["exceeded"]
    h2 = rows["H2", "A1"]
    assert (h2["cases"], h2["rate"], h2["deduction"]) == (6, D("0"), D("0.00"))
    assert q.schema.field("deduction").type == pa.decimal128(18, 2)


def test_quality_deduction_flows_into_the_period(demo: Any) -> None:
    result = settle_period(table(demo, quality_cases()), demo)
    h1 = one(result, "H1")
    # H1: payment 1100.05 (A1) + 500.00 (B1) + 1000.00 (C1) + 80.00 (D1) = 2680.05
    #     cost    880.00 + 450.00 + 800.00 + 70.00 = 2200.00
    #     deduction 110.01 → due 2570.04; balance 370.04 = surplus
    #     first band 10% × 2570.04 = 257.004 kept in full, the rest 113.036 half → 56.518:
    #     kept 313.522 → 313.52, returned 370.04 − 313.52 = 56.52
    #     fund_due = fund 2680.05 − 110.01 − 56.52 = 2513.52
    assert (h1["payment"], h1["cost"]) == (D("2680.05"), D("2200.00"))
    assert (h1["deduction"], h1["due"], h1["surplus"]) == (D("110.01"), D("2570.04"), D("370.04"))
    assert (h1["kept"], h1["returned"]) == (D("313.52"), D("56.52"))
    assert h1["fund_due"] == D("2513.52")
    # H2: no deduction; payment 1800.00 + 500.00 + 80.00 = 2380.00, cost 1500.00 + 450.00 +
    # 70.00 = 2020.00: surplus 360.00; first 238.00 kept, then 122.00 half: kept 299.00
    h2 = one(result, "H2")
    assert (h2["deduction"], h2["kept"], h2["returned"]) == (D("0.00"), D("299.00"), D("61.00"))
    # H2 rows: A1 6 + B1 5 + D1 1 = 12 settled, plus 1 not settled
    assert (h2["cases"], h2["settled"]) == (13, 12)


def test_quality_rules_add_up(demo: Any) -> None:
    # two rules: > 20% above → 10%, > 100% above → another 5%. H1 A1's rate 0.25 is above
    # 0.1 × 2 = 0.2 too: deductions 110.005 → 110.01 and 1100.05 × 0.05 = 55.0025 → 55.00
    period = dict(demo.config["period"])
    period["quality"] = [
        *period["quality"],
        {"metric": "readmitted_31d", "above_average_by": "1", "deduct": "0.05"},
    ]
    policy = with_period(demo, period)
    q = quality_deductions(table(policy, quality_cases()), policy).to_pylist()
    a1 = [r["deduction"] for r in q if (r["hospital_id"], r["drg"]) == ("H1", "A1")]
    assert a1 == [D("110.01"), D("55.00")]
    assert one(settle_period(table(policy, quality_cases()), policy))["deduction"] == D("165.01")


def test_cases_without_a_group_are_not_compared_by_default(demo: Any) -> None:
    """Ungroupable (0000) and ambiguous (QY) cases have no group: however often they are
    readmitted, the quality rule does not look at them unless the rule opts in."""

    def status(row: dict[str, Any], value: str) -> dict[str, Any]:
        return {**row, "status": value}

    rows = [
        # H1's 0000 cases: 3 of 4 readmitted (0.75); H2's 0000: 0 of 4 → regional 3/8 = 0.375,
        # threshold 0.375 × 1.2 = 0.45 < 0.75: would lose 10% of 4 × 1000.00 = 400.00
        *[
            status(case("H1", "1000.00", "900.00", drg="0000", readmitted=k < 3), "ungroupable")
            for k in range(4)
        ],
        *[
            status(case("H2", "1000.00", "900.00", drg="0000", readmitted=False), "ungroupable")
            for _ in range(4)
        ],
        # an ambiguous case readmitted at H1, and one not readmitted at H2: H1's rate 1 > 0.6
        status(case("H1", "500.00", "450.00", drg="AQY", readmitted=True), "ambiguous"),
        status(case("H2", "500.00", "450.00", drg="AQY", readmitted=False), "ambiguous"),
        *quality_cases(),
    ]
    q = quality_deductions(table(demo, rows), demo).to_pylist()
    assert {r["drg"] for r in q} == {"A1", "B1", "C1", "D1"}
    # only H1's A1 deduction of quality_cases: 110.01
    assert one(settle_period(table(demo, rows), demo))["deduction"] == D("110.01")
    period = dict(demo.config["period"])
    period["quality"] = [{**period["quality"][0], "statuses": ["ok", "ungroupable"]}]
    opted = with_period(demo, period)
    q = {
        (r["hospital_id"], r["drg"]): r
        for r in quality_deductions(table(opted, rows), opted).to_pylist()
    }
    assert ("H1", "AQY") not in q
    assert q["H1", "0000"]["exceeded"] and q["H1", "0000"]["deduction"] == D("400.00")
    assert one(settle_period(table(opted, rows), opted))["deduction"] == D("510.01")


@pytest.mark.parametrize("statuses", [[], ["ok", "ok"], ["invalid"], "ok"])
def test_quality_statuses_are_checked(demo: Any, statuses: Any) -> None:
    period = {
        "retention": OK_RETENTION,
        "overspend": OK_OVERSPEND,
        "quality": [
            {
                "metric": "readmitted_31d",
                "above_average_by": "0.2",
                "deduct": "0.1",
                "statuses": statuses,
            }
        ],
    }
    with pytest.raises(PolicyError, match=r"period\.quality\[0\]\.statuses must be a list"):
        PeriodRules.from_config(period)


# --------------------------------------------------------------------------- pre-settlement


def month_cases() -> list[dict[str, Any]]:
    return [
        # March: H1 fund 600.00 + 400.05 = 1000.05, H2 fund 333.33
        case("H1", "800.00", "700.00", fund="600.00", discharged="2024-03-01"),
        case("H1", "500.00", "450.00", fund="400.05", discharged="2024-03-31"),
        case("H1", None, "90.00", settled=False, discharged="2024-03-10"),
        case("H2", "400.00", "300.00", fund="333.33", discharged="2024-03-20"),
        # April: H1 fund 100.00
        case("H1", "120.00", "100.00", fund="100.00", discharged="2024-04-01"),
        # no discharge date: in no month
        case("H2", "50.00", "40.00", discharged=None),
    ]


def test_presettlement_of_a_month(demo: Any) -> None:
    march = presettle(table(demo, month_cases()), demo, month="2024-03").to_pylist()
    # H1: 1000.05 × 0.90 = 900.045 → 900.05; H2: 333.33 × 0.90 = 299.997 → 300.00
    assert march == [
        {
            "month": "2024-03",
            "hospital_id": "H1",
            "cases": 3,
            "settled": 2,
            "fund_payment": D("1000.05"),
            "prepayment": D("900.05"),
        },
        {
            "month": "2024-03",
            "hospital_id": "H2",
            "cases": 1,
            "settled": 1,
            "fund_payment": D("333.33"),
            "prepayment": D("300.00"),
        },
    ]
    assert presettle(table(demo, month_cases()), demo, month="2024-05").num_rows == 0


def test_presettlement_of_every_month(demo: Any) -> None:
    every = presettle_all(table(demo, month_cases()), demo).to_pylist()
    assert [(r["month"], r["hospital_id"], r["prepayment"]) for r in every] == [
        ("2024-03", "H1", D("900.05")),
        ("2024-03", "H2", D("300.00")),
        # April: 100.00 × 0.90 = 90.00
        ("2024-04", "H1", D("90.00")),
    ]


def test_presettlement_needs_a_month_and_a_ratio(demo: Any) -> None:
    settled = table(demo, month_cases())
    for bad in ("2024-3", "2024-13", "March", "2024-03-01"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            presettle(settled, demo, month=bad)
    policy = with_period(demo, {"retention": OK_RETENTION, "overspend": OK_OVERSPEND})
    with pytest.raises(PolicyError, match=r"presettlement\.ratio"):
        presettle(settled, policy, month="2024-03")


# --------------------------------------------------------------------------- annual clearing


def test_annual_clearing_with_amounts_already_paid(demo: Any) -> None:
    rows = [
        case("H1", "100.00", "80.00", fund="70.00"),  # fund_due 70.00 − 5.00 = 65.00
        case("H2", "100.00", "105.00", fund="90.00"),
    ]  # fund_due 90.00 + 2.50 = 92.50
    paid = {"H1": 6000, "H2": 9500, "H3": 1234}
    result = settle_period(table(demo, rows), demo, already_paid=paid)
    # H1: paid 60.00 of 65.00 → the fund pays 5.00 more
    assert (one(result, "H1")["fund_due"], one(result, "H1")["clearing"]) == (D("65.00"), D("5.00"))
    # H2: paid 95.00 of 92.50 → the hospital pays back 2.50
    assert (one(result, "H2")["fund_due"], one(result, "H2")["clearing"]) == (
        D("92.50"),
        D("-2.50"),
    )
    # H3 was paid 12.34 but has no case: it owes all of it back
    h3 = one(result, "H3")
    assert (h3["cases"], h3["fund_due"], h3["clearing"]) == (0, D("0.00"), D("-12.34"))
    # without already_paid the whole fund_due is cleared
    assert one(settle_period(table(demo, rows), demo))["clearing"] == D("65.00")


def test_clearing_after_monthly_presettlement(demo: Any) -> None:
    settled = table(demo, month_cases())
    paid: dict[str, int] = {}
    for r in presettle_all(settled, demo).to_pylist():
        paid[r["hospital_id"]] = paid.get(r["hospital_id"], 0) + int(r["prepayment"] * 100)
    # H1 pre-paid 900.05 + 90.00 = 990.05; H2 300.00
    assert paid == {"H1": 99005, "H2": 30000}
    h1 = one(settle_period(settled, demo, already_paid=paid), "H1")
    # H1: payment 1420.00, cost 1250.00: surplus 170.00; first 142.00 kept, then 28.00 half:
    # kept 156.00, returned 14.00; fund_due 1100.05 − 14.00 = 1086.05; clearing 96.00
    assert (h1["kept"], h1["returned"]) == (D("156.00"), D("14.00"))
    assert (h1["fund_due"], h1["clearing"]) == (D("1086.05"), D("96.00"))


def test_bad_mappings_are_refused(demo: Any) -> None:
    settled = table(demo, [case("H1", "100.00", "80.00")])
    with pytest.raises(TypeError, match="whole cents"):
        settle_period(settled, demo, already_paid={"H1": 1.5})
    with pytest.raises(TypeError, match="strings"):
        settle_period(settled, demo, budgets={1: 100})
    with pytest.raises(ValueError, match="negative"):
        settle_period(settled, demo, budgets={"H1": -1})


def test_malformed_settled_tables_are_refused(demo: Any) -> None:
    settled = table(demo, [case("H1", "100.00", "80.00")])
    with pytest.raises(CaseDataError, match="'fund_payment'"):
        hospital_totals(settled.drop_columns(["fund_payment"]))
    broken = settled.set_column(
        settled.schema.get_field_index("payment"), "payment", pa.nulls(1, pa.decimal128(18, 2))
    )
    with pytest.raises(CaseDataError, match="case 'c0'"):
        settle_period(broken, demo)


# --------------------------------------------------------------------------- reconciliation


def test_totals_reconcile_on_demo_settlement(demo: Any) -> None:
    settled = settle(_demo.generate_cases(1500, seed=5), "demo")
    cases = settled.to_pylist()

    def case_sum(name: str) -> Decimal:
        return sum((r[name] for r in cases if r["settled"]), D(0))

    totals = hospital_totals(settled).to_pylist()
    for name in ("payment", "fund_payment", "patient_share", "total_cost", "gain_loss"):
        assert sum(t[name] for t in totals) == case_sum(name), name
    assert sum(t["cases"] for t in totals) == len(cases)
    period = settle_period(settled, demo).to_pylist()
    q = quality_deductions(settled, demo).to_pylist()
    assert sum(p["payment"] for p in period) == case_sum("payment")
    assert sum(p["cost"] for p in period) == case_sum("total_cost")
    assert sum(p["deduction"] for p in period) == sum(r["deduction"] for r in q)
    dated = sum((r["fund_payment"] for r in cases if r["settled"] and r["discharge_date"]), D(0))
    assert sum(r["fund_payment"] for r in presettle_all(settled, demo).to_pylist()) == dated


# --------------------------------------------------------------------------- property test


def half_up(x: Fraction) -> int:
    """Cents, half up; the shares have denominators 10^k, so the quotient is exact."""
    with localcontext() as ctx:
        ctx.prec = 80
        return int(
            (Decimal(x.numerator) / Decimal(x.denominator)).quantize(
                Decimal(1), rounding=ROUND_HALF_UP
            )
        )


def banded(amount: int, base: int, bands: list[tuple[Decimal | None, Decimal]]) -> int:
    """The test's own reading of the bands: each band's clamp, weighted, rounded once."""
    b = max(base, 0)
    total = Fraction(0)
    lows = [Fraction(0)] + [Fraction(u) * b for u, _s in bands[:-1]]
    highs = [Fraction(u) * b if u is not None else None for u, _s in bands]
    for (_u, share), lo, hi in zip(bands, lows, highs, strict=True):
        top = Fraction(amount) if hi is None else min(Fraction(amount), hi)
        total += Fraction(share) * max(top - lo, Fraction(0))
    return half_up(total)


@st.composite
def band_lists(draw: Any, share: str) -> list[dict[str, str]]:
    cuts = sorted(draw(st.sets(st.integers(1, 300), max_size=3)))
    shares = draw(st.lists(st.integers(0, 1000), min_size=len(cuts) + 1, max_size=len(cuts) + 1))
    bands = [
        {"up_to": str(D(c) / 100), share: str(D(s) / 1000)}
        for c, s in zip(cuts, shares, strict=False)
    ]
    return [*bands, {share: str(D(shares[-1]) / 1000)}]


cases_strategy = st.lists(
    st.tuples(
        st.sampled_from(["H1", "H2", "H3", None]),  # hospital
        st.sampled_from(["A1", "B1"]),  # drg
        st.integers(0, 10**7),  # payment cents
        st.integers(0, 1000),  # patient share, ‰ of payment
        st.integers(0, 2 * 10**7),  # cost cents
        st.sampled_from([True, False, None]),  # readmitted
        st.booleans(),  # settled
        st.sampled_from(["2024-01-10", "2024-02-29", None]),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cases_strategy,
    band_lists("keep"),
    band_lists("fund_share"),
    st.lists(st.tuples(st.integers(0, 100), st.integers(0, 1000)), max_size=2),
    st.dictionaries(st.sampled_from(["H1", "H2", "H4"]), st.integers(0, 10**8)),
    st.dictionaries(st.sampled_from(["H1", "H3", "H5"]), st.integers(-(10**7), 10**8)),
)
def test_period_amounts_always_add_up(
    demo: Any,
    raw: list[tuple[Any, ...]],
    retention: list[dict[str, str]],
    overspend: list[dict[str, str]],
    quality: list[tuple[int, int]],
    budgets: dict[str, int],
    paid: dict[str, int],
) -> None:
    period = {
        "retention": retention,
        "overspend": overspend,
        "quality": [
            {
                "metric": "readmitted_31d",
                "above_average_by": str(D(a) / 100),
                "deduct": str(D(d) / 1000),
            }
            for a, d in quality
        ],
        "presettlement": {"ratio": "0.9"},
    }
    policy = with_period(demo, period)
    rows = []
    for hosp, drg, pay, share, cost, readm, ok, day in raw:
        patient = pay * share // 1000
        rows.append(
            case(
                hosp,
                str(D(pay) / 100),
                str(D(cost) / 100),
                fund=str(D(pay - patient) / 100),
                drg=drg,
                readmitted=readm,
                settled=ok,
                discharged=day,
            )
            if ok
            else case(hosp, None, str(D(cost) / 100), drg=drg, settled=False, discharged=day)
        )
    settled = table(policy, rows)
    done = [r for r in rows if r["settled"]]

    def cents_sum(name: str, subset: list[dict[str, Any]] = done) -> int:
        return int(sum((r[name] for r in subset), D(0)) * 100)

    def col_sum(result: pa.Table, name: str) -> int:
        return int(sum((v for v in result.column(name).to_pylist()), D(0)) * 100)

    totals = hospital_totals(settled)
    for name in ("payment", "fund_payment", "patient_share", "total_cost", "gain_loss"):
        assert col_sum(totals, name) == cents_sum(name)
    assert sum(totals.column("cases").to_pylist()) == len(rows)

    q = quality_deductions(settled, policy)
    result = settle_period(settled, policy, budgets=budgets, already_paid=paid)
    assert col_sum(result, "payment") == cents_sum("payment")
    assert col_sum(result, "fund_payment") == cents_sum("fund_payment")
    assert col_sum(result, "cost") == cents_sum("total_cost")
    assert col_sum(result, "deduction") == col_sum(q, "deduction")
    assert col_sum(result, "already_paid") == sum(paid.values())
    rules_keep = [(D(b["up_to"]) if "up_to" in b else None, D(b["keep"])) for b in retention]
    rules_fund = [(D(b["up_to"]) if "up_to" in b else None, D(b["fund_share"])) for b in overspend]
    for r in result.to_pylist():
        c = {k: int(v * 100) for k, v in r.items() if isinstance(v, Decimal)}
        assert c["due"] == c["payment"] - c["deduction"]
        assert c["balance"] == c["due"] - c["cost"] == c["surplus"] - c["overspend"]
        assert min(c["surplus"], c["overspend"]) == 0
        assert c["kept"] + c["returned"] == c["surplus"]
        assert c["fund_overspend"] + c["hospital_overspend"] == c["overspend"]
        assert 0 <= c["kept"] <= c["surplus"] and 0 <= c["fund_overspend"] <= c["overspend"]
        base = budgets.get(r["hospital_id"], c["due"])
        assert c["base"] == base
        assert c["kept"] == banded(c["surplus"], base, rules_keep)
        assert c["fund_overspend"] == banded(c["overspend"], base, rules_fund)
        assert c["fund_due"] == (
            c["fund_payment"] - c["deduction"] - c["returned"] + c["fund_overspend"]
        )
        assert c["clearing"] == c["fund_due"] - paid.get(r["hospital_id"], 0)
    dated = [r for r in done if r["discharge_date"] is not None]
    assert col_sum(presettle_all(settled, policy), "fund_payment") == cents_sum(
        "fund_payment", dated
    )
