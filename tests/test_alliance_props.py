"""Properties of the alliance split (drgkit.alliance) on random models and cases.

Random models (1–6 alliances of 1–8 members, levels 1–3, one lead, coefficients with at most
two decimals, budgets and capitation, shared costs, joint services, cost increases, every rule
both ways) and random cases (outsiders, unsettled rows, unknown costs, repeated case ids, every
kind of referral, built up-chains and down-links) are split by :func:`drgkit.alliance.split`
and checked:

(a) members, alliances and cases agree exactly with the slow reference
    (``tests/alliance_reference.py``, written from the spec only);
(b) the money identities: Σ net = package − Σ shared costs + Σ joint revenue − members' part of
    the cost increases; Σ claims = Σ payment of the paid cases; every item group adds up to its
    amount; every transfer is ``split(base, share)`` of the right base;
(c) no case is paid twice: each settled case of an alliance is paid, or absorbed into exactly one
    paying case at the end of its up chain, and each up episode hands out no more than its
    payment;
(d) shuffled rows cut into random batches (:func:`drgkit.alliance.split_batches`) give the same
    tables, the cases table permuted alike.

Inputs on which the spec is silent (:class:`SpecGap` in the reference) are skipped and counted.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from drgkit.alliance import (
    Alliance,
    AllianceModel,
    AllianceRules,
    CostIncrease,
    JointService,
    Member,
    SharedCost,
    largest_remainder,
    split,
    split_batches,
)
from drgkit.settlement._period import OverspendBand, PeriodRules, RetentionBand

try:  # tests/ on sys.path (rootdir-relative "prepend" import, no tests/__init__.py)
    import alliance_reference as ref
except ImportError:  # tests/ turned into a package
    from tests import alliance_reference as ref

D = Decimal

#: what the property tests saw, checked by the last test of the module
SEEN: Counter = Counter()

# hospital and case ids whose binary order is not their numeric order, with some non-ASCII
HOSPITAL_IDS = (
    [f"H{k:02d}" for k in range(1, 41)]
    + [f"h{k}" for k in range(1, 13)]
    + [f"医院{k}" for k in range(1, 9)]
    + ["Z", "a", "H1", "H100"]
)
CASE_PREFIXES = ("C", "c", "C0", "案", "Z")

RATIOS = (
    "0",
    "1",
    "0.5",
    "0.3",
    "0.333333",
    "0.666667",
    "0.25",
    "0.000001",
    "0.999999",
    "0.1",
    "0.7",
    "0.05",
)

SETTINGS = dict(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


# --------------------------------------------------------------------------- generation
#
# One generator, two sources of choices: Hypothesis draws (few examples; failures shrink) and a
# seeded random.Random (the volume: drawing every choice through Hypothesis costs ~60 ms an
# example, the split itself ~8 ms).


class Drawn:
    """Choices drawn by Hypothesis."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def pick(self, seq: Sequence[Any]) -> Any:
        return self.draw(st.sampled_from(seq))

    def subset(self, seq: Sequence[Any], least: int) -> list[Any]:
        return self.draw(
            st.lists(st.sampled_from(seq), min_size=least, max_size=len(seq), unique=True)
        )

    def permutation(self, seq: Sequence[Any]) -> list[Any]:
        return list(self.draw(st.permutations(seq)))


