"""Warning lights, the [monitoring] section and the regional targets: exact boundaries, the
readmission rule shared with period settlement, errors naming key and file."""

from __future__ import annotations

import warnings as pywarnings
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pytest
from test_monitoring import _case, _table

from drgkit.monitoring import (
    DEFAULT_RULES,
    MonitoringError,
    MonitoringRules,
    WarningRule,
    indicators,
    targets,
    warning_details,
    warnings,
)


def _growth_table(pairs: list[tuple[str, str, str]]) -> pa.Table:
    """Hospitals with (id, this year's cost, last year's cost), one case each year."""
    now, before = [], []
    for k, (hid, cost, prev) in enumerate(pairs):
        now.append(_case(f"n{k}", hid, "X", "1", cost, 3))
        old = _case(f"p{k}", hid, "X", "1", prev, 3)
        old["discharge_date"] = old["discharge_date"].replace(year=2022)
        before.append(old)
    return indicators(_table(now), previous=_table(before))


def test_cost_growth_lights_at_the_exact_boundaries():
    """> 8% yellow, > 10% red (the seeds): exactly 8% is green and exactly 10% yellow. The
    float64 of 8% is 0.08000000000000000166…, above the threshold 8%: only the exact comparison
    (from the cents) gets the boundary right."""
    table = _growth_table(
        [
            ("A", "108.00", "100.00"),  # 8%
            ("B", "108.01", "100.00"),  # 8.01%
            ("C", "110.00", "100.00"),  # 10%
            ("D", "110.01", "100.00"),  # 10.01%
            ("E", "90.00", "100.00"),  # −10%
        ]
    )
    assert Fraction(table.column("cost_growth").to_pylist()[0]) > Fraction("0.08")
    lit = warnings(table, DEFAULT_RULES)
    assert lit.column("light").to_pylist() == ["green", "yellow", "yellow", "red", "green"]
    rules = lit.column("rule").to_pylist()
    assert rules[0] is None and rules[1].startswith("cost_growth > 0.08")
    assert rules[3].startswith("cost_growth > 0.10")
    assert lit.column_names[-2:] == ["light", "rule"]


def test_no_light_without_a_value_or_below_the_minimum_cases():
    table = _growth_table([("A", "200.00", "100.00")])
    no_previous = indicators(_table([_case("1", "A", "X", "1", "200.00", 3)]))
    assert warnings(no_previous, DEFAULT_RULES).column("light").to_pylist() == [None]
    strict = [WarningRule("cost_growth", "higher", Decimal("0.08"), Decimal("0.10"), 2)]
    assert warnings(table, strict).column("light").to_pylist() == [None]
    one = [WarningRule("cost_growth", "higher", Decimal("0.08"), Decimal("0.10"), 1)]
    assert warnings(table, one).column("light").to_pylist() == ["red"]


def test_lower_is_worse_and_the_worst_rule_wins():
    rows = [_case(str(k), "A", "X", "1", "10", 3) for k in range(4)]
    rows += [_case("u", "A", "0000", None, "10", 3, status="ungroupable")]  # 4 of 5 grouped
    table = indicators(_table(rows))
    rate = WarningRule("grouping_rate", "lower", Decimal("0.9"), Decimal("0.8"))
    assert warnings(table, [rate]).column("light").to_pylist() == ["yellow"]  # 0.8 is not < 0.8
    harsh = WarningRule("grouping_rate", "lower", Decimal("0.95"), Decimal("0.85"))
    lit = warnings(table, [rate, harsh])
    assert lit.column("light").to_pylist() == ["red"]
    assert lit.column("rule").to_pylist() == ["grouping_rate < 0.85"]
    details = warning_details(table, [rate, harsh])
    assert details.column("light").to_pylist() == ["yellow", "red"]
    assert details.column("value").to_pylist() == [0.8, 0.8]


@pytest.fixture(scope="module")
def demo_settled() -> pa.Table:
    from drgkit._demo import generate_cases
    from drgkit.settlement import settle

    with pywarnings.catch_warnings():
        pywarnings.simplefilter("ignore")
        return settle(generate_cases(600, bad_fraction=0.02), "demo")


def test_readmission_light_is_red_exactly_where_period_settlement_deducts(demo_settled):
    from drgkit._resolve import resolve_policy
    from drgkit.settlement import quality_deductions

    policy = resolve_policy("demo")
    rules = MonitoringRules.from_policy(policy)
    assert [r.indicator for r in rules.rules] == ["cost_growth", "readmission_rate"]
    table = indicators(demo_settled, by=("hospital_id", "drg"))
    lit = warnings(table, rules).to_pylist()
    red = {(r["hospital_id"], r["drg"]) for r in lit if r["light"] == "red"}
    deducted = {
        (r["hospital_id"], r["drg"])
        for r in quality_deductions(demo_settled, policy).to_pylist()
        if r["exceeded"]
    }
    assert deducted and red == deducted
    assert all("质量扣减" in r["rule"] for r in lit if r["light"] == "red")


