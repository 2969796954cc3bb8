"""Splitting an alliance package among its members (rules: the package docstring).

The per-case work — resolving referral links, walking up-transfer chains, splitting payments
and surpluses, summing per member — runs in numba kernels over integer columns; the per-item
allocations (shared costs, joint services, cost increases, the package adjustment: a few per
alliance) use exact Python fractions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io import open_writer
from .._jit import jit
from .._money import (
    FLAG_TEXT,
    LIMIT_RW,
    MISSING,
    OK,
    RW_DECIMALS,
    RW_SCALE,
    cents_array,
    group_sums,
    rw_units,
    to_cents,
)
from ..errors import CaseDataError
from ._model import Alliance, AllianceModel

__all__ = ["AllianceSplit", "largest_remainder", "split", "split_batches"]

#: link kinds, in the order they are decided (see the package docstring)
LINKS = ("none", "self", "unresolved", "ambiguous", "outside", "same_member", "lateral",
         "not_settled", "up", "down", "conflict")
(NONE, SELF, UNRESOLVED, AMBIGUOUS, OUTSIDE, SAME_MEMBER, LATERAL, NOT_SETTLED, UP, DOWN,
 CONFLICT) = range(len(LINKS))
#: ratios are exact multiples of 10^-6 (the model allows at most six decimals)
SCALE = 10**6
#: volume per member: a sum of RW (or of cases), exact at RW_DECIMALS
VOLUME_TYPE = pa.decimal128(38, RW_DECIMALS)
COEF_TYPE = pa.decimal128(9, 6)

_NEEDED = ("case_id", "hospital_id", "settled", "payment", "total_cost")


# --------------------------------------------------------------------------- rounding


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
    order = sorted(range(len(ws)), key=lambda k: (-remainders[k], _key(ids[k])))
    for k in order[:left]:
        parts[k] += 1
    return parts if total >= 0 else [-p for p in parts]


def _key(hospital_id: str) -> bytes:
    return hospital_id.encode("utf-8")


@jit
def _split2(total, num, payee_first):
    """The payee's part of ``total`` at share num/10^6 (largest remainder between payee and
    payer; ``payee_first``: the payee has the smaller id and wins a tie)."""
    sign = 1
    if total < 0:
        sign = -1
        total = -total
    a = total // SCALE
    b = total - a * SCALE
    floor = a * num + (b * num) // SCALE
    rem = (b * num) % SCALE
    if rem != 0:
        other = SCALE - rem  # the payer's fractional remainder (the two add up to one cent)
        if rem > other or (rem == other and payee_first):
            floor += 1
    return sign * floor


# --------------------------------------------------------------------------- kernels


@jit
def _link_kinds(own_code, parent_code, code_count, code_first, member, m_alliance, m_level,
                settled):
    n = len(member)
    kind = np.zeros(n, np.int8)
    parent = np.full(n, -1, np.int64)
    for i in range(n):
        pcode = parent_code[i]
        if pcode == -2:
            continue  # no referral
        mi = member[i]
        if mi < 0:
            kind[i] = OUTSIDE
            continue
        if pcode >= 0 and pcode == own_code[i]:
            kind[i] = SELF
            continue
        if pcode < 0 or code_count[pcode] == 0:
            kind[i] = UNRESOLVED
            continue
        if code_count[pcode] > 1:
            kind[i] = AMBIGUOUS
            continue
        p = code_first[pcode]
        parent[i] = p
        mp = member[p]
        if mp < 0 or m_alliance[mp] != m_alliance[mi]:
            kind[i] = OUTSIDE
        elif mp == mi:
            kind[i] = SAME_MEMBER
        elif m_level[mp] == m_level[mi]:
            kind[i] = LATERAL
        elif not settled[i]:
            kind[i] = NOT_SETTLED
        elif m_level[mi] > m_level[mp]:
            kind[i] = UP
        else:
            kind[i] = DOWN
    return kind, parent


@jit
def _transfer(tr, t, kind, case, child, parent, payer, payee, base, amount, sums, column):
    """Record transfer ``t`` (a row of ``tr``) and book it on both members; returns t + 1.
    ``column``: the row of ``sums`` the payee gains in (the payer loses in the next)."""
    tr[t, 0] = kind
    tr[t, 1] = case
    tr[t, 2] = child
    tr[t, 3] = parent
    tr[t, 4] = payer
    tr[t, 5] = payee
    tr[t, 6] = base
    tr[t, 7] = amount
    sums[column, payee] += amount
    sums[column + 1, payer] -= amount
    return t + 1


@jit
def _episodes(kind, parent, member, settled, pay, cost, cost_ok, m_rank, up_num, down_num,
              losses, n_members):
    """Absorbed cases, transfers and per-member sums (see the package docstring)."""
    n = len(kind)
    absorbed = np.zeros(n, np.bool_)
    cap = 0
    for i in range(n):
        if kind[i] == UP:
            absorbed[parent[i]] = True
            cap += 1
        elif kind[i] == DOWN:
            cap += 1
    paid = np.zeros(n, np.bool_)
    for i in range(n):
        paid[i] = settled[i] and member[i] >= 0 and not absorbed[i]
    paying = np.full(n, -1, np.int64)
    surplus = np.zeros(n, np.int64)
    surplus_ok = np.zeros(n, np.bool_)
    # transfers: kind, case, child, parent, payer, payee, base, amount
    tr = np.zeros((cap, 8), np.int64)
    sums = np.zeros((6, n_members), np.int64)  # own, referred_up, up_in, up_out, dn_in, dn_out
    t = 0
    for i in range(n):
        m = member[i]
        if m < 0 or not settled[i]:
            continue
        sums[0, m] += pay[i]
        if absorbed[i]:
            sums[1, m] -= pay[i]
        if not paid[i]:
            continue
        if kind[i] == UP:
            amount = pay[i]
            cur = i
            while True:
                p = parent[cur]
                payee = member[p]
                payer = member[cur]
                x = _split2(amount, up_num, m_rank[payee] < m_rank[payer])
                t = _transfer(tr, t, UP, i, cur, p, payer, payee, amount, x, sums, 2)
                paying[p] = i
                if kind[p] != UP:
                    break
                cur = p
                amount = x
        elif kind[i] == DOWN and cost_ok[i]:
            u = pay[i] - cost[i]
            if u >= 0 or losses:
                p = parent[i]
                payee = member[p]
                x = _split2(u, down_num, m_rank[payee] < m_rank[m])
                t = _transfer(tr, t, DOWN, i, i, p, m, payee, u, x, sums, 4)
                surplus[i] = u
                surplus_ok[i] = True
    return absorbed, paid, paying, surplus, surplus_ok, sums, tr[:t]


@jit
def _member_counts(member, settled, n_members):
    cases = np.zeros(n_members, np.int64)
    settled_cases = np.zeros(n_members, np.int64)
    for i in range(len(member)):
        m = member[i]
        if m < 0:
            continue
        cases[m] += 1
        if settled[i]:
            settled_cases[m] += 1
    return cases, settled_cases


# --------------------------------------------------------------------------- input


@attrs.define
class _Columns:
    case_id: pa.Array
    hospital_id: pa.Array
    referral_from: pa.Array
    settled: np.ndarray
    pay: np.ndarray
    pay_valid: np.ndarray
    cost: np.ndarray
    cost_ok: np.ndarray
    rw: np.ndarray


def _string(batch: pa.RecordBatch | pa.Table, name: str, n: int) -> pa.Array:
    if name not in batch.schema.names:
        return pa.nulls(n, pa.large_string())
    arr = batch.column(name)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], arr.type)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    return arr.cast(pa.large_string())


def _rw_units(arr: Any, n: int, row0: int) -> np.ndarray:
    """RW as exact integers RW·RW_SCALE (null -> 0), read as settle writes them; more than
    RW_DECIMALS decimals, a value above LIMIT_RW or a negative RW is an error naming the
    row."""
    if arr is None:
        return np.zeros(n, np.int64)
    values, flag = rw_units(arr, n)
    bad = np.flatnonzero((flag != OK) & (flag != MISSING))
    if len(bad):
        k = int(bad[0])
        raise CaseDataError(f"rw {_value_text(arr, k)} is not a weight with at most "
                            f"{RW_DECIMALS} decimals up to {LIMIT_RW} "
                            f"({FLAG_TEXT[int(flag[k])]}; {len(bad)} such rows)",
                            row=row0 + k + 1, column="rw")
    negative = np.flatnonzero(values < 0)
    if len(negative):
        raise CaseDataError("rw is negative", row=row0 + int(negative[0]) + 1, column="rw")
    return values


def _value_text(arr: Any, k: int) -> str:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return repr(arr[k].as_py())


def _read(batch: pa.RecordBatch | pa.Table, row0: int, need_rw: bool) -> _Columns:
    n = batch.num_rows
    names = batch.schema.names
    for name in _NEEDED:
        if name not in names:
            raise CaseDataError(f"the settled cases have no {name!r} column (needed: "
                                f"{', '.join(_NEEDED)}; optional: referral_from, rw)",
                                column=name)
    if need_rw and "rw" not in names:
        raise CaseDataError("the model's volume is \"rw\" but the cases have no 'rw' column",
                            column="rw")
    settled_arr = batch.column("settled")
    if isinstance(settled_arr, pa.ChunkedArray):
        settled_arr = settled_arr.combine_chunks()
    if not pa.types.is_boolean(settled_arr.type):
        raise CaseDataError(f"'settled' must be a boolean column, it is {settled_arr.type}",
                            column="settled")
    settled = settled_arr.fill_null(False).to_numpy(zero_copy_only=False).astype(np.bool_)
    pay, pay_flag = to_cents(batch.column("payment"), n)
    bad = np.flatnonzero(settled & (pay_flag != OK))
    if len(bad):
        k = int(bad[0])
        case = _string(batch, "case_id", n)[k].as_py()
        raise CaseDataError(f"case {case!r} is settled but its payment is not an amount "
                            f"({len(bad)} such rows)", row=row0 + k + 1, column="payment")
    cost, cost_flag = to_cents(batch.column("total_cost"), n)
    # a missing cost is unknown (no down-transfer surplus); a cost that is there but is not an
    # amount is a mistake in the input
    bad = np.flatnonzero(settled & (cost_flag != OK) & (cost_flag != MISSING))
    if len(bad):
        k = int(bad[0])
        case = _string(batch, "case_id", n)[k].as_py()
        raise CaseDataError(f"case {case!r}: total_cost is {FLAG_TEXT[int(cost_flag[k])]} "
                            f"({len(bad)} such rows)", row=row0 + k + 1, column="total_cost")
    refs = _string(batch, "referral_from", n)
    refs = pc.if_else(pc.equal(refs, ""), pa.scalar(None, pa.large_string()), refs)
    rw = _rw_units(batch.column("rw") if "rw" in names else None, n, row0)
    return _Columns(_string(batch, "case_id", n), _string(batch, "hospital_id", n), refs,
                    settled, np.where(pay_flag == OK, pay, 0), pay_flag == OK,
                    np.where(cost_flag == OK, cost, 0), cost_flag == OK, rw)


def _concat(parts: list[_Columns]) -> _Columns:
    if len(parts) == 1:
        return parts[0]

    def strings(name: str) -> pa.Array:
        return pa.concat_arrays([getattr(p, name) for p in parts])

    def arrays(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    return _Columns(strings("case_id"), strings("hospital_id"), strings("referral_from"),
                    *(arrays(n) for n in ("settled", "pay", "pay_valid", "cost", "cost_ok",
                                          "rw")))


# --------------------------------------------------------------------------- result


@attrs.frozen
class AllianceSplit:
    """The split: Arrow tables (money as exact ``decimal128(18, 2)`` yuan)."""

    cases: pa.Table
    transfers: pa.Table
    items: pa.Table
    members: pa.Table
    alliances: pa.Table
    outside_cases: int
    model_id: str
    model_hash: str

    TABLES = ("members", "alliances", "transfers", "items", "cases")

    def write(self, folder: str | os.PathLike[str], fmt: str = "csv") -> list[Path]:
        """Write every table to ``folder`` as ``<name>.csv`` (or ``.parquet``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for name in self.TABLES:
            table = getattr(self, name)
            path = folder / f"{name}.{fmt}"
            with open_writer(path, fmt) as writer:
                for batch in table.to_batches():
                    writer.write(batch)
                writer.close(table.schema)
            out.append(path)
        return out


# --------------------------------------------------------------------------- split


def split(settled: pa.Table | pa.RecordBatch, model: AllianceModel) -> AllianceSplit:
    """Split every alliance's package for the settled cases (one table)."""
    return split_batches([settled], model)


def split_batches(batches: Iterable[pa.RecordBatch | pa.Table], model: AllianceModel
                  ) -> AllianceSplit:
    """:func:`split` over a stream of batches (the result does not depend on the batching)."""
    need_rw = model.rules.volume == "rw"
    parts = []
    row0 = 0
    for batch in batches:
        parts.append(_read(batch, row0, need_rw))
        row0 += batch.num_rows
    if not parts:
        raise CaseDataError("no settled cases were given (not even an empty table)")
    return _split(_concat(parts), model)


@attrs.frozen
class _Members:
    ids: list[str]
    alliance: np.ndarray  # alliance index per member
    level: np.ndarray
    rank: np.ndarray  # rank of the hospital id in binary order over all members
    members: list[Any]  # Member objects, model order (by alliance, then hospital id)


def _members(model: AllianceModel) -> _Members:
    ids, alliance, level, objs = [], [], [], []
    for a_index, a in enumerate(model.alliances):
        for m in a.members:
            ids.append(m.hospital_id)
            alliance.append(a_index)
            level.append(m.level)
            objs.append(m)
    order = sorted(range(len(ids)), key=lambda k: _key(ids[k]))
    rank = np.empty(len(ids), np.int64)
    rank[order] = np.arange(len(ids))
    return _Members(ids, np.array(alliance, np.int64), np.array(level, np.int64), rank, objs)


def _split(cols: _Columns, model: AllianceModel) -> AllianceSplit:
    mem = _members(model)
    n_members = len(mem.ids)
    member = pc.index_in(cols.hospital_id, value_set=pa.array(mem.ids, pa.large_string()))
    member = member.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)

    # only the ids that some case names as its referral source are hashed: codes index them
    refs = cols.referral_from
    named = pc.unique(refs.filter(refs.is_valid()))
    own_code = pc.index_in(cols.case_id, value_set=named)
    own_code = own_code.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    rows = np.flatnonzero(own_code >= 0)
    code_count = np.bincount(own_code[rows], minlength=len(named)).astype(np.int64)
    code_first = np.full(len(named), -1, np.int64)
    code_first[own_code[rows[::-1]]] = rows[::-1]
    parent_code = pc.index_in(refs, value_set=named)
    parent_code = parent_code.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    parent_code[refs.is_null().to_numpy(zero_copy_only=False)] = -2

    kind, parent = _link_kinds(own_code, parent_code, code_count, code_first, member,
                               mem.alliance, mem.level, cols.settled)
    _resolve_conflicts(kind, parent, cols)

    rules = model.rules
    up_num = int(rules.up_referrer_share * SCALE)
    down_num = int(rules.down_sender_share * SCALE)
    absorbed, paid, paying, surplus, surplus_ok, sums, tr = _episodes(
        kind, parent, member, cols.settled, cols.pay, cols.cost, cols.cost_ok, mem.rank,
        up_num, down_num, rules.down_share_losses, n_members)
    cases_m, settled_m = _member_counts(member, cols.settled, n_members)
    counted = (member >= 0) & cols.settled
    rw_m = group_sums(member[counted], cols.rw[counted], n_members)  # exact at any size

    claims_m = sums.sum(axis=0)
    volume = [Fraction(int(v)) for v in settled_m] if rules.volume == "cases" else [
        Fraction(int(v), RW_SCALE) for v in rw_m]
    extra, item_rows, summary = _alliance_money(model, mem, claims_m, volume, sums, paid,
                                                absorbed, kind, member, cols)

    cases = _cases_table(cols, mem, model, member, kind, absorbed, paid, paying, surplus,
                         surplus_ok)
    transfers = _transfers_table(cols, mem, model, *np.ascontiguousarray(tr.T))
    members = _members_table(mem, model, cases_m, settled_m, volume, sums, claims_m, extra)
    items = _items_table(item_rows)
    meta = {b"drgkit.alliance_model": model.id.encode(),
            b"drgkit.alliance_model_hash": model.content_hash.encode(),
            b"drgkit.rounding": b"largest remainder per split, ties to the smaller hospital id"}
    tables = [t.replace_schema_metadata(meta) for t in (cases, transfers, items, members,
                                                         summary)]
    return AllianceSplit(*tables, outside_cases=int((member < 0).sum()), model_id=model.id,
                         model_hash=model.content_hash)


