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
    code, text = run(
        "group", shared / "oracle" / name / "cases.csv", "-r", shared / "rulesets" / name, "-o", out
    )
    assert code == 0, text
    assert "10,000 cases" in text
    with open(out, encoding="utf-8", newline="") as fh:
        got = list(csv.DictReader(fh))
    with open(shared / "oracle" / name / "expected.csv", encoding="utf-8", newline="") as fh:
        expected = list(csv.DictReader(fh))
    assert list(got[0])[:10] == [
        "case_id",
        "status",
        "reason",
        "detail",
        "scheme",
        "group",
        "mdc",
        "adrg",
        "drg",
        "ruleset",
    ]
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g["case_id"] == e["Index"]
        assert g["status"] == STATUS_MAP[e["status"]], (g, e)
        assert g["scheme"] == "drg"
        if g["status"] in ("ok", "ambiguous"):
            assert (g["mdc"], g["adrg"], g["drg"]) == (e["mdc"], e["adrg"], e["drg"]), (g, e)
            assert g["group"] == e["drg"], (g, e)


def test_group_to_parquet_with_kept_columns(tmp_path: Path) -> None:
    from drgkit import _demo

    cases = tmp_path / "cases.parquet"
    pq.write_table(_demo.generate_cases(800, seed=3), cases)
    out = tmp_path / "out.parquet"
    code, text = run(
        "group",
        cases,
        "-r",
        "demo",
        "-o",
        out,
        "--keep",
        "hospital_id",
        "--threads",
        "1",
        "--batch-rows",
        "100",
    )
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
    code, text = run(
        "explain",
        shared / "oracle" / "samples.csv",
        "-r",
        shared / "rulesets" / "chs_drg_11",
        "--case",
        "22058878",
    )
    assert code == 0, text
    assert "✓ GZ13 其他消化系统诊断，伴并发症或合并症" in text
    code, text = run(
        "explain",
        "-r",
        shared / "rulesets" / "chs_drg_11",
        "--dx",
        "K22.301|K11.901|E11.900|I10.x05",
        "--px",
        "96.0800x005",
        "--sex",
        "2",
        "--age",
        "88",
    )
    assert code == 0 and "Result: GZ13" in text
    code, text = run(
        "explain", "-r", "demo_2024", "--dx", "I21.000", "--sex", "1", "--age", "60", "--json"
    )
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


