"""The report as one self-contained HTML page: inline CSS, inline SVG charts, no script, no
font, no image, no link to anything outside the file (a Content-Security-Policy of
``default-src 'none'`` says so to the browser too). The same report gives the same bytes.

Every number cell carries its exact value in ``data-value`` next to the rounded text a person
reads, so that a test (or a curious user) can check the page against the indicator tables."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from decimal import Decimal
from html import escape
from typing import Any

import pyarrow as pa

from ._data import KEY_COLUMNS, Report
from ._format import column_kind, display
from ._labels import Labeller
from ._svg import bar_chart, diverging_bars, line_chart, quadrant_scatter

__all__ = ["TABLE_COLUMNS", "render_html"]

#: the columns each page table shows (when the table has them), after its key columns; the
#: Excel workbook has every column
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "summary": (
        "cases",
        "grouping_rate",
        "drg_count",
        "cmi",
        "cost_index",
        "time_index",
        "mean_cost",
        "mean_los",
        "total_cost",
        "payment",
        "gain_loss",
        "cost_growth",
    ),
    "units": (
        "cases",
        "grouping_rate",
        "drg_count",
        "cmi",
        "cost_index",
        "time_index",
        "mean_cost",
        "mean_los",
        "high_outlier_share",
        "low_outlier_share",
        "drug_share",
        "consumable_share",
        "low_risk_mortality",
        "readmission_rate",
        "total_cost",
        "payment",
        "gain_loss",
        "cost_growth",
        "light",
    ),
    "drgs": (
        "cases",
        "cmi",
        "cost_index",
        "time_index",
        "mean_cost",
        "mean_los",
        "total_cost",
        "payment",
        "gain_loss",
    ),
    "months": (
        "cases",
        "grouping_rate",
        "cmi",
        "cost_index",
        "time_index",
        "total_cost",
        "payment",
        "gain_loss",
    ),
    "mdcs": ("cases", "drg_count", "total_weight", "cmi", "total_cost", "payment", "gain_loss"),
    "warnings": ("cases", "indicator", "value", "regional", "light", "rule"),
    "targets": ("target", "scope", "scope_id", "indicator", "value", "min", "max", "met", "detail"),
    "what_if": (
        "cases",
        "moved",
        "payment_base",
        "payment_alt",
        "change",
        "regrouping",
        "casemix",
        "price",
        "outlier",
    ),
}

_KEYS = KEY_COLUMNS
#: cells shown as their row's indicator (a warning's value and regional value, a target's
#: value and bounds: a growth bound of 0.05 reads 5.00%)
_PER_ROW = ("value", "regional", "min", "max")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",
"Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;margin:24px auto;max-width:1100px;
color:#222;padding:0 16px;font-size:14px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;
padding-bottom:4px}.sub{color:#666;margin:0 0 16px}.note{color:#666;font-size:12px}
table{border-collapse:collapse;font-size:12px;margin:6px 0 4px;width:100%}
th,td{border-bottom:1px solid #eee;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#f5f6f8;position:sticky;top:0}td.key,th.key{text-align:left}
.scroll{overflow-x:auto}.charts{display:flex;flex-wrap:wrap;gap:24px}
figure{margin:0;flex:1 1 480px;min-width:0}
.light{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:4px}
.light-red{background:#d32f2f}.light-yellow{background:#f9a825}.light-green{background:#43a047}
svg.chart{max-width:100%;height:auto}footer{color:#888;font-size:11px;margin-top:32px}
"""


def _version() -> str:
    try:
        return importlib.metadata.version("drgkit")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        return "(source)"


