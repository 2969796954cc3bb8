"""Money as exact integer cents (分), and RW (relative weights) as exact integers.

Every amount drgkit reads becomes an ``int64`` number of cents, or a per-case flag saying why it
could not: an amount is never rounded on the way in. Accepted: Arrow decimals (any scale, as
long as the value is a whole number of cents), integers (yuan), floats that are exactly the
nearest double to a cent amount (``1234.56`` is, ``0.1 + 0.2`` is not), and texts such as
``1234.56``, ``-3`` or ``12.5`` (``1,234.00`` is not: a comma is ambiguous).

RW are read the same way at :data:`RW_DECIMALS` decimals (published tables have up to 9), as
integers ``RW × RW_SCALE``; every module that reads or writes an RW uses this scale.

The one rounding rule (documented in the README): each case's amounts are computed exactly and
rounded once, half up (away from zero) to 0.01 yuan; totals are sums of rounded cases.

The one bound, :data:`LIMIT_CENTS`, is the settlement kernel's exact range (see
``settlement/_kernel.py``): an amount beyond it is flagged ``TOO_LARGE`` where it is read (a
per-case reason) or refused by the loaders (policy, alliance, budgets), never paid wrong.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Context, Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa

from ._codes import string_buffers
from ._jit import jit
from .schema import MONEY, RW_DECIMALS, RW_TYPE  # owned by the schema (the Arrow types)

__all__ = [
    "COEF_SCALE",
    "FLAG_TEXT",
    "LIMIT_CENTS",
    "LIMIT_POOL_CENTS",
    "LIMIT_RW",
    "MONEY",
    "RW_DECIMALS",
    "RW_SCALE",
    "RW_TYPE",
    "cents_array",
    "cents_of",
    "coefficient_units",
    "exact_sum",
    "group_sums",
    "half_up",
    "round_cents",
    "round_fraction",
    "rw_units",
    "scaled_array",
    "scaled_decimal",
    "scaled_half_up",
    "sum_cents",
    "to_cents",
    "to_decimal_cents",
    "to_scaled",
    "yuan",
]


OK, MISSING, NOT_A_NUMBER, SUB_CENT, TOO_LARGE = 0, 1, 2, 3, 4
FLAG_TEXT = {
    MISSING: "missing",
    NOT_A_NUMBER: "not an amount",
    SUB_CENT: "has fractions of a cent",
    TOO_LARGE: "too large",
}

_INT64_MAX = 2**63 - 1
_EXACT = Context(prec=80)  # enough digits for every scaled value drgkit forms
#: the settlement kernel (``_kernel.price_all``) is exact while 2·10^7·|c| + 10^6 < 2^63, i.e.
#: for |c| ≤ 461,168,601,792 cents (B ≤ 10 scaled by 2·10^6, plus half of G); the worst
#: intermediate at the bound is then 8·10^18 + 10^6.
KERNEL_EXACT_CENTS = (_INT64_MAX - 1_000_000) // 20_000_000
#: |amount| limit for every amount drgkit reads (costs, budgets, base rates, standards):
#: 4·10^11 cents = 4,000,000,000.00 yuan, inside the kernel's exact range.
LIMIT_CENTS = 4 * 10**11
assert LIMIT_CENTS <= KERNEL_EXACT_CENTS
#: limit of a budget pool (the sum of many cases' payments): 10^4 × LIMIT_CENTS, 40 trillion
#: yuan, above any fund; point values are exact rationals, so only int64 bounds them further
LIMIT_POOL_CENTS = 10**4 * LIMIT_CENTS

RW_SCALE = 10**RW_DECIMALS
#: decimals of a policy coefficient (factor, share, ratio): kernels take them as B·COEF_SCALE
COEF_DECIMALS = 6
COEF_SCALE = 10**COEF_DECIMALS
#: the largest RW drgkit accepts (published RW are below 100): RW·RW_SCALE ≤ 10^12 fits int64,
#: and so does the sum of RW over 9·10^6 cases; larger sums are taken in Python integers
LIMIT_RW = 1000


def round_cents(value: Decimal) -> int:
    """Exact decimal yuan -> cents, half up (away from zero)."""
    return scaled_half_up(value, 2)


def scaled_half_up(value: Decimal, decimals: int) -> int:
    """value·10^decimals rounded half up (away from zero) to an integer, exactly."""
    return int(
        value.scaleb(decimals, context=_EXACT).quantize(
            Decimal(1), rounding=ROUND_HALF_UP, context=_EXACT
        )
    )


def exact_int(value: Decimal | Fraction, decimals: int) -> int:
    """``value·10^decimals`` as an int, exactly, whatever the ambient decimal context; the
    value must have at most ``decimals`` decimal places."""
    scaled = Fraction(value) * 10**decimals
    if scaled.denominator != 1:
        raise ValueError(f"{value} has more than {decimals} decimals")
    return int(scaled)


def coefficient_units(value: Decimal | Fraction) -> int:
    """A policy coefficient (≤ COEF_DECIMALS decimals, checked by the loaders) as the exact
    integer value·COEF_SCALE the kernels take."""
    return exact_int(value, COEF_DECIMALS)


def scaled_decimal(units: int, places: int) -> Decimal:
    """``units / 10^places`` as an exact Decimal with ``places`` decimals (any size: no context
    rounding)."""
    return Decimal(int(units)).scaleb(-places, context=_EXACT)


def round_fraction(value: Fraction, places: int) -> Decimal:
    """An exact rational as a Decimal rounded half up (away from zero) to ``places``."""
    return scaled_decimal(half_up(value * 10**places), places)


def half_up(x: Fraction | int) -> int:
    """An exact rational rounded half up (away from zero) to an integer."""
    if x >= 0:
        return math.floor(x + Fraction(1, 2))
    return -math.floor(-x + Fraction(1, 2))


@jit
def _parse_scaled(offsets, data, valid, scale, limit):
    """Texts -> (value·10^scale, flag), exactly; ``limit`` bounds |value·10^scale|."""
    n = len(offsets) - 1
    out = np.zeros(n, dtype=np.int64)
    flag = np.zeros(n, dtype=np.int8)
    for i in range(n):
        a = offsets[i]
        b = offsets[i + 1]
        # surrounding spaces are not part of an amount
        while a < b and data[a] == 32:
            a += 1
        while b > a and data[b - 1] == 32:
            b -= 1
        if (valid is not None and not valid[i]) or a == b:
            flag[i] = MISSING
            continue
        k = a
        negative = False
        if data[k] == 43 or data[k] == 45:
            negative = data[k] == 45
            k += 1
        whole = np.int64(0)
        digits = 0
        big = False
        while k < b and 48 <= data[k] <= 57:
            # past the limit the digits are still read (a later letter is NOT_A_NUMBER)
            if whole <= limit:
                whole = whole * 10 + (data[k] - 48)
            else:
                big = True
            digits += 1
            k += 1
        frac = np.int64(0)
        fdigits = 0
        extra_nonzero = False
        if k < b and data[k] == 46:
            k += 1
            while k < b and 48 <= data[k] <= 57:
                d = data[k] - 48
                if fdigits < scale:
                    frac = frac * 10 + d
                elif d != 0:
                    extra_nonzero = True
                fdigits += 1
                k += 1
        if k != b or (digits == 0 and fdigits == 0):
            flag[i] = NOT_A_NUMBER
            continue
        if extra_nonzero:
            flag[i] = SUB_CENT
            continue
        unit = np.int64(1)
        for _ in range(scale):
            unit *= 10
        if big or whole > limit // unit:  # checked before multiplying: no int64 overflow
            flag[i] = TOO_LARGE
            continue
        for _ in range(min(fdigits, scale), scale):
            frac *= 10
        value = whole * unit + frac
        if value > limit:
            flag[i] = TOO_LARGE
            continue
        out[i] = -value if negative else value
    return out, flag


def to_cents(arr: pa.Array | pa.ChunkedArray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(cents int64, flag int8) of a money column; flag 0 = fine (see FLAG_TEXT); an amount
    beyond :data:`LIMIT_CENTS` is flagged ``TOO_LARGE``."""
    return to_scaled(arr, n, 2, LIMIT_CENTS)


