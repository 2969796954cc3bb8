"""The alliance money: package adjustment, shared costs, joint services and cost increases,
allocated among members with exact fractions and the largest-remainder rule."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa

from ._input import Members, id_key
from ._model import Alliance, AllianceModel
from ._tables import SUMMARY_NAMES, summary_table

__all__ = ["COOPERATION_SCHEMA", "alliance_money", "cooperation_outcome", "largest_remainder"]


def largest_remainder(total: int, weights: Sequence[Any], ids: Sequence[str]) -> list[int]:
    """Split ``total`` cents among parties with exact non-negative ``weights``.

    Each party gets ``floor(|total|·w/Σw)``; the cents left go one each to the largest
    fractional remainders, ties to the smaller id (binary string order); a negative total is
    split as its absolute value and negated. The parts add up to ``total`` exactly."""
    if len(weights) != len(ids):
        raise ValueError("one weight per party")
    ws = [Fraction(w) for w in weights]
    if any(w < 0 for w in ws):
        raise ValueError("weights are not negative")
    whole = sum(ws)
    if whole == 0:
        raise ValueError("the weights add up to zero")
    amount = abs(int(total))
    parts = []
    remainders = []
    for w in ws:
        quota = amount * w / whole
        floor = math.floor(quota)
        parts.append(floor)
        remainders.append(quota - floor)
    left = amount - sum(parts)
    order = sorted(range(len(ws)), key=lambda k: (-remainders[k], id_key(ids[k])))
    for k in order[:left]:
        parts[k] += 1
    return parts if total >= 0 else [-p for p in parts]


def _weight_text(w: Fraction) -> str:
    """An exact weight as text: a decimal when it has one, else p/q."""
    d = w.denominator
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return f"{w.numerator}/{w.denominator}"
    places = max(twos, fives)
    text = (
        str((Decimal(w.numerator) / Decimal(w.denominator)).quantize(Decimal(1).scaleb(-places)))
        if places
        else str(w.numerator)
    )
    return text


def _allocate(
    total: int,
    parties: Sequence[int],
    weights: Sequence[Fraction],
    mem: Members,
    fallback: Sequence[Fraction],
) -> tuple[list[int], list[Fraction]]:
    if sum(weights) == 0:
        weights = fallback
    ids = [mem.ids[p] for p in parties]
    return largest_remainder(total, weights, ids), list(weights)


def alliance_money(
    model: AllianceModel,
    mem: Members,
    claims_m: np.ndarray,
    volume: list[Fraction],
    counts: dict[str, np.ndarray],
) -> tuple[np.ndarray, list[tuple], pa.Table]:
    """Per member: package adjustment, shared costs, joint revenue and cost increase; the
    item rows; the alliances table. ``counts``: per alliance ``cases``, ``settled_cases``,
    ``absorbed_cases``, ``absorbed_settled`` (absorbed and settled), ``up_links`` and
    ``down_links``."""
    n_members = len(mem.ids)
    extra = np.zeros((4, n_members), np.int64)
    item_rows: list[tuple] = []
    rules = model.rules
    counts = dict(counts)
    # a paid case is a settled case of the alliance that is not absorbed
    counts["paid_cases"] = counts["settled_cases"] - counts["absorbed_settled"]
    rows: dict[str, list[Any]] = {name: [] for name in SUMMARY_NAMES}
    start = 0
    for a_index, a in enumerate(model.alliances):
        parties = list(range(start, start + len(a.members)))
        start += len(a.members)
        coef = [Fraction(mem.members[p].coefficient) for p in parties]
        cv = [c * volume[p] for c, p in zip(coef, parties, strict=True)]
        claims = int(sum(int(claims_m[p]) for p in parties))

        def record(
            kind_: str,
            item: str,
            ps: Sequence[int],
            amounts: Sequence[int],
            weights: Sequence[Fraction],
            row: int,
            a: Alliance = a,
        ) -> None:
            for p, amount, w in zip(ps, amounts, weights, strict=True):
                extra[row, p] += amount
                item_rows.append((a.id, kind_, item, mem.ids[p], _weight_text(w), amount))

        # package
        kept = returned = fund_over = alliance_over = surplus = overspend = 0
        if a.budget is not None:
            assert rules.package is not None
            balance = a.budget - claims
            if balance >= 0:
                surplus = balance
                kept, returned = rules.package.retain(surplus, a.budget)
            else:
                overspend = -balance
                fund_over, alliance_over = rules.package.share_overspend(overspend, a.budget)
            adjustment = kept - alliance_over
            if rules.share_by == "claims":
                weights = [Fraction(max(int(claims_m[p]), 0)) for p in parties]
            else:
                weights = cv
            amounts, used = _allocate(adjustment, parties, weights, mem, coef)
            record("package_adjustment", "package", parties, amounts, used, 0)
        else:
            adjustment = 0
        shared_total = 0
        for cost in a.shared_costs:
            ps = _subset(parties, cost.members, mem)
            w = [cv[parties.index(p)] for p in ps]
            f = [coef[parties.index(p)] for p in ps]
            amounts, used = _allocate(cost.amount, ps, w, mem, f)
            record("shared_cost", cost.name, ps, [-x for x in amounts], used, 1)
            shared_total += cost.amount
        joint_total = 0
        for service in a.joint_services:
            ps, weights = _joint_weights(a, service, parties, cv, coef, mem)
            amounts = largest_remainder(service.revenue, weights, [mem.ids[p] for p in ps])
            record("joint_service", service.name, ps, amounts, weights, 2)
            joint_total += service.revenue
        inc_total = inc_members = 0
        for inc in a.cost_increases:
            m_part, _s_part = _members_and_suppliers(inc.amount, inc.member_share)
            amounts, used = _allocate(m_part, parties, cv, mem, coef)
            record("cost_increase", inc.name, parties, [-x for x in amounts], used, 3)
            inc_total += inc.amount
            inc_members += m_part
        package = claims + adjustment
        net = int(sum(int(claims_m[p]) + int(extra[:, p].sum()) for p in parties))
        expected = package - shared_total + joint_total - inc_members
        if net != expected:  # an internal invariant; cannot happen with exact allocations
            raise AssertionError(f"alliance {a.id}: Σ net {net} != {expected}")
        values = dict(
            alliance_id=a.id,
            basis=a.basis,
            members=len(parties),
            cases=int(counts["cases"][a_index]),
            settled_cases=int(counts["settled_cases"][a_index]),
            paid_cases=int(counts["paid_cases"][a_index]),
            absorbed_cases=int(counts["absorbed_cases"][a_index]),
            up_links=int(counts["up_links"][a_index]),
            down_links=int(counts["down_links"][a_index]),
            budget=a.budget,
            claims=claims,
            surplus=surplus,
            overspend=overspend,
            kept=kept,
            returned=returned,
            fund_overspend=fund_over,
            alliance_overspend=alliance_over,
            package_adjustment=adjustment,
            package=package,
            shared_costs=-shared_total,
            joint_revenue=joint_total,
            cost_increase_total=inc_total,
            cost_increase_members=-inc_members,
            cost_increase_suppliers=inc_total - inc_members,
            net=net,
        )
        for name in SUMMARY_NAMES:
            rows[name].append(values[name])
    return extra, item_rows, summary_table(rows)


def _subset(parties: list[int], names: tuple[str, ...] | None, mem: Members) -> list[int]:
    if names is None:
        return parties
    wanted = set(names)
    return [p for p in parties if mem.ids[p] in wanted]


def _joint_weights(
    a: Alliance,
    service: Any,
    parties: list[int],
    cv: list[Fraction],
    coef: list[Fraction],
    mem: Members,
) -> tuple[list[int], list[Fraction]]:
    if service.shares is not None:
        share = dict(service.shares)
        ps = [p for p in parties if mem.ids[p] in share]
        return ps, [Fraction(share[mem.ids[p]]) for p in ps]
    lead = next(p for p in parties if mem.members[p].role == "lead")
    others = [p for p in _subset(parties, service.members, mem) if p != lead]
    lead_share = Fraction(service.lead_share)
    if not others:
        return [lead], [Fraction(1)]
    w = [cv[parties.index(p)] for p in others]
    if sum(w) == 0:
        w = [coef[parties.index(p)] for p in others]
    whole = sum(w)
    ps = [lead, *others]
    weights = [lead_share] + [(1 - lead_share) * x / whole for x in w]
    order = sorted(range(len(ps)), key=lambda k: ps[k])
    return [ps[k] for k in order], [weights[k] for k in order]


def _members_and_suppliers(amount: int, member_share: Decimal) -> tuple[int, int]:
    """Largest remainder between the members (share s, first on a tie) and the suppliers."""
    quota = amount * Fraction(member_share)
    floor = math.floor(quota)
    rest = quota - floor
    members = floor + (1 if rest >= Fraction(1, 2) and rest > 0 else 0)
    return members, amount - members


# --------------------------------------------------------------------------- pay for cooperation

#: :func:`cooperation_outcome`: one row per member
COOPERATION_SCHEMA = pa.schema(
    [
        pa.field("alliance_id", pa.string()),
        pa.field("hospital_id", pa.string()),
        pa.field("cases", pa.int64()),
        pa.field("referred_cases", pa.int64()),
        pa.field("referral_rate", pa.string()),
        pa.field("shared_results", pa.bool_()),
        pa.field("cooperation_met", pa.bool_()),
        pa.field("uplift", pa.decimal128(18, 2)),
        pa.field("synergy_set_aside", pa.decimal128(18, 2)),
        pa.field("synergy_part", pa.decimal128(18, 2)),
        pa.field("explanation", pa.string()),
    ]
)


def _floors_to(total: int, weights: Sequence[Fraction], ids: Sequence[str], to: str) -> list[int]:
    """Each party floor(total·w/Σw); the cents left all go to the party ``to``."""
    whole = sum(weights)
    parts = [math.floor(total * w / whole) for w in weights]
    parts[list(ids).index(to)] += total - sum(parts)
    return parts


def _yuan_text(cents: int) -> str:
    return f"{'-' if cents < 0 else ''}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def cooperation_outcome(
    model: AllianceModel,
    split: Any,
    *,
    shared_results: Any = None,
) -> pa.Table:
    """Coefficient uplift and synergy fund per member (schema :data:`COOPERATION_SCHEMA`),
    from an alliance ``split`` (:class:`drgkit.alliance.AllianceSplit`) of ``model``.

    ``referred_cases``: the member's cases that are the child or the parent of an ``up`` or
    ``down`` link (links between members of one alliance); ``referral_rate`` = referred ÷
    cases (exact, 6 decimals shown). ``shared_results``: hospital ids that share results (a
    set, or a mapping id → bool), needed when ``[cooperation] shared_results = true``.
    ``uplift`` = half_up(max(claims, 0) × cooperation.uplift) when the targets are met, else 0
    (paid by the fund on top of the package). The synergy fund of an alliance, ``F =
    half_up(kept × share)`` (``kept``: its retained package surplus), is taken from the
    members in proportion to their positive package adjustments (``synergy_set_aside`` ≤ 0,
    largest remainder) and paid out by ``split_by`` (``synergy_part`` ≥ 0, by the remainder
    rule); both add up to F, so Σ over an alliance of set-aside + part = 0. A member's result
    is ``net + uplift + synergy_set_aside + synergy_part``."""
    from ._model import AllianceError

    coop = model.rules.cooperation
    fund_rule = model.rules.synergy_fund
    if coop is not None and coop.shared_results and shared_results is None:
        raise AllianceError(
            "[cooperation] shared_results = true: pass shared_results= (the members that "
            "share results)"
        )
    sharing: set[str] = set()
    if isinstance(shared_results, Mapping):
        sharing = {str(h) for h, yes in shared_results.items() if yes}
    elif shared_results is not None:
        sharing = {str(h) for h in shared_results}
    cases = split.cases.select(["case_id", "hospital_id", "alliance_id", "link", "parent_case_id"])
    rows = cases.to_pylist()
    referred: dict[tuple[str, str], int] = {}
    linked_parents: set[tuple[str, str]] = set()
    for r in rows:
        if r["alliance_id"] is not None and r["link"] in ("up", "down"):
            linked_parents.add((r["alliance_id"], r["parent_case_id"]))
    for r in rows:
        aid = r["alliance_id"]
        if aid is None:
            continue
        key = (aid, r["hospital_id"])
        if r["link"] in ("up", "down") or (aid, r["case_id"]) in linked_parents:
            referred[key] = referred.get(key, 0) + 1
    members = split.members.to_pylist()
    summary = {r["alliance_id"]: r for r in split.alliances.to_pylist()}
    out: dict[str, list[Any]] = {f.name: [] for f in COOPERATION_SCHEMA}
    by_alliance: dict[str, list[dict[str, Any]]] = {}
    for m in members:
        by_alliance.setdefault(m["alliance_id"], []).append(m)
    for aid in sorted(by_alliance):
        ms = sorted(by_alliance[aid], key=lambda m: id_key(m["hospital_id"]))
        ids = [m["hospital_id"] for m in ms]
        n_ref = [referred.get((aid, h), 0) for h in ids]
        lines: list[list[str]] = [[] for _ in ms]
        uplift = [0] * len(ms)
        met: list[bool | None] = [None] * len(ms)
        rates: list[str | None] = []
        for k, m in enumerate(ms):
            rate = Fraction(n_ref[k], m["cases"]) if m["cases"] else None
            rates.append(None if rate is None else _weight_text_6(rate))
            if coop is None:
                continue
            ok_rate = rate is not None and rate >= Fraction(coop.referral_rate_min)
            ok_shared = not coop.shared_results or ids[k] in sharing
            met[k] = ok_rate and ok_shared
            claims = _cents_of_yuan(m["claims"])
            if met[k]:
                uplift[k] = _half_up_frac(max(claims, 0) * Fraction(coop.uplift))
            text = f"cooperation: referral rate {rates[k]} vs ≥ {coop.referral_rate_min}"
            if coop.shared_results:
                text += f", shares results: {'yes' if ids[k] in sharing else 'no'}"
            if met[k]:
                text += (
                    f" → met: uplift {coop.uplift} × {_yuan_text(max(claims, 0))} = "
                    f"{_yuan_text(uplift[k])}"
                )
            else:
                text += " → not met: no uplift"
            lines[k].append(text)
        set_aside = [0] * len(ms)
        parts = [0] * len(ms)
        if fund_rule is not None:
            kept = _cents_of_yuan(summary[aid]["kept"])
            fund = _half_up_frac(max(kept, 0) * Fraction(fund_rule.share))
            adjustments = [max(_cents_of_yuan(m["package_adjustment"]), 0) for m in ms]
            if fund:
                taken = (
                    largest_remainder(fund, adjustments, ids) if sum(adjustments) else [0] * len(ms)
                )
                set_aside = [-x for x in taken]
                if fund_rule.split_by == "referrals":
                    weights = [Fraction(x) for x in n_ref]
                elif fund_rule.split_by == "coefficient_volume":
                    weights = [Fraction(m["coefficient"]) * Fraction(m["volume"]) for m in ms]
                else:
                    weights = [Fraction(1)] * len(ms)
                lead = next(m["hospital_id"] for m in ms if m["role"] == "lead")
                to = lead if fund_rule.remainder in ("lead", "largest") else fund_rule.remainder
                if to not in ids:
                    raise AllianceError(
                        f"synergy_fund.remainder names {to!r}, not a member of alliance {aid!r}"
                    )
                if sum(weights) == 0:  # no cooperation to weigh: the whole fund to one member
                    weights = [Fraction(h == to) for h in ids]
                if fund_rule.remainder == "largest":
                    parts = largest_remainder(fund, weights, ids)
                else:
                    parts = _floors_to(fund, weights, ids, to)
            for k in range(len(ms)):
                lines[k].append(
                    f"synergy fund: {fund_rule.share} × kept {_yuan_text(max(kept, 0))} = "
                    f"{_yuan_text(fund)}; set aside {_yuan_text(set_aside[k])}, part "
                    f"{_yuan_text(parts[k])} (by {fund_rule.split_by}, remainder "
                    f"{fund_rule.remainder})"
                )
        for k, m in enumerate(ms):
            out["alliance_id"].append(aid)
            out["hospital_id"].append(ids[k])
            out["cases"].append(m["cases"])
            out["referred_cases"].append(n_ref[k])
            out["referral_rate"].append(rates[k])
            out["shared_results"].append(ids[k] in sharing)
            out["cooperation_met"].append(met[k])
            out["uplift"].append(uplift[k])
            out["synergy_set_aside"].append(set_aside[k])
            out["synergy_part"].append(parts[k])
            out["explanation"].append(" | ".join(lines[k]))
    arrays = []
    for f in COOPERATION_SCHEMA:
        if pa.types.is_decimal(f.type):
            arrays.append(pa.array([Decimal(v).scaleb(-2) for v in out[f.name]], f.type))
        else:
            arrays.append(pa.array(out[f.name], f.type))
    return pa.Table.from_arrays(arrays, schema=COOPERATION_SCHEMA)


def _half_up_frac(x: Fraction) -> int:
    from .._money import half_up

    return half_up(x)


def _weight_text_6(x: Fraction) -> str:
    from .._money import round_fraction

    return str(round_fraction(x, 6))


def _cents_of_yuan(value: Decimal | None) -> int:
    """Exact cents of a MONEY value read back from a table (None: 0)."""
    return 0 if value is None else int(Decimal(value).scaleb(2))
