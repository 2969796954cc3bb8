"""From a file's own columns to the case fields, and from Arrow columns to kernel arrays.

:func:`plan_columns` decides once per input which column feeds which case field (layout
detection, user overrides, missing columns). :func:`parse_scalar` turns one raw field column
into the number/text facts the rules need, parsing each *distinct* value once in Python with
exactly the semantics of the ruleset format (FORMAT.md §2), then spreading the result over the
rows with numpy. :func:`code_lists` turns a diagnosis or procedure column into per-case lists of
code ids, and :func:`code_hints` says which unknown codes look like a common mistake (another
separator, lower case). :data:`PLAUSIBLE` holds drgkit's bounds on age, age in days, birth
weight and length of stay, which :func:`implausible` applies on top of FORMAT §5's checks.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._codes import CodeTable, as_numpy, string_buffers
from ._jit import jit
from .errors import CaseDataError
from .schema import FIELDS_BY_NAME, GROUPING_FIELDS, LAYOUTS, REQUIRED_FOR_GROUPING, Layout

__all__ = [
    "PLAUSIBLE",
    "VALUE_CHECKS",
    "CodeHint",
    "ColumnPlan",
    "ParsedField",
    "code_hints",
    "code_lists",
    "encode_values",
    "implausible",
    "parse_dates",
    "parse_scalar",
    "plan_columns",
]

F_NUMBER, F_INT_OK, F_TRUTHY = 1, 2, 4
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_I64_MAX = 2**63 - 1


# ------------------------------------------------------------------------------ columns


@attrs.frozen(slots=True)
class ColumnPlan:
    """Which input column feeds each case field."""

    layout: Layout
    #: case field -> input column, for the fields present in the input
    source: Mapping[str, str]
    #: grouping fields the input lacks (missing for every case)
    missing: tuple[str, ...]

    def column(self, batch: pa.RecordBatch, field: str) -> pa.Array | None:
        name = self.source.get(field)
        return batch.column(name) if name is not None else None

    def describe(self) -> str:
        mapped = ", ".join(f"{f}←{c}" for f, c in self.source.items() if f != c)
        return f"layout {self.layout.name}" + (f" ({mapped})" if mapped else "")


def resolve_layout(
    layout: str | Layout | None,
    names: list[str],
    source: str,
    layouts: Mapping[str, Layout] = LAYOUTS,
) -> Layout:
    if isinstance(layout, Layout):
        return layout
    if layout is not None:
        try:
            return layouts[layout]
        except KeyError:
            raise CaseDataError(
                f"unknown layout {layout!r}; known: {', '.join(layouts)}", file=source
            ) from None
    for candidate in layouts.values():
        if candidate.matches(names):
            return candidate
    return layouts.get("drgkit", LAYOUTS["drgkit"])


def plan_columns(
    schema: pa.Schema,
    source: str,
    *,
    layout: str | Layout | None = None,
    columns: Mapping[str, str] | None = None,
    fields: tuple[str, ...] = GROUPING_FIELDS,
    required: tuple[str, ...] = REQUIRED_FOR_GROUPING,
    layouts: Mapping[str, Layout] | None = None,
) -> ColumnPlan:
    """Map the input's columns onto case fields; a required field that is absent is an error."""
    names = list(schema.names)
    chosen = resolve_layout(layout, names, source, layouts or LAYOUTS)
    if columns:
        unknown = set(columns) - set(FIELDS_BY_NAME)
        if unknown:
            raise CaseDataError(
                f"unknown case field(s) {sorted(unknown)} in the column mapping;"
                f" case fields are {sorted(FIELDS_BY_NAME)}",
                file=source,
            )
        chosen = chosen.with_overrides(columns)
        for field, col in columns.items():
            if col not in names:
                raise CaseDataError(
                    f"column {col!r} (mapped to case field {field}) is not in the input. "
                    f"Columns found: {', '.join(names)}",
                    file=source,
                    column=col,
                )
    present: dict[str, str] = {}
    missing: list[str] = []
    for field in fields:
        col = chosen.source_for(field)
        if col is not None and col in names:
            present[field] = col
        elif field in names:
            present[field] = field  # drgkit's own name always works
        else:
            missing.append(field)
    for field, col in present.items():
        _check_column(schema, names, field, col, source)
    for field in required:
        if field not in present:
            expected = chosen.source_for(field) or field
            raise CaseDataError(
                f"required column {expected!r} (case field {field}) is not in the input; "
                f"{chosen.name} layout expected it. Columns found: {', '.join(names)}. "
                "Choose a layout or map the column (e.g. --map diagnoses=MYCOL).",
                file=source,
                column=expected,
            )
    return ColumnPlan(chosen, present, tuple(missing))


