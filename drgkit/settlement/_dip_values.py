"""DIP point values from the first pass's integer sums: the special-review cap (region-wide,
deterministic) and the clearing point value per insurance scheme; plus the start-of-year
point value from weighted history (DIP.md §5).

Special review (特例单议): candidates are cases above the extreme threshold; at most
⌊cap × DIP discharges of the region⌋ are accepted (all schemes together, not per hospital),
chosen by the highest r = cost ÷ reference, ties by case id (text order), so the choice does not
depend on batching or partitions. Accepted cases are paid by item × factor; the others keep the
high formula.

Clearing point value of a scheme = (fund ÷ fund payment ratio − paid by item) ÷ Σ points,
rounded half up to ``points.value_decimals`` (the one rounding of the point value). By-item
payments (ungroupable cases, special review) are taken out first, so Σ fund payments of all the
scheme's cases equals the fund up to the per-case roundings; the residue is reported by
:func:`fund_residue`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

import pyarrow as pa

from .._money import half_up, scaled_decimal
from ._policy import Policy, PolicyError
from ._sums import Partial, Reduced

__all__ = ["dip_point_values", "fund_residue", "review_choice", "start_point_value",
           "start_point_values"]


def review_choice(policy: Policy, total: Partial) -> frozenset[str]:
    """The case ids accepted for special review within the cap."""
    cap = int(Fraction(policy.dip.review_cap) * total.discharges)  # floor: the cap is a limit
    ranked = sorted(total.review, key=lambda c: (-Fraction(c[1], c[2]), c[3]))
    return frozenset(c[3] for c in ranked[:cap])


def dip_point_values(policy: Policy, total: Partial) -> Reduced:
    rules = policy.dip
    if not rules.fund:
        raise PolicyError(f"policy {policy.id} has no dip.fund (the DIP fund of the year per "
                          "scheme, or 'all')", file=policy.path)
    approved = review_choice(policy, total)
    points = dict(total.points)
    by_item = dict(total.by_item)
    for scheme, _cost, _ref, case_id, pts, cents in total.review:
        if case_id in approved:
            by_item[scheme] = by_item.get(scheme, 0) + cents
        else:
            points[scheme] = points.get(scheme, 0) + pts
    pd, vd = policy.point_decimals, policy.value_decimals
    values: dict[str, Decimal] = {}
    for pool, fund in rules.fund.items():
        schemes = list(points) if pool == "all" else [pool]
        ratio = policy.fund_ratio.get(pool)
        if ratio is None and pool == "all":
            ratios = {policy.fund_ratio.get(s) for s in schemes}
            ratio = ratios.pop() if len(ratios) == 1 else None
        if not ratio:
            raise PolicyError(f"dip.fund.{pool} needs shares.fund_ratio.{pool} (above 0)",
                              file=policy.path)
        pts = sum(points.get(s, 0) for s in schemes)
        item = sum(by_item.get(s, 0) for s in schemes)
        if pts == 0:
            continue
        spendable = Fraction(fund) / Fraction(ratio) - Fraction(item, 100)
        if spendable <= 0:
            raise PolicyError(f"dip.fund.{pool} ({fund}) ÷ ratio {ratio} leaves nothing for "
                              f"points after {scaled_decimal(item, 2)} paid by item",
                              file=policy.path)
        values[pool] = scaled_decimal(half_up(spendable * 10 ** (pd + vd) / pts), vd)
    adjusted = Partial(points, by_item, total.cases, total.discharges, total.review)
    return Reduced(values, adjusted, approved)


def start_point_value(years: Sequence[Mapping[str, object]],
                      weights: Sequence[int] = (1, 2, 7), decimals: int = 4) -> Decimal:
    """Start-of-year point value = Σ wᵢ·costᵢ ÷ Σ wᵢ·pointsᵢ over the history years (oldest
    first; default weights 1:2:7), rounded half up to ``decimals``. ``years``: rows with
    ``cost`` (yuan) and ``points`` (exact decimals or their text)."""
    if len(years) != len(weights):
        raise ValueError(f"{len(years)} history years but {len(weights)} weights")
    cost = sum(w * Fraction(Decimal(str(y["cost"]))) for w, y in zip(weights, years, strict=True))
    pts = sum(w * Fraction(Decimal(str(y["points"]))) for w, y in zip(weights, years, strict=True))
    if pts <= 0:
        raise ValueError("the history has no points")
    return scaled_decimal(half_up(cost / pts * 10**decimals), decimals)


def start_point_values(source: Any, weights: Sequence[int] = (1, 2, 7),
                       decimals: int = 4) -> dict[str, Decimal]:
    """Start-of-year point value per scheme from a small history table (CSV path or Arrow
    table) with columns ``scheme, year, cost, points``: one row per scheme and year, the years
    of a scheme weighted oldest to newest by ``weights`` (1:2:7). Errors name file, row and
    column."""
    from .._io import open_cases
    from ..errors import CaseDataError

    src = open_cases(source)
    table = pa.Table.from_batches(list(src.batches), schema=src.schema)
    for name in ("scheme", "year", "cost", "points"):
        if name not in table.column_names:
            raise CaseDataError(f"the history table needs a {name} column", file=src.name,
                                column=name)
    rows: dict[str, list[tuple[int, dict[str, object], int]]] = {}
    for k, rec in enumerate(table.to_pylist(), start=2):
        for name in ("cost", "points"):
            try:
                value = Decimal(str(rec[name]).strip())
                ok = value.is_finite() and value >= 0
            except (InvalidOperation, ValueError):
                ok = False
            if rec[name] is None or not ok:
                raise CaseDataError(f"{name} must be a non-negative number, got {rec[name]!r}",
                                    file=src.name, row=k, column=name)
        try:
            year = int(str(rec["year"]).strip())
        except ValueError:
            raise CaseDataError(f"year must be a whole number, got {rec['year']!r}",
                                file=src.name, row=k, column="year") from None
        rows.setdefault(str(rec["scheme"]), []).append((year, rec, k))
    out = {}
    for scheme, items in rows.items():
        items.sort(key=lambda t: t[0])
        if len(items) != len(weights) or len({y for y, _r, _k in items}) != len(items):
            raise CaseDataError(f"scheme {scheme}: {len(items)} history rows, expected one per "
                                f"year for {len(weights)} years (weights "
                                f"{':'.join(map(str, weights))})", file=src.name,
                                row=items[-1][2], column="year")
        out[scheme] = start_point_value([r for _y, r, _k in items], weights, decimals)
    return out


def fund_residue(policy: Policy, settled: pa.Table) -> dict[str, dict[str, Decimal]]:
    """Per fund pool of a DIP policy: the fund, Σ fund payments of its settled cases and the
    rounding residue = fund − Σ fund payments (exactly; the residue stays in the fund).

    The residue comes only from the documented roundings: the clearing point value rounded
    half up to ``points.value_decimals``, then each case's payment and fund payment half up to
    the cent. |residue| ≤ Σ points × ½·10^-value_decimals × ratio + ½ cent per case."""
    if policy.dip is None:
        raise PolicyError(f"policy {policy.id} is not a dip policy", file=policy.path)

    def col(name: str) -> list:
        arr = settled.column(name).combine_chunks()
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(arr.type.value_type)
        return arr.to_pylist()

    ok, fund_paid, kind = col("settled"), col("fund_payment"), col("insurance_type")
    out: dict[str, dict[str, Decimal]] = {}
    for pool, fund in policy.dip.fund.items():
        paid = sum((f for s, f, k in zip(ok, fund_paid, kind, strict=True)
                    if s and (pool == "all" or policy.scheme_of(k) == pool)), Decimal(0))
        out[pool] = {"fund": fund, "fund_payments": paid, "residue": fund - paid}
    return out
