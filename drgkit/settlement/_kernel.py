"""numba kernels of settlement: classify each case, compute its payment exactly, in cents.

Every formula is linear in the case's cost ``c`` (cents): ``amount = A + B·c``, where ``A`` is
an exact decimal of the case's price cell (any number of decimal places) and ``B`` a policy
coefficient with at most 6 decimals. Rounding half up needs only ``floor(A·G)`` with
``G = 2·10^6``: ``round(A + B·c) = floor((floor(A·G) + 2·B·10^6·c + G/2) / G)``. Cells store
``floor(A·G)``; Python computes it exactly.

Exact range (``drgkit._money.KERNEL_EXACT_CENTS``): the policy bounds B ≤ 10 (factors) and
B ≤ 1 (shares), and the price book keeps every standard S within ``LIMIT_CENTS`` and drops a
high-outlier rule whose threshold no cost within the limit can pass. The largest terms are then
``2·B·10^6·c ≤ 2·10^7·|c|`` (by item) and ``floor(10·S·G) ≤ 2·10^7·S`` (standard × factor); the
high-outlier constant ``S − share·threshold`` is within ±max(S, |c|). So every intermediate is
below ``2·10^7·L + G/2``, which fits int64 for L ≤ 461,168,601,792 cents; drgkit's one bound
``LIMIT_CENTS`` (4·10^11) is below it, and readers flag larger amounts before they get here.
"""

from __future__ import annotations

import numpy as np

from .._jit import dual, jit, prange
from .._money import COEF_SCALE, LIMIT_CENTS
from ..errors import DrgkitError

B_SCALE = COEF_SCALE  # coefficients B are stored as B·10^6
G = 2 * B_SCALE  # 2·10^6: the scale of cell constants

# formula of a case (chosen in Python from status, group class, stay)
F_NOT_SETTLED, F_BY_ITEM, F_FIXED, F_DRG = 0, 1, 2, 3
# payment classes (output)
C_NORMAL, C_LOW, C_HIGH = 0, 1, 2

NO_LOW = np.iinfo(np.int64).min
NO_HIGH = np.iinfo(np.int64).max