def _scalar_type(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
        or pa.types.is_null(t)
    )


def _check_column(schema: pa.Schema, names: list[str], field: str, col: str, source: str) -> None:
    """A column feeding ``field`` must be unique and of a type the field can hold: one value
    per case (text, number, boolean), a date for the discharge date, text or a list of texts
    for codes. Checked once per input, before any row is read, so no row is lost to it."""
    if names.count(col) > 1:
        raise CaseDataError(
            f"the column (case field {field}) appears {names.count(col)} "
            "times in the input; rename or drop the copies",
            file=source,
            column=col,
        )
    t = schema.field(col).type
    if field in ("diagnoses", "procedures"):
        return  # text or lists of texts; code_lists names anything else
    if _scalar_type(t):
        return
    if field == "discharge_date" and (pa.types.is_date(t) or pa.types.is_timestamp(t)):
        return
    raise CaseDataError(
        f"the column (case field {field}) holds {t}; it must hold one text or number per case",
        file=source,
        column=col,
    )


# ------------------------------------------------------------------------------ scalars


@attrs.frozen(slots=True)
class ParsedField:
    """Facts about one raw field for every case: kind bits, number, int() value, text."""

    kind: np.ndarray  # uint8: F_NUMBER | F_INT_OK | F_TRUTHY
    num: np.ndarray  # float64 (meaningful when F_NUMBER)
    intv: np.ndarray  # int64 (meaningful when F_INT_OK)
    missing: np.ndarray  # bool: value absent or empty text
    #: the raw column (None: the field is absent), to compute more facts lazily
    raw: pa.Array | None

    def per_case(self, fn: Callable[[Any], Any], dtype: Any) -> np.ndarray:
        """``fn`` of each case's raw value, evaluated once per distinct value."""
        if self.raw is None:
            return np.full(len(self.kind), fn(None), dtype=dtype)
        uniques, index = encode_values(self.raw)
        table = np.array([fn(v) for v in uniques], dtype=dtype)
        return table[index]

    def text(self, row: int) -> str:
        """The value of one case as text, for messages."""
        return "" if self.raw is None else value_text(self.raw[row].as_py())


def value_text(value: Any) -> str:
    """The text form of a raw value: the text itself, or the number written out."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


def parse_value(value: Any) -> tuple[int, float, int, bool]:
    """(kind bits, number, int() value, missing) of one raw value, per FORMAT §2."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0, 0.0, 0, True
    number: int | float | None
    if isinstance(value, bool):
        number = int(value)
    elif isinstance(value, (int, float)):
        number = value
    elif isinstance(value, decimal.Decimal):
        number = int(value) if value == value.to_integral_value() else float(value)
    else:
        text = str(value)
        if _INT.fullmatch(text):
            number = int(text)
        elif _FLOAT.fullmatch(text):
            number = float(text)
        else:
            # text: int() may still succeed (' 12', '1_0'), as Python's int() does
            try:
                iv = int(text)
            except ValueError:
                return (F_TRUTHY if text else 0), 0.0, 0, text == ""
            return F_INT_OK | (F_TRUTHY if text else 0), 0.0, _clamp(iv), False
    kind = F_NUMBER | (F_TRUTHY if number != 0 else 0)
    if isinstance(number, int):
        return kind | F_INT_OK, _as_float(number), _clamp(number), False
    if math.isfinite(number):
        return kind | F_INT_OK, number, _clamp(int(number)), False
    return kind, number, 0, False


def _clamp(v: int) -> int:
    return max(-_I64_MAX, min(_I64_MAX, v))


