"""The report as an Excel workbook: the same tables as the page, every column, one sheet each,
with frozen header rows, filters and number formats.

Written with XlsxWriter: a pure-Python writer with no dependency of its own, whose files are
the same bytes for the same input once the creation date is fixed (zip entries get a constant
timestamp), and which writes number formats, freeze panes and autofilters directly (openpyxl
reads them back in the tests).

Money stays exact. Excel keeps a number as a float64; a decimal of at most 15 significant digits
(DBL_DIG) turns into a float64 and back into the same decimal, so an amount below 10^13 yuan is
written as a number with the ``#,##0.00`` format and reads back to the cent. A larger amount (a
decimal128(18, 2) goes up to 10^16) would not, so it is written as text instead, exactly.
"""

from __future__ import annotations

import datetime
import math
from decimal import Decimal
from typing import Any

import pyarrow as pa

from ._data import KEY_COLUMNS, Report
from ._format import column_kind
from ._labels import Labeller

__all__ = ["EXCEL_FORMATS", "MAX_EXACT_DIGITS", "cell_kinds", "cell_text", "sheets", "write_xlsx"]

#: significant digits a float64 holds exactly in decimal (DBL_DIG)
MAX_EXACT_DIGITS = 15

#: number format per column kind (:func:`drgkit.report._format.column_kind`)
EXCEL_FORMATS = {
    "money": "#,##0.00",
    "decimal": "0.000000000",
    "count": "#,##0",
    "percent": "0.00%",
    "number2": "0.00",
    "number4": "0.0000",
}

#: a constant creation date: the same report is the same bytes
_CREATED = datetime.datetime(2000, 1, 1)


def sheets(report: Report) -> list[tuple[str, pa.Table]]:
    """The workbook's sheets in order, as (label key, table)."""
    summary = report.region
    if report.hospital_row is not None:
        summary = pa.concat_tables([report.hospital_row.select(summary.column_names), summary])
        # which row is the hospital and which the region (the page labels its rows too)
        summary = summary.add_column(0, "scope", pa.array(["hospital", "region"], pa.string()))
        summary = summary.add_column(
            0, "hospital_id", pa.array([report.hospital, None], pa.string())
        )
    # a hospital view's units are that hospital's departments: the sheet says so
    units = "sheet_units" if report.hospital is None else "sheet_departments"
    out = [("sheet_summary", summary), (units, _with_lights(report))]
    if report.departments is not None:
        out.append(("sheet_departments", report.departments))
    out += [("sheet_drgs", report.drgs), ("sheet_months", report.months)]
    if report.mdcs is not None:
        out.append(("sheet_mdcs", report.mdcs))
    out.append(("sheet_warnings", report.warnings))
    if report.warning_details is not None:
        out.append(("sheet_warning_details", report.warning_details))
    if report.targets is not None and report.targets.num_rows:
        out.append(("sheet_targets", report.targets))
    if report.what_if_departments is not None:
        out.append(("sheet_what_if_departments", report.what_if_departments))
    if report.what_if_drgs is not None:
        out.append(("sheet_what_if_drgs", report.what_if_drgs))
    return out


def _with_lights(report: Report) -> pa.Table:
    units = report.units
    for extra in ("light", "rule"):
        if extra in report.warnings.column_names and extra not in units.column_names:
            units = units.append_column(extra, report.warnings[extra])
    return units


def exact_in_float(value: Decimal) -> bool:
    """True when ``value`` survives a float64 round trip (at most 15 significant digits)."""
    digits = value.normalize().as_tuple().digits
    significant = len(digits) - next((i for i, d in enumerate(digits) if d), len(digits))
    return significant <= MAX_EXACT_DIGITS


def write_xlsx(report: Report, path: Any, *, lang: str = "zh") -> None:
    """Write the workbook to ``path`` (:meth:`Report.write` does it atomically)."""
    import xlsxwriter

    t = Labeller(lang, report.scheme)
    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_urls": False})
    try:
        wb.set_properties({"created": _CREATED, "title": t("title")})
        header = wb.add_format({"bold": True, "bg_color": "#F2F3F5", "bottom": 1})
        formats = {k: wb.add_format({"num_format": f}) for k, f in EXCEL_FORMATS.items()}
        text_right = wb.add_format({"align": "right"})
        for key, table in sheets(report):
            _sheet(wb.add_worksheet(t(key)), table, t, header, formats, text_right)
    finally:
        wb.close()


def cell_kinds(table: pa.Table, name: str) -> list[str]:
    """The kind of each cell of column ``name``: the column's, except a warning detail's
    ``value`` and ``regional``, which take their row's indicator's (a share reads as a
    percentage, as in the indicator tables and the page)."""
    if name in ("value", "regional") and "indicator" in table.column_names:
        return [column_kind(str(i), pa.float64()) for i in table["indicator"].to_pylist()]
    return [column_kind(name, table.schema.field(name).type)] * table.num_rows


def cell_text(name: str, value: Any, t: Labeller) -> str:
    """A text cell as the page shows it: lights, indicators, targets and scopes by their
    labels, a rule in the workbook's language, a target met or missed in words."""
    if isinstance(value, bool):
        return t(f"met_{str(value).lower()}")
    if name in ("light", "indicator", "target", "scope"):
        return t(value)
    if name == "rule":
        return t.rule(value) or ""
    return value


def _sheet(ws: Any, table: pa.Table, t: Labeller, header: Any, formats: dict, text_right: Any):
    names = table.column_names
    keys = next((j for j, n in enumerate(names) if n not in KEY_COLUMNS), len(names))
    for j, name in enumerate(names):
        title = t(name)
        ws.write_string(0, j, title, header)
        ws.set_column(j, j, max(10, min(40, len(title) * 2 + 2)))
        kinds = cell_kinds(table, name)
        for i, value in enumerate(table[name].to_pylist(), start=1):
            kind = kinds[i - 1]
            if value is None:
                ws.write_blank(i, j, None)
            elif kind in ("money", "decimal"):
                if exact_in_float(value):
                    ws.write_number(i, j, float(value), formats[kind])
                else:
                    ws.write_string(i, j, str(value), text_right)
            elif kind in formats and math.isfinite(value):
                ws.write_number(i, j, value, formats[kind])
            elif isinstance(value, (str, bool)):
                ws.write_string(i, j, cell_text(name, value, t))
            else:
                ws.write_string(i, j, str(value))
    # the header row stays in view, and so do the key columns when scrolling right
    ws.freeze_panes(1, min(keys, len(names) - 1) if keys and table.num_rows else 0)
    ws.autofilter(0, 0, max(table.num_rows, 1), max(len(names) - 1, 0))
