"""Data for the alliance benchmarks: a synthetic province of medical alliances, and checks.

Shared by ``benchmarks/scale_alliance.py`` (the scaling script) and
``benchmarks/test_bench_alliance.py`` (pytest-benchmark). Nothing is read from disk: the
province is a pure function of its arguments and the seed (numpy's ``default_rng``), built with
vectorised numpy, without a Python loop over cases (5,000,000 cases take a few seconds).

:func:`province` returns the settled cases (the columns :func:`drgkit.alliance.split` reads) and
an :class:`~drgkit.alliance.AllianceModel`:

- ``n_alliances`` alliances of ``members_per_alliance`` members each: one lead of level 3,
  ``members // 4`` members of level 2 and the rest of level 1 (8 → 1 + 2 + 5); coefficients
  1.2 / 1.0 / 0.8 by level. Alliances differ in size (log-normal weights); within one, the lead
  treats 30 % of the cases, the level-2 members 30 %, the level-1 members 40 %. Hospital ids
  ``H000001``… are shuffled, so id order says nothing about level or alliance.
- ``outside_share`` (5 %) of the cases are at hospitals in no alliance (``members // 20`` of
  them, at least 5).
- ``case_id`` ``C000000000``…, in row order (fixed width, so binary order = numeric order);
  ``settled`` false for ~1 % (payment and rw null, total cost kept); ``payment`` log-normal
  around 3,000 / 7,000 / 15,000 yuan by level; ``total_cost`` = payment × U(0.75, 1.30) (so a
  down child's surplus is sometimes a loss), null for ~0.1 %; ``rw`` = payment / 8,000 yuan
  (exact at settle's 9 decimals, ``RW_TYPE``). Money is ``decimal128(18, 2)`` built from int64
  cents (:func:`drgkit._money.cents_array`).
- ``referral_from`` on ~4 % of the cases, the rows of each episode scattered at random over the
  table: up-links from a lower-level member to a higher-level one of the same alliance (1.8 %
  pairs, 0.4 % chains of three L1→L2→L3, 0.05 % second up-children of a referred parent →
  ``conflict``), down-links (0.7 %), down-then-up chains (0.05 %: the down child is absorbed),
  lateral (0.1 %), same member (0.1 %), parents in another alliance or at a hospital in no
  alliance (0.15 %), missing ids (0.1 %), self-references (0.02 %), a parent id that occurs
  twice (0.005 %: the second row is not settled, as settle() marks a repeated id), and
  referrals from cases at hospitals in no alliance (0.02 %). The 1 % unsettled cases fall on
  some children too (``not_settled``).
- The model: 40 % capitation alliances (budget = enrolled × per person), 20 % with a
  payments budget, 40 % without budget. Budgets are drawn at 0.85–1.15 × an estimate of the
  alliance's claims, so both surplus (into the second retention band) and over-spend (into the
  second over-spend band) occur. Package bands: keep 100 % of a surplus up to 10 % of the
  budget and 50 % above; the fund bears 50 % of an over-spend up to 10 % and nothing above.
  Each alliance has two shared costs (one for all members, one for the lead and the level-2
  members), one joint service (lead_share 0.4, or explicit shares in every fourth alliance) and
  one cost increase (member_share 0.6).

Checks: :func:`identities` (the accounting identities of one split, from its own tables) and
:func:`reference_check` (an independent vectorised re-derivation of the link kinds, absorptions,
transfers, allocations and package from the input and the spec in ``drgkit/alliance``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from drgkit.alliance import AllianceModel

LEVEL_COEF = {3: Decimal("1.2"), 2: Decimal("1.0"), 1: Decimal("0.8")}
MEAN_PAYMENT = {1: 3_000_00, 2: 7_000_00, 3: 15_000_00}  # cents
ID_WIDTH = 9  # case ids: "C" + 9 digits
RATES = {  # planned share of all cases, per referral pattern (rows with referral_from)
    "up2": 0.018,
    "up3": 0.004,
    "conflict": 0.0005,
    "down": 0.007,
    "down_up": 0.0005,
    "lateral": 0.001,
    "same_member": 0.001,
    "outside": 0.0015,
    "unresolved": 0.001,
    "self": 0.0002,
    "ambiguous": 0.00005,
    "from_outside": 0.0002,
}


@dataclass
class Province:
    table: pa.Table
    model: AllianceModel
    #: rows at hospitals in no alliance
    outside_rows: int
    #: planned rows with ``referral_from`` per pattern (before settled/unsettled interplay)
    planned: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def province(
    n_cases: int = 5_000_000,
    n_alliances: int = 250,
    members_per_alliance: int = 8,
    seed: int = 0,
    **kw: Any,
) -> tuple[pa.Table, AllianceModel]:
    """(settled cases, model) of a synthetic province; see the module docstring."""
    p = generate(n_cases, n_alliances, members_per_alliance, seed, **kw)
    return p.table, p.model


# ------------------------------------------------------------------------------ arrays


def _fixed_strings(
    prefix: np.ndarray, nums: np.ndarray, valid: np.ndarray | None = None, width: int = ID_WIDTH
) -> pa.Array:
    """Strings ``prefix[i]`` + ``nums[i]`` as ``width`` zero-padded digits, without Python
    objects (null where not ``valid``; null slots take no bytes)."""
    import numpy as np
    import pyarrow as pa

    n = len(nums)
    if valid is None:
        valid = np.ones(n, np.bool_)
    keep = np.flatnonzero(valid)
    w = width + 1
    buf = np.empty((len(keep), w), np.uint8)
    buf[:, 0] = prefix[keep] if prefix.ndim else prefix
    x = nums[keep].astype(np.int64)
    for k in range(width, 0, -1):
        buf[:, k] = 48 + x % 10
        x = x // 10
    if (x != 0).any():
        raise ValueError(f"a number does not fit in {width} digits")
    lengths = np.where(valid, w, 0).astype(np.int64)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] >= 2**31:
        raise ValueError("too many ids for a 32-bit string column")
    validity = None
    nulls = n - len(keep)
    if nulls:
        validity = pa.py_buffer(np.packbits(valid.astype(np.uint8), bitorder="little"))
    return pa.Array.from_buffers(
        pa.string(),
        n,
        [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(buf.reshape(-1))],
        null_count=nulls,
    )


# ------------------------------------------------------------------------------ generator


def generate(
    n_cases: int = 5_000_000,
    n_alliances: int = 250,
    members_per_alliance: int = 8,
    seed: int = 0,
    *,
    outside_share: float = 0.05,
    volume: str = "cases",
    share_by: str = "coefficient_volume",
    up_referrer_share: str = "0.3",
    down_sender_share: str = "0.5",
    down_share_losses: bool = False,
) -> Province:
    """The province with what was planned (see the module docstring)."""
    import numpy as np
    import pyarrow as pa

    from drgkit._money import RW_DECIMALS, cents_array, scaled_array
    from drgkit.alliance import (
        Alliance,
        AllianceModel,
        AllianceRules,
        CostIncrease,
        JointService,
        Member,
        SharedCost,
    )
    from drgkit.settlement._period import OverspendBand, PeriodRules, RetentionBand

    t0 = time.perf_counter()
    n, A, M = int(n_cases), int(n_alliances), int(members_per_alliance)
    if M < 4:
        raise ValueError(
            "members_per_alliance must be at least 4 (a lead, level-2 and two level-1 members)"
        )
    if A < 2:
        raise ValueError("n_alliances must be at least 2")
    rng = np.random.default_rng(seed)
    n2 = max(1, M // 4)
    n1 = M - 1 - n2
    slot_level = np.array([3] + [2] * n2 + [1] * n1, np.int64)
    n_mem = A * M
    n_out_h = max(5, n_mem // 20)
    hosp_level = np.concatenate([np.tile(slot_level, A), rng.integers(1, 4, n_out_h)])
    names = [f"H{k + 1:06d}" for k in rng.permutation(n_mem + n_out_h).tolist()]

    # ---- where each case was treated
    outside = rng.random(n) < outside_share
    ia, io = np.flatnonzero(~outside), np.flatnonzero(outside)
    if len(io) == 0:  # tiny inputs: keep at least one outside row
        io = np.array([n - 1])
        outside[n - 1] = True
        ia = ia[ia != n - 1]
    aw = rng.lognormal(0.0, 0.5, A)
    aw /= aw.sum()
    slot_p = np.array([0.30] + [0.30 / n2] * n2 + [0.40 / n1] * n1)
    hosp = np.empty(n, np.int64)
    hosp[ia] = rng.choice(A, len(ia), p=aw) * M + rng.choice(M, len(ia), p=slot_p / slot_p.sum())
    hosp[io] = n_mem + rng.integers(0, n_out_h, len(io))

    def slot_of(levels: np.ndarray) -> np.ndarray:
        """A random member slot of each given level."""
        return np.where(
            levels == 3,
            0,
            np.where(
                levels == 2,
                1 + rng.integers(0, n2, len(levels)),
                1 + n2 + rng.integers(0, n1, len(levels)),
            ),
        )

    # ---- referral episodes on disjoint alliance rows
    rows_per = {
        "up2": 2,
        "up3": 3,
        "conflict": 1,
        "down": 2,
        "down_up": 3,
        "lateral": 2,
        "same_member": 2,
        "outside": 2,
        "unresolved": 1,
        "self": 1,
        "ambiguous": 3,
    }
    want = {k: round(RATES[k] * n) for k in rows_per}
    need = sum(want[k] * rows_per[k] for k in rows_per)
    if need > len(ia):
        f = len(ia) / need
        want = {k: int(v * f) for k, v in want.items()}
    want["conflict"] = min(want["conflict"], want["up2"])
    pool = rng.permutation(ia)
    pos = 0

    def take(k: int) -> np.ndarray:
        nonlocal pos
        out = pool[pos : pos + k]
        pos += k
        return out

    def alliances(k: int) -> np.ndarray:
        return rng.choice(A, k, p=aw)

    ref = np.full(n, -1, np.int64)  # row index of the parent
    missing = np.zeros(n, np.bool_)  # refers to an id that no row has
    absorbed_plan = []
    planned: dict[str, int] = {}

    k = want["up2"]
    p2, c2, a2 = take(k), take(k), alliances(k)
    pl = np.where(rng.random(k) < 0.7, 1, 2)
    cl = np.where(pl == 1, np.where(rng.random(k) < 0.4, 2, 3), 3)
    hosp[p2], hosp[c2] = a2 * M + slot_of(pl), a2 * M + slot_of(cl)
    ref[c2] = p2
    absorbed_plan.append(p2)
    planned["up (pairs)"] = k

    k = want["up3"]
    r1, r2, r3, a = take(k), take(k), take(k), alliances(k)
    for r, lv in ((r1, 1), (r2, 2), (r3, 3)):
        hosp[r] = a * M + slot_of(np.full(k, lv))
    ref[r2], ref[r3] = r1, r2
    absorbed_plan += [r1, r2]
    planned["up (chains of 3)"] = 2 * k

    k = want["conflict"]
    c = take(k)
    hosp[c] = a2[:k] * M  # the lead (level 3): above every up2 parent
    ref[c] = p2[:k]
    planned["conflict (2nd up-child)"] = k

    k = want["down"]
    p, c, a = take(k), take(k), alliances(k)
    pl = np.where(rng.random(k) < 0.7, 3, 2)
    cl = np.where(pl == 3, np.where(rng.random(k) < 0.6, 1, 2), 1)
    hosp[p], hosp[c] = a * M + slot_of(pl), a * M + slot_of(cl)
    ref[c] = p
    planned["down"] = k

    k = want["down_up"]
    r1, r2, r3, a = take(k), take(k), take(k), alliances(k)
    for r, lv in ((r1, 3), (r2, 1), (r3, 2)):
        hosp[r] = a * M + slot_of(np.full(k, lv))
    ref[r2], ref[r3] = r1, r2  # L3 -> L1 (down), then L1 -> L2 (up: absorbs the down child)
    absorbed_plan.append(r2)
    planned["down then up"] = 2 * k

    k = want["lateral"]
    p, c, a = take(k), take(k), alliances(k)
    s1 = rng.integers(0, n1, k)
    s2 = (s1 + 1 + rng.integers(0, n1 - 1, k)) % n1
    hosp[p], hosp[c] = a * M + 1 + n2 + s1, a * M + 1 + n2 + s2
    ref[c] = p
    planned["lateral"] = k

    k = want["same_member"]
    p, c = take(k), take(k)
    hosp[c] = hosp[p]
    ref[c] = p
    planned["same_member"] = k

    k = want["outside"]
    p, c, a = take(k), take(k), alliances(k)
    other = (a + 1 + rng.integers(0, A - 1, k)) % A
    hosp[p] = other * M + rng.integers(0, M, k)
    hosp[c] = a * M + rng.integers(0, M, k)
    half = k // 2
    ref[c[:half]] = p[:half]  # parent in another alliance
    ref[c[half:]] = rng.choice(io, k - half)  # parent at a hospital in no alliance
    planned["outside"] = k

    k = want["unresolved"]
    c = take(k)
    missing[c] = True
    planned["unresolved"] = k

    k = want["self"]
    c = take(k)
    ref[c] = c
    planned["self"] = k

    k = want["ambiguous"]
    s, t, c, a = take(k), take(k), take(k), alliances(k)
    hosp[s], hosp[t] = a * M + slot_of(np.ones(k, np.int64)), a * M + slot_of(np.ones(k, np.int64))
    hosp[c] = a * M
    ref[c] = s
    planned["ambiguous"] = k

    k = min(round(RATES["from_outside"] * n), len(io))
    c = rng.choice(io, k, replace=False)
    c = c[(ref[c] < 0) & ~missing[c]]
    ref[c] = rng.integers(0, n, len(c))
    planned["from a hospital in no alliance"] = len(c)

    # ---- ids, settled flag, money
    id_num = np.arange(n, dtype=np.int64)
    id_num[t] = id_num[s]  # a repeated id: the copy is not settled (settle() marks it)
    settled = rng.random(n) >= 0.01
    settled[t] = False
    level = hosp_level[hosp]
    mean = np.array([0, MEAN_PAYMENT[1], MEAN_PAYMENT[2], MEAN_PAYMENT[3]], np.float64)[level]
    sigma = 0.6
    pay = np.maximum((mean * rng.lognormal(-sigma * sigma / 2, sigma, n)).astype(np.int64), 500)
    cost = (pay * rng.uniform(0.75, 1.30, n)).astype(np.int64)
    cost_valid = rng.random(n) >= 0.001
    # RW = payment / 8,000 yuan: cents × 10^9 / 800,000 = cents × 1,250, exact at 9 decimals
    rw_units = pay * 1_250

    ref_valid = (ref >= 0) | missing
    ref_num = np.where(ref >= 0, id_num[np.maximum(ref, 0)], rng.integers(0, n, n))
    ref_prefix = np.where(missing, ord("M"), ord("C")).astype(np.uint8)
    name_arr = pa.array(names, pa.string())
    table = pa.table(
        {
            "case_id": _fixed_strings(np.array(ord("C"), np.uint8), id_num),
            "hospital_id": name_arr.take(pa.array(hosp)),
            "settled": pa.array(settled),
            "payment": cents_array(pay, settled),
            "total_cost": cents_array(cost, cost_valid),
            "referral_from": _fixed_strings(ref_prefix, ref_num, ref_valid),
            "rw": scaled_array(rw_units, RW_DECIMALS, settled),
        }
    )

    # ---- the model: budgets near an estimate of each alliance's claims
    absorbed = np.zeros(n, np.bool_)
    for r in absorbed_plan:
        absorbed[r] = True
    est = settled & ~outside & ~absorbed
    claims = np.bincount(hosp[est] // M, weights=pay[est], minlength=A)
    claims = np.maximum(claims, 100_000_00)
    basis_u = rng.random(A)
    factor = rng.uniform(0.85, 1.15, A)
    share_cost = rng.uniform(0.5, 1.5, (A, 4))
    two = Decimal("0.000001")
    alliances_ = []
    for k in range(A):
        slots = range(k * M, (k + 1) * M)
        members = tuple(
            sorted(
                (
                    Member(
                        names[g],
                        int(hosp_level[g]),
                        "lead" if g == k * M else "member",
                        LEVEL_COEF[int(hosp_level[g])],
                    )
                    for g in slots
                ),
                key=lambda m: m.hospital_id,
            )
        )
        lead = names[k * M]
        upper = tuple(sorted(names[g] for g in range(k * M, k * M + 1 + n2)))
        target = int(claims[k] * factor[k])
        budget = enrolled = per_person = None
        basis = "payments"
        if basis_u[k] < 0.4:
            basis = "capitation"
            per_person = int(rng.integers(600_00, 1_200_00))
            enrolled = max(1, round(target / per_person))
            budget = enrolled * per_person
        elif basis_u[k] < 0.6:
            budget = target
        c = float(claims[k])
        if k % 4 == 3:
            q = (Decimal("0.5") / n2).quantize(two, rounding="ROUND_DOWN")
            shares = tuple(
                sorted([(lead, Decimal(1) - q * n2)] + [(h, q) for h in upper if h != lead])
            )
            joint = JointService("远程会诊", int(c * 0.003 * share_cost[k, 2]), shares=shares)
        else:
            joint = JointService(
                "远程会诊", int(c * 0.003 * share_cost[k, 2]), lead_share=Decimal("0.4")
            )
        alliances_.append(
            Alliance(
                f"YGT{k + 1:03d}",
                members,
                basis,
                f"第{k + 1}医共体",
                budget,
                enrolled,
                per_person,
                shared_costs=(
                    SharedCost("信息平台运维", int(c * 0.004 * share_cost[k, 0])),
                    SharedCost("区域检验中心", int(c * 0.002 * share_cost[k, 1]), upper),
                ),
                joint_services=(joint,),
                cost_increases=(
                    CostIncrease("耗材涨价", int(c * 0.0015 * share_cost[k, 3]), Decimal("0.6")),
                ),
            )
        )
    rules = AllianceRules(
        up_referrer_share=Decimal(up_referrer_share),
        down_sender_share=Decimal(down_sender_share),
        down_share_losses=down_share_losses,
        volume=volume,
        share_by=share_by,
        package=PeriodRules(
            retention=(
                RetentionBand(Decimal("0.10"), Decimal("1")),
                RetentionBand(None, Decimal("0.5")),
            ),
            overspend=(
                OverspendBand(Decimal("0.10"), Decimal("0.5")),
                OverspendBand(None, Decimal("0")),
            ),
        ),
    )
    model = AllianceModel.of(alliances_, rules, id=f"province-{A}x{M}-seed{seed}")
    return Province(table, model, int(outside.sum()), planned, time.perf_counter() - t0)


# ------------------------------------------------------------------------------ helpers


def cents(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """(int64 cents with 0 for null, valid mask) of a money column."""
    import numpy as np
    import pyarrow as pa

    from drgkit._money import OK, to_cents

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    value, flag = to_cents(column, len(column))
    if ((flag != OK) & column.is_valid().to_numpy(zero_copy_only=False)).any():
        raise ValueError("a money value that is not whole cents")
    return np.where(flag == OK, value, 0), flag == OK


def _int(x: Any) -> int:
    """Cents of a yuan Decimal (or None → 0)."""
    if x is None:
        return 0
    return int(Decimal(x).scaleb(2))


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return table.to_pylist()


def _group_sum(keys: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Exact int64 sums of ``values`` by ``keys`` in 0..size-1."""
    import numpy as np

    out = np.zeros(size, np.int64)
    np.add.at(out, keys, values)
    return out


