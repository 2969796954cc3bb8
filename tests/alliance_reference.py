"""Slow, obviously correct reference of the alliance split (drgkit.alliance).

Written only from the rules in the docstring of ``drgkit/alliance/__init__.py`` and the model
of ``drgkit/alliance/_model.py``; it shares no code with ``drgkit/alliance/_split.py``. Plain
dicts, lists, loops and :class:`fractions.Fraction`; every amount is integer cents. The only
drgkit behaviour it reuses is the band arithmetic of period settlement
(``PeriodRules.retain`` / ``share_overspend``), which the spec names and which is tested with the
settlement module.

Input: a list of dict rows with the keys ``case_id``, ``hospital_id``, ``settled`` (bool),
``payment_cents`` (int or None), ``cost_cents`` (int or None), ``referral_from`` (str or None)
and ``rw`` (Decimal or None), and an :class:`AllianceModel`.

Output (:class:`Reference`):

* ``cases``: one dict per input row, in input order: ``case_id``, ``hospital_id``,
  ``alliance_id``, ``link``, ``parent_case_id``, ``absorbed_into``, ``paid``, ``payment``,
  ``claim``, ``down_surplus`` (cents or None);
* ``members``: ``{(alliance_id, hospital_id): {column: value}}`` with the member columns of
  the output table (money in cents, ``volume`` a Fraction);
* ``alliances``: ``{alliance_id: {column: value}}``;
* ``transfers``: one dict per money-moving link split;
* ``items``: one dict per (alliance, item, member) allocation.

Where the spec leaves a case undefined the reference raises :class:`SpecGap` (the property
tests skip such inputs and count them), instead of inventing a rule, except for two decisions
the spec does not make, taken as ``split()`` takes them and listed here so that they are
reviewed (set a flag to False to skip those inputs instead):

* ``CLAIMS_WEIGHTS_AT_LEAST_ZERO``: with ``share_by = "claims"`` a member whose claims are
  negative (possible when losses are shared down) weighs 0, not its negative claims;
* ``LEAD_ALONE_TAKES_JOINT_REVENUE``: a ``lead_share`` joint service of an alliance whose only
  member is the lead goes wholly to the lead.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

__all__ = ["Reference", "SpecGap", "largest_remainder", "reference_split", "two_party"]

LINK_KINDS = (
    "none",
    "self",
    "unresolved",
    "ambiguous",
    "outside",
    "same_member",
    "lateral",
    "not_settled",
    "up",
    "down",
    "conflict",
)


CLAIMS_WEIGHTS_AT_LEAST_ZERO = True
LEAD_ALONE_TAKES_JOINT_REVENUE = True


class SpecGap(Exception):
    """The spec does not say what happens for this input."""


# --------------------------------------------------------------------------- rounding


def largest_remainder(total: int, weights: list[Fraction], tie_keys: list[Any]) -> list[int]:
    """Split ``total`` cents by ``weights`` (spec: "Rounding: one rule, largest remainder").

    Each party gets floor(|T|·w_i/Σw), then one more cent goes to the parties with the largest
    fractional remainders, as many as cents are left, ties to the smaller tie key; for T < 0
    the same is done on |T| and negated."""
    weights = [Fraction(w) for w in weights]
    assert len(weights) == len(tie_keys) > 0
    if total == 0:
        return [0] * len(weights)
    whole = sum(weights)
    if whole == 0:
        # only an all-zero allocation has a stated fallback (the caller applies it)
        raise SpecGap("the weights of an allocation add up to zero")
    size = abs(total)
    exact = [Fraction(size) * w / whole for w in weights]
    shares = [math.floor(q) for q in exact]
    left = size - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), tie_keys[i]))
    assert 0 <= left <= len(weights)
    for i in order[:left]:
        shares[i] += 1
    assert sum(shares) == size
    return shares if total > 0 else [-s for s in shares]


def two_party(total: int, share: Fraction, payee_key: Any, payer_key: Any) -> int:
    """``split(T, s)``: the payee's part (share s; the payer has 1 − s)."""
    share = Fraction(share)
    return largest_remainder(total, [share, 1 - share], [payee_key, payer_key])[0]