def _as_float(v: int) -> float:
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def encode_values(arr: pa.Array) -> tuple[list[Any], np.ndarray]:
    """Distinct values of ``arr`` and, per row, the index of its value (nulls -> None)."""
    if pa.types.is_null(arr.type):
        return [None], np.zeros(len(arr), dtype=np.int32)
    if pa.types.is_string_view(arr.type):
        arr = arr.cast(pa.large_string())
    if not pa.types.is_dictionary(arr.type):
        t = arr.type
        if not (
            pa.types.is_string(t)
            or pa.types.is_large_string(t)
            or pa.types.is_integer(t)
            or pa.types.is_floating(t)
            or pa.types.is_boolean(t)
            or pa.types.is_decimal(t)
            or pa.types.is_binary(t)
            or pa.types.is_large_binary(t)
        ):
            arr = arr.cast(pa.string())
        arr = pc.dictionary_encode(arr)
    uniques = [*arr.dictionary.to_pylist(), None]
    indices = arr.indices
    if indices.null_count:
        indices = pc.fill_null(indices, pa.scalar(len(uniques) - 1, indices.type))
    return uniques, as_numpy(indices).astype(np.int32, copy=False)


def _parse_python(arr: pa.Array) -> tuple[np.ndarray, ...]:
    """(kind, num, intv, missing) by Python's own rules, once per distinct value."""
    uniques, index = encode_values(arr)
    parsed = [parse_value(v) for v in uniques]
    kind = np.array([p[0] for p in parsed], dtype=np.uint8)
    num = np.array([p[1] for p in parsed], dtype=np.float64)
    intv = np.array([p[2] for p in parsed], dtype=np.int64)
    missing = np.array([p[3] for p in parsed], dtype=np.bool_)
    return kind[index], num[index], intv[index], missing[index]


@jit
def _parse_utf8(offsets, data, valid):
    """FORMAT §2 facts of each text, where they are certain without Python.

    Plain integer literals (up to 18 digits), empty texts and ASCII texts that cannot be
    integers are decided here; ``slow`` marks the rest (float literals, whitespace,
    underscores, non-ASCII, long numbers) for Python's exact ``float()``/``int()``.
    """
    n = len(offsets) - 1
    kind = np.zeros(n, dtype=np.uint8)
    num = np.zeros(n, dtype=np.float64)
    intv = np.zeros(n, dtype=np.int64)
    missing = np.zeros(n, dtype=np.bool_)
    slow = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        a = offsets[i]
        b = offsets[i + 1]
        if (valid is not None and not valid[i]) or a == b:
            missing[i] = True
            continue
        k = a
        negative = False
        if data[k] == 43 or data[k] == 45:  # + -
            negative = data[k] == 45
            k += 1
        digits = 0
        v = np.int64(0)
        while k < b and 48 <= data[k] <= 57:
            if digits < 18:
                v = v * 10 + (data[k] - 48)
            digits += 1
            k += 1
        if k == b and digits > 0:
            if digits > 18:
                slow[i] = True
                continue
            if negative:
                v = -v
            kind[i] = F_NUMBER | F_INT_OK | (F_TRUTHY if v != 0 else 0)
            num[i] = np.float64(v)
            intv[i] = v
            continue
        for q in range(a, b):
            ch = data[q]
            # '.', 'e', 'E' (maybe a float), '_', whitespace/control, non-ASCII
            if ch == 46 or ch == 101 or ch == 69 or ch == 95 or ch <= 32 or ch >= 127:
                slow[i] = True
                break
        if not slow[i]:
            kind[i] = F_TRUTHY  # an ASCII text that int() rejects
    return kind, num, intv, missing, slow


