"""How a report shows a value: one rounding, for display only, decided by the column's Arrow type
and name. Money stays exact (decimals are shown with their two places, never through a float)."""

from __future__ import annotations

import decimal
import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pyarrow as pa

__all__ = ["column_kind", "display", "is_percent"]

#: float columns shown as a percentage (a share, a rate, a growth)
_PERCENT_SUFFIXES = ("_share", "_rate", "_mortality", "_growth")
#: float columns with two decimals rather than four (means of yuan and days)
_TWO_DECIMALS = (
    "mean_los",
    "mean_cost",
    "cost_per_weight",
    "previous_cost_per_case",
    "expected_cost",
    "expected_los",
)


def is_percent(name: str) -> bool:
    return name.endswith(_PERCENT_SUFFIXES)


def column_kind(name: str, typ: pa.DataType) -> str:
    """``money`` (decimal with two places), ``decimal`` (other decimals), ``count`` (integers),
    ``percent``, ``number2``, ``number4`` (floats) or ``text``."""
    if pa.types.is_decimal(typ):
        return "money" if typ.scale == 2 else "decimal"
    if pa.types.is_integer(typ):
        return "count"
    if pa.types.is_floating(typ):
        if is_percent(name):
            return "percent"
        return "number2" if name in _TWO_DECIMALS else "number4"
    return "text"


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def display(value: Any, kind: str) -> str:
    """The text a person reads for ``value``: thousands separators, half-up rounding (floats
    through their shortest decimal form, so the same float always reads the same), ``—`` for
    a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if kind == "money":
        return f"{value:,.2f}"  # a Decimal formats exactly
    if kind == "decimal":
        places = min(4, -value.as_tuple().exponent) if isinstance(value, Decimal) else 4
        return f"{_round(Decimal(value), places):,}"
    if kind == "count":
        return f"{int(value):,}"
    if kind in ("percent", "number2", "number4"):
        if isinstance(value, float) and math.isinf(value):
            return "∞" if value > 0 else "-∞"
        exact = Decimal(repr(float(value)))
        with decimal.localcontext() as ctx:
            ctx.prec = 40
            if kind == "percent":
                return f"{_round(exact * 100, 2):,}%"
            return f"{_round(exact, 2 if kind == 'number2' else 4):,}"
    return str(value)