class Seeded:
    """The same choices from a seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self.rnd.randint(low, high)

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[self.rnd.randrange(len(seq))]

    def subset(self, seq: Sequence[Any], least: int) -> list[Any]:
        return self.rnd.sample(list(seq), self.rnd.randint(least, len(seq)))

    def permutation(self, seq: Sequence[Any]) -> list[Any]:
        out = list(seq)
        self.rnd.shuffle(out)
        return out


def chance(ch: Any, k: int, n: int) -> bool:
    """True k times in n."""
    return ch.integer(0, n - 1) < k


def ratio(ch: Any) -> Decimal:
    """A ratio in [0, 1] with at most 6 decimals: the edges, common values and odd ones."""
    if chance(ch, 1, 2):
        return D(ch.pick(RATIOS))
    return D(ch.integer(0, 10**6)).scaleb(-6).normalize()


def coefficient(ch: Any) -> Decimal:
    return D(ch.integer(1, ch.pick([300, 10000]))).scaleb(-2)


def money(ch: Any, high: int) -> int:
    if chance(ch, 1, 4):
        return ch.pick([0, 1, 2, 3, 99, 100, 101])
    return ch.integer(0, high)


def bands(ch: Any) -> list[tuple[Decimal | None, Decimal]]:
    ups = sorted({D(ch.pick(["0.05", "0.1", "0.2", "0.5", "1"])) for _ in range(ch.integer(0, 3))})
    return [(u, ratio(ch)) for u in ups] + [(None, ratio(ch))]


def make_alliance(ch: Any, aid: str, hospitals: list[str]) -> Alliance:
    n = len(hospitals)
    lead = ch.integer(0, n - 1)
    members = tuple(
        Member(h, ch.integer(1, 3), "lead" if k == lead else "member", coefficient(ch))
        for k, h in enumerate(hospitals)
    )
    ids = sorted(hospitals)
    others = [h for h in ids if h != hospitals[lead]]

    def subset(pool: list[str]) -> tuple[str, ...] | None:
        if not pool or chance(ch, 1, 2):
            return None
        return tuple(ch.subset(pool, 1))

    basis, budget, enrolled, per_person = "payments", None, None, None
    kind = ch.pick(["none", "budget", "capitation"])
    if kind == "budget":
        budget = ch.integer(0, ch.pick([3 * 10**7, 10**5]))
    elif kind == "capitation":
        basis = "capitation"
        enrolled = ch.integer(0, 2000)
        per_person = money(ch, 20000)
        budget = enrolled * per_person  # a capitation budget built in Python is given
    shared = tuple(
        SharedCost(f"cost{j}", money(ch, 10**6), subset(ids)) for j in range(ch.integer(0, 3))
    )
    joint = []
    for j in range(ch.integer(0, 3)):
        revenue = money(ch, 10**6)
        if chance(ch, 1, 2):
            joint.append(
                JointService(f"joint{j}", revenue, lead_share=ratio(ch), members=subset(others))
            )
        else:  # explicit shares adding up to 1 (some may be 0)
            takers = ch.subset(ids, 1)
            top = ch.pick([10, 10**6])
            cuts = sorted(ch.integer(0, top) for _ in takers[1:])
            parts = [b - a for a, b in zip([0, *cuts], [*cuts, top], strict=True)]
            joint.append(
                JointService(
                    f"joint{j}",
                    revenue,
                    shares=tuple(
                        sorted(
                            (h, (D(p) / top).normalize())
                            for h, p in zip(takers, parts, strict=True)
                        )
                    ),
                )
            )
    increases = tuple(
        CostIncrease(f"increase{j}", money(ch, 10**6), ratio(ch)) for j in range(ch.integer(0, 3))
    )
    return Alliance(
        aid,
        tuple(sorted(members, key=lambda m: m.hospital_id)),
        basis,
        budget=budget,
        enrolled=enrolled,
        per_person=per_person,
        shared_costs=shared,
        joint_services=tuple(joint),
        cost_increases=increases,
    )


#: alliances per model: 4–6 three times in four (the module must see ≥ 10,000 alliances);
#: the mean is 53/12 ≈ 4.4
ALLIANCE_COUNTS = (1, 2, 3, 4, 4, 5, 5, 5, 6, 6, 6, 6)


def make_model(ch: Any) -> tuple[AllianceModel, list[str]]:
    """A model and the hospitals outside every alliance."""
    sizes = [ch.integer(1, 8) for _ in range(ch.pick(ALLIANCE_COUNTS))]
    n_outside = ch.integer(0, 3)
    hospitals = ch.permutation(HOSPITAL_IDS)[: sum(sizes) + n_outside]
    alliances, start = [], 0
    for k, size in enumerate(sizes):
        alliances.append(
            make_alliance(ch, f"A{k}" if k % 3 else f"医共体{k}", hospitals[start : start + size])
        )
        start += size
    package = None
    if any(a.budget is not None for a in alliances) or chance(ch, 1, 2):
        package = PeriodRules(
            tuple(RetentionBand(u, s) for u, s in bands(ch)),
            tuple(OverspendBand(u, s) for u, s in bands(ch)),
        )
    rules = AllianceRules(
        ratio(ch),
        ratio(ch),
        chance(ch, 1, 2),
        ch.pick(["cases", "rw"]),
        ch.pick(["coefficient_volume", "claims"]),
        package,
    )
    return AllianceModel.of(alliances, rules), hospitals[start:]


def make_scenario(ch: Any) -> tuple[AllianceModel, list[dict[str, Any]]]:
    model, outsiders = make_model(ch)
    hospitals = sorted(m.hospital_id for a in model.alliances for m in a.members) + outsiders
    serial = iter(range(1, 10**6))
    rows: list[dict[str, Any]] = []

    def new_row(hospital: str, settled: bool | None = None) -> dict[str, Any]:
        if settled is None:
            settled = chance(ch, 9, 10)
        pay = money(ch, 2 * 10**6)
        if not settled and chance(ch, 1, 2):
            pay = None  # an unsettled row may show an amount or not; it carries no money
        cost = None if chance(ch, 1, 8) else money(ch, ch.pick([10**5, 2_500_000]))
        row = {
            "case_id": f"{ch.pick(CASE_PREFIXES)}{next(serial)}",
            "hospital_id": hospital,
            "settled": settled,
            "payment_cents": pay,
            "cost_cents": cost,
            "referral_from": None,
            "rw": D(ch.integer(0, 60000)).scaleb(-4),
        }
        rows.append(row)
        return row

    for _ in range(ch.integer(0, 40)):
        new_row(ch.pick(hospitals))
    built: list[dict[str, Any]] = []  # the last case of each built chain, built down children
    # referrals of these rows: any row (same or other member or alliance), missing, itself
    for row in rows:
        kind = ch.pick(["none", "none", "none", "row", "row", "missing", "self", "empty"])
        if kind == "empty":
            row["referral_from"] = ""  # empty: no referral
        elif kind == "row":
            row["referral_from"] = ch.pick(rows)["case_id"]
        elif kind == "missing":
            row["referral_from"] = f"missing{ch.integer(0, 3)}"
        elif kind == "self":
            row["referral_from"] = row["case_id"]
    # built up chains of 2–4 cases in one alliance, levels sorted (equal levels break them),
    # sometimes hung on an existing case
    for _ in range(ch.integer(0, 3)):
        alliance = ch.pick(model.alliances)
        by_level: dict[int, list[Member]] = defaultdict(list)
        for m in alliance.members:
            by_level[m.level].append(m)
        if len(by_level) > 1 and chance(ch, 1, 2):  # one member per level: a true up chain
            chain = [ch.pick(by_level[lv]) for lv in sorted(ch.subset(sorted(by_level), 2))]
        else:
            chain = sorted(
                (ch.pick(alliance.members) for _ in range(ch.integer(2, 4))), key=lambda m: m.level
            )
        parent = ch.pick(rows)["case_id"] if rows and chance(ch, 1, 3) else None
        for m in chain:
            row = new_row(m.hospital_id, settled=chance(ch, 19, 20))
            if row["settled"] and row["payment_cents"] is None:
                row["payment_cents"] = money(ch, 2 * 10**6)
            row["referral_from"] = parent
            parent = row["case_id"]
        built.append(row)
    # built down links, and siblings competing for one parent
    for _ in range(ch.integer(0, 3)):
        alliance = ch.pick(model.alliances)
        high = ch.pick(alliance.members)
        parent_row = new_row(high.hospital_id)
        lower = [m for m in alliance.members if m.level < high.level]
        children: list[dict[str, Any]] = []
        for _ in range(ch.integer(1, 2)):
            low = ch.pick(lower) if lower and chance(ch, 3, 4) else ch.pick(alliance.members)
            child = new_row(low.hospital_id, settled=True)
            child["referral_from"] = parent_row["case_id"]
            if children and chance(ch, 1, 3):  # the same case sent twice
                child["case_id"] = children[0]["case_id"]
            children.append(child)
        built.extend(children)
    # a repeated case id: now and then among built children (the same case sent twice, a
    # paying case id twice), now and then anywhere
    if len(built) > 1 and chance(ch, 1, 4):
        ch.pick(built)["case_id"] = ch.pick(built)["case_id"]
    if rows and chance(ch, 1, 5):
        for _ in range(ch.integer(1, 2)):
            ch.pick(rows)["case_id"] = ch.pick(rows)["case_id"]
    rows = rows[:60]
    return model, [rows[k] for k in ch.permutation(range(len(rows)))]


@st.composite
def scenarios(draw: Any) -> tuple[AllianceModel, list[dict[str, Any]]]:
    """Scenarios drawn choice by choice (slow to draw, shrink well)."""
    return make_scenario(Drawn(draw))


#: scenarios from a seed (fast: for the volume of examples)
seeded_scenarios = st.integers(0, 2**64 - 1).map(lambda seed: make_scenario(Seeded(seed)))


# --------------------------------------------------------------------------- tables

MONEY = pa.decimal128(18, 2)
SCHEMA = pa.schema(
    [
        ("case_id", pa.string()),
        ("hospital_id", pa.string()),
        ("settled", pa.bool_()),
        ("payment", MONEY),
        ("total_cost", MONEY),
        ("referral_from", pa.string()),
        ("rw", pa.decimal128(12, 4)),
    ]
)


def yuan(c: int | None) -> Decimal | None:
    return None if c is None else D(c).scaleb(-2)


def table_of(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.table(
        {
            "case_id": [r["case_id"] for r in rows],
            "hospital_id": [r["hospital_id"] for r in rows],
            "settled": [r["settled"] for r in rows],
            "payment": [yuan(r["payment_cents"]) for r in rows],
            "total_cost": [yuan(r["cost_cents"]) for r in rows],
            "referral_from": [r["referral_from"] for r in rows],
            "rw": [r["rw"] for r in rows],
        },
        schema=SCHEMA,
    )


def plain(value: Any) -> Any:
    """Money (Decimal yuan) -> cents; other decimals -> Fraction; the rest as is."""
    if isinstance(value, Decimal):
        return Fraction(value)
    return value


def money_cents(value: Any) -> Any:
    return ref.cents(value) if isinstance(value, Decimal) else value


MEMBER_MONEY = ref.MEMBER_MONEY
ALLIANCE_MONEY = (
    "budget",
    "claims",
    "surplus",
    "overspend",
    "kept",
    "returned",
    "fund_overspend",
    "alliance_overspend",
    "package_adjustment",
    "package",
    "shared_costs",
    "joint_revenue",
    "cost_increase_total",
    "cost_increase_members",
    "cost_increase_suppliers",
    "net",
)
CASE_MONEY = ("payment", "claim", "down_surplus")


def rows_of(table: pa.Table, money: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for row in table.to_pylist():
        out.append({k: (money_cents(v) if k in money else plain(v)) for k, v in row.items()})
    return out


def expected_members(expect: ref.Reference) -> list[dict[str, Any]]:
    out = []
    for key in sorted(expect.members):
        row = dict(expect.members[key])
        row["coefficient"] = Fraction(row["coefficient"])
        out.append(row)
    return out


# --------------------------------------------------------------------------- checks


def check_agreement(result: Any, expect: ref.Reference) -> None:
    """(a) members, alliances and cases equal the reference's, column by column."""
    got_cases = rows_of(result.cases, CASE_MONEY)
    assert len(got_cases) == len(expect.cases)
    for k, (got, want) in enumerate(zip(got_cases, expect.cases, strict=True)):
        assert {c: got[c] for c in want} == want, f"cases row {k}"
    got_members = rows_of(result.members, MEMBER_MONEY)
    want_members = expected_members(expect)
    assert [(m["alliance_id"], m["hospital_id"]) for m in got_members] == [
        (m["alliance_id"], m["hospital_id"]) for m in want_members
    ]
    for got, want in zip(got_members, want_members, strict=True):
        assert {c: got[c] for c in want} == want, f"member {want['hospital_id']}"
    got_alliances = rows_of(result.alliances, ALLIANCE_MONEY)
    assert [a["alliance_id"] for a in got_alliances] == sorted(expect.alliances)
    for got in got_alliances:
        want = expect.alliances[got["alliance_id"]]
        assert {c: got[c] for c in want} == want, f"alliance {got['alliance_id']}"
    assert result.outside_cases == expect.outside_cases