def parse_scalar(arr: pa.Array | None, n: int) -> ParsedField:
    """Parse one raw field column (None: the field is absent, missing for every case)."""
    if arr is None:
        return ParsedField(
            np.zeros(n, np.uint8), np.zeros(n), np.zeros(n, np.int64), np.ones(n, np.bool_), None
        )
    t = arr.type
    if pa.types.is_string_view(t):
        arr = arr.cast(pa.large_string())
        t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        offsets, data, valid = string_buffers(arr)
        kind, num, intv, missing, slow = _parse_utf8(offsets, data, valid)
        rows = np.flatnonzero(slow)
        if len(rows):
            k2, n2, i2, m2 = _parse_python(arr.take(pa.array(rows)))
            kind[rows], num[rows], intv[rows], missing[rows] = k2, n2, i2, m2
        return ParsedField(kind, num, intv, missing, arr)
    if pa.types.is_integer(t) and arr.null_count == 0:
        v = as_numpy(arr).astype(np.int64)
        kind = (F_NUMBER | F_INT_OK | np.where(v != 0, F_TRUTHY, 0)).astype(np.uint8)
        return ParsedField(kind, v.astype(np.float64), v, np.zeros(n, np.bool_), arr)
    return ParsedField(*_parse_python(arr), arr)


#: The two sets of input checks: ``format`` (the default) is exactly FORMAT.md §5 (what the
#: reference grouper checks; the conformance oracle is built with it) and notes the values outside
#: the plausibility bounds below without changing the group; ``strict`` makes such cases invalid.
VALUE_CHECKS = ("format", "strict")

#: drgkit's plausibility bounds, checked after the checks of FORMAT §5: with ``value_checks``
#: ``strict`` a case outside them is invalid, with ``format`` it is noted. Per case field:
#: (lowest, highest, must be a whole number), from the
#: meaning FORMAT §2 gives the field. Only values that are numbers (or texts ``int()`` accepts)
#: are checked: a text in these fields is FORMAT's business (it can make a rule fail with an
#: error). The reference grouper groups such cases; a payer may want them rejected.
#:
#: * ``age`` (years): a whole number from 0 to 150. ``-5``, ``45.5`` and ``1e20`` are invalid.
#: * ``age_days`` (age in days): a whole number from 0; with age 0 at most 366 (a child under a
#:   year). With age above 0 it may count all days of life, so it has no upper bound there.
#: * ``birth_weight`` (grams): from 0 to 10,000 (the heaviest newborns weigh about 7,000 g);
#:   fractions of a gram are a measurement, not an error.
#: * ``los`` (length of stay, days): from 0 to 36,600 (a century).
#: * ``icu_hours`` (hours in intensive care, optional): from 0 to 878,400 (a century of hours).
PLAUSIBLE: dict[str, tuple[float, float, bool]] = {
    "age": (0, 150, True),
    "age_days": (0, math.inf, True),
    "birth_weight": (0, 10_000, False),
    "los": (0, 36_600, False),
    "icu_hours": (0, 878_400, False),
}
_NEWBORN_MAX_DAYS = 366
_PLAUSIBLE_REASON = {
    "age": "age_implausible",
    "age_days": "age_days_implausible",
    "birth_weight": "birth_weight_implausible",
    "los": "los_implausible",
    "icu_hours": "icu_hours_implausible",
}


def as_text(p: ParsedField) -> ParsedField:
    """The same field read as **text** (a ruleset's ``text_fields``, FORMAT §2): never a
    number; ``int()`` works only on an integer literal text; truthy when non-empty. A typed
    number becomes its text (``1`` -> ``'1'``, ``1.0`` -> ``'1.0'``)."""
    if p.raw is None:
        return p

    def facts(value: Any) -> tuple[int, int]:
        text = value_text(value)
        kind = F_TRUTHY if text else 0
        try:
            return kind | F_INT_OK, _clamp(int(text))
        except ValueError:
            return kind, 0

    uniques, index = encode_values(p.raw)
    table = [facts(v) for v in uniques]
    kind = np.array([t[0] for t in table], dtype=np.uint8)[index]
    intv = np.array([t[1] for t in table], dtype=np.int64)[index]
    return ParsedField(kind, np.zeros(len(kind)), intv, p.missing, p.raw)