@jit(inline="always")
def _linear(a_g, b_n, c):
    """round half up of A + B·c, in cents, from floor(A·G) and B·10^6."""
    return (a_g + 2 * b_n * c + G // 2) // G


@dual
def price_all(formula, cell, cost, item_b, std_g, low_c, high_c, low_a, low_b, high_a, high_b):
    """Per case: (class, standard cents, payment cents).

    ``formula``: F_*; ``cell``: price cell; ``cost``: cents; ``item_b``: B·10^6 of by-item
    payment per case. Cell arrays: ``std_g`` floor(standard·G); ``low_c`` a case is a low
    outlier when cost < low_c; ``high_c`` high when cost > high_c; ``low_a/high_a`` floor(A·G)
    of the outlier formulas, ``low_b/high_b`` their B·10^6 (per cell, from the policy)."""
    n = len(formula)
    cls = np.zeros(n, dtype=np.int8)
    standard = np.zeros(n, dtype=np.int64)
    pay = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        f = formula[i]
        c = cost[i]
        if f == F_NOT_SETTLED:
            continue
        if f == F_BY_ITEM:
            pay[i] = _linear(0, item_b[i], c)
            continue
        k = cell[i]
        std = _linear(std_g[k], 0, 0)
        standard[i] = std
        if f == F_FIXED:
            pay[i] = std
            continue
        if c < low_c[k]:
            cls[i] = C_LOW
            pay[i] = _linear(low_a[k], low_b[k], c)
        elif c > high_c[k]:
            cls[i] = C_HIGH
            pay[i] = _linear(high_a[k], high_b[k], c)
        else:
            pay[i] = std
    return cls, standard, pay


# ------------------------------------------------------------------ exact 128-bit helpers


@jit(inline="always")
def mul_u64(a, b):
    """(hi, lo) of the 128-bit product of two non-negative int64 values."""
    mask = np.uint64(0xFFFFFFFF)
    a = np.uint64(a)
    b = np.uint64(b)
    a0 = a & mask
    a1 = a >> np.uint64(32)
    b0 = b & mask
    b1 = b >> np.uint64(32)
    p00 = a0 * b0
    p01 = a0 * b1
    p10 = a1 * b0
    p11 = a1 * b1
    mid = (p00 >> np.uint64(32)) + (p01 & mask) + (p10 & mask)
    lo = (p00 & mask) | (mid << np.uint64(32))
    hi = p11 + (p01 >> np.uint64(32)) + (p10 >> np.uint64(32)) + (mid >> np.uint64(32))
    return hi, lo


@jit(inline="always")
def div_u128(hi, lo, d):
    """floor((hi·2^64 + lo) / d) for d > 0 and a quotient below 2^63 (long division)."""
    d = np.uint64(d)
    r = hi % d
    q = np.uint64(0)
    for bit in range(63, -1, -1):
        top = r >> np.uint64(63)
        r = (r << np.uint64(1)) | ((lo >> np.uint64(bit)) & np.uint64(1))
        q = q << np.uint64(1)
        if top != 0 or r >= d:
            r = r - d
            q = q | np.uint64(1)
    return np.int64(q)


#: what :func:`muldiv_round` returns when the exact result does not fit in 63 bits
SATURATED = np.iinfo(np.int64).max
#: the largest payment the policy's coefficients allow for a case within LIMIT_CENTS
#: (by item × 10); a points payment beyond it means the point value is out of range
MAX_PAYMENT_CENTS = 10 * LIMIT_CENTS
_INT64_MAX = 2**63 - 1


class AmountRangeError(DrgkitError, ValueError):
    """An amount computed from the policy (points × point value) is beyond exact range."""


@jit(inline="always")
def half_up_u128(hi, lo, d):
    """(hi·2^64 + lo) / d rounded half up, for 0 < d < 2^62: floor((2x + d) / 2d) with a
    128-bit intermediate; SATURATED when the result does not fit in 63 bits."""
    hi = (hi << np.uint64(1)) | (lo >> np.uint64(63))
    lo = lo << np.uint64(1)
    lo2 = lo + np.uint64(d)
    if lo2 < lo:
        hi += np.uint64(1)
    # the quotient of (hi·2^64 + lo2) by 2d is below 2^63 exactly when hi < d
    if hi >= np.uint64(d):
        return SATURATED
    return div_u128(hi, lo2, 2 * d)


@jit
def muldiv_round(a, b, d):
    """round half up (away from zero) of a·b/d, exactly, for |a|, |b| < 2^63 and
    0 < d < 2^62: floor((2|ab| + d) / 2d) with a 128-bit intermediate, then the sign. A
    result that does not fit in 63 bits is ±SATURATED (never a wrapped value)."""
    negative = (a < 0) != (b < 0)
    hi, lo = mul_u64(abs(a), abs(b))
    q = half_up_u128(hi, lo, d)
    return -q if negative else q


def points_all(
    n: int,
    formula: np.ndarray,
    cls: np.ndarray,
    money: np.ndarray,
    cell_points: np.ndarray,
    num: np.ndarray,
    den: np.ndarray,
) -> np.ndarray:
    """Points of each case (see :func:`_points_all`); a conversion out of exact range is an
    :class:`AmountRangeError`, never a wrapped number."""
    out = _points_all(n, formula, cls, money, cell_points, num, den)
    if len(out) and (np.abs(out) == SATURATED).any():
        raise AmountRangeError(
            "an outlier's points (money × points per yuan) are beyond the "
            "exact range of int64: check points.per_rw and the base rates"
        )
    return out


def pay_points(
    n: int, points: np.ndarray, formula: np.ndarray, value_num: int, value_den: int
) -> np.ndarray:
    """Payment in cents of each case paid by points (see :func:`_pay_points`); a payment
    beyond MAX_PAYMENT_CENTS is an :class:`AmountRangeError`, never a wrong amount."""
    if not (abs(value_num) <= _INT64_MAX and 0 < value_den <= _INT64_MAX):
        # the kernel takes int64: a point value this large could pay no case within range
        raise AmountRangeError(
            f"the point value ({value_num}/{value_den} cents per point unit)"
            " is beyond the exact range of int64; check points.budget"
        )
    out = _pay_points(n, points, formula, value_num, value_den)
    if len(out) and (np.abs(out) > MAX_PAYMENT_CENTS).any():
        raise AmountRangeError(
            f"a case paid by points would get more than "
            f"{MAX_PAYMENT_CENTS // 100:,} yuan (points × point value): the "
            f"point value ({value_num}/{value_den} cents per point unit) is "
            "out of range; check points.budget"
        )
    return out


@dual
def _points_all(formula, cls, money, cell_points, num, den):
    """Points of each case (scaled by 10^point_decimals).

    Normal cases take their cell's points; outliers convert their money-equivalent (cents,
    already rounded) with the exact ratio ``num/den`` per case; other cases have none."""
    n = len(formula)
    out = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        if formula[i] < F_FIXED:
            continue
        if formula[i] == F_FIXED or cls[i] == C_NORMAL:
            out[i] = cell_points[i]
        else:
            out[i] = muldiv_round(money[i], num[i], den[i])
    return out


@dual
def _pay_points(points, formula, value_num, value_den):
    """Payment in cents of each case paid by points: round(points · value_num / value_den)."""
    n = len(points)
    out = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        if formula[i] >= F_FIXED:
            out[i] = muldiv_round(points[i], value_num, value_den)
    return out