def check_identities(result: Any, model: AllianceModel) -> None:
    """(b) every figure adds up, from the output tables and the model alone."""
    rules = model.rules
    cases = rows_of(result.cases, CASE_MONEY)
    members = rows_of(result.members, MEMBER_MONEY)
    alliances = {a["alliance_id"]: a for a in rows_of(result.alliances, ALLIANCE_MONEY)}
    items = rows_of(result.items, ("amount",))
    transfers = rows_of(result.transfers, ("base", "amount"))
    hospital = {m.hospital_id: m for a in model.alliances for m in a.members}

    by_alliance: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in members:
        by_alliance[m["alliance_id"]].append(m)
        # every column signed as it enters the sum: what a member gives is negative
        assert m["claims"] == (
            m["own_payment"]
            + m["referred_up"]
            + m["up_received"]
            + m["up_paid_out"]
            + m["down_received"]
            + m["down_paid_out"]
        )
        assert m["referred_up"] <= 0 and m["up_received"] >= 0 and m["up_paid_out"] <= 0
        assert m["net"] == (
            m["claims"]
            + m["package_adjustment"]
            + m["shared_costs"]
            + m["joint_revenue"]
            + m["cost_increase"]
        )
    for alliance in model.alliances:
        a = alliances[alliance.id]
        mine = by_alliance[alliance.id]
        paid = [c for c in cases if c["alliance_id"] == alliance.id and c["paid"]]
        assert sum(m["claims"] for m in mine) == a["claims"] == sum(c["payment"] for c in paid)
        assert sum(c["claim"] for c in cases if c["alliance_id"] == alliance.id) == a["claims"]
        shared = sum(s.amount for s in alliance.shared_costs)
        joint = sum(j.revenue for j in alliance.joint_services)
        increase = sum(c.amount for c in alliance.cost_increases)
        assert a["shared_costs"] == -shared and a["joint_revenue"] == joint
        assert a["cost_increase_total"] == increase
        assert -a["cost_increase_members"] + a["cost_increase_suppliers"] == increase
        assert a["package"] == a["claims"] + a["package_adjustment"]
        assert a["package_adjustment"] == a["kept"] - a["alliance_overspend"]
        net = sum(m["net"] for m in mine)
        assert net == a["net"] == (a["package"] - shared + joint + a["cost_increase_members"])
        for column in ("package_adjustment", "shared_costs", "joint_revenue"):
            assert sum(m[column] for m in mine) == a[column]
        assert sum(m["cost_increase"] for m in mine) == a["cost_increase_members"]
        # every item group adds up to its amount
        groups: dict[tuple[str, str], int] = defaultdict(int)
        for it in items:
            if it["alliance_id"] == alliance.id:
                assert it["hospital_id"] in {m.hospital_id for m in alliance.members}
                groups[(it["kind"], it["item"])] += it["amount"]
        for s in alliance.shared_costs:
            assert groups[("shared_cost", s.name)] == -s.amount
        for j in alliance.joint_services:
            assert groups[("joint_service", j.name)] == j.revenue
        members_part = 0
        for c in alliance.cost_increases:
            part = -groups[("cost_increase", c.name)]
            assert 0 <= part <= c.amount
            # the members' part is split(amount, member_share), members first on a tie
            assert part == ref.two_party(c.amount, Fraction(c.member_share), (0, ""), (1, ""))
            members_part += part
        assert -members_part == a["cost_increase_members"]
        assert groups[("package_adjustment", "package")] == a["package_adjustment"]
    # members' columns are the sums of their items and transfers
    per_member: dict[tuple[str, str], int] = defaultdict(int)
    for it in items:
        per_member[(it["hospital_id"], it["kind"])] += it["amount"]
    moved: dict[tuple[str, str], int] = defaultdict(int)
    for t in transfers:
        moved[(t["payee_hospital_id"], t["kind"] + "_received")] += t["amount"]
        moved[(t["payer_hospital_id"], t["kind"] + "_paid_out")] -= t["amount"]
    for m in members:
        h = m["hospital_id"]
        assert m["package_adjustment"] == per_member[(h, "package_adjustment")]
        assert m["shared_costs"] == per_member[(h, "shared_cost")]
        assert m["joint_revenue"] == per_member[(h, "joint_service")]
        assert m["cost_increase"] == per_member[(h, "cost_increase")]
        for column in ("up_received", "up_paid_out", "down_received", "down_paid_out"):
            assert m[column] == moved[(h, column)]
    # every transfer is split(base, share) of the right base
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in cases:
        by_id[c["case_id"]].append(c)
    for t in transfers:
        payee, payer = t["payee_hospital_id"], t["payer_hospital_id"]
        assert payee != payer
        (parent,) = by_id[t["parent_case_id"]]
        assert parent["hospital_id"] == payee
        assert hospital[payee].level != hospital[payer].level
        share = rules.up_referrer_share if t["kind"] == "up" else rules.down_sender_share
        assert t["amount"] == ref.two_party(t["base"], Fraction(share), payee, payer)
        if t["kind"] == "down":
            assert t["case_id"] == t["child_case_id"]
            children = [
                c
                for c in by_id[t["child_case_id"]]
                if c["hospital_id"] == payer
                and c["link"] == "down"
                and c["parent_case_id"] == t["parent_case_id"]
            ]
            assert any(c["down_surplus"] == t["base"] and c["paid"] for c in children)
            assert hospital[payee].level > hospital[payer].level
            assert t["base"] >= 0 or rules.down_share_losses
        else:
            assert hospital[payee].level < hospital[payer].level
    assert sum(1 for c in cases if c["down_surplus"] is not None) == sum(
        1 for t in transfers if t["kind"] == "down"
    )