def allocate(
    total: int, parties: list[str], weight: dict[str, Fraction], coefficient: dict[str, Fraction]
) -> dict[str, int]:
    """Allocate among members by their weights; when every weight is zero, the coefficients
    alone are the weights."""
    weights = [weight[h] for h in parties]
    if all(w == 0 for w in weights):
        weights = [coefficient[h] for h in parties]
    amounts = largest_remainder(total, weights, list(parties))
    return dict(zip(parties, amounts, strict=True))


# --------------------------------------------------------------------------- the split


class Reference:
    def __init__(self) -> None:
        self.cases: list[dict[str, Any]] = []
        self.members: dict[tuple[str, str], dict[str, Any]] = {}
        self.alliances: dict[str, dict[str, Any]] = {}
        self.transfers: list[dict[str, Any]] = []
        self.items: list[dict[str, Any]] = []
        self.outside_cases = 0


MEMBER_MONEY = (
    "own_payment",
    "referred_up",
    "up_received",
    "up_paid_out",
    "down_received",
    "down_paid_out",
    "claims",
    "package_adjustment",
    "shared_costs",
    "joint_revenue",
    "cost_increase",
    "net",
)


def reference_split(rows: list[dict[str, Any]], model: Any) -> Reference:
    rules = model.rules
    up_share = Fraction(rules.up_referrer_share)
    down_share = Fraction(rules.down_sender_share)
    out = Reference()

    # ---- members: hospital -> (alliance, member)
    member_of: dict[str, Any] = {}
    alliance_of: dict[str, str] = {}
    for alliance in model.alliances:
        for m in alliance.members:
            member_of[m.hospital_id] = m
            alliance_of[m.hospital_id] = alliance.id

    n = len(rows)
    hosp = [r["hospital_id"] for r in rows]
    aid = [alliance_of.get(h) for h in hosp]
    settled = [bool(r["settled"]) for r in rows]
    # only settled cases carry money
    payment = [r["payment_cents"] if settled[i] else None for i, r in enumerate(rows)]
    cost = [r["cost_cents"] if settled[i] else None for i, r in enumerate(rows)]
    for i in range(n):
        if settled[i] and payment[i] is None:
            raise SpecGap("a settled case without a payment")

    rows_with_id: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        rows_with_id.setdefault(r["case_id"], []).append(i)

    # ---- links, in the order of the spec
    link = ["none"] * n
    parent = [None] * n  # row index of the parent, when resolved
    for i, r in enumerate(rows):
        ref = r["referral_from"]
        if ref is None or ref == "":
            continue  # null or empty: no referral
        if aid[i] is None:
            link[i] = "outside"  # a case of a hospital in no alliance that names a parent
            continue
        if ref == r["case_id"]:
            link[i] = "self"
            continue
        found = rows_with_id.get(ref, [])
        if not found:
            link[i] = "unresolved"
            continue
        if len(found) > 1:
            link[i] = "ambiguous"
            continue
        p = found[0]
        parent[i] = p
        if aid[p] != aid[i]:
            link[i] = "outside"
        elif hosp[p] == hosp[i]:
            link[i] = "same_member"
        elif member_of[hosp[p]].level == member_of[hosp[i]].level:
            link[i] = "lateral"
        elif not settled[i]:
            link[i] = "not_settled"
        elif member_of[hosp[i]].level > member_of[hosp[p]].level:
            link[i] = "up"
        else:
            link[i] = "down"

    # conflict: of the up-children of one parent, the smallest case_id keeps the link
    up_children: dict[int, list[int]] = {}
    for i in range(n):
        if link[i] == "up":
            up_children.setdefault(parent[i], []).append(i)
    up_child_of: dict[int, int] = {}

    def tie_key(c: int) -> tuple[Any, ...]:
        # repeated ids are told apart by hospital id, payment and cost (a missing cost first)
        cost = rows[c]["cost_cents"]
        return (
            rows[c]["case_id"].encode(),
            rows[c]["hospital_id"].encode(),
            rows[c]["payment_cents"],
            -(2**62) if cost is None else cost,
        )

    for p, children in up_children.items():
        smallest = min(tie_key(c) for c in children)
        keepers = [c for c in children if tie_key(c) == smallest]
        if len(keepers) > 1:
            raise SpecGap("two up-children of one parent are equal in every tie-break key")
        up_child_of[p] = keepers[0]
        for c in children:
            if c != keepers[0]:
                link[c] = "conflict"

    # ---- up episodes: the paying case is the last case of a chain
    absorbed_into: list[int | None] = [None] * n  # row of the paying case
    paying_of_chain: dict[int, list[int]] = {}  # paying row -> chain rows, root first
    for i in range(n):
        if i in up_child_of or link[i] != "up":
            continue  # i is a parent of an up-link, or not the end of an up chain
        chain = [i]
        while link[chain[-1]] == "up":
            chain.append(parent[chain[-1]])
            assert len(chain) <= n, "an up chain cannot cycle (levels strictly increase)"
        chain.reverse()
        paying_of_chain[i] = chain
        for j in chain[:-1]:
            absorbed_into[j] = i
    paid = [settled[i] and aid[i] is not None and absorbed_into[i] is None for i in range(n)]

    # ---- member accounts
    acct: dict[str, dict[str, Any]] = {}
    for alliance in model.alliances:
        for m in alliance.members:
            row: dict[str, Any] = {
                "alliance_id": alliance.id,
                "hospital_id": m.hospital_id,
                "role": m.role,
                "level": m.level,
                "coefficient": m.coefficient,
                "cases": 0,
                "settled_cases": 0,
                "volume": Fraction(0),
            }
            row.update({name: 0 for name in MEMBER_MONEY})
            acct[m.hospital_id] = row
    for i in range(n):
        if aid[i] is None:
            out.outside_cases += 1
            continue
        a = acct[hosp[i]]
        a["cases"] += 1
        if settled[i]:
            a["settled_cases"] += 1
            a["own_payment"] += payment[i]
            if rules.volume == "cases":
                a["volume"] += 1
            else:
                if rows[i]["rw"] is None:
                    raise SpecGap("a settled case without rw under volume = 'rw'")
                a["volume"] += Fraction(rows[i]["rw"])
            if absorbed_into[i] is not None:
                a["referred_up"] -= payment[i]

    # up transfers, walking back from the paying case
    for pay_row, chain in sorted(paying_of_chain.items()):
        base = payment[pay_row]
        for k in range(len(chain) - 1, 0, -1):
            child, par = chain[k], chain[k - 1]
            payee, payer = hosp[par], hosp[child]
            amount = two_party(base, up_share, payee, payer)
            acct[payee]["up_received"] += amount
            acct[payer]["up_paid_out"] -= amount  # signed as it enters the claims
            out.transfers.append(
                {
                    "alliance_id": aid[pay_row],
                    "kind": "up",
                    "case_id": rows[pay_row]["case_id"],
                    "child_case_id": rows[child]["case_id"],
                    "parent_case_id": rows[par]["case_id"],
                    "payer_hospital_id": payer,
                    "payee_hospital_id": payee,
                    "base": base,
                    "amount": amount,
                }
            )
            base = amount

    # down transfers: the child is paid and has a known total cost
    down_surplus: list[int | None] = [None] * n
    for i in range(n):
        if link[i] != "down" or not paid[i] or cost[i] is None:
            continue
        surplus = payment[i] - cost[i]
        if surplus < 0 and not rules.down_share_losses:
            continue  # a loss stays with the receiving member
        payee, payer = hosp[parent[i]], hosp[i]
        amount = two_party(surplus, down_share, payee, payer)
        acct[payee]["down_received"] += amount
        acct[payer]["down_paid_out"] -= amount
        down_surplus[i] = surplus
        out.transfers.append(
            {
                "alliance_id": aid[i],
                "kind": "down",
                "case_id": rows[i]["case_id"],
                "child_case_id": rows[i]["case_id"],
                "parent_case_id": rows[parent[i]]["case_id"],
                "payer_hospital_id": payer,
                "payee_hospital_id": payee,
                "base": surplus,
                "amount": amount,
            }
        )

    for a in acct.values():
        # every column signed as it enters the sum: what a member gives is negative
        a["claims"] = (
            a["own_payment"]
            + a["referred_up"]
            + a["up_received"]
            + a["up_paid_out"]
            + a["down_received"]
            + a["down_paid_out"]
        )

    # ---- cases table
    for i, r in enumerate(rows):
        out.cases.append(
            {
                "case_id": r["case_id"],
                "hospital_id": hosp[i],
                "alliance_id": aid[i],
                "link": link[i],
                "parent_case_id": r["referral_from"] or None,
                "absorbed_into": (
                    None if absorbed_into[i] is None else rows[absorbed_into[i]]["case_id"]
                ),
                "paid": paid[i],
                "payment": payment[i],
                "claim": None if aid[i] is None else (payment[i] if paid[i] else 0),
                "down_surplus": down_surplus[i],
            }
        )

    # ---- per alliance: package, shared costs, joint services, cost increases
    for alliance in model.alliances:
        ids = [m.hospital_id for m in alliance.members]  # sorted by hospital id
        coef = {h: Fraction(acct[h]["coefficient"]) for h in ids}
        cv = {h: coef[h] * acct[h]["volume"] for h in ids}
        lead = alliance.lead.hospital_id
        rows_here = [i for i in range(n) if aid[i] == alliance.id]
        claims = sum(acct[h]["claims"] for h in ids)
        tot: dict[str, Any] = {
            "alliance_id": alliance.id,
            "basis": alliance.basis,
            "members": len(ids),
            "cases": len(rows_here),
            "settled_cases": sum(1 for i in rows_here if settled[i]),
            "paid_cases": sum(1 for i in rows_here if paid[i]),
            "absorbed_cases": sum(1 for i in rows_here if absorbed_into[i] is not None),
            "up_links": sum(1 for i in rows_here if link[i] == "up"),
            "down_links": sum(1 for i in rows_here if link[i] == "down"),
            "budget": alliance.budget,
            "claims": claims,
        }
        assert claims == sum(payment[i] for i in rows_here if paid[i])

        surplus = overspend = kept = returned = fund_over = alliance_over = 0
        if alliance.budget is not None:
            budget = alliance.budget
            balance = budget - claims
            surplus, overspend = max(balance, 0), max(-balance, 0)
            kept, returned = rules.package.retain(surplus, budget)
            fund_over, alliance_over = rules.package.share_overspend(overspend, budget)
        adjustment = kept - alliance_over
        tot.update(
            surplus=surplus,
            overspend=overspend,
            kept=kept,
            returned=returned,
            fund_overspend=fund_over,
            alliance_overspend=alliance_over,
            package_adjustment=adjustment,
            package=claims + adjustment,
        )
        if rules.share_by == "coefficient_volume":
            weight = cv
        else:
            weight = {h: Fraction(acct[h]["claims"]) for h in ids}
            if adjustment and any(w < 0 for w in weight.values()):
                if not CLAIMS_WEIGHTS_AT_LEAST_ZERO:
                    raise SpecGap("share_by = 'claims' with a member's claims below zero")
                weight = {h: max(w, Fraction(0)) for h, w in weight.items()}
        for h, amount in allocate(adjustment, ids, weight, coef).items():
            acct[h]["package_adjustment"] += amount
            out.items.append(_item(alliance.id, "package_adjustment", "package", h, amount))

        shared_total = 0
        for cost_item in alliance.shared_costs:
            parties = sorted(cost_item.members) if cost_item.members is not None else ids
            shared_total += cost_item.amount
            for h, amount in allocate(cost_item.amount, parties, cv, coef).items():
                acct[h]["shared_costs"] -= amount
                out.items.append(_item(alliance.id, "shared_cost", cost_item.name, h, -amount))

        joint_total = 0
        for service in alliance.joint_services:
            joint_total += service.revenue
            if service.shares is not None:
                parties = sorted(h for h, _s in service.shares)
                share = {h: Fraction(s) for h, s in service.shares}
                got = dict(
                    zip(
                        parties,
                        largest_remainder(service.revenue, [share[h] for h in parties], parties),
                        strict=True,
                    )
                )
            else:
                got = _joint_lead_share(service, lead, ids, cv, coef)
            for h, amount in sorted(got.items()):
                acct[h]["joint_revenue"] += amount
                out.items.append(_item(alliance.id, "joint_service", service.name, h, amount))

        increase_total = increase_members = 0
        for increase in alliance.cost_increases:
            # split(T, member_share): the members against the suppliers, the members first
            # on a tie; the members' part then by coefficient × volume
            members_part = two_party(
                increase.amount, Fraction(increase.member_share), (0, ""), (1, "")
            )
            increase_total += increase.amount
            increase_members += members_part
            for h, amount in allocate(members_part, ids, cv, coef).items():
                acct[h]["cost_increase"] -= amount
                out.items.append(_item(alliance.id, "cost_increase", increase.name, h, -amount))

        for h in ids:
            a = acct[h]
            a["net"] = (
                a["claims"]
                + a["package_adjustment"]
                + a["shared_costs"]
                + a["joint_revenue"]
                + a["cost_increase"]
            )
            out.members[(alliance.id, h)] = a
        net = sum(acct[h]["net"] for h in ids)
        tot.update(
            shared_costs=-shared_total,
            joint_revenue=joint_total,
            cost_increase_total=increase_total,
            cost_increase_members=-increase_members,
            cost_increase_suppliers=increase_total - increase_members,
            net=net,
        )
        # Σ net = package − Σ shared costs + Σ joint revenue − members' part of increases
        assert net == tot["package"] - shared_total + joint_total - increase_members
        out.alliances[alliance.id] = tot
    return out


