"""DIP from the command line and the one pipeline for two schemes.

Expected packets come from the demo catalogue's tables (catalogues/demo/2024, read by hand:
core.csv K35.8-0 conservative 420, K35.8-1 principal 47.01 850, K35.8-2 principal 47.09 760,
blank packet KBBZ 300), not from the grouper.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import REPO

import drgkit
from drgkit import _schemes
from drgkit.cli import cli

CATALOGUE = REPO / "catalogues" / "demo" / "2024"
CASES = (
    "case_id,diagnoses,procedures,discharge_date,hospital_id\n"
    "1,K35.800,47.0100,2024-03-01,H1\n"
    "2,K35.800,,2024-03-01,H1\n"
    "3,Z99.999,,2024-03-01,H2\n"
    "4,,,2024-03-01,H2\n"
)
#: case id -> (status, packet, kind, tier, score) from the catalogue's tables
EXPECTED = {
    "1": ("ok", "K35.8-1", "core", "core", "850.000000"),
    "2": ("ok", "K35.8-0", "core", "core", "420.000000"),
    "3": ("ok", "KBBZ", "blank", "blank", "300.000000"),
    "4": ("invalid", "", "", "", ""),
}


def run(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    path = tmp_path / "cases.csv"
    path.write_text(CASES, encoding="utf-8")
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------- one pipeline, two schemes


@pytest.mark.parametrize(
    "target", ["dip_demo_2024", "dip:demo", "dip_demo", str(CATALOGUE), str(CATALOGUE.parent)]
)
def test_group_takes_a_catalogue_in_every_form(cases: Path, target: str) -> None:
    got = drgkit.group(cases, target).to_pylist()
    for row in got:
        status, packet, _kind, _tier, _score = EXPECTED[row["case_id"]]
        assert row["scheme"] == "dip"
        assert (row["status"], row["group"] or "") == (status, packet), row
        assert row["group"] == row["packet"]


def test_group_file_takes_a_catalogue(cases: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    summary = drgkit.group_file(cases, out, "dip:demo")
    got = pq.read_table(out).to_pylist()
    assert [(r["case_id"], r["group"] or "") for r in got] == [
        (k, v[1]) for k, v in EXPECTED.items()
    ]
    assert summary.by_packet_kind == {"core": 2, "blank": 1, "none": 1}
    assert summary.by_status == {"ok": 3, "invalid": 1}


def test_drg_results_name_scheme_and_group(cases: Path) -> None:
    table = drgkit.group(
        pa.table(
            {
                "case_id": ["a", "b"],
                "diagnoses": ["K35.800", ""],
                "sex": ["1", "1"],
                "age": ["30", "30"],
                "discharge_date": ["2024-03-01", "2024-03-01"],
            }
        ),
        "demo",
    )
    assert table.column_names[:6] == ["case_id", "status", "reason", "detail", "scheme", "group"]
    assert table.column_names[6:] == ["mdc", "adrg", "drg", "ruleset"]
    rows = table.to_pylist()
    assert [r["scheme"] for r in rows] == ["drg", "drg"]
    # the grouped case's group is its DRG; the one without a diagnosis has none, not 0000
    assert rows[0]["status"] == "ok" and rows[0]["group"] == rows[0]["drg"] != "0000"
    assert rows[1]["status"] != "ok" and rows[1]["drg"] == "0000"
    assert rows[1]["group"] is None
    assert drgkit.GROUP_RESULT_SCHEMA.metadata[b"drgkit.scheme"] == b"drg"


def test_a_folder_is_told_apart_by_its_meta() -> None:
    assert _schemes.scheme_for(str(REPO / "rulesets" / "demo" / "2024"))[0].name == "drg"
    assert _schemes.scheme_for(str(REPO / "rulesets" / "demo"))[0].name == "drg"
    assert _schemes.scheme_for(str(CATALOGUE))[0].name == "dip"
    assert _schemes.scheme_for(str(CATALOGUE.parent))[0].name == "dip"
    # a region with both: the bare name keeps meaning DRG, as before catalogues existed
    assert _schemes.scheme_for("demo")[0].name == "drg"
    assert _schemes.scheme_for("drg:demo") == (_schemes.scheme_for("demo")[0], "demo")


def test_a_third_scheme_is_one_table_entry() -> None:
    calls: list[tuple] = []

    class Toy:
        pass

    toy = _schemes.Scheme(
        "toy",
        "toy scheme",
        lambda spec: isinstance(spec, Toy),
        lambda spec: spec,
        lambda cases, target, **o: calls.append(("group", cases, o)) or "grouped",
        lambda *a, **o: None,
        lambda case, target, **o: calls.append(("explain", case)),
    )
    _schemes.register_scheme(toy)
    try:
        target = Toy()
        assert drgkit.group("cases", target, keep=["x"]) == "grouped"
        drgkit.explain({"diagnoses": "A00"}, target)
        assert calls == [("group", "cases", {"keep": ["x"]}), ("explain", {"diagnoses": "A00"})]
        assert _schemes.scheme_for("toy:anything") == (toy, "anything")
        with pytest.raises(drgkit.RegistryError, match="registered twice"):
            _schemes.register_scheme(toy)
    finally:
        from drgkit.registry import default_registry

        default_registry()._scheme_map.pop("toy")  # the process-wide table, as it was


def test_unknown_target_is_a_clear_error(cases: Path) -> None:
    with pytest.raises(drgkit.RegistryError, match="unknown") as info:
        drgkit.group(cases, "no_such_thing")
    assert "DIP catalogues: dip_demo_2024, dip:demo." in str(info.value)
    with pytest.raises(drgkit.RegistryError, match="unknown DIP catalogue"):
        drgkit.group(cases, "dip:no_such_region")


# ------------------------------------------------------------------------- drgkit group


def test_group_command_with_a_catalogue(cases: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    code, text = run("group", cases, "-r", "dip:demo", "-o", out, "--keep", "hospital_id")
    assert code == 0, text
    rows = _rows(out)
    assert list(rows[0])[:8] == [
        "hospital_id",
        "case_id",
        "status",
        "reason",
        "detail",
        "scheme",
        "group",
        "packet",
    ]
    for row in rows:
        status, packet, kind, tier, score = EXPECTED[row["case_id"]]
        assert (
            row["status"],
            row["group"],
            row["packet"],
            row["packet_kind"],
            row["tier"],
            row["score"],
        ) == (status, packet, packet, kind, tier, score), row
    assert [r["hospital_id"] for r in rows] == ["H1", "H1", "H2", "H2"]
    assert rows[3]["reason"] == "principal_dx_missing"
    # the summary: statuses, reasons, packet kinds and tiers with their counts
    assert "4 cases in" in text and "DIP" in text
    lines = [line.split() for line in text.splitlines()]
    assert ["ok", "3", "75.00%"] in lines and ["invalid", "1", "25.00%"] in lines
    assert ["principal_dx_missing", "1", "主要诊断缺失"] in lines
    assert "packet kinds:" in text and ["core", "2", "50.00%"] in lines
    assert ["blank", "1", "25.00%"] in lines and "tiers:" in text


def test_group_command_refuses_drg_only_options_for_dip(cases: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    for extra, word in (
        (["--translate"], "--translate"),
        (["--value-checks", "strict"], "--value-checks"),
        (["--rejects", tmp_path / "r.csv"], "--rejects"),
    ):
        code, text = run("group", cases, "-r", "dip_demo_2024", "-o", out, *extra)
        assert code == 2 and word in text, text
    assert not out.exists()


def test_group_command_as_a_real_process(cases: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "drgkit.cli",
            "group",
            str(cases),
            "-r",
            "dip_demo",
            "-o",
            str(out),
            "--silent",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    got = pq.read_table(out).to_pylist()
    assert [(r["case_id"], r["group"], r["scheme"]) for r in got] == [
        ("1", "K35.8-1", "dip"),
        ("2", "K35.8-0", "dip"),
        ("3", "KBBZ", "dip"),
        ("4", None, "dip"),
    ]


# ---------------------------------------------------------------------- drgkit explain


def test_explain_dip_case_from_a_file_with_candidates(cases: Path) -> None:
    code, text = run("explain", cases, "-r", "dip_demo_2024", "--case", "1", "--candidates")
    assert code == 0, text
    assert text.startswith("case 1: K35.8-1")
    for tier in ("pregroup", "merge", "subdivide", "core"):
        assert f"\n  {tier} " in text, tier
    table = text[text.index("candidates") :].splitlines()[2:]
    got = [line.split(None, 5) for line in table]
    assert [(g[0], g[3], g[4], g[5]) for g in got] == [
        ("K35.8-1", "850", "850", "as coded"),
        ("K35.8-2", "760", "760", "code 47.09 as the principal procedure"),
        ("K35.8-0", "420", "420", "remove procedure 47.0100"),
    ]


def test_explain_dip_ad_hoc_json_with_hospital_coefficient() -> None:
    code, text = run(
        "explain",
        "-r",
        "dip:demo",
        "--dx",
        "K35.800",
        "--candidates",
        "--json",
        "--hospital-coefficient",
        "1.1",
    )
    assert code == 0, text
    data = json.loads(text)
    assert (data["packet"], data["tier"], data["status"]) == ("K35.8-0", "core", "ok")
    got = {c["packet"]: (Decimal(c["points"]), c["change"]) for c in data["candidates"]}
    # points = score × hospital coefficient (these packets have no auxiliary coefficient)
    assert got == {
        "K35.8-0": (Decimal("462"), "as coded"),
        "K35.8-1": (Decimal("935"), "add procedure 47.01"),
        "K35.8-2": (Decimal("836"), "add procedure 47.09"),
    }


def test_explain_options_that_do_not_fit_the_scheme() -> None:
    code, text = run("explain", "-r", "demo", "--dx", "K35.800", "--candidates")
    assert code == 2 and "--candidates applies to DIP" in text
    code, text = run(
        "explain",
        "-r",
        "dip:demo",
        "--dx",
        "K35.800",
        "--candidates",
        "--hospital-coefficient",
        "abc",
    )
    assert code == 2 and "--hospital-coefficient expects a number" in text


def test_dip_candidates_command(cases: Path) -> None:
    code, text = run("dip", "candidates", cases, "-r", str(CATALOGUE), "--case", "2")
    assert code == 0, text
    table = text[text.index("candidates (") :].splitlines()[2:]
    assert [line.split()[0] for line in table] == ["K35.8-0", "K35.8-1", "K35.8-2"]
    code, text = run("dip", "candidates", "-r", "drg:demo", "--dx", "K35.800")
    assert code == 2 and "not a DIP catalogue" in text
    code, text = run("dip", "candidates", "-r", "dip:demo")
    assert code == 2 and "--dx" in text


# ------------------------------------------------------------ catalogues: list, show, validate


def test_catalogues_list_and_show() -> None:
    for command in (("dip", "list"), ("catalogues", "list")):
        code, text = run(*command)
        assert code == 0, text
        assert any(
            line.split()[:3] == ["dip_demo_2024", "demo", "2024"] for line in text.splitlines()
        ), text
        assert "demo: dip_demo_2024" in text
    code, text = run("catalogues", "show", "dip:demo")
    assert code == 0, text
    with open(CATALOGUE / "packets.csv", encoding="utf-8-sig", newline="") as fh:
        packets = list(csv.DictReader(fh))
    assert f"{len(packets)} packets:" in text
    blanks = sum(p["kind"] == "blank" for p in packets)
    assert f"blank {blanks}" in text and "fallback chain: comprehensive → prefix → blank" in text


def test_dip_validate_names_file_row_and_column(tmp_path: Path) -> None:
    code, text = run("dip", "validate", CATALOGUE)
    assert code == 0 and text.startswith("✓ dip_demo_2024"), text
    broken = tmp_path / "broken"
    shutil.copytree(CATALOGUE, broken)
    lines = (broken / "packets.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    fields = lines[2].split(",")
    fields[header.index("score")] = "lots"
    lines[2] = ",".join(fields)
    (broken / "packets.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, text = run("dip", "validate", broken)
    assert code == 2, text
    assert "✗" in text and "packets.csv" in text and "score" in text and "3" in text, text
    assert "1 catalogue(s) failed validation" in text


# --------------------------------------------------------------------------- dip build


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from drgkit import _demo_dip

    path = tmp_path_factory.mktemp("hist") / "history.parquet"
    pq.write_table(_demo_dip.generate(400, 100, seed=7).history, path)
    return path


def test_dip_build_writes_a_catalogue_and_prints_the_report(history: Path, tmp_path: Path) -> None:
    from drgkit.catalogue._build import build_catalogue
    from drgkit.catalogue._build_options import BuildOptions

    out = tmp_path / "cat"
    code, text = run(
        "dip",
        "build",
        history,
        out,
        "--min-cases",
        "12",
        "--scale",
        "100",
        "--catalogue",
        "mine_2024",
        "--region",
        "mine",
        "--effective-from",
        "2024-01-01",
    )
    assert code == 0, text
    expected = build_catalogue(history, BuildOptions(min_cases=12, scale=100)).report
    assert text.startswith(expected.text().replace(str(history), str(history)))
    assert "case-count threshold n = 12" in text and f"wrote {out}" in text
    meta = dict(row for row in csv.reader(open(out / "meta.csv", encoding="utf-8")))
    assert (meta["catalogue"], meta["region"], meta["score_scale"], meta["effective_from"]) == (
        "mine_2024",
        "mine",
        "100",
        "2024-01-01",
    )
    code, text = run("dip", "validate", out)
    assert code == 0 and text.startswith("✓ mine_2024"), text
    # what was built groups through the same command as any catalogue
    code, text = run("group", history, "-r", out, "-o", tmp_path / "g.csv", "--silent")
    assert code == 0, text
    assert {r["scheme"] for r in _rows(tmp_path / "g.csv")} == {"dip"}


def test_dip_build_options_file_and_coverage(history: Path, tmp_path: Path) -> None:
    toml = tmp_path / "build.toml"
    toml.write_text('[build]\nmin_cases = 40\ncoverage = "0.9"\n', encoding="utf-8")
    code, text = run("dip", "build", history, tmp_path / "a", "--options", toml)
    assert code == 0, text
    assert "coverage" in text.split("threshold n =")[1].splitlines()[0]
    # --min-cases replaces the file's coverage rule
    code, text = run("dip", "build", history, tmp_path / "b", "--options", toml, "--min-cases", "7")
    assert code == 0 and "case-count threshold n = 7" in text, text


@pytest.mark.parametrize(
    "args, message",
    [
        (["--min-cases", "5", "--coverage", "0.9"], "not both"),
        (["--coverage", "1.5"], "--coverage"),
        (["--coverage", "lots"], "--coverage"),
    ],
)
def test_dip_build_bad_options_are_usage_errors(
    history: Path, tmp_path: Path, args: list, message: str
) -> None:
    code, text = run("dip", "build", history, tmp_path / "x", *args)
    assert code == 2 and message in text, text
    assert "Traceback" not in text
    assert not (tmp_path / "x" / "meta.csv").exists()


def test_dip_build_bad_options_file_names_the_file(history: Path, tmp_path: Path) -> None:
    toml = tmp_path / "build.toml"
    toml.write_text("[build]\nminimum = 3\n", encoding="utf-8")
    code, text = run("dip", "build", history, tmp_path / "x", "--options", toml)
    assert code == 2 and "build.toml" in text and "minimum" in text, text


def test_warmup_compiles_a_catalogue_too() -> None:
    code, text = run("warmup")
    assert code == 0 and "ready: dip_demo_2024" in text, text
    code, text = run("warmup", "-r", "dip:demo")
    assert code == 0 and "ready: dip:demo" in text, text


def test_budget_option_help_names_the_dip_fund() -> None:
    from click.testing import CliRunner

    from drgkit.cli import cli

    out = CliRunner().invoke(cli, ["settle", "--help"], terminal_width=200).output
    text = " ".join(out.split())
    assert "the DIP fund of a DIP policy" in text
    assert "Points method: the budget" not in text