def check_paid_once(result: Any) -> None:
    """(c) each settled alliance case is paid, or absorbed into the paying case at the end of
    its up chain; each up episode hands out exactly its payment, no more."""
    cases = rows_of(result.cases, CASE_MONEY)
    transfers = rows_of(result.transfers, ("base", "amount"))
    settled_in = [c for c in cases if c["alliance_id"] is not None and c["payment"] is not None]
    up_child: dict[str, dict[str, Any]] = {}
    for c in cases:
        if c["link"] == "up":
            assert c["parent_case_id"] not in up_child, "two up-children keep one parent"
            up_child[c["parent_case_id"]] = c
    for c in cases:
        if c["alliance_id"] is None:
            assert not c["paid"] and c["absorbed_into"] is None and c["claim"] is None
            continue
        if c["absorbed_into"] is not None:
            assert not c["paid"] and c["claim"] == 0
            # follow the up links to the end of the chain: that case pays, once
            end, steps = c, 0
            while end["case_id"] in up_child:
                end = up_child[end["case_id"]]
                steps += 1
            assert steps >= 1 and end["paid"] and end["case_id"] == c["absorbed_into"]
            assert end["alliance_id"] == c["alliance_id"]
        elif c["payment"] is not None:
            assert c["paid"] and c["claim"] == c["payment"]
        else:
            assert not c["paid"] and c["claim"] == 0
    for c in settled_in:
        assert c["paid"] != (c["absorbed_into"] is not None)
    # up episodes: the amounts kept along the chain add up to the paying case's payment
    ups = [t for t in transfers if t["kind"] == "up"]
    starts = [t for t in ups if t["child_case_id"] == t["case_id"]]
    # further links of an episode: their child is an absorbed case (a unique id)
    later = {
        (t["case_id"], t["child_case_id"]): t for t in ups if t["child_case_id"] != t["case_id"]
    }
    assert len(starts) + len(later) == len(ups)
    walked = 0
    for first in starts:
        paying = [
            c
            for c in cases
            if c["case_id"] == first["case_id"]
            and c["paid"]
            and c["link"] == "up"
            and c["parent_case_id"] == first["parent_case_id"]
        ]
        assert len(paying) == 1
        pay = paying[0]["payment"]
        assert first["base"] == pay and abs(first["amount"]) <= abs(pay)
        kept = Counter({first["payer_hospital_id"]: pay})
        t = first
        while t is not None:
            walked += 1
            assert abs(t["amount"]) <= abs(t["base"])
            kept[t["payer_hospital_id"]] -= t["amount"]
            kept[t["payee_hospital_id"]] += t["amount"]
            nxt = later.get((t["case_id"], t["parent_case_id"]))
            if nxt is not None:
                assert nxt["base"] == t["amount"]
                assert nxt["payer_hospital_id"] == t["payee_hospital_id"]
            t = nxt
        # the episode hands out its payment once: every member of the chain keeps a part of
        # it (of its sign), and the parts add up to the payment
        assert sum(kept.values()) == pay
        assert all(0 <= v <= pay if pay >= 0 else pay <= v <= 0 for v in kept.values())
    assert walked == len(ups)


