"""Per-hospital amounts from a small CSV: budgets and amounts already paid in a period.

The file has a ``hospital_id`` and an ``amount`` column (yuan; other columns are ignored).
Every amount is read exactly into cents or the whole file is refused with a
:class:`~drgkit.errors.TableError` naming the file, row and column: nothing is rounded,
overwritten or skipped.
"""

from __future__ import annotations

import csv
import io
import os
from decimal import Decimal

from .._money import LIMIT_CENTS, OK, SUB_CENT, TOO_LARGE, cents_of
from ..errors import TableError

__all__ = ["read_amounts"]

ID, AMOUNT = "hospital_id", "amount"


def read_amounts(path: str | os.PathLike[str], what: str) -> dict[str, int]:
    """``hospital_id -> cents`` from the CSV at ``path``; ``what`` names the file in errors
    (e.g. ``"already-paid"``).

    Refused, with file, row and column: a missing ``hospital_id`` or ``amount`` column, a
    blank id, an id given twice, a blank amount or one that is not a plain decimal number
    (``NaN``, ``Infinity``, ``1,000``), fractions of a cent, a negative amount, and amounts
    beyond drgkit's exact bound. A missing or unreadable file raises the OS error.
    """
    raw = open(path, "rb").read()  # a small file: one row per hospital
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TableError(
            f"not UTF-8 text (byte {raw[exc.start]:#04x}); save the file as UTF-8",
            file=path,
            row=raw[: exc.start].count(b"\n") + 1,
        ) from None
    out: dict[str, int] = {}
    first_row: dict[str, int] = {}
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
        missing = [c for c in (ID, AMOUNT) if c not in header]
        if missing:
            raise TableError(
                f"the {what} file needs the columns {ID} and {AMOUNT}; "
                f"missing {', '.join(missing)} (found: "
                f"{', '.join(header) or 'no header'})",
                file=path,
                row=1,
            )
        for record in reader:
            row = reader.line_num
            if None in record:
                raise TableError(
                    f"more fields than the header has ({len(header)})", file=path, row=row
                )
            hospital = (record[ID] or "").strip()
            if not hospital:
                raise TableError("no hospital id", file=path, row=row, column=ID)
            if hospital in out:
                raise TableError(
                    f"hospital {hospital!r} is listed twice (first on row "
                    f"{first_row[hospital]}); give one amount per hospital",
                    file=path,
                    row=row,
                    column=ID,
                )
            out[hospital] = _cents(record[AMOUNT], path, row)
            first_row[hospital] = row
    except csv.Error as exc:
        raise TableError(f"not a readable CSV row: {exc}", file=path, row=reader.line_num) from None
    return out


def _cents(text: str | None, path: str | os.PathLike[str], row: int) -> int:
    """One amount in yuan, read exactly as a case file's money columns are (drgkit._money)."""
    value = (text or "").strip()
    if not value:
        raise TableError("no amount", file=path, row=row, column=AMOUNT)
    cents, flag = cents_of(value)
    if flag == TOO_LARGE:
        raise TableError(
            f"{value} is beyond drgkit's exact bound of {Decimal(LIMIT_CENTS) / 100:,.2f} yuan",
            file=path,
            row=row,
            column=AMOUNT,
        )
    if flag == SUB_CENT:
        raise TableError(
            f"{value} has fractions of a cent; amounts are never rounded",
            file=path,
            row=row,
            column=AMOUNT,
        )
    if flag != OK:
        raise TableError(f"not an amount in yuan: {text!r}", file=path, row=row, column=AMOUNT)
    if cents < 0:
        raise TableError(f"{value} is negative", file=path, row=row, column=AMOUNT)
    return cents
