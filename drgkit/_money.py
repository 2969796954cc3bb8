"""Money as exact integer cents (分).

Every amount drgkit reads becomes an ``int64`` number of cents, or a per-case flag saying why it
could not: an amount is never rounded on the way in. Accepted: Arrow decimals (any scale, as
long as the value is a whole number of cents), integers (yuan), floats that are exactly the
nearest double to a cent amount (``1234.56`` is, ``0.1 + 0.2`` is not), and texts such as
``1234.56``, ``-3`` or ``12.5`` (``1,234.00`` is not: a comma is ambiguous).

The one rounding rule (documented in the README): each case's amounts are computed exactly and
rounded once, half up (away from zero) to 0.01 yuan; totals are sums of rounded cases.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pyarrow as pa

from ._codes import string_buffers
from ._jit import jit

__all__ = ["MONEY", "cents_array", "round_cents", "to_cents", "to_decimal_cents"]

#: Arrow type of every money column drgkit writes: yuan with two decimals, exact.
MONEY = pa.decimal128(18, 2)

OK, MISSING, NOT_A_NUMBER, SUB_CENT, TOO_LARGE = 0, 1, 2, 3, 4
FLAG_TEXT = {
    MISSING: "missing",
    NOT_A_NUMBER: "not an amount",
    SUB_CENT: "has fractions of a cent",
    TOO_LARGE: "too large",
}
#: |amount| limit: 10^13 cents (100 billion yuan) leaves room for exact products in int64
LIMIT_CENTS = 10**13


def round_cents(value: Decimal) -> int:
    """Exact decimal yuan -> cents, half up (away from zero)."""
    return int(value.scaleb(2).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@jit
def _parse_money(offsets, data, valid):
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
        while k < b and 48 <= data[k] <= 57:
            if whole > 10**14:
                flag[i] = TOO_LARGE
                break
            whole = whole * 10 + (data[k] - 48)
            digits += 1
            k += 1
        if flag[i] != 0:
            continue
        frac = np.int64(0)
        fdigits = 0
        extra_nonzero = False
        if k < b and data[k] == 46:
            k += 1
            while k < b and 48 <= data[k] <= 57:
                d = data[k] - 48
                if fdigits < 2:
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
        if fdigits == 1:
            frac *= 10
        value = whole * 100 + frac
        if value > LIMIT_CENTS:
            flag[i] = TOO_LARGE
            continue
        out[i] = -value if negative else value
    return out, flag


def to_cents(arr: pa.Array | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(cents int64, flag int8) of a money column; flag 0 = fine (see FLAG_TEXT)."""
    if arr is None or pa.types.is_null(arr.type):
        return np.zeros(n, np.int64), np.full(n, MISSING, np.int8)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_decimal(t):
        return _decimal_cents(arr)
    if pa.types.is_integer(t):
        values = arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        flag = np.where(arr.is_null().to_numpy(zero_copy_only=False), MISSING, OK)
        flag = np.where(np.abs(values) > LIMIT_CENTS // 100, TOO_LARGE, flag)
        return np.where(flag == OK, values * 100, 0), flag.astype(np.int8)
    if pa.types.is_floating(t):
        x = arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            cents = np.rint(x * 100)
            exact = (cents / 100 == x) & np.isfinite(x)
        flag = np.where(np.isnan(x), MISSING, np.where(exact, OK, SUB_CENT))
        flag = np.where(exact & (np.abs(cents) > LIMIT_CENTS), TOO_LARGE, flag)
        return np.where(flag == OK, cents, 0).astype(np.int64), flag.astype(np.int8)
    if pa.types.is_string_view(t) or not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        arr = arr.cast(pa.large_string())
    offsets, data, valid = string_buffers(arr)
    return _parse_money(offsets, data, valid)


def _decimal_cents(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Whole cents of a decimal128/256 column, exactly; sub-cent values are flagged."""
    t = arr.type
    scale = t.scale
    n = len(arr)
    flag = np.where(arr.is_null().to_numpy(zero_copy_only=False), MISSING, OK).astype(np.int8)
    if pa.types.is_decimal128(t) and t.precision <= 18 and scale <= 2:
        # unscaled values fit in the low word; read them without Python objects
        words = np.frombuffer(arr.buffers()[1], dtype=np.int64)[2 * arr.offset: 2 * (
            arr.offset + n)]
        unscaled = words[0::2].copy()
        unscaled[flag != OK] = 0
        cents = unscaled * 10 ** (2 - scale)
    else:
        values = arr.to_pylist()
        cents = np.zeros(n, np.int64)
        for i, v in enumerate(values):
            if v is None:
                continue
            c = v.scaleb(2)
            if c != c.to_integral_value():
                flag[i] = SUB_CENT
            elif abs(c) > LIMIT_CENTS:
                flag[i] = TOO_LARGE
            else:
                cents[i] = int(c)
    flag = np.where((flag == OK) & (np.abs(cents) > LIMIT_CENTS), TOO_LARGE, flag).astype(np.int8)
    return np.where(flag == OK, cents, 0), flag


def cents_array(cents: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Cents as an exact ``decimal128(18, 2)`` Arrow array (no float ever involved)."""
    cents = np.ascontiguousarray(cents, dtype=np.int64)
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = np.where(cents < 0, -1, 0)  # two's-complement sign extension
    validity = None
    null_count = 0
    if valid is not None and not valid.all():
        validity = pa.py_buffer(np.packbits(valid.astype(np.uint8), bitorder="little"))
        null_count = int((~valid).sum())
    return pa.Array.from_buffers(MONEY, len(cents), [validity, pa.py_buffer(words)],
                                 null_count=null_count)


def to_decimal_cents(values: pa.Array) -> np.ndarray:
    """Inverse of :func:`cents_array` for a money column drgkit wrote (nulls -> 0)."""
    cents, flag = to_cents(values, len(values))
    return np.where(flag == OK, cents, 0)


def sum_cents(arr: pa.Array) -> int:
    """Exact total of a money column, in cents (nulls count as 0)."""
    cents, _flag = to_cents(arr, len(arr))
    return int(cents.sum())


def yuan(cents: int) -> Decimal:
    return Decimal(int(cents)).scaleb(-2)

