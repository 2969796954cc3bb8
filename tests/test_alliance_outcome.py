"""Pay for cooperation in an alliance: the coefficient uplift of members meeting cooperation
targets and the synergy fund set aside from the kept package surplus, against amounts worked
out by hand; the parts reconcile to the cent."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drgkit.alliance import Alliance, AllianceModel, AllianceRules, Member, split
from drgkit.alliance._allocate import cooperation_outcome
from drgkit.alliance._model import AllianceError, Cooperation, SynergyFund
from drgkit.settlement._period import OverspendBand, PeriodRules, RetentionBand

D = Decimal
BANDS = PeriodRules(
    (RetentionBand(D("0.10"), D("1")), RetentionBand(None, D("0.5"))),
    (OverspendBand(D("0.10"), D("0.5")), OverspendBand(None, D("0"))),
)
THREE = (
    Member("L3", 3, "lead", D("1.2")),
    Member("M2", 2, "member", D("1.0")),
    Member("P1", 1, "member", D("0.8")),
)


def cases() -> pa.Table:
    """L3 10 × 5000.00, M2 5 × 4000.00, P1 5 × 2000.00; m0 is referred down from l0 (no
    cost known, so no money moves with it): claims 80,000.00 against a budget of 100,000.00."""
    rows = [(f"l{k}", "L3", "5000.00", None) for k in range(10)]
    rows += [(f"m{k}", "M2", "4000.00", "l0" if k == 0 else None) for k in range(5)]
    rows += [(f"p{k}", "P1", "2000.00", None) for k in range(5)]
    return pa.table(
        {
            "case_id": [r[0] for r in rows],
            "hospital_id": [r[1] for r in rows],
            "referral_from": pa.array([r[3] for r in rows], pa.string()),
            "payment": pa.array([D(r[2]) for r in rows], pa.decimal128(18, 2)),
            "total_cost": pa.array([None] * len(rows), pa.decimal128(18, 2)),
            "settled": [True] * len(rows),
        }
    )


def run(**rules: Any) -> tuple[Any, AllianceModel]:
    a = Alliance("A", THREE, basis="capitation", enrolled=1000, per_person=10000, budget=10000000)
    model = AllianceModel.of((a,), AllianceRules(package=BANDS, **rules))
    return split(cases(), model), model


def rows(table: pa.Table) -> dict[str, dict[str, Any]]:
    return {r["hospital_id"]: r for r in table.to_pylist()}


def test_cooperation_uplift_for_members_meeting_the_targets() -> None:
    result, model = run(cooperation=Cooperation(D("0.2"), D("0.012345"), shared_results=True))
    out = rows(cooperation_outcome(model, result, shared_results={"M2", "P1"}))
    # referred cases: l0 (parent of the down link) and m0 (its child)
    assert [out[h]["referred_cases"] for h in ("L3", "M2", "P1")] == [1, 1, 0]
    assert [out[h]["referral_rate"] for h in ("L3", "M2", "P1")] == [
        "0.100000",
        "0.200000",
        "0.000000",
    ]
    # only M2 reaches 20% and shares results: 20,000.00 × 0.012345 = 246.90
    assert [out[h]["cooperation_met"] for h in ("L3", "M2", "P1")] == [False, True, False]
    assert [out[h]["uplift"] for h in ("L3", "M2", "P1")] == [D(0), D("246.90"), D(0)]
    assert "→ met: uplift 0.012345 × 20000.00 = 246.90" in out["M2"]["explanation"]
    # without the shared results flag M2 does not qualify
    out = rows(cooperation_outcome(model, result, shared_results={"P1"}))
    assert out["M2"]["uplift"] == 0
    with pytest.raises(AllianceError, match="shared_results="):
        cooperation_outcome(model, result)


def test_synergy_fund_largest_remainder_by_hand() -> None:
    result, model = run(synergy_fund=SynergyFund(D("0.123457"), "equal", "largest"))
    out = rows(cooperation_outcome(model, result))
    # kept 15,000.00 (see test_alliance): fund 15,000.00 × 0.123457 = 1851.855 → 1851.86;
    # set aside by package adjustments 8571.43 : 3571.43 : 2857.14 → 1058.205…, 440.919…,
    # 352.734… → floors 1058.20, 440.91, 352.73 and 2 cents to the largest remainders (M2, L3)
    assert [out[h]["synergy_set_aside"] for h in ("L3", "M2", "P1")] == [
        D("-1058.21"),
        D("-440.92"),
        D("-352.73"),
    ]
    # paid out equally: 617.28666… each; 2 cents left, equal remainders: to L3 and M2
    assert [out[h]["synergy_part"] for h in ("L3", "M2", "P1")] == [
        D("617.29"),
        D("617.29"),
        D("617.28"),
    ]


def test_synergy_fund_remainder_to_a_named_member_and_reconciliation() -> None:
    result, model = run(synergy_fund=SynergyFund(D("0.123457"), "equal", "P1"))
    table = cooperation_outcome(model, result)
    out = rows(table)
    assert [out[h]["synergy_part"] for h in ("L3", "M2", "P1")] == [
        D("617.28"),
        D("617.28"),
        D("617.30"),
    ]
    assert sum(table["synergy_part"].to_pylist()) == D("1851.86")
    assert sum(table["synergy_set_aside"].to_pylist()) == D("-1851.86")
    # split by referrals: L3 and M2 one referred case each, P1 none → 925.93 each
    result, model = run(synergy_fund=SynergyFund(D("0.123457"), "referrals", "largest"))
    out = rows(cooperation_outcome(model, result))
    assert [out[h]["synergy_part"] for h in ("L3", "M2", "P1")] == [
        D("925.93"),
        D("925.93"),
        D("0.00"),
    ]


def test_model_toml_sections_are_parsed_and_checked() -> None:
    base = {
        "id": "t",
        "alliances": [
            {
                "id": "A",
                "members": [
                    {"hospital_id": "L3", "level": 3, "role": "lead"},
                    {"hospital_id": "P1", "level": 1},
                ],
            }
        ],
        "coefficients": {"3": "1.2", "1": "0.8"},
    }
    model = AllianceModel.from_config(
        {
            **base,
            "cooperation": {"referral_rate_min": "0.30", "uplift": "0.05"},
            "synergy_fund": {"share": "0.15", "remainder": "lead"},
        }
    )
    assert model.rules.cooperation == Cooperation(D("0.30"), D("0.05"), False)
    assert model.rules.synergy_fund == SynergyFund(D("0.15"), "referrals", "lead")
    plain = AllianceModel.from_config(base)
    assert plain.content_hash != model.content_hash
    with pytest.raises(AllianceError, match=r"cooperation\.uplift is required"):
        AllianceModel.from_config({**base, "cooperation": {"referral_rate_min": "0.3"}})
    with pytest.raises(AllianceError, match="split_by must be one of"):
        AllianceModel.from_config({**base, "synergy_fund": {"share": "0.1", "split_by": "x"}})


@settings(max_examples=20, deadline=None)
@given(
    pays=st.lists(st.integers(1, 10**6), min_size=3, max_size=9),
    budget=st.integers(10**6, 10**8),
    share=st.sampled_from(["0.10", "0.15", "0.2", "0.123457"]),
    split_by=st.sampled_from(["referrals", "coefficient_volume", "equal"]),
    remainder=st.sampled_from(["largest", "lead", "P1"]),
)
def test_synergy_fund_reconciles(
    pays: list[int], budget: int, share: str, split_by: str, remainder: str
) -> None:
    hosp = ["L3", "M2", "P1"]
    table = pa.table(
        {
            "case_id": [f"c{k}" for k in range(len(pays))],
            "hospital_id": [hosp[k % 3] for k in range(len(pays))],
            "referral_from": pa.array(
                ["c0" if k == 1 else None for k in range(len(pays))], pa.string()
            ),
            "payment": pa.array([D(p).scaleb(-2) for p in pays], pa.decimal128(18, 2)),
            "total_cost": pa.array([None] * len(pays), pa.decimal128(18, 2)),
            "settled": [True] * len(pays),
        }
    )
    a = Alliance("A", THREE, basis="payments", budget=budget)
    rules = AllianceRules(package=BANDS, synergy_fund=SynergyFund(D(share), split_by, remainder))
    model = AllianceModel.of((a,), rules)
    result = split(table, model)
    out = cooperation_outcome(model, result).to_pylist()
    kept = result.alliances.to_pylist()[0]["kept"]
    fund = (kept * D(share)).quantize(D("0.01"), rounding=ROUND_HALF_UP)
    assert sum(r["synergy_part"] for r in out) == fund
    assert sum(r["synergy_set_aside"] for r in out) == -fund
    assert all(r["synergy_part"] >= 0 and r["synergy_set_aside"] <= 0 for r in out)
    adjustment = {r["hospital_id"]: r["package_adjustment"] for r in result.members.to_pylist()}
    # nobody gives more than its package adjustment
    assert all(-r["synergy_set_aside"] <= max(adjustment[r["hospital_id"]], 0) for r in out)
