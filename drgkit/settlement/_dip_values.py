"""DIP point values from the first pass's integer sums: the special-review cap (region-wide,
deterministic) and the clearing point value per insurance scheme; plus the start-of-year
point value from weighted history (DIP.md §5).

Special review (特例单议): candidates are cases above the extreme threshold; at most
⌊cap × DIP discharges of the region⌋ are accepted (all schemes together, not per hospital),
chosen by the highest r = cost ÷ reference, ties by case id (text order), so the choice does not
depend on batching or partitions. Accepted cases are paid by item × factor; the others keep the
high formula.

Clearing point value of a pool (a scheme, or ``all``) v = (fund ÷ fund payment ratio − paid by
item) ÷ Σ points. By-item payments (ungroupable cases, special review) are taken out first.

``dip.fund_rounding = "exact"`` (the default with ``shares.method = "ratio"``): v stays an exact
rational; the published value is v rounded half up to ``points.value_decimals``, for display
only. Amounts are rounded cumulatively in the canonical row order (partition, then row): with
D(i) = v × (points of the pool's rows up to i) + (cents by item up to i), and E(i) = ratio ×
D(i), a case gets payment = round(D(i)) − round(D(i−1)) and fund payment = round(E(i)) −
round(E(i−1)) (half up to the cent). Each is within one cent of its exact amount, by-item cases
keep their exact payment, and Σ fund payments of the pool's cases == the fund, to the cent. A
partition starts from the sums of the partitions before it (:func:`dip_offsets`), so the
result does not depend on batch size, partitions or the runner.

``"per_case"``: v rounded half up to ``value_decimals`` is the value paid (a region that
publishes a rounded point value); payment = points × v and fund payment = payment × ratio, each
half up per case; the residue is reported by :func:`fund_residue`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, NamedTuple

import pyarrow as pa

from .._money import half_up, scaled_decimal
from ._policy import Policy, PolicyError
from ._sums import Partial, Reduced

__all__ = [
    "Pool",
    "dip_offsets",
    "dip_point_values",
    "dip_pools",
    "fund_residue",
    "review_choice",
    "start_point_value",
    "start_point_values",
]


class Pool(NamedTuple):
    """A DIP fund pool after pass 1: its schemes, Σ points (×10^point_decimals), Σ cents paid
    by item, the fund (cents) and the fund payment ratio."""

    schemes: tuple[str, ...]
    points: int
    by_item: int
    fund: Fraction
    ratio: Fraction


def pool_of(policy: Policy, scheme: str) -> str | None:
    """The fund pool a scheme's cases are paid from: its own, else ``all``, else None."""
    fund = policy.dip.fund
    return scheme if scheme in fund else ("all" if "all" in fund else None)


def dip_pools(policy: Policy, total: Partial) -> dict[str, Pool]:
    """The pools of the fund (``total``: pass-1 sums after special review, as in
    :attr:`Reduced.totals`). A pool ``all`` takes the schemes without a fund of their own."""
    rules = policy.dip
    names = {*total.points, *total.by_item, *policy.scheme_names()}
    out: dict[str, Pool] = {}
    for pool, fund in rules.fund.items():
        schemes = (
            tuple(sorted(s for s in names if pool_of(policy, s) == pool))
            if pool == "all"
            else (pool,)
        )
        ratio = policy.fund_ratio.get(pool)
        if ratio is None and pool == "all":
            ratios = {policy.fund_ratio.get(s) for s in schemes}
            ratio = ratios.pop() if len(ratios) == 1 else None
        if not ratio:
            raise PolicyError(
                f"dip.fund.{pool} needs shares.fund_ratio.{pool} (above 0)", file=policy.path
            )
        out[pool] = Pool(
            schemes,
            sum(total.points.get(s, 0) for s in schemes),
            sum(total.by_item.get(s, 0) for s in schemes),
            Fraction(fund) * 100,
            Fraction(ratio),
        )
    return out


def _after_review(part: Partial, approved: frozenset[str]) -> Partial:
    """Pass-1 sums with the special-review candidates placed: approved ones by item, the
    others by points."""
    points, by_item = dict(part.points), dict(part.by_item)
    for scheme, _cost, _ref, case_id, pts, cents in part.review:
        if case_id in approved:
            by_item[scheme] = by_item.get(scheme, 0) + cents
        else:
            points[scheme] = points.get(scheme, 0) + pts
    return Partial(points, by_item, part.cases, part.discharges, part.review)


