"""What-if simulation: hand-computed decompositions and exact reconciliation to the cent.

Figures come from drgkit/policies/demo.toml (base rates 15000 employee / 14000 resident yuan
per RW; high outliers above 3× the standard for RW < 1, 2.5× for RW < 3, paid standard +
0.9 × the excess; low below 0.4× paid by item) and demo-weights.csv:

    BZ15 其他神经系统疾患 RW 0.78, level coefficients 0.80 / 1.00 / 1.15
    BR25 脑缺血性疾患 RW 1.02, basic group (基础病组): 1.02 at every level

G45.900 (TIA, 短暂性脑缺血发作) groups to BZ15 under demo_2023 and to BR25 under demo_2024;
I63.900 (cerebral infarction) groups to BR25 under both.
"""

from __future__ import annotations

import csv
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import drgkit
from drgkit import _demo
from drgkit.errors import CaseDataError
from drgkit.settlement import Policy, Reduced, settle
from drgkit.settlement._simulate import COMPONENTS, Simulation, simulate

POLICIES = Path(drgkit.__file__).parent / "policies"
DEMO_WEIGHTS = POLICIES / "demo-weights.csv"
MONEY_COLUMNS = ("payment_base", "payment_regrouped", "payment_alt", "change", *COMPONENTS)

SCHEMA = pa.schema(
    [
        ("case_id", pa.string()),
        ("hospital_id", pa.string()),
        ("hospital_level", pa.string()),
        ("insurance_type", pa.string()),
        ("sex", pa.string()),
        ("age", pa.string()),
        ("department", pa.string()),
        ("los", pa.string()),
        ("leaving_type", pa.string()),
        ("diagnoses", pa.list_(pa.string())),
        ("procedures", pa.list_(pa.string())),
        ("discharge_date", pa.string()),
        ("total_cost", pa.string()),
        ("self_pay", pa.string()),
        ("own_pay", pa.string()),
    ]
)
#: a TIA, 60-year-old man, no complication, level-3 hospital, employee scheme (职工)
TIA = {
    "hospital_id": "H1",
    "hospital_level": "3",
    "insurance_type": "310",
    "sex": "1",
    "age": "60",
    "department": "0303",
    "los": "5",
    "leaving_type": "1",
    "diagnoses": ["G45.900"],
    "procedures": [],
    "discharge_date": "2023-06-01",
    "total_cost": "9000.00",
    "self_pay": "0",
    "own_pay": "0",
}
INFARCTION = {**TIA, "diagnoses": ["I63.900"]}


def cases(*rows: dict) -> pa.Table:
    return pa.Table.from_pylist(
        [{**TIA, "case_id": f"c{k}", **r} for k, r in enumerate(rows)], schema=SCHEMA
    )


def demo(**overrides: str) -> Policy:
    return Policy.from_toml(POLICIES / "demo.toml", overrides=overrides)


def demo_points(**overrides) -> Policy:
    return Policy.from_toml(POLICIES / "demo-points.toml", overrides=overrides)


def rows(sim: Simulation) -> dict[tuple, dict]:
    return {tuple(r[k] for k in sim.by): r for r in sim.table.to_pylist()}


def money(row: dict) -> dict[str, str]:
    return {k: str(row[k]) for k in ("change", *COMPONENTS)}


def assert_reconciles(sim: Simulation) -> None:
    """Every row adds up to its change, rows add up to the total, cases add up too."""
    table = sim.table.to_pylist()
    for r in [*table, sim.total]:
        assert r["regrouping"] + r["casemix"] + r["price"] + r["outlier"] == r["change"]
        assert r["payment_alt"] - r["payment_base"] == r["change"]
        assert r["payment_regrouped"] - r["payment_base"] == r["regrouping"]
    for name in MONEY_COLUMNS:
        assert sum((r[name] for r in table), Decimal(0)) == sim.total[name]
    for name in ("cases", "settled_base", "settled_regrouped", "settled_alt", "not_settled"):
        assert sum(r[name] for r in table) == sim.total[name]
    per_case = sim.cases.to_pylist()
    assert len(per_case) == sim.total["cases"]
    for c in per_case:
        assert c["regrouping"] + c["casemix"] + c["price"] + c["outlier"] == c["change"]
    for name in ("change", "regrouping", "outlier"):
        assert sum((c[name] for c in per_case), Decimal(0)) == sim.total[name]


