"""What one DIP case will pay in each candidate packet (``candidates(policy=…)``,
``drgkit dip candidates -p``): payments hand-computed under two deviation variants and at the
low boundary, and the as-coded payment equal to what settlement pays the same case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from drgkit.errors import DrgkitError
from drgkit.grouping._dip_explain import candidates
from drgkit.settlement import settle

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "drgkit" / "policies"
# the demo case: I21.0-1 (score 3000, no auxiliary coefficient), mean cost 28033.00 (level
# "all"; the demo catalogue has no level-2 row); policies default to level 2
CASE = {
    "diagnoses": "I21.000|E11.900",
    "procedures": "36.0700x001|99.2900",
    "insurance_type": "310",
}
MEAN = Decimal("28033.00")


def as_coded(cost: str | None, policy: str | Path, point_value: str | None = None):
    case = dict(CASE) if cost is None else {**CASE, "total_cost": cost}
    found = candidates(case, "dip_demo_2024", policy=policy, point_value=point_value)
    assert found[0].change == "as coded" and found[0].packet == "I21.0-1"
    return found[0]


def test_low_case_under_two_variants() -> None:
    # national: r = 1000/28033 < 0.5 -> factor r, coefficients applied again (level 2: 0.95)
    # points = 3000 × 0.95 × 1000/28033 = 101.66589… -> 101.6659; employee point value 9.8:
    # payment 101.6659 × 9.8 = 996.32582 -> 996.33; fund × 0.85 = 846.87695 -> 846.88
    c = as_coded("1000", "dip-national-1.0")
    assert (c.deviation, c.pay_points, c.point_value) == (
        "low",
        Decimal("101.6659"),
        Decimal("9.8"),
    )
    assert (c.payment, c.fund_payment, c.note) == (Decimal("996.33"), Decimal("846.88"), "")
    # Tai'an: same r, coefficients not applied again: 3000 × 1000/28033 = 107.01672… ->
    # 107.0167; point value 14.5: 1551.74215 -> 1551.74; fund × 0.85 = 1318.98083 -> 1318.98
    t = as_coded("1000", "dip-taian")
    assert (t.deviation, t.pay_points, t.point_value) == (
        "low",
        Decimal("107.0167"),
        Decimal("14.5"),
    )
    assert (t.payment, t.fund_payment) == (Decimal("1551.74"), Decimal("1318.98"))


def test_low_boundary_is_strict_or_inclusive_as_the_variant_says() -> None:
    half = str(MEAN / 2)  # 14016.50: r = 0.5 exactly
    # national: r < 0.5 is low, so r = 0.5 is normal: 3000 × 0.95 = 2850 points;
    # × 9.8 = 27930.00; fund × 0.85 = 23740.50
    n = as_coded(half, "dip-national-1.0")
    assert (n.deviation, n.pay_points) == ("normal", Decimal("2850.0000"))
    assert (n.payment, n.fund_payment) == (Decimal("27930.00"), Decimal("23740.50"))
    # Tai'an: r ≤ 0.5 is low: factor 0.5, no coefficients: 1500 points; × 14.5 = 21750.00;
    # fund × 0.85 = 18487.50
    t = as_coded(half, "dip-taian")
    assert (t.deviation, t.pay_points) == ("low", Decimal("1500.0000"))
    assert (t.payment, t.fund_payment) == (Decimal("21750.00"), Decimal("18487.50"))
    # one cent more is normal in Tai'an too: 3000 × 0.631 = 1893 points; × 14.5 = 27448.50
    t2 = as_coded("14016.51", "dip-taian")
    assert (t2.deviation, t2.pay_points, t2.payment) == (
        "normal",
        Decimal("1893.0000"),
        Decimal("27448.50"),
    )


def test_high_case_and_given_point_value() -> None:
    # national, r = 70000/28033 > 2: factor r − 2 + 1; points = 2850 × (70000/28033 − 1)
    # = 4266.6125637… -> 4266.6126; point value given 10: 42666.126 -> 42666.13;
    # fund × 0.85 = 36266.2071 -> 36266.21
    c = as_coded("70000", "dip-national-1.0", point_value="10")
    assert (c.deviation, c.pay_points, c.point_value) == (
        "high",
        Decimal("4266.6126"),
        Decimal("10"),
    )
    assert (c.payment, c.fund_payment) == (Decimal("42666.13"), Decimal("36266.21"))
    # above 5 × mean: a special-review candidate, priced by the high formula meanwhile
    e = as_coded("200000", "dip-national-1.0")
    assert e.deviation == "extreme" and "special review" in e.note


def test_no_cost_is_normal_points_and_said() -> None:
    c = as_coded(None, "dip-national-1.0")
    assert (c.deviation, c.pay_points, c.payment) == (
        "no_reference",
        Decimal("2850.0000"),
        Decimal("27930.00"),
    )
    assert "no cost given" in c.note


def test_every_candidate_is_priced_for_the_same_cost() -> None:
    found = candidates({**CASE, "total_cost": "1000"}, "dip_demo_2024", policy="dip-national-1.0")
    by = {c.packet: c for c in found}
    # I21.0-0 (score 1200) has no mean cost in the demo: normal points 1200 × 0.95 = 1140
    assert (by["I21.0-0"].deviation, by["I21.0-0"].payment) == ("no_reference", Decimal("11172.00"))
    # I21.0-2 (score 4700, mean ≠ I21.0-1's) is low for 1000 yuan too
    assert by["I21.0-2"].deviation == "low" and by["I21.0-2"].payment < Decimal("1000")
    assert all(c.payment is not None for c in found)


def test_as_coded_payment_equals_settlement() -> None:
    # cost 5606.60 = 0.2 × mean: low, 3000 × 0.95 × 0.2 = 570 points; a fund of
    # 570 × 9.8 × 0.85 = 4748.10 makes the clearing point value exactly 9.8
    c = as_coded("5606.60", "dip-national-1.0", point_value="9.8")
    t = pa.table(
        {
            "case_id": ["a"],
            "diagnoses": [CASE["diagnoses"].split("|")],
            "procedures": [CASE["procedures"].split("|")],
            "total_cost": ["5606.60"],
            "insurance_type": ["310"],
        }
    )
    r = settle(t, "dip-national-1.0", overrides={"points.budget.employee": "4748.10"}).to_pylist()[
        0
    ]
    assert (r["deviation"], r["points"]) == (c.deviation, c.pay_points)
    assert (r["payment"], r["fund_payment"]) == (c.payment, c.fund_payment)
    assert c.payment == Decimal("5586.00")


def test_as_coded_payment_equals_settlement_per_case_rounding(tmp_path: Path) -> None:
    # per_case: fund payment = ratio × the rounded payment. Cost 1000: 101.6659 points; a fund
    # of 101.6659 × 9.8 × 0.85 = 846.876947 gives the point value 9.8 exactly; payment
    # 996.33 and fund 0.85 × 996.33 = 846.8805 -> 846.88
    text = (POLICIES / "dip-national-1.0.toml").read_text("utf-8")
    path = tmp_path / "per_case.toml"
    path.write_text(text.replace('fund_rounding = "exact"', 'fund_rounding = "per_case"'), "utf-8")
    c = as_coded("1000", path, point_value="9.8")
    t = pa.table(
        {
            "case_id": ["a"],
            "diagnoses": [CASE["diagnoses"].split("|")],
            "procedures": [CASE["procedures"].split("|")],
            "total_cost": ["1000"],
            "insurance_type": ["310"],
        }
    )
    r = settle(t, path, overrides={"points.budget.employee": "846.876947"}).to_pylist()[0]
    assert (r["points"], r["payment"], r["fund_payment"]) == (
        c.pay_points,
        c.payment,
        c.fund_payment,
    )
    assert (c.payment, c.fund_payment) == (Decimal("996.33"), Decimal("846.88"))


def test_policy_without_point_value_needs_one(tmp_path: Path) -> None:
    text = (POLICIES / "dip-national-1.0.toml").read_text("utf-8")
    path = tmp_path / "nopv.toml"
    path.write_text(
        text.replace('[dip.start_point_value]\nemployee = "9.8"\nresident = "9.5"', ""), "utf-8"
    )
    with pytest.raises(
        DrgkitError,
        match=r"no start-of-year point value for scheme employee"
        r".*--point-value",
    ):
        as_coded("1000", path)
    assert as_coded("1000", path, point_value="9.8").payment == Decimal("996.33")
    with pytest.raises(DrgkitError, match="point value must be above 0"):
        as_coded("1000", path, point_value="0")


def test_unknown_scheme_is_a_reason_not_a_payment() -> None:
    found = candidates(
        {**CASE, "insurance_type": None},
        "dip_demo_2024",
        policy="dip-national-1.0",
        point_value="9.8",
    )
    assert all(c.payment is None and "scheme_unknown" in c.note for c in found)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    exe = Path(sys.executable).with_name("drgkit")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, check=False)


def test_cli_columns_and_json() -> None:
    adhoc = (
        "--dx",
        CASE["diagnoses"],
        "--px",
        CASE["procedures"],
        "--cost",
        "1000",
        "--insurance-type",
        "310",
    )
    out = _cli("dip", "candidates", "-r", "dip_demo_2024", *adhoc, "-p", "dip-national-1.0")
    assert out.returncode == 0, out.stderr
    assert "point value 9.8" in out.stdout
    line = next(x for x in out.stdout.splitlines() if "as coded" in x)
    assert line.split()[:9] == [
        "I21.0-1",
        "core",
        "core",
        "3000",
        "3000",
        "low",
        "101.6659",
        "996.33",
        "846.88",
    ]
    js = _cli(
        "explain",
        "-r",
        "dip_demo_2024",
        *adhoc,
        "--candidates",
        "-p",
        "dip-taian",
        "--point-value",
        "10",
        "--json",
    )
    assert js.returncode == 0, js.stderr
    first = json.loads(js.stdout)["candidates"][0]
    # Tai'an low without coefficients: 107.0167 points × 10 = 1070.167 -> 1070.17
    assert (first["deviation"], first["pay_points"], first["payment"], first["fund_payment"]) == (
        "low",
        "107.0167",
        "1070.17",
        "909.64",
    )
    bad = _cli("dip", "candidates", "-r", "dip_demo_2024", *adhoc, "--point-value", "10")
    assert bad.returncode != 0 and "give -p POLICY" in bad.stderr


def test_cli_policy_needs_a_dip_catalogue_and_candidates() -> None:
    drg = _cli("explain", "-r", "demo", "--dx", "K35.800", "-p", "dip-national-1.0")
    assert drg.returncode == 2 and "applies to DIP catalogues only" in drg.stderr
    plain = _cli("explain", "-r", "dip_demo_2024", "--dx", "K35.800", "-p", "dip-national-1.0")
    assert plain.returncode == 2 and "add --candidates" in plain.stderr
