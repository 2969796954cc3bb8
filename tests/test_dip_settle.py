"""DIP settlement: hand-computed examples per variant, every boundary, the special-review cap,
point values, fast == the Fraction reference (tests/dip_settle_reference.py) on generated
cases, and a partitioned run equal to the single run byte for byte."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dip_settle_reference import Reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drgkit.errors import DrgkitError
from drgkit.settlement import DaskRunner, Policy, settle, settle_dataset
from drgkit.settlement._dip_values import start_point_value

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "drgkit" / "policies"
DEMO = ROOT / "catalogues" / "demo" / "2024"
VARIANTS = ("dip-national-1.0", "dip-taian", "dip-jining")

# packets of the demo catalogue: (packet, kind, score); mean costs: packet_stats.csv
PACKETS = [
    ("K35.8-1", "core", "850"),
    ("I21.0-1", "core", "3000"),
    ("J18.9-0", "primary", "480"),
    ("KBBZ", "blank", "300"),
    ("I63.9-0", "core", "900"),
    ("I21.0-2", "core", "4700"),
]


def grouped(cases: list[dict]) -> pa.Table:
    """Cases as an already-grouped table (the DIP grouper's columns plus the claim's)."""
    dec = pa.decimal128(18, 6)
    return pa.table(
        {
            "case_id": [c["case_id"] for c in cases],
            "status": [c.get("status", "ok") for c in cases],
            "reason": [None] * len(cases),
            "packet": [c.get("packet") for c in cases],
            "packet_kind": [c.get("kind") for c in cases],
            "score": pa.array(
                [Decimal(c["score"]) if c.get("score") else None for c in cases], dec
            ),
            "aux_coefficient": pa.array(
                [Decimal(c["aux"]) if c.get("aux") else None for c in cases], pa.decimal128(12, 6)
            ),
            "catalogue": ["dip_demo_2024"] * len(cases),
            "total_cost": [c["cost"] for c in cases],
            "insurance_type": [c.get("scheme", "employee") for c in cases],
            "hospital_id": [c.get("hospital", "H1") for c in cases],
            "hospital_level": [c.get("level", "3") for c in cases],
        }
    )


def one(policy: str, **case) -> dict:
    case.setdefault("case_id", "1")
    out = settle(grouped([case]), policy)
    return out.to_pylist()[0]


def case(cost: str, packet: str = "K35.8-1", level: str = "3", **kw) -> dict:
    kind, score = next((k, s) for p, k, s in PACKETS if p == packet)
    return {"packet": packet, "kind": kind, "score": score, "cost": cost, "level": level, **kw}


# ------------------------------------------------------------------ hand-computed examples
# K35.8-1: score 850, mean cost 9,100.00 at level 3 (packet_stats.csv)
# national 1.0: level 3 coefficient 1.05; Tai'an 0.7; Jining 1.1


@pytest.mark.parametrize(
    "policy, cost, deviation, points",
    [
        # national 1.0: r < 0.5 low (factor r, coefficients apply); r > 2: r − 2 + 1
        ("dip-national-1.0", "9100", "normal", "892.5000"),  # 850 × 1.05
        ("dip-national-1.0", "4550", "normal", "892.5000"),  # exactly 50%: not low (<)
        ("dip-national-1.0", "4549.99", "low", "446.2490"),  # 892.5 × 4549.99/9100 = 446.24902
        ("dip-national-1.0", "18200", "normal", "892.5000"),  # exactly 2×: not high
        ("dip-national-1.0", "18200.91", "high", "892.5893"),  # 892.5 × 1.0001 = 892.58925, half up
        ("dip-national-1.0", "45500", "high", "3570.0000"),  # exactly 5×: 850 × 1.05 × 4
        ("dip-national-1.0", "45500.01", "extreme", "3570.0010"),  # > 5×: review candidate
        # Tai'an: r ≤ 0.5 low, coefficients not again on outliers; high r − 2 + h (h = 0.7)
        ("dip-taian", "9100", "normal", "595.0000"),  # 850 × 0.7
        ("dip-taian", "4550", "low", "425.0000"),  # exactly 50%: low (≤), 850 × 0.5
        ("dip-taian", "4550.01", "normal", "595.0000"),
        ("dip-taian", "18200", "normal", "595.0000"),
        ("dip-taian", "27300", "high", "1445.0000"),  # 850 × (3 − 2 + 0.7)
        ("dip-taian", "45500", "high", "3145.0000"),  # 850 × 3.7
        ("dip-taian", "54600", "extreme", "3995.0000"),  # 6×: high formula continues, 850 × 4.7
        # Jining: ≤ 0.5 low without coefficients; 2 < r ≤ 5: r − 2 + h with coefficients; > 5: h
        ("dip-jining", "4550", "low", "425.0000"),
        ("dip-jining", "18200", "normal", "935.0000"),  # 850 × 1.1
        ("dip-jining", "45500", "high", "3833.5000"),  # 850 × 4.1 × 1.1
        ("dip-jining", "45500.01", "extreme", "1028.5000"),  # 850 × 1.1 × 1.1
    ],
)
def test_hand_computed_and_boundaries(policy: str, cost: str, deviation: str, points: str):
    row = one(policy, **case(cost))
    assert row["deviation"] == deviation
    assert row["points"] == Decimal(points)
    assert row["scheme"] == "dip" and row["group"] == "K35.8-1"


def test_blank_packet_and_primary_care():
    # blank packet KBBZ (score 300, mean 3,000): national × 0.7; Tai'an cost/mean × 0.4368 × 0.9
    assert one("dip-national-1.0", **case("3000", "KBBZ"))["points"] == Decimal("210")
    assert one("dip-taian", **case("6000", "KBBZ"))["points"] == Decimal("235.8720")
    # primary-care packet: the same points at every level (no hospital coefficient)
    a = one("dip-national-1.0", **case("4800", "J18.9-0", level="3"))
    b = one("dip-national-1.0", **case("4800", "J18.9-0", level="1"))
    assert a["points"] == b["points"] == Decimal("480")


def test_auxiliary_coefficient_applies():
    row = one("dip-national-1.0", **case("28033", "I21.0-1", aux="1.25"))
    assert row["points"] == Decimal("3000") * Decimal("1.25") * Decimal("1.05")


def test_ungroupable_and_unknown_level_are_not_dropped():
    rows = settle(
        grouped(
            [
                {"case_id": "u", "status": "ungroupable", "cost": "1000"},
                {"case_id": "x", **case("9100", level="9")},
            ]
        ),
        "dip-jining",
    ).to_pylist()
    assert [(r["settled"], r["reason"]) for r in rows] == [
        (False, "ungroupable"),
        (False, "level_unknown"),
    ]
    rows = settle(
        grouped([{"case_id": "u", "status": "ungroupable", "cost": "1000"}]), "dip-national-1.0"
    ).to_pylist()
    assert rows[0]["payment_class"] == "ungroupable" and rows[0]["payment"] == Decimal("700")


def test_payment_and_fund_with_the_clearing_point_value():
    cases = [
        {"case_id": str(k), **case(c, scheme=s)}
        for k, (c, s) in enumerate(
            [("9100", "employee"), ("4000", "employee"), ("20000", "resident")]
        )
    ]
    out = settle(grouped(cases), "dip-national-1.0").to_pylist()
    # employee points: 892.5 + 850·1.05·4000/9100 = 892.5 + 392.3077 = 1284.8077
    fund = Policy.from_toml(POLICIES / "dip-national-1.0.toml").dip.fund["employee"]
    pv = Fraction(fund) / Fraction("0.85") / Fraction("1284.8077")
    pv = Fraction(round(pv * 10**6), 10**6)  # (no .5 tie here)
    assert out[0]["payment"] == Decimal(round(Fraction("892.5") * pv * 100)) / 100
    assert out[0]["fund_payment"] == (out[0]["payment"] * Decimal("0.85")).quantize(Decimal("0.01"))


def test_special_review_cap_is_region_wide_and_deterministic():
    # 400 discharges → cap ⌊0.005 × 400⌋ = 2 of the 4 cases above 5×: the two highest r
    cases = [{"case_id": f"c{k:03d}", **case("9100", hospital=f"H{k % 3}")} for k in range(396)]
    extreme = {"e1": "60000", "e2": "91000", "e3": "91000", "e4": "50000"}
    cases += [{"case_id": cid, **case(cost)} for cid, cost in extreme.items()]
    out = {r["case_id"]: r for r in settle(grouped(cases), "dip-national-1.0").to_pylist()}
    assert [cid for cid in extreme if out[cid]["deviation"] == "review"] == ["e2", "e3"]
    assert out["e2"]["payment"] == Decimal("91000")  # by item
    assert out["e1"]["deviation"] == "extreme" and out["e1"]["payment_class"] == "high_outlier"
    # r ties broken by case id: e2 before e3 when the cap is 1
    out = {
        r["case_id"]: r
        for r in settle(grouped(cases[:200] + cases[396:]), "dip-national-1.0").to_pylist()
    }
    assert [cid for cid in extreme if out[cid]["deviation"] == "review"] == ["e2"]


def test_start_of_year_point_value_weights_1_2_7():
    years = [
        {"cost": "1000000", "points": "100000"},
        {"cost": "1200000", "points": "110000"},
        {"cost": "1500000", "points": "120000"},
    ]
    want = Fraction(1000000 + 2 * 1200000 + 7 * 1500000, 100000 + 2 * 110000 + 7 * 120000)
    assert start_point_value(years) == Decimal(round(want * 10**4)) / 10**4


def test_policy_errors_name_the_file(tmp_path):
    text = (
        (POLICIES / "dip-taian.toml")
        .read_text("utf-8")
        .replace('high_add = "hospital"', 'high_add = "two"')
    )
    path = tmp_path / "bad.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(DrgkitError, match=r"dip\.deviation\.high_add") as err:
        Policy.from_toml(path)
    assert "bad.toml" in str(err.value)


# ------------------------------------------------------------------ against the reference
_case = st.builds(
    lambda p, cents, scheme, level, aux: {
        "packet": p[0],
        "kind": p[1],
        "score": p[2],
        "cost": f"{cents // 100}.{cents % 100:02d}",
        "scheme": scheme,
        "level": level,
        "aux": aux,
    },
    st.sampled_from(PACKETS),
    st.one_of(
        st.integers(0, 8_000_000),
        st.sampled_from([455000, 910000, 1820000, 4550000, 300000, 150000, 2400000]),
    ),
    st.sampled_from(["employee", "resident"]),
    st.sampled_from(["1", "2", "3"]),
    st.sampled_from([None, None, "1.25", "1.08"]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_case, min_size=1, max_size=40), st.sampled_from(VARIANTS))
def test_fast_equals_reference(cases, policy):
    for k, c in enumerate(cases):
        c["case_id"] = f"{k:04d}"
        c["status"] = "ungroupable" if k % 7 == 3 else "ok"
    ref = Reference(POLICIES / f"{policy}.toml", DEMO)
    expected, _values = ref.settle(cases)
    out = settle(grouped(cases), policy).to_pylist()
    for c, e, r in zip(cases, expected, out, strict=True):
        assert r["settled"] == (e["class"] != "not_settled"), (c, e, r)
        if not r["settled"]:
            continue
        assert r["payment_class"] == e["class"], (c, e, r)
        if "points" in e:
            assert Fraction(r["points"]) == e["points"], (c, e, r)
        assert Fraction(r["payment"]) == e["payment"], (c, e, r)
        assert Fraction(r["fund_payment"]) == e["fund"], (c, e, r)


def test_fund_identity_after_the_documented_rounding(tmp_path):
    """per_case: Σ fund payments = fund − residue, the residue coming only from rounding the
    point value to value_decimals and each case half up to the cent (bounded, and equal to
    the reference's)."""
    cases = [
        {
            "case_id": f"{k:04d}",
            "status": "ok",
            **case(
                str(3000 + 37 * k),
                PACKETS[k % 5][0],
                level=str(1 + k % 3),
                scheme=("employee", "resident")[k % 2],
            ),
        }
        for k in range(300)
    ]
    from drgkit.settlement._dip_values import fund_residue

    path = tmp_path / "per-case.toml"
    path.write_text(
        (POLICIES / "dip-national-1.0.toml")
        .read_text("utf-8")
        .replace('fund_rounding = "exact"', 'fund_rounding = "per_case"'),
        "utf-8",
    )
    settled = settle(grouped(cases), str(path))
    out = settled.to_pylist()
    ref = Reference(path, DEMO)
    expected, _values = ref.settle(cases)
    policy = Policy.from_toml(path)
    assert policy.dip.fund_rounding == "per_case"
    funds = policy.dip.fund
    for scheme, fund in ((s, Fraction(funds[s])) for s in ("employee", "resident")):
        mine = [r for r in out if r["insurance_type"] == scheme and r["settled"]]
        paid = sum(Fraction(r["fund_payment"]) for r in mine)
        pts = sum(Fraction(r["points"]) for r in mine if r["points"] is not None)
        # exact share of each case before rounding: Σ = fund exactly
        exact = sum(Fraction(r["points"]) * fund / pts for r in mine)
        assert exact == fund
        bound = Fraction(len(mine), 100) + pts * Fraction(1, 2 * 10**6)
        assert abs(fund - paid) <= bound
        assert paid == sum(
            e["fund"]
            for c, e in zip(cases, expected, strict=True)
            if c["scheme"] == scheme and e["class"] != "not_settled"
        )
        # the residue is reported exactly: Σ fund payments + residue = fund, to the cent
        residue = fund_residue(policy, settled)[scheme]
        assert Fraction(residue["fund_payments"]) + Fraction(residue["residue"]) == fund
        assert Fraction(residue["fund_payments"]) == paid


def test_partitioned_and_dask_runs_equal_the_single_run(tmp_path):
    # extreme cases too, so the special-review cap (region-wide) crosses partitions
    cases = [
        {
            "case_id": f"{k:04d}",
            "status": "ok",
            **case(
                str(1000 + 211 * k),
                PACKETS[k % 6][0],
                level=str(1 + k % 3),
                scheme=("employee", "resident")[k % 2],
            ),
        }
        for k in range(400)
    ]
    table = grouped(cases)
    path = tmp_path / "cases.parquet"
    pq.write_table(table, path, row_group_size=100)
    single = settle(table, "dip-national-1.0")
    assert "review" in single.column("deviation").to_pylist()
    local = settle_dataset(path, tmp_path / "out", "dip-national-1.0")
    got = local.table()
    assert len(local.paths) == 4
    assert got.schema == single.schema
    assert got.to_pylist() == single.to_pylist()
    assert (
        local.point_values
        == settle_dataset(
            path, tmp_path / "o2", "dip-national-1.0", row_groups_per_partition=4
        ).point_values
    )
    with DaskRunner(n_workers=2, threads_per_worker=1, processes=False) as runner:
        dask = settle_dataset(path, tmp_path / "dask", "dip-national-1.0", runner=runner)
    for a, b in zip(local.paths, dask.paths, strict=True):
        assert Path(a).read_bytes() == Path(b).read_bytes()


# ------------------------------------------------------------------ prepayment and clearing
def _year() -> tuple[pa.Table, Policy]:
    cases = [
        {
            "case_id": "1",
            **case("9100", level="3", scheme="employee", hospital="H1"),
            "month": "2024-03-02",
        },
        {
            "case_id": "2",
            **case("4000", level="3", scheme="resident", hospital="H1"),
            "month": "2024-03-20",
        },
        {
            "case_id": "3",
            **case("7600", level="2", scheme="employee", hospital="H2"),
            "month": "2024-04-01",
        },
    ]
    table = grouped(cases).append_column("discharge_date", pa.array([c["month"] for c in cases]))
    return settle(table, "dip-national-1.0"), Policy.from_toml(POLICIES / "dip-national-1.0.toml")


def test_monthly_prepayment_with_deposit_hand_computed():
    from drgkit.settlement._dip_period import dip_prepayments

    settled, policy = _year()
    rows = dip_prepayments(settled, policy).to_pylist()
    assert [(r["month"], r["hospital_id"]) for r in rows] == [("2024-03", "H1"), ("2024-04", "H2")]
    # H1, March: case 1 892.5 points × 9.8 = 8746.50; case 2 resident, low r = 4000/9100:
    # 850 × 1.05 × 4000/9100 = 392.3077 points × 9.5 = 3726.92 (3726.92315)
    # patients at the ratios: 8746.50 − 7434.53 (7434.525 up) = 1311.97;
    # 3726.92 − 2608.84 (2608.844) = 1118.08
    h1 = rows[0]
    assert h1["amount"] == Decimal("12473.42")
    assert h1["patient_share"] == Decimal("2430.05")
    assert h1["prepayment"] == Decimal("9039.03")  # (12473.42 − 2430.05) × 0.9 = 9039.033
    assert h1["deposit"] == Decimal("451.95")  # 5%: 451.9515
    assert h1["paid"] == Decimal("8587.08")


def test_annual_clearing_uses_the_period_settlement():
    from drgkit.settlement import settle_period
    from drgkit.settlement._dip_period import dip_clearing, dip_prepayments

    settled, policy = _year()
    pre = dip_prepayments(settled, policy)
    out = {
        r["hospital_id"]: r
        for r in dip_clearing(settled, policy, advance={"H1": 100000}).to_pylist()
    }
    period = {r["hospital_id"]: r for r in settle_period(settled, policy).to_pylist()}
    paid = {r["hospital_id"]: r["paid"] for r in pre.to_pylist()}
    assert out["H1"]["already_paid"] == paid["H1"] + Decimal("1000.00")
    assert out["H1"]["clearing"] == period["H1"]["fund_due"] - paid["H1"] - Decimal("1000")
    assert out["H2"]["clearing"] == period["H2"]["fund_due"] - paid["H2"]
    assert out["H1"]["deposit_released"] == Decimal("451.95")


def test_budget_override_sets_the_dip_fund(tmp_path):
    policy = Policy.from_toml(
        POLICIES / "dip-taian.toml", overrides={"points.budget.employee": "2000000"}
    )
    assert policy.dip.fund["employee"] == Decimal("2000000")
    assert policy.dip.fund["resident"] == Decimal("40000000")


# ------------------------------------------------------------------ across schemes, CLI
@pytest.fixture(scope="module")
def demo_cases(tmp_path_factory) -> Path:
    from drgkit._demo import generate_cases

    path = tmp_path_factory.mktemp("dipcases") / "cases.parquet"
    pq.write_table(generate_cases(300, bad_fraction=0.0), path)
    return path


def test_compare_drg_and_dip_per_hospital(demo_cases):
    from drgkit.settlement._scheme_simulate import compare_schemes

    table = compare_schemes(demo_cases, "demo-points", "dip-national-1.0")
    drg = settle(demo_cases, "demo-points").to_pylist()
    dip = settle(demo_cases, "dip-national-1.0").to_pylist()
    for row in table.to_pylist():
        h = row["hospital_id"]
        want_b = sum(
            (r["payment"] for r in drg if r["hospital_id"] == h and r["settled"]), Decimal(0)
        )
        want_a = sum(
            (r["payment"] for r in dip if r["hospital_id"] == h and r["settled"]), Decimal(0)
        )
        assert (row["payment_base"], row["payment_alt"]) == (want_b, want_a)
        assert row["payment_change"] == (row["normal_alt"] - row["normal_base"]) + (
            row["special_alt"] - row["special_base"]
        )
    assert table.column("cases").to_pylist() and sum(table.column("cases").to_pylist()) == 300


def test_cli_settle_period_and_simulate_with_a_dip_policy(demo_cases, tmp_path):
    from click.testing import CliRunner

    from drgkit.cli import cli

    out = tmp_path / "settled.csv"
    res = CliRunner().invoke(
        cli, ["settle", str(demo_cases), "-p", "dip-jining", "-r", "dip_demo_2024", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "point value (all)" in res.output
    res = CliRunner().invoke(
        cli, ["period", str(out), "-p", "dip-jining", "-o", str(tmp_path / "period.csv")]
    )
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        cli,
        [
            "period",
            str(out),
            "-p",
            "dip-national-1.0",
            "--all-months",
            "-o",
            str(tmp_path / "pre.csv"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "deposit" in (tmp_path / "pre.csv").read_text()
    res = CliRunner().invoke(
        cli,
        [
            "simulate",
            str(demo_cases),
            "--base-policy",
            "demo-points",
            "--alt-policy",
            "dip-taian",
            "-o",
            str(tmp_path / "s.csv"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "payment_change" in (tmp_path / "s.csv").read_text()


def test_both_schemes_name_their_scheme_and_group(demo_cases):
    drg = settle(demo_cases, "demo-points")
    dip = settle(demo_cases, "dip-national-1.0")
    assert set(drg.column("scheme").to_pylist()) == {"drg"}
    assert set(dip.column("scheme").to_pylist()) == {"dip"}
    assert drg.column("group").to_pylist() == drg.column("drg").to_pylist()
    # the money columns period, alliance and simulate read are in both tables, same types
    for name in (
        "payment",
        "fund_payment",
        "patient_share",
        "gain_loss",
        "standard",
        "total_cost",
        "settled",
        "payment_class",
        "hospital_id",
        "department",
    ):
        assert drg.schema.field(name).type == dip.schema.field(name).type, name


def test_dip_settled_csv_reads_back_with_its_types(tmp_path, demo_cases):
    from drgkit.settlement._output import read_settled

    out = tmp_path / "s.csv"
    from drgkit.settlement import settle_file

    settle_file(demo_cases, out, "dip-national-1.0")
    back = read_settled(out)
    direct = settle(demo_cases, "dip-national-1.0")
    for name in ("points", "factor", "score", "payment", "reference_cost"):
        assert back.column(name).type == direct.schema.field(name).type, name
        assert back.column(name).to_pylist() == direct.column(name).to_pylist(), name


def test_ungrouped_cases_with_repeated_ids_partitioned_equal_single(tmp_path):
    from drgkit._demo import generate_cases

    table = generate_cases(400, bad_fraction=0.0)
    ids = table.column("case_id").to_pylist()
    ids[250], ids[399] = ids[10], ids[120]  # repeats across partitions
    table = table.set_column(0, "case_id", pa.array(ids))
    path = tmp_path / "cases.parquet"
    pq.write_table(table, path, row_group_size=100)
    single = settle(table, "dip-national-1.0")
    reasons = single.column("reason").to_pylist()
    assert reasons[250] == reasons[399] == "duplicate_case_id"
    got = settle_dataset(path, tmp_path / "out", "dip-national-1.0").table()
    assert got.to_pylist() == single.to_pylist()


def test_start_point_values_from_a_history_table(tmp_path):
    from drgkit.settlement._dip_values import start_point_values

    path = tmp_path / "history.csv"
    path.write_text(
        "scheme,year,cost,points\n"
        "employee,2023,1500000,120000\nemployee,2021,1000000,100000\n"
        "employee,2022,1200000,110000\nresident,2021,800,100\n"
        "resident,2022,900,100\nresident,2023,1000,100\n",
        "utf-8",
    )
    values = start_point_values(path)
    assert values["resident"] == Decimal("9.6")  # (800 + 2·900 + 7·1000) ÷ (100·10)
    want = Fraction(1000000 + 2 * 1200000 + 7 * 1500000, 100000 + 2 * 110000 + 7 * 120000)
    assert values["employee"] == Decimal(round(want * 10**4)) / 10**4
    path.write_text("scheme,year,cost,points\nemployee,2021,abc,1\n", "utf-8")
    with pytest.raises(DrgkitError, match="cost") as err:
        start_point_values(path)
    assert "history.csv" in str(err.value) and "2" in str(err.value)


# ------------------------------------------------------------------ exact fund rounding
def _pools(out: list[dict], funds: Mapping = ()) -> dict[str, Fraction]:
    """Σ fund payments of the settled rows per fund pool (the scheme, or ``all``)."""
    paid: dict[str, Fraction] = {}
    for r in out:
        if r["settled"]:
            pool = r["insurance_type"] if r["insurance_type"] in funds or not funds else "all"
            paid[pool] = paid.get(pool, 0) + Fraction(r["fund_payment"])
    return paid


def test_exact_fund_rounding_hand_example():
    """Fund 100.00, ratio 0.85, three equal cases: each case's exact fund payment is 33.33…
    and its exact payment 117.647…/3 = 39.2156…; cumulative rounding pays 33.33, 33.34, 33.33
    (Σ = 100.00 exactly) and 39.22, 39.21, 39.22. Rounding the point value (0.043939) and each
    case half up would pay 39.22 and 33.34 each: Σ fund payments 100.02."""
    cases = [{"case_id": str(k), **case("9100")} for k in range(3)]
    out = settle(
        grouped(cases), "dip-national-1.0", overrides={"points.budget.employee": "100"}
    ).to_pylist()
    assert [r["points"] for r in out] == [Decimal("892.5000")] * 3
    assert [r["fund_payment"] for r in out] == [Decimal(x) for x in ("33.33", "33.34", "33.33")]
    assert [r["payment"] for r in out] == [Decimal(x) for x in ("39.22", "39.21", "39.22")]
    assert [r["patient_share"] for r in out] == [Decimal(x) for x in ("5.89", "5.87", "5.89")]
    old = settle(
        grouped(cases),
        "dip-national-1.0",
        overrides={"points.budget.employee": "100", "dip.fund_rounding": "per_case"},
    ).to_pylist()
    assert [r["fund_payment"] for r in old] == [Decimal("33.34")] * 3


def test_exact_fund_rounding_policy_checks(tmp_path):
    text = (POLICIES / "dip-national-1.0.toml").read_text("utf-8")
    bad = tmp_path / "p.toml"
    bad.write_text(text.replace('employee = "66000000"', 'employee = "66000000.005"'), "utf-8")
    with pytest.raises(DrgkitError, match=r"dip\.fund\.employee.*more than 2 decimals"):
        Policy.from_toml(bad)
    assert 'fund_rounding = "exact"' in text
    bad.write_text(text.replace('method = "ratio"', 'method = "claim"'), "utf-8")
    with pytest.raises(DrgkitError, match=r"needs shares\.method = 'ratio'"):
        Policy.from_toml(bad)
    bad.write_text(text.replace('fund_rounding = "exact"', 'fund_rounding = "nearest"'), "utf-8")
    with pytest.raises(DrgkitError, match=r"dip\.fund_rounding must be one of"):
        Policy.from_toml(bad)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_case, min_size=1, max_size=40), st.sampled_from(VARIANTS), st.integers(1, 7))
def test_exact_identity_on_generated_cases(cases, policy, batch_rows):
    """Σ fund payments per pool == the fund to the cent, each case within a cent of its exact
    amount at the unrounded point value, and the same bytes whatever the batch size."""
    for k, c in enumerate(cases):
        c["case_id"] = f"{k:04d}"
        c["status"] = "ungroupable" if k % 5 == 2 else "ok"
    pol = Policy.from_toml(POLICIES / f"{policy}.toml")
    table = grouped(cases)
    single = settle(table, policy)
    assert settle(table, policy, batch_rows=batch_rows).to_pylist() == single.to_pylist()
    out = single.to_pylist()
    ref = Reference(POLICIES / f"{policy}.toml", DEMO)
    expected, _values = ref.settle(cases)
    funds = pol.dip.fund
    for pool, paid in _pools(out, funds).items():
        mine = [
            (r, e)
            for r, e in zip(out, expected, strict=True)
            if r["settled"]
            and (r["insurance_type"] if r["insurance_type"] in funds else "all") == pool
        ]
        pts = sum((e["points"] for _r, e in mine if "points" in e), Fraction(0))
        item = sum((e["item"] for _r, e in mine if "item" in e), Fraction(0))
        fund, ratio = Fraction(funds[pool]), Fraction(pol.fund_ratio[pool])
        if pts:
            assert paid == fund
            v = (fund / ratio - item) / pts
        else:
            v = Fraction(0)
        for r, e in mine:
            x = e["points"] * v if "points" in e else e["item"]
            assert abs(Fraction(r["payment"]) - x) < Fraction(1, 100), (r, x)
            assert abs(Fraction(r["fund_payment"]) - x * ratio) < Fraction(1, 100), (r, x)


def test_exact_identity_partitioned_and_dask(tmp_path):
    """Partitions continue the cumulative rounding where the previous one stopped: Σ fund
    payments == fund per pool on the partitioned and the Dask run, byte-equal to one another
    and equal to the single run (special review crosses partitions too)."""
    cases = [
        {
            "case_id": f"{k:04d}",
            "status": "ungroupable" if k % 13 == 4 else "ok",
            **case(
                str(1000 + 211 * k + (k % 7) * 0.37),
                PACKETS[k % 6][0],
                level=str(1 + k % 3),
                scheme=("employee", "resident")[k % 3 == 0],
            ),
        }
        for k in range(400)
    ]
    table = grouped(cases)
    path = tmp_path / "cases.parquet"
    pq.write_table(table, path, row_group_size=90)
    single = settle(table, "dip-national-1.0")
    assert "review" in single.column("deviation").to_pylist()
    pol = Policy.from_toml(POLICIES / "dip-national-1.0.toml")
    local = settle_dataset(path, tmp_path / "out", "dip-national-1.0")
    assert len(local.paths) == 5
    assert local.table().to_pylist() == single.to_pylist()
    assert _pools(local.table().to_pylist(), pol.dip.fund) == {
        s: Fraction(f) for s, f in pol.dip.fund.items()
    }
    with DaskRunner(n_workers=2, threads_per_worker=1, processes=False) as runner:
        dask = settle_dataset(
            path, tmp_path / "dask", "dip-national-1.0", runner=runner, batch_rows=17
        )
    for a, b in zip(local.paths, dask.paths, strict=True):
        assert Path(a).read_bytes() == Path(b).read_bytes()


# ------------------------------------------------------------------ alliance on DIP output
def test_alliance_split_reads_dip_settled_output_by_cases():
    """An alliance split (volume = "cases") over a DIP-settled table: the ``scheme`` and
    ``group`` columns (dictionary text) do not disturb it; each member's own payment is the Σ
    of its DIP payments, its volume its settled cases, and a referral moves money without
    creating any (Σ claims == Σ payments)."""
    from drgkit.alliance import Alliance, AllianceModel, AllianceRules, Member, split
    from drgkit.settlement._period import OverspendBand, PeriodRules, RetentionBand

    cs = [
        {
            "case_id": f"{k:03d}",
            "hospital": ("H1", "H2", "H3")[k % 3],
            **case(str(5000 + 500 * k), PACKETS[k % 5][0], level=str(3 - k % 3)),
        }
        for k in range(12)
    ]
    cs[5]["cost"] = "x"  # one case not settled: not in the volume
    table = grouped(cs).append_column(
        "referral_from", pa.array([None] * 4 + ["000"] + [None] * 7, pa.string())
    )
    settled = settle(
        table,
        "dip-national-1.0",
        keep=["referral_from"],
        overrides={"points.budget.employee": "100000"},
    )
    assert settled.column("scheme").to_pylist() == ["dip"] * 12
    assert pa.types.is_dictionary(settled.schema.field("scheme").type)
    bands = PeriodRules(
        (RetentionBand(Decimal("0.10"), Decimal("1")), RetentionBand(None, Decimal("0.5"))),
        (OverspendBand(Decimal("0.10"), Decimal("0.5")), OverspendBand(None, Decimal("0"))),
    )
    model = AllianceModel.of(
        (
            Alliance(
                "A",
                (
                    Member("H1", 3, "lead", Decimal("1.2")),
                    Member("H2", 2, "member", Decimal("1")),
                    Member("H3", 1, "member", Decimal("0.8")),
                ),
            ),
        ),
        AllianceRules(package=bands, volume="cases"),
    )
    result = split(settled, model)
    rows = settled.to_pylist()
    members = {m["hospital_id"]: m for m in result.members.to_pylist()}
    for h in ("H1", "H2", "H3"):
        mine = [r for r in rows if r["hospital_id"] == h and r["settled"]]
        assert members[h]["own_payment"] == sum(r["payment"] for r in mine)
        assert members[h]["volume"] == len(mine)
    assert members["H3"]["settled_cases"] == 3  # case 005 (H3) is not settled
    total = sum(r["payment"] for r in rows if r["settled"])
    assert sum(m["claims"] for m in members.values()) == total
    assert any(m["down_received"] or m["up_received"] for m in members.values())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2**62), st.integers(0, 2**40)), min_size=1, max_size=20),
    st.integers(0, 2**62 - 1),
    st.integers(0, 2**62 - 1),
    st.integers(1, 2**62 - 1),
)
def test_cumulative_round_is_exact(rows, a, b, den):
    """The 128-bit kernel (and its Python-integer fallback when a result does not fit) equal
    Fraction arithmetic: (cp·a + ci·b) / den, half up."""
    import numpy as np

    from drgkit.settlement._dip_run import cumulative_round

    cp = np.array([r[0] for r in rows], dtype=np.int64)
    ci = np.array([r[1] for r in rows], dtype=np.int64)
    got = [int(x) for x in cumulative_round(cp, ci, a, b, den)]
    want = [math.floor(Fraction(x * a + y * b, den) + Fraction(1, 2)) for x, y in rows]
    assert got == want
    big = cumulative_round(cp, ci, a * 2**70, b, den)  # beyond the kernel: Python integers
    assert [int(x) for x in big] == [
        math.floor(Fraction(x * a * 2**70 + y * b, den) + Fraction(1, 2)) for x, y in rows
    ]


def test_partition_offsets_survive_the_resume_manifest():
    """A resumed partitioned run reads the reduction back from its manifest: the partitions'
    cumulative offsets must come back exactly, or a resumed partition would restart at 0."""
    import json

    from drgkit.settlement import Reduced
    from drgkit.settlement._bulk import _first_pass_json, _reduction_of
    from drgkit.settlement._passes import Reduction

    reduced = Reduced(
        {"employee": Decimal("12.345678")},
        None,
        frozenset({"c9"}),
        {
            0: {},
            400: {"employee": (12_345_678_901_234, 5_00)},
            900: {"employee": (2**62, 7), "resident": (1, 0)},
        },
    )
    doc = json.loads(json.dumps(_first_pass_json(Reduction(reduced, {}, {}))))
    back = _reduction_of(doc).reduced
    assert back.offsets == reduced.offsets
    assert back.point_values == reduced.point_values and back.approved == reduced.approved
