"""Pay for outcome from the command line: ``drgkit period --outcome-values/--outcome-details``
and the cooperation table of ``drgkit alliance`` (single process and partitioned, byte for
byte), against the hand-computed figures of test_period_outcome.py and
test_alliance_outcome.py; the shipped examples (policy demo-outcome, model demo-cooperation)
and the README commands that use them."""

from __future__ import annotations

import csv
import re
import shlex
import subprocess
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import REPO
from test_alliance_outcome import cases as coop_cases
from test_alliance_scale import HAND_CUTS, ROWS, hand_table, write_parts
from test_period_outcome import CASES, settled

import drgkit
from drgkit._runners import partitions_of
from drgkit.alliance import (
    COOPERATION_SCHEMA,
    Alliance,
    AllianceModel,
    AllianceRules,
    Cooperation,
    Member,
    SynergyFund,
    cooperation_outcome,
    load_model,
    split,
    split_dataset,
)
from drgkit.alliance._split import write_table_file
from drgkit.settlement import OUTCOME_SCHEMA, CostCoefficient, OutcomeRule, outcome_details
from drgkit.settlement._period import PeriodRules

pytest_plugins = ["drgkit.testing"]


def test_the_outcome_api_is_exported() -> None:
    import drgkit.alliance
    import drgkit.settlement

    for name in ("outcome_details", "OutcomeRule", "CostCoefficient", "OUTCOME_SCHEMA"):
        assert name in drgkit.settlement.__all__
    for name in ("cooperation_outcome", "COOPERATION_SCHEMA", "Cooperation", "SynergyFund"):
        assert name in drgkit.alliance.__all__
    assert OUTCOME_SCHEMA.names[:3] == ["rule", "kind", "hospital_id"]
    assert COOPERATION_SCHEMA.names[-1] == "explanation"
    assert CostCoefficient(D("0.8"), D("1.2")).apply == "payment"
    assert OutcomeRule("x", "grouping_rate").better == "higher"


# --------------------------------------------------------------------------- drgkit period


@pytest.fixture(scope="module")
def outcome_policy() -> Any:
    return drgkit.default_registry().policy("demo-outcome")


@pytest.fixture
def settled_file(outcome_policy: Any, tmp_path: Path) -> Path:
    path = tmp_path / "settled.parquet"
    pq.write_table(settled(outcome_policy, CASES), path)
    return path


def write_values(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(["hospital_id,bp_control_rate", *rows]) + "\n", encoding="utf-8")
    return path


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return {r["hospital_id"]: r for r in csv.DictReader(fh)}


def test_shipped_demo_outcome_policy_has_both_sections(outcome_policy: Any) -> None:
    rules = PeriodRules.from_policy(outcome_policy)
    assert rules.cost_coefficient == CostCoefficient(D("0.8"), D("1.2"), "payment")
    assert [(r.id, r.source, r.target) for r in rules.outcomes] == [
        ("bp_control", "table", D("0.80"))
    ]
    assert "EXAMPLE SETTINGS" in Path(outcome_policy.path).read_text(encoding="utf-8")