# --------------------------------------------------------------------------- the tests


def run_reference(model: AllianceModel, rows: list[dict[str, Any]]) -> ref.Reference:
    try:
        return ref.reference_split(rows, model)
    except ref.SpecGap as gap:
        SEEN["skipped, the spec is silent: " + str(gap)] += 1
        assume(False)
        raise


def check_split(model: AllianceModel, rows: list[dict[str, Any]]) -> None:
    """(a), (b) and (c) for one scenario."""
    expect = run_reference(model, rows)
    SEEN["alliances"] += len(model.alliances)
    SEEN["examples"] += 1
    SEEN["rows"] += len(rows)
    SEEN["up links"] += sum(1 for c in expect.cases if c["link"] == "up")
    SEEN["up transfers past the first link"] += sum(
        1 for t in expect.transfers if t["kind"] == "up" and t["case_id"] != t["child_case_id"]
    )
    SEEN["down transfers"] += sum(1 for t in expect.transfers if t["kind"] == "down")
    SEEN["conflicts"] += sum(1 for c in expect.cases if c["link"] == "conflict")
    result = split(table_of(rows), model)
    check_agreement(result, expect)
    check_identities(result, model)
    check_paid_once(result)


# How many alliances: models have 53/12 ≈ 4.4 alliances on average (ALLIANCE_COUNTS), so
#   1,800 seeded examples here          ≈ 7,900 alliances
# +   700 in test_batches_and_shuffles  ≈ 3,100
# +   100 drawn examples                ≈   400
# ≈ 11,400 > 10,000; test_enough_alliances checks the count. About 50 s on 2 slow cores.
@settings(max_examples=1800, **SETTINGS)
@given(seeded_scenarios)
def test_split_agrees_with_reference(scenario: tuple[AllianceModel, list[dict[str, Any]]]) -> None:
    check_split(*scenario)