# --------------------------------------------------------------------------- worked examples


def test_policy_only_is_a_price_effect() -> None:
    """Base rate for employees 15000 → 16500 (residents stay at 14000), same ruleset."""
    data = cases(
        {},  # H1 TIA level 3 employee: BZ15 0.78 × 15000 × 1.15 = 13455.00
        #                               → 0.78 × 16500 × 1.15 = 14800.50 (+1345.50)
        {"insurance_type": "390"},  # H1 resident: 0.78 × 14000 × 1.15 = 12558.00, unchanged
        {"hospital_id": "H2", "hospital_level": "2"},  # 0.78 × 15000 × 1.00 = 11700.00
        #                                            → 0.78 × 16500 × 1.00 = 12870.00 (+1170.00)
        {**INFARCTION, "hospital_id": "H2", "hospital_level": "2"},  # BR25, basic group:
        # 1.02 × 15000 × 1.02 = 15606.00 → 1.02 × 16500 × 1.02 = 17166.60 (+1560.60)
    )
    sim = simulate(
        data,
        base_ruleset="demo_2023",
        base_policy="demo",
        alt_policy=demo(**{"rate.base.employee": "16500"}),
    )
    assert sim.runs == ("base", "alt")  # the ruleset does not change: no BA run
    got = rows(sim)
    assert money(got[("H1",)]) == {
        "change": "1345.50",
        "regrouping": "0.00",
        "casemix": "0.00",
        "price": "1345.50",
        "outlier": "0.00",
    }
    # H2: 1170.00 + 1560.60 = 2730.60
    assert money(got[("H2",)]) == {
        "change": "2730.60",
        "regrouping": "0.00",
        "casemix": "0.00",
        "price": "2730.60",
        "outlier": "0.00",
    }
    assert got[("H1",)]["payment_base"] == Decimal("26013.00")  # 13455.00 + 12558.00
    assert got[("H1",)]["payment_alt"] == Decimal("27358.50")  # 14800.50 + 12558.00
    assert got[("H2",)]["cmi_base"] == got[("H2",)]["cmi_alt"] == Decimal("0.9000")  # (0.78+1.02)/2
    assert sim.total["change"] == Decimal("4076.10")  # 1345.50 + 2730.60
    assert_reconciles(sim)


def test_ruleset_only_is_a_regrouping_effect() -> None:
    """demo_2023 → demo_2024: the TIA moves BZ15 → BR25; the infarction stays in BR25."""
    data = cases({}, INFARCTION)
    sim = simulate(
        data,
        base_ruleset="demo_2023",
        base_policy="demo",
        alt_ruleset="demo_2024",
        by=("hospital_id", "drg"),
    )
    assert sim.runs == ("base", "regrouped")  # same rate policy: BB = BA
    got = rows(sim)
    # TIA: BZ15 0.78 × 15000 × 1.15 = 13455.00 → BR25 1.02 × 15000 × 1.02 = 15606.00
    assert money(got[("H1", "BZ15")]) == {
        "change": "2151.00",
        "regrouping": "2151.00",
        "casemix": "0.00",
        "price": "0.00",
        "outlier": "0.00",
    }
    assert money(got[("H1", "BR25")])["change"] == "0.00"  # 15606.00 in both
    case = sim.cases.to_pylist()[0]
    assert (case["drg_base"], case["drg_alt"]) == ("BZ15", "BR25")
    assert (case["payment_base"], case["payment_alt"]) == (Decimal("13455.00"), Decimal("15606.00"))
    by_alt = simulate(
        data,
        base_ruleset="demo_2023",
        base_policy="demo",
        alt_ruleset="demo_2024",
        by=("hospital_id", "drg_alt"),
    )
    (only,) = by_alt.table.to_pylist()  # both cases are BR25 next year
    assert (only["drg_alt"], only["cases"], str(only["regrouping"])) == ("BR25", 2, "2151.00")
    assert only["cmi_base"] == Decimal("0.9000")  # (0.78 + 1.02) / 2
    assert only["cmi_regrouped"] == only["cmi_alt"] == Decimal("1.0200")
    assert_reconciles(sim)
    assert_reconciles(by_alt)