def test_period_with_outcome_values_and_details_by_hand(
    drgkit_cli: Any, settled_file: Path, tmp_path: Path
) -> None:
    values = write_values(tmp_path / "bp.csv", ["H1,0.72", "H2,0.84"])
    out, details = tmp_path / "period.csv", tmp_path / "outcome.csv"
    run = drgkit_cli(
        "period",
        settled_file,
        "-p",
        "demo-outcome",
        "--outcome-values",
        values,
        "-o",
        out,
        "--outcome-details",
        details,
    )
    assert run.exit_code == 0, run.output
    got = read_csv(out)
    h1, h2 = got["H1"], got["H2"]
    # region cost per weight 4000 ÷ 4 = 1000: H1 1200/1000 = 1.2, H2 0.8 (both on the band)
    # H1: 2000.04 × 0.2 = 400.008 → 400.01; bp 0.72 misses 0.80 by 10% × 1, capped at 5%:
    #     2000.04 × 0.05 = 100.002 → 100.00; due = 2000.04 − 100.00 + 400.01 = 2300.05
    assert (h1["cost_coefficient"], h1["coefficient_adjustment"]) == ("1.200000", "400.01")
    assert (h1["outcome_deduction"], h1["outcome_reward"], h1["due"]) == (
        "100.00",
        "0.00",
        "2300.05",
    )
    # cost 2400 → over-spend 99.95 inside the first band (230.005): the fund bears half,
    # 49.975 → 49.98; fund_due = 2000.04 − 100.00 + 400.01 + 49.98 = 2350.03
    assert (h1["fund_overspend"], h1["fund_due"]) == ("49.98", "2350.03")
    # H2: 2000.05 × −0.2 = −400.01; bp 0.84 beats 0.80 by 5% × 0.5 = 2.5%, capped at 2%:
    #     2000.05 × 0.02 = 40.001 → 40.00; due = 2000.05 + 40.00 − 400.01 = 1640.04
    assert (h2["cost_coefficient"], h2["coefficient_adjustment"]) == ("0.800000", "-400.01")
    assert (h2["outcome_reward"], h2["due"], h2["kept"], h2["fund_due"]) == (
        "40.00",
        "1640.04",
        "40.04",
        "1640.04",
    )
    assert "bp_control_rate 0.720000 misses target 0.800000" in h1["explanation"]
    # the details: the coefficient, then the rule; hospitals sorted
    with open(details, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["rule"], r["hospital_id"], r["result"], r["amount"]) for r in rows] == [
        ("cost_coefficient", "H1", "in band", "400.01"),
        ("cost_coefficient", "H2", "in band", "-400.01"),
        ("bp_control", "H1", "missed", "-100.00"),
        ("bp_control", "H2", "surpassed", "40.00"),
    ]
    # the printed summary: per hospital, the coefficient and the outcome amounts
    text = run.output
    assert "pay for outcome" in text
    line = next(x for x in text.splitlines() if x.split()[:1] == ["H1"] and "1.200000" in x)
    assert line.split() == ["H1", "1.200000", "400.01", "100.00", "0.00", "2300.05", "2350.03"]
    assert f"wrote {out} and {details}" in text


def test_outcome_details_parquet_by_suffix_equals_the_library(
    drgkit_cli: Any, settled_file: Path, outcome_policy: Any, tmp_path: Path
) -> None:
    values = write_values(tmp_path / "bp.csv", ["H1,0.78", "H2,0.80"])
    details = tmp_path / "outcome.parquet"
    run = drgkit_cli(
        "period",
        settled_file,
        "-p",
        "demo-outcome",
        "--outcome-values",
        values,
        "-o",
        tmp_path / "period.parquet",
        "--outcome-details",
        details,
    )
    assert run.exit_code == 0, run.output
    table = pq.read_table(details)
    assert table.schema.remove_metadata() == OUTCOME_SCHEMA
    want = outcome_details(pq.read_table(settled_file), outcome_policy, values=values)
    assert table.to_pylist() == want.to_pylist()
    bp = [r for r in table.to_pylist() if r["rule"] == "bp_control"]
    # H1: gap 0.02 ÷ 0.80 = 2.5% × 1 = 2.5%: 2000.04 × 0.025 = 50.001 → −50.00; H2 on target
    assert [(r["result"], r["amount"]) for r in bp] == [("missed", D("-50.00")), ("met", 0)]
    period = pq.read_table(tmp_path / "period.parquet").to_pylist()
    assert period[0]["outcome_deduction"] == D("50.00")