@settings(max_examples=100, **SETTINGS)
@given(scenarios())
def test_split_agrees_with_reference_drawn(
    scenario: tuple[AllianceModel, list[dict[str, Any]]],
) -> None:
    """The same, every choice drawn by Hypothesis (fewer examples, minimal failures)."""
    check_split(*scenario)


@settings(max_examples=700, **SETTINGS)
@given(seeded_scenarios, st.integers(0, 2**32), st.lists(st.integers(0, 25), max_size=8))
def test_batches_and_shuffles(
    scenario: tuple[AllianceModel, list[dict[str, Any]]], seed: int, sizes: list[int]
) -> None:
    """(d) shuffled rows cut into batches (some empty; tables and record batches) give the
    same members, alliances, transfers and items, and the cases permuted alike."""
    model, rows = scenario
    SEEN["alliances"] += len(model.alliances)
    SEEN["batch examples"] += 1
    whole = split(table_of(rows), model)
    rnd = random.Random(seed)
    order = list(range(len(rows)))
    rnd.shuffle(order)
    table = table_of([rows[k] for k in order])
    batches, start = [], 0
    for size in sizes:
        batches.append(table.slice(start, size))
        start += size
    batches.append(table.slice(start))
    batches = [b.to_batches()[0] if b.num_rows and rnd.random() < 0.5 else b for b in batches]
    parts = split_batches(iter(batches), model)
    for name in ("members", "alliances", "transfers", "items"):
        got, want = getattr(parts, name), getattr(whole, name)
        assert got.schema == want.schema, name
        assert got.to_pylist() == want.to_pylist(), name
    assert parts.cases.schema == whole.cases.schema
    cases = whole.cases.to_pylist()
    assert parts.cases.to_pylist() == [cases[k] for k in order]
    assert parts.outside_cases == whole.outside_cases


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-(10**9), 10**9),
    st.lists(
        st.one_of(
            st.integers(0, 1000),
            st.fractions(0, 10),
            st.integers(0, 10**6).map(lambda k: D(k).scaleb(-6)),
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_largest_remainder_matches_reference(total: int, weights: list[Any]) -> None:
    assume(sum(Fraction(w) for w in weights) > 0)
    ids = [HOSPITAL_IDS[k] for k in range(len(weights))][::-1]
    assert largest_remainder(total, weights, ids) == ref.largest_remainder(
        total, [Fraction(w) for w in weights], ids
    )


def test_enough_alliances() -> None:
    """The property tests above saw at least 10,000 alliances (run with the whole module)."""
    if SEEN["examples"] == 0 or SEEN["batch examples"] == 0:
        pytest.skip("the property tests did not run in this session")
    print(dict(SEEN))
    assert SEEN["alliances"] >= 10_000, dict(SEEN)