def _numeric(p: ParsedField) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(has a numeric value, the value, is whole) per case: a number, or a text int() takes."""
    is_number = (p.kind & F_NUMBER) != 0
    int_text = ~is_number & ((p.kind & F_INT_OK) != 0)
    value = np.where(is_number, p.num, p.intv.astype(np.float64))
    with np.errstate(invalid="ignore"):
        whole = int_text | (is_number & (np.floor(p.num) == p.num))
    return is_number | int_text, value, whole


def implausible(fields: Mapping[str, ParsedField]) -> list[tuple[str, np.ndarray, str]]:
    """The plausibility failures of :data:`PLAUSIBLE`, in check order: (reason code, mask of
    the failing cases, what is allowed, for the detail text). ``fields`` holds the parsed
    ``age``, ``age_days``, ``birth_weight`` and ``los``; a case fails at most the first."""
    out: list[tuple[str, np.ndarray, str]] = []
    age_has, age_value, _ = _numeric(fields["age"])
    for name, (low, high, whole_only) in PLAUSIBLE.items():
        has, value, whole = _numeric(fields[name])
        # NaN never reaches here (it is a missing value); inf fails the upper bound
        bad = has & ((value < low) | (value > high))
        if whole_only:
            bad |= has & ~whole
        allowed = (
            f"a whole number from {low} to {high:,}"
            if whole_only and high != math.inf
            else f"a whole number from {low}"
            if whole_only
            else f"from {low} to {high:,}"
        )
        if name == "age_days":
            newborn = age_has & (age_value == 0) & has & (value > _NEWBORN_MAX_DAYS)
            bad |= newborn
            allowed += f" (at most {_NEWBORN_MAX_DAYS} when age is 0)"
        out.append((_PLAUSIBLE_REASON[name], bad, allowed))
    return out


def parse_dates(arr: pa.Array | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Days since 1970-01-01 (int32) and a per-case flag: 0 fine, 1 missing, 2 not a date."""
    if arr is None:
        return np.zeros(n, dtype=np.int32), np.ones(n, dtype=np.int8)
    t = arr.type
    if pa.types.is_timestamp(t) or pa.types.is_date64(t):
        arr = arr.cast(pa.date32())
        t = arr.type
    if pa.types.is_date32(t):
        days = as_numpy(arr.cast(pa.int32()).fill_null(pa.scalar(0, pa.int32())))
        flag = np.where(as_numpy(arr.is_null()), 1, 0).astype(np.int8)
        return days.astype(np.int32), flag
    uniques, index = encode_values(arr)
    parsed = [_parse_date(v) for v in uniques]
    days = np.array([p[0] for p in parsed], dtype=np.int32)
    flag = np.array([p[1] for p in parsed], dtype=np.int8)
    return days[index], flag[index]


_EPOCH = dt.date(1970, 1, 1)


def _parse_date(value: Any) -> tuple[int, int]:
    if value is None or value == "":
        return 0, 1
    if isinstance(value, dt.datetime):
        return (value.date() - _EPOCH).days, 0
    if isinstance(value, dt.date):
        return (value - _EPOCH).days, 0
    text = str(value).strip()
    for fmt_len, parse in ((10, dt.date.fromisoformat), (8, _yyyymmdd)):
        try:
            head = text[:fmt_len].replace("/", "-") if fmt_len == 10 else text
            return (parse(head) - _EPOCH).days, 0
        except ValueError:
            continue
    return 0, 2


def _yyyymmdd(text: str) -> dt.date:
    if not re.fullmatch(r"[0-9]{8}", text):
        raise ValueError(text)
    return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))


# ------------------------------------------------------------------------------ code lists