@pytest.mark.parametrize(
    "args, words",
    [
        (["group", "nope.csv", "-r", "demo", "-o", "x.csv"], "nope.csv: no such file"),
        (["group", "{cases}", "-r", "demo_2042", "-o", "x.csv"], "Did you mean demo_2024"),
        (
            ["group", "{cases}", "-r", "demo", "-o", "x.csv", "--map", "nonsense"],
            "--map expects FIELD=COLUMN",
        ),
        (
            ["group", "{cases}", "-r", "demo", "-o", "x.csv", "--map", "diagnoses=DX"],
            "column 'DX' (mapped to case field diagnoses) is not in the input",
        ),
        (["group", "{cases}", "-r", "demo", "-o", "x.csv", "--layout", "hl7"], "unknown layout"),
        (["group", "{cases}", "-r", "{bad_ruleset}", "-o", "x.csv"], "rules.csv, row 2"),
        (["explain", "{cases}", "-r", "demo", "--case", "nobody"], "case 'nobody' is not in"),
        (["explain", "-r", "demo"], "give a case file"),
        (["rulesets", "show", "nope"], "unknown ruleset 'nope'"),
    ],
)
def test_user_mistakes_are_one_line_with_exit_code_2(tmp_path: Path, monkeypatch, args, words):
    import shutil

    cases = tmp_path / "cases.csv"
    cases.write_text("case_id,sex,age,diagnoses\na,1,40,I21.000\n", encoding="utf-8")
    bad = tmp_path / "bad"
    shutil.copytree(DEMO / "2024", bad)
    rules = (bad / "rules.csv").read_text(encoding="utf-8").splitlines()
    head, first = rules[0], rules[1].split(",")
    first[2] = "NOT_A_TEMPLATE"
    (bad / "rules.csv").write_text(
        "\n".join([head, ",".join(first), *rules[2:]]) + "\n", encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    args = [a.format(cases=cases, bad_ruleset=bad) for a in args]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert words in errors[0], result.output
    assert "Traceback" not in result.output


def test_main_entry_point_prints_the_version(capsys) -> None:
    # a plugin adding a command through the hook: tests/test_plugins.py
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

    code, text = run(
        "settle",
        cases,
        "-p",
        "demo-points",
        "-o",
        tmp_path / "p.parquet",
        "--budget",
        "all=26000000",
    )
    assert code == 0, text
    assert "point value (all)" in text
    points = pq.read_table(tmp_path / "p.parquet")
    paid = sum(v for v in points.column("payment").to_pylist() if v is not None)
    assert abs(paid - Decimal("26000000") * Decimal("0.95")) < 100  # point value rounding

    paid_file = tmp_path / "paid.csv"
    paid_file.write_text("hospital_id,amount\nH320500001,1000000.00\n", encoding="utf-8")
    code, text = run(
        "period",
        settled,
        "-p",
        "demo",
        "-o",
        tmp_path / "period.csv",
        "--already-paid",
        paid_file,
        "--deductions",
        tmp_path / "ded.csv",
    )
    assert code == 0, text
    assert "clearing" in text and (tmp_path / "ded.csv").is_file()
    code, text = run("period", settled, "-p", "demo", "-o", tmp_path / "pre.csv", "--all-months")
    assert code == 0 and "prepayment" in text

    code, text = run(
        "simulate",
        cases,
        "--base-policy",
        "demo",
        "--base-ruleset",
        "demo_2023",
        "--alt-ruleset",
        "demo_2024",
        "--by",
        "hospital_id",
        "-o",
        tmp_path / "sim.csv",
    )
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

    merged = pa.concat_tables(
        pq.read_table(p) for p in sorted((tmp_path / "out").glob("part-*.parquet"))
    )
    assert merged.to_pylist() == pq.read_table(single).to_pylist()


# --------------------------------------------------------------------------- honest errors


def _invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _one_case(tmp_path: Path) -> Path:
    cases = tmp_path / "cases.csv"
    cases.write_text("case_id,sex,age,diagnoses\na,1,40,I21.000\n", encoding="utf-8")
    return cases


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("Could not convert 'x' with type str: tried to convert to int64"),
        LookupError("lost track of a batch"),
        TypeError("unsupported operand"),
    ],
    ids=["ValueError", "LookupError", "TypeError"],
)
def test_a_bug_is_a_traceback_asking_for_a_report_with_exit_code_1(
    tmp_path: Path, monkeypatch, exc: Exception
) -> None:
    """A bare ValueError/LookupError from deep inside (Arrow, numpy, a slip) is not passed off
    as the user's mistake: the traceback is shown and the exit code is 1, not 2."""
    import drgkit.grouping

    def broken(*args, **kwargs):
        raise exc

    monkeypatch.setattr(drgkit.grouping, "group_file", broken)
    result = _invoke(
        "group", _one_case(tmp_path), "-r", "demo", "-o", tmp_path / "x.csv", "--silent"
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" in result.output and str(exc) in result.output
    assert "bug in drgkit" in result.output and "report it" in result.output
    assert not [line for line in result.output.splitlines() if line.startswith("Error:")]


def test_an_arrow_error_from_a_real_bug_is_not_a_user_error(tmp_path: Path, monkeypatch) -> None:
    import pyarrow as pa

    import drgkit.grouping

    def broken(*args, **kwargs):
        pa.array(["x"]).cast(pa.int64())  # raises pyarrow.ArrowInvalid, a ValueError

    monkeypatch.setattr(drgkit.grouping, "group_file", broken)
    result = _invoke("group", _one_case(tmp_path), "-r", "demo", "-o", tmp_path / "x.csv")
    assert result.exit_code == 1 and "ArrowInvalid" in result.output, result.output


def test_os_errors_are_one_line_naming_the_path_with_exit_code_1(
    tmp_path: Path, monkeypatch
) -> None:
    import errno
    import os

    import drgkit.grouping

    out = tmp_path / "x.csv"

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out))

    monkeypatch.setattr(drgkit.grouping, "group_file", disk_full)
    result = _invoke("group", _one_case(tmp_path), "-r", "demo", "-o", out, "--silent")
    assert result.exit_code == 1, result.output
    assert result.output.strip() == f"Error: {out}: {os.strerror(errno.ENOSPC)}"