@pytest.mark.parametrize(
    ("rows", "where"),
    [
        (["H1,0.72", "H2,abc"], r"bp\.csv, row 3, column 'bp_control_rate': 'abc' is not a num"),
        (["H1,0.72", "H1,0.84"], r"bp\.csv, row 3, column 'hospital_id': hospital 'H1' is listed"),
        (["H1,-0.1"], r"bp\.csv, row 2, column 'bp_control_rate': '-0\.1' is not a number"),
        (["H1,0.72,9"], r"bp\.csv, row 2: 3 fields, the header has 2"),
    ],
)
def test_a_bad_values_file_is_one_line_naming_file_row_and_column(
    drgkit_cli: Any, settled_file: Path, tmp_path: Path, rows: list[str], where: str
) -> None:
    values = write_values(tmp_path / "bp.csv", rows)
    out = tmp_path / "period.csv"
    run = drgkit_cli(
        "period", settled_file, "-p", "demo-outcome", "--outcome-values", values, "-o", out
    )
    assert run.exit_code == 2, run.output
    lines = run.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), run.output
    assert re.search(where, lines[0]), lines[0]
    assert not out.exists()


def test_a_values_file_without_the_indicator_column(
    drgkit_cli: Any, settled_file: Path, tmp_path: Path
) -> None:
    values = tmp_path / "bp.csv"
    values.write_text("hospital_id,bp_rate\nH1,0.72\n", encoding="utf-8")
    out = tmp_path / "x.csv"
    run = drgkit_cli(
        "period", settled_file, "-p", "demo-outcome", "--outcome-values", values, "-o", out
    )
    assert run.exit_code == 2
    assert "bp.csv, column 'bp_control_rate': the outcome values table has no column" in (
        run.output
    )