def _resolve_conflicts(kind: np.ndarray, parent: np.ndarray, cols: _Columns) -> None:
    """Of several up-children of one parent, the smallest (case_id, hospital_id, payment,
    cost — a missing cost first) keeps the link; the others become ``conflict``."""
    up = np.flatnonzero(kind == UP)
    if not len(up):
        return
    parents = parent[up]
    counts = np.bincount(parents, minlength=len(kind))
    contested = up[counts[parents] > 1]
    if not len(contested):
        return
    groups: dict[int, list[int]] = {}
    for i in contested.tolist():
        groups.setdefault(int(parent[i]), []).append(i)
    case_ids = cols.case_id.take(pa.array(contested)).to_pylist()
    hospitals = cols.hospital_id.take(pa.array(contested)).to_pylist()
    key = {i: (_key(c or ""), _key(h or ""), int(cols.pay[i]),
               int(cols.cost[i]) if cols.cost_ok[i] else -(2**62))
           for i, c, h in zip(contested.tolist(), case_ids, hospitals, strict=True)}
    for children in groups.values():
        winner = min(children, key=lambda i: (key[i], i))
        for i in children:
            if i != winner:
                kind[i] = CONFLICT


# --------------------------------------------------------------------------- alliance money


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
    text = str((Decimal(w.numerator) / Decimal(w.denominator)).quantize(
        Decimal(1).scaleb(-places))) if places else str(w.numerator)
    return text


