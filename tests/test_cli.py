"""The command line, through click's runner: results, readable output, one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import DEMO, SHARED_RULESETS
from test_grouping import STATUS_MAP

from drgkit.cli import cli, main


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize("name", SHARED_RULESETS)
def test_group_command_agrees_with_the_oracle(shared: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / "out.csv"
    code, text = run("group", shared / "oracle" / name / "cases.csv", "-r",
                     shared / "rulesets" / name, "-o", out, "--value-checks", "opendrg")
    assert code == 0, text
    assert "10,000 cases" in text
    with open(out, encoding="utf-8", newline="") as fh:
        got = list(csv.DictReader(fh))
    with open(shared / "oracle" / name / "expected.csv", encoding="utf-8", newline="") as fh:
        expected = list(csv.DictReader(fh))
    assert list(got[0])[:8] == ["case_id", "status", "reason", "detail", "mdc", "adrg", "drg",
                                "ruleset"]
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g["case_id"] == e["Index"]
        assert g["status"] == STATUS_MAP[e["status"]], (g, e)
        if g["status"] in ("ok", "ambiguous"):
            assert (g["mdc"], g["adrg"], g["drg"]) == (e["mdc"], e["adrg"], e["drg"]), (g, e)


def test_group_to_parquet_with_kept_columns(tmp_path: Path) -> None:
    from drgkit import _demo

    cases = tmp_path / "cases.parquet"
    pq.write_table(_demo.generate_cases(800, seed=3), cases)
    out = tmp_path / "out.parquet"
    code, text = run("group", cases, "-r", "demo", "-o", out, "--keep", "hospital_id",
                     "--threads", "1", "--batch-rows", "100")
    assert code == 0, text
    table = pq.read_table(out)
    assert table.num_rows == 800
    assert table.column_names[0] == "hospital_id"
    assert "by ruleset version: demo_2023" in text


def test_rulesets_list_show_validate() -> None:
    code, text = run("rulesets", "list")
    assert code == 0 and "demo_2023" in text and "demo: demo_2023, demo_2024" in text
    assert "2023-01-01 – 2023-12-31" in text
    code, text = run("rulesets", "show", "demo")
    assert code == 0 and "content hash" in text and "10 MDCs" in text
    code, text = run("rulesets", "validate", "demo_2023", str(DEMO / "2024"))
    assert code == 0 and text.count("✓") == 2


def test_explain_command_from_file_ad_hoc_and_json(shared: Path) -> None:
    code, text = run("explain", shared / "oracle" / "samples.csv", "-r",
                     shared / "rulesets" / "chs_drg_11", "--case", "22058878")
    assert code == 0, text
    assert "✓ GZ13 其他消化系统诊断，伴并发症或合并症" in text
    code, text = run("explain", "-r", shared / "rulesets" / "chs_drg_11",
                     "--dx", "K22.301|K11.901|E11.900|I10.x05", "--px", "96.0800x005",
                     "--sex", "2", "--age", "88")
    assert code == 0 and "Result: GZ13" in text
    code, text = run("explain", "-r", "demo_2024", "--dx", "I21.000", "--sex", "1",
                     "--age", "60", "--json")
    data = json.loads(text)
    assert data["status"] == "ok" and data["trail"]


def test_demo_command(tmp_path: Path) -> None:
    code, text = run("demo", "--cases", "600", "--out", tmp_path / "demo")
    assert code == 0, text
    assert (tmp_path / "demo" / "cases.parquet").is_file()
    assert (tmp_path / "demo" / "grouped.csv").is_file()
    assert "600 cases" in text and "Result:" in text


def test_layouts_and_warmup() -> None:
    code, text = run("layouts")
    assert code == 0 and "opendrg:" in text and "ICD10_DRGS" in text
    code, text = run("warmup", "-r", "demo_2024")
    assert code == 0 and "ready: demo_2024" in text


@pytest.mark.parametrize("args, words", [
    (["group", "nope.csv", "-r", "demo", "-o", "x.csv"], "nope.csv: no such file"),
    (["group", "{cases}", "-r", "demo_2042", "-o", "x.csv"], "Did you mean demo_2024"),
    (["group", "{cases}", "-r", "demo", "-o", "x.csv", "--map", "nonsense"],
     "--map expects FIELD=COLUMN"),
    (["group", "{cases}", "-r", "demo", "-o", "x.csv", "--map", "diagnoses=DX"],
     "column 'DX' (mapped to case field diagnoses) is not in the input"),
    (["group", "{cases}", "-r", "demo", "-o", "x.csv", "--layout", "hl7"], "unknown layout"),
    (["group", "{cases}", "-r", "{bad_ruleset}", "-o", "x.csv"], "rules.csv, row 2"),
    (["explain", "{cases}", "-r", "demo", "--case", "nobody"], "case 'nobody' is not in"),
    (["explain", "-r", "demo"], "give a case file"),
    (["rulesets", "show", "nope"], "unknown ruleset 'nope'"),
])
def test_user_mistakes_are_one_line_with_exit_code_2(tmp_path: Path, monkeypatch, args, words):
    import shutil

    cases = tmp_path / "cases.csv"
    cases.write_text("case_id,sex,age,diagnoses\na,1,40,I21.000\n", encoding="utf-8")
    bad = tmp_path / "bad"
    shutil.copytree(DEMO / "2024", bad)
    rules = (bad / "rules.csv").read_text(encoding="utf-8").splitlines()
    head, first = rules[0], rules[1].split(",")
    first[2] = "NOT_A_TEMPLATE"
    (bad / "rules.csv").write_text("\n".join([head, ",".join(first), *rules[2:]]) + "\n",
                                   encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    args = [a.format(cases=cases, bad_ruleset=bad) for a in args]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert words in errors[0], result.output
    assert "Traceback" not in result.output


def test_main_entry_point_runs_plugins_hook(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert "drgkit" in capsys.readouterr().out


# --------------------------------------------------------------------------- settlement


def test_settle_period_and_simulate_commands(tmp_path: Path) -> None:
    from decimal import Decimal

    import pyarrow as pa

    from drgkit import _demo

    cases = tmp_path / "cases.parquet"
    pq.write_table(_demo.generate_cases(1200, seed=8), cases)
    settled = tmp_path / "settled.csv"
    code, text = run("settle", cases, "-p", "demo", "-o", settled)
    assert code == 0, text
    assert "1,200 cases" in text and "total" in text and "H320500001" in text
    # the printed region total equals the sum of the written case payments
    from drgkit.settlement._settle import read_settled

    table = read_settled(settled)
    assert table.num_rows == 1200
    assert table.schema.field("payment").type == pa.decimal128(18, 2)
    total = sum(v for v in table.column("payment").to_pylist() if v is not None)
    assert f"{total:,.2f}" in text

    code, text = run("settle", cases, "-p", "demo-points", "-o", tmp_path / "p.parquet",
                     "--budget", "all=26000000")
    assert code == 0, text
    assert "point value (all)" in text
    points = pq.read_table(tmp_path / "p.parquet")
    paid = sum(v for v in points.column("payment").to_pylist() if v is not None)
    assert abs(paid - Decimal("26000000") * Decimal("0.95")) < 100  # point value rounding

    paid_file = tmp_path / "paid.csv"
    paid_file.write_text("hospital_id,amount\nH320500001,1000000.00\n", encoding="utf-8")
    code, text = run("period", settled, "-p", "demo", "-o", tmp_path / "period.csv",
                     "--already-paid", paid_file, "--deductions", tmp_path / "ded.csv")
    assert code == 0, text
    assert "clearing" in text and (tmp_path / "ded.csv").is_file()
    code, text = run("period", settled, "-p", "demo", "-o", tmp_path / "pre.csv",
                     "--all-months")
    assert code == 0 and "prepayment" in text

    code, text = run("simulate", cases, "--base-policy", "demo", "--base-ruleset", "demo_2023",
                     "--alt-ruleset", "demo_2024", "--by", "hospital_id", "-o",
                     tmp_path / "sim.csv")
    assert code == 0, text
    assert "regrouping" in text and "合计" in text


def test_policies_commands(shared: Path) -> None:
    code, text = run("policies", "list")
    assert code == 0 and "suzhou-2023" in text and "demo-points" in text
    table = shared / "payment" / "suzhou-2023.csv"
    code, text = run("policies", "validate", "suzhou-2023", "--weights", table)
    assert code == 0, text
    assert "1944 published standards checked to the cent, 0 differ" in text
    code, text = run("policies", "show", "demo")
    assert code == 0 and "high outliers" in text
    code, text = run("policies", "show", "suzhou-2023")
    assert code == 2 and "published weights table" in text


def test_settle_partitioned_dataset_from_the_cli(tmp_path: Path) -> None:
    from drgkit import _demo

    cases = _demo.generate_cases(900, seed=12)
    parts = tmp_path / "parts"
    parts.mkdir()
    for k in range(3):
        pq.write_table(cases.slice(300 * k, 300), parts / f"in-{k}.parquet")
    code, text = run("settle", parts, "-p", "demo", "-o", tmp_path / "out", "--partitions")
    assert code == 0, text
    assert "wrote 3 part files" in text
    single = tmp_path / "single.parquet"
    run("settle", parts, "-p", "demo", "-o", single)
    import pyarrow as pa

    merged = pa.concat_tables(pq.read_table(p) for p in sorted((tmp_path / "out").iterdir()))
    assert merged.to_pylist() == pq.read_table(single).to_pylist()
