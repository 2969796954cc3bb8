"""What a run reads besides the cases: the hospitals table (levels and coefficients, every
row checked), the policy and ruleset behind ids, and the rulesets a policy prices."""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pyarrow as pa

from .. import _cases
from .._io import open_cases
from .._money import MISSING, OK, TOO_LARGE, to_cents
from ..errors import CaseDataError
from ._policy import Policy, PolicyError
from ._price import PriceBook

__all__ = [
    "MAX_HOSPITAL_COEFFICIENT",
    "accepted_rulesets",
    "case_money",
    "parse_level",
    "read_hospitals",
    "rows_of",
]


def parse_level(value: Any) -> str | None:
    text = _cases.value_text(value).strip()
    if text == "":
        return None
    kind, num, iv, _missing = _cases.parse_value(text)
    if kind & _cases.F_NUMBER and num == iv:
        return str(iv)
    return text


def rows_of(drg: pa.Array, book: PriceBook) -> np.ndarray:
    uniques, index = _cases.encode_values(drg)
    table = np.array(
        [book.row_index.get(v, -1) if v is not None else -1 for v in uniques], dtype=np.int64
    )
    return table[index].copy()


#: the largest hospital coefficient accepted (a factor on the standard; far above any region's)
MAX_HOSPITAL_COEFFICIENT = Decimal(10)


def hospital_coefficient(value: Any, file: str | None, row: int | None) -> Decimal | None:
    """A hospital coefficient: an exact, finite number in (0, 10], or None when blank."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        number = value
    else:
        text = str(value).strip()
        if text == "":
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise CaseDataError(
                f"coefficient {value!r} is not a number", file=file, row=row, column="coefficient"
            )
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise CaseDataError(
                f"coefficient {value!r} is not a number", file=file, row=row, column="coefficient"
            ) from None
    if not number.is_finite() or number <= 0 or number > MAX_HOSPITAL_COEFFICIENT:
        raise CaseDataError(
            f"coefficient {value!r} must be a number above 0 and at most "
            f"{MAX_HOSPITAL_COEFFICIENT}",
            file=file,
            row=row,
            column="coefficient",
        )
    return number


def first_ragged_line(path: str, width: int) -> int | None:
    """The line of the first CSV record without ``width`` fields (the Arrow reader does not
    number the rows it cannot split); None when it cannot be found again."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            for record in reader:
                if record and len(record) != width:
                    return reader.line_num
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return None


def read_hospitals(source: Any, policy: Policy) -> dict[str, tuple[str | None, Decimal | None]]:
    """hospital id -> (level, coefficient) from a table with hospital_id, hospital_level
    and/or coefficient columns (CSV path, Arrow table, pandas…), or from such a mapping.

    Every row counts: a row the CSV parser cannot split, a blank or repeated hospital id and a
    coefficient that is not a positive finite number are errors naming file, row and column
    (rows are file lines, the header being row 1)."""
    if source is None:
        return {}
    if isinstance(source, Mapping):
        checked: dict[str, tuple[str | None, Decimal | None]] = {}
        for key, value in source.items():
            if not isinstance(value, tuple) or len(value) != 2:
                raise CaseDataError(
                    f"hospital {key}: expected (level, coefficient), got {value!r}",
                    file="<hospitals>",
                )
            level, coef = value
            checked[str(key)] = (level, hospital_coefficient(coef, "<hospitals>", None))
        return checked
    src = open_cases(source)
    table = pa.Table.from_batches(list(src.batches), schema=src.schema)
    if src.malformed:
        bad = src.malformed[0]
        raise CaseDataError(
            f"{len(src.malformed)} row(s) of the hospitals table could not be "
            f"split into its {bad.expected} columns (this one has "
            f"{bad.actual}: {bad.text!r})",
            file=src.name,
            row=bad.row
            if bad.row is not None and bad.row > 0
            else first_ragged_line(src.name, bad.expected),
        )
    names = table.column_names
    if "hospital_id" not in names:
        raise CaseDataError(
            f"the hospitals table needs a hospital_id column; found {', '.join(names)}",
            file=src.name,
            column="hospital_id",
        )
    level_col = next((c for c in ("hospital_level", "level") if c in names), None)
    out: dict[str, tuple[str | None, Decimal | None]] = {}
    first_row: dict[str, int] = {}
    for k, rec in enumerate(table.to_pylist(), start=2):
        raw = rec["hospital_id"]
        hid = "" if raw is None else _cases.value_text(raw).strip()
        if hid == "":
            raise CaseDataError(
                "the hospital id is empty", file=src.name, row=k, column="hospital_id"
            )
        if hid in out:
            raise CaseDataError(
                f"hospital {hid} is listed twice (first on row {first_row[hid]})",
                file=src.name,
                row=k,
                column="hospital_id",
            )
        coef = hospital_coefficient(rec.get("coefficient"), src.name, k)
        level = parse_level(rec[level_col]) if level_col else None
        out[hid] = (level, coef)
        first_row[hid] = k
    return out


def accepted_rulesets(policy: Policy) -> set[str] | None:
    """Ruleset ids whose groups the policy prices: its ``ruleset`` and ``[policy]
    accepted_rulesets``; None when the policy names no ruleset (nothing to check)."""
    if not policy.ruleset:
        return None
    extra = policy.config.get("policy", {}).get("accepted_rulesets", [])
    if not isinstance(extra, list) or not all(isinstance(x, str) and x for x in extra):
        raise PolicyError(
            f"policy.accepted_rulesets must be a list of ruleset ids, got {extra!r}",
            file=policy.path,
        )
    return {policy.ruleset, *extra}


def case_money(
    cols: Mapping[str, Any], n: int, policy: Policy, not_settled: Callable[[np.ndarray, str], None]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cost cents, cost flags, patient's share cents) of each case, one rule for both
    schemes: a cost that is missing, too large, not an amount or negative, and a self-pay
    that is not an amount, are passed to ``not_settled`` with their reason; under the claim
    method the patient's share is self_pay + own_pay (a missing part is 0)."""
    cost, cflag = to_cents(cols.get("total_cost"), n)
    not_settled(cflag == MISSING, "cost_missing")
    not_settled(cflag == TOO_LARGE, "cost_too_large")
    not_settled((cflag != OK) & (cflag != MISSING), "cost_invalid")
    not_settled((cflag == OK) & (cost < 0), "cost_negative")
    patient = np.zeros(n, dtype=np.int64)
    if policy.share_method == "claim":
        for name in ("self_pay", "own_pay"):
            if name in cols:
                cents, flag = to_cents(cols[name], n)
                not_settled((flag != OK) & (flag != MISSING), "patient_share_invalid")
                patient += np.where(flag == OK, cents, 0)
    return cost, cflag, patient