def test_period_outcome_usage_errors(drgkit_cli: Any, settled_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "period.csv"
    # the policy's rule needs values: said before anything is read
    run = drgkit_cli("period", settled_file, "-p", "demo-outcome", "-o", out)
    assert run.exit_code == 2
    assert "outcome rule(s) bp_control take their values" in run.output
    assert "--outcome-values FILE" in run.output and "bp_control_rate" in run.output
    # a policy without outcome sections has no details
    details = tmp_path / "d.csv"
    run = drgkit_cli("period", settled_file, "-p", "demo", "-o", out, "--outcome-details", details)
    assert run.exit_code == 2 and "no [period.cost_coefficient]" in run.output
    # ... and does not use a values file (says so)
    values = write_values(tmp_path / "bp.csv", ["H1,0.72"])
    run = drgkit_cli("period", settled_file, "-p", "demo", "-o", out, "--outcome-values", values)
    assert run.exit_code == 0, run.output
    assert "is not used" in run.output and "pay for outcome" not in run.output
    # not with the monthly pre-settlement
    run = drgkit_cli(
        "period", settled_file, "-p", "demo-outcome", "-o", out, "--all-months",
        "--outcome-values", values,
    )  # fmt: skip
    assert run.exit_code == 2 and "not to the monthly pre-settlement" in run.output


# --------------------------------------------------------------------------- drgkit alliance

#: the model of test_alliance_outcome.run() as a TOML file, with both sections
COOP_MODEL = """
id = "coop-test"
[coefficients]
"3" = "1.2"
"2" = "1.0"
"1" = "0.8"
[package]
retention = [{ up_to = "0.10", keep = "1" }, { keep = "0.5" }]
overspend = [{ up_to = "0.10", fund_share = "0.5" }, { fund_share = "0" }]
[cooperation]
referral_rate_min = "0.2"
uplift = "0.012345"
shared_results = true
[synergy_fund]
share = "0.123457"
split_by = "equal"
remainder = "largest"
[[alliances]]
id = "A"
basis = "capitation"
enrolled = 1000
per_person = "100.00"
members = [
  { hospital_id = "L3", level = 3, role = "lead" },
  { hospital_id = "M2", level = 2 },
  { hospital_id = "P1", level = 1 },
]
"""


@pytest.fixture
def coop(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "coop.toml"
    model.write_text(COOP_MODEL, encoding="utf-8")
    cases = tmp_path / "coop-cases.parquet"
    pq.write_table(coop_cases(), cases)
    return model, cases


def test_alliance_writes_the_cooperation_table_by_hand(
    drgkit_cli: Any, coop: tuple[Path, Path], tmp_path: Path
) -> None:
    model, cases = coop
    out = tmp_path / "split"
    run = drgkit_cli("alliance", cases, "-a", model, "-o", out, "--shared-results", "M2,P1")
    assert run.exit_code == 0, run.output
    got = read_csv(out / "cooperation.csv")
    # referred: l0 (parent of the down link) and m0 (its child); only M2 reaches 20% and
    # shares results: 20,000.00 × 0.012345 = 246.90
    assert [got[h]["referral_rate"] for h in ("L3", "M2", "P1")] == [
        "0.100000",
        "0.200000",
        "0.000000",
    ]
    assert [got[h]["uplift"] for h in ("L3", "M2", "P1")] == ["0.00", "246.90", "0.00"]
    # synergy fund 15,000.00 × 0.123457 = 1851.86, set aside by package adjustments, paid
    # out equally (test_alliance_outcome.py works these out)
    assert [got[h]["synergy_set_aside"] for h in ("L3", "M2", "P1")] == [
        "-1058.21",
        "-440.92",
        "-352.73",
    ]
    assert [got[h]["synergy_part"] for h in ("L3", "M2", "P1")] == ["617.29", "617.29", "617.28"]
    assert "cooperation.csv" in run.output.splitlines()[-1]
    assert "1 of 3 members meet the targets (uplift 246.90" in run.output
    assert "synergy fund 1851.86" in run.output


def test_shared_results_from_a_file(
    drgkit_cli: Any, coop: tuple[Path, Path], tmp_path: Path
) -> None:
    model, cases = coop
    listing = tmp_path / "shared.csv"
    listing.write_text(
        "hospital_id,shared_results\nL3,true\nM2,是\nP1,false\n",
        encoding="utf-8",
    )
    run = drgkit_cli("alliance", cases, "-a", model, "-o", tmp_path / "s", "--shared-results",
                     listing)  # fmt: skip
    assert run.exit_code == 0, run.output
    got = read_csv(tmp_path / "s" / "cooperation.csv")
    assert [got[h]["shared_results"] for h in ("L3", "M2", "P1")] == ["true", "true", "false"]
    assert got["M2"]["uplift"] == "246.90"


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("hospital_id,shared_results\nM2,maybe\n", "row 2, column 'shared_results': 'maybe'"),
        ("hospital_id\nM2\nM2\n", "row 3, column 'hospital_id': hospital 'M2' is listed twice"),
        ("hospital_id,shared_results\n\n ,true\n", "row 3, column 'hospital_id': no hospital id"),
        ("hospital\nM2\n", "row 1: the shared results file needs a hospital_id column"),
    ],
)
def test_a_bad_shared_results_file(
    drgkit_cli: Any, coop: tuple[Path, Path], tmp_path: Path, content: str, where: str
) -> None:
    model, cases = coop
    listing = tmp_path / "shared.csv"
    listing.write_text(content, encoding="utf-8")
    out = tmp_path / "s"
    run = drgkit_cli("alliance", cases, "-a", model, "-o", out, "--shared-results", listing)
    assert run.exit_code == 2, run.output
    lines = run.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {listing}, {where}"), lines
    assert not out.exists()  # refused before anything runs


