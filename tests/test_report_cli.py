"""``drgkit report`` end to end on demo cases: settled by drgkit settle, indicators by
drgkit.monitoring (the real ones), what-if by drgkit simulate; and the demo's last step."""

from __future__ import annotations

import shutil
import warnings
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from drgkit import _demo, monitoring
from drgkit.cli import cli
from drgkit.registry import default_registry
from drgkit.report import build_report, label, render_html
from drgkit.settlement import settle_file, simulate

openpyxl = pytest.importorskip("openpyxl")


@pytest.fixture(scope="module")
def year(tmp_path_factory) -> dict[str, Path]:
    """600 demo cases (some deliberately bad), settled under 'demo', and the per-case what-if
    of next year's ruleset."""
    folder = tmp_path_factory.mktemp("report-cli")
    cases = _demo.generate_cases(600, seed=5)
    cases_path = folder / "cases.parquet"
    pq.write_table(cases, cases_path)
    settled = folder / "settled.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        settle_file(cases_path, settled, "demo", "demo")
        sim = simulate(
            cases_path,
            base_ruleset="demo_2023",
            base_policy="demo",
            alt_ruleset="demo_2024",
            by=("hospital_id",),
        )
    sim_path = folder / "sim.parquet"
    pq.write_table(sim.cases, sim_path)
    return {"folder": folder, "cases": cases_path, "settled": settled, "sim": sim_path}


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_report_html_and_xlsx(year):
    folder = year["folder"]
    html, xlsx = folder / "report.html", folder / "report.xlsx"
    out = _run("report", year["settled"], "-p", "demo", "-o", html, "-o", xlsx)
    assert f"wrote {html}" in out and f"wrote {xlsx}" in out
    page = html.read_text(encoding="utf-8")
    assert "各医院 CMI" in page and 'data-chart="quadrant"' in page
    # the workbook's hospital sheet is monitoring's indicator table, cell by cell
    expected = monitoring.indicators(year["settled"], ("hospital_id",))
    ws = openpyxl.load_workbook(xlsx)[label("sheet_units", "zh")]
    for j, name in enumerate(expected.column_names, start=1):
        assert ws.cell(row=1, column=j).value == label(name, "zh")
        for i, value in enumerate(expected[name].to_pylist(), start=2):
            got = ws.cell(row=i, column=j).value
            if value is None:
                assert got is None, (name, i)
            elif isinstance(value, Decimal):
                assert Decimal(repr(got)) == value, (name, i)
            elif isinstance(value, float):
                assert got == pytest.approx(value, rel=1e-15), (name, i)
            else:
                assert got == value, (name, i)
    # the same command gives the same bytes
    again = folder / "again.html"
    _run("report", year["settled"], "-p", "demo", "-o", again)
    assert again.read_bytes() == html.read_bytes()


def test_report_hospital_and_what_if(year):
    folder = year["folder"]
    settled = pa.csv.read_csv(year["settled"])
    hospital = sorted(set(settled["hospital_id"].to_pylist()))[0]
    out = folder / "h.xlsx"
    _run(
        "report",
        year["settled"],
        "-p",
        "demo",
        "--hospital",
        hospital,
        "--what-if",
        year["sim"],
        "--lang",
        "en",
        "-o",
        out,
    )
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames[-2:] == ["What-if departments", "What-if DRGs"]
    sim = pq.read_table(year["sim"]).to_pylist()
    mine = [r for r in sim if r["hospital_id"] == hospital]
    ws = wb["What-if DRGs"]
    header = [c.value for c in ws[1]]
    cases = header.index(label("cases", "en")) + 1
    change = header.index(label("change", "en")) + 1
    assert sum(ws.cell(row=i, column=cases).value for i in range(2, ws.max_row + 1)) == len(mine)
    total = sum(
        Decimal(repr(ws.cell(row=i, column=change).value)) for i in range(2, ws.max_row + 1)
    )
    assert total == sum((r["change"] for r in mine), Decimal(0))
    summary = wb["Summary"]
    assert summary.max_row == 3  # the hospital, then the region, named in the first column
    assert [summary.cell(row=r, column=1).value for r in (2, 3)] == [hospital, None]
    assert summary.cell(row=2, column=3).value == sum(
        1 for h in settled["hospital_id"].to_pylist() if h == hospital
    )


def test_report_of_one_year_has_growth(year):
    import pyarrow.compute as pc

    from drgkit.settlement._output import read_settled

    out = year["folder"] / "2024.xlsx"
    _run("report", year["settled"], "-p", "demo", "--year", "2024", "-o", out)
    table = read_settled(year["settled"])
    years = pc.year(table["discharge_date"])
    current, before = (table.filter(pc.equal(years, y)) for y in (2024, 2023))
    assert current.num_rows and before.num_rows
    expected = monitoring.indicators(current, (), previous=before)
    ws = openpyxl.load_workbook(out)[label("sheet_summary", "zh")]
    header = [c.value for c in ws[1]]
    for name in ("cases", "total_cost", "previous_total_cost", "cost_growth"):
        got = ws.cell(row=2, column=header.index(label(name, "zh")) + 1).value
        want = expected[name][0].as_py()
        assert want is not None
        if isinstance(want, float):  # a ratio: XlsxWriter writes 16 significant digits
            assert got == pytest.approx(want, rel=1e-15, abs=0), name
        else:
            assert (Decimal(repr(got)) if isinstance(want, Decimal) else got) == want, name