def _raw(value: Any) -> str:
    """The exact value behind a cell: decimals as written, floats by their shortest form."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _cell(name: str, value: Any, kind: str, t: Labeller) -> str:
    if name == "indicator" and value is not None:
        # a warning detail names the indicator by its column: show it by its label
        return (
            f'<td class="key" data-column="indicator" data-value="{escape(value)}">'
            f"{escape(t(value))}</td>"
        )
    if name == "light":
        if value is None:
            return f'<td data-column="light" data-value="">{display(None, "text")}</td>'
        text = t(value)
        return (
            f'<td data-column="light" data-value="{escape(value)}">'
            f'<span class="light light-{escape(value)}"></span>{escape(text)}</td>'
        )
    if name in ("target", "scope") and value is not None:
        return (
            f'<td class="key" data-column="{name}" data-value="{escape(value)}">'
            f"{escape(t(value))}</td>"
        )
    if name == "met":
        text = display(None, "text") if value is None else t(f"met_{str(value).lower()}")
        raw = "" if value is None else str(value).lower()
        return f'<td data-column="met" data-value="{raw}">{escape(text)}</td>'
    if name == "rule" and value is not None:
        # the rule names its indicator by column: shown in the page's language
        return (
            f'<td class="key" data-column="rule" data-value="{escape(value)}">'
            f"{escape(t.rule(value))}</td>"
        )
    cls = ' class="key"' if kind == "text" else ""
    return (
        f'<td{cls} data-column="{escape(name)}" data-value="{escape(_raw(value))}">'
        f"{escape(display(value, kind))}</td>"
    )


def _table(
    name: str,
    table: pa.Table,
    columns: Sequence[str],
    t: Labeller,
    *,
    rows: Sequence[int] | None = None,
    row_labels: Sequence[str] | None = None,
    value_kinds: Sequence[str] | None = None,
) -> str:
    """An HTML table of ``table``'s key columns and ``columns`` (those it has), for ``rows``
    (default all, in order). ``value_kinds``: the kind of each row's ``value`` and ``regional``
    cells (a warning detail's value is a share in one row and an index in the next)."""
    keys = [k for k in _KEYS if k in table.column_names]
    shown = keys + [c for c in columns if c in table.column_names and c not in keys]
    kinds = {c: column_kind(c, table.schema.field(c).type) for c in shown}
    data = {c: table[c].to_pylist() for c in shown}
    head = "".join(
        f'<th class="key" data-column="{c}">{escape(t(c))}</th>'
        if c in keys
        else f'<th data-column="{c}">{escape(t(c))}</th>'
        for c in shown
    )
    if row_labels is not None:
        head = '<th class="key"></th>' + head
    out = [
        f'<div class="scroll"><table class="indicators" data-table="{name}">',
        f"<thead><tr>{head}</tr></thead><tbody>",
    ]
    for i in rows if rows is not None else range(table.num_rows):
        lead = f'<th class="key">{escape(row_labels[i])}</th>' if row_labels is not None else ""
        cells = "".join(
            _cell(
                c,
                data[c][i],
                value_kinds[i] if c in _PER_ROW and value_kinds else kinds[c],
                t,
            )
            for c in shown
        )
        out.append(f'<tr data-row="{i}">{lead}{cells}</tr>')
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _note(text: str) -> str:
    """What stands in for a chart that would have no mark (a DIP year has no CMI)."""
    return f'<p class="note">{escape(text)}</p>'


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _tip(name: str, value: Any, kind: str) -> str:
    return f"{name}: {display(value, kind)}"


def top_rows(table: pa.Table, column: str, n: int, key: str) -> list[int]:
    """Indices of the ``n`` rows with the largest ``|column|`` (ties by key), nulls left out."""
    values = table[column].to_pylist()
    keys = table[key].to_pylist()
    known = [i for i, v in enumerate(values) if v is not None]
    known.sort(key=lambda i: (-abs(Decimal(str(values[i]))), str(keys[i])))
    return known[:n]


def _light_order(table: pa.Table) -> list[int]:
    """Rows with a red, then a yellow light (each in key order): what needs looking at."""
    if "light" not in table.column_names:
        return []
    lights = table["light"].to_pylist()
    return [i for want in ("red", "yellow") for i, v in enumerate(lights) if v == want]


def render_html(report: Report, *, lang: str = "zh") -> str:
    """The report as one HTML page (a string; :meth:`Report.write` writes it)."""
    t = Labeller(lang, report.scheme)
    L = lambda key, **kw: escape(t(key, **kw))  # noqa: E731
    unit = report.unit_key
    title = (
        t("title_hospital", hospital=report.hospital) if report.hospital is not None else t("title")
    )
    region_cases = report.region["cases"][0].as_py() if "cases" in report.region.column_names else 0
    first, last = report.period or ("—", "—")
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">',
        # nothing may be fetched: a report opens on an isolated network as it does anywhere
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        '<p class="sub">'
        + L("subtitle", policy=report.policy, cases=f"{region_cases:,}", first=first, last=last)
        + "</p>",
    ]
    # summary: the region, and the hospital against it
    summary = report.region
    row_labels = [t("region")]
    if report.hospital_row is not None:
        summary = pa.concat_tables(
            [report.hospital_row.select(report.region.column_names), report.region]
        )
        row_labels = [f"{t('this_hospital')} {report.hospital}", t("region")]
    parts += [
        f"<h2>{L('summary')}</h2>",
        _table("summary", summary, TABLE_COLUMNS["summary"], t, row_labels=row_labels),
        f'<p class="note">{L("money_note")}</p>',
    ]
    # CMI by unit, against the region's CMI, beside the cost × time quadrant
    units = report.units
    charts = []
    if "cmi" in units.column_names and unit in units.column_names:
        cmis, keys = units["cmi"].to_pylist(), units[unit].to_pylist()
        order = sorted(
            (i for i, v in enumerate(cmis) if v is not None), key=lambda i: (-cmis[i], str(keys[i]))
        )
        region_cmi = report.region["cmi"][0].as_py()
        name = "cmi_by_department" if report.hospital is not None else "cmi_by_unit"
        chart = (
            _note(t("no_marks", what=t("cmi")))
            if not order
            else bar_chart(
                "cmi",
                t(name),
                [(str(keys[i]), cmis[i], _tip(str(keys[i]), cmis[i], "number4")) for i in order],
                reference=None
                if region_cmi is None
                else (f"{t('region')} {display(region_cmi, 'number4')}", region_cmi),
                width=520,
                height=360,
            )
        )
        charts.append(f"<figure><h2>{L(name)}</h2>{chart}</figure>")
    if {"cost_index", "time_index"} <= set(units.column_names):
        ci, ti, keys = (units[c].to_pylist() for c in ("cost_index", "time_index", unit))
        points = [
            (
                str(k),
                c,
                days,
                f"{k}: {t('cost_index')} {display(c, 'number4')}, "
                f"{t('time_index')} {display(days, 'number4')}",
            )
            for k, c, days in zip(keys, ci, ti, strict=True)
            if c is not None and days is not None
        ]
        chart = (
            _note(t("no_marks", what=t("quadrant")))
            if not points
            else quadrant_scatter(
                "quadrant",
                t("quadrant"),
                points,
                x_label=t("cost_index"),
                y_label=t("time_index"),
                width=500,
                height=360,
            )
        )
        charts.append(
            f"<figure><h2>{L('quadrant')}</h2>{chart}"
            f'<p class="note">{L("quadrant_note")}</p></figure>'
        )
    if charts:
        parts.append('<div class="charts">' + "\n".join(charts) + "</div>")
    # gain/loss by DRG, the largest first
    drgs = report.drgs
    if "gain_loss" in drgs.column_names and drgs["gain_loss"].null_count < drgs.num_rows:
        top = top_rows(drgs, "gain_loss", report.top, "drg")
        n = len(top)
        keys, gl = drgs["drg"].to_pylist(), drgs["gain_loss"].to_pylist()
        parts += [
            f"<h2>{L('gain_loss_by_drg', n=n)}</h2>",
            diverging_bars(
                "gain_loss",
                t("gain_loss_by_drg", n=n),
                [(str(keys[i]), float(gl[i]), _tip(str(keys[i]), gl[i], "money")) for i in top],
            ),
            f'<p class="note">{L("shown_of", shown=n, total=drgs.num_rows)}</p>',
            _table("drgs_top", drgs, TABLE_COLUMNS["drgs"], t, rows=top),
        ]
    # monthly trend
    months = report.months
    if months.num_rows and "month" in months.column_names:
        labels_ = [str(m) for m in months["month"].to_pylist()]
        series = [
            (t(f"legend_{c}"), [_num(v) for v in months[name].to_pylist()])
            for c, name in (("cost", "total_cost"), ("payment", "payment"))
            if name in months.column_names
        ]
        parts += [
            f"<h2>{L('monthly_trend')}</h2>",
            line_chart("trend", t("monthly_trend"), labels_, series),
            _table("months", months, TABLE_COLUMNS["months"], t),
        ]
    # case mix by MDC
    parts.append(f"<h2>{L('case_mix_by_mdc')}</h2>")
    if report.mdcs is None:
        parts.append(f'<p class="note">{L("not_available", column="mdc")}</p>')
    else:
        mdcs = report.mdcs
        keys, cases = mdcs["mdc"].to_pylist(), mdcs["cases"].to_pylist()
        parts += [
            bar_chart(
                "case_mix",
                t("case_mix_by_mdc"),
                [
                    (str(k), float(c), _tip(str(k), c, "count"))
                    for k, c in zip(keys, cases, strict=True)
                ],
            ),
            _table("mdcs", mdcs, TABLE_COLUMNS["mdcs"], t),
        ]
    # warnings: the red and yellow lights first (per rule when the details are there)
    lit_table = report.warning_details if report.warning_details is not None else report.warnings
    lit = _light_order(lit_table)
    parts.append(f"<h2>{L('warnings')}</h2>")
    if lit:
        kinds = None
        if "indicator" in lit_table.column_names:
            kinds = [
                column_kind(str(name), pa.float64()) for name in lit_table["indicator"].to_pylist()
            ]
        parts.append(
            _table("warnings", lit_table, TABLE_COLUMNS["warnings"], t, rows=lit, value_kinds=kinds)
        )
    else:
        parts.append(f'<p class="note">{L("no_warnings")}</p>')
    # the regional targets, met or missed
    if report.targets is not None and report.targets.num_rows:
        met = report.targets
        kinds = [column_kind(str(i), pa.float64()) for i in met["indicator"].to_pylist()]
        parts += [
            f"<h2>{L('targets')}</h2>",
            _table("targets", met, TABLE_COLUMNS["targets"], t, value_kinds=kinds),
        ]
    # the indicator table of the units, with their lights
    with_lights = units
    if "light" in report.warnings.column_names and "light" not in units.column_names:
        with_lights = units.append_column("light", report.warnings["light"])
    name = "indicators_department" if report.hospital is not None else "indicators_unit"
    parts += [f"<h2>{L(name)}</h2>", _table("units", with_lights, TABLE_COLUMNS["units"], t)]
    # what-if
    if report.what_if_drgs is not None:
        parts.append(f"<h2>{L('what_if')}</h2>")
        depts = report.what_if_departments
        if depts is not None:
            keys, change = depts["department"].to_pylist(), depts["change"].to_pylist()
            parts += [
                f"<h3>{L('what_if_department')}</h3>",
                diverging_bars(
                    "what_if",
                    t("change_by_department"),
                    [
                        (str(k), float(c), _tip(str(k), c, "money"))
                        for k, c in zip(keys, change, strict=True)
                        if c is not None
                    ],
                ),
                _table("what_if_departments", depts, TABLE_COLUMNS["what_if"], t),
            ]
        w = report.what_if_drgs
        top = top_rows(w, "change", report.top, "drg_base")
        parts += [
            f"<h3>{L('what_if_drg', n=len(top))}</h3>",
            f'<p class="note">{L("shown_of", shown=len(top), total=w.num_rows)}</p>',
            _table("what_if_drgs", w, TABLE_COLUMNS["what_if"], t, rows=top),
        ]
    parts += [f"<footer>{L('generated_by', version=_version())}</footer>", "</body></html>", ""]
    return "\n".join(parts)