def test_a_missing_amounts_file_is_one_line_with_exit_code_1(tmp_path: Path) -> None:
    from drgkit import _demo

    cases = tmp_path / "cases.parquet"
    pq.write_table(_demo.generate_cases(200, seed=5), cases)
    settled = tmp_path / "settled.parquet"
    assert _invoke("settle", cases, "-p", "demo", "-o", settled, "--silent").exit_code == 0
    missing = tmp_path / "paid.csv"
    result = _invoke(
        "period", settled, "-p", "demo", "-o", tmp_path / "p.csv", "--already-paid", missing
    )
    assert result.exit_code == 1, result.output
    assert result.output.strip().startswith(f"Error: {missing}")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, words",
    [
        (["group", "{cases}", "-r", "demo", "-o", "{out}", "--batch-rows", "0"], "--batch-rows"),
        (["group", "{cases}", "-r", "demo", "-o", "{out}", "--batch-rows", "-5"], "--batch-rows"),
        (["settle", "{cases}", "-p", "demo", "-o", "{out}", "--batch-rows", "-1"], "--batch-rows"),
        (["group", "{cases}", "-r", "demo", "-o", "{out}", "--threads", "0"], "--threads"),
        (["period", "{cases}", "-p", "demo", "-o", "{out}", "--month", "2024-13"], "YYYY-MM"),
        (
            [
                "simulate",
                "{cases}",
                "--base-policy",
                "demo",
                "--alt-ruleset",
                "demo_2023",
                "--by",
                "hospital_id,hospital_id",
            ],
            "--by names a key twice",
        ),
        (["demo", "--cases", "-1", "--out", "{out}"], "--cases"),
        (
            ["group", "{cases}", "-r", "demo", "-o", "{out}", "--encoding", "gbkk"],
            "unknown text encoding 'gbkk'",
        ),
    ],
)
def test_bad_option_values_are_usage_errors(tmp_path: Path, args: list[str], words: str) -> None:
    """Values the library would choke on (or, for --batch-rows < 1, turn into an empty output
    with exit 0) are refused by the command line before anything runs."""
    out = tmp_path / "out.csv"
    args = [a.format(cases=_one_case(tmp_path), out=out) for a in args]
    result = _invoke(*args)
    assert result.exit_code == 2, result.output
    assert words in result.output and "Traceback" not in result.output
    assert not out.exists()


# --------------------------------------------------------------------------- data warnings


@pytest.fixture
def undated_cases(tmp_path: Path) -> Path:
    """Demo cases without their discharge dates: grouping by the region 'demo' cannot pick a
    version for any of them, and the grouper says so in a DataWarning."""
    from drgkit import _demo

    table = _demo.generate_cases(400, seed=21)
    path = tmp_path / "undated.parquet"
    pq.write_table(table.drop_columns(["discharge_date"]), path, row_group_size=100)
    return path


def _warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("warning:")]


def test_settle_shows_the_grouper_warning_once(tmp_path: Path, undated_cases: Path) -> None:
    """Before: suppressed, so every case came out not_settled with only a reason count."""
    for extra in ([], ["--silent"]):
        result = _invoke(
            "settle",
            undated_cases,
            "-p",
            "demo",
            "-r",
            "demo",
            "-o",
            tmp_path / "s.csv",
            "--batch-rows",
            "50",
            *extra,
        )
        assert result.exit_code == 0, result.output
        shown = _warnings(result.stderr)
        assert len(shown) == 1, result.stderr
        assert "no column for discharge_date" in shown[0] and str(undated_cases) in shown[0]


def test_simulate_and_alliance_show_the_grouper_warning_once(
    tmp_path: Path, undated_cases: Path
) -> None:
    result = _invoke(
        "simulate",
        undated_cases,
        "--base-policy",
        "demo",
        "--base-ruleset",
        "demo",
        "--alt-ruleset",
        "demo_2024",
    )
    assert result.exit_code == 0, result.output
    assert [w for w in _warnings(result.stderr) if "no column for discharge_date" in w], (
        result.stderr
    )
    assert len(_warnings(result.stderr)) == len(set(_warnings(result.stderr)))
    result = _invoke(
        "alliance",
        undated_cases,
        "-a",
        "demo",
        "-p",
        "demo",
        "-r",
        "demo",
        "-o",
        tmp_path / "alliance",
    )
    assert result.exit_code == 0, result.output
    shown = _warnings(result.stderr)
    assert len(shown) == 1 and "no column for discharge_date" in shown[0], result.stderr