def test_ruleset_and_policy_together() -> None:
    """demo_2023 → demo_2024 and base rate 15000 → 16500 for employees."""
    data = cases(
        {},  # AA BZ15 13455.00; BA BR25 15606.00 (+2151.00 regrouping);
        #      BB 1.02 × 16500 × 1.02 = 17166.60 (+1560.60 price)
        {"hospital_id": "H2", "total_cost": "40000.00"},
        # AA: BZ15 high threshold 3 × 13455 = 40365 ≥ 40000: normal, 13455.00
        # BA: BR25 threshold 2.5 × 15606 = 39015 < 40000: high outlier,
        #     15606 + 0.9 × (40000 − 39015) = 15606 + 886.50 = 16492.50 → regrouping 3037.50
        # BB: threshold 2.5 × 17166.60 = 42916.50 ≥ 40000: normal again, 17166.60
        #     price 17166.60 − 15606.00 = 1560.60; outlier (0) − (16492.50 − 15606) = −886.50
    )
    sim = simulate(
        data,
        base_ruleset="demo_2023",
        base_policy="demo",
        alt_ruleset="demo_2024",
        alt_policy=demo(**{"rate.base.employee": "16500"}),
    )
    assert sim.runs == ("base", "regrouped", "alt")
    got = rows(sim)
    assert money(got[("H1",)]) == {
        "change": "3711.60",
        "regrouping": "2151.00",
        "casemix": "0.00",
        "price": "1560.60",
        "outlier": "0.00",
    }
    assert money(got[("H2",)]) == {
        "change": "3711.60",
        "regrouping": "3037.50",
        "casemix": "0.00",
        "price": "1560.60",
        "outlier": "-886.50",
    }
    h2 = sim.cases.to_pylist()[1]
    assert (h2["class_base"], h2["class_alt"]) == ("normal", "normal")
    assert h2["payment_regrouped"] == Decimal("16492.50")
    assert sim.settlements["regrouped"].column("payment_class").to_pylist()[1] == "high_outlier"
    assert_reconciles(sim)


def test_a_price_cut_makes_a_high_outlier() -> None:
    """Employees' base rate 15000 → 12000; a TIA that cost 38000.00 (demo_2023, BZ15)."""
    data = cases({"total_cost": "38000.00"})
    # AA: standard 13455.00, high threshold 3 × 13455 = 40365 ≥ 38000: normal, 13455.00
    # BB: standard 0.78 × 12000 × 1.15 = 10764.00, threshold 3 × 10764 = 32292 < 38000:
    #     10764 + 0.9 × (38000 − 32292) = 10764 + 5137.20 = 15901.20
    # price = 10764.00 − 13455.00 = −2691.00; outlier = (15901.20 − 10764) − 0 = 5137.20
    sim = simulate(
        data,
        base_ruleset="demo_2023",
        base_policy="demo",
        alt_policy=demo(**{"rate.base.employee": "12000"}),
    )
    assert money(sim.table.to_pylist()[0]) == {
        "change": "2446.20",
        "regrouping": "0.00",
        "casemix": "0.00",
        "price": "-2691.00",
        "outlier": "5137.20",
    }
    case = sim.cases.to_pylist()[0]
    assert (case["class_base"], case["class_alt"]) == ("normal", "high_outlier")
    assert (case["standard_alt"], case["payment_alt"]) == (Decimal("10764.00"), Decimal("15901.20"))
    assert_reconciles(sim)


def _weights(tmp_path: Path, changes: dict[str, str]) -> Path:
    """A copy of demo-weights.csv with some RWs changed."""
    with open(DEMO_WEIGHTS, encoding="utf-8", newline="") as fh:
        table = list(csv.reader(fh))
    for row in table[1:]:
        row[2] = changes.get(row[0], row[2])
    path = tmp_path / "weights.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(table)
    return path


