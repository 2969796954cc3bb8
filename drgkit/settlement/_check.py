"""Check a policy against every figure its published table prints.

Figures reproduced (each a cell of the table): payment standards per level and scheme, low and
high outlier thresholds, the base rate per RW printed on every row, and an RW the table derives
from another of its columns (``[weights] rw_from``). A printed figure is matched *to the cent*:
drgkit's exact value, rounded half up to the cent, must be a cent the printed figure can stand
for. A figure printed with fewer than 2 decimals is the exact amount (118507 is 118507.00); one
printed with more decimals may be an exact value rounded for print (14414.315 stands for any
value in [14414.3145, 14414.3155), so for the cent .31 or .32).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import attrs

from .._money import round_cents
from ._policy import Policy
from ._price import PriceBook

#: the kinds of figures checked, in report order
KINDS = ("standard", "low", "high", "rate", "rw")
_HALF_CENT = Decimal("0.005")


@attrs.frozen(slots=True)
class PublishedCheck:
    #: published standards checked (computed from RW, not read as the price)
    checked: int
    mismatches: tuple[str, ...]
    #: kind -> (cells checked, cells matched)
    kinds: dict[str, tuple[int, int]] = attrs.field(factory=dict)
    #: table cells read (codes, weights, coefficients, figures, flags)
    cells_read: int = 0
    #: standards the policy prices as published ([rate] standard = "published")
    read_as_price: int = 0
    notes: tuple[str, ...] = ()

    @property
    def cells_checked(self) -> int:
        return sum(c for c, _m in self.kinds.values())

    @property
    def cells_matched(self) -> int:
        return sum(m for _c, m in self.kinds.values())


def matches_printed(exact: Decimal, printed: Decimal) -> bool:
    """Whether ``exact`` rounded to the cent is a cent the printed figure can stand for."""
    cents = Decimal(round_cents(exact)).scaleb(-2)
    decimals = -printed.as_tuple().exponent
    if decimals < 2:
        return cents == printed
    half = Decimal(5).scaleb(-(decimals + 1))
    # the cent's interval [c - ½ cent, c + ½ cent) meets the print's [p - h, p + h)
    return cents - _HALF_CENT < printed + half and printed - half < cents + _HALF_CENT


def check_published(policy: Policy) -> PublishedCheck:
    """Every published figure of the table against the value the policy computes. A standard
    of any scheme (``*``) is computed for the policy's first scheme; a cell the table marks as
    having no standard (``[weights] no_standard_values``) matches when drgkit has no price."""
    book = PriceBook(policy)
    first = book.schemes[0]
    counts = {kind: [0, 0] for kind in KINDS}
    bad: list[str] = []
    standards = read_as_price = 0
    rw_from = policy.weights.rw_from

    def tally(kind: str, ok: bool, message: str) -> None:
        counts[kind][0] += 1
        counts[kind][1] += ok
        if not ok:
            bad.append(message)

    for row in policy.weights.rows.values():
        for (kind, level, scheme_key), printed in row.figures.items():
            scheme = first if scheme_key == "*" else scheme_key
            where = f"{row.code} {kind} level {level} scheme {scheme_key}"
            if kind == "rate":
                rate = policy.rate_for(scheme, level)
                if printed is None:
                    continue
                tally(kind, rate == printed, f"{where}: published {printed}, policy {rate}")
                continue
            if kind == "rw_source":
                assert rw_from is not None
                if printed is None:
                    continue
                if row.rw is None:
                    ok = printed == rw_from.divisor
                    tally("rw", ok, f"{row.code} rw: none, {rw_from.column} {printed}")
                    continue
                derived = (printed / rw_from.divisor).quantize(
                    Decimal(1).scaleb(-rw_from.decimals), ROUND_HALF_UP
                )
                tally(
                    "rw",
                    derived == row.rw,
                    f"{row.code} rw: published {row.rw}, {rw_from.column} {printed} "
                    f"÷ {rw_from.divisor} = {derived}",
                )
                continue
            std, rw, why = book.standard(row, level, scheme, Decimal(1))
            if kind == "standard":
                if policy.standard_from == "published":
                    read_as_price += 1
                    continue
                standards += 1
                if printed is None:
                    tally(kind, std is None, f"{where}: the table has none, computed {std}")
                elif std is None:
                    tally(kind, False, f"{where}: published {printed}, drgkit: {why}")
                else:
                    ok = matches_printed(std, printed)
                    tally(kind, ok, f"{where}: published {printed}, computed {std}")
                continue
            # an outlier threshold: ratio (by the group's RW) × standard
            rule = policy.low if kind == "low" else policy.high
            if printed is None:
                tally(kind, std is None, f"{where}: the table has none, drgkit has a standard")
            elif std is None or rw is None or rule is None:
                why = why or f"the policy has no [outliers.{kind}]"
                tally(kind, False, f"{where}: published {printed}, drgkit: {why}")
            else:
                exact = rule.ratio_for(rw) * std
                tally(
                    kind,
                    matches_printed(exact, printed),
                    f"{where}: published {printed}, computed {exact}",
                )
    notes = [f"not read: {line}" for line in policy.weights.ignored]
    if policy.weights.padded:
        rows = ", ".join(str(n) for n in policy.weights.padded)
        notes.append(f"rows with missing trailing fields read as empty: {rows}")
    if read_as_price:
        notes.append(f"{read_as_price} published standards are the price (rate.standard)")
    return PublishedCheck(
        standards,
        tuple(bad),
        {kind: (c, m) for kind, (c, m) in counts.items() if c},
        policy.weights.cells_read,
        read_as_price,
        tuple(notes),
    )
