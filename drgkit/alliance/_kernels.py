"""numba kernels of the alliance split: referral links, up-transfer chains, per-member sums.

They work on integer columns only (member index, codes, cents); see the package docstring for
the rules they implement.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit
from .._money import COEF_SCALE

__all__ = ["CONFLICT", "DOWN", "LINKS", "SCALE", "UP", "episodes", "link_kinds", "member_counts"]

#: link kinds, in the order they are decided (see the package docstring)
LINKS = (
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
(
    NONE,
    SELF,
    UNRESOLVED,
    AMBIGUOUS,
    OUTSIDE,
    SAME_MEMBER,
    LATERAL,
    NOT_SETTLED,
    UP,
    DOWN,
    CONFLICT,
) = range(len(LINKS))
#: ratios are exact multiples of 10^-6 (the model allows at most six decimals)
SCALE = COEF_SCALE


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
def link_kinds(own_code, parent_code, code_count, code_first, member, m_alliance, m_level, settled):
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
def episodes(
    kind, parent, member, settled, pay, cost, cost_ok, m_rank, up_num, down_num, losses, n_members
):
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
def member_counts(member, settled, n_members):
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