def test_settle_draws_a_progress_bar_unless_silent(tmp_path: Path) -> None:
    from drgkit import _demo

    cases = tmp_path / "cases.parquet"
    pq.write_table(_demo.generate_cases(300, seed=2), cases)
    result = _invoke("settle", cases, "-p", "demo", "-o", tmp_path / "a.csv")
    assert result.exit_code == 0 and "settling" in result.stderr, result.stderr
    result = _invoke("settle", cases, "-p", "demo", "-o", tmp_path / "b.csv", "--silent")
    # --silent drops the progress bar and the summary; warnings about the data still show
    assert result.exit_code == 0 and "settling" not in result.stderr and result.stdout == ""
    assert all(line.startswith("warning:") for line in result.stderr.splitlines())


# --------------------------------------------------------------------------- wiring


def _fake_summaries():
    from drgkit.grouping import GroupSummary
    from drgkit.settlement import SettleSummary

    class Group(GroupSummary):  # an unslotted subclass: room for the accounting attributes
        pass

    class Settle(SettleSummary):
        pass

    return Group, Settle


@pytest.mark.parametrize("accounted", [True, False])
def test_group_and_settle_pass_rejects_and_print_the_accounting(
    tmp_path: Path, monkeypatch, accounted: bool
) -> None:
    import drgkit.grouping
    import drgkit.settlement

    Group, Settle = _fake_summaries()
    calls: dict[str, dict] = {}

    def fake(name, cls):
        def run(cases, out, *args, **kwargs):
            calls[name] = kwargs
            summary = cls()
            summary.rows = 10
            if accounted:
                summary.rows_in, summary.rows_out, summary.rows_rejected = 1012, 1000, 12
            return summary

        return run

    monkeypatch.setattr(drgkit.grouping, "group_file", fake("group", Group))
    monkeypatch.setattr(drgkit.settlement, "settle_file", fake("settle", Settle))
    cases, rejects = _one_case(tmp_path), tmp_path / "rejects.csv"
    for command, extra in (("group", ["-r", "demo"]), ("settle", ["-p", "demo"])):
        result = _invoke(command, cases, *extra, "-o", tmp_path / "x.csv", "--rejects", rejects)
        assert result.exit_code == 0, result.output
        assert calls[command]["rejects"] == rejects
        line = "rows: 1,012 in = 1,000 out + 12 rejected"
        assert (line in result.stdout) is accounted, result.stdout
        result = _invoke(command, cases, *extra, "-o", tmp_path / "x.csv")
        assert result.exit_code == 0, result.output
        assert "rejects" not in calls[command]  # older libraries never see the keyword
        assert (line in result.stdout) is accounted, result.stdout


def test_settle_resume_is_passed_to_partitioned_runs_only(tmp_path: Path, monkeypatch) -> None:
    import drgkit.settlement

    _Group, Settle = _fake_summaries()
    seen: list[dict] = []

    class Result:
        summary, paths = Settle(), ("a",)

    def fake(*args, **kwargs):
        seen.append(kwargs)
        return Result()

    monkeypatch.setattr(drgkit.settlement, "settle_dataset", fake)
    cases = _one_case(tmp_path)
    result = _invoke(
        "settle", cases, "-p", "demo", "-o", tmp_path / "out", "--partitions", "--resume"
    )
    assert result.exit_code == 0, result.output
    assert seen[-1]["resume"] is True
    _invoke("settle", cases, "-p", "demo", "-o", tmp_path / "out", "--partitions")
    assert "resume" not in seen[-1]
    result = _invoke("settle", cases, "-p", "demo", "-o", tmp_path / "o.csv", "--resume")
    assert result.exit_code == 2 and "--resume needs --partitions" in result.output


def test_demo_times_kernel_compilation_apart(tmp_path: Path) -> None:
    """The first demo run used to report '11.49 s (435 cases/s)' with numba's compilation
    inside, without saying so: compilation is now a step of its own that names warmup."""
    code, text = run("demo", "--cases", "300", "--out", tmp_path / "demo")
    assert code == 0, text
    lines = text.splitlines()
    ready = [k for k, line in enumerate(lines) if line.strip().startswith("kernels ready in")]
    grouped = [k for k, line in enumerate(lines) if line.startswith("300 cases in")]
    assert len(ready) == 1 and "`drgkit warmup`" in lines[ready[0]], text
    assert grouped and ready[0] < grouped[0]