def test_new_weights_are_a_casemix_effect(tmp_path: Path) -> None:
    """Next year's weights table: BR25 1.02 → 1.10 (alt_weights, same rules)."""
    new = _weights(tmp_path, {"BR25": "1.1000", "BZ15": "0.8100"})
    sim = simulate(
        cases({}),
        base_ruleset="demo_2023",
        base_policy="demo",
        alt_ruleset="demo_2024",
        alt_weights=new,
    )
    # AA BZ15 13455.00; BA BR25 15606.00, u_BA = 15606 / 1.02 = 15300 yuan per RW
    # BB BR25 1.10 × 15000 × 1.02 = 16830.00
    # casemix = (1.10 − 1.02) × 15300 = 1224.00; price = 1.10 × (16830/1.10 − 15300) = 0
    assert money(sim.table.to_pylist()[0]) == {
        "change": "3375.00",
        "regrouping": "2151.00",
        "casemix": "1224.00",
        "price": "0.00",
        "outlier": "0.00",
    }
    assert sim.total["cmi_alt"] == Decimal("1.1000")
    assert_reconciles(sim)

    # a rational split: rate 15000.03, BZ15 0.78 → 0.81, same ruleset
    base = demo(**{"rate.base.employee": "15000.03"})
    sim = simulate(
        cases({}), base_ruleset="demo_2023", base_policy=base, alt_weights=new, weights=DEMO_WEIGHTS
    )
    # S_BA = 0.78 × 15000.03 × 1.15 = 13455.026910 → 13455.03
    # S_BB = 0.81 × 15000.03 × 1.15 = 13972.527945 → 13972.53
    # casemix = (0.81 − 0.78) × 13455.03 / 0.78 = 403.6509 / 0.78 = 517.50115… → 517.50
    # price = 13972.53 − 13455.03 − 517.50 = 0.00 (0.81 × (u_BB − u_BA) = −0.00115…)
    assert money(sim.table.to_pylist()[0]) == {
        "change": "517.50",
        "regrouping": "0.00",
        "casemix": "517.50",
        "price": "0.00",
        "outlier": "0.00",
    }
    assert_reconciles(sim)


def test_points_regrouping_at_the_same_point_value_then_dilution() -> None:
    """Points method, one TIA, budget 8970 yuan, no reserve: a budget-neutral regrouping."""
    policy = demo_points(**{"points.budget": {"all": "8970"}, "points.reserve": "0"})
    sim = simulate(cases({}), base_ruleset="demo_2023", base_policy=policy, alt_ruleset="demo_2024")
    # AA: BZ15 0.78 × 100 × 1.15 = 89.70 points, value 8970 / 89.70 = 100 → 8970.00
    # BA: BR25 1.02 × 100 × 1.02 = 104.04 points at AA's value 100 → 10404.00
    # BB: value 8970 / 104.04 = 86.21684 → 86.2168; 104.04 × 86.2168 = 8969.995872 → 8970.00
    assert sim.runs == ("base", "regrouped", "alt")  # BB computes its own point value
    assert money(sim.table.to_pylist()[0]) == {
        "change": "0.00",
        "regrouping": "1434.00",
        "casemix": "0.00",
        "price": "-1434.00",
        "outlier": "0.00",
    }
    assert_reconciles(sim)


def test_points_standard_of_an_outlier_is_its_normal_payment() -> None:
    """Points method with the point value fixed at 100 yuan; points per RW 100 → 110.

    A TIA (BZ15) that cost 45000.00 is a high outlier: money standard at the reference rate
    0.78 × 15000 × 1.15 = 13455.00, threshold 3 × 13455 = 40365,
    money = 13455 + 0.9 × (45000 − 40365) = 17626.50.
    AA: points 17626.50 × 100 / 15000 = 117.51 → 11751.00; S = 89.70 points → 8970.00
    BB: points 17626.50 × 110 / 15000 = 129.261 → 12926.10; S = 0.78 × 110 × 1.15 = 98.67
        points → 9867.00
    price = 9867.00 − 8970.00 = 897.00; outlier = (12926.10 − 9867) − (11751 − 8970) = 278.10
    """
    data = cases({"total_cost": "45000.00"})
    sim = simulate(
        data,
        base_ruleset="demo_2023",
        base_policy="demo-points",
        alt_policy=demo_points(**{"points.per_rw": "110"}),
        reduced=Reduced({"all": Decimal("100")}),
    )
    assert money(sim.table.to_pylist()[0]) == {
        "change": "1175.10",
        "regrouping": "0.00",
        "casemix": "0.00",
        "price": "897.00",
        "outlier": "278.10",
    }
    case = sim.cases.to_pylist()[0]
    assert case["class_base"] == case["class_alt"] == "high_outlier"
    assert (case["standard_base"], case["standard_alt"]) == (Decimal("8970.00"), Decimal("9867.00"))
    # the settlement's own `standard` column is the money standard at the reference rate
    assert sim.settlements["base"].column("standard").to_pylist() == [Decimal("13455.00")]
    assert_reconciles(sim)


