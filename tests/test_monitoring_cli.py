"""drgkit indicators: the command writes what the library computes, with the policy's lights."""

from __future__ import annotations

import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from drgkit.cli import cli
from drgkit.monitoring import MonitoringRules, indicators
from drgkit.monitoring import warnings as lights


@pytest.fixture(scope="module")
def settled_file(tmp_path_factory) -> Path:
    from drgkit._demo import generate_cases
    from drgkit.settlement import settle

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = settle(generate_cases(200, bad_fraction=0.02), "demo")
    path = tmp_path_factory.mktemp("settled") / "settled.parquet"
    pq.write_table(table, path)
    return path


def test_indicators_to_parquet_with_the_policy_lights(settled_file, tmp_path):
    from drgkit._resolve import resolve_policy

    out = tmp_path / "ind.parquet"
    result = CliRunner().invoke(
        cli,
        ["indicators", str(settled_file), "-p", "demo", "--by", "hospital_id,drg", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "200 settled cases" in result.output and "lights:" in result.output
    written = pq.read_table(out)
    table = indicators(settled_file, by=("hospital_id", "drg"))
    want = lights(table, MonitoringRules.from_policy(resolve_policy("demo")))
    assert "red" in written.column("light").to_pylist()  # the demo has readmission reds
    assert written.to_pylist() == want.to_pylist()


def test_indicators_csv_and_printed_summary(settled_file, tmp_path):
    out = tmp_path / "ind.csv"
    result = CliRunner().invoke(
        cli, ["indicators", str(settled_file), "--by", "month", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith('"month","cases","grouped"')
    printed = CliRunner().invoke(cli, ["indicators", str(settled_file), "--by", ""])
    assert printed.exit_code == 0 and "cmi" in printed.output


def test_a_bad_key_is_a_usage_error(settled_file):
    result = CliRunner().invoke(cli, ["indicators", str(settled_file), "--by", "ward"])
    assert result.exit_code == 2 and "unknown key 'ward'" in result.output


def test_rules_file_replaces_the_policy(settled_file, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[monitoring.rules]]\nindicator = "cases"\nyellow = 0\n', encoding="utf-8")
    out = tmp_path / "ind.parquet"
    result = CliRunner().invoke(
        cli, ["indicators", str(settled_file), "--rules", str(rules), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert set(pq.read_table(out).column("light").to_pylist()) == {"yellow"}
    assert pa.types.is_string(pq.read_table(out).schema.field("rule").type)


def test_an_error_after_progress_starts_on_its_own_line(settled_file, tmp_path):
    # the reference is read after the settled cases: its error comes after the progress line
    bad = tmp_path / "ref.csv"
    bad.write_text("mean_cost\n1.00\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["indicators", str(settled_file), "--reference", str(bad)])
    assert result.exit_code != 0
    assert "rows read\nError: " in result.stderr, result.stderr
    assert "the reference table needs a 'drg' column" in result.stderr


def test_the_printed_summary_rounds_once_as_the_report_does(settled_file):
    """The terminal shows each number as the report shows it (one half-up rounding, shares
    as percentages), not a second rounding of its own."""
    from drgkit.report._format import column_kind, display

    result = CliRunner().invoke(cli, ["indicators", str(settled_file), "--by", "hospital_id"])
    assert result.exit_code == 0, result.output
    table = indicators(settled_file, by=("hospital_id",))
    lines = result.stdout.splitlines()
    head = next(k for k, line in enumerate(lines) if line.split()[:1] == ["hospital_id"])
    names = lines[head].split()
    printed = [line.split() for line in lines[head + 1 : head + 1 + table.num_rows]]
    assert len(printed) == table.num_rows
    for row, cells in zip(table.to_pylist(), printed, strict=True):
        for name, text in zip(names, cells, strict=True):
            kind = column_kind(name, table.schema.field(name).type)
            assert text == display(row[name], kind), (name, text, row[name])
