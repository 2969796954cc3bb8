"""Exact per-group statistics for the catalogue builder: counts, year-weighted sums of cost and
cost squared (as Python integers, accumulated in 128 bits by a numba kernel), trimming bounds
from one global cost sort, and exact rational means, CV tests and roundings.

Case costs are integer cents below 2**44 and year weights integers below 2**16, so every
weighted cost fits in 64 bits and every weighted square in 128 bits; group totals are carried
as (high, low) unsigned 64-bit pairs and only joined into Python integers per group.
"""

from __future__ import annotations

from fractions import Fraction
from math import isqrt

import attrs
import numpy as np

from .._jit import jit
from .._money import half_up

__all__ = [
    "GroupStats",
    "cv_text",
    "div_round",
    "group_stats",
    "round_half_up",
    "sqrt_round",
    "trim_bounds",
]

_U32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_ONE = np.uint64(1)
_TWO = np.uint64(2)


@jit
def _accumulate(gid, cost, w, keep, ngroups):
    n = np.zeros(ngroups, np.int64)
    sw = np.zeros(ngroups, np.int64)
    c_hi = np.zeros(ngroups, np.uint64)
    c_lo = np.zeros(ngroups, np.uint64)
    q_hi = np.zeros(ngroups, np.uint64)
    q_lo = np.zeros(ngroups, np.uint64)
    for i in range(len(gid)):
        g = gid[i]
        if g < 0 or not keep[i]:
            continue
        wi = np.uint64(w[i])
        c = np.uint64(cost[i])
        n[g] += 1
        sw[g] += w[i]
        x = wi * c
        lo = c_lo[g] + x
        if lo < x:
            c_hi[g] += _ONE
        c_lo[g] = lo
        # w*c^2 with c = ch*2^32 + cl: top*2^64 + s32*2^32 + t0l
        ch = c >> _S32
        cl = c & _U32
        t0 = cl * cl
        t0l = (t0 & _U32) * wi
        s32 = (t0 >> _S32) * wi + _TWO * ch * cl * wi
        top = ch * ch * wi + (s32 >> _S32)
        low = (s32 << _S32) + t0l
        if low < t0l:
            top += _ONE
        lo = q_lo[g] + low
        if lo < low:
            top += _ONE
        q_lo[g] = lo
        q_hi[g] += top
    return n, sw, c_hi, c_lo, q_hi, q_lo


@jit
def _bounds(gid, cost, by_cost, ngroups, trim_min, p_num, p_den):
    """Per group (lo, hi) cost bounds: the k-th smallest and k-th largest cost (k =
    floor(n * p), 0-based) for groups with >= trim_min cases; (0, max) otherwise."""
    count = np.zeros(ngroups + 1, np.int64)
    for i in range(len(gid)):
        if gid[i] >= 0:
            count[gid[i] + 1] += 1
    start = np.cumsum(count)
    fill = start[:-1].copy()
    sorted_cost = np.empty(start[-1], np.int64)
    for j in range(len(by_cost)):  # cost order, so each group's run is ascending
        i = by_cost[j]
        g = gid[i]
        if g >= 0:
            sorted_cost[fill[g]] = cost[i]
            fill[g] += 1
    lo = np.zeros(ngroups, np.int64)
    hi = np.full(ngroups, np.iinfo(np.int64).max, np.int64)
    for g in range(ngroups):
        m = start[g + 1] - start[g]
        if m >= trim_min and m > 0:
            k = (m * p_num) // p_den
            lo[g] = sorted_cost[start[g] + k]
            hi[g] = sorted_cost[start[g + 1] - 1 - k]
    return lo, hi


@attrs.define(slots=True, eq=False)
class GroupStats:
    """Per group: all-case and kept (trimmed) counts, and exact sums over kept cases as
    numpy object arrays of Python integers (so that arithmetic on them stays exact and runs
    element-wise without a Python loop)."""

    n_all: np.ndarray
    n: np.ndarray
    sw: np.ndarray  # object: Σw
    swc: np.ndarray  # object: Σw·c
    swc2: np.ndarray  # object: Σw·c²

    def mean(self, g: int) -> Fraction:
        return Fraction(int(self.swc[g]), int(self.sw[g]))

    def var_num(self, g: int) -> Fraction:
        """Σw·(c − m)² (weighted sum of squared deviations), exactly."""
        return Fraction(int(self.swc2[g])) - Fraction(int(self.swc[g]) ** 2, int(self.sw[g]))

    def mean_cents(self) -> np.ndarray:
        """Weighted means rounded half up to whole cents (0 for empty groups)."""
        return div_round(self.swc, np.where(self.n > 0, self.sw, 1).astype(object))

    def dispersion(self) -> tuple[np.ndarray, np.ndarray]:
        """(A, B) with CV² = A / B exactly: A = Σw·Σwc² − (Σwc)², B = (Σwc)²."""
        return self.swc2 * self.sw - self.swc * self.swc, self.swc * self.swc