def code_lists(
    arr: pa.Array | None,
    n: int,
    table: CodeTable,
    *,
    separators: str,
    empty_is_one: bool,
    field: str,
    source: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets int64[n+1], code ids int32, SUSPECT bits uint8[n]) of a diagnosis or procedure
    column.

    A text column is split on ``separators``; an empty text gives one empty code when
    ``empty_is_one`` (diagnoses: an empty principal) and an empty list otherwise (procedures).
    List columns are taken element by element; a null list is an empty list. Whitespace around
    a code is not part of it. A row's SUSPECT bits (:data:`drgkit._codes.SUSPECT`) mark unknown
    codes that look like a common mistake; :func:`code_hints` explains them.
    """
    empty_id = table.id("")
    no_flags = np.zeros(n, dtype=np.uint8)
    if arr is None or pa.types.is_null(arr.type):
        if empty_is_one:
            return (
                np.arange(n + 1, dtype=np.int64),
                np.full(n, empty_id, dtype=np.int32),
                no_flags,
            )
        return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int32), no_flags
    t = arr.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return table.split_and_map(arr, separators.encode("ascii"), empty_is_one, empty_id)
    if pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        arr = arr.cast(pa.large_list(t.value_type))
        t = arr.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        vt = t.value_type
        if pa.types.is_dictionary(vt):
            vt = vt.value_type
        if not (
            pa.types.is_string(vt)
            or pa.types.is_large_string(vt)
            or pa.types.is_string_view(vt)
            or pa.types.is_null(vt)
        ):
            raise CaseDataError(
                f"codes must be text, got a list of {vt}", file=source, column=field
            )
        if arr.null_count or pa.types.is_fixed_size_list(t):
            counted = pc.list_value_length(arr)
            lengths = as_numpy(pc.fill_null(counted, pa.scalar(0, counted.type)))
            values = pc.list_flatten(arr)
        else:
            offs = as_numpy(arr.offsets)
            lengths = np.diff(offs)
            values = arr.values.slice(offs[0], offs[-1] - offs[0])
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if pa.types.is_null(values.type):
            ids = np.full(len(values), empty_id, dtype=np.int32)
            return offsets, ids, no_flags
        ids, element_flags = table.map_strings(values, empty_id)
        flags = no_flags
        hit = np.flatnonzero(element_flags)
        if len(hit):
            # the row of each flagged element: the last offset at or before it
            rows = np.searchsorted(offsets, hit, side="right") - 1
            np.bitwise_or.at(flags, rows, element_flags[hit])
        return offsets, ids, flags
    raise CaseDataError(
        f"codes must be text ('|'-separated) or a list of texts, got {arr.type}",
        file=source,
        column=field,
    )


# ------------------------------------------------------------------------------ code hints


@attrs.frozen(slots=True)
class CodeHint:
    """Why one case's unknown code is probably a mistake, and what it would be once fixed."""

    kind: str  # a key of drgkit._codes.SUSPECT
    code: str  # the unknown code as written (whitespace trimmed)
    known: str  # a code the ruleset knows that the fix gives

    def text(self, what: str) -> str:
        if self.kind == "lower_case":
            return (
                f"{what} {self.code!r} is unknown but {self.known!r} is known: codes are "
                "case-sensitive"
            )
        mark = {"semicolon": "';'", "slash": "'/'", "whitespace": "a space or tab"}[self.kind]
        return (
            f"{what} {self.code!r} is unknown; it looks like codes separated by {mark} "
            f"({self.known!r} is known): codes are separated by '|' or ','"
        )


def _upper_cased(code: str) -> list[str]:
    """The spellings a lower-cased code may have had: all upper case, or all but the 'x' of
    an extension code (I10.x05, 96.0800x005)."""
    upper = code.upper()
    keep_x = code[:1].upper() + "".join(c if c == "x" else c.upper() for c in code[1:])
    return [upper] if keep_x == upper else [keep_x, upper]


def _fix(code: str, known: Mapping[str, int]) -> CodeHint | None:
    """The first fix that turns ``code`` into (a list holding) a code the ruleset knows."""
    for kind, pattern in (("semicolon", ";"), ("slash", "/"), ("whitespace", r"\s+")):
        parts = [p for p in re.split(pattern, code) if p]
        if len(parts) > 1:
            for part in parts:
                for spelling in (part, *_upper_cased(part)):
                    if spelling in known:
                        return CodeHint(kind, code, spelling)
    for spelling in _upper_cased(code):
        if spelling != code and spelling in known:
            return CodeHint("lower_case", code, spelling)
    return None


def code_hints(values: pa.Array, table: CodeTable, separators: str) -> list[CodeHint | None]:
    """For each value (the raw field of a row whose SUSPECT bits are set): the first unknown
    code that a common fix would make known, or None when no fix helps."""
    split = re.compile("[" + re.escape(separators) + "]")
    known = table.index
    out: list[CodeHint | None] = []
    for value in values.to_pylist():
        if value is None:
            out.append(None)
            continue
        codes = value if isinstance(value, list) else split.split(value)
        hint = None
        for code in codes:
            code = (code or "").strip()
            if code and code not in known:
                hint = _fix(code, known)
                if hint is not None:
                    break
        out.append(hint)
    return out