def rw_units(arr: pa.Array | pa.ChunkedArray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(RW·RW_SCALE int64, flag int8) of an RW column; more than :data:`RW_DECIMALS` decimals
    is ``SUB_CENT`` (a sub-unit), above :data:`LIMIT_RW` ``TOO_LARGE``."""
    return to_scaled(arr, n, RW_DECIMALS, LIMIT_RW * RW_SCALE)


def to_scaled(
    arr: pa.Array | pa.ChunkedArray | None, n: int, scale: int, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """(value·10^scale int64, flag int8) of a numeric or text column, exactly; a value with
    more decimals is flagged ``SUB_CENT``, one with |value·10^scale| > ``limit`` ``TOO_LARGE``.
    ``limit`` < 2^62 / 10 keeps every step of the reading inside int64."""
    if arr is None or pa.types.is_null(arr.type):
        return np.zeros(n, np.int64), np.full(n, MISSING, np.int8)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], arr.type)
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_decimal(t):
        return _decimal_scaled(arr, scale, limit)
    if pa.types.is_integer(t):
        unit = 10**scale
        values = arr.fill_null(0).to_numpy(zero_copy_only=False)
        # compare before any cast: a uint64 above 2^63 must not wrap to a small negative
        big = (
            (values > limit // unit)
            if pa.types.is_unsigned_integer(t)
            else ((values > limit // unit) | (values < -(limit // unit)))
        )
        flag = np.where(
            arr.is_null().to_numpy(zero_copy_only=False), MISSING, np.where(big, TOO_LARGE, OK)
        ).astype(np.int8)
        safe = np.where(flag == OK, values, 0).astype(np.int64)
        return safe * unit, flag
    if pa.types.is_floating(t):
        unit = 10**scale
        x = arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore", over="ignore"):
            units = np.rint(x * unit)
            exact = (units / unit == x) & np.isfinite(x)
            big = exact & (np.abs(units) > limit)
        flag = np.where(
            np.isnan(x), MISSING, np.where(exact, np.where(big, TOO_LARGE, OK), SUB_CENT)
        )
        return np.where(flag == OK, units, 0).astype(np.int64), flag.astype(np.int8)
    if pa.types.is_string_view(t) or not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        arr = arr.cast(pa.large_string())
    offsets, data, valid = string_buffers(arr)
    return _parse_scaled(offsets, data, valid, scale, limit)


def _decimal_scaled(arr: pa.Array, scale: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Whole multiples of 10^-scale of a decimal128/256 column, exactly; finer values are
    flagged SUB_CENT, larger ones TOO_LARGE."""
    t = arr.type
    n = len(arr)
    flag = np.where(arr.is_null().to_numpy(zero_copy_only=False), MISSING, OK).astype(np.int8)
    if pa.types.is_decimal128(t) and t.precision <= 18 and 0 <= t.scale <= scale:
        # unscaled values fit in the low word; read them without Python objects
        words = np.frombuffer(arr.buffers()[1], dtype=np.int64)[
            2 * arr.offset : 2 * (arr.offset + n)
        ]
        unscaled = words[0::2].copy()
        unscaled[flag != OK] = 0
        factor = 10 ** (scale - t.scale)
        big = (flag == OK) & (np.abs(unscaled) > limit // factor)
        flag[big] = TOO_LARGE
        return np.where(flag == OK, unscaled * factor, 0), flag
    out = np.zeros(n, np.int64)
    for i, v in enumerate(arr.to_pylist()):
        if v is None:
            continue
        c = v.scaleb(scale)
        if c != c.to_integral_value():
            flag[i] = SUB_CENT
        elif abs(c) > limit:
            flag[i] = TOO_LARGE
        else:
            out[i] = int(c)
    return out, flag


def cents_of(value: Any) -> tuple[int, int]:
    """(cents, flag) of one amount in yuan (text, int, Decimal or float), read exactly as a
    column is (:func:`to_cents`): the loaders of policies, alliances and budgets use it so
    that a value means the same wherever it is written."""
    if isinstance(value, bool) or value is None:
        return 0, (MISSING if value is None else NOT_A_NUMBER)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return 0, NOT_A_NUMBER
        value = format(value, "f")  # plain digits: the text parser reads any size
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, float):
        arr = pa.array([value], pa.float64())
    elif isinstance(value, str):
        arr = pa.array([value], pa.large_string())
    else:
        return 0, NOT_A_NUMBER
    cents, flag = to_cents(arr, 1)
    return int(cents[0]), int(flag[0])


def scaled_array(
    values: np.ndarray, scale: int, valid: np.ndarray | None = None, precision: int = 18
) -> pa.Array:
    """Integers ``value·10^scale`` as an exact ``decimal128(precision, scale)`` Arrow array
    (no float, no Python object ever involved); ``valid`` False -> null."""
    limit = 10**precision  # Arrow does not check a decimal's precision: we do
    if len(values) and any(not -limit < int(v) < limit for v in (np.max(values), np.min(values))):
        raise ValueError(
            f"an amount ({max(abs(int(np.max(values))), abs(int(np.min(values))))}"
            f" × 10^-{scale}) does not fit decimal128({precision}, {scale})"
        )
    values = np.ascontiguousarray(values, dtype=np.int64)
    words = np.empty((len(values), 2), dtype=np.int64)
    words[:, 0] = values
    words[:, 1] = np.where(values < 0, -1, 0)  # two's-complement sign extension
    validity = None
    null_count = 0
    if valid is not None and not valid.all():
        validity = pa.py_buffer(np.packbits(valid.astype(np.uint8), bitorder="little"))
        null_count = int((~valid).sum())
    return pa.Array.from_buffers(
        pa.decimal128(precision, scale),
        len(values),
        [validity, pa.py_buffer(words)],
        null_count=null_count,
    )


def cents_array(cents: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Cents as an exact ``decimal128(18, 2)`` Arrow array (no float ever involved)."""
    return scaled_array(cents, 2, valid)


def to_decimal_cents(values: pa.Array) -> np.ndarray:
    """Inverse of :func:`cents_array` for a money column drgkit wrote (nulls -> 0)."""
    cents, flag = to_cents(values, len(values))
    return np.where(flag == OK, cents, 0)


def sum_cents(arr: pa.Array) -> int:
    """Exact total of a money column, in cents (nulls count as 0)."""
    cents, _flag = to_cents(arr, len(arr))
    return int(cents.sum())


def group_sums(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Σ values per group ``index`` (0 .. size-1), exactly: int64 when no sum can leave int64
    (rows × the largest |value| < 2^63), else Python integers (an object array)."""
    values = np.asarray(values, dtype=np.int64)
    top = max(int(values.max()), -int(values.min())) if len(values) else 0
    if top * len(values) <= _INT64_MAX:
        out = np.zeros(size, dtype=np.int64)
        np.add.at(out, index, values)
        return out
    big = np.zeros(size, dtype=object)
    for k, v in zip(np.asarray(index).tolist(), values.tolist(), strict=True):
        big[k] += v
    return big


def exact_sum(values: np.ndarray) -> int:
    """Σ values as a Python integer, exactly (numpy's int64 sum wraps silently)."""
    return int(group_sums(np.zeros(len(values), np.int64), values, 1)[0])


def yuan(cents: int) -> Decimal:
    return Decimal(int(cents)).scaleb(-2)