def test_monitoring_section_in_its_own_file(tmp_path: Path):
    path = tmp_path / "monitoring.toml"
    path.write_text(
        """
[[monitoring.rules]]
indicator = "high_outlier_share"
direction = "higher"
yellow = "0.05"
red = 0.1
min_cases = 20
action = "review coding"

[monitoring.risk]
low = -0.5
zero_deaths = "none"

[[monitoring.targets]]
id = "growth"
indicator = "cost_growth"
max = "0.03"
""",
        encoding="utf-8",
    )
    rules = MonitoringRules.from_toml(path)
    assert rules.rules == (
        WarningRule(
            "high_outlier_share", "higher", Decimal("0.05"), Decimal("0.1"), 20, "review coding"
        ),
    )
    assert rules.risk.low == -0.5 and rules.risk.zero_deaths == "none"
    assert [t.id for t in rules.targets] == ["growth"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[monitoring.rules]]\nindicator = "nope"\nred = 1', r"monitoring.rules\[0\].indicator"),
        ('[[monitoring.rules]]\nindicator = "cmi"', "needs a yellow or a red"),
        (
            '[[monitoring.rules]]\nindicator = "cmi"\nyellow = 2\nred = 1',
            "must be worse than the yellow",
        ),
        ('[[monitoring.rules]]\nindicator = "cmi"\nred = 1\ncolour = 2', "unknown key 'colour'"),
        ('[[monitoring.rules]]\nindicator = "cmi"\nred = "x"', r"monitoring.rules\[0\].red"),
        ('[[monitoring.rules]]\nindicator = "cost_index"\nred = 1\nrelative = true', "relative"),
        ('[[monitoring.targets]]\nid = "t"\nindicator = "cmi"', "needs a min or a max"),
        ("[monitoring.risk]\nlow = 1\nhigh = 0", "low ≤ medium ≤ high"),
    ],
)
def test_a_malformed_section_names_the_key_and_the_file(tmp_path: Path, body: str, message: str):
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(MonitoringError, match=message) as err:
        MonitoringRules.from_toml(path)
    assert str(path) in str(err.value)


def test_targets_met_and_missed_at_their_bounds():
    hospitals = indicators(
        _table(
            [
                _case("1", "A", "X", "1", "80.00", 3),
                _case("2", "B", "X", "1", "120.00", 3),
                _case("3", "C", "X", "1", "100.00", 3),
                _case("4", "C", "X", "1", "100.01", 3),
            ]
        ),
        reference=pa.table({"drg": ["X"], "mean_cost": ["100"], "mean_los": ["3"]}),
    )
    now = [_case("1", "R", "X", "1", "105.00", 3), _case("2", "R", "X", "1", "105.00", 3)]
    before = [_case("9", "R", "X", "1", "200.00", 3)]
    region = indicators(_table(now), by=(), previous=_table(before))  # growth exactly 5%
    got = targets(region, hospitals, referrals={"L1": (3, 10), "L2": (29, 100), "L3": (0, 0)})
    rows = {(r["target"], r["scope_id"]): r for r in got.to_pylist()}
    assert rows[("total_cost_growth", None)]["met"] is True
    # cost per case 105 against 200: −47.5%, down more than 8%
    assert rows[("cost_per_case_down", None)]["met"] is True
    assert rows[("cost_per_case_down", None)]["value"] == -0.475
    # cost index 0.8 and 1.2 are inside the band; 1.00005 too
    assert [rows[("cost_difference_coefficient", h)]["met"] for h in "ABC"] == [True, True, True]
    assert rows[("alliance_referral_rate", "L1")]["met"] is True
    assert rows[("alliance_referral_rate", "L2")]["met"] is False
    assert rows[("alliance_referral_rate", "L3")]["met"] is None
    missing = targets(None).to_pylist()
    assert all(r["met"] is None and r["detail"] for r in missing)


def test_total_cost_growth_just_above_the_target_is_missed():
    now = [_case("1", "R", "X", "1", "105.01", 3)]
    before = [_case("9", "R", "X", "1", "100.00", 3)]
    region = indicators(_table(now), by=(), previous=_table(before))
    got = targets(region).to_pylist()
    assert got[0]["target"] == "total_cost_growth" and got[0]["met"] is False


def test_referral_rate_counts_referrals_between_members_only():
    from drgkit.monitoring import referral_rates

    cases = pa.table(
        {
            "alliance_id": ["L1", "L1", "L1", "L1", "L2", None],
            "link": ["up", "down", "lateral", "none", "outside", "up"],
        }
    )
    assert referral_rates(cases) == {"L1": (2, 4), "L2": (0, 1)}


def test_a_policy_without_a_monitoring_section_has_the_default_targets(tmp_path: Path):
    # as an empty [monitoring] section or a rules file without one: the seeds' targets
    from drgkit.monitoring import default_targets
    from drgkit.registry import default_registry

    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    assert MonitoringRules.from_toml(empty).targets == default_targets()
    assert MonitoringRules.from_config(None).targets == default_targets()
    policy = default_registry().policy("demo")
    assert MonitoringRules.from_policy(policy).targets == default_targets()
