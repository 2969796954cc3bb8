"""``drgkit rulesets diff``: known differences between hand-written rulesets, the demo's
documented 2023 → 2024 changes, counts on chs_drg_10 → chs_drg_11 checked against a plain
reading of the CSV files, and the migration impact of a ruleset change on cases (DRG moves and
the payment change through simulate).
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
from click.testing import CliRunner
from test_lint import BASE, write_ruleset

import drgkit
from drgkit.ruleset._diff import DIFF_SCHEMA, diff_rulesets, migration_impact


def changes(diff) -> list[tuple[str, str, str, str]]:
    return [(c.kind, c.code, c.before, c.after) for c in diff.changes]


def test_a_ruleset_against_itself_has_no_change(tmp_path: Path) -> None:
    a = write_ruleset(tmp_path / "a")
    assert changes(diff_rulesets(a, a)) == []


def test_every_kind_of_known_difference_between_two_hand_written_versions(tmp_path: Path) -> None:
    a = write_ruleset(tmp_path / "a")
    rules = [r for r in BASE["rules.csv"] if r[0] not in ("ADRG:XC1", "DRG:XA13", "DRG:XA15")]
    b = write_ruleset(
        tmp_path / "b",
        adrg_csv=[*BASE["adrg.csv"], ["MDCY", "2", "YB1", "ADRG", "YB1", "ADRG:YB1", "YB1"]],
        adrg_drg_csv=[
            ["XA1", "1", "XA11", "DRG:XA11"],
            ["XA1", "2", "XA13", "DRG:XA13"],
            ["XA1", "3", "XA1Z", "DRG:XA1Z"],  # XA15 under another code, same rule
            ["XC1", "1", "XC19", "DRG:XC19"],
            ["YA1", "1", "YA19", "DRG:YA19"],
            ["YB1", "1", "YB19", "DRG:YA19"],
        ],
        rules_csv=[
            *rules,
            ["ADRG:XC1", "1", "PDX_IN", "XC1.adrg_zd", "", "", ""],
            ["ADRG:XC1", "2", "CMP", "", "age", ">=", "16"],
            ["DRG:XA13", "1", "HAS_CC", "", "", "", ""],
            ["DRG:XA1Z", "1", "TRUE", "", "", "", ""],
            ["ADRG:YB1", "1", "HAS_PROC", "", "", "", ""],
            ["ADRG:YB1", "2", "PPROC_IN", "YB1.adrg_ss", "", "", ""],
        ],
        lists_csv=[
            ["MDCX.mdc_zd", "X01", ""],
            ["MDCX.mdc_zd", "X02", ""],
            ["MDCX.mdc_zd", "X03", ""],
            ["XA1.adrg_zd", "X01", ""],
            ["XC1.adrg_zd", "X02", ""],  # X02 moves XA1 -> XC1
            ["XC1.adrg_zd", "X03", ""],
            ["MDCY.mdc_zd", "Y01", ""],
            ["MDCY.mdc_zd", "Y02", ""],  # a new principal diagnosis of MDCY
            ["YB1.adrg_ss", "P01", ""],
        ],
        mcc_csv=[],
        cc_csv=[["C01", "2"], ["M01", "1"], ["C02", "1"]],
        pdx_excl_csv=[["X01", "1"], ["X02", "2"]],
        drg_names_csv=[
            ["XA11", "group XA11"],
            ["XA13", "group XA13"],
            ["XA1Z", "group XA15"],
            ["XC19", "group XC19, renamed"],
            ["YA19", "group YA19"],
            ["YB19", "group YB19"],
        ],
    )
    diff = diff_rulesets(a, b)
    assert changes(diff) == [
        ("dx-mdc", "Y02", "", "MDCY"),
        ("dx-adrg", "X02", "XA1", "XC1"),
        ("px-adrg", "P01", "", "YB1"),
        ("adrg-added", "YB1", "", "MDCY"),
        (
            "entry-rule",
            "XC1",
            "PDX_IN XC1.adrg_zd; CMP age >= 18",
            "PDX_IN XC1.adrg_zd; CMP age >= 16",
        ),
        ("drg-added", "YB19", "", "group YB19"),
        ("drg-recoded", "XA15", "XA15", "XA1Z"),
        ("drg-renamed", "XC19", "group XC19", "group XC19, renamed"),
        ("drg-rule", "XA13", "HAS_CC_OR_MCC", "HAS_CC"),
        ("cc-added", "C02", "", "1"),
        ("mcc-to-cc", "M01", "1", "1"),
        ("cc-exclusion", "C01", "1", "2"),
        ("pdx-exclusion", "X02", "", "2"),
    ]
    assert diff.table.schema == DIFF_SCHEMA and diff.table.num_rows == 13
    back = changes(diff_rulesets(b, a))
    assert ("dx-adrg", "X02", "XC1", "XA1") in back and ("adrg-removed", "YB1", "MDCY", "") in back
    assert ("cc-to-mcc", "M01", "1", "1") in back and (
        "drg-recoded",
        "XA1Z",
        "XA1Z",
        "XA15",
    ) in back


def test_the_demo_2024_changes_are_the_documented_ones() -> None:
    """rulesets/demo/README.md, "What changed in 2024"."""
    diff = drgkit.diff_rulesets("demo_2023", "demo_2024")
    assert changes(diff) == [
        ("dx-adrg", "G45.900", "BZ1", "BR2"),
        (
            "entry-rule",
            "FQY",
            "FALSE; HAS_PROC; ANY_PROC_IN SS_VALID",
            "HAS_PROC; ANY_PROC_IN SS_VALID",
        ),
        ("drg-added", "GD23", "", "阑尾切除术，伴并发症或合并症"),
        ("drg-added", "GD25", "", "阑尾切除术，不伴并发症或合并症"),
        ("drg-removed", "GD29", "阑尾切除术", ""),
        ("drg-recoded", "BR27", "BR27", "BR2R"),
        ("cc-to-mcc", "J15.900", "6", "6"),
    ]


def _owners(folder: Path, templates: set[str], level: str) -> dict[str, frozenset[str]]:
    """code -> ADRGs (or MDCs) whose own rules list it, read plainly with pandas."""
    rules = pd.read_csv(folder / "rules.csv", dtype=str, keep_default_na=False)
    lists = pd.read_csv(folder / "lists.csv", dtype=str, keep_default_na=False)
    if level == "adrg":
        owners = pd.read_csv(folder / "adrg.csv", dtype=str, keep_default_na=False)
        owners = owners[owners["kind"] == "ADRG"][["code", "rule_id"]]
    else:
        owners = pd.read_csv(folder / "mdc.csv", dtype=str, keep_default_na=False)
        owners = owners.rename(columns={"mdc": "code"})[["code", "rule_id"]]
    used = rules[rules["template"].isin(templates) & (rules["list_id"] != "SS_VALID")]
    joined = owners.merge(used[["rule_id", "list_id"]], on="rule_id").merge(
        lists[["list_id", "code"]].rename(columns={"code": "member"}), on="list_id"
    )
    return {m: frozenset(g["code"]) for m, g in joined.groupby("member")}


def _moved(a: dict[str, frozenset[str]], b: dict[str, frozenset[str]]) -> set[str]:
    return {c for c in set(a) | set(b) if a.get(c, frozenset()) != b.get(c, frozenset())}


def test_chs_drg_10_to_11_counts_match_a_plain_reading_of_the_tables(shared: Path) -> None:
    old, new = shared / "rulesets" / "chs_drg_10", shared / "rulesets" / "chs_drg_11"
    diff = diff_rulesets(old, new)
    dx, px = {"PDX_IN", "ANY_DX_IN"}, {"PPROC_IN", "ANY_PROC_IN", "SPROC_IN", "PROC_TAGS"}
    for kind, templates, level in (
        ("dx-adrg", dx, "adrg"),
        ("px-adrg", px, "adrg"),
        ("dx-mdc", dx, "mdc"),
    ):
        expected = _moved(_owners(old, templates, level), _owners(new, templates, level))
        assert set(diff.of(kind)) == expected, kind
    assert len(diff.of("dx-adrg")) == 5031  # the figure of the first run, now pinned

    def codes(folder: Path, name: str, column: str) -> dict[str, str]:
        with open(folder / name, encoding="utf-8") as f:
            return {r[column]: r.get("name", r.get("excl_table", "")) for r in csv.DictReader(f)}

    drgs_old, drgs_new = codes(old, "adrg_drg.csv", "drg"), codes(new, "adrg_drg.csv", "drg")
    recoded = diff.of("drg-recoded")
    assert set(diff.of("drg-removed")) | set(recoded) == set(drgs_old) - set(drgs_new)
    assert set(diff.of("drg-added")) | {b for _a, b in recoded.values()} == set(drgs_new) - set(
        drgs_old
    )
    names_old, names_new = codes(old, "drg_names.csv", "drg"), codes(new, "drg_names.csv", "drg")
    assert set(diff.of("drg-renamed")) == {
        d for d in set(drgs_old) & set(drgs_new) if names_old.get(d) != names_new.get(d)
    }
    mcc_old, mcc_new = codes(old, "mcc.csv", "code"), codes(new, "mcc.csv", "code")
    cc_old, cc_new = codes(old, "cc.csv", "code"), codes(new, "cc.csv", "code")
    assert set(diff.of("mcc-added")) == set(mcc_new) - set(mcc_old) - set(cc_old)
    assert set(diff.of("cc-to-mcc")) == (set(mcc_new) - set(mcc_old)) & set(cc_old)
    assert set(diff.of("cc-removed")) == set(cc_old) - set(cc_new) - set(mcc_new)


# ------------------------------------------------------------------ migration impact

SCHEMA = pa.schema(
    [
        ("case_id", pa.string()),
        ("hospital_id", pa.string()),
        ("hospital_level", pa.string()),
        ("insurance_type", pa.string()),
        ("sex", pa.string()),
        ("age", pa.string()),
        ("department", pa.string()),
        ("los", pa.string()),
        ("leaving_type", pa.string()),
        ("diagnoses", pa.list_(pa.string())),
        ("procedures", pa.list_(pa.string())),
        ("discharge_date", pa.string()),
        ("total_cost", pa.string()),
        ("self_pay", pa.string()),
        ("own_pay", pa.string()),
    ]
)
#: a TIA (短暂性脑缺血发作) of a 60-year-old man without complication, level-3 hospital,
#: employee scheme: BZ15 (RW 0.78, level coefficient 1.15) under demo_2023, BR25 (RW 1.02, a
#: basic group: 1.02 at every level) under demo_2024, both at 15000 yuan per RW (demo policy)
TIA = {
    "hospital_id": "H1",
    "hospital_level": "3",
    "insurance_type": "310",
    "sex": "1",
    "age": "60",
    "department": "0303",
    "los": "5",
    "leaving_type": "1",
    "diagnoses": ["G45.900"],
    "procedures": [],
    "discharge_date": "2023-06-01",
    "total_cost": "9000.00",
    "self_pay": "0",
    "own_pay": "0",
}


def demo_cases() -> pa.Table:
    rows = [
        {**TIA, "case_id": "tia"},
        {**TIA, "case_id": "infarction", "diagnoses": ["I63.900"], "department": "0304"},
        {**TIA, "case_id": "tia2", "hospital_id": "H2"},
    ]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def test_migration_counts_moves_and_prices_them_through_simulate() -> None:
    m = migration_impact(demo_cases(), "demo_2023", "demo_2024", policy_a="demo")
    assert (m.cases, m.changed, m.status_changed, m.moves) == (3, 2, 0, 1)
    assert m.matrix.to_pylist() == [{"drg_a": "BZ15", "drg_b": "BR25", "cases": 2}]
    # TIA: 0.78 × 15000 × 1.15 = 13455.00 → 1.02 × 15000 × 1.02 = 15606.00, +2151.00 each
    by_hospital = {r["hospital_id"]: r for r in m.simulations["hospital_id"].table.to_pylist()}
    assert {h: r["change"] for h, r in by_hospital.items()} == {
        "H1": Decimal("2151.00"),
        "H2": Decimal("2151.00"),
    }
    assert by_hospital["H1"]["regrouping"] == Decimal("2151.00")
    by_dept = {r["department"]: r["change"] for r in m.simulations["department"].table.to_pylist()}
    assert by_dept == {"0303": Decimal("4302.00"), "0304": Decimal("0.00")}
    by_drg = {r["drg"]: r["change"] for r in m.simulations["drg"].table.to_pylist()}
    assert by_drg == {"BR25": Decimal("0.00"), "BZ15": Decimal("4302.00")}
    # without a policy: only the moves
    bare = migration_impact(demo_cases(), "demo_2023", "demo_2024", top=0)
    assert (bare.changed, bare.matrix.num_rows, dict(bare.simulations)) == (2, 0, {})


def test_migration_of_generated_cases_agrees_with_simulate_per_case(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from drgkit import _demo

    path = tmp_path / "cases.parquet"
    pq.write_table(_demo.generate_cases(150, seed=11), path)
    m = migration_impact(
        path, "demo_2023", "demo_2024", policy_a="demo", by=("hospital_id",), top=1000
    )
    per_case = m.simulations["hospital_id"].cases.to_pylist()
    moved = [(r["drg_base"], r["drg_alt"]) for r in per_case if r["drg_base"] != r["drg_alt"]]
    assert m.changed == len(moved) == sum(m.matrix.column("cases").to_pylist())
    assert m.moves == m.matrix.num_rows


def _cli(*args: str) -> tuple[int, str]:
    """Exit code and stdout (data warnings go to stderr)."""
    from drgkit.cli import cli

    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def test_cli_text_json_and_csv(tmp_path: Path) -> None:
    code, out = _cli("rulesets", "diff", "demo_2023", "demo_2024")
    assert code == 0, out
    assert out.startswith("ruleset diff demo_2023 → demo_2024: 7 change(s)")
    assert "  G45.900          BZ1  →  BR2" in out
    code, out = _cli("rulesets", "diff", "demo_2023", "demo_2024", "--format", "csv")
    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == DIFF_SCHEMA.names and ["dx-adrg", "G45.900", "BZ1", "BR2"] in rows
    cases = tmp_path / "cases.parquet"
    import pyarrow.parquet as pq

    pq.write_table(demo_cases(), cases)
    moves = tmp_path / "moves.csv"
    code, out = _cli(
        "rulesets",
        "diff",
        "demo_2023",
        "demo_2024",
        "--cases",
        str(cases),
        "-p",
        "demo",
        "--format",
        "json",
        "--moves-out",
        str(moves),
    )
    assert code == 0, out
    data = json.loads(out)
    assert data["counts"]["dx-adrg"] == 1
    mig = data["migration"]
    assert (mig["cases"], mig["changed"], mig["matrix"]) == (
        3,
        2,
        [{"drg_a": "BZ15", "drg_b": "BR25", "cases": 2}],
    )
    assert {r["hospital_id"]: r["change"] for r in mig["payment"]["hospital_id"]} == {
        "H1": "2151.00",
        "H2": "2151.00",
    }
    assert moves.read_text(encoding="utf-8").splitlines()[1].replace('"', "") == "BZ15,BR25,2"
    code, out = _cli("rulesets", "diff", "demo_2023", "demo_2024", "-p", "demo")
    assert code == 2 and "give the cases with --cases" in out
