"""Settlement against independent expectations: published tables, hand-computed cases,
and sums that must reconcile to the cent."""

from __future__ import annotations

import csv
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import drgkit
from drgkit import _demo
from drgkit._money import cents_array, to_cents
from drgkit.settlement import Policy, PolicyError, settle
from drgkit.settlement._kernel import muldiv_round

POLICIES = Path(drgkit.__file__).parent / "policies"


def cents(value) -> int:
    """Yuan (text or Decimal) -> cents, half up: the expectation side, written independently."""
    return int((Decimal(str(value)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def yuan(c: int) -> Decimal:
    return Decimal(c) / 100


def grouped(rows: list[dict]) -> pa.Table:
    """A table of already-grouped cases (status/drg given), the way `drgkit group` writes."""
    base = {
        "case_id": "",
        "hospital_id": "H1",
        "hospital_level": "3",
        "insurance_type": "310",
        "status": "ok",
        "drg": "",
        "los": "5",
        "total_cost": "0",
        "self_pay": "0",
        "own_pay": "0",
        "discharge_date": "2024-03-01",
    }
    out = []
    for k, row in enumerate(rows):
        rec = {**base, "case_id": f"c{k}", **row}
        out.append({key: (None if v is None else str(v)) for key, v in rec.items()})
    return pa.Table.from_pylist(out)


def read_table(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- published tables

LEVEL_COLUMNS = {
    "suzhou-2023": {"1": "一级医院支付标准", "2": "二级医院支付标准", "3": "三级医院支付标准"},
    "suzhou-2022": {"1": "一级医院支付标准", "2": "二级医院支付标准", "3": "三级医院支付标准"},
    "wuxi-2022": {"1": "一级医院支付标准", "2": "二级医院支付标准", "3": "三级医院支付标准"},
    "jilin-2022": {"3": "支付标准（三级）"},
}


@pytest.mark.parametrize("policy_id", sorted(LEVEL_COLUMNS))
def test_normal_cases_settle_to_the_published_standard(shared: Path, policy_id: str) -> None:
    """Every group and level of the published table: a normal case (cost = its standard)
    is paid exactly the published payment standard, rounded to the cent."""
    table = shared / "payment" / f"{policy_id}.csv"
    rows = read_table(table)
    code_col = next(c for c in rows[0] if c in ("DRG编码", "分组编码"))
    cases, expected = [], []
    for r in rows:
        for level, column in LEVEL_COLUMNS[policy_id].items():
            if r[column].strip() == "" or r[code_col] in ("0", "0000"):
                continue
            want = cents(r[column])
            for scheme in ("310", "390"):
                cases.append(
                    {
                        "drg": r[code_col],
                        "hospital_level": level,
                        "insurance_type": scheme,
                        "total_cost": yuan(want),
                    }
                )
                expected.append(want)
    assert len(expected) > 1000
    policy = drgkit.default_registry().policy(policy_id, weights=table)
    out = settle(grouped(cases), policy)
    pay = [cents(v) for v in out.column("payment").to_pylist()]
    classes = Counter(out.column("payment_class").to_pylist())
    assert classes == {"normal": len(expected)}, classes
    bad = [(c, p, e) for c, p, e in zip(cases, pay, expected, strict=True) if p != e]
    assert not bad, bad[:10]
    assert [cents(v) for v in out.column("standard").to_pylist()] == expected


def test_jilin_published_thresholds_are_reproduced(shared: Path) -> None:
    """Jilin publishes low and high outlier thresholds (0.35 × and 2 × the standard, rounded
    for print). The policy's ratios reproduce every published figure at its printed
    precision, and a case one cent either side of the exact threshold flips class there."""
    table = shared / "payment" / "jilin-2022.csv"
    policy = drgkit.default_registry().policy("jilin-2022", weights=table)
    low_ratio = policy.low.ratio_for(Decimal(1))
    high_ratio = policy.high.ratio_for(Decimal(1))
    cases, expected = [], []
    for r in read_table(table):
        standard = Decimal(r["权重"]) * Decimal(r["费率（三级）"])
        for ratio, column in (
            (low_ratio, "低倍临界值（三级）"),
            (high_ratio, "高倍临界值（三级）"),
        ):
            printed = Decimal(r[column])
            exact = ratio * standard
            assert exact.quantize(printed, ROUND_HALF_UP) == printed, (r["DRG编码"], column)
        low, high = low_ratio * standard * 100, high_ratio * standard * 100  # in cents
        below = low.to_integral_value(rounding="ROUND_CEILING") - 1  # largest cost < low
        top = high.to_integral_value(rounding="ROUND_FLOOR")  # largest cost <= high
        for cost, cls in (
            (below, "low_outlier"),
            (below + 1, "normal"),
            (top, "normal"),
            (top + 1, "high_outlier"),
        ):
            cases.append({"drg": r["DRG编码"], "total_cost": yuan(int(cost))})
            expected.append(cls)
    out = settle(grouped(cases), policy)
    got = out.column("payment_class").to_pylist()
    bad = [(c, g, e) for c, g, e in zip(cases, got, expected, strict=True) if g != e]
    assert not bad, bad[:10]


# --------------------------------------------------------------------------- worked examples


def demo_rw(code: str) -> Decimal:
    rows = {r["DRG编码"]: r for r in read_table(POLICIES / "demo-weights.csv")}
    return Decimal(rows[code]["RW"])


@pytest.mark.kernel
def test_demo_normal_low_high_by_hand() -> None:
    # GZ13: RW 0.7076 (demo table), level 3 coefficient 1.15, employees 15000 yuan per RW
    assert demo_rw("GZ13") == Decimal("0.7076")
    std = Decimal("0.7076") * 15000 * Decimal("1.15")  # = 12206.10
    assert std == Decimal("12206.1000")
    # RW 0.7076 < 1: high threshold 3 × standard = 36618.30; low 0.4 × = 4882.44
    cases = [
        {"drg": "GZ13", "total_cost": "12000.00"},  # normal: standard
        {"drg": "GZ13", "total_cost": "4882.43"},  # < 4882.44: low, paid by item = cost
        {"drg": "GZ13", "total_cost": "4882.44"},  # not below: normal
        {"drg": "GZ13", "total_cost": "36618.30"},  # not above: normal
        {"drg": "GZ13", "total_cost": "36618.31"},  # high: 12206.10 + 0.9 × 0.01 = 12206.109
        {"drg": "GZ13", "total_cost": "50000.00"},  # high: 12206.10 + 0.9 × 13381.70
    ]
    out = settle(grouped(cases), "demo").to_pylist()
    assert [r["payment_class"] for r in out] == [
        "normal",
        "low_outlier",
        "normal",
        "normal",
        "high_outlier",
        "high_outlier",
    ]
    assert [r["payment"] for r in out] == [
        Decimal("12206.10"),
        Decimal("4882.43"),
        Decimal("12206.10"),
        Decimal("12206.10"),
        Decimal("12206.11"),  # 12206.109 rounds half up to .11
        Decimal("24249.63"),  # 12206.10 + 12043.53 = 24249.63
    ]
    assert all(r["standard"] == Decimal("12206.10") for r in out)
    assert out[5]["gain_loss"] == Decimal("24249.63") - Decimal("50000.00")


@pytest.mark.kernel
def test_demo_rw_bands_level_and_scheme_by_hand() -> None:
    # FM11: RW 2.35 × 1.42 = 3.337 ≥ 3 → high ratio 2; resident 14000, level 1 coefficient 0.80
    assert demo_rw("FM11") == Decimal("3.3370")
    std = Decimal("3.337") * 14000 * Decimal("0.80")  # 37374.40
    cases = [
        {"drg": "FM11", "insurance_type": "390", "hospital_level": "1", "total_cost": "74748.81"}
    ]  # 2 × 37374.40 = 74748.80: one cent above
    out = settle(grouped(cases), "demo").to_pylist()[0]
    assert out["standard"] == std.quantize(Decimal("0.01"))
    assert out["payment_class"] == "high_outlier"
    # 37374.40 + 0.9 × 0.01 = 37374.409 → 37374.41
    assert out["payment"] == Decimal("37374.41")


@pytest.mark.kernel
def test_demo_basic_group_same_price_everywhere() -> None:
    # GZ15 is a basic group: coefficient 1.02 at every level
    rw = demo_rw("GZ15")
    cases = [{"drg": "GZ15", "hospital_level": lv, "total_cost": "9000"} for lv in "123"]
    out = settle(grouped(cases), "demo").to_pylist()
    want = (rw * 15000 * Decimal("1.02")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert {r["standard"] for r in out} == {want}


@pytest.mark.kernel
def test_special_cases_by_hand() -> None:
    cases = [
        # ungroupable: the table's row 0000, RW 0.2 × 15000 (no level coefficient) = 3000.00
        {"status": "ungroupable", "drg": "0000", "total_cost": "8000"},
        # ambiguous: by item × 0.9
        {"status": "ambiguous", "drg": "GQY", "total_cost": "1000.05"},
        # unstable group (AB19): by item
        {"drg": "AB19", "total_cost": "300000.00"},
        # special review (PS19): by item
        {"drg": "PS19", "total_cost": "88000.00"},
        # stay over 60 days: by item, whatever the group
        {"drg": "GZ13", "los": "61", "total_cost": "70000"},
        # a group the table does not have: not covered, by item
        {"drg": "XX19", "total_cost": "123.45"},
    ]
    out = settle(grouped(cases), "demo").to_pylist()
    assert [r["payment_class"] for r in out] == [
        "ungroupable",
        "ambiguous",
        "unstable",
        "special_review",
        "excluded_stay",
        "not_covered",
    ]
    assert [r["payment"] for r in out] == [
        Decimal("3000.00"),
        Decimal("900.05"),  # 1000.05 × 0.9 = 900.045 → half up 900.05
        Decimal("300000.00"),
        Decimal("88000.00"),
        Decimal("70000.00"),
        Decimal("123.45"),
    ]
    assert out[0]["standard"] == Decimal("3000.00")
    assert out[1]["standard"] is None


@pytest.mark.kernel
def test_cases_that_cannot_be_settled_say_why() -> None:
    cases = [
        {"status": "invalid", "reason": "sex_missing", "drg": "0000", "total_cost": "100"},
        {"drg": "GZ13", "total_cost": None},
        {"drg": "GZ13", "total_cost": "12.345"},
        {"drg": "GZ13", "total_cost": "-50"},
        {"drg": "GZ13", "total_cost": "100", "insurance_type": "999"},
        {"drg": "GZ13", "total_cost": "100", "hospital_level": "7"},
        {"drg": "GZ13", "total_cost": "100", "self_pay": "1.001"},
    ]
    out = settle(grouped(cases), "demo").to_pylist()
    assert [r["reason"] for r in out] == [
        "sex_missing",
        "cost_missing",
        "cost_invalid",
        "cost_negative",
        "scheme_unknown",
        "level_unknown",
        "patient_share_invalid",
    ]
    for r in out:
        assert r["settled"] is False and r["payment_class"] == "not_settled"
        assert r["payment"] is None and r["fund_payment"] is None
    assert out[0]["total_cost"] == Decimal("100.00")  # the cost is still reported


def test_fund_and_patient_split_by_claim_and_by_ratio(tmp_path: Path) -> None:
    cases = [
        {
            "drg": "GZ13",
            "total_cost": "12000",
            "self_pay": "1000.10",
            "own_pay": "200.00",
            "insurance_type": "390",
        }
    ]
    out = settle(grouped(cases), "demo").to_pylist()[0]
    # resident: 0.7076 × 14000 × 1.15 = 11392.36; patient pays 1200.10 from the claim
    assert out["payment"] == Decimal("11392.36")
    assert out["patient_share"] == Decimal("1200.10")
    assert out["fund_payment"] == Decimal("10192.26")
    ratio = Policy.from_toml(
        POLICIES / "demo.toml",
        overrides={
            "shares.method": "ratio",
            "shares.fund_ratio": {"employee": "0.85", "resident": "0.655"},
        },
    )
    out = settle(grouped(cases), ratio).to_pylist()[0]
    # 11392.36 × 0.655 = 7461.9958 → 7462.00; the patient pays the rest
    assert out["fund_payment"] == Decimal("7462.00")
    assert out["patient_share"] == Decimal("3930.36")


@pytest.mark.kernel
def test_points_method_two_passes_by_hand() -> None:
    # three normal cases, level 3, employees: points = RW × 100 × 1.15 (4 decimals)
    rws = [demo_rw("GZ13"), demo_rw("GZ13"), demo_rw("FM11")]
    cases = [
        {"drg": "GZ13", "total_cost": "12000"},
        {"drg": "GZ13", "total_cost": "13000"},
        {"drg": "FM11", "total_cost": "60000"},
        {"drg": "AB19", "total_cost": "1000.00"},
    ]  # unstable: paid 1000.00 by item
    points = [rw * 100 * Decimal("1.15") for rw in rws]  # 81.374, 81.374, 383.755
    assert points == [Decimal("81.37400"), Decimal("81.37400"), Decimal("383.75500")]
    budget = Decimal("100000")
    # distributable = 100000 × (1 − 0.05) − 1000.00 (by item) = 94000.00
    value = (Decimal("94000.00") / sum(points)).quantize(Decimal("0.0001"), ROUND_HALF_UP)
    assert value == Decimal("172.0027")  # 94000 / 546.503 = 172.002660...
    policy = Policy.from_toml(
        POLICIES / "demo-points.toml", overrides={"points.budget": {"all": str(budget)}}
    )
    out = settle(grouped(cases), policy).to_pylist()
    assert [r["points"] for r in out[:3]] == [
        Decimal("81.3740"),
        Decimal("81.3740"),
        Decimal("383.7550"),
    ]
    pays = [(p * value).quantize(Decimal("0.01"), ROUND_HALF_UP) for p in points]
    assert [r["payment"] for r in out[:3]] == pays  # 13996.55, 13996.55, 66006.90
    assert out[3]["payment"] == Decimal("1000.00") and out[3]["points"] is None
    # the point value does not depend on how the cases are batched
    again = settle(grouped(cases), policy, batch_rows=1).to_pylist()
    assert again == out


@pytest.mark.kernel
def test_points_outliers_convert_money_equivalents() -> None:
    # a high outlier under the points method: its money-equivalent at the reference rate
    # (rounded to the cent) becomes points: cents × 100 / (100 × 15000) per point, 4 decimals
    policy = Policy.from_toml(
        POLICIES / "demo-points.toml", overrides={"points.budget": {"all": "100000"}}
    )
    out = settle(grouped([{"drg": "GZ13", "total_cost": "50000.00"}]), policy).to_pylist()[0]
    money = Decimal("24249.63")  # as in the rate example: 12206.10 + 0.9 × 13381.70
    assert out["points"] == (money * 100 / Decimal(15000)).quantize(
        Decimal("0.0001"), ROUND_HALF_UP
    )


# --------------------------------------------------------------------------- money


@pytest.mark.kernel
def test_money_in_and_out_is_exact() -> None:
    values = pa.array(
        ["1234.56", "12.5", "-3", "1.005", "1.000", "abc", "", None, "1,234.00", ".5", "5."]
    )
    c, flag = to_cents(values, len(values))
    assert c.tolist()[:3] == [123456, 1250, -300]
    assert flag.tolist() == [0, 0, 0, 3, 0, 2, 1, 1, 2, 0, 0]
    f, fflag = to_cents(pa.array([1234.56, 0.1 + 0.2, 3.0]), 3)
    assert f.tolist()[0] == 123456 and fflag.tolist() == [0, 3, 0]
    d, dflag = to_cents(pa.array([Decimal("1.235"), Decimal("4.100")], pa.decimal128(10, 3)), 2)
    assert dflag.tolist() == [3, 0] and d.tolist()[1] == 410
    out = cents_array(pa.array([123456, -5, 0]).to_numpy())
    assert out.to_pylist() == [Decimal("1234.56"), Decimal("-0.05"), Decimal("0.00")]


@pytest.mark.kernel
@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**12), st.integers(0, 10**7), st.integers(1, 10**12))
def test_exact_muldiv_rounding(a: int, b: int, d: int) -> None:
    expected = (Fraction(a * b, d) + Fraction(1, 2)).__floor__()
    if expected < 2**62:
        assert muldiv_round(a, b, d) == expected


# --------------------------------------------------------------------------- reconciliation


@pytest.mark.kernel
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10**6),
    n=st.integers(1, 600),
    rows=st.sampled_from([1, 7, 64, 4096]),
    policy=st.sampled_from(["demo", "demo-points"]),
)
def test_totals_reconcile_and_rows_survive_any_batching(seed, n, rows, policy) -> None:
    cases = _demo.generate_cases(n, seed=seed)
    out = settle(cases, policy, batch_rows=rows)
    whole = settle(cases, policy)
    assert out.num_rows == cases.num_rows
    assert out.to_pylist() == whole.to_pylist()
    assert out.column("case_id").to_pylist() == cases.column("case_id").to_pylist()
    pay = [cents(v) if v is not None else 0 for v in out.column("payment").to_pylist()]
    # every case against an independent reference of the policy's rules
    if policy == "demo":
        check_demo_rates(cases, out)
    else:
        check_one_point_value(out)
    fund = [cents(v) if v is not None else 0 for v in out.column("fund_payment").to_pylist()]
    patient = [cents(v) if v is not None else 0 for v in out.column("patient_share").to_pylist()]
    assert all(f + q == p for f, q, p in zip(fund, patient, pay, strict=True))


DEMO_BASE = {"310": Decimal(15000), "390": Decimal(14000)}
DEMO_COEF_COLUMNS = {"1": "一级医院系数", "2": "二级医院系数", "3": "三级医院系数"}


def half_up_cents(yuan_amount: Decimal) -> int:
    return int((yuan_amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def check_demo_rates(cases: pa.Table, out: pa.Table) -> None:
    """The demo policy (demo.toml) written out again by hand: class, standard, payment and
    the fund/patient split of every settled case."""
    table = {r["DRG编码"]: r for r in read_table(POLICIES / "demo-weights.csv")}
    for case, got in zip(cases.to_pylist(), out.to_pylist(), strict=True):
        if not got["settled"]:
            continue
        cost = Decimal(case["total_cost"])
        base = DEMO_BASE[case["insurance_type"]]
        row = table.get(got["drg"])
        std = None
        los = int(case["los"]) if str(case["los"]).isdigit() else None
        if los is not None and los > 60:
            want, pay = "excluded_stay", cost
        elif got["status"] == "ungroupable":
            want, std = "ungroupable", Decimal(table["0000"]["RW"]) * base
            pay = std
        elif got["status"] == "ambiguous":
            want, pay = "ambiguous", cost * Decimal("0.9")
        elif row is None:
            want, pay = "not_covered", cost
        elif row["病组类型"] in ("不稳定病组", "单议病组"):
            want = "unstable" if row["病组类型"] == "不稳定病组" else "special_review"
            pay = cost
        else:
            rw = Decimal(row["RW"])
            std = rw * base * Decimal(row[DEMO_COEF_COLUMNS[str(case["hospital_level"])]])
            high = std * (3 if rw < 1 else Decimal("2.5") if rw < 3 else 2)
            if cost < std * Decimal("0.4"):
                want, pay = "low_outlier", cost
            elif cost > high:
                want, pay = "high_outlier", std + Decimal("0.9") * (cost - high)
            else:
                want, pay = "normal", std
        assert got["payment_class"] == want, (case, got)
        assert cents(got["payment"]) == half_up_cents(pay), (case, got)
        if std is not None:
            assert cents(got["standard"]) == half_up_cents(std), (case, got)
        claimed = cents(case["self_pay"] or 0) + cents(case["own_pay"] or 0)
        assert cents(got["patient_share"]) == min(claimed, cents(got["payment"])), (case, got)


def check_one_point_value(out: pa.Table) -> None:
    """Every case paid by points is paid round(points × v) for one point value v: the
    intervals [(pay − ½ cent) / points, (pay + ½ cent) / points] share a point."""
    low, high = Fraction(0), Fraction(10**12)
    for got in out.to_pylist():
        if got["points"] is None or not got["points"]:
            continue
        pay, points = Fraction(got["payment"]), Fraction(got["points"])
        low = max(low, (pay - Fraction(1, 200)) / points)
        high = min(high, (pay + Fraction(1, 200)) / points)
    assert low <= high


def test_summary_reconciles_with_rows() -> None:
    cases = _demo.generate_cases(800, seed=4)
    summary = drgkit.settlement.settle_file(cases, "/dev/null", "demo", out_format="csv")
    out = settle(cases, "demo")
    pay = sum(cents(v) for v in out.column("payment").to_pylist() if v is not None)
    assert summary.total("payment") == pay
    assert summary.total("cases") == cases.num_rows == summary.rows


# --------------------------------------------------------------------------- policies


def test_policy_errors_name_the_place(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text("[policy\nid = 1", encoding="utf-8")
    with pytest.raises(PolicyError, match="not a valid TOML"):
        Policy.from_toml(bad)
    text = (POLICIES / "demo.toml").read_text(encoding="utf-8")
    bad.write_text(text.replace('rw = "RW"', 'rw = "权重"'), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        Policy.from_toml(bad, weights=POLICIES / "demo-weights.csv")
    assert info.value.column == "权重" and info.value.row == 1
    bad.write_text(text.replace('ratio = "0.4"', 'ratio = "forty"'), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"outliers\.low\.ratio must be a number"):
        Policy.from_toml(bad, weights=POLICIES / "demo-weights.csv")
    weights = tmp_path / "w.csv"
    weights.write_text(
        (POLICIES / "demo-weights.csv").read_text(encoding="utf-8").replace("0.7076", "0.7O76"),
        encoding="utf-8",
    )
    with pytest.raises(PolicyError) as info:
        Policy.from_toml(POLICIES / "demo.toml", weights=weights)
    assert info.value.column == "RW" and "0.7O76" in str(info.value)
    with pytest.raises(PolicyError, match="published weights table"):
        drgkit.default_registry().policy("suzhou-2023")


def test_policy_hash_changes_with_the_table(tmp_path: Path) -> None:
    a = Policy.from_toml(POLICIES / "demo.toml")
    weights = tmp_path / "w.csv"
    weights.write_text(
        (POLICIES / "demo-weights.csv").read_text(encoding="utf-8").replace("0.7076", "0.7077"),
        encoding="utf-8",
    )
    b = Policy.from_toml(POLICIES / "demo.toml", weights=weights)
    assert a.content_hash != b.content_hash and len(a.content_hash) == 64
    out = settle(grouped([{"drg": "GZ13", "total_cost": "100"}]), b).to_pylist()[0]
    assert out["policy"] == "demo" and out["policy_hash"] == b.content_hash


def test_overrides_change_the_policy_hash_and_a_short_budget_is_refused() -> None:
    plain = Policy.from_toml(POLICIES / "demo.toml")
    cheaper = Policy.from_toml(POLICIES / "demo.toml", overrides={"rate.base.employee": "14000"})
    assert plain.content_hash != cheaper.content_hash
    assert plain.content_hash == Policy.from_toml(POLICIES / "demo.toml").content_hash
    short = Policy.from_toml(
        POLICIES / "demo-points.toml", overrides={"points.budget": {"all": "500"}}
    )
    # 1000.00 paid by item exceeds 500 × 0.95: no money is left for points
    with pytest.raises(PolicyError, match="leaves nothing for points"):
        settle(
            grouped(
                [{"drg": "AB19", "total_cost": "1000.00"}, {"drg": "GZ13", "total_cost": "12000"}]
            ),
            short,
        )


# --------------------------------------------------------------------------- hospitals table


def hospitals_csv(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "hospitals.csv"
    path.write_text("hospital_id,hospital_level,coefficient\n" + body, encoding="utf-8")
    return path


def test_hospitals_table_sets_level_and_coefficient_by_hand(tmp_path: Path) -> None:
    table = hospitals_csv(tmp_path, "H1,2,1.05\nH2,,\n")
    cases = [
        {"hospital_id": "H1", "drg": "GZ13", "total_cost": "12000"},  # the table's level 2
        {"hospital_id": "H2", "drg": "GZ13", "total_cost": "12000"},  # the case's level 3
        {"hospital_id": "H1", "drg": "GZ15", "total_cost": "9000"},
    ]  # basic group
    plain = settle(grouped(cases), "demo", hospitals=table).to_pylist()
    # the coefficient applies only when the policy says so: level 2 (1.00) from the table
    assert [r["standard"] for r in plain] == [
        Decimal("10614.00"),
        Decimal("12206.10"),
        Decimal("9333.00"),
    ]
    assert [r["hospital_level"] for r in plain] == ["2", "3", "2"]
    applied = Policy.from_toml(
        POLICIES / "demo.toml", overrides={"hospital_coefficients.apply": True}
    )
    out = settle(grouped(cases), applied, hospitals=table).to_pylist()
    # 0.7076 × 15000 × 1.00 × 1.05 = 11144.70; H2 has no coefficient: 12206.10;
    # a basic group (0.61 × 15000 × 1.02 = 9333.00) takes no hospital coefficient by default
    assert [r["standard"] for r in out] == [
        Decimal("11144.70"),
        Decimal("12206.10"),
        Decimal("9333.00"),
    ]
    basic_too = Policy.from_toml(
        POLICIES / "demo.toml",
        overrides={"hospital_coefficients.apply": True, "basic_groups.hospital_coefficient": True},
    )
    out = settle(grouped(cases), basic_too, hospitals=table).to_pylist()
    assert out[2]["standard"] == Decimal("9799.65")  # 9333.00 × 1.05


@pytest.mark.parametrize(
    ("body", "row", "column", "words"),
    [
        ("H1,3,1.05\nH2,3,1.1,extra\nH3,3,1\n", 3, None, "could not be split"),
        ("H1,3,1.05\nH1,2,1.1\n", 3, "hospital_id", "listed twice (first on row 2)"),
        ("H1,3,NaN\n", 2, "coefficient", "must be a number above 0"),
        ("H1,3,-1.05\n", 2, "coefficient", "must be a number above 0"),
        ("H1,3,0\n", 2, "coefficient", "must be a number above 0"),
        ("H1,3,Infinity\n", 2, "coefficient", "must be a number above 0"),
        ("H1,3,1.05\nH2,3,one\n", 3, "coefficient", "is not a number"),
        ("H1,3,1.05\n,3,1.1\n", 3, "hospital_id", "hospital id is empty"),
    ],
)
def test_hospitals_table_errors_name_file_row_and_column(
    tmp_path: Path, body: str, row: int, column: str | None, words: str
) -> None:
    table = hospitals_csv(tmp_path, body)
    cases = grouped([{"hospital_id": "H1", "drg": "GZ13", "total_cost": "12000"}])
    with pytest.raises(drgkit.errors.CaseDataError) as info:
        settle(cases, "demo", hospitals=table)
    assert info.value.file == str(table) and info.value.row == row
    assert info.value.column == column and words in str(info.value)


def test_hospitals_mapping_is_checked_too() -> None:
    cases = grouped([{"hospital_id": "H1", "drg": "GZ13", "total_cost": "12000"}])
    with pytest.raises(drgkit.errors.CaseDataError, match="above 0"):
        settle(cases, "demo", hospitals={"H1": ("3", Decimal("-1"))})
    with pytest.raises(drgkit.errors.CaseDataError, match=r"expected \(level, coefficient\)"):
        settle(cases, "demo", hospitals={"H1": "3"})


def test_point_values_and_payments_ignore_the_ambient_decimal_context() -> None:
    """The point value is exact rational arithmetic: a caller's decimal context (here 5
    digits, rounding down) changes neither the value nor any payment."""
    import decimal

    policy = Policy.from_toml(
        POLICIES / "demo-points.toml", overrides={"points.budget": {"all": "100000"}}
    )
    cases = grouped(
        [
            {"drg": "GZ13", "total_cost": "12000"},
            {"drg": "GZ13", "total_cost": "13000"},
            {"drg": "FM11", "total_cost": "60000"},
            {"drg": "GZ13", "total_cost": "50000.00"},
            {"drg": "AB19", "total_cost": "1000.00"},
        ]
    )
    total = drgkit.settlement.Partial({"employee": 5463030}, {"employee": 100000}, 4)
    # (100000 × 0.95 − 1000.00) / 546.3030 = 172.065685... → 172.0657
    assert drgkit.settlement.point_values(policy, total).point_values == {
        "all": Decimal("172.0657")
    }
    plain = settle(cases, policy).to_pylist()
    with decimal.localcontext(decimal.Context(prec=5, rounding=decimal.ROUND_FLOOR)):
        values = drgkit.settlement.point_values(policy, total).point_values
        odd = settle(cases, policy).to_pylist()
    assert values == {"all": Decimal("172.0657")}
    assert odd == plain


def test_a_weights_table_with_only_a_header_is_refused(tmp_path: Path) -> None:
    weights = tmp_path / "w.csv"
    header = (POLICIES / "demo-weights.csv").read_text(encoding="utf-8").splitlines()[0]
    weights.write_text(header + "\n\n", encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        Policy.from_toml(POLICIES / "demo.toml", weights=weights)
    assert info.value.file == str(weights) and info.value.row == 2
    assert "no group rows" in str(info.value)


# --------------------------------------------------------------------------- ruleset check


def test_cases_grouped_with_another_ruleset_give_a_warning() -> None:
    """The demo policy prices the groups of the demo series (demo_2023, demo_2024): cases a
    grouper of another ruleset made are counted, with how many of them are not covered."""
    import warnings

    from drgkit import DataWarning

    cases = grouped(
        [
            {"drg": "GZ13", "ruleset": "demo_2024", "total_cost": "12000"},
            {"drg": "GZ13", "ruleset": "chs_drg_11", "total_cost": "12000"},
            {"drg": "XJ19", "ruleset": "chs_drg_11", "total_cost": "800"},
            {"drg": "GZ15", "ruleset": "demo_2023", "total_cost": "9000"},
        ]
    )
    with pytest.warns(DataWarning) as record:
        out = settle(cases, "demo")
    [message] = [str(w.message) for w in record]
    assert message.startswith(
        "2 of 4 cases were grouped 2 with chs_drg_11 (1 of them "
        "not_covered), but policy demo prices the groups of ruleset demo"
    )
    assert out.column("payment_class").to_pylist()[2] == "not_covered"
    # the counts travel in the run's summary (runners that merge partitions warn from it)
    with pytest.warns(DataWarning):
        summary = drgkit.settlement.settle_file(cases, "/dev/null", "demo", out_format="csv")
    assert (summary.foreign, summary.foreign_not_covered) == ({"chs_drg_11": 2}, {"chs_drg_11": 1})
    accepting = Policy.from_toml(
        POLICIES / "demo.toml", overrides={"policy.accepted_rulesets": ["chs_drg_11"]}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        again = settle(cases, accepting)
    assert again.column("payment").to_pylist() == out.column("payment").to_pylist()
    with pytest.raises(PolicyError, match="accepted_rulesets must be a list"):
        settle(
            cases,
            Policy.from_toml(
                POLICIES / "demo.toml", overrides={"policy.accepted_rulesets": "chs_drg_11"}
            ),
        )


def test_grouping_with_another_ruleset_than_the_policy_gives_a_warning() -> None:
    from conftest import DEMO

    from drgkit import DataWarning

    other = Policy.from_toml(POLICIES / "demo.toml", overrides={"policy.ruleset": "suzhou_2023"})
    cases = _demo.generate_cases(30, seed=2)
    with pytest.warns(
        DataWarning,
        match=r"30 of 30 cases were grouped 30 with demo_2024 .*"
        r"policy demo prices the groups of ruleset suzhou_2023",
    ):
        settle(cases, other, DEMO / "2024")


# --------------------------------------------------------------------------- documented choices


def odd_cent_policy(tmp_path: Path, **overrides) -> Policy:
    """The demo policy with GZ13's RW set to 0.7077: its level-3 employee standard is
    0.7077 × 15000 × 1.15 = 12207.825 exactly, published (and paid) as 12207.83."""
    weights = tmp_path / "w.csv"
    weights.write_text(
        (POLICIES / "demo-weights.csv")
        .read_text(encoding="utf-8")
        .replace(
            "GZ13,其他消化系统诊断，伴并发症或合并症,0.7076",
            "GZ13,其他消化系统诊断，伴并发症或合并症,0.7077",
        ),
        encoding="utf-8",
    )
    return Policy.from_toml(POLICIES / "demo.toml", weights=weights, overrides=overrides)


def test_thresholds_use_the_exact_standard_with_strict_bounds(tmp_path: Path) -> None:
    """Outlier thresholds are ratio × the exact standard (12207.825), not × the rounded one
    (12207.83), and both bounds are strict: low when cost < threshold, high when cost >."""
    policy = odd_cent_policy(tmp_path)
    # low 0.4 × 12207.825 = 4883.13 (rounded standard: 4883.132)
    # high 3 × 12207.825 = 36623.475 (rounded standard: 36623.49)
    cases = [
        {"drg": "GZ13", "total_cost": c}
        for c in ("4883.12", "4883.13", "36623.47", "36623.48", "36623.49", "40000.00")
    ]
    out = settle(grouped(cases), policy).to_pylist()
    assert [r["payment_class"] for r in out] == [
        "low_outlier",
        "normal",  # = 4883.13, not below (below the rounded standard's 4883.132)
        "normal",
        "high_outlier",  # above 36623.475 (not above the rounded standard's 36623.49)
        "high_outlier",
        "high_outlier",
    ]
    assert {r["standard"] for r in out} == {Decimal("12207.83")}
    # high payments from the exact standard and threshold, rounded once:
    # 12207.825 + 0.9 × (36623.48 − 36623.475) = 12207.8295 → 12207.83
    # 12207.825 + 0.9 × (40000.00 − 36623.475) = 15246.6975 → 15246.70
    # (from the rounded standard: 12207.83 + 0.9 × (40000 − 36623.49) = 15246.689 → 15246.69)
    assert out[3]["payment"] == Decimal("12207.83")
    assert out[5]["payment"] == Decimal("15246.70")
    assert out[0]["payment"] == Decimal("4883.12")  # low, by item


def test_the_fund_never_pays_a_negative_amount() -> None:
    """An ungroupable case is paid 3000.00 (row 0000); its patient paid 3055.80 out of pocket.
    The fund pays 0 (not −55.80) and the patient's share is capped at the payment, with a
    warning counting such cases."""
    from drgkit import DataWarning

    cases = [
        {
            "status": "ungroupable",
            "drg": "0000",
            "total_cost": "8000",
            "self_pay": "3000.00",
            "own_pay": "55.80",
        },
        {
            "status": "ungroupable",
            "drg": "0000",
            "total_cost": "8000",
            "self_pay": "2999.99",
            "own_pay": "0",
        },
    ]
    with pytest.warns(DataWarning, match=r"1 case\(s\): the patient's self-pay"):
        out = settle(grouped(cases), "demo").to_pylist()
    assert [(r["payment"], r["fund_payment"], r["patient_share"]) for r in out] == [
        (Decimal("3000.00"), Decimal("0.00"), Decimal("3000.00")),
        (Decimal("3000.00"), Decimal("0.01"), Decimal("2999.99")),
    ]


def test_standard_and_rw_of_cases_paid_by_item() -> None:
    """A case paid by item outside DRG payment (a stay over 60 days, an unstable group) has
    no standard and no rw: none took part. A low outlier paid by item keeps its group's
    standard and RW: its threshold came from them."""
    cases = [
        {"drg": "GZ13", "los": "61", "total_cost": "70000"},
        {"drg": "AB19", "total_cost": "300000.00"},
        {"drg": "GZ13", "total_cost": "4000.00"},
    ]
    out = settle(grouped(cases), "demo").to_pylist()
    assert [r["payment_class"] for r in out] == ["excluded_stay", "unstable", "low_outlier"]
    assert [(r["standard"], r["rw"]) for r in out[:2]] == [(None, None), (None, None)]
    assert (out[2]["standard"], out[2]["rw"]) == (Decimal("12206.10"), Decimal("0.7076"))
    assert out[2]["payment"] == Decimal("4000.00")


def test_special_methods_rw_and_standard_by_hand() -> None:
    cases = [
        {"drg": "AB19", "total_cost": "300000.00"},  # unstable
        {"drg": "PS19", "total_cost": "88000.00"},  # special review
        {"drg": "XX19", "total_cost": "123.45"},
    ]  # not in the table
    policy = Policy.from_toml(
        POLICIES / "demo.toml",
        overrides={
            "special.unstable": {"method": "rw", "rw": "2.5"},
            "special.special_review": {"method": "standard"},
            "special.not_covered": {"method": "standard", "factor": "0.8"},
        },
    )
    out = settle(grouped(cases), policy).to_pylist()
    assert [r["payment_class"] for r in out] == ["unstable", "special_review", "not_covered"]
    # rw: RW 2.5 × 15000, no level coefficient (the policy's own RW row has none) = 37500.00
    assert (out[0]["payment"], out[0]["standard"], out[0]["rw"]) == (
        Decimal("37500.00"),
        Decimal("37500.00"),
        Decimal("2.5"),
    )
    # standard: the group's own, 7.48 × 15000 × 1.15 = 129030.00, whatever the cost
    assert (out[1]["payment"], out[1]["standard"]) == (Decimal("129030.00"), Decimal("129030.00"))
    # standard without a table row: by item × factor, 123.45 × 0.8 = 98.76
    assert (out[2]["payment"], out[2]["standard"]) == (Decimal("98.76"), None)


def test_low_standard_times_and_high_by_item_by_hand() -> None:
    policy = Policy.from_toml(
        POLICIES / "demo.toml",
        overrides={
            "outliers.low": {"ratio": "0.4", "payment": "standard_times", "factor": "0.55"},
            "outliers.high": {"ratio": "3", "payment": "by_item", "factor": "0.95"},
        },
    )
    cases = [
        {"drg": "GZ13", "total_cost": "4000.00"},  # < 4882.44: low
        {"drg": "GZ13", "total_cost": "50000.05"},  # > 36618.30: high
        {"drg": "FM11", "total_cost": "60000.00"},
    ]  # normal: 60000 ≤ 3 × 57563.25
    out = settle(grouped(cases), policy).to_pylist()
    assert [r["payment_class"] for r in out] == ["low_outlier", "high_outlier", "normal"]
    # 12206.10 × 0.55 = 6713.355 → 6713.36; 50000.05 × 0.95 = 47500.0475 → 47500.05
    assert [r["payment"] for r in out[:2]] == [Decimal("6713.36"), Decimal("47500.05")]
    low_standard = Policy.from_toml(
        POLICIES / "demo.toml", overrides={"outliers.low": {"ratio": "0.4", "payment": "standard"}}
    )
    out = settle(grouped(cases[:1]), low_standard).to_pylist()[0]
    assert (out["payment_class"], out["payment"]) == ("low_outlier", Decimal("12206.10"))


def test_los_min_excludes_short_stays_by_hand() -> None:
    policy = Policy.from_toml(POLICIES / "demo.toml", overrides={"exclusions.los_min": 2})
    cases = [
        {"drg": "GZ13", "los": "1", "total_cost": "5000.00"},
        {"drg": "GZ13", "los": "2", "total_cost": "5000.00"},
        {"drg": "GZ13", "los": "60", "total_cost": "5000.00"},
        {"drg": "GZ13", "los": "61", "total_cost": "5000.00"},
        {"drg": "GZ13", "los": None, "total_cost": "5000.00"},
    ]
    out = settle(grouped(cases), policy).to_pylist()
    # below los_min or above los_max: by item; limits are inclusive; an unknown stay is not
    # excluded (nothing says it is outside)
    assert [r["payment_class"] for r in out] == [
        "excluded_stay",
        "normal",
        "normal",
        "excluded_stay",
        "normal",
    ]
    assert [r["payment"] for r in out] == [
        Decimal("5000.00"),
        Decimal("12206.10"),
        Decimal("12206.10"),
        Decimal("5000.00"),
        Decimal("12206.10"),
    ]


def test_settle_command_with_a_hospitals_table(tmp_path: Path) -> None:
    """`drgkit settle --hospitals`: the table's level reaches the output; a repeated id stops
    the run with one error line naming file, row and column, and writes nothing."""
    import pyarrow.parquet as pq
    from click.testing import CliRunner

    from drgkit.cli import cli

    cases = tmp_path / "cases.parquet"
    pq.write_table(grouped([{"hospital_id": "H1", "drg": "GZ13", "total_cost": "12000"}]), cases)
    good = hospitals_csv(tmp_path, "H1,2,\n")
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        cli,
        ["settle", str(cases), "-p", "demo", "--hospitals", str(good), "-o", str(out), "--silent"],
    )
    assert result.exit_code == 0, result.output
    assert read_table(out)[0]["standard"] == "10614.00"  # level 2: 0.7076 × 15000 × 1.00
    out.unlink()
    bad = hospitals_csv(tmp_path, "H1,2,\nH1,3,\n")
    result = CliRunner().invoke(
        cli, ["settle", str(cases), "-p", "demo", "--hospitals", str(bad), "-o", str(out)]
    )
    assert result.exit_code != 0 and not out.exists()
    assert f"{bad}, row 3, column 'hospital_id': hospital H1 is listed twice" in result.output


def test_partitioned_runs_report_the_same_checks(tmp_path: Path) -> None:
    """settle_dataset merges the parts' check counts and warns once, like settle()."""
    import pyarrow.parquet as pq

    from drgkit import DataWarning
    from drgkit.settlement import LocalRunner, settle_dataset

    folder = tmp_path / "parts"
    folder.mkdir()
    for k, drg in enumerate(("GZ13", "XJ19")):
        pq.write_table(
            grouped(
                [{"drg": drg, "ruleset": "chs_drg_11", "total_cost": "800", "self_pay": "900.00"}]
            ),
            folder / f"p{k}.parquet",
        )
    with pytest.warns(DataWarning) as record:
        result = settle_dataset(folder, tmp_path / "out", "demo", runner=LocalRunner())
    messages = sorted(str(w.message) for w in record)
    # both are paid 800.00 by item (a low outlier, a group not covered) < 900.00 self-pay
    assert messages[0].startswith("2 case(s): the patient's self-pay")
    assert messages[1].startswith(
        "2 of 2 cases were grouped 2 with chs_drg_11 (1 of them not_covered)"
    )
    assert result.summary.foreign == {"chs_drg_11": 2}