def _allocate(total: int, parties: Sequence[int], weights: Sequence[Fraction],
              mem: _Members, fallback: Sequence[Fraction]) -> tuple[list[int], list[Fraction]]:
    if sum(weights) == 0:
        weights = fallback
    ids = [mem.ids[p] for p in parties]
    return largest_remainder(total, weights, ids), list(weights)


def _alliance_money(model: AllianceModel, mem: _Members, claims_m: np.ndarray,
                    volume: list[Fraction], sums: np.ndarray, paid: np.ndarray,
                    absorbed: np.ndarray, kind: np.ndarray, member: np.ndarray,
                    cols: _Columns) -> tuple[np.ndarray, list[tuple], pa.Table]:
    n_members = len(mem.ids)
    # per member: package adjustment, shared costs, joint revenue, cost increase
    extra = np.zeros((4, n_members), np.int64)
    item_rows: list[tuple] = []
    rules = model.rules
    a_of_case = np.where(member >= 0, mem.alliance[np.maximum(member, 0)], -1)
    n_all = len(model.alliances)

    def per_alliance(mask: np.ndarray) -> np.ndarray:
        return np.bincount(a_of_case[mask & (a_of_case >= 0)], minlength=n_all)

    in_all = a_of_case >= 0
    counts = {
        "cases": per_alliance(in_all),
        "settled_cases": per_alliance(cols.settled),
        "paid_cases": per_alliance(paid),
        "absorbed_cases": per_alliance(absorbed & in_all),
        "up_links": per_alliance(kind == UP),
        "down_links": per_alliance(kind == DOWN),
    }
    rows: dict[str, list[Any]] = {name: [] for name in _SUMMARY_NAMES}
    start = 0
    for a_index, a in enumerate(model.alliances):
        parties = list(range(start, start + len(a.members)))
        start += len(a.members)
        coef = [Fraction(mem.members[p].coefficient) for p in parties]
        cv = [c * volume[p] for c, p in zip(coef, parties, strict=True)]
        claims = int(sum(int(claims_m[p]) for p in parties))

        def record(kind_: str, item: str, ps: Sequence[int], amounts: Sequence[int],
                   weights: Sequence[Fraction], row: int, a: Alliance = a) -> None:
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
            alliance_id=a.id, basis=a.basis, members=len(parties),
            cases=int(counts["cases"][a_index]),
            settled_cases=int(counts["settled_cases"][a_index]),
            paid_cases=int(counts["paid_cases"][a_index]),
            absorbed_cases=int(counts["absorbed_cases"][a_index]),
            up_links=int(counts["up_links"][a_index]),
            down_links=int(counts["down_links"][a_index]),
            budget=a.budget, claims=claims, surplus=surplus, overspend=overspend, kept=kept,
            returned=returned, fund_overspend=fund_over, alliance_overspend=alliance_over,
            package_adjustment=adjustment, package=package, shared_costs=-shared_total,
            joint_revenue=joint_total, cost_increase_total=inc_total,
            cost_increase_members=-inc_members,
            cost_increase_suppliers=inc_total - inc_members, net=net)
        for name in _SUMMARY_NAMES:
            rows[name].append(values[name])
    return extra, item_rows, _summary_table(rows)