def test_alliance_cooperation_usage_errors(
    drgkit_cli: Any, coop: tuple[Path, Path], tmp_path: Path
) -> None:
    model, cases = coop
    out = tmp_path / "s"
    run = drgkit_cli("alliance", cases, "-a", model, "-o", out)
    assert run.exit_code == 2 and "give --shared-results" in run.output
    run = drgkit_cli("alliance", cases, "-a", model, "-o", out, "--shared-results", "M2,X9")
    assert run.exit_code == 2
    assert "--shared-results names X9: not a member of any alliance of model coop-test" in (
        run.output
    )
    assert not out.exists()
    # a model without the sections writes no cooperation table and says the option is unused
    plain = tmp_path / "plain.toml"
    text = (
        COOP_MODEL.split("[cooperation]")[0]
        + "[[alliances]]"
        + COOP_MODEL.split("[[alliances]]")[1]
    )
    plain.write_text(text.replace('"coop-test"', '"plain"'), encoding="utf-8")
    run = drgkit_cli("alliance", cases, "-a", plain, "-o", out, "--shared-results", "M2")
    assert run.exit_code == 0, run.output
    assert "--shared-results is not used" in run.output
    assert not (out / "cooperation.csv").exists() and (out / "members.csv").exists()


def test_partitioned_cooperation_table_is_the_single_one_byte_for_byte(
    drgkit_cli: Any, coop: tuple[Path, Path], tmp_path: Path
) -> None:
    model, _cases = coop
    table = coop_cases()
    dataset = write_parts(table, tmp_path / "parts", [0, 4, 11, 11, 20])
    pq.write_table(table, tmp_path / "all.parquet")
    for fmt in ("csv", "parquet"):
        args = ["-a", model, "--shared-results", "M2,P1", "--format", fmt]
        one = drgkit_cli("alliance", tmp_path / "all.parquet", "-o", tmp_path / f"1{fmt}", *args)
        many = drgkit_cli("alliance", dataset, "-o", tmp_path / f"n{fmt}", "--partitions", *args)
        assert one.exit_code == 0 and many.exit_code == 0, (one.output, many.output)
        name = f"cooperation.{fmt}"
        single = (tmp_path / f"1{fmt}" / name).read_bytes()
        assert (tmp_path / f"n{fmt}" / name).read_bytes() == single
        assert "1 of 3 members meet the targets" in many.output


#: the hand province of test_alliance_scale (up chain, down link, conflict, ambiguous id
#: across partitions) with both sections; everyone shares results
HAND_MODEL = AllianceModel.of(
    [
        Alliance(
            "A",
            (
                Member("H1", 1, "member", D("0.8")),
                Member("H2", 2, "member", D("1.0")),
                Member("H3", 3, "lead", D("1.2")),
            ),
            basis="payments",
            budget=2_000_000,
        )
    ],
    AllianceRules(
        up_referrer_share=D("0.3"),
        down_sender_share=D("0.5"),
        package=PeriodRules.from_config(
            {
                "retention": [{"up_to": "0.10", "keep": "1"}, {"keep": "0.5"}],
                "overspend": [{"up_to": "0.10", "fund_share": "0.5"}, {"fund_share": "0"}],
            }
        ),
        cooperation=Cooperation(D("0.4"), D("0.05"), shared_results=True),
        synergy_fund=SynergyFund(D("0.15"), "referrals", "largest"),
    ),
)