def _joint_lead_share(
    service: Any, lead: str, ids: list[str], cv: dict[str, Fraction], coef: dict[str, Fraction]
) -> dict[str, int]:
    """Joint service by ``lead_share``: the lead takes lead_share; the other members (or those
    listed) the rest by coefficient × volume (coefficients when those are all zero).

    One allocation among members, with exact weights lead_share for the lead and
    (1 − lead_share)·cv_i/Σcv for the others, so that every party has a member id for the
    tie rule."""
    others = (
        sorted(service.members) if service.members is not None else [h for h in ids if h != lead]
    )
    lead_share = Fraction(service.lead_share)
    if not others:
        if lead_share != 1 and service.revenue != 0 and not LEAD_ALONE_TAKES_JOINT_REVENUE:
            raise SpecGap("a lead_share joint service with no other member to take the rest")
        return {lead: service.revenue}
    inner = [cv[h] for h in others]
    if all(w == 0 for w in inner):
        inner = [coef[h] for h in others]
    whole = sum(inner)
    weights = {lead: lead_share}
    for h, w in zip(others, inner, strict=True):
        weights[h] = (1 - lead_share) * w / whole
    parties = sorted(weights)
    amounts = largest_remainder(service.revenue, [weights[h] for h in parties], parties)
    return dict(zip(parties, amounts, strict=True))


def _item(alliance_id: str, kind: str, item: str, hospital_id: str, amount: int) -> dict[str, Any]:
    return {
        "alliance_id": alliance_id,
        "kind": kind,
        "item": item,
        "hospital_id": hospital_id,
        "amount": amount,
    }


def cents(value: Decimal | None) -> int | None:
    """Exact yuan (Decimal) -> cents."""
    if value is None:
        return None
    c = value.scaleb(2)
    assert c == c.to_integral_value(), value
    return int(c)