def test_unsettled_cases_are_counted_not_dropped() -> None:
    """A case without sex is invalid in every scenario (0 → 0); a resident case is settled
    under the base policy but not under an alt policy that prices employees only."""
    data = cases({"sex": ""}, {"insurance_type": "390"})
    alt = demo(schemes={"310": "employee"})
    sim = simulate(data, base_ruleset="demo_2023", base_policy="demo", alt_policy=alt)
    (row,) = sim.table.to_pylist()
    assert (row["cases"], row["settled_base"], row["settled_alt"], row["not_settled"]) == (
        2,
        1,
        0,
        1,
    )
    # resident: 0.78 × 14000 × 1.15 = 12558.00 → not settled (scheme_unknown): its standard
    # leaves with its RW (RW_BB = 0): casemix = −12558.00
    assert money(row) == {
        "change": "-12558.00",
        "regrouping": "0.00",
        "casemix": "-12558.00",
        "price": "0.00",
        "outlier": "0.00",
    }
    assert (row["cmi_base"], row["cmi_alt"]) == (Decimal("0.7800"), None)
    invalid, resident = sim.cases.to_pylist()
    assert (invalid["settled_base"], invalid["settled_alt"]) == (False, False)
    assert invalid["payment_base"] is None and invalid["change"] == Decimal("0.00")
    assert all(invalid[c] == 0 for c in COMPONENTS)
    assert resident["payment_alt"] is None
    assert sim.settlements["alt"].column("reason").to_pylist()[1] == "scheme_unknown"
    assert_reconciles(sim)


def test_grouped_input_is_regrouped_when_a_ruleset_is_given() -> None:
    data = (
        cases({}).append_column("status", pa.array(["ok"])).append_column("drg", pa.array(["BR25"]))
    )
    # base_ruleset=None: the cases' own grouping (BR25, 15606.00) against demo_2024 (BR25)
    own = simulate(data, base_ruleset=None, base_policy="demo", alt_ruleset="demo_2024")
    assert own.cases.column("drg_base").to_pylist() == ["BR25"]
    assert own.total["change"] == 0
    assert own.labels["base_ruleset"] == "the cases' own grouping"
    # a ruleset given: grouped again (BZ15 under demo_2023)
    again = simulate(data, base_ruleset="demo_2023", base_policy="demo", alt_ruleset="demo_2024")
    assert again.cases.column("drg_base").to_pylist() == ["BZ15"]
    assert again.total["regrouping"] == Decimal("2151.00")


def test_keys_from_the_input_and_no_keys() -> None:
    data = cases({}, {"leaving_type": "5"}, INFARCTION)
    sim = simulate(
        data,
        base_ruleset="demo_2023",
        base_policy="demo",
        alt_ruleset="demo_2024",
        by="leaving_type",
    )
    assert [(r["leaving_type"], r["cases"]) for r in sim.table.to_pylist()] == [("1", 2), ("5", 1)]
    assert "leaving_type" in sim.cases.column_names
    whole = simulate(
        data, base_ruleset="demo_2023", base_policy="demo", alt_ruleset="demo_2024", by=()
    )
    (row,) = whole.table.to_pylist()
    assert row["change"] == whole.total["change"] == Decimal("4302.00")  # 2 × 2151.00
    assert "合计 total" in whole.render()
    with pytest.raises(CaseDataError, match="cannot group by 'nope'"):
        simulate(data, base_ruleset="demo_2023", base_policy="demo", by=("nope",))
    with pytest.raises(TypeError, match="overrides"):
        simulate(data, base_ruleset="demo_2023", base_policy="demo", overrides={})