def _subset(parties: list[int], names: tuple[str, ...] | None, mem: _Members) -> list[int]:
    if names is None:
        return parties
    wanted = set(names)
    return [p for p in parties if mem.ids[p] in wanted]


def _joint_weights(a: Alliance, service: Any, parties: list[int], cv: list[Fraction],
                   coef: list[Fraction], mem: _Members) -> tuple[list[int], list[Fraction]]:
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


# --------------------------------------------------------------------------- tables


_SUMMARY_NAMES = ("alliance_id", "basis", "members", "cases", "settled_cases", "paid_cases",
                  "absorbed_cases", "up_links", "down_links", "budget", "claims", "surplus",
                  "overspend", "kept", "returned", "fund_overspend", "alliance_overspend",
                  "package_adjustment", "package", "shared_costs", "joint_revenue",
                  "cost_increase_total", "cost_increase_members", "cost_increase_suppliers",
                  "net")
_COUNT_NAMES = ("members", "cases", "settled_cases", "paid_cases", "absorbed_cases",
                "up_links", "down_links")


def _money(values: Sequence[int | None]) -> pa.Array:
    arr = np.array([0 if v is None else v for v in values], np.int64)
    valid = np.array([v is not None for v in values], np.bool_)
    return cents_array(arr, valid)