def largest_remainder(
    total: int, weights: list[Fraction], ids: list[str], order: list[int] | None = None
) -> list[int]:
    """The spec's rounding rule, written again from the docstring (reference only).

    ``order``: tie-break rank per party (default: binary order of ``ids``)."""
    if total < 0:
        return [-x for x in largest_remainder(-total, weights, ids, order)]
    weights = [Fraction(w) for w in weights]
    s = sum(weights)
    if s == 0:
        raise ValueError("all weights zero")
    exact = [total * w / s for w in weights]
    base = [x.numerator // x.denominator for x in exact]
    left = total - sum(base)
    rank = (
        order
        if order is not None
        else [
            sorted(range(len(ids)), key=lambda i: ids[i].encode()).index(i) for i in range(len(ids))
        ]
    )
    by = sorted(range(len(ids)), key=lambda i: (-(exact[i] - base[i]), rank[i]))
    for i in by[:left]:
        base[i] += 1
    return base


def split2(total: int, share: Fraction, payee: str, payer: str) -> int:
    """Payee's part of ``split(total, share)``: :func:`largest_remainder` for two parties
    (payee ``share``, payer ``1 - share``; a tie goes to the smaller id), in integers."""
    if total < 0:
        return -split2(-total, share, payee, payer)
    num, den = share.numerator, share.denominator
    mine, r_mine = divmod(total * num, den)
    theirs, r_theirs = divmod(total * (den - num), den)
    if total - mine - theirs and (
        r_mine > r_theirs or (r_mine == r_theirs and payee.encode() < payer.encode())
    ):
        mine += 1
    return mine


# ------------------------------------------------------------------------------ identities


def paid_out_sign(res: Any) -> int:
    """-1 when the members table gives ``up_paid_out``/``down_paid_out`` as negative amounts
    (signed as they enter the claims, like ``referred_up``), else 1 (amounts paid, ≥ 0, that
    the claims subtract, as the package docstring words it)."""
    for m in _rows(res.members.select(["up_paid_out", "down_paid_out"])):
        for v in m.values():
            if v is not None and v < 0:
                return -1
    return 1


def identities(res: Any, table: pa.Table | None = None) -> tuple[list[str], dict[str, int]]:
    """The per-alliance identities of one :class:`AllianceSplit`, from its own tables.

    Returns (failures, counts of what was checked). Per member: claims = own payment +
    referred_up + up received − up paid out + down received − down paid out; net = claims +
    package adjustment + shared costs + joint revenue + cost increase. Per alliance: Σ member
    net / claims / package adjustment / shared costs / joint revenue / cost increase = the
    alliance row; Σ claims = Σ payment of its paid cases (cases table) = Σ claim; package =
    claims + package adjustment; net = package + shared costs + joint revenue + members' cost
    increase; with a budget, the balance, bands and adjustment add up; up and down transfers
    per member equal the transfers table, items per member and kind equal the member
    columns. Cases: one row per input row in input order; outside_cases = rows with no
    alliance."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    bad: list[str] = []
    members = _rows(res.members)
    alliances = {r["alliance_id"]: r for r in _rows(res.alliances)}
    money_m = (
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
    tot: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    out = paid_out_sign(res)
    for m in members:
        c = {k: _int(m[k]) for k in money_m}
        claims = (
            c["own_payment"]
            + c["referred_up"]
            + c["up_received"]
            - out * c["up_paid_out"]
            + c["down_received"]
            - out * c["down_paid_out"]
        )
        if claims != c["claims"]:
            bad.append(f"member {m['hospital_id']}: claims {c['claims']} != parts {claims}")
        net = (
            c["claims"]
            + c["package_adjustment"]
            + c["shared_costs"]
            + c["joint_revenue"]
            + c["cost_increase"]
        )
        if net != c["net"]:
            bad.append(f"member {m['hospital_id']}: net {c['net']} != parts {net}")
        for k, v in c.items():
            tot[m["alliance_id"]][k] += v
        tot[m["alliance_id"]]["members"] += 1
    if set(tot) != set(alliances):
        bad.append(f"alliances of members {sorted(set(tot) ^ set(alliances))[:5]} differ")

    # Σ payment of paid cases per alliance, from the cases table
    cases = res.cases
    if table is not None:
        if cases.num_rows != table.num_rows:
            bad.append(f"cases has {cases.num_rows} rows, the input {table.num_rows}")
        elif not _text(cases.column("case_id")).equals(_text(table.column("case_id"))):
            bad.append("cases.case_id is not the input's case_id in input order")
    aid = cases.column("alliance_id")
    no_alliance = int(aid.null_count)
    if res.outside_cases != no_alliance:
        bad.append(f"outside_cases {res.outside_cases} != rows with no alliance {no_alliance}")
    paid = cases.column("paid").combine_chunks().fill_null(False)
    pay, _pv = cents(cases.column("payment"))
    claim, claim_valid = cents(cases.column("claim"))
    enc = pc.dictionary_encode(aid.combine_chunks())
    codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    names = enc.dictionary.to_pylist()
    sel = paid.to_numpy(zero_copy_only=False) & (codes >= 0)
    paid_sum = _group_sum(codes[sel], pay[sel], len(names))
    claim_sum = _group_sum(codes[codes >= 0], claim[codes >= 0], len(names))
    paid_n = np.bincount(codes[sel], minlength=len(names))
    if (claim_valid != (codes >= 0)).any():
        bad.append("claim is null on a row with an alliance, or set on a row without")
    by_case = {
        a: (int(paid_sum[i]), int(claim_sum[i]), int(paid_n[i])) for i, a in enumerate(names)
    }
    if not pa.types.is_boolean(paid.type):
        bad.append(f"paid is {paid.type}")

    for a, r in alliances.items():
        t = tot[a]
        for k, col in (
            ("net", "net"),
            ("claims", "claims"),
            ("package_adjustment", "package_adjustment"),
            ("shared_costs", "shared_costs"),
            ("joint_revenue", "joint_revenue"),
            ("cost_increase", "cost_increase_members"),
        ):
            if t[k] != _int(r[col]):
                bad.append(f"alliance {a}: Σ member {k} {t[k]} != alliance {col} {_int(r[col])}")
        if t["members"] != r["members"]:
            bad.append(f"alliance {a}: {t['members']} member rows, members = {r['members']}")
        ps, cs, pn = by_case.get(a, (0, 0, 0))
        if _int(r["claims"]) != ps or cs != ps:
            bad.append(
                f"alliance {a}: claims {_int(r['claims'])}, Σ paid payment {ps}, Σ claim {cs}"
            )
        if pn != r["paid_cases"]:
            bad.append(f"alliance {a}: paid_cases {r['paid_cases']} != {pn} paid rows")
        claims, adj = _int(r["claims"]), _int(r["package_adjustment"])
        if _int(r["package"]) != claims + adj:
            bad.append(f"alliance {a}: package != claims + package_adjustment")
        net = (
            _int(r["package"])
            + _int(r["shared_costs"])
            + _int(r["joint_revenue"])
            + _int(r["cost_increase_members"])
        )
        if net != _int(r["net"]):
            bad.append(
                f"alliance {a}: net {_int(r['net'])} != package + shared + joint + "
                f"members' increase {net}"
            )
        if abs(_int(r["cost_increase_members"])) + abs(_int(r["cost_increase_suppliers"])) != abs(
            _int(r["cost_increase_total"])
        ):
            bad.append(f"alliance {a}: cost increase members + suppliers != total")
        if r["budget"] is None:
            if adj != 0:
                bad.append(f"alliance {a}: no budget but a package adjustment {adj}")
        else:
            bal = _int(r["budget"]) - claims
            sur, over = _int(r["surplus"]), _int(r["overspend"])
            kept, ret = _int(r["kept"]), _int(r["returned"])
            fund, mine = _int(r["fund_overspend"]), _int(r["alliance_overspend"])
            if (sur, over) != (max(bal, 0), max(-bal, 0)):
                bad.append(f"alliance {a}: surplus/overspend {sur}/{over}, balance {bal}")
            if kept + ret != sur or fund + mine != over or adj != kept - mine:
                bad.append(
                    f"alliance {a}: bands do not add up: kept {kept} returned {ret} "
                    f"fund {fund} alliance {mine} adjustment {adj}"
                )

    # transfers and items against the member columns
    got: dict[tuple[str, str], int] = defaultdict(int)
    for tr in _rows(res.transfers):
        amt = _int(tr["amount"])
        got[(tr["payee_hospital_id"], f"{tr['kind']}_received")] += amt
        got[(tr["payer_hospital_id"], f"{tr['kind']}_paid_out")] += amt
    item_kind = {
        "shared_cost": "shared_costs",
        "joint_service": "joint_revenue",
        "cost_increase": "cost_increase",
        "package_adjustment": "package_adjustment",
    }
    for it in _rows(res.items):
        got[(it["hospital_id"], item_kind[it["kind"]])] += _int(it["amount"])
    for m in members:
        for k in (
            "up_received",
            "up_paid_out",
            "down_received",
            "down_paid_out",
            *item_kind.values(),
        ):
            want = got[(m["hospital_id"], k)] * (out if k.endswith("_paid_out") else 1)
            if want != _int(m[k]):
                bad.append(f"member {m['hospital_id']}: {k} {_int(m[k])} != transfers/items {want}")
    counts = {
        "alliances": len(alliances),
        "members": len(members),
        "cases": cases.num_rows,
        "transfers": res.transfers.num_rows,
        "items": res.items.num_rows,
    }
    return bad, counts


# ------------------------------------------------------------------------------ reference


def reference_check(
    res: Any, table: pa.Table, model: AllianceModel, max_report: int = 8
) -> tuple[list[str], dict[str, Any]]:
    """Re-derive from the input and the spec (not from the result): each row's alliance, link
    kind, paid flag and paying case; every up and down transfer (base and amount, with the
    largest-remainder rule and its tie-break); each member's volume, own payment, referred_up
    and claims; each alliance's package (bands via PeriodRules); shared-cost, cost-increase
    and package-adjustment allocations (exactly), joint-service allocations (sum, lead share
    within a cent). Returns (mismatches, figures)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    bad: list[str] = []
    rules = model.rules
    n = table.num_rows
    mem = [(a.id, m) for a in model.alliances for m in a.members]
    hid = [m.hospital_id for _a, m in mem]
    m_alli = np.array([i for i, a in enumerate(model.alliances) for _m in a.members])
    m_level = np.array([m.level for _a, m in mem])
    mi = pc.index_in(table.column("hospital_id"), value_set=pa.array(hid, pa.string()))
    mrow = mi.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    in_a = mrow >= 0
    alli = np.where(in_a, m_alli[np.maximum(mrow, 0)], -1)
    lvl = np.where(in_a, m_level[np.maximum(mrow, 0)], 0)
    settled = (
        table.column("settled").combine_chunks().fill_null(False).to_numpy(zero_copy_only=False)
    )
    pay, _ = cents(table.column("payment"))
    cost, cost_ok = cents(table.column("total_cost"))

    # ---- resolve referral_from
    ids = _text(table.column("case_id"))
    enc = pc.dictionary_encode(ids)
    code = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    count = np.bincount(code, minlength=len(enc.dictionary))
    first = np.full(len(enc.dictionary), -1, np.int64)
    first[code[::-1]] = np.arange(n - 1, -1, -1)
    rf = (
        _text(table.column("referral_from"))
        if "referral_from" in table.column_names
        else pa.nulls(n, pa.string())
    )
    # an empty text is no referral (split() reads it so; the spec does not say)
    rf = pc.if_else(pc.equal(rf, ""), pa.scalar(None, pa.string()), rf)
    has = rf.is_valid().to_numpy(zero_copy_only=False)
    pcode = (
        pc.index_in(rf, value_set=enc.dictionary)
        .fill_null(-1)
        .to_numpy(zero_copy_only=False)
        .astype(np.int64)
    )
    selfref = pc.fill_null(pc.equal(rf, ids), False).to_numpy(zero_copy_only=False)
    cnt = np.where(pcode >= 0, count[np.maximum(pcode, 0)], 0)
    parent = np.where(has & (cnt == 1), first[np.maximum(pcode, 0)], -1)
    pp = np.maximum(parent, 0)
    kind = np.full(n, "none", dtype=object)
    undecided = has.copy()

    def decide(mask: np.ndarray, name: str) -> None:
        nonlocal undecided
        m = undecided & mask
        kind[m] = name
        undecided = undecided & ~m

    decide(selfref, "self")
    decide(cnt == 0, "unresolved")
    decide(cnt > 1, "ambiguous")
    decide((alli < 0) | (alli[pp] != alli), "outside")
    mh = np.where(in_a, mrow, -1 - np.arange(n))  # hospital key (members only matter now)
    decide(mh[pp] == mh, "same_member")
    decide(lvl[pp] == lvl, "lateral")
    decide(~settled, "not_settled")
    up = undecided & (lvl > lvl[pp])
    decide(up, "up")
    decide(lvl < lvl[pp], "down")
    if undecided.any():
        bad.append(f"reference: {int(undecided.sum())} links not classified")
    # conflicts: of the up-children of one parent, the smallest case_id keeps the link
    cu = np.flatnonzero(up)
    if len(cu):
        idkey = pc.sort_indices(
            pa.table({"p": parent[cu], "id": ids.take(pa.array(cu))}),
            sort_keys=[("p", "ascending"), ("id", "ascending")],
        )
        cu = cu[idkey.to_numpy()]
        first_of_parent = np.ones(len(cu), np.bool_)
        first_of_parent[1:] = parent[cu[1:]] != parent[cu[:-1]]
        kind[cu[~first_of_parent]] = "conflict"
        cu = cu[first_of_parent]
    up_child = np.full(n, -1, np.int64)  # parent row -> its up child
    up_child[parent[cu]] = cu
    pay_row = np.arange(n)
    for _ in range(12):
        nxt = up_child[pay_row]
        moved = nxt >= 0
        if not moved.any():
            break
        pay_row = np.where(moved, nxt, pay_row)
    absorbed = up_child >= 0
    paid = settled & in_a & ~absorbed

    # ---- compare the cases table
    cases = res.cases
    got_kind = (
        cases.column("link")
        .combine_chunks()
        .fill_null("none")
        .to_numpy(zero_copy_only=False)
        .astype(object)
    )
    diff = np.flatnonzero((got_kind != kind) & in_a)
    if len(diff):
        ex = [(ids[int(i)].as_py(), kind[i], got_kind[i]) for i in diff[:max_report]]
        bad.append(f"link kind differs on {len(diff)} alliance rows (case, expected, got): {ex}")
    out_kinds = (
        dict(zip(*np.unique(got_kind[~in_a & has].astype(str), return_counts=True), strict=True))
        if (~in_a & has).any()
        else {}
    )
    got_paid = cases.column("paid").combine_chunks().fill_null(False).to_numpy(zero_copy_only=False)
    diff = np.flatnonzero(got_paid != paid)
    if len(diff):
        bad.append(
            f"paid differs on {len(diff)} rows, e.g. "
            f"{[ids[int(i)].as_py() for i in diff[:max_report]]}"
        )
    into = _text(cases.column("absorbed_into"))
    exp_into = pa.array(np.where(absorbed, pay_row, 0)).cast(pa.int64())
    exp_into = ids.take(exp_into)
    exp_into = pc.if_else(pa.array(absorbed), exp_into, pa.nulls(n, pa.string()))
    if not into.equals(exp_into):
        ne = pc.fill_null(pc.not_equal(into, exp_into), True).to_numpy(zero_copy_only=False)
        ne &= absorbed | into.is_valid().to_numpy(zero_copy_only=False)
        rows_ = np.flatnonzero(ne)
        ex = [
            (ids[int(i)].as_py(), exp_into[int(i)].as_py(), into[int(i)].as_py())
            for i in rows_[:max_report]
        ]
        bad.append(f"absorbed_into differs on {len(rows_)} rows (case, expected, got), e.g. {ex}")
    got_aid = cases.column("alliance_id").combine_chunks()
    a_ids = pa.array([a.id for a in model.alliances], pa.string())
    exp_aid = a_ids.take(pa.array(np.where(in_a, alli, 0))).to_numpy(zero_copy_only=False)
    got_aid_np = got_aid.fill_null("").to_numpy(zero_copy_only=False)
    if (got_aid_np != np.where(in_a, exp_aid, "")).any() or not np.array_equal(
        got_aid.is_null().to_numpy(zero_copy_only=False), ~in_a
    ):
        bad.append("alliance_id of the cases differs from the members' alliances")

    # ---- transfers: every up link from the paying case back, every down link
    s_up = Fraction(rules.up_referrer_share)
    s_down = Fraction(rules.down_sender_share)
    member_of = np.where(in_a, mrow, -1)
    expected: dict[tuple[str, str, str], tuple[str, int, int, str, str]] = {}
    linked = np.flatnonzero(np.isin(kind, ("up", "down")))
    need = np.unique(np.concatenate([linked, parent[linked], pay_row[linked]]))
    name = dict(zip(need.tolist(), ids.take(pa.array(need)).to_pylist(), strict=True))
    # depth by depth: base of link (child c -> parent p) = P if c is paying, else the amount
    # its own referrer received on the link above
    base = np.full(n, np.iinfo(np.int64).min, np.int64)
    link_rows = cu  # children of kept up links
    is_paying = ~absorbed
    frontier = link_rows[is_paying[link_rows]]
    base[frontier] = pay[frontier]
    seen = 0
    while len(frontier):
        nxt = []
        for c in frontier.tolist():
            p = int(parent[c])
            payee, payer = hid[member_of[p]], hid[member_of[c]]
            x = split2(int(base[c]), s_up, payee, payer)
            expected[("up", name[c], name[p])] = (
                name[int(pay_row[c])],
                int(base[c]),
                x,
                payer,
                payee,
            )
            if up[p] and kind[p] == "up":  # the parent is itself the child of an up link
                base[p] = x
                nxt.append(p)
            seen += 1
        frontier = np.array(nxt, np.int64)
    if seen != len(cu):
        bad.append(f"reference: walked {seen} up links of {len(cu)}")
    down = np.flatnonzero((kind == "down") & paid & cost_ok)
    for c in down.tolist():
        p = int(parent[c])
        u = int(pay[c] - cost[c])
        if u < 0 and not rules.down_share_losses:
            continue
        payee, payer = hid[member_of[p]], hid[member_of[c]]
        expected[("down", name[c], name[p])] = (
            name[c],
            u,
            split2(u, s_down, payee, payer),
            payer,
            payee,
        )
    got_tr = {}
    for tr in _rows(res.transfers):
        key = (tr["kind"], tr["child_case_id"], tr["parent_case_id"])
        got_tr[key] = (
            tr["case_id"],
            _int(tr["base"]),
            _int(tr["amount"]),
            tr["payer_hospital_id"],
            tr["payee_hospital_id"],
        )
    if len(got_tr) != res.transfers.num_rows:
        bad.append(f"transfers has {res.transfers.num_rows} rows for {len(got_tr)} links")
    zero_ok = {k for k, v in got_tr.items() if k not in expected and v[2] == 0 and v[1] <= 0}
    missing_tr = [k for k in expected if k not in got_tr]
    extra_tr = [k for k in got_tr if k not in expected and k not in zero_ok]
    wrong_tr = [
        (k, expected[k], got_tr[k]) for k in expected if k in got_tr and got_tr[k] != expected[k]
    ]
    if missing_tr:
        bad.append(f"{len(missing_tr)} transfers missing, e.g. {missing_tr[:max_report]}")
    if extra_tr:
        bad.append(f"{len(extra_tr)} unexpected transfers, e.g. {extra_tr[:max_report]}")
    if wrong_tr:
        bad.append(
            f"{len(wrong_tr)} transfers differ ((kind, child, parent), expected "
            f"(case, base, amount, payer, payee), got), e.g. {wrong_tr[:max_report]}"
        )

    # ---- members: volume, own payment, referred_up, transfer totals, claims
    nm = len(hid)
    sel = settled & in_a
    vol_cases = np.bincount(mrow[sel], minlength=nm)
    if rules.volume == "rw":
        rwu, _ = _units(table.column("rw"), 9)
        vol = [Fraction(int(v), 10**9) for v in _group_sum(mrow[sel], rwu[sel], nm)]
    else:
        vol = [Fraction(int(v)) for v in vol_cases]
    own = _group_sum(mrow[sel], pay[sel], nm)
    ab = absorbed & in_a
    referred = -_group_sum(mrow[ab], np.where(settled[ab], pay[ab], 0), nm)
    flows: dict[tuple[str, str], int] = defaultdict(int)
    for (k, _c, _p), (_case, _b, amt, payer, payee) in expected.items():
        flows[(payee, f"{k}_received")] += amt
        flows[(payer, f"{k}_paid_out")] += amt
    claims = {
        h: int(own[i] + referred[i])
        + flows[(h, "up_received")]
        - flows[(h, "up_paid_out")]
        + flows[(h, "down_received")]
        - flows[(h, "down_paid_out")]
        for i, h in enumerate(hid)
    }
    got_m = {r["hospital_id"]: r for r in _rows(res.members)}
    idx = {h: i for i, h in enumerate(hid)}
    out = paid_out_sign(res)
    for h, i in idx.items():
        r = got_m.get(h)
        if r is None:
            bad.append(f"member {h} missing from members")
            continue
        exp = {
            "own_payment": int(own[i]),
            "referred_up": int(referred[i]),
            "claims": claims[h],
            "settled_cases": int(vol_cases[i]),
        }
        for k in ("up_received", "up_paid_out", "down_received", "down_paid_out"):
            exp[k] = flows[(h, k)] * (out if k.endswith("_paid_out") else 1)
        for k, v in exp.items():
            g = r[k] if k == "settled_cases" else _int(r[k])
            if g != v:
                bad.append(f"member {h}: {k} {g}, expected {v}")
        if Fraction(Decimal(str(r["volume"]))) != vol[i]:
            bad.append(f"member {h}: volume {r['volume']}, expected {vol[i]}")

    # ---- allocations and package, alliance by alliance
    got_items: dict[tuple[str, str, str], int] = defaultdict(int)
    for it in _rows(res.items):
        got_items[(it["kind"], it["item"], it["hospital_id"])] += _int(it["amount"])
    got_a = {r["alliance_id"]: r for r in _rows(res.alliances)}
    joint_lead_off = 0
    for a in model.alliances:
        ms = [m.hospital_id for m in a.members]
        cv = {m.hospital_id: Fraction(m.coefficient) * vol[idx[m.hospital_id]] for m in a.members}
        coef = {m.hospital_id: Fraction(m.coefficient) for m in a.members}

        def alloc(
            total: int,
            who: list[str],
            w: dict[str, Fraction] = cv,
            _coef: dict[str, Fraction] = coef,
        ) -> dict[str, int]:
            ws = [w[h] for h in who]
            if sum(ws) == 0:
                ws = [_coef[h] for h in who]
            return dict(zip(who, largest_remainder(total, ws, who), strict=True))

        def compare(
            kind_: str, item: str, exp: dict[str, int], aid: str = a.id, ms: list[str] = ms
        ) -> None:
            for h in ms:
                g = got_items.get((kind_, item, h), 0)
                if g != exp.get(h, 0):
                    bad.append(
                        f"alliance {aid} {kind_} {item!r} {h}: {g}, expected {exp.get(h, 0)}"
                    )

        for sc in a.shared_costs:
            who = list(sc.members) if sc.members else ms
            compare("shared_cost", sc.name, {h: -v for h, v in alloc(sc.amount, who).items()})
        for ci in a.cost_increases:
            part = largest_remainder(
                ci.amount,
                [Fraction(ci.member_share), 1 - Fraction(ci.member_share)],
                ["members", "suppliers"],
                order=[0, 1],
            )[0]
            compare("cost_increase", ci.name, {h: -v for h, v in alloc(part, ms).items()})
        for js in a.joint_services:
            got_js = {h: got_items.get(("joint_service", js.name, h), 0) for h in ms}
            if sum(got_js.values()) != js.revenue:
                bad.append(
                    f"alliance {a.id} joint {js.name}: Σ {sum(got_js.values())} != "
                    f"revenue {js.revenue}"
                )
            if js.shares is not None:
                exp = dict(
                    zip(
                        [h for h, _ in js.shares],
                        largest_remainder(
                            js.revenue,
                            [Fraction(s) for _, s in js.shares],
                            [h for h, _ in js.shares],
                        ),
                        strict=True,
                    )
                )
                compare("joint_service", js.name, exp)
            else:
                lead = a.lead.hospital_id
                off = abs(got_js[lead] - js.revenue * Fraction(js.lead_share))
                joint_lead_off = max(joint_lead_off, int(off >= 1))
                if off >= 1:
                    bad.append(
                        f"alliance {a.id} joint {js.name}: lead {got_js[lead]}, "
                        f"expected ≈ {float(js.revenue * Fraction(js.lead_share)):.2f}"
                    )
        ga = got_a[a.id]
        cl = sum(claims[h] for h in ms)
        if _int(ga["claims"]) != cl:
            bad.append(f"alliance {a.id}: claims {_int(ga['claims'])}, expected {cl}")
        adj = 0
        if a.budget is not None:
            bal = a.budget - cl
            kept = mine = 0
            if bal >= 0:
                kept, _ret = rules.package.retain(bal, a.budget)
            else:
                _fund, mine = rules.package.share_overspend(-bal, a.budget)
            adj = kept - mine
            if _int(ga["budget"]) != a.budget:
                bad.append(f"alliance {a.id}: budget {ga['budget']}, expected {a.budget}")
        if _int(ga["package_adjustment"]) != adj:
            bad.append(
                f"alliance {a.id}: package_adjustment {_int(ga['package_adjustment'])}"
                f", expected {adj}"
            )
        if adj:
            w = (
                cv
                if rules.share_by == "coefficient_volume"
                else {h: Fraction(claims[h]) for h in ms}
            )
            compare("package_adjustment", "package", alloc(adj, ms, w))
    figures = {
        "links": dict(zip(*np.unique(kind[has].astype(str), return_counts=True), strict=True)),
        "links_of_rows_in_no_alliance": out_kinds,
        "transfers": len(expected),
        "absorbed": int(absorbed.sum()),
        "paid": int(paid.sum()),
    }
    return bad, figures


def _text(column: Any) -> pa.Array:
    """A text column as one plain ``string`` array (chunks combined, dictionaries decoded)."""
    import pyarrow as pa

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    return arr.cast(pa.string())


def _units(column: Any, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """int64 units of 10^-scale of a decimal128(18, scale) column (0 for null)."""
    import numpy as np
    import pyarrow as pa

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not (
        pa.types.is_decimal128(arr.type) and arr.type.scale == scale and arr.type.precision <= 18
    ):
        raise TypeError(f"expected decimal128(≤18, {scale}), got {arr.type}")
    words = np.frombuffer(arr.buffers()[1], np.int64)[2 * arr.offset : 2 * (arr.offset + len(arr))]
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    return np.where(valid, words[0::2], 0), valid