def test_render_is_a_readable_table() -> None:
    data = cases({}, {"hospital_id": "H2"})
    sim = simulate(
        data,
        base_ruleset="demo_2023",
        base_policy="demo",
        alt_ruleset="demo_2024",
        alt_policy=demo(**{"rate.base.employee": "16500"}),
    )
    text = sim.render()
    for word in (
        "基线",
        "方案",
        "差额",
        "分组变化",
        "病例组合",
        "价格",
        "极值",
        "合计 total",
        "demo_2023",
        "demo_2024",
        "3,711.60",
        "7,423.20",
    ):
        assert word in text
    lines = text.splitlines()
    assert any(line.startswith("H1") for line in lines)
    assert "1 more rows" in sim.render(max_rows=1)
    assert "change=7423.20" in repr(sim)


# --------------------------------------------------------------------------- properties


class _Named(dict):
    def __repr__(self) -> str:  # keep Hypothesis' reports short
        return f"<scenarios {', '.join(self)}>"


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Named (ruleset, policy) changes; one with every RW of the table perturbed."""
    folder = tmp_path_factory.mktemp("weights")
    with open(DEMO_WEIGHTS, encoding="utf-8", newline="") as fh:
        table = list(csv.reader(fh))
    for k, row in enumerate(table[1:]):
        factor = (Decimal("1.0375"), Decimal("0.9667"), Decimal(1))[k % 3]
        row[2] = str((Decimal(row[2]) * factor).quantize(Decimal("0.0001")))
    perturbed = folder / "perturbed.csv"
    with open(perturbed, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(table)
    dearer = demo(**{"rate.base.employee": "16500.07", "rate.base.resident": "13999.99"})
    return _Named(
        {
            "policy": {"base_ruleset": "demo_2023", "base_policy": "demo", "alt_policy": dearer},
            "ruleset": {
                "base_ruleset": "demo_2023",
                "base_policy": "demo",
                "alt_ruleset": "demo_2024",
            },
            "both": {
                "base_ruleset": "demo_2023",
                "base_policy": "demo",
                "alt_ruleset": "demo_2024",
                "alt_policy": dearer,
                "alt_weights": perturbed,
            },
            "weights": {
                "base_ruleset": "demo_2024",
                "base_policy": "demo",
                "alt_weights": perturbed,
            },
            "points": {
                "base_ruleset": "demo_2023",
                "base_policy": "demo-points",
                "alt_ruleset": "demo_2024",
            },
            "by-date": {
                "base_ruleset": "demo",
                "base_policy": dearer,
                "alt_ruleset": "demo_2024",
                "alt_policy": "demo",
                "alt_weights": perturbed,
            },
        }
    )


def _half_up(q: Fraction) -> Decimal:
    """Yuan, rounded half up (away from zero) to the cent, in integers."""
    cents = q * 100
    whole = (2 * abs(cents.numerator) + cents.denominator) // (2 * cents.denominator)
    return Decimal(whole if cents >= 0 else -whole).scaleb(-2)


def _exact_casemix(case: dict) -> Fraction:
    """(RW_BB − RW_BA) × S_BA / RW_BA, written from the definition (yuan)."""
    rw_ba, rw_bb = case["rw_regrouped"], case["rw_alt"]
    s_ba, s_bb = case["standard_regrouped"], case["standard_alt"]
    if s_ba is not None and rw_ba:
        return (Fraction(rw_bb or 0) - Fraction(rw_ba)) * Fraction(s_ba) / Fraction(rw_ba)
    return Fraction(s_bb) if s_bb is not None else Fraction(0)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 120),
    name=st.sampled_from(["policy", "ruleset", "both", "weights", "points", "by-date"]),
    by=st.sampled_from([("hospital_id",), ("hospital_id", "department", "drg")]),
)
def test_components_add_up_exactly(
    scenarios, seed: int, n: int, name: str, by: tuple[str, ...]
) -> None:
    data = _demo.generate_cases(n, seed=seed)
    spec = scenarios[name]
    sim = simulate(data, by=by, **spec)
    assert_reconciles(sim)
    per_case = sim.cases.to_pylist()
    # the case-mix part of each key is its exact sum, rounded once; price is the rest
    exact: dict[tuple, Fraction] = {}
    for c in per_case:
        key = tuple(c[k] for k in by)
        exact[key] = exact.get(key, Fraction(0)) + _exact_casemix(c)
        s_ba = c["standard_regrouped"] or 0
        s_bb = c["standard_alt"] or 0
        assert c["casemix"] + c["price"] == s_bb - s_ba
        assert c["outlier"] == ((c["payment_alt"] or 0) - s_bb) - (
            (c["payment_regrouped"] or 0) - s_ba
        )
    for key, row in rows(sim).items():
        assert row["casemix"] == _half_up(exact[key])
    # independently: the base payment is what settle() pays
    base = settle(data, spec["base_policy"], spec["base_ruleset"])
    assert (
        sum((p for p in base.column("payment").to_pylist() if p is not None), Decimal(0))
        == sim.total["payment_base"]
    )


# --------------------------------------------------------------------------- real tables


def test_suzhou_2022_to_2023_is_the_published_price_change(shared: Path) -> None:
    """Every group and level of Suzhou's published tables: a normal case costing its 2022
    standard changes by exactly the published 2023 standard − the 2022 one, all of it price
    (same weights, same grouping: the cases are grouped already)."""
    tables = {year: shared / "payment" / f"suzhou-{year}.csv" for year in ("2022", "2023")}
    published = {}
    for year, path in tables.items():
        with open(path, encoding="utf-8", newline="") as fh:
            published[year] = {r["DRG编码"]: r for r in csv.DictReader(fh)}
    columns = {"1": "一级医院支付标准", "2": "二级医院支付标准", "3": "三级医院支付标准"}

    def cents(text: str) -> Decimal:
        return Decimal(text).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    rows_in, expected = [], []
    for code, old in published["2022"].items():
        new = published["2023"].get(code)
        if new is None or code in ("0", "0000"):
            continue
        for level, column in columns.items():
            if not old[column].strip() or not new[column].strip():
                continue
            rows_in.append(
                {
                    "case_id": f"{code}-{level}",
                    "hospital_id": f"L{level}",
                    "hospital_level": level,
                    "insurance_type": "310",
                    "status": "ok",
                    "drg": code,
                    "los": "8",
                    "total_cost": str(cents(old[column])),
                    "self_pay": "0",
                    "own_pay": "0",
                }
            )
            expected.append(cents(new[column]) - cents(old[column]))
    assert len(expected) > 1000
    sim = simulate(
        pa.Table.from_pylist(rows_in),
        base_ruleset=None,
        base_policy="suzhou-2022",
        weights=tables["2022"],
        alt_policy="suzhou-2023",
        alt_weights=tables["2023"],
    )
    per_case = sim.cases.to_pylist()
    assert [c["change"] for c in per_case] == expected
    assert [c["price"] for c in per_case] == expected
    assert all(c["casemix"] == c["regrouping"] == c["outlier"] == 0 for c in per_case)
    assert sim.total["change"] == sum(expected, Decimal(0))
    assert_reconciles(sim)


def test_weights_with_nine_decimals_are_read_exactly(tmp_path: Path) -> None:
    """Qingdao 2023 and Yancheng 2022/2023 publish RW with 9 decimals: simulate reads settle's
    RW column exactly (it used to assume 6 decimals and crashed on such tables)."""
    base_dir, alt_dir = tmp_path / "base", tmp_path / "alt"
    base_dir.mkdir()
    alt_dir.mkdir()
    base_w = _weights(base_dir, {"BR25": "1.020000001"})
    alt_w = _weights(alt_dir, {"BR25": "1.100000009"})
    sim = simulate(
        cases({}), base_ruleset="demo_2024", base_policy="demo", weights=base_w, alt_weights=alt_w
    )
    case = sim.cases.to_pylist()[0]
    assert case["rw_base"] == Decimal("1.020000001")
    assert case["rw_alt"] == Decimal("1.100000009")
    # BR25 is a basic group: coefficient 1.02 at every level, employee rate 15000
    s_base = _half_up(Fraction("1.020000001") * 15000 * Fraction("1.02"))
    s_alt = _half_up(Fraction("1.100000009") * 15000 * Fraction("1.02"))
    assert (s_base, s_alt) == (Decimal("15606.00"), Decimal("16830.00"))  # …0000153, …0001377
    casemix = _half_up(Fraction("0.080000008") * Fraction(s_base) / Fraction("1.020000001"))
    assert sim.total["change"] == s_alt - s_base
    assert sim.total["casemix"] == casemix == Decimal("1224.00")  # 1224.000121…
    assert sim.total["price"] == s_alt - s_base - casemix
    assert sim.total["cmi_base"] == Decimal("1.0200")
    assert_reconciles(sim)