def _summary_table(rows: dict[str, list[Any]]) -> pa.Table:
    arrays = {}
    for name in _SUMMARY_NAMES:
        if name in ("alliance_id", "basis"):
            arrays[name] = pa.array(rows[name], pa.string())
        elif name in _COUNT_NAMES:
            arrays[name] = pa.array(rows[name], pa.int64())
        else:
            arrays[name] = _money(rows[name])
    return pa.table(arrays)


_MEMBER_MONEY = ("own_payment", "referred_up", "up_received", "up_paid_out", "down_received",
                 "down_paid_out", "claims", "package_adjustment", "shared_costs",
                 "joint_revenue", "cost_increase", "net")


def _members_table(mem: _Members, model: AllianceModel, cases_m: np.ndarray,
                   settled_m: np.ndarray, volume: list[Fraction], sums: np.ndarray,
                   claims_m: np.ndarray, extra: np.ndarray) -> pa.Table:
    alliance_ids = [model.alliances[int(a)].id for a in mem.alliance]
    net = claims_m + extra.sum(axis=0)
    money = dict(zip(_MEMBER_MONEY, [*sums, claims_m, *extra, net], strict=True))
    vol = [Decimal(v.numerator) / Decimal(v.denominator) for v in volume]
    return pa.table({
        "alliance_id": pa.array(alliance_ids, pa.string()),
        "hospital_id": pa.array(mem.ids, pa.string()),
        "role": pa.array([m.role for m in mem.members], pa.string()),
        "level": pa.array(mem.level, pa.int8()),
        "coefficient": pa.array([m.coefficient for m in mem.members], COEF_TYPE),
        "cases": pa.array(cases_m, pa.int64()),
        "settled_cases": pa.array(settled_m, pa.int64()),
        "volume": pa.array(vol, VOLUME_TYPE),
        **{name: cents_array(np.asarray(v, np.int64)) for name, v in money.items()},
    })


