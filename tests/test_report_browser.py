"""The HTML report in a real headless Chromium: it loads with no console message and no network
request, every chart renders at its size with the expected number of marks, and every number
the page shows is the indicator table's value, rounded once for display.

One browser serves the whole module. Without Chromium (Debian's chromium and chromium-driver)
these tests skip, except under CI=true, where they fail: .ci/run installs it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from test_report_support import (
    Browser,
    fake_indicators,
    fake_warnings,
    require_chromium,
    settled_table,
)

from drgkit.report import build_report
from drgkit.report._format import column_kind
from drgkit.report._html import top_rows
from drgkit.report._labels import Labeller, label
from drgkit.schema import MONEY

#: every cell of every table of the page: table name, row index, column, text, exact value
_CELLS = """
const out = [];
for (const table of document.querySelectorAll('table[data-table]')) {
  for (const tr of table.querySelectorAll('tbody tr')) {
    for (const td of tr.querySelectorAll('td[data-column]')) {
      out.push([table.dataset.table, Number(tr.dataset.row), td.dataset.column,
                td.innerText.trim(), td.dataset.value]);
    }
  }
}
return out;
"""

#: each chart: its declared and rendered size, its marks and how many of them have an area
_CHARTS = """
return [...document.querySelectorAll('svg.chart')].map(svg => {
  const box = svg.getBoundingClientRect();
  const marks = [...svg.querySelectorAll('.mark')];
  return {name: svg.dataset.chart, declared: Number(svg.dataset.marks),
          width: box.width, height: box.height,
          attrWidth: Number(svg.getAttribute('width')),
          attrHeight: Number(svg.getAttribute('height')),
          marks: marks.length,
          drawn: marks.filter(m => {const b = m.getBBox(); return b.width > 0 && b.height > 0;})
                      .length,
          inside: marks.filter(m => {
              const b = m.getBoundingClientRect();
              return b.left >= box.left - 1 && b.right <= box.right + 1 &&
                     b.top >= box.top - 1 && b.bottom <= box.bottom + 1;}).length};
});
"""


@pytest.fixture(scope="module")
def browser():
    require_chromium()
    b = Browser()
    yield b
    b.close()


@pytest.fixture(scope="module")
def settled() -> pa.Table:
    return settled_table()


def _simulated(settled: pa.Table) -> pa.Table:
    """A per-case what-if table over the first 60 cases (next year pays 3% more, except FR23
    which loses 50 yuan a case)."""
    head = settled.slice(0, 60).filter(pa.compute.is_valid(settled.slice(0, 60)["drg"]))
    base = head["payment"].to_pylist()
    drgs = head["drg"].to_pylist()
    alt = [
        b - Decimal(50) if d == "FR23" else (b * Decimal("1.03")).quantize(Decimal("0.01"))
        for b, d in zip(base, drgs, strict=True)
    ]
    change = [a - b for a, b in zip(alt, base, strict=True)]
    zero = [Decimal(0)] * len(base)
    return pa.table(
        {
            "case_id": head["case_id"],
            "hospital_id": head["hospital_id"],
            "drg_base": head["drg"],
            "drg_alt": head["drg"],
            "payment_base": pa.array(base, MONEY),
            "payment_alt": pa.array(alt, MONEY),
            "change": pa.array(change, MONEY),
            "regrouping": pa.array(zero, MONEY),
            "casemix": pa.array(zero, MONEY),
            "price": pa.array(change, MONEY),
            "outlier": pa.array(zero, MONEY),
        }
    )


def _check_loads_offline(browser: Browser, path: Path) -> None:
    seen = browser.open(path)
    assert seen["console"] == [], seen["console"]
    # the page itself is the only thing the browser fetched
    assert seen["requests"] == [seen["url"]], seen["requests"]


def _shown(text: str, value, kind: str) -> None:
    """``text`` is ``value`` rounded once for display (checked by parsing the text back)."""
    if value is None:
        assert text == "—"
        return
    if kind == "money":
        assert Decimal(text.replace(",", "")) == value  # exact: nothing rounded
    elif kind == "count":
        assert int(text.replace(",", "")) == value
    elif kind == "percent":
        assert text.endswith("%")
        shown = Decimal(text[:-1].replace(",", ""))
        assert abs(shown - Decimal(repr(value)) * 100) <= Decimal("0.005")
    elif kind in ("number4", "number2", "decimal"):
        places = 2 if kind == "number2" else 4
        assert len(text.rpartition(".")[2]) == places, text
        shown = Decimal(text.replace(",", ""))
        assert abs(shown - Decimal(str(value))) <= Decimal(5).scaleb(-places - 1)
    else:
        assert text == str(value)


def _check_cells(browser: Browser, tables: dict[str, pa.Table], lang: str) -> int:
    cells = browser.js(_CELLS)
    checked = 0
    for name, row, column, text, raw in cells:
        if name not in tables:
            continue
        table = tables[name]
        value = table[column][row].as_py()
        if column == "light":
            assert raw == (value or "")
            assert text == (label(value, lang) if value else "—")
        elif column == "rule" and value is not None:
            # the exact rule rides along; the text names its indicator in the page's language
            assert raw == value
            assert text == Labeller(lang).rule(value)
        else:
            kind = column_kind(column, table.schema.field(column).type)
            _shown(text, value, kind)
            # and the exact value rides along
            if value is not None and kind in ("money", "count"):
                assert raw == str(value)
        checked += 1
    return checked


def _check_charts(browser: Browser, expected: dict[str, int]) -> None:
    charts = {c["name"]: c for c in browser.js(_CHARTS)}
    assert sorted(charts) == sorted(expected)
    for name, marks in expected.items():
        chart = charts[name]
        assert chart["declared"] == marks == chart["marks"], name
        assert chart["drawn"] == marks, name  # every mark has an area: not blank
        assert chart["inside"] == marks, name  # and is drawn inside its chart
        assert chart["width"] > 0 and chart["height"] > 0
        # the page is wide enough for each chart at its own size
        assert (chart["width"], chart["height"]) == (chart["attrWidth"], chart["attrHeight"])


def test_region_report_in_chromium(browser, settled, tmp_path):
    report = build_report(
        settled,
        "demo",
        indicators=fake_indicators,
        warnings=fake_warnings,
        what_if=_simulated(settled),
        top=6,
    )
    path = tmp_path / "report.html"
    report.write(path)
    _check_loads_offline(browser, path)
    units = report.units
    both = sum(
        1
        for c, t in zip(
            units["cost_index"].to_pylist(), units["time_index"].to_pylist(), strict=True
        )
        if c is not None and t is not None
    )
    _check_charts(
        browser,
        {
            "cmi": units.num_rows - units["cmi"].null_count,
            "quadrant": both,
            "gain_loss": 6,
            "trend": 2 * report.months.num_rows,
            "case_mix": report.mdcs.num_rows,
            "what_if": report.what_if_departments.num_rows,
        },
    )
    with_lights = units.append_column("light", report.warnings["light"])
    tables = {
        "summary": report.region,
        "units": with_lights,
        "drgs_top": report.drgs,
        "months": report.months,
        "mdcs": report.mdcs,
        "warnings": report.warnings,
        "what_if_departments": report.what_if_departments,
        "what_if_drgs": report.what_if_drgs,
    }
    checked = _check_cells(browser, tables, "zh")
    # every row of every full table is on the page, the top-N tables hold their N rows
    rows = {
        (n, r) for n, r, *_ in browser.js(_CELLS) if n in ("units", "months", "mdcs", "drgs_top")
    }
    assert {r for n, r in rows if n == "units"} == set(range(units.num_rows))
    assert {r for n, r in rows if n == "months"} == set(range(report.months.num_rows))
    assert {r for n, r in rows if n == "drgs_top"} == set(
        top_rows(report.drgs, "gain_loss", 6, "drg")
    )
    assert checked > 300
    title = browser.driver.title
    assert title == label("title", "zh")


def test_hospital_report_in_english(browser, settled, tmp_path):
    report = build_report(
        settled,
        "demo",
        hospital="H02",
        indicators=fake_indicators,
        warnings=fake_warnings,
        what_if=_simulated(settled),
    )
    path = tmp_path / "h02.html"
    report.write(path, lang="en")
    _check_loads_offline(browser, path)
    summary = pa.concat_tables(
        [report.hospital_row.select(report.region.column_names), report.region]
    )
    _check_cells(
        browser,
        {
            "summary": summary,
            "units": report.units.append_column("light", report.warnings["light"]),
            "what_if_drgs": report.what_if_drgs,
        },
        "en",
    )
    headings = browser.js("return [...document.querySelectorAll('h1,h2')].map(h => h.innerText)")
    assert headings[0] == "DRG monitoring report · hospital H02 (against the region)"
    assert "CMI by department" in headings
    assert "What-if: changes under next year's rules" in headings
    # the what-if covers this hospital's cases only
    sim = _simulated(settled)
    h02 = sum(1 for h in sim["hospital_id"].to_pylist() if h == "H02")
    assert sum(report.what_if_drgs["cases"].to_pylist()) == h02
    lead = browser.js(
        "return [...document.querySelectorAll('table[data-table=summary] tbody th')]"
        ".map(th => th.innerText)"
    )
    assert lead == ["This hospital H02", "Region"]


def test_demo_report_with_the_real_indicators(browser, tmp_path):
    """Settled demo cases, drgkit.monitoring's own indicators and lights: the page shows them."""
    import warnings

    import pyarrow.parquet as pq

    from drgkit import _demo
    from drgkit.registry import default_registry
    from drgkit.settlement import settle_file

    cases = tmp_path / "cases.parquet"
    pq.write_table(_demo.generate_cases(500, seed=11), cases)
    settled = tmp_path / "settled.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        settle_file(cases, settled, "demo", "demo")
    report = build_report(settled, default_registry().policy("demo"))
    path = tmp_path / "demo.html"
    report.write(path)
    _check_loads_offline(browser, path)
    units = report.units
    _check_charts(
        browser,
        {
            "cmi": units.num_rows - units["cmi"].null_count,
            "quadrant": sum(
                1
                for c, t in zip(
                    units["cost_index"].to_pylist(), units["time_index"].to_pylist(), strict=True
                )
                if c is not None and t is not None
            ),
            "gain_loss": min(
                report.top, report.drgs.num_rows - report.drgs["gain_loss"].null_count
            ),
            "trend": sum(
                report.months.num_rows - report.months[c].null_count
                for c in ("total_cost", "payment")
            ),
            "case_mix": report.mdcs.num_rows,
        },
    )
    tables = {
        "summary": report.region,
        "units": units.append_column("light", report.warnings["light"]),
        "drgs_top": report.drgs,
        "months": report.months,
        "mdcs": report.mdcs,
    }
    assert _check_cells(browser, tables, "zh") > 500