def dip_offsets(policy: Policy, reduced: Reduced, parts: Sequence[tuple[int, Partial]]) -> Reduced:
    """``reduced`` with the cumulative offsets of each partition (``parts``: its first global
    row and its pass-1 partial with repeated ids taken out, in partition order)."""
    if policy.dip is None or policy.dip.fund_rounding != "exact":
        return reduced
    run: dict[str, list[int]] = {}
    offsets: dict[int, dict[str, tuple[int, int]]] = {}
    for start, part in parts:
        offsets[start] = {k: (v[0], v[1]) for k, v in run.items()}
        placed = _after_review(part, reduced.approved)
        for scheme in {*placed.points, *placed.by_item}:
            pool = pool_of(policy, scheme)
            if pool is None:
                continue
            acc = run.setdefault(pool, [0, 0])
            acc[0] += placed.points.get(scheme, 0)
            acc[1] += placed.by_item.get(scheme, 0)
    return Reduced(reduced.point_values, reduced.totals, reduced.approved, offsets)


def review_choice(policy: Policy, total: Partial) -> frozenset[str]:
    """The case ids accepted for special review within the cap."""
    cap = int(Fraction(policy.dip.review_cap) * total.discharges)  # floor: the cap is a limit
    ranked = sorted(total.review, key=lambda c: (-Fraction(c[1], c[2]), c[3]))
    return frozenset(c[3] for c in ranked[:cap])


def dip_point_values(policy: Policy, total: Partial) -> Reduced:
    rules = policy.dip
    if not rules.fund:
        raise PolicyError(
            f"policy {policy.id} has no dip.fund (the DIP fund of the year per scheme, or 'all')",
            file=policy.path,
        )
    approved = review_choice(policy, total)
    adjusted = _after_review(total, approved)
    pd, vd = policy.point_decimals, policy.value_decimals
    values: dict[str, Decimal] = {}
    for pool, p in dip_pools(policy, adjusted).items():
        if p.points == 0:
            continue
        spendable = p.fund / p.ratio - p.by_item  # cents
        if spendable <= 0:
            raise PolicyError(
                f"dip.fund.{pool} ({scaled_decimal(int(p.fund), 2)}) ÷ ratio "
                f"{p.ratio} leaves nothing for points after "
                f"{scaled_decimal(p.by_item, 2)} paid by item",
                file=policy.path,
            )
        # yuan per point, shown (and paid, under per_case) half up to value_decimals
        values[pool] = scaled_decimal(half_up(spendable / 100 * 10 ** (pd + vd) / p.points), vd)
    return Reduced(values, adjusted, approved)


def start_point_value(
    years: Sequence[Mapping[str, object]], weights: Sequence[int] = (1, 2, 7), decimals: int = 4
) -> Decimal:
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


def start_point_values(
    source: Any, weights: Sequence[int] = (1, 2, 7), decimals: int = 4
) -> dict[str, Decimal]:
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
            raise CaseDataError(
                f"the history table needs a {name} column", file=src.name, column=name
            )
    rows: dict[str, list[tuple[int, dict[str, object], int]]] = {}
    for k, rec in enumerate(table.to_pylist(), start=2):
        for name in ("cost", "points"):
            try:
                value = Decimal(str(rec[name]).strip())
                ok = value.is_finite() and value >= 0
            except (InvalidOperation, ValueError):
                ok = False
            if rec[name] is None or not ok:
                raise CaseDataError(
                    f"{name} must be a non-negative number, got {rec[name]!r}",
                    file=src.name,
                    row=k,
                    column=name,
                )
        try:
            year = int(str(rec["year"]).strip())
        except ValueError:
            raise CaseDataError(
                f"year must be a whole number, got {rec['year']!r}",
                file=src.name,
                row=k,
                column="year",
            ) from None
        rows.setdefault(str(rec["scheme"]), []).append((year, rec, k))
    out = {}
    for scheme, items in rows.items():
        items.sort(key=lambda t: t[0])
        if len(items) != len(weights) or len({y for y, _r, _k in items}) != len(items):
            raise CaseDataError(
                f"scheme {scheme}: {len(items)} history rows, expected one per "
                f"year for {len(weights)} years (weights "
                f"{':'.join(map(str, weights))})",
                file=src.name,
                row=items[-1][2],
                column="year",
            )
        out[scheme] = start_point_value([r for _y, r, _k in items], weights, decimals)
    return out


def fund_residue(policy: Policy, settled: pa.Table) -> dict[str, dict[str, Decimal]]:
    """Per fund pool of a DIP policy: the fund, Σ fund payments of its settled cases and the
    rounding residue = fund − Σ fund payments (exactly; the residue stays in the fund).

    With ``dip.fund_rounding = "exact"`` the residue of a pool with points is 0. With
    ``"per_case"`` it comes only from the documented roundings: the clearing point value
    rounded half up to ``points.value_decimals``, then each case's payment and fund payment
    half up to the cent. |residue| ≤ Σ points × ½·10^-value_decimals × ratio + ½ cent per
    case."""
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
        paid = sum(
            (
                f
                for s, f, k in zip(ok, fund_paid, kind, strict=True)
                if s and (pool == "all" or policy.scheme_of(k) == pool)
            ),
            Decimal(0),
        )
        out[pool] = {"fund": fund, "fund_payments": paid, "residue": fund - paid}
    return out
