"""``drgkit rulesets lint``: a tiny hand-written ruleset, clean, then with one known defect at a
time, and the exact findings each defect gives; then the real rulesets of ../shared.

The base ruleset (written by :func:`write_ruleset`) has two MDCs:

    MDCX (principal X01 X02 X03): XA1 (X01 X02) -> XA11 MCC | XA13 CC or MCC | XA15
                                  XC1 (X03, age >= 18) -> XC19
                                  XQY (a valid OR procedure)
    MDCY (principal Y01):         YA1 (always) -> YA19

Every code is in the dictionaries, every DRG named, every exclusion table used: no finding.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import drgkit
from drgkit.ruleset import _tables as T
from drgkit.ruleset._lint import FINDING_SCHEMA, lint_ruleset

BASE: dict[str, list[list[str]]] = {
    "meta.csv": [["format_version", "1"], ["ruleset", "tiny"]],
    "mdc.csv": [["1", "MDCX", "MDC:MDCX"], ["2", "MDCY", "MDC:MDCY"]],
    "adrg.csv": [
        ["MDCX", "1", "XA1", "ADRG", "XA1", "ADRG:XA1", "XA1"],
        ["MDCX", "2", "XC1", "ADRG", "XC1", "ADRG:XC1", "XC1"],
        ["MDCX", "3", "XQY", "QY", "XQY", "QY:MDCX", ""],
        ["MDCY", "1", "YA1", "ADRG", "YA1", "ADRG:YA1", "YA1"],
    ],
    "adrg_drg.csv": [
        ["XA1", "1", "XA11", "DRG:XA11"],
        ["XA1", "2", "XA13", "DRG:XA13"],
        ["XA1", "3", "XA15", "DRG:XA15"],
        ["XC1", "1", "XC19", "DRG:XC19"],
        ["YA1", "1", "YA19", "DRG:YA19"],
    ],
    "rules.csv": [
        ["MDC:MDCX", "1", "PDX_IN", "MDCX.mdc_zd", "", "", ""],
        ["MDC:MDCY", "1", "PDX_IN", "MDCY.mdc_zd", "", "", ""],
        ["ADRG:XA1", "1", "PDX_IN", "XA1.adrg_zd", "", "", ""],
        ["ADRG:XC1", "1", "PDX_IN", "XC1.adrg_zd", "", "", ""],
        ["ADRG:XC1", "2", "CMP", "", "age", ">=", "18"],
        ["QY:MDCX", "1", "HAS_PROC", "", "", "", ""],
        ["QY:MDCX", "2", "ANY_PROC_IN", "SS_VALID", "", "", ""],
        ["ADRG:YA1", "1", "TRUE", "", "", "", ""],
        ["DRG:XA11", "1", "HAS_MCC", "", "", "", ""],
        ["DRG:XA13", "1", "HAS_CC_OR_MCC", "", "", "", ""],
        ["DRG:XA15", "1", "TRUE", "", "", "", ""],
        ["DRG:XC19", "1", "TRUE", "", "", "", ""],
        ["DRG:YA19", "1", "TRUE", "", "", "", ""],
    ],
    "lists.csv": [
        ["MDCX.mdc_zd", "X01", ""],
        ["MDCX.mdc_zd", "X02", ""],
        ["MDCX.mdc_zd", "X03", ""],
        ["XA1.adrg_zd", "X01", ""],
        ["XA1.adrg_zd", "X02", ""],
        ["XC1.adrg_zd", "X03", ""],
        ["MDCY.mdc_zd", "Y01", ""],
    ],
    "ss_valid.csv": [["P01", "an operation"]],
    "mcc.csv": [["M01", "1"]],
    "cc.csv": [["C01", "1"]],
    "pdx_excl.csv": [["X01", "1"]],
    "drg_names.csv": [[d, f"group {d}"] for d in ("XA11", "XA13", "XA15", "XC19", "YA19", "XQY")],
    "dx_dict.csv": [[c, f"diagnosis {c}"] for c in ("X01", "X02", "X03", "Y01", "M01", "C01")],
    "px_dict.csv": [["P01", "an operation"]],
    "dx_map.csv": [["X01", "X01"]],
    "px_map.csv": [["P01", "P01"]],
}


def write_ruleset(folder: Path, **changes: list[list[str]]) -> Path:
    """The base ruleset with whole files replaced (``adrg_csv=[...]``), or rows appended
    (``add_adrg_csv=[...]``); a file given as ``None`` is left out."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = {name: list(rows) for name, rows in BASE.items()}
    for key, rows in changes.items():
        add = key.startswith("add_")
        name = key.removeprefix("add_").replace("_csv", ".csv")
        assert name in T.FILES, name
        if rows is None:
            tables.pop(name)
        elif add:
            tables[name] += rows
        else:
            tables[name] = rows
    for name, rows in tables.items():
        with open(folder / name, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(T.FILES[name])
            writer.writerows(rows)
    return folder


def found(folder: Path, **options) -> list[tuple]:
    return [(f.severity, f.code, f.file, f.row, f.field) for f in lint_ruleset(folder, **options)]


def test_the_clean_ruleset_has_no_finding_and_loads(tmp_path: Path) -> None:
    folder = write_ruleset(tmp_path / "rs")
    assert lint_ruleset(folder) == []
    assert T.read_tables(folder).warnings == ()


def test_an_entry_an_earlier_one_always_catches_is_reported_with_both_rows(tmp_path: Path) -> None:
    # XB1 (X01, age >= 65) comes after XA1 (X01 or X02, whose last step is TRUE): every case of
    # XB1 is XA1's first. XD1 (X01 or X03) is not: X03 passes XA1 by.
    folder = write_ruleset(
        tmp_path / "rs",
        add_adrg_csv=[
            ["MDCX", "4", "XB1", "ADRG", "XB1", "ADRG:XB1", ""],
            ["MDCX", "5", "XD1", "ADRG", "XD1", "ADRG:XD1", ""],
        ],
        add_adrg_drg_csv=[["XB1", "1", "XB19", "DRG:XA15"], ["XD1", "1", "XD19", "DRG:XA15"]],
        add_rules_csv=[
            ["ADRG:XB1", "1", "CMP", "", "age", ">=", "65"],
            ["ADRG:XB1", "2", "PDX_IN", "XB1.adrg_zd", "", "", ""],
            ["ADRG:XD1", "1", "PDX_IN", "XD1.adrg_zd", "", "", ""],
        ],
        add_lists_csv=[
            ["XB1.adrg_zd", "X01", ""],
            ["XD1.adrg_zd", "X01", ""],
            ["XD1.adrg_zd", "X03", ""],
        ],
        add_drg_names_csv=[["XB19", "b"], ["XD19", "d"]],
    )
    findings = lint_ruleset(folder)
    assert [(f.severity, f.code, f.file, f.row, f.field) for f in findings] == [
        ("warning", "shadowed-entry", "adrg.csv", 6, "entry")
    ]
    assert "XB1" in findings[0].message and "XA1 (adrg.csv row 2)" in findings[0].message


def test_an_entry_is_not_shadowed_by_an_entry_that_may_return_nothing(tmp_path: Path) -> None:
    # XA1 without its TRUE step and without a fallback lets a case without CC pass on
    folder = write_ruleset(
        tmp_path / "rs",
        adrg_csv=[
            ["MDCX", "1", "XA1", "ADRG", "XA1", "ADRG:XA1", ""],
            *BASE["adrg.csv"][1:],
            ["MDCX", "4", "XB1", "ADRG", "XB1", "ADRG:XA1", "XB1"],
        ],
        adrg_drg_csv=[r for r in BASE["adrg_drg.csv"] if r[2] != "XA15"],
        drg_names_csv=[r for r in BASE["drg_names.csv"] if r[0] != "XA15"] + [["XB1", "b"]],
    )
    assert found(folder) == [("info", "unused-rule", "rules.csv", 12, "rule_id")]


def test_an_entry_shadowed_from_an_earlier_mdc(tmp_path: Path) -> None:
    # MDCZ takes X02 as principal, but MDCX (tried first) takes it and XA1 returns a DRG
    folder = write_ruleset(
        tmp_path / "rs",
        add_mdc_csv=[["3", "MDCZ", "MDC:MDCZ"]],
        add_adrg_csv=[["MDCZ", "1", "ZA1", "ADRG", "ZA1", "ADRG:YA1", "ZA1"]],
        add_rules_csv=[["MDC:MDCZ", "1", "PDX_IN", "MDCZ.mdc_zd", "", "", ""]],
        add_lists_csv=[["MDCZ.mdc_zd", "X02", ""]],
        add_drg_names_csv=[["ZA1", "z"]],
    )
    findings = lint_ruleset(folder)
    assert [(f.code, f.row) for f in findings] == [("shadowed-entry", 6)]
    assert "caught first by XA1 in MDC MDCX" in findings[0].message


def test_a_drg_step_behind_an_earlier_step_is_unreachable(tmp_path: Path) -> None:
    # HAS_CC implies HAS_CC_OR_MCC (XA13, before it); nothing passes the TRUE of XA15
    folder = write_ruleset(
        tmp_path / "rs",
        add_adrg_drg_csv=[["XA1", "4", "XA17", "DRG:XA17"], ["XA1", "5", "XA19", "DRG:XA19"]],
        add_rules_csv=[
            ["DRG:XA17", "1", "HAS_CC", "", "", "", ""],
            ["DRG:XA19", "1", "CMP", "", "los", ">", "60"],
        ],
        add_drg_names_csv=[["XA17", "seven"], ["XA19", "nine"]],
    )
    findings = lint_ruleset(folder)
    assert [(f.code, f.file, f.row, f.field) for f in findings] == [
        ("unreachable-step", "adrg_drg.csv", 7, "drg"),
        ("unreachable-step", "adrg_drg.csv", 8, "drg"),
    ]
    assert "XA17" in findings[0].message and "gets XA13 first" in findings[0].message
    assert "XA19" in findings[1].message and "gets XA15 first" in findings[1].message


def test_contradictory_disabled_and_raising_rules(tmp_path: Path) -> None:
    folder = write_ruleset(
        tmp_path / "rs",
        add_adrg_csv=[
            ["MDCY", "2", "YB1", "ADRG", "YB1", "ADRG:YB1", "YB1"],
            ["MDCY", "3", "YQY", "QY", "YQY", "QY:MDCY", ""],
        ],
        # a step that stands for a source predicate that cannot be evaluated (FORMAT: RAISE)
        add_adrg_drg_csv=[["XC1", "0", "XC10", "DRG:XC10"]],
        add_rules_csv=[
            ["ADRG:YB1", "1", "CMP", "", "age", ">=", "18"],
            ["ADRG:YB1", "2", "CMP", "", "age", "<", "10"],
            ["QY:MDCY", "1", "FALSE", "", "", "", ""],
            ["QY:MDCY", "2", "HAS_PROC", "", "", "", ""],
            ["DRG:XC10", "1", "RAISE", "", "", "", "NameError: XC10"],
        ],
        add_drg_names_csv=[["YB1", "b"], ["YQY", "q"], ["XC10", "x"]],
    )
    # RAISE came with the later rulesets (FORMAT §3): a grouper that does not know it yet
    # refuses the ruleset, and lint says so; the rest does not depend on it
    try:
        T.read_tables(folder)
        refused = 0
    except drgkit.RulesetError:
        refused = 1
    findings = lint_ruleset(folder)
    assert [f.row for f in findings if f.code == "load-error"] == [19] * refused
    findings = [f for f in findings if f.code != "load-error"]
    # YA1 (TRUE) comes first in MDCY, so YB1 is shadowed as well as never true: one finding
    # per entry, the stronger statement (it can never hold at all)
    assert [(f.severity, f.code, f.file, f.row, f.field) for f in findings] == [
        ("warning", "never-true", "adrg.csv", 6, "rule_id"),
        ("warning", "never-true", "adrg_drg.csv", 7, "rule_id"),
        ("info", "disabled", "adrg.csv", 7, "rule_id"),
    ]
    assert "age cannot satisfy all its comparisons" in findings[0].message
    assert "raises an error when reached (NameError: XC10)" in findings[1].message


def test_duplicate_and_conflicting_rows_each_name_both_rows(tmp_path: Path) -> None:
    folder = write_ruleset(
        tmp_path / "rs",
        add_lists_csv=[["XA1.adrg_zd", "X01", ""]],  # row 9: repeats row 5
        add_mcc_csv=[["M01", "2"]],  # row 3: M01 is on row 2 with exclusion table 1
        add_dx_dict_csv=[["X01", "diagnosis X01"]],  # repeats row 2: harmless
    )
    findings = lint_ruleset(folder)
    assert [(f.severity, f.code, f.file, f.row, f.field) for f in findings] == [
        # the grouper refuses the repeated code at lists.csv row 9 first
        ("error", "load-error", "lists.csv", 9, "code"),
        ("error", "conflicting-rows", "mcc.csv", 3, "excl_table"),
        ("warning", "duplicate-row", "dx_dict.csv", 8, "code"),
        ("warning", "duplicate-row", "lists.csv", 9, "code"),
    ]
    assert "'1' there, '2' here" in findings[1].message and "row 2" in findings[1].message
    assert "repeats row 5" in findings[3].message


def test_references_to_nothing_and_empty_lists(tmp_path: Path) -> None:
    folder = write_ruleset(
        tmp_path / "rs",
        add_mdc_csv=[["3", "MDCW", "MDC:MDCY"]],  # no entry
        add_adrg_csv=[["MDCY", "2", "YB1", "ADRG", "YB1", "ADRG:NOWHERE", "YB1"]],
        add_adrg_drg_csv=[["ZZ9", "1", "ZZ91", "DRG:XA15"]],
        add_rules_csv=[
            ["ADRG:NOTUSED", "1", "TRUE", "", "", "", ""],
            ["DRG:XC19", "2", "SDX_IN", "XC19.lit1", "", "", ""],
        ],
        add_lists_csv=[["NOBODY.list", "X01", ""]],
        add_drg_names_csv=[["YB1", "b"], ["ZZ91", "z"]],
    )
    assert found(folder) == [
        ("error", "unknown-rule", "adrg.csv", 6, "rule_id"),
        ("error", "unknown-entry", "adrg_drg.csv", 7, "entry"),
        ("warning", "mdc-without-entries", "mdc.csv", 4, "mdc"),
        # a list that no lists.csv row holds is an empty list (FORMAT.md): the grouper loads
        # the ruleset with a warning, lint says so where the rule names it
        ("warning", "empty-list", "rules.csv", 16, "list_id"),
        ("info", "unused-list", "lists.csv", 9, "list_id"),
        ("info", "unused-rule", "rules.csv", 15, "rule_id"),
    ]


def test_codes_the_dictionaries_do_not_know(tmp_path: Path) -> None:
    folder = write_ruleset(
        tmp_path / "rs",
        dx_dict_csv=[r for r in BASE["dx_dict.csv"] if r[0] not in ("X03", "C01")],
        px_dict_csv=[["P02", "another operation"]],
        dx_map_csv=[["X01", "X01"], ["OLD1", "X09"], ["OLD2", "-"]],
    )
    assert found(folder) == [
        ("warning", "unknown-code", "cc.csv", 2, "code"),
        ("warning", "map-target-unknown", "dx_map.csv", 3, "target"),
        ("warning", "unknown-code", "lists.csv", 4, "code"),  # MDCX.mdc_zd X03
        ("warning", "unknown-code", "lists.csv", 7, "code"),  # XC1.adrg_zd X03
        ("warning", "map-target-unknown", "px_map.csv", 2, "target"),
        ("warning", "unknown-code", "ss_valid.csv", 2, "code"),
    ]


def test_cc_exclusions_that_point_nowhere(tmp_path: Path) -> None:
    folder = write_ruleset(
        tmp_path / "rs",
        add_cc_csv=[["C02", "7"]],  # no principal diagnosis points at table 7
        add_pdx_excl_csv=[["X02", "9"]],  # no CC/MCC is in table 9
        add_dx_dict_csv=[["C02", "c2"]],
    )
    findings = lint_ruleset(folder)
    assert [(f.severity, f.code, f.file, f.row, f.field) for f in findings] == [
        ("warning", "exclusion-unknown", "pdx_excl.csv", 3, "excl_table"),
        ("info", "exclusion-unused", "cc.csv", 3, "excl_table"),
    ]
    assert "'9'" in findings[0].message and "'7'" in findings[1].message


def test_drgs_without_names_and_without_weights(tmp_path: Path) -> None:
    folder = write_ruleset(
        tmp_path / "rs",
        drg_names_csv=[r for r in BASE["drg_names.csv"] if r[0] != "XC19"] + [["GONE9", "old"]],
    )
    assert found(folder) == [
        ("warning", "drg-without-name", "adrg_drg.csv", 5, "drg"),
        ("info", "name-without-drg", "drg_names.csv", 7, "drg"),
    ]
    weights = tmp_path / "weights.csv"
    weights.write_text(
        "DRG编码,DRG名称,RW,基础病组,病组类型,一级医院系数,二级医院系数,三级医院系数\n"
        "0000,未入组,0.2000,,,,,\n"
        "XA11,a,1.5,,,,,\nXA13,a,1.2,,,,,\nXA15,a,1.0,,,,,\nYA19,y,0.9,,,,,\n",
        encoding="utf-8",
    )
    policy = drgkit.default_registry().policy("demo", weights=weights)
    assert found(folder, policy=policy) == [
        ("error", "drg-without-weight", "adrg_drg.csv", 5, "drg"),
        ("warning", "drg-without-name", "adrg_drg.csv", 5, "drg"),
        ("info", "name-without-drg", "drg_names.csv", 7, "drg"),
    ]


def test_a_template_lint_does_not_know_is_not_analysed_but_compared_by_equality(
    tmp_path: Path,
) -> None:
    # YB1 repeats YA1's (unknown) atom and adds one: YA1 (fallback YA1) catches it first
    folder = write_ruleset(
        tmp_path / "rs",
        adrg_csv=[
            *BASE["adrg.csv"][:3],
            ["MDCY", "1", "YA1", "ADRG", "YA1", "ADRG:YA2", "YA1"],
            ["MDCY", "2", "YB1", "ADRG", "YB1", "ADRG:YB1", "YB1"],
        ],
        add_rules_csv=[
            ["ADRG:YA2", "1", "FUTURE_IN", "MDCY.mdc_zd", "", "", ""],
            ["ADRG:YB1", "1", "FUTURE_IN", "MDCY.mdc_zd", "", "", ""],
            ["ADRG:YB1", "2", "CMP", "", "age", ">", "1"],
        ],
        add_drg_names_csv=[["YB1", "b"]],
    )
    findings = lint_ruleset(folder)
    assert [(f.severity, f.code, f.file, f.row, f.field) for f in findings] == [
        ("error", "load-error", "rules.csv", 15, "template"),  # drgkit refuses the template
        ("warning", "shadowed-entry", "adrg.csv", 6, "entry"),
        ("info", "unused-rule", "rules.csv", 9, "rule_id"),  # ADRG:YA1 now unused
        ("info", "not-analysed", "rules.csv", 15, "template"),
    ]
    assert "FUTURE_IN (2 atom(s))" in findings[3].message


def test_findings_as_an_arrow_table_and_by_registered_id() -> None:
    table = lint_ruleset("demo_2024", as_table=True)
    assert table.schema == FINDING_SCHEMA
    # demo 2024's documented anomalies: two translation chains and its disabled QY checks
    assert table.column("code").to_pylist() == ["map-target-unknown"] * 2 + ["disabled"] * 4
    assert drgkit.lint_ruleset is lint_ruleset


def _cli(*args: str) -> tuple[int, str]:
    from drgkit.cli import cli

    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_cli_formats_and_exit_codes(tmp_path: Path) -> None:
    clean = write_ruleset(tmp_path / "clean")
    code, out = _cli("rulesets", "lint", str(clean))
    assert (code, out.strip()) == (0, "0 error(s), 0 warning(s), 0 info(s)")
    broken = write_ruleset(tmp_path / "broken", add_mcc_csv=[["M01", "2"]])
    code, out = _cli("rulesets", "lint", str(broken))
    assert code == 1
    assert out.splitlines()[0].startswith("error   conflicting-rows       mcc.csv:3 [excl_table]:")
    code, out = _cli("rulesets", "lint", str(broken), "--format", "json")
    assert code == 1
    rows = json.loads(out)
    assert [(r["severity"], r["code"], r["file"], r["row"], r["field"]) for r in rows] == [
        ("error", "conflicting-rows", "mcc.csv", 3, "excl_table")
    ]
    code, out = _cli("rulesets", "lint", str(broken), "--format", "csv")
    lines = list(csv.reader(out.splitlines()))
    assert lines[0] == FINDING_SCHEMA.names
    assert lines[1][:5] == ["error", "conflicting-rows", "mcc.csv", "3", "excl_table"]
    code, out = _cli("rulesets", "lint", "demo")
    assert code == 2 and "demo is a region: name one version" in out
    code, out = _cli("rulesets", "lint", str(clean), "--weights", str(tmp_path / "w.csv"))
    assert code == 2 and "give the policy with -p" in out


# ------------------------------------------------------------------ the real rulesets


def test_chs_drg_10_shadowed_entries_never_occur_in_its_oracle(shared: Path) -> None:
    """Each entry lint proves shadowed in chs_drg_10 is an ADRG the reference grouper never
    returned on the 30,000 oracle cases, while the entry that shadows it did; CHS-DRG 1.1 fixed
    these rules and has none."""
    findings = lint_ruleset(shared / "rulesets" / "chs_drg_10")
    shadowed = {}
    for f in findings:
        if f.code == "shadowed-entry":
            words = f.message.split()
            shadowed[words[1]] = words[words.index("by") + 1]
    assert shadowed == {
        "PC1": "PB1",
        "PJ1": "PB1",
        "PK1": "PB1",
        "PR1": "PB1",
        "PS1": "PB1",
        "PT1": "PB1",
        "PT2": "PB1",
        "PU1": "PB1",
        "YR1": "YC1",
        "YR2": "YC1",
        "WC1": "WB1",
        "WJ1": "WB1",
        "WR1": "WB1",
        "WZ1": "WB1",
    }
    with open(shared / "oracle" / "chs_drg_10" / "expected.csv", encoding="utf-8") as f:
        adrgs = {row["adrg"] for row in csv.DictReader(f)}
    assert not set(shadowed) & adrgs
    assert set(shadowed.values()) <= adrgs
    assert not [
        f for f in lint_ruleset(shared / "rulesets" / "chs_drg_11") if f.severity == "error"
    ]
    assert "shadowed-entry" not in {
        f.code for f in lint_ruleset(shared / "rulesets" / "chs_drg_11")
    }


def _column(path: Path, column: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [row[column] for row in csv.DictReader(f)]


def test_lint_runs_over_every_shared_ruleset(shared: Path) -> None:
    """No crash on any of them; a load error exactly when drgkit refuses the ruleset; every
    finding names a table file of the format; and every entry or DRG step lint proves
    unreachable is one the reference grouper never returned on the ruleset's oracle cases."""
    folders = sorted(p for p in (shared / "rulesets").iterdir() if (p / "meta.csv").is_file())
    assert len(folders) >= 28
    proven = 0
    for folder in folders:
        findings = lint_ruleset(folder)
        for f in findings:
            assert f.severity in ("error", "warning", "info") and f.file in T.FILES, f
        errors = [f for f in findings if f.severity == "error"]
        if errors:  # then drgkit must refuse it too (lint found no error otherwise)
            with pytest.raises(drgkit.RulesetError):
                T.read_tables(folder)
        oracle = shared / "oracle" / folder.name / "expected.csv"
        if not oracle.is_file():
            continue
        returned_adrgs = set(_column(oracle, "adrg"))
        returned_drgs = set(_column(oracle, "drg"))
        entries = _column(folder / "adrg.csv", "entry")
        codes = dict(zip(entries, _column(folder / "adrg.csv", "code"), strict=True))
        step_drgs = _column(folder / "adrg_drg.csv", "drg")
        for f in findings:
            name = f.message.split()[1]
            if f.code in ("shadowed-entry", "never-true") and f.file == "adrg.csv":
                # an ADRG with alternative entries (AH1_1, AH1_2) may come from another one
                if list(codes.values()).count(codes[name]) == 1:
                    assert codes[name] not in returned_adrgs, (folder.name, f)
                    proven += 1
            elif (
                f.code in ("unreachable-step", "never-true")
                and f.file == "adrg_drg.csv"
                and step_drgs.count(name) == 1
            ):
                assert name not in returned_drgs, (folder.name, f)
                proven += 1
    assert proven >= 300  # 325 claims on the 28 rulesets of the first run
