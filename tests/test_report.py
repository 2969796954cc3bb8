"""drgkit.report without a browser: display rounding, the Excel workbook read back cell by cell,
same bytes for the same input, the what-if sums, the hospital view and bad input."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import attrs
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from test_report_support import fake_indicators, fake_warnings, settled_table

from drgkit.errors import ArgumentError, CaseDataError
from drgkit.report import _data, _labels, build_report, label, render_html, what_if_tables
from drgkit.report._data import KEY_COLUMNS
from drgkit.report._format import column_kind, display
from drgkit.report._labels import Labeller
from drgkit.report._xlsx import EXCEL_FORMATS, cell_kinds, cell_text, exact_in_float, sheets
from drgkit.schema import MONEY

openpyxl = pytest.importorskip("openpyxl")


@pytest.fixture(scope="module")
def settled() -> pa.Table:
    return settled_table()


@pytest.fixture(scope="module")
def region(settled):
    return build_report(settled, "demo", indicators=fake_indicators, warnings=fake_warnings, top=5)


@pytest.fixture(scope="module")
def hospital(settled):
    return build_report(
        settled, "demo", hospital="H04", indicators=fake_indicators, warnings=fake_warnings
    )


# ----------------------------------------------------------------------------- display


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        (Decimal("1234567.5"), "money", "1,234,567.50"),
        (Decimal("-0.01"), "money", "-0.01"),
        (1234, "count", "1,234"),
        (0.125, "percent", "12.50%"),
        (0.000049999, "percent", "0.00%"),
        (2.00005, "number4", "2.0001"),  # half up from the float's shortest form
        (0.99994999, "number4", "0.9999"),
        (9.125, "number2", "9.13"),
        (None, "money", "—"),
        (float("nan"), "number4", "—"),
        (Decimal("12.345678901"), "decimal", "12.3457"),
    ],
)
def test_display_rounds_once_half_up(value, kind, text):
    assert display(value, kind) == text


def test_column_kinds_follow_type_and_name():
    assert column_kind("payment", MONEY) == "money"
    assert column_kind("total_weight", pa.decimal128(38, 9)) == "decimal"
    assert column_kind("cases", pa.int64()) == "count"
    assert column_kind("cost_growth", pa.float64()) == "percent"
    assert column_kind("readmission_rate", pa.float64()) == "percent"
    assert column_kind("cmi", pa.float64()) == "number4"
    assert column_kind("mean_los", pa.float64()) == "number2"
    assert column_kind("hospital_id", pa.string()) == "text"


def test_labels_in_both_languages():
    assert label("cmi_by_unit", "zh") == "各医院 CMI"
    assert label("cmi_by_unit", "en") == "CMI by hospital"
    assert label("gain_loss_by_drg", "en", n=7) == "Gain/loss by DRG (top 7 by size)"
    assert label("status_ok", "en") == "Status: grouped"
    assert label("status_plugin", "zh") == "状态：plugin"
    assert label("plugin_column", "zh") == "plugin_column"


# ----------------------------------------------------------------------------- the page


def test_page_is_self_contained_and_the_same_bytes(region, tmp_path):
    first = render_html(region)
    assert first == render_html(region)
    # nothing outside the file: no script, no link, no source, no CSS url(); the only URL is
    # the SVG namespace, which is a name, never fetched
    assert "<script" not in first
    assert not re.search(r"\b(src|href)=", first)
    assert "url(" not in first and "@import" not in first
    assert set(re.findall(r"https?://[^\s\"'<>]+", first)) == {"http://www.w3.org/2000/svg"}
    assert "default-src 'none'" in first
    region.write(tmp_path / "a.html")
    region.write(tmp_path / "b.html")
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()
    assert (tmp_path / "a.html").read_text(encoding="utf-8") == first


def test_page_language(region):
    zh, en = render_html(region), render_html(region, lang="en")
    assert '<html lang="zh-CN">' in zh and "各医院 CMI" in zh and "费用消耗指数" in zh
    assert '<html lang="en">' in en and "CMI by hospital" in en and "Cost index" in en
    assert "各医院" not in en and "费用消耗指数" not in en
    with pytest.raises(ValueError, match="lang"):
        render_html(region, lang="fr")


def test_page_marks_every_chart(region):
    page = render_html(region)
    charts = dict(re.findall(r'data-chart="(\w+)" data-marks="(\d+)"', page))
    units = region.units
    assert int(charts["cmi"]) == units.num_rows - units["cmi"].null_count
    assert int(charts["gain_loss"]) == 5  # top=5 of 8 DRGs
    assert int(charts["trend"]) == 2 * region.months.num_rows
    assert int(charts["case_mix"]) == region.mdcs.num_rows
    for name, marks in charts.items():
        body = page.split(f'data-chart="{name}"', 1)[1].split("</svg>", 1)[0]
        assert body.count('class="mark"') == int(marks), name


def test_gain_loss_shows_the_largest_drgs(region):
    page = render_html(region)
    table = page.split('data-table="drgs_top"', 1)[1].split("</table>", 1)[0]
    shown = re.findall(r'data-column="drg" data-value="([^"]*)"', table)
    by_size = sorted(
        zip(region.drgs["drg"].to_pylist(), region.drgs["gain_loss"].to_pylist(), strict=True),
        key=lambda kv: (-abs(kv[1]), kv[0]),
    )
    assert shown == [k for k, _ in by_size[:5]]


def test_warnings_list_red_before_yellow(region):
    page = render_html(region)
    table = page.split('data-table="warnings"', 1)[1].split("</table>", 1)[0]
    lights = re.findall(r'data-column="light" data-value="([^"]*)"', table)
    expected = region.warnings["light"].to_pylist()
    assert lights == ["red"] * expected.count("red") + ["yellow"] * expected.count("yellow")
    assert lights  # the generated data has costlier hospitals


# ----------------------------------------------------------------------------- the workbook


def test_workbook_cell_by_cell(region, tmp_path):
    path = tmp_path / "report.xlsx"
    region.write(path, lang="en")
    wb = openpyxl.load_workbook(path)
    expected = sheets(region)
    assert wb.sheetnames == [label(key, "en") for key, _ in expected]
    for (_key, table), ws in zip(expected, wb.worksheets, strict=True):
        names = table.column_names
        header = [c.value for c in ws[1]]
        assert header == [label(n, "en") for n in names]
        assert ws.max_row == table.num_rows + 1
        keys = 0
        while keys < len(names) and names[keys] in KEY_COLUMNS:
            keys += 1
        assert ws.freeze_panes == f"{openpyxl.utils.get_column_letter(keys + 1)}2"
        last = openpyxl.utils.get_column_letter(len(names))
        assert ws.auto_filter.ref == f"A1:{last}{table.num_rows + 1}"
        for j, name in enumerate(names, start=1):
            kinds = cell_kinds(table, name)
            for i, value in enumerate(table[name].to_pylist(), start=2):
                kind = kinds[i - 2]
                cell = ws.cell(row=i, column=j)
                if value is None:
                    assert cell.value is None, (ws.title, name, i)
                elif kind in ("money", "decimal"):
                    # a float64 of ≤ 15 significant digits gives back the exact decimal
                    assert isinstance(cell.value, (int, float))  # 39.00 reads back as 39
                    assert Decimal(repr(cell.value)) == value, (ws.title, name, i)
                    assert cell.number_format == EXCEL_FORMATS[kind]
                elif kind in ("percent", "number2", "number4"):
                    # a ratio is display only; Excel keeps 15 significant digits of a float
                    assert cell.value == pytest.approx(value, rel=1e-15, abs=0), (ws.title, name)
                    assert cell.number_format == EXCEL_FORMATS[kind]
                elif kind == "text":
                    assert cell.value == cell_text(name, value, Labeller("en"))
                else:
                    assert cell.value == value and isinstance(cell.value, int), (ws.title, name)
                    assert cell.number_format == EXCEL_FORMATS[kind]


def test_workbook_same_bytes(region, tmp_path):
    region.write(tmp_path / "a.xlsx")
    region.write(tmp_path / "b.xlsx")
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()


def test_money_beyond_float_precision_is_written_as_text(region, tmp_path):
    big = Decimal("12345678901234.56")  # 16 significant digits: no float64 holds it
    assert not exact_in_float(big)
    assert exact_in_float(Decimal("9999999999999.99"))
    assert exact_in_float(Decimal("1234.500000000"))  # trailing zeros are not digits
    units = region.units.set_column(
        region.units.column_names.index("total_cost"),
        "total_cost",
        pa.array([big] + [Decimal("1.10")] * (region.units.num_rows - 1), MONEY),
    )
    path = tmp_path / "big.xlsx"
    attrs.evolve(region, units=units).write(path)
    ws = openpyxl.load_workbook(path)[label("sheet_units", "zh")]
    column = units.column_names.index("total_cost") + 1
    assert ws.cell(row=2, column=column).value == "12345678901234.56"
    assert ws.cell(row=3, column=column).value == 1.1


def test_report_of_a_file_is_the_report_of_its_table(settled, region, tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "settled.parquet"
    pq.write_table(settled, path)
    from_file = build_report(
        path, "demo", indicators=fake_indicators, warnings=fake_warnings, top=5
    )
    assert render_html(from_file) == render_html(region)
    assert region.period == ("2024-01", "2024-12")
    # and the what-if finds the departments in the file
    by_dept, _ = what_if_tables(_simulated(), pq.read_table(path))
    with_file = build_report(
        path, "demo", what_if=_simulated(), indicators=fake_indicators, warnings=fake_warnings
    )
    assert with_file.what_if_departments.equals(by_dept)


def test_one_year_against_the_year_before(settled):
    from datetime import date

    shifted = settled.set_column(
        settled.column_names.index("discharge_date"),
        "discharge_date",
        pa.array(
            [
                d.replace(year=2023) if i % 3 == 0 else d
                for i, d in enumerate(settled["discharge_date"].to_pylist())
            ],
            pa.date32(),
        ),
    )
    seen = []

    def recording(table, by=(), *, previous=None, **kw):
        seen.append((table.num_rows, None if previous is None else previous.num_rows))
        return fake_indicators(table, by)

    report = build_report(shifted, "demo", year=2024, indicators=recording, warnings=fake_warnings)
    in_2023 = sum(1 for d in shifted["discharge_date"].to_pylist() if d.year == 2023)
    assert report.region["cases"].to_pylist() == [shifted.num_rows - in_2023]
    assert set(seen) == {(shifted.num_rows - in_2023, in_2023)}
    assert report.period[0] >= "2024-01"
    # a given previous wins; a year without cases is an error
    seen.clear()
    build_report(
        shifted,
        "demo",
        year=2024,
        previous=settled.slice(0, 3),
        indicators=recording,
        warnings=fake_warnings,
    )
    assert {p for _, p in seen} == {3}
    with pytest.raises(ArgumentError, match="discharged in 2019"):
        build_report(shifted, "demo", year=2019, indicators=recording, warnings=fake_warnings)
    assert date(2024, 1, 1)  # the dates above are real dates


def test_dip_report_names_packets_and_leaves_out_what_it_cannot_draw(settled, tmp_path):
    """Under a DIP policy the 'drg' key holds packets, and without RW there is no CMI: a note
    stands where the chart would be empty."""

    class DipPolicy:
        id, method = "dip-x", "dip"

    no_rw = settled.set_column(
        settled.column_names.index("rw"), "rw", pa.nulls(settled.num_rows, pa.decimal128(18, 9))
    )
    report = build_report(no_rw, DipPolicy(), indicators=fake_indicators, warnings=fake_warnings)
    assert report.scheme == "dip"
    page = render_html(report)
    assert "<h1>DIP 运行监测报告</h1>" in page and "病种盈亏" in page
    assert 'data-chart="cmi"' not in page and "本数据无法计算CMI。" in page
    assert '<th class="key" data-column="drg">病种</th>' in page
    assert 'data-chart="quadrant"' in page  # the indices need no RW
    assert "DIP packet (top" in render_html(report, lang="en")
    report.write(tmp_path / "dip.xlsx", lang="en")
    assert "Packets" in openpyxl.load_workbook(tmp_path / "dip.xlsx").sheetnames


def test_browser_tests_fail_on_ci_without_chromium(monkeypatch):
    import test_report_support as support

    monkeypatch.setattr(support, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium"):
        support.require_chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no Chromium"):
        support.require_chromium()


def test_unknown_suffix_is_refused(region, tmp_path):
    with pytest.raises(ArgumentError, match=r"\.html or \.xlsx"):
        region.write(tmp_path / "report.pdf")


# ----------------------------------------------------------------------------- hospital view


def test_hospital_view_is_one_hospital_against_the_region(settled, hospital):
    rows = [r for r in settled.to_pylist() if r["hospital_id"] == "H04"]
    assert hospital.unit_key == "department"
    assert hospital.hospital_row["cases"].to_pylist() == [len(rows)]
    assert hospital.region["cases"].to_pylist() == [settled.num_rows]
    assert sum(hospital.units["cases"].to_pylist()) == len(rows)
    assert sum(hospital.drgs["cases"].to_pylist()) == len(rows)
    assert sum(hospital.months["cases"].to_pylist()) == len(rows)
    # the index is against the region's means: computed over all cases, then narrowed
    whole = fake_indicators(settled, ("hospital_id",))
    h04 = whole["hospital_id"].to_pylist().index("H04")
    assert hospital.hospital_row["cost_index"][0].as_py() == whole["cost_index"][h04].as_py()
    assert (
        hospital.hospital_row["cost_index"][0].as_py()
        != fake_indicators(settled.filter(pa.compute.equal(settled["hospital_id"], "H04")))[
            "cost_index"
        ][0].as_py()
    )
    page = render_html(hospital, lang="en")
    assert "hospital H04 (against the region)" in page
    assert "CMI by department" in page and "This hospital H04" in page


def test_hospital_lights_are_against_the_region(settled):
    """The lights of a hospital's departments are set over every hospital's departments, so
    that a relative rule ('20% above the regional rate') compares with the region."""
    given = []

    def recording(table, policy=None):
        given.append(table.num_rows)
        assert "hospital_id" in table.column_names
        return fake_warnings(table)

    report = build_report(
        settled, "demo", hospital="H04", indicators=fake_indicators, warnings=recording
    )
    every = fake_indicators(settled, ("hospital_id", "department")).num_rows
    assert given == [every] and every > report.units.num_rows
    assert report.warnings.drop_columns(["light", "rule"]).equals(report.units)


def test_unknown_hospital_is_an_error(settled):
    with pytest.raises(ArgumentError, match="'H99' has no case"):
        build_report(
            settled, "demo", hospital="H99", indicators=fake_indicators, warnings=fake_warnings
        )


def test_empty_settled_table_is_an_error(settled):
    with pytest.raises(CaseDataError, match="no cases"):
        build_report(
            settled.slice(0, 0), "demo", indicators=fake_indicators, warnings=fake_warnings
        )


# ----------------------------------------------------------------------------- what-if


def _simulated() -> pa.Table:
    """A per-case simulate table (--cases-out) by hospital_id, four cases."""
    m = lambda *v: pa.array([Decimal(x) for x in v], MONEY)  # noqa: E731
    return pa.table(
        {
            "case_id": ["C00000", "C00001", "C00002", "C00005"],
            "hospital_id": ["H01", "H02", "H03", "H01"],
            "drg_base": ["FM19", "FM19", "IC29", "FR23"],
            "drg_alt": ["FM19", "FM13", "IC29", None],
            "payment_base": m("100.00", "200.00", "300.00", "50.05"),
            "payment_alt": m("110.00", "150.00", "300.00", "40.00"),
            "change": m("10.00", "-50.00", "0.00", "-10.05"),
            "regrouping": m("0.00", "-60.00", "0.00", "-10.05"),
            "casemix": m("0.00", "0.00", "0.00", "0.00"),
            "price": m("10.00", "10.00", "0.00", "0.00"),
            "outlier": m("0.00", "0.00", "0.00", "0.00"),
        }
    )


def test_what_if_sums_per_department_and_drg(settled):
    depts = dict(
        zip(settled["case_id"].to_pylist(), settled["department"].to_pylist(), strict=True)
    )
    by_dept, by_drg = what_if_tables(_simulated(), settled)
    rows = {r["drg_base"]: r for r in by_drg.to_pylist()}
    assert rows["FM19"]["cases"] == 2 and rows["FM19"]["moved"] == 1
    assert rows["FM19"]["change"] == Decimal("-40.00")
    assert rows["FM19"]["payment_alt"] == Decimal("260.00")
    assert rows["FR23"]["moved"] == 1  # a DRG lost (null) counts as a move
    assert rows["FR23"]["change"] == Decimal("-10.05")
    assert by_drg.schema.field("change").type == MONEY
    expected: dict[str, Decimal] = {}
    for case, change in (
        ("C00000", "10.00"),
        ("C00001", "-50.00"),
        ("C00002", "0"),
        ("C00005", "-10.05"),
    ):
        expected[depts[case]] = expected.get(depts[case], Decimal(0)) + Decimal(change)
    got = dict(zip(by_dept["department"].to_pylist(), by_dept["change"].to_pylist(), strict=True))
    assert got == expected
    assert by_dept["department"].to_pylist() == sorted(expected)
    # one hospital's cases only
    _, only = what_if_tables(_simulated(), settled, hospital="H01")
    assert sorted(only["drg_base"].to_pylist()) == ["FM19", "FR23"]
    assert sum(only["cases"].to_pylist()) == 2


def test_what_if_matches_rows_one_for_one_despite_duplicated_ids(settled):
    """simulate --cases-out is row for row the settled cases, a duplicated case id included
    (the demo data has some); otherwise a duplicated id cannot be matched and says so."""
    head = settled.slice(0, 4)
    ids = ["D1", "D1", "D2", "D3"]
    twin = head.set_column(0, "case_id", pa.array(ids))
    sim = _simulated().set_column(0, "case_id", pa.array(ids)).drop_columns(["hospital_id"])
    by_dept, _ = what_if_tables(sim, twin)
    expected: dict[str, Decimal] = {}
    for dept, change in zip(head["department"].to_pylist(), sim["change"].to_pylist(), strict=True):
        expected[dept] = expected.get(dept, Decimal(0)) + change
    got = by_dept.to_pydict()
    assert dict(zip(got["department"], got["change"], strict=True)) == expected
    with pytest.raises(CaseDataError, match=r"'D1' appears more than once.*--by department"):
        what_if_tables(sim.slice(1), twin)


def test_what_if_from_a_csv_per_key_table(tmp_path):
    table = pa.table(
        {
            "department": ["骨科", "心内科", "骨科"],
            "drg": ["IC29", "FM19", "IE13"],
            "cases": [3, 4, 5],
            "payment_base": ["1.00", "2.00", "3.10"],
            "payment_alt": ["1.50", "2.00", "3.00"],
            "change": ["0.50", "0.00", "-0.10"],
            "regrouping": ["0", "0", "0"],
            "casemix": ["0.50", "0", "0"],
            "price": ["0", "0", "-0.10"],
            "outlier": ["0", "0", "0"],
        }
    )
    path = tmp_path / "sim.csv"
    pacsv.write_csv(table, path)
    by_dept, by_drg = what_if_tables(path)
    assert by_dept.to_pydict()["cases"] == [4, 8]  # 心内科, 骨科 in text order
    assert by_dept.to_pydict()["change"] == [Decimal("0.00"), Decimal("0.40")]
    assert by_drg["drg_base"].to_pylist() == ["FM19", "IC29", "IE13"]
    assert "moved" not in by_drg.column_names


def test_what_if_errors_name_the_file(tmp_path):
    path = tmp_path / "not-simulate.csv"
    path.write_text("case_id,payment\nC1,1.00\n", encoding="utf-8")
    with pytest.raises(CaseDataError, match=r"not-simulate\.csv.*payment_base"):
        what_if_tables(path)
    bad = tmp_path / "bad.csv"
    pacsv.write_csv(_simulated().set_column(4, "payment_base", pa.array(["1.001"] * 4)), bad)
    with pytest.raises(CaseDataError, match=r"bad\.csv.*payment_base"):
        what_if_tables(bad)


def test_what_if_section_in_the_report(settled):
    report = build_report(
        settled,
        "demo",
        what_if=_simulated(),
        indicators=fake_indicators,
        warnings=fake_warnings,
    )
    page = render_html(report, lang="en")
    assert "What-if: changes under next year" in page
    assert 'data-table="what_if_departments"' in page and 'data-table="what_if_drgs"' in page
    names = [label(key, "zh") for key, _ in sheets(report)]
    assert names[-2:] == ["模拟-科室", "模拟-DRG"]


def test_written_report_path(region, tmp_path):
    target = Path(tmp_path / "out.html")
    region.write(target)
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_lights_indicators_and_rules_read_in_the_report_language(tmp_path):
    """The workbook names lights and indicators as the page does (not 'green', 'cost_growth'
    in a Chinese workbook), a warning detail's value is formatted as its indicator (a growth
    is a percentage, as in the indicator tables), and a rule's text names its indicator by
    label in both."""
    import warnings

    import pyarrow.parquet as pq

    from drgkit import _demo
    from drgkit.registry import default_registry
    from drgkit.settlement import settle_file

    cases = tmp_path / "cases.parquet"
    pq.write_table(_demo.generate_cases(400, seed=11), cases)
    real = tmp_path / "settled.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        settle_file(cases, real, "demo", "demo")
    policy = default_registry().policy("demo")
    report = build_report(real, policy, year=2024)
    details = report.warning_details
    assert details is not None and "cost_growth" in details["indicator"].to_pylist()
    path = tmp_path / "zh.xlsx"
    report.write(path)
    ws = openpyxl.load_workbook(path)[label("sheet_warning_details", "zh")]
    header = [c.value for c in ws[1]]
    col = {name: header.index(label(name, "zh")) + 1 for name in ("indicator", "value", "light")}
    col["rule"] = header.index(label("rule", "zh")) + 1
    for i, want in enumerate(details.to_pylist(), start=2):
        assert ws.cell(i, col["indicator"]).value == label(want["indicator"], "zh")
        assert ws.cell(i, col["light"]).value == label(want["light"], "zh")
        rule = ws.cell(i, col["rule"]).value
        assert want["indicator"] not in rule and label(want["indicator"], "zh") in rule
        assert "yellow >" not in rule and "× regional" not in rule
        fmt = ws.cell(i, col["value"]).number_format
        percent = want["indicator"].endswith(("_rate", "_growth", "_share", "_mortality"))
        assert fmt == (EXCEL_FORMATS["percent"] if percent else EXCEL_FORMATS["number4"])
    page = render_html(report)
    shown = re.findall(
        r'<td class="key" data-column="rule" data-value="([^"]*)">([^<]*)</td>', page
    )
    assert shown
    for raw, text in shown:
        assert raw.split(" ")[0].rstrip(":") in _labels.LABELS  # the exact rule is kept
        assert not re.search(r"\b(cost_growth|readmission_rate|yellow|red >)", text), text


def test_one_year_says_how_many_cases_have_no_date_and_refuses_text_dates(settled):
    from drgkit._io import DataWarning

    dates = settled["discharge_date"].to_pylist()
    undated = settled.set_column(
        settled.column_names.index("discharge_date"),
        "discharge_date",
        pa.array([None if i < 3 else d for i, d in enumerate(dates)], pa.date32()),
    )
    with pytest.warns(DataWarning, match="3 case\\(s\\) without a discharge_date"):
        report = build_report(
            undated, "demo", year=2024, indicators=fake_indicators, warnings=fake_warnings
        )
    assert report.region["cases"].to_pylist() == [settled.num_rows - 3]
    text = settled.set_column(
        settled.column_names.index("discharge_date"),
        "discharge_date",
        pa.array([d.isoformat() for d in dates]),
    )
    with pytest.raises(CaseDataError, match="not a date"):
        build_report(text, "demo", year=2024, indicators=fake_indicators, warnings=fake_warnings)


def test_a_what_if_table_by_hospital_only_says_what_to_give_instead():
    by_hospital = pa.table(
        {
            "hospital_id": ["H01"],
            "cases": pa.array([3], pa.int64()),
            **{c: pa.array([Decimal("1.00")], MONEY) for c in _data._WHAT_IF_MONEY},
        }
    )
    with pytest.raises(CaseDataError, match="--cases-out FILE"):
        what_if_tables(by_hospital)


def test_the_regional_targets_are_shown_met_or_missed(tmp_path):
    """The policy's targets (issue 13 item 6: cost growth ≤ 5%, cost per case down ≥ 8%,
    cost difference coefficient 0.8–1.2) are in the page and the workbook, met or missed in
    words, exactly as drgkit.monitoring.targets decides them."""
    import warnings

    import pyarrow.parquet as pq

    from drgkit import _demo, monitoring
    from drgkit.registry import default_registry
    from drgkit.settlement import settle_file

    cases = tmp_path / "cases.parquet"
    pq.write_table(_demo.generate_cases(400, seed=11), cases)
    real = tmp_path / "settled.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        settle_file(cases, real, "demo", "demo")
        report = build_report(real, default_registry().policy("demo"), year=2024)
    met = report.targets
    assert met is not None
    want = monitoring.targets(report.region, report.units, rules=monitoring.default_targets())
    assert met.to_pylist() == want.to_pylist()
    assert {"region", "hospital"} <= set(met["scope"].to_pylist())
    page = render_html(report)
    table = page.split('data-table="targets"', 1)[1].split("</table>", 1)[0]
    shown = re.findall(r'data-column="met" data-value="([^"]*)">([^<]*)<', table)
    words = {"true": "达成", "false": "未达成", "": "—"}
    assert shown == [
        ("" if m is None else str(m).lower(), words["" if m is None else str(m).lower()])
        for m in met["met"].to_pylist()
    ]
    assert "total_cost_growth" not in re.sub(r'data-value="[^"]*"', "", table)
    path = tmp_path / "r.xlsx"
    report.write(path, lang="en")
    ws = openpyxl.load_workbook(path)[label("sheet_targets", "en")]
    header = [c.value for c in ws[1]]
    col = header.index(label("met", "en")) + 1
    got = [ws.cell(i, col).value for i in range(2, met.num_rows + 2)]
    assert got == [
        None if m is None else ("met" if m else "missed") for m in met["met"].to_pylist()
    ]


def test_a_case_without_a_drg_in_both_years_has_not_moved():
    """'moved' counts cases whose DRG changes: none → none is no move, none → GB11 is one
    (the null test was a whole-array comparison, so every null pair counted as moved)."""
    money = {c: pa.array([Decimal("1.00")] * 4, MONEY) for c in _data._WHAT_IF_MONEY}
    sim = pa.table(
        {
            "case_id": ["a", "b", "c", "d"],
            "department": ["D"] * 4,
            "drg_base": ["GB11", None, None, "GB11"],
            "drg_alt": ["GB11", "GB13", None, "GB13"],
            **money,
        }
    )
    by_dept, by_drg = what_if_tables(sim)
    assert by_dept.to_pydict()["moved"] == [2]  # b and d
    moved = by_drg.to_pydict()
    assert dict(zip(moved["drg_base"], moved["moved"], strict=True)) == {"GB11": 1, None: 1}


def test_a_hospital_workbook_names_its_unit_sheet_departments(hospital, tmp_path):
    path = tmp_path / "h.xlsx"
    hospital.write(path, lang="en")
    wb = openpyxl.load_workbook(path)
    assert "Departments" in wb.sheetnames and "Hospitals" not in wb.sheetnames
    assert wb["Departments"]["A1"].value == "Department"


def test_a_hospital_workbook_summary_says_which_row_is_which(hospital, tmp_path):
    path = tmp_path / "h.xlsx"
    hospital.write(path)
    ws = openpyxl.load_workbook(path)[label("sheet_summary", "zh")]
    rows = list(ws.iter_rows(min_row=1, max_row=3, max_col=3, values_only=True))
    assert rows[0] == (label("hospital_id", "zh"), label("scope", "zh"), label("cases", "zh"))
    assert rows[1][:2] == ("H04", label("hospital", "zh"))
    assert rows[2][:2] == (None, label("region", "zh"))
    assert rows[1][2] == hospital.hospital_row["cases"][0].as_py()
    assert rows[2][2] == hospital.region["cases"][0].as_py()
