"""Medical-alliance splits against worked examples computed by hand (in the comments).

Amounts are written in yuan as a person would; every expectation is a literal number."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner

from drgkit import _demo
from drgkit.alliance import (
    Alliance,
    AllianceError,
    AllianceModel,
    AllianceRules,
    CostIncrease,
    JointService,
    Member,
    SharedCost,
    largest_remainder,
    load_model,
    split,
    split_batches,
)
from drgkit.cli import cli
from drgkit.errors import CaseDataError
from drgkit.settlement._period import OverspendBand, PeriodRules, RetentionBand

D = Decimal
BANDS = PeriodRules(
    (RetentionBand(D("0.10"), D("1")), RetentionBand(None, D("0.5"))),
    (OverspendBand(D("0.10"), D("0.5")), OverspendBand(None, D("0"))),
)


def members(*spec: tuple[str, int, str]) -> tuple[Member, ...]:
    """(hospital id, level, coefficient); the first one is the lead."""
    return tuple(
        Member(h, lv, "lead" if k == 0 else "member", D(c)) for k, (h, lv, c) in enumerate(spec)
    )


THREE = members(("L3", 3, "1.2"), ("M2", 2, "1.0"), ("P1", 1, "0.8"))


def cases(*rows: tuple[Any, ...]) -> pa.Table:
    """(case id, hospital, payment yuan, cost yuan, referral_from[, settled])."""
    cols: dict[str, list[Any]] = {
        k: []
        for k in ("case_id", "hospital_id", "payment", "total_cost", "referral_from", "settled")
    }
    for row in rows:
        case, hosp, pay, cost, ref, *rest = row
        cols["case_id"].append(case)
        cols["hospital_id"].append(hosp)
        cols["payment"].append(None if pay is None else D(pay))
        cols["total_cost"].append(None if cost is None else D(cost))
        cols["referral_from"].append(ref)
        cols["settled"].append(rest[0] if rest else True)
    return pa.table(
        {
            **{
                k: pa.array(v, pa.string())
                for k, v in cols.items()
                if k in ("case_id", "hospital_id", "referral_from")
            },
            "payment": pa.array(cols["payment"], pa.decimal128(18, 2)),
            "total_cost": pa.array(cols["total_cost"], pa.decimal128(18, 2)),
            "settled": pa.array(cols["settled"], pa.bool_()),
        }
    )


def model(*alliances: Alliance, **rules: Any) -> AllianceModel:
    return AllianceModel.of(alliances, AllianceRules(package=BANDS, **rules))


def by_member(result: Any, column: str) -> dict[str, Decimal]:
    t = result.members
    return dict(zip(t["hospital_id"].to_pylist(), t[column].to_pylist(), strict=True))


def links(result: Any) -> dict[str, str]:
    t = result.cases
    return dict(zip(t["case_id"].to_pylist(), t["link"].cast(pa.string()).to_pylist(), strict=True))


# ----------------------------------------------------------------------------- rounding


@pytest.mark.kernel
def test_largest_remainder_by_hand() -> None:
    # 1000.00 by 12 : 5 : 4 -> quotas 57142.857, 23809.524, 19047.619 cents; floors add up to
    # 99998, the two cents left go to .857 (A) and .619 (C)
    assert largest_remainder(100000, [12, 5, 4], ["A", "B", "C"]) == [57143, 23809, 19048]
    # a negative amount is split as its absolute value, negated
    assert largest_remainder(-100000, [12, 5, 4], ["A", "B", "C"]) == [-57143, -23809, -19048]
    # 0.05 in halves: 2.5 cents each, the tie goes to the smaller id whatever the order
    assert largest_remainder(5, [1, 1], ["B", "A"]) == [2, 3]
    assert largest_remainder(5, [1, 1], ["A", "B"]) == [3, 2]
    # 0.10 in thirds: 3.33 each, the left cent to the smallest id
    assert largest_remainder(10, [1, 1, 1], ["x2", "x1", "x3"]) == [3, 4, 3]
    with pytest.raises(ValueError):
        largest_remainder(10, [0, 0], ["a", "b"])


# ----------------------------------------------------------------------------- up-transfers


@pytest.mark.kernel
def test_up_transfer_is_paid_once_and_split_30_70() -> None:
    # P1 treats c1 (paid 100.00) and refers the patient up to L3, whose case c2 is paid
    # 1000.00. The episode is paid once: c1 is absorbed (-100.00 on P1); of c2's 1000.00 the
    # referrer P1 receives 30% = 300.00 and L3 keeps 700.00.
    m = model(Alliance("A", THREE))
    r = split(
        cases(("c1", "P1", "100.00", "90.00", None), ("c2", "L3", "1000.00", "800.00", "c1")), m
    )
    assert links(r) == {"c1": "none", "c2": "up"}
    assert by_member(r, "own_payment") == {"L3": D("1000.00"), "M2": D("0.00"), "P1": D("100.00")}
    assert by_member(r, "referred_up") == {"L3": D("0.00"), "M2": D("0.00"), "P1": D("-100.00")}
    assert by_member(r, "up_received")["P1"] == D("300.00")
    assert by_member(r, "up_paid_out")["L3"] == D("-300.00")
    assert by_member(r, "claims") == {"L3": D("700.00"), "M2": D("0.00"), "P1": D("300.00")}
    row = r.alliances.to_pylist()[0]
    assert row["claims"] == D("1000.00") and row["paid_cases"] == 1
    assert row["absorbed_cases"] == 1 and row["up_links"] == 1
    c = r.cases.to_pylist()
    assert c[0]["absorbed_into"] == "c2" and c[0]["paid"] is False
    assert c[0]["claim"] == D("0.00") and c[1]["claim"] == D("1000.00")
    assert r.transfers.to_pylist() == [
        {
            "alliance_id": "A",
            "kind": "up",
            "case_id": "c2",
            "child_case_id": "c2",
            "parent_case_id": "c1",
            "payer_hospital_id": "L3",
            "payee_hospital_id": "P1",
            "base": D("1000.00"),
            "amount": D("300.00"),
        }
    ]


@pytest.mark.kernel
def test_up_chain_splits_nested_and_rounds_by_largest_remainder() -> None:
    # P1 -> M2 -> L3; L3's case pays 100.01 (10001 cents). First link: the referrer M2's quota
    # is 3000.3 cents, L3's 7000.7: floors 3000 + 7000, the cent left goes to the larger
    # remainder (.7, L3) -> M2 30.00, L3 70.01. Second link: M2's 3000 cents, P1's quota
    # 900 exactly -> P1 9.00, M2 keeps 21.00. 70.01 + 21.00 + 9.00 = 100.01.
    m = model(Alliance("A", THREE))
    r = split(
        cases(
            ("a", "P1", "50.00", None, None),
            ("b", "M2", "80.00", None, "a"),
            ("c", "L3", "100.01", None, "b"),
        ),
        m,
    )
    assert by_member(r, "claims") == {"L3": D("70.01"), "M2": D("21.00"), "P1": D("9.00")}
    assert by_member(r, "referred_up") == {"L3": D("0.00"), "M2": D("-80.00"), "P1": D("-50.00")}
    assert [
        (t["payer_hospital_id"], t["payee_hospital_id"], t["base"], t["amount"])
        for t in r.transfers.to_pylist()
    ] == [("L3", "M2", D("100.01"), D("30.00")), ("M2", "P1", D("30.00"), D("9.00"))]
    assert r.cases["absorbed_into"].to_pylist() == ["c", "c", None]
    assert r.alliances["claims"].to_pylist() == [D("100.01")]


@pytest.mark.kernel
def test_up_split_tie_goes_to_the_smaller_hospital_id() -> None:
    # a 50/50 split of 0.05: 2.5 cents each; the tie goes to the smaller id
    half = D("0.5")
    for lead, primary, referrer_gets in (("Z9", "A1", D("0.03")), ("A9", "Z1", D("0.02"))):
        m = model(Alliance("A", members((lead, 3, "1"), (primary, 1, "1"))), up_referrer_share=half)
        r = split(cases(("p", primary, "1.00", None, None), ("q", lead, "0.05", None, "p")), m)
        assert by_member(r, "up_received")[primary] == referrer_gets


@pytest.mark.kernel
def test_conflicting_up_children_the_smallest_case_id_keeps_the_link() -> None:
    # two cases name the same referring case; only one episode can absorb it
    m = model(Alliance("A", THREE))
    rows = [
        ("p", "P1", "10.00", None, None),
        ("y2", "L3", "200.00", None, "p"),
        ("y1", "M2", "100.00", None, "p"),
    ]
    for order in (rows, rows[::-1]):
        r = split(cases(*order), m)
        assert links(r) == {"p": "none", "y1": "up", "y2": "conflict"}
        assert by_member(r, "claims") == {"L3": D("200.00"), "M2": D("70.00"), "P1": D("30.00")}


# ----------------------------------------------------------------------------- down-transfers


@pytest.mark.kernel
def test_down_transfer_surplus_split_50_50_and_losses() -> None:
    # L3's case s (paid 5000.00) sends the patient down to P1 for rehabilitation: case d paid
    # 800.00 at a cost of 600.00, surplus 200.00 -> the sender L3 receives 100.00. Case e
    # (loss 50.00) keeps its loss by default; with down_share_losses the sender bears half.
    rows = (
        ("s", "L3", "5000.00", "4000.00", None),
        ("d", "P1", "800.00", "600.00", "s"),
        ("e", "P1", "300.00", "350.00", "s"),
        ("f", "P1", "100.00", None, "s"),
    )
    r = split(cases(*rows), model(Alliance("A", THREE)))
    assert links(r) == {"s": "none", "d": "down", "e": "down", "f": "down"}
    assert by_member(r, "down_received")["L3"] == D("100.00")
    assert by_member(r, "down_paid_out")["P1"] == D("-100.00")
    assert r.cases["down_surplus"].to_pylist() == [None, D("200.00"), None, None]
    assert r.alliances["claims"].to_pylist() == [D("6200.00")]  # nothing absorbed
    r = split(cases(*rows), model(Alliance("A", THREE), down_share_losses=True))
    assert by_member(r, "down_received")["L3"] == D("75.00")  # 100.00 - 25.00
    assert by_member(r, "down_paid_out")["P1"] == D("-75.00")
    # f has no known cost: no surplus, nothing moves
    assert r.cases["down_surplus"].to_pylist() == [None, D("200.00"), D("-50.00"), None]


# ----------------------------------------------------------------------------- link kinds


def test_every_link_kind_is_reported() -> None:
    other = Alliance("B", members(("X3", 3, "1"), ("X1", 1, "1")))
    twin = members(("L3", 3, "1.2"), ("L3b", 3, "1.0"), ("M2", 2, "1.0"), ("P1", 1, "0.8"))
    m = model(Alliance("A", twin), other)
    r = split(
        cases(
            ("base", "P1", "10.00", None, None),
            ("self", "M2", "10.00", None, "self"),
            ("lost", "M2", "10.00", None, "no-such-case"),
            ("dup", "P1", "10.00", None, None),
            ("dup", "P1", "10.00", None, None),
            ("amb", "L3", "10.00", None, "dup"),
            ("x", "X1", "10.00", None, None),
            ("out", "L3", "10.00", None, "x"),
            ("same", "P1", "10.00", None, "base"),
            ("lat0", "L3", "10.00", None, None),
            ("lat", "L3b", "10.00", None, "lat0"),
            ("ns", "M2", None, None, "base", False),
            ("nohosp", "ZZ", "10.00", None, "base"),
            ("empty", "M2", "10.00", None, ""),
        ),
        m,
    )
    assert links(r) == {
        "base": "none",
        "self": "self",
        "lost": "unresolved",
        "dup": "none",
        "amb": "ambiguous",
        "x": "none",
        "out": "outside",
        "same": "same_member",
        "lat0": "none",
        "lat": "lateral",
        "ns": "not_settled",
        "nohosp": "outside",
        "empty": "none",
    }
    assert r.transfers.num_rows == 0
    assert r.outside_cases == 1
    assert r.cases.num_rows == 14
    # the case of a hospital in no alliance keeps its payment, claims nothing
    last = r.cases.to_pylist()[12]
    assert last["alliance_id"] is None and last["claim"] is None and last["paid"] is False


# ----------------------------------------------------------------------------- shared items


@pytest.mark.kernel
def test_shared_cost_joint_service_and_cost_increase_by_hand() -> None:
    # volumes (settled cases): L3 10, M2 5, P1 5; weights coefficient × volume = 12 : 5 : 4
    a = Alliance(
        "A",
        THREE,
        shared_costs=(SharedCost("平台", 100000),),
        joint_services=(
            JointService("会诊", 50000, D("0.6")),
            JointService("手术", 1001, shares=(("L3", D("0.5")), ("M2", D("0.5")))),
        ),
        cost_increases=(CostIncrease("耗材", 30001, D("0.5")),),
    )
    rows = [(f"l{k}", "L3", "1.00", None, None) for k in range(10)]
    rows += [(f"m{k}", "M2", "1.00", None, None) for k in range(5)]
    rows += [(f"p{k}", "P1", "1.00", None, None) for k in range(5)]
    r = split(cases(*rows), model(a))
    # shared cost 1000.00: see test_largest_remainder_by_hand
    assert by_member(r, "shared_costs") == {
        "L3": D("-571.43"),
        "M2": D("-238.09"),
        "P1": D("-190.48"),
    }
    # 会诊 500.00: lead 60% = 300.00; the other 200.00 by 5 : 4 = 111.111 / 88.889 ->
    # floors 111.11 + 88.88, the cent left to .889 (P1). 手术 10.01 half and half: 5.005
    # each, the tie to the smaller id (L3).
    assert by_member(r, "joint_revenue") == {"L3": D("305.01"), "M2": D("116.11"), "P1": D("88.89")}
    # cost increase 300.01: members' 50% is 150.005, a tie that goes to the members -> 150.01;
    # by 12 : 5 : 4 -> 85.7200, 35.7167, 28.5733 -> 85.72 + 35.71 + 28.57 = 150.00, the cent
    # to .67 (M2)
    assert by_member(r, "cost_increase") == {
        "L3": D("-85.72"),
        "M2": D("-35.72"),
        "P1": D("-28.57"),
    }
    row = r.alliances.to_pylist()[0]
    assert row["cost_increase_members"] == D("-150.01")
    assert row["cost_increase_suppliers"] == D("150.00")
    # net = claims + everything: 20.00 - 1000.00 + 510.01 - 150.01 = -620.00
    assert row["net"] == D("-620.00") and row["package"] == D("20.00")
    assert sum(by_member(r, "net").values()) == D("-620.00")
    weights = {(i["item"], i["hospital_id"]): i["weight"] for i in r.items.to_pylist()}
    assert weights[("平台", "L3")] == "12" and weights[("会诊", "M2")] == "2/9"


@pytest.mark.kernel
def test_rw_volume_and_zero_volume_fallback() -> None:
    # volume = rw: L3 2.5 RW, M2 0 -> shared cost all on L3 (weights 3.0 : 0 : 0)
    a = Alliance("A", THREE, shared_costs=(SharedCost("x", 1000),))
    t = cases(("a", "L3", "1.00", None, None), ("b", "M2", "1.00", None, None))
    t = t.append_column("rw", pa.array([D("2.5"), None], pa.decimal128(10, 4)))
    r = split(t, AllianceModel.of([a], AllianceRules(volume="rw")))
    assert by_member(r, "shared_costs") == {"L3": D("-10.00"), "M2": D("0.00"), "P1": D("0.00")}
    assert r.members["volume"].to_pylist() == [D("2.5000"), D("0.0000"), D("0.0000")]
    # no case at all: the coefficients alone (1.2 : 1.0 : 0.8) -> 4.00, 3.33, 2.67
    r = split(cases(("z", "Q", "1.00", None, None)), model(a))
    assert by_member(r, "shared_costs") == {"L3": D("-4.00"), "M2": D("-3.33"), "P1": D("-2.67")}


def test_rw_volume_reads_settles_own_nine_decimal_weights(tmp_path: Path) -> None:
    """Qingdao 2023 / Yancheng publish RW with 9 decimals; settle writes them exactly and the
    split by RW reads settle's own output (it refused more than 4 decimals)."""
    import csv

    import drgkit
    from drgkit.settlement import Policy, settle

    policies = Path(drgkit.__file__).parent / "policies"
    with open(policies / "demo-weights.csv", encoding="utf-8", newline="") as fh:
        table = list(csv.reader(fh))
    new_rw = {"BZ15": "0.780000001", "BR25": "1.020000009"}
    for row in table[1:]:
        row[2] = new_rw.get(row[0], row[2])
    weights = tmp_path / "weights.csv"
    with open(weights, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(table)
    demo = Policy.from_toml(policies / "demo.toml")
    policy = Policy.from_config(demo.config, path=demo.path, weights=weights)
    tia = {
        "hospital_level": "3",
        "insurance_type": "310",
        "sex": "1",
        "age": "60",
        "department": "0303",
        "los": "5",
        "leaving_type": "1",
        "procedures": [],
        "discharge_date": "2023-06-01",
        "total_cost": "9000.00",
        "self_pay": "0",
        "own_pay": "0",
    }
    raw = pa.Table.from_pylist(
        [
            {**tia, "case_id": "a", "hospital_id": "L3", "diagnoses": ["G45.900"]},  # BZ15
            {**tia, "case_id": "b", "hospital_id": "M2", "diagnoses": ["I63.900"]},  # BR25
        ]
    )
    settled = settle(raw, policy, "demo_2023")
    assert settled["rw"].to_pylist() == [D("0.780000001"), D("1.020000009")]
    a = Alliance("A", THREE, shared_costs=(SharedCost("x", 1000),))
    r = split(
        settled.append_column("referral_from", pa.nulls(2, pa.string())),
        AllianceModel.of([a], AllianceRules(volume="rw")),
    )
    assert r.members["volume"].to_pylist() == [D("0.780000001"), D("1.020000009"), D(0)]
    # coefficient × RW: 1.2 × 0.780000001 = 0.9360000012 and 1.0 × 1.020000009: of 10.00,
    # L3 478.527…, M2 521.472… cents -> 478 + 521, the cent left to L3 (.527 > .472)
    w_l3, w_m2 = D("1.2") * D("0.780000001"), D("1.020000009")
    assert int(1000 * w_l3 / (w_l3 + w_m2) * 1000) == 478527
    assert by_member(r, "shared_costs") == {"L3": D("-4.79"), "M2": D("-5.21"), "P1": D("0.00")}


# ----------------------------------------------------------------------------- package


@pytest.mark.kernel
def test_capitation_surplus_and_overspend_bands_by_hand() -> None:
    # budget 1000 persons × 100.00 = 100,000.00. Claims 80,000.00: surplus 20,000.00; the
    # first 10% of the budget (10,000.00) is kept in full, the rest half: kept 15,000.00,
    # returned 5,000.00; shared 12 : 5 : 4 by coefficient × volume (10, 5, 5 cases).
    a = Alliance("A", THREE, basis="capitation", enrolled=1000, per_person=10000, budget=10000000)
    rows = [(f"l{k}", "L3", "5000.00", None, None) for k in range(10)]
    rows += [(f"m{k}", "M2", "4000.00", None, None) for k in range(5)]
    rows += [(f"p{k}", "P1", "2000.00", None, None) for k in range(5)]
    r = split(cases(*rows), model(a))
    row = r.alliances.to_pylist()[0]
    assert (row["claims"], row["surplus"], row["kept"], row["returned"]) == (
        D("80000.00"),
        D("20000.00"),
        D("15000.00"),
        D("5000.00"),
    )
    assert row["package"] == D("95000.00")
    # 15,000.00 by 12 : 5 : 4 -> 8571.428…, 3571.428…, 2857.142… -> .43 + .43 + .14
    assert by_member(r, "package_adjustment") == {
        "L3": D("8571.43"),
        "M2": D("3571.43"),
        "P1": D("2857.14"),
    }
    # claims 125,000.00: over-spend 25,000.00; the fund bears half of the first 10,000.00 and
    # none of the rest: fund 5,000.00, the alliance 20,000.00
    rows = [(f"l{k}", "L3", "8000.00", None, None) for k in range(10)]
    rows += [(f"m{k}", "M2", "7000.00", None, None) for k in range(5)]
    rows += [(f"p{k}", "P1", "2000.00", None, None) for k in range(5)]
    r = split(cases(*rows), model(a))
    row = r.alliances.to_pylist()[0]
    assert (row["overspend"], row["fund_overspend"], row["alliance_overspend"]) == (
        D("25000.00"),
        D("5000.00"),
        D("20000.00"),
    )
    assert row["package_adjustment"] == D("-20000.00") and row["package"] == D("105000.00")
    # shared by claims instead (80,000 : 35,000 : 10,000 = 16 : 7 : 2) -> -12,800, -5,600,
    # -1,600
    r = split(cases(*rows), model(a, share_by="claims"))
    assert by_member(r, "package_adjustment") == {
        "L3": D("-12800.00"),
        "M2": D("-5600.00"),
        "P1": D("-1600.00"),
    }


# ----------------------------------------------------------------------------- batches, input


@pytest.mark.kernel
def test_batches_and_row_order_do_not_matter() -> None:
    m = load_model("demo")
    table = _settled_demo(3000)
    whole = split(table, m)
    shuffled = table.take(pa.array(list(range(table.num_rows))[::-1]))
    for result in (split_batches(table.to_batches(max_chunksize=97), m), split(shuffled, m)):
        for name in ("members", "alliances", "items", "transfers"):
            assert getattr(result, name).equals(getattr(whole, name)), name
    assert whole.alliances["up_links"].to_pylist() != [0, 0]


def _settled_demo(n: int) -> pa.Table:
    import warnings

    from drgkit.settlement import settle

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return settle(_demo.generate_cases(n, seed=7), "demo", "demo", keep=["referral_from"])


def test_settled_case_without_a_payment_is_an_error_naming_the_row() -> None:
    t = cases(("a", "L3", "1.00", None, None), ("b", "L3", None, None, None))
    with pytest.raises(Exception, match=r"row 2.*payment|payment.*row 2") as info:
        split(t, model(Alliance("A", THREE)))
    assert "'b'" in str(info.value)


# ----------------------------------------------------------------------------- the model file


def write(tmp: Path, text: str, name: str = "m.toml") -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


BASE = """
[coefficients]
"3" = "1.2"
"1" = "0.8"
[package]
retention = [{ up_to = "0.1", keep = "1" }, { keep = "0.5" }]
overspend = [{ up_to = "0.1", fund_share = "0.5" }, { fund_share = "0" }]
"""


def test_model_file_with_members_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        "alliance_id,hospital_id,level,role,coefficient\nA,H1,3,lead,\nA,H2,1,,0.7\n",
        "members.csv",
    )
    m = AllianceModel.load(
        write(
            tmp_path,
            'id = "t"\nmembers_file = "members.csv"\n'
            + BASE
            + """
[[alliances]]
id = "A"
basis = "capitation"
enrolled = 10
per_person = "12.34"
""",
        )
    )
    a = m.alliances[0]
    assert a.budget == 12340  # 10 × 12.34 yuan, in cents
    assert [(x.hospital_id, x.level, x.role, x.coefficient) for x in a.members] == [
        ("H1", 3, "lead", D("1.2")),
        ("H2", 1, "member", D("0.7")),
    ]
    assert m.id == "t" and len(m.content_hash) == 16


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            """[[alliances]]
id = "A"
members = [{ hospital_id = "H1", level = 3, role = "lead" },
           { hospital_id = "H2", level = 1, role = "lead" }]""",
            "exactly one member",
        ),
        (
            """[[alliances]]
id = "A"
members = [{ hospital_id = "H1", level = 3, role = "lead" }]
[[alliances]]
id = "B"
members = [{ hospital_id = "H1", level = 3, role = "lead" }]""",
            "belongs to one alliance",
        ),
        (
            """[[alliances]]
id = "A"
budget = "10.001"
members = [{ hospital_id = "H1", level = 3, role = "lead" }]""",
            "fractions of a cent",
        ),
        (
            """[[alliances]]
id = "A"
members = [{ hospital_id = "H1", level = 2, role = "lead" }]""",
            "no coefficient",
        ),
        (
            """[referral]
up_referrer_share = "1.5"
[[alliances]]
id = "A"
members = [{ hospital_id = "H1", level = 3, role = "lead" }]""",
            "up_referrer_share",
        ),
        (
            """[[alliances]]
id = "A"
members = [{ hospital_id = "H1", level = 3, role = "lead" }]
[[alliances.joint_services]]
name = "j"
revenue = "1.00"
shares = { H1 = "0.5" }""",
            "add up to 1",
        ),
    ],
)
def test_model_mistakes_are_named(tmp_path: Path, extra: str, message: str) -> None:
    path = write(tmp_path, 'id = "t"\n' + BASE + extra)
    with pytest.raises(AllianceError, match=message) as info:
        AllianceModel.load(path)
    assert str(path) in str(info.value)