def _join(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    return np.array(
        [(h << 64) | low for h, low in zip(hi.tolist(), lo.tolist(), strict=True)] or [],
        dtype=object,
    )


def div_round(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den rounded half up (away from zero) to an integer, element-wise and exactly
    (object arrays of Python ints, den > 0); returned as int64."""
    num = np.asarray(num, dtype=object)
    neg = num < 0
    q = (2 * np.abs(num) + den) // (2 * den)
    return np.where(neg, -q, q).astype(np.int64)


def sqrt_round(a: np.ndarray, b: np.ndarray, decimals: int = 4) -> np.ndarray:
    """sqrt(a / b) rounded half up to ``decimals`` places, as int64 units of 10^-decimals:
    with y = a/b·10^(2d), k = isqrt(floor(y)), and k+1 when y >= (k + 1/2)²."""
    out = np.zeros(len(a), np.int64)
    scale = 10 ** (2 * decimals)
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        if y == 0 or x <= 0:
            continue
        x *= scale
        k = isqrt(x // y)
        if 4 * x >= (2 * k + 1) ** 2 * y:
            k += 1
        out[i] = k
    return out


def trim_bounds(
    gid: np.ndarray,
    cost: np.ndarray,
    by_cost: np.ndarray,
    ngroups: int,
    trim_min: int | None,
    share: Fraction,
) -> tuple[np.ndarray, np.ndarray]:
    if trim_min is None or share == 0:
        return np.zeros(ngroups, np.int64), np.full(ngroups, np.iinfo(np.int64).max)
    return _bounds(gid, cost, by_cost, ngroups, trim_min, share.numerator, share.denominator)


def group_stats(
    gid: np.ndarray,
    ngroups: int,
    cost: np.ndarray,
    w: np.ndarray,
    by_cost: np.ndarray | None = None,
    trim_min: int | None = None,
    share: Fraction = Fraction(0),
) -> GroupStats:
    """Statistics of cases grouped by ``gid`` (-1 = in no group). With ``by_cost`` (the
    indices of all cases in ascending cost order) and ``trim_min``, groups with at least
    ``trim_min`` cases keep only cases with lo <= cost <= hi (see :func:`trim_bounds`)."""
    gid = np.ascontiguousarray(gid, np.int64)
    everything = np.ones(len(gid), np.bool_)
    if by_cost is not None and trim_min is not None and share > 0:
        lo, hi = trim_bounds(gid, cost, by_cost, ngroups, trim_min, share)
        safe = np.maximum(gid, 0)
        keep = (cost >= lo[safe]) & (cost <= hi[safe])
        n_all = np.bincount(gid[gid >= 0], minlength=ngroups).astype(np.int64)
    else:
        keep = everything
        n_all = None
    n, sw, c_hi, c_lo, q_hi, q_lo = _accumulate(gid, cost, w, keep, ngroups)
    return GroupStats(
        n if n_all is None else n_all, n, sw.astype(object), _join(c_hi, c_lo), _join(q_hi, q_lo)
    )


def round_half_up(x: Fraction, decimals: int) -> Fraction:
    """``x`` rounded half up (away from zero) to ``decimals`` places, still exact."""
    return Fraction(half_up(x * 10**decimals), 10**decimals)


def cv_text(var_num: Fraction, sw: int, mean: Fraction, decimals: int = 4) -> Fraction:
    """CV = sqrt(Σw(c−m)²/Σw) / m rounded half up to ``decimals`` places, exactly: with
    y = CV² · 10^(2d), the result is k or k+1 (k = isqrt(floor(y))) by comparing y to
    (k + 1/2)²."""
    if mean == 0:
        return Fraction(0)
    y = var_num / sw / (mean * mean) * 10 ** (2 * decimals)
    k = isqrt(y.numerator // y.denominator)
    if y >= Fraction(2 * k + 1, 2) ** 2:
        k += 1
    return Fraction(k, 10**decimals)
