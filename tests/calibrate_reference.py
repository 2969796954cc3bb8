"""A slow, obviously correct weight calibration (the rules of drgkit/_calibrate.py's docstring),
written again from the definitions: pure Python, yuan as Fractions, one loop per rule.

Only the log-SD test uses floats, by its definition: ``ln`` of each cost, their mean and sample
standard deviation with exactly rounded sums (``math.fsum``).
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction


def _round(x: Fraction, places: int) -> Decimal:
    """Half up (away from zero: every value here is positive) to ``places`` decimals."""
    scaled = x * 10**places
    whole = scaled.numerator // scaled.denominator
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    return Decimal(whole).scaleb(-places)


def _keep(costs: list[Fraction], trim: str, sd: float, low, high, qmin: int) -> list[bool]:
    n = len(costs)
    if trim == "log-sd" and n >= 2:
        logs = [math.log(c * 100) for c in costs]  # ln of the cost in cents, as drgkit takes it
        mean = math.fsum(logs) / n
        dev = math.sqrt(math.fsum((v - mean) ** 2 for v in logs) / (n - 1))
        return [not abs(v - mean) > sd * dev for v in logs]
    if trim == "quantile" and n >= qmin:
        ranked = sorted(costs)

        def nearest_rank(p: Fraction) -> Fraction:
            rank = 1
            while Fraction(rank) < p * n:  # the smallest rank ≥ p·n, at least 1
                rank += 1
            return ranked[rank - 1]

        lo, hi = nearest_rank(low), nearest_rank(high)
        return [lo <= c <= hi for c in costs]
    return [True] * n


def _mean(values: list[Fraction]) -> Fraction:
    return sum(values, Fraction(0)) / len(values)


def _year_weighted(by_year: dict[int, list[Fraction]], w: dict[int, Fraction]) -> Fraction:
    years = [y for y in sorted(by_year) if by_year[y]]
    return sum((w[y] * _mean(by_year[y]) for y in years), Fraction(0)) / sum(w[y] for y in years)


def _cv(values: list[Fraction]) -> tuple[Fraction, Decimal]:
    """(CV², CV rounded half up to 4 decimals by bisection on exact squares)."""
    m = _mean(values)
    var = _mean([(v - m) ** 2 for v in values])
    cv2 = var / (m * m)
    # the largest k with (k - 1/2)² ≤ cv2·10^8 is round-half-up(sqrt(cv2)·10^4)
    target = cv2 * 10**8
    k = 0
    while (Fraction(2 * (k + 1) - 1, 2)) ** 2 <= target:
        k += 1
    return cv2, Decimal(k).scaleb(-4)


def reference(
    rows: list[dict],
    *,
    year_weights: list[Fraction],
    trim: str = "log-sd",
    sd: float = 3.0,
    low: Fraction = Fraction(25, 1000),
    high: Fraction = Fraction(975, 1000),
    quantile_min_cases: int = 25,
    min_cases: int = 10,
    merge_small: bool = False,
    budgets: dict | None = None,
    scheme_codes: dict | None = None,
) -> tuple[dict[str, dict], dict]:
    """rows: dicts with status, drg, adrg, year, cost (yuan text), insurance_type.
    Returns ({drg: row}, {scheme key: base rate}) ."""
    used = [r for r in rows if r["status"] == "ok"]
    years = sorted({r["year"] for r in used})
    w = dict(zip(years, year_weights, strict=True))
    cells: dict[tuple[str, int], list[Fraction]] = {}
    for r in used:
        cells.setdefault((r["drg"], r["year"]), []).append(Fraction(Decimal(r["cost"])))
    kept: dict[tuple[str, int], list[Fraction]] = {}
    trimmed: dict[str, int] = {}
    count: dict[str, int] = {}
    for (drg, y), costs in cells.items():
        keep = _keep(costs, trim, sd, low, high, quantile_min_cases)
        kept[(drg, y)] = [c for c, k in zip(costs, keep, strict=True) if k]
        trimmed[drg] = trimmed.get(drg, 0) + keep.count(False)
        count[drg] = count.get(drg, 0) + len(costs)
    adrg = {r["drg"]: r["adrg"] for r in used}
    overall = _year_weighted(
        {y: [c for (d, yy), cs in kept.items() if yy == y for c in cs] for y in years}, w
    )
    out = {}
    for drg in sorted(count):
        members = [drg]
        own = sum(len(kept.get((drg, y), [])) for y in years)
        merged = None
        if merge_small and own < min_cases:
            merged = adrg[drg]
            members = [d for d in count if adrg[d] == merged]
        by_year = {y: [c for d in members for c in kept.get((d, y), [])] for y in years}
        mean = _year_weighted(by_year, w)
        pooled = [c for cs in by_year.values() for c in cs]
        cv2, cv = _cv(pooled)
        out[drg] = {
            "RW": _round(mean / overall, 9),
            "cases": count[drg],
            "trimmed": trimmed[drg],
            "mean_cost": _round(mean, 2),
            "cv": cv,
            "stable": len(pooled) >= min_cases and cv2 < 1,
            "merged_into": merged,
        }
    rates = {}
    codes = scheme_codes or {"employee": "310", "resident": "390"}
    for key, budget in (budgets or {}).items():
        last = years[-1]
        expected = sum(
            (
                Fraction(out[r["drg"]]["RW"])
                for r in used
                if r["year"] == last
                and (key is None or r["insurance_type"] in (key, codes.get(key)))
            ),
            Fraction(0),
        )
        rate = Fraction(Decimal(str(budget))) / expected
        rates[key] = _round(rate, 2)
    return out, rates
