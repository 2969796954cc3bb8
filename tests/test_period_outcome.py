"""Pay for outcome in period settlement: the cost difference coefficient in its band and
outcome rules against targets (DOMAIN.md §3.6), against amounts worked out by hand in the
comments; the readmission rule as one instance of the general rule; reconciliation."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import drgkit
from drgkit.errors import ArgumentError, CaseDataError
from drgkit.settlement import PolicyError
from drgkit.settlement._period import (
    OutcomeRule,
    PeriodRules,
    QualityRule,
    outcome_details,
    settle_period,
)
from drgkit.settlement._settle import settle_schema

D = Decimal
RETENTION = [{"up_to": "0.10", "keep": "1"}, {"keep": "0.5"}]
OVERSPEND = [{"up_to": "0.10", "fund_share": "0.5"}, {"fund_share": "0"}]
BP_RULE = {
    "id": "bp_control",
    "indicator": "bp_control_rate",
    "source": "table",
    "target": "0.80",
    "deduct": "0.5",
    "deduct_cap": "0.04",
    "reward": "0.5",
    "reward_cap": "0.02",
}


@pytest.fixture(scope="module")
def demo() -> Any:
    return drgkit.default_registry().policy("demo")


def rules(**period: Any) -> PeriodRules:
    return PeriodRules.from_config({"retention": RETENTION, "overspend": OVERSPEND, **period})


def settled(demo: Any, rows: list[tuple[Any, ...]]) -> pa.Table:
    """(hospital, payment, cost, rw, status[, readmitted]) per case, every case settled, the
    fund pays all."""
    out = []
    for k, (hosp, pay, cost, rw, status, *flag) in enumerate(rows):
        out.append(
            {
                "case_id": f"c{k}",
                "hospital_id": hosp,
                "drg": "A1" if status == "ok" else "0000",
                "rw": None if rw is None else D(rw),
                "status": status,
                "payment_class": "normal",
                "settled": True,
                "total_cost": D(cost),
                "payment": D(pay),
                "fund_payment": D(pay),
                "patient_share": D(0),
                "gain_loss": D(pay) - D(cost),
                "standard": D(pay),
                "readmitted_31d": flag[0] if flag else None,
                "policy": demo.id,
            }
        )
    return pa.Table.from_pylist(out, schema=settle_schema(demo))


def by_hospital(table: pa.Table) -> dict[str | None, dict[str, Any]]:
    return {r["hospital_id"]: r for r in table.to_pylist()}


CASES = [
    # H1: cost per weight (1200 + 1200) ÷ 2 = 1200; payment 2000.04
    ("H1", "1000.05", "1200.00", "1", "ok"),
    ("H1", "999.99", "1200.00", "1", "ok"),
    # H2: cost per weight (800 + 800) ÷ 2 = 800; payment 2000.05
    ("H2", "1000.05", "800.00", "1", "ok"),
    ("H2", "1000.00", "800.00", "1", "ok"),
]


def test_cost_coefficient_is_clamped_into_its_band_and_reprices_the_payment(demo: Any) -> None:
    the = rules(cost_coefficient={"min": "0.9", "max": "1.1"})
    result = by_hospital(settle_period(settled(demo, CASES), the))
    h1, h2 = result["H1"], result["H2"]
    # region: 4000 ÷ 4 = 1000; H1 1200/1000 = 1.2 → clamped to 1.1; H2 0.8 → 0.9
    assert h1["cost_coefficient"] == D("1.1") and h2["cost_coefficient"] == D("0.9")
    # H1: 2000.04 × 0.1 = 200.004 → 200.00;  H2: 2000.05 × −0.1 = −200.005 → −200.01
    assert h1["coefficient_adjustment"] == D("200.00")
    assert h2["coefficient_adjustment"] == D("-200.01")
    # H1 due 2200.04, cost 2400 → over-spend 199.96 inside the first band (220.004):
    # the fund bears half, 99.98; fund_due = 2000.04 + 200.00 + 99.98
    assert h1["due"] == D("2200.04") and h1["overspend"] == D("199.96")
    assert h1["fund_overspend"] == D("99.98") and h1["fund_due"] == D("2300.02")
    # H2 due 1800.04, cost 1600 → surplus 200.04: kept 180.004 + ½ × 20.036 = 190.022 →
    # 190.02, returned 200.04 − 190.02 = 10.02; fund_due = 2000.05 − 200.01 − 10.02
    assert h2["kept"] == D("190.02") and h2["returned"] == D("10.02")
    assert h2["fund_due"] == D("1790.02")
    assert "1.200000 → 1.100000 (band 0.9–1.1)" in h1["explanation"]
    assert h1["outcome_deduction"] == 0 and h1["outcome_reward"] == 0


def test_cost_coefficient_report_only_changes_no_amount(demo: Any) -> None:
    the = rules(cost_coefficient={"min": "0.8", "max": "1.2", "apply": "report"})
    result = by_hospital(settle_period(settled(demo, CASES), the))
    assert result["H1"]["cost_coefficient"] == D("1.2")
    assert result["H1"]["coefficient_adjustment"] == 0 and result["H1"]["due"] == D("2000.04")
    assert "reported only" in result["H1"]["explanation"]


def test_a_hospital_without_weighted_cases_keeps_coefficient_one(demo: Any) -> None:
    rows = [*CASES, ("H3", "500.00", "450.00", None, "ungroupable")]
    the = rules(cost_coefficient={"min": "0.9", "max": "1.1"})
    h3 = by_hospital(settle_period(settled(demo, rows), the))["H3"]
    assert h3["cost_coefficient"] == D(1) and h3["coefficient_adjustment"] == 0
    assert "no weighted case" in h3["explanation"]


VALUES = pa.table({"hospital_id": ["H1", "H2"], "bp_control_rate": ["0.72", "0.84"]})


def test_outcome_rule_deducts_below_target_and_rewards_above_with_caps(demo: Any) -> None:
    the = rules(outcome=[BP_RULE])
    result = by_hospital(settle_period(settled(demo, CASES), the, values=VALUES))
    h1, h2 = result["H1"], result["H2"]
    # H1: 0.72 misses 0.80 by 0.08 ÷ 0.80 = 10%; × 0.5 = 5%, capped at 4%:
    # 2000.04 × 0.04 = 80.0016 → 80.00
    assert h1["outcome_deduction"] == D("80.00") and h1["outcome_reward"] == 0
    assert h1["due"] == D("1920.04")
    # H2: 0.84 beats 0.80 by 5%; × 0.5 = 2.5%, capped at 2%: 2000.05 × 0.02 = 40.001 → 40.00
    assert h2["outcome_reward"] == D("40.00") and h2["due"] == D("2040.05")
    assert h2["cost_coefficient"] is None
    assert "bp_rate" not in h1["explanation"]
    assert "bp_control_rate 0.720000 misses target 0.800000" in h1["explanation"]


def test_outcome_proportional_below_the_cap(demo: Any) -> None:
    values = pa.table({"hospital_id": ["H1", "H2"], "bp_control_rate": ["0.78", "0.80"]})
    the = rules(outcome=[BP_RULE])
    details = outcome_details(settled(demo, CASES), the, values=values).to_pylist()
    h1, h2 = details
    # H1: gap 0.02 ÷ 0.80 = 2.5%, × 0.5 = 1.25%: 2000.04 × 0.0125 = 25.0005 → 25.00
    assert (h1["result"], h1["share"], h1["amount"]) == ("missed", "-0.012500", D("-25.00"))
    # H2 exactly on the target: neither deducted nor rewarded
    assert (h2["result"], h2["amount"]) == ("met", D("0.00"))


def test_a_hospital_missing_from_the_values_gets_no_value_with_a_reason(demo: Any) -> None:
    rows = [*CASES, ("H3", "500.00", "450.00", "1", "ok")]
    the = rules(outcome=[BP_RULE])
    h3 = by_hospital(settle_period(settled(demo, rows), the, values=VALUES))["H3"]
    assert h3["outcome_deduction"] == 0 and h3["outcome_reward"] == 0
    assert "not in the values table" in h3["explanation"]


def test_outcome_rule_on_a_monitoring_indicator(demo: Any) -> None:
    # grouping rate (drgkit.monitoring): H1 2 of 3 grouped (0.666…), H2 2 of 2 (1)
    rows = [*CASES, ("H1", "300.00", "300.00", None, "ungroupable")]
    rule = {
        "id": "grouping",
        "indicator": "grouping_rate",
        "target": "0.9",
        "scale": "fixed",
        "deduct": "0.02",
    }
    result = by_hospital(settle_period(settled(demo, rows), rules(outcome=[rule])))
    # H1 misses: 2% of 2300.04 = 46.0008 → 46.00; H2 beats it, but the reward is 0
    assert result["H1"]["outcome_deduction"] == D("46.00")
    assert result["H2"]["outcome_deduction"] == 0 and result["H2"]["outcome_reward"] == 0


def test_regional_margin_target_is_relative_to_the_region(demo: Any) -> None:
    rows = [*CASES, ("H1", "300.00", "300.00", None, "ungroupable")]
    rule = {
        "id": "grouping",
        "indicator": "grouping_rate",
        "regional_margin": "0",
        "better": "higher",
        "scale": "fixed",
        "deduct": "0.1",
        "reward": "0.01",
    }
    details = outcome_details(settled(demo, rows), rules(outcome=[rule])).to_pylist()
    # region 4 of 5 = 0.8: H1 (2/3) misses → −230.004 → −230.00; H2 (1) beats → 20.0005 → 20.00
    assert [d["target"] for d in details] == ["0.800000", "0.800000"]
    assert [d["amount"] for d in details] == [D("-230.00"), D("20.00")]


def test_values_from_a_csv_file_and_its_errors(demo: Any, tmp_path: Path) -> None:
    good = tmp_path / "bp.csv"
    good.write_text("hospital_id,bp_control_rate\nH1,0.72\nH2,0.84\n", "utf-8")
    the = rules(outcome=[BP_RULE])
    result = by_hospital(settle_period(settled(demo, CASES), the, values=good))
    assert result["H1"]["outcome_deduction"] == D("80.00")
    bad = tmp_path / "bad.csv"
    bad.write_text("hospital_id,bp_control_rate\nH1,0.72\nH2,high\n", "utf-8")
    with pytest.raises(CaseDataError) as err:
        settle_period(settled(demo, CASES), the, values=bad)
    assert (err.value.file, err.value.row, err.value.column) == (
        str(bad),
        3,
        "bp_control_rate",
    )
    twice = tmp_path / "twice.csv"
    twice.write_text("hospital_id,bp_control_rate\nH1,0.72\nH1,0.84\n", "utf-8")
    with pytest.raises(CaseDataError, match="listed twice") as err:
        settle_period(settled(demo, CASES), the, values=twice)
    assert err.value.row == 3
    missing = tmp_path / "missing.csv"
    missing.write_text("hospital_id,other\nH1,0.72\n", "utf-8")
    with pytest.raises(CaseDataError) as err:
        settle_period(settled(demo, CASES), the, values=missing)
    assert err.value.column == "bp_control_rate"
    with pytest.raises(ArgumentError, match="values="):
        settle_period(settled(demo, CASES), the)


@pytest.mark.parametrize(
    ("period", "message"),
    [
        ({"cost_coefficient": {"min": "1.2", "max": "0.8"}}, r"min \(1\.2\) is above"),
        ({"cost_coefficient": {"min": "0.8"}}, "cost_coefficient.max is required"),
        ({"cost_coefficient": {"min": "0.8", "max": "1.2", "apply": "x"}}, "apply must be"),
        ({"outcome": {"id": "x"}}, "array of tables"),
        ({"outcome": [{**BP_RULE, "source": "monitoring"}]}, "not an indicator of"),
        ({"outcome": [{**BP_RULE, "better": "up"}]}, "better must be"),
        ({"outcome": [{**BP_RULE, "regional_margin": "0.1"}]}, "exactly one of target"),
        ({"outcome": [BP_RULE, BP_RULE]}, "unique"),
        ({"outcome": [{**BP_RULE, "deduct": "0", "reward": "0"}]}, "needs a deduct or a reward"),
        ({"outcome": [{**BP_RULE, "scale": "fixed"}]}, "caps apply"),
        ({"outcome": [{**BP_RULE, "target": "0"}]}, "positive"),
        ({"outcome": [{**BP_RULE, "typo": "1"}]}, "unknown key 'typo'"),
    ],
)
def test_malformed_outcome_rules_are_policy_errors(period: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message if "\\" in message else re.escape(message)):
        rules(**period)


def test_old_period_sections_give_the_old_table(demo: Any) -> None:
    the = PeriodRules.from_policy(demo)
    assert not the.pays_for_outcome
    names = settle_period(settled(demo, CASES), the).column_names
    assert "explanation" not in names and names[-1] == "clearing"


@settings(max_examples=60, deadline=None)
@given(
    flagged=st.integers(0, 20),
    extra=st.integers(0, 20),
    r_flagged=st.integers(0, 40),
    r_extra=st.integers(0, 40),
    margin=st.sampled_from(["0", "0.2", "0.5", "1"]),
    payment=st.integers(0, 10**9),
)
def test_the_readmission_rule_is_an_instance_of_the_general_rule(
    flagged: int, extra: int, r_flagged: int, r_extra: int, margin: str, payment: int
) -> None:
    quality = QualityRule("readmitted_31d", D(margin), D("0.10"))
    general = OutcomeRule.of_quality(quality)
    known = flagged + extra
    r_known = known + r_flagged + r_extra
    r_yes = flagged + r_flagged
    value = Fraction(flagged, known) if known else None
    regional = Fraction(r_yes, r_known) if r_known else None
    result, share = general.assess(value, general.target_of(regional))
    assert (result == "missed") == quality.exceeds(flagged, known, r_yes, r_known)
    if result == "missed":
        assert -general.amount(payment, share) == quality.deduction(payment)
    else:
        assert general.amount(payment, share) == 0


cents = st.integers(0, 10**7)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cases=st.lists(
        st.tuples(st.sampled_from(["H1", "H2", "H3"]), cents, cents, st.integers(1, 3)),
        min_size=1,
        max_size=12,
    ),
    bp=st.dictionaries(st.sampled_from(["H1", "H2"]), st.integers(0, 100), max_size=2),
)
def test_outcome_amounts_reconcile(demo: Any, cases: list[Any], bp: dict[str, int]) -> None:
    rows = [(h, str(D(p) / 100), str(D(c) / 100), str(w), "ok") for h, p, c, w in cases]
    table = settled(demo, rows)
    values = pa.table(
        {
            "hospital_id": list(bp),
            "bp_control_rate": [str(D(v) / 100) for v in bp.values()],
        }
    )
    the = rules(cost_coefficient={"min": "0.8", "max": "1.2"}, outcome=[BP_RULE])
    period = settle_period(table, the, values=values).to_pylist()
    details = outcome_details(table, the, values=values).to_pylist()
    for row in period:
        mine = [d for d in details if d["hospital_id"] == row["hospital_id"]]
        assert len(mine) == 2  # one row per rule and hospital: nobody is left out
        adjust = row["coefficient_adjustment"] - row["outcome_deduction"] + row["outcome_reward"]
        assert sum(d["amount"] for d in mine) == adjust
        assert row["due"] == row["payment"] - row["deduction"] + adjust
        assert row["fund_due"] == (
            row["fund_payment"]
            - row["deduction"]
            + adjust
            - row["returned"]
            + row["fund_overspend"]
        )
        assert D("0.8") <= row["cost_coefficient"] <= D("1.2")
        # each amount is the product rounded once, half up (the share shown has 6 decimals)
        for d in mine:
            slack = D("0.005") + D(d["base"]) * D("0.0000005")
            assert abs(d["amount"] - D(d["base"]) * _exact_share(d, the, row)) <= slack
    assert sum(r["payment"] for r in period) == sum(D(p) / 100 for _h, p, _c, _w in cases)


def _exact_share(detail: dict[str, Any], the: PeriodRules, row: dict[str, Any]) -> Decimal:
    if detail["kind"] == "cost_coefficient":
        return row["cost_coefficient"] - 1
    return D(detail["share"])


def test_readmission_deduction_and_outcomes_add_up_and_are_explained(demo: Any) -> None:
    rows = [
        # H1: 1 of 2 readmitted (0.5); H2: 0 of 2; region 1 of 4 = 0.25, × 1.2 = 0.3 < 0.5
        ("H1", "1000.05", "1200.00", "1", "ok", True),
        ("H1", "999.99", "1200.00", "1", "ok", False),
        ("H2", "1000.05", "800.00", "1", "ok", False),
        ("H2", "1000.00", "800.00", "1", "ok", False),
    ]
    the = PeriodRules.from_config(
        {
            **demo.config["period"],
            "cost_coefficient": {"min": "0.9", "max": "1.1"},
        }
    )
    h1 = by_hospital(settle_period(settled(demo, rows), the))["H1"]
    # readmission: 10% of 2000.04 = 200.004 → 200.00; coefficient 1.1: +200.00 (as above)
    assert h1["deduction"] == D("200.00") and h1["coefficient_adjustment"] == D("200.00")
    assert h1["due"] == D("2000.04")
    lines = h1["explanation"].split(" | ")
    assert lines[0] == (
        "quality[0]: readmitted_31d above the regional rate × (1 + 0.20) in 1 group(s) → "
        "−0.10 of their payment = -200.00"
    )
    assert lines[1].startswith("cost_coefficient: cost per weight 1200.000000")


def test_dip_clearing_applies_outcome_rules_with_supplied_values() -> None:
    from test_dip_settle import _year  # the DIP year of hand-computed cases

    from drgkit.settlement._dip_period import dip_clearing

    settled_dip, policy = _year()
    period = dict(policy.config["period"])
    period["outcome"] = [
        {
            "id": "bp_control",
            "indicator": "bp_control_rate",
            "source": "table",
            "target": "0.80",
            "scale": "fixed",
            "deduct": "0.1",
        }
    ]
    with_rule = attrs.evolve(policy, config={**policy.config, "period": period})
    values = pa.table({"hospital_id": ["H1", "H2"], "bp_control_rate": ["0.7", "0.9"]})
    plain = by_hospital(dip_clearing(settled_dip, policy))
    paid = by_hospital(dip_clearing(settled_dip, with_rule, values=values))
    # H1 misses: 10% of its payment, rounded once; its due falls by exactly that much (the
    # retention bands then apply to the lower due)
    h1 = paid["H1"]
    expected = (h1["payment"] * D("0.1")).quantize(D("0.01"), rounding=ROUND_HALF_UP)
    assert h1["outcome_deduction"] == expected > 0
    assert h1["due"] == plain["H1"]["due"] - expected
    assert h1["clearing"] == (
        h1["fund_payment"]
        - h1["deduction"]
        - expected
        - h1["returned"]
        + h1["fund_overspend"]
        - h1["already_paid"]
    )
    assert h1["already_paid"] == plain["H1"]["already_paid"]
    # DIP has no RW and no cost coefficient rule here: only the outcome column moves
    assert paid["H2"]["outcome_deduction"] == 0
    assert paid["H2"]["clearing"] == plain["H2"]["clearing"]
