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
from drgkit.settlement import Policy, PolicyError, settle
from drgkit.settlement._kernel import muldiv_round
from drgkit._money import cents_array, to_cents

POLICIES = Path(drgkit.__file__).parent / "policies"


def cents(value) -> int:
    """Yuan (text or Decimal) -> cents, half up: the expectation side, written independently."""
    return int((Decimal(str(value)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def yuan(c: int) -> Decimal:
    return Decimal(c) / 100


def grouped(rows: list[dict]) -> pa.Table:
    """A table of already-grouped cases (status/drg given), the way `drgkit group` writes."""
    base = {"case_id": "", "hospital_id": "H1", "hospital_level": "3", "insurance_type": "310",
            "status": "ok", "drg": "", "los": "5", "total_cost": "0", "self_pay": "0",
            "own_pay": "0", "discharge_date": "2024-03-01"}
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
                cases.append({"drg": r[code_col], "hospital_level": level,
                              "insurance_type": scheme, "total_cost": yuan(want)})
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
        for ratio, column in ((low_ratio, "低倍临界值（三级）"),
                              (high_ratio, "高倍临界值（三级）")):
            printed = Decimal(r[column])
            exact = ratio * standard
            assert exact.quantize(printed, ROUND_HALF_UP) == printed, (r["DRG编码"], column)
        low, high = low_ratio * standard * 100, high_ratio * standard * 100  # in cents
        below = low.to_integral_value(rounding="ROUND_CEILING") - 1  # largest cost < low
        top = high.to_integral_value(rounding="ROUND_FLOOR")  # largest cost <= high
        for cost, cls in ((below, "low_outlier"), (below + 1, "normal"), (top, "normal"),
                          (top + 1, "high_outlier")):
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
        {"drg": "GZ13", "total_cost": "12000.00"},   # normal: standard
        {"drg": "GZ13", "total_cost": "4882.43"},    # < 4882.44: low, paid by item = cost
        {"drg": "GZ13", "total_cost": "4882.44"},    # not below: normal
        {"drg": "GZ13", "total_cost": "36618.30"},   # not above: normal
        {"drg": "GZ13", "total_cost": "36618.31"},   # high: 12206.10 + 0.9 × 0.01 = 12206.109
        {"drg": "GZ13", "total_cost": "50000.00"},   # high: 12206.10 + 0.9 × 13381.70
    ]
    out = settle(grouped(cases), "demo").to_pylist()
    assert [r["payment_class"] for r in out] == ["normal", "low_outlier", "normal", "normal",
                                                 "high_outlier", "high_outlier"]
    assert [r["payment"] for r in out] == [
        Decimal("12206.10"), Decimal("4882.43"), Decimal("12206.10"), Decimal("12206.10"),
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
    cases = [{"drg": "FM11", "insurance_type": "390", "hospital_level": "1",
              "total_cost": "74748.81"}]  # 2 × 37374.40 = 74748.80: one cent above
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
        "ungroupable", "ambiguous", "unstable", "special_review", "excluded_stay",
        "not_covered"]
    assert [r["payment"] for r in out] == [
        Decimal("3000.00"),
        Decimal("900.05"),  # 1000.05 × 0.9 = 900.045 → half up 900.05
        Decimal("300000.00"), Decimal("88000.00"), Decimal("70000.00"), Decimal("123.45")]
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
    assert [r["reason"] for r in out] == ["sex_missing", "cost_missing", "cost_invalid",
                                         "cost_negative", "scheme_unknown", "level_unknown",
                                         "patient_share_invalid"]
    for r in out:
        assert r["settled"] is False and r["payment_class"] == "not_settled"
        assert r["payment"] is None and r["fund_payment"] is None
    assert out[0]["total_cost"] == Decimal("100.00")  # the cost is still reported


def test_fund_and_patient_split_by_claim_and_by_ratio(tmp_path: Path) -> None:
    cases = [{"drg": "GZ13", "total_cost": "12000", "self_pay": "1000.10",
              "own_pay": "200.00", "insurance_type": "390"}]
    out = settle(grouped(cases), "demo").to_pylist()[0]
    # resident: 0.7076 × 14000 × 1.15 = 11392.36; patient pays 1200.10 from the claim
    assert out["payment"] == Decimal("11392.36")
    assert out["patient_share"] == Decimal("1200.10")
    assert out["fund_payment"] == Decimal("10192.26")
    ratio = Policy.from_toml(POLICIES / "demo.toml", overrides={
        "shares.method": "ratio", "shares.fund_ratio": {"employee": "0.85",
                                                       "resident": "0.655"}})
    out = settle(grouped(cases), ratio).to_pylist()[0]
    # 11392.36 × 0.655 = 7461.9958 → 7462.00; the patient pays the rest
    assert out["fund_payment"] == Decimal("7462.00")
    assert out["patient_share"] == Decimal("3930.36")


@pytest.mark.kernel
def test_points_method_two_passes_by_hand() -> None:
    # three normal cases, level 3, employees: points = RW × 100 × 1.15 (4 decimals)
    rws = [demo_rw("GZ13"), demo_rw("GZ13"), demo_rw("FM11")]
    cases = [{"drg": "GZ13", "total_cost": "12000"}, {"drg": "GZ13", "total_cost": "13000"},
             {"drg": "FM11", "total_cost": "60000"},
             {"drg": "AB19", "total_cost": "1000.00"}]  # unstable: paid 1000.00 by item
    points = [rw * 100 * Decimal("1.15") for rw in rws]  # 81.374, 81.374, 383.755
    assert points == [Decimal("81.37400"), Decimal("81.37400"), Decimal("383.75500")]
    budget = Decimal("100000")
    # distributable = 100000 × (1 − 0.05) − 1000.00 (by item) = 94000.00
    value = (Decimal("94000.00") / sum(points)).quantize(Decimal("0.0001"), ROUND_HALF_UP)
    assert value == Decimal("172.0027")  # 94000 / 546.503 = 172.002660...
    policy = Policy.from_toml(POLICIES / "demo-points.toml",
                              overrides={"points.budget": {"all": str(budget)}})
    out = settle(grouped(cases), policy).to_pylist()
    assert [r["points"] for r in out[:3]] == [Decimal("81.3740"), Decimal("81.3740"),
                                              Decimal("383.7550")]
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
    policy = Policy.from_toml(POLICIES / "demo-points.toml",
                              overrides={"points.budget": {"all": "100000"}})
    out = settle(grouped([{"drg": "GZ13", "total_cost": "50000.00"}]), policy).to_pylist()[0]
    money = Decimal("24249.63")  # as in the rate example: 12206.10 + 0.9 × 13381.70
    assert out["points"] == (money * 100 / Decimal(15000)).quantize(Decimal("0.0001"),
                                                                    ROUND_HALF_UP)


# --------------------------------------------------------------------------- money


@pytest.mark.kernel
def test_money_in_and_out_is_exact() -> None:
    values = pa.array(["1234.56", "12.5", "-3", "1.005", "1.000", "abc", "", None, "1,234.00",
                       ".5", "5."])
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
@given(seed=st.integers(0, 10**6), n=st.integers(1, 600), rows=st.sampled_from([1, 7, 64, 4096]),
       policy=st.sampled_from(["demo", "demo-points"]))
def test_totals_reconcile_and_rows_survive_any_batching(seed, n, rows, policy) -> None:
    cases = _demo.generate_cases(n, seed=seed)
    out = settle(cases, policy, batch_rows=rows)
    whole = settle(cases, policy)
    assert out.num_rows == cases.num_rows
    assert out.to_pylist() == whole.to_pylist()
    assert out.column("case_id").to_pylist() == cases.column("case_id").to_pylist()
    pay = [cents(v) if v is not None else 0 for v in out.column("payment").to_pylist()]
    by_hospital: Counter = Counter()
    for h, p in zip(out.column("hospital_id").to_pylist(), pay, strict=True):
        by_hospital[h] += p
    assert sum(by_hospital.values()) == sum(pay)
    fund = [cents(v) if v is not None else 0 for v in out.column("fund_payment").to_pylist()]
    patient = [cents(v) if v is not None else 0 for v in
               out.column("patient_share").to_pylist()]
    assert all(f + q == p for f, q, p in zip(fund, patient, pay, strict=True))


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
    weights.write_text((POLICIES / "demo-weights.csv").read_text(encoding="utf-8")
                       .replace("0.7076", "0.7O76"), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        Policy.from_toml(POLICIES / "demo.toml", weights=weights)
    assert info.value.column == "RW" and "0.7O76" in str(info.value)
    with pytest.raises(PolicyError, match="published weights table"):
        drgkit.default_registry().policy("suzhou-2023")


def test_policy_hash_changes_with_the_table(tmp_path: Path) -> None:
    a = Policy.from_toml(POLICIES / "demo.toml")
    weights = tmp_path / "w.csv"
    weights.write_text((POLICIES / "demo-weights.csv").read_text(encoding="utf-8")
                       .replace("0.7076", "0.7077"), encoding="utf-8")
    b = Policy.from_toml(POLICIES / "demo.toml", weights=weights)
    assert a.content_hash != b.content_hash and len(a.content_hash) == 64
    out = settle(grouped([{"drg": "GZ13", "total_cost": "100"}]), b).to_pylist()[0]
    assert out["policy"] == "demo" and out["policy_hash"] == b.content_hash


def test_overrides_change_the_policy_hash_and_a_short_budget_is_refused() -> None:
    plain = Policy.from_toml(POLICIES / "demo.toml")
    cheaper = Policy.from_toml(POLICIES / "demo.toml", overrides={"rate.base.employee": "14000"})
    assert plain.content_hash != cheaper.content_hash
    assert plain.content_hash == Policy.from_toml(POLICIES / "demo.toml").content_hash
    short = Policy.from_toml(POLICIES / "demo-points.toml",
                             overrides={"points.budget": {"all": "500"}})
    # 1000.00 paid by item exceeds 500 × 0.95: no money is left for points
    with pytest.raises(PolicyError, match="leaves nothing for points"):
        settle(grouped([{"drg": "AB19", "total_cost": "1000.00"},
                        {"drg": "GZ13", "total_cost": "12000"}]), short)