def _items_table(rows: list[tuple]) -> pa.Table:
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in range(6)]
    return pa.table({
        "alliance_id": pa.array(cols[0], pa.string()),
        "kind": pa.array(cols[1], pa.string()),
        "item": pa.array(cols[2], pa.string()),
        "hospital_id": pa.array(cols[3], pa.string()),
        "weight": pa.array(cols[4], pa.string()),
        "amount": cents_array(np.array(cols[5], np.int64)),
    })


def _take(arr: pa.Array, rows: np.ndarray) -> pa.Array:
    """arr[rows] with -1 -> null, as plain strings."""
    valid = rows >= 0
    idx = pa.array(np.where(valid, rows, 0), mask=~valid)
    return arr.take(idx).cast(pa.string())


def _cases_table(cols: _Columns, mem: _Members, model: AllianceModel, member: np.ndarray,
                 kind: np.ndarray, absorbed: np.ndarray, paid: np.ndarray,
                 paying: np.ndarray, surplus: np.ndarray, surplus_ok: np.ndarray
                 ) -> pa.Table:
    in_alliance = member >= 0
    alliance_names = pa.array([a.id for a in model.alliances], pa.string())
    alliance_idx = np.where(in_alliance, mem.alliance[np.maximum(member, 0)], -1)
    link = pa.DictionaryArray.from_arrays(pa.array(kind, pa.int8()),
                                          pa.array(LINKS, pa.string()))
    pay_valid = cols.settled & cols.pay_valid
    return pa.table({
        "case_id": cols.case_id.cast(pa.string()),
        "hospital_id": cols.hospital_id.cast(pa.string()),
        "alliance_id": _take(alliance_names, alliance_idx),
        "link": link,
        "parent_case_id": cols.referral_from.cast(pa.string()),
        "absorbed_into": _take(cols.case_id, np.where(absorbed, paying, -1)),
        "paid": pa.array(paid, pa.bool_()),
        "payment": cents_array(cols.pay, pay_valid),
        "claim": cents_array(np.where(paid, cols.pay, 0), in_alliance),
        "down_surplus": cents_array(surplus, surplus_ok),
    })