def test_report_shows_progress_unless_silent(year):
    out = year["folder"] / "progress.html"
    loud = CliRunner().invoke(cli, ["report", str(year["settled"]), "-p", "demo", "-o", str(out)])
    assert loud.exit_code == 0, loud.output
    assert "report: hospital_id: 600 rows read" in loud.stderr
    assert "report: region: 600 rows read" in loud.stderr
    quiet = CliRunner().invoke(
        cli, ["report", str(year["settled"]), "-p", "demo", "-o", str(out), "--silent"]
    )
    assert quiet.exit_code == 0 and "rows read" not in quiet.stderr
    assert f"wrote {out}" in quiet.stdout


def test_report_errors_are_one_line(year, tmp_path):
    result = CliRunner().invoke(
        cli, ["report", str(year["settled"]), "-p", "demo", "-o", str(tmp_path / "r.pdf")]
    )
    assert result.exit_code == 2 and "write the report as .html or .xlsx" in result.output
    result = CliRunner().invoke(
        cli,
        [
            "report",
            str(year["settled"]),
            "-p",
            "demo",
            "--hospital",
            "NOPE",
            "-o",
            str(tmp_path / "r.html"),
        ],
    )
    assert result.exit_code == 2 and "'NOPE' has no case" in result.output
    assert not (tmp_path / "r.html").exists()


def test_demo_ends_with_a_report(year, tmp_path, capsys):
    from drgkit.cli.demo import finish_demo

    shutil.copy(year["settled"], tmp_path / "settled.csv")
    finish_demo(tmp_path)
    printed = capsys.readouterr().out
    assert str(tmp_path / "report.html") in printed
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    # the last year of the data, against the year before
    assert "--year 2024" in printed
    report = build_report(tmp_path / "settled.csv", default_registry().policy("demo"), year=2024)
    assert page == render_html(report)
    assert report.region["previous_total_cost"][0].as_py() is not None


def test_an_error_after_progress_starts_on_its_own_line(year):
    from click.testing import CliRunner

    from drgkit.cli import cli

    out = year["folder"] / "nobody.html"
    result = CliRunner().invoke(
        cli, ["report", str(year["settled"]), "-p", "demo", "--hospital", "NOBODY", "-o", str(out)]
    )
    assert result.exit_code != 0 and not out.exists()
    assert "rows read" in result.stderr
    assert "\nError: hospital 'NOBODY' has no case" in result.stderr, result.stderr


def test_a_year_of_a_settled_path_is_streamed_not_read_whole(year, monkeypatch):
    """--year on a path filters batch by batch: the same tables as splitting it in memory,
    without ever reading the file whole."""
    import pyarrow.compute as pc

    from drgkit.settlement import _output

    table = _output.read_settled(year["settled"])
    policy = default_registry().policy("demo")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        in_memory = build_report(
            table,
            policy,
            year=2024,
            indicators=monitoring.indicators,
            warnings=monitoring.warnings,
            warning_details=monitoring.warning_details,
        )

    def whole(*a, **k):
        raise AssertionError("the settled file was read whole")

    def streaming(data, by=(), *, previous=None, **kw):
        # each table is computed from a stream of batches, never from a table in memory
        assert not isinstance(data, pa.Table) and not isinstance(previous, pa.Table)
        return monitoring.indicators(data, by, previous=previous, **kw)

    monkeypatch.setattr(_output, "read_settled", whole)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        streamed = build_report(
            year["settled"],
            policy,
            year=2024,
            indicators=streaming,
            warnings=monitoring.warnings,
            warning_details=monitoring.warning_details,
        )
    years = pc.year(table["discharge_date"])
    assert streamed.region["cases"][0].as_py() == pc.sum(pc.equal(years, 2024)).as_py()
    assert streamed.region["previous_total_cost"][0].as_py() is not None
    for name in ("region", "units", "drgs", "months", "mdcs", "warnings", "warning_details"):
        got, want = getattr(streamed, name), getattr(in_memory, name)
        assert got.to_pylist() == want.to_pylist(), name


def test_a_streamed_year_says_how_many_cases_have_no_date(year, tmp_path):
    from drgkit._io import DataWarning
    from drgkit.settlement._output import read_settled

    table = read_settled(year["settled"])
    dates = table["discharge_date"].to_pylist()
    undated = table.set_column(
        table.column_names.index("discharge_date"),
        "discharge_date",
        pa.array([None if i < 2 else d for i, d in enumerate(dates)], pa.date32()),
    )
    path = tmp_path / "undated.parquet"
    pq.write_table(undated, path)
    with pytest.warns(DataWarning, match="2 case\\(s\\) without a discharge_date"):
        build_report(path, default_registry().policy("demo"), year=2024)


def test_year_with_a_case_file_is_a_clear_usage_error(year):
    out = year["folder"] / "yc.html"
    result = CliRunner().invoke(
        cli,
        [
            "report",
            str(year["settled"]),
            "-p",
            "demo",
            "--year",
            "2024",
            "--cases",
            str(year["cases"]),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code != 0 and not out.exists()
    assert "--cases cannot be combined with --year" in result.output