@pytest.mark.parametrize("cuts", HAND_CUTS, ids=lambda c: f"{len(c) - 1}parts")
def test_split_dataset_cooperation_equals_the_single_split(cuts: list[int], tmp_path: Path) -> None:
    table = hand_table()
    dataset = write_parts(table, tmp_path / "in", cuts)
    result = split_dataset(dataset, tmp_path / "out", HAND_MODEL, shared_results={"H1", "H3"})
    single = cooperation_outcome(HAND_MODEL, split(table, HAND_MODEL), shared_results={"H1", "H3"})
    write_table_file(tmp_path / "single.parquet", single, "parquet")
    assert (tmp_path / "out" / "cooperation.parquet").read_bytes() == (
        tmp_path / "single.parquet"
    ).read_bytes()
    assert result.cooperation.to_pylist() == single.to_pylist()
    assert str(tmp_path / "out" / "cooperation.parquet") in result.files
    got = {r["hospital_id"]: r for r in single.to_pylist()}
    # in up/down links, as child or parent: H1 c01, d02, k01 (3 of its 4 cases: r01 only
    # named by an ambiguous link); H2 c02, k02 (2 of 4: u01 unresolved); H3 d01, c03 (2 of 4:
    # k03 a conflict, a01 ambiguous)
    assert {h: r["referred_cases"] for h, r in got.items()} == {"H1": 3, "H2": 2, "H3": 2}
    assert [got[h]["referral_rate"] for h in ("H1", "H2", "H3")] == [
        "0.750000",
        "0.500000",
        "0.500000",
    ]
    # all reach 40%; H2 does not share results
    assert {h: r["cooperation_met"] for h, r in got.items()} == {
        "H1": True,
        "H2": False,
        "H3": True,
    }
    # paid cases: H1 d02 2000 + r01 50; H2 u01 300 + k02 600 + r01 60; H3 d01 5000 + c03
    # 10000 + k03 800 + a01 70: claims 18,880.00 under a budget of 20,000.00: 1120.00 kept
    # (inside the first band), fund 15% = 168.00, paid by referred cases 3 : 2 : 2 →
    # 72.00, 48.00, 48.00
    assert [got[h]["synergy_part"] for h in ("H1", "H2", "H3")] == [
        D("72.00"),
        D("48.00"),
        D("48.00"),
    ]
    assert len(ROWS) == table.num_rows


def test_split_dataset_asks_for_shared_results_before_reading(tmp_path: Path) -> None:
    from drgkit.alliance import AllianceError

    dataset = write_parts(hand_table(), tmp_path / "in", [0, 13])
    with pytest.raises(AllianceError, match="shared_results="):
        split_dataset(dataset, tmp_path / "out", HAND_MODEL)
    assert not (tmp_path / "out").exists()
    assert len(partitions_of(dataset)) == 1


# --------------------------------------------------------------------------- shipped examples


def test_shipped_demo_cooperation_model() -> None:
    model = load_model("demo-cooperation")
    demo = load_model("demo")
    assert model.rules.cooperation == Cooperation(D("0.10"), D("0.05"), True)
    assert model.rules.synergy_fund == SynergyFund(D("0.15"), "referrals", "largest")
    # the same alliances as the demo model
    assert [a.members for a in model.alliances] == [a.members for a in demo.alliances]
    assert "EXAMPLE SETTINGS" in Path(model.path).read_text(encoding="utf-8")


def _readme_commands(marker: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    lines = [x.split("  #")[0].strip() for b in blocks for x in b.splitlines()]
    return [x for x in lines if marker in x]


def test_readme_outcome_commands_run_on_demo_cases(
    drgkit_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's `drgkit period … -p demo-outcome` and `drgkit alliance … -a
    demo-cooperation` commands, on a small demo run's settled.csv."""
    from drgkit import _demo
    from drgkit.settlement import settle_file

    monkeypatch.chdir(tmp_path)
    (tmp_path / "drgkit-demo").mkdir()
    pq.write_table(_demo.generate_cases(400, seed=7), tmp_path / "cases.parquet")
    settle_file(
        tmp_path / "cases.parquet",
        tmp_path / "drgkit-demo" / "settled.csv",
        "demo",
        "demo",
        keep=["referral_from"],
    )
    ran = 0
    for line in _readme_commands("bp_control_rate") + _readme_commands("demo-"):
        if line.startswith("printf "):
            subprocess.run(line, shell=True, check=True, cwd=tmp_path)
            continue
        if "demo-outcome" not in line and "demo-cooperation" not in line:
            continue
        run = drgkit_cli(*shlex.split(line)[1:])
        assert run.exit_code == 0, (line, run.output)
        ran += 1
    assert ran >= 2
    assert (tmp_path / "outcome.csv").exists()
    coop = pacsv.read_csv(tmp_path / "split" / "cooperation.csv").to_pylist()
    assert {r["alliance_id"] for r in coop} == {"east", "west"}