def test_members_file_error_names_row_and_column(tmp_path: Path) -> None:
    members_csv = write(
        tmp_path, "alliance_id,hospital_id,level,role\nA,H1,3,lead\nA,H2,x,\n", "members.csv"
    )
    path = write(tmp_path, 'members_file = "members.csv"\n' + BASE + '[[alliances]]\nid = "A"\n')
    with pytest.raises(AllianceError) as info:
        AllianceModel.load(path)
    err = info.value
    assert err.file == str(members_csv) and err.row == 3 and err.column == "level"


def test_budget_needs_package_bands() -> None:
    a = Alliance("A", THREE, budget=100)
    with pytest.raises(AllianceError, match="package"):
        AllianceModel.of([a], AllianceRules())


# ----------------------------------------------------------------------------- CLI


def test_cli_alliance_on_demo_cases(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    src = tmp_path / "cases.parquet"
    pq.write_table(_demo.generate_cases(2000, seed=3), src)
    runner = CliRunner()
    res = runner.invoke(
        cli,
        [
            "alliance",
            str(src),
            "-a",
            "demo",
            "-p",
            "demo",
            "-r",
            "demo",
            "-o",
            str(tmp_path / "out"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "H320500001" in res.output and "east" in res.output
    import pyarrow.csv as pacsv

    members_csv = pacsv.read_csv(tmp_path / "out" / "members.csv")
    alliances_csv = pacsv.read_csv(tmp_path / "out" / "alliances.csv")
    cases_csv = pacsv.read_csv(tmp_path / "out" / "cases.csv")
    assert cases_csv.num_rows == 2000
    # the member table adds up to the alliance rows, to the cent (read back from text)
    for a in alliances_csv.to_pylist():
        mine = [m for m in members_csv.to_pylist() if m["alliance_id"] == a["alliance_id"]]
        assert round(sum(D(str(m["net"])) for m in mine), 2) == D(str(a["net"]))
    # not settled and no policy: one clear line, exit code 2
    res = runner.invoke(cli, ["alliance", str(src), "-a", "demo", "-o", str(tmp_path / "x")])
    assert res.exit_code == 2 and "-p POLICY" in res.output
    res = runner.invoke(
        cli, ["alliance", str(src), "-a", "nope", "-p", "demo", "-o", str(tmp_path / "x")]
    )
    assert res.exit_code == 2 and "shipped: demo" in res.output


# ----------------------------------------------------------------------------- bad input


def test_bad_cost_and_rw_are_errors_naming_row_and_column() -> None:
    m = model(Alliance("A", THREE, shared_costs=(SharedCost("x", 100),)))
    t = pa.table(
        {
            "case_id": ["a", "b"],
            "hospital_id": ["P1", "L3"],
            "settled": [True, True],
            "payment": ["1.00", "2.00"],
            "total_cost": ["0.50", "150.005"],
            "referral_from": [None, "a"],
        }
    )
    with pytest.raises(CaseDataError) as info:
        split(t, m)
    assert (info.value.row, info.value.column) == (2, "total_cost")
    assert "fractions of a cent" in str(info.value)
    ok = cases(("a", "P1", "1.00", None, None), ("b", "L3", "2.00", None, None))
    rw_model = AllianceModel.of(
        [Alliance("A", THREE, shared_costs=(SharedCost("x", 100),))], AllianceRules(volume="rw")
    )
    for values, message in (
        ([1.0, 1.2345678912], "at most 9 decimals"),
        (["1.0", "1.0000000001"], "at most 9 decimals"),
        ([D("1.5"), D("1000.000000001")], "up to 1000"),
        ([D("1.5"), D("-1.5")], "negative"),
    ):
        with pytest.raises(CaseDataError, match=message) as info:
            split(ok.append_column("rw", pa.array(values)), rw_model)
        assert (info.value.row, info.value.column) == (2, "rw")


def test_models_built_in_python_are_checked_like_files() -> None:
    for bad in (
        AllianceRules(up_referrer_share=D("1.5")),
        AllianceRules(volume="RW"),
        AllianceRules(down_sender_share=D("0.0000005")),
    ):
        with pytest.raises(AllianceError):
            AllianceModel.of([Alliance("A", THREE)], bad)
    for alliance in (
        Alliance("A", THREE, shared_costs=(SharedCost("x", -250),)),
        Alliance("A", THREE, joint_services=(JointService("j", 100),)),
        Alliance("A", members(("L", 3, "1.0000001"))),
    ):
        with pytest.raises(AllianceError):
            AllianceModel.of([alliance])


def test_members_file_rows_count_blank_lines_and_extra_fields_are_errors(tmp_path: Path) -> None:
    members_csv = write(
        tmp_path, "alliance_id,hospital_id,level,role\nA,H3,3,lead\n\n\nA,H1,x,\n", "members.csv"
    )
    path = write(
        tmp_path, 'id = "t"\nmembers_file = "members.csv"\n' + BASE + '[[alliances]]\nid = "A"\n'
    )
    with pytest.raises(AllianceError) as info:
        AllianceModel.load(path)
    assert (info.value.file, info.value.row, info.value.column) == (str(members_csv), 5, "level")
    write(tmp_path, "alliance_id,hospital_id,level,role\nA,H3,3,lead,0.5\n", "members.csv")
    with pytest.raises(AllianceError, match="more field") as info:
        AllianceModel.load(path)
    assert info.value.row == 2


def test_a_shipped_name_wins_over_a_folder_of_that_name(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    assert load_model("demo").id == "demo"
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(AllianceError, match=r"dir\.toml"):
        load_model("dir.toml")


def test_cli_unknown_referral_column_is_a_usage_error(tmp_path: Path) -> None:
    src = tmp_path / "settled.parquet"
    import pyarrow.parquet as pq

    pq.write_table(_settled_demo(300), src)
    res = CliRunner().invoke(
        cli,
        [
            "alliance",
            str(src),
            "-a",
            "demo",
            "-o",
            str(tmp_path / "o"),
            "--referral-column",
            "nosuch",
        ],
    )
    assert res.exit_code == 2 and "nosuch" in res.output