def _transfers_table(cols: _Columns, mem: _Members, model: AllianceModel, t_kind, t_case,
                     t_child, t_parent, t_payer, t_payee, t_base, t_amount) -> pa.Table:
    ids = pa.array(mem.ids, pa.string())
    alliance_names = pa.array([a.id for a in model.alliances], pa.string())
    table = pa.table({
        "alliance_id": alliance_names.take(pa.array(mem.alliance[t_payer])),
        "kind": pa.array(np.where(t_kind == UP, "up", "down").astype(object), pa.string()),
        "case_id": _take(cols.case_id, t_case),
        "child_case_id": _take(cols.case_id, t_child),
        "parent_case_id": _take(cols.case_id, t_parent),
        "payer_hospital_id": ids.take(pa.array(t_payer)),
        "payee_hospital_id": ids.take(pa.array(t_payee)),
        "base": cents_array(t_base),
        "amount": cents_array(t_amount),
    })
    # a canonical order, whatever the input order: by alliance, kind and the paying case
    # (its id, then hospital, payment, cost and referral source, for repeated ids), then the
    # steps of a chain from the paying case up
    step = np.zeros(len(t_case), np.int64)
    if len(t_case):
        new_episode = np.r_[True, t_case[1:] != t_case[:-1]]
        starts = np.flatnonzero(new_episode)
        step = np.arange(len(t_case)) - np.repeat(starts, np.diff(np.r_[starts, len(t_case)]))
    keyed = table.append_column("_h", _take(cols.hospital_id, t_case)).append_column(
        "_p", pa.array(cols.pay[t_case])).append_column(
        "_c", pa.array(np.where(cols.cost_ok[t_case], cols.cost[t_case], -(2**62)))).append_column(
        "_r", _take(cols.referral_from, t_case)).append_column("_s", pa.array(step))
    order = pc.sort_indices(keyed, [(name, "ascending") for name in (
        "alliance_id", "kind", "case_id", "_h", "_p", "_c", "_r", "_s")])
    return table.take(order)
