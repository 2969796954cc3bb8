"""One house: outputs get the umask's mode, lower layers take objects, no module reaches into
another's private names, every output schema is declared in drgkit.schema."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from drgkit._io import atomic_output, open_writer
from drgkit.settlement import Policy, PolicyError


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_atomic_output_gets_the_umask_mode_not_0600(tmp_path, mask):
    old = os.umask(mask)
    try:
        with atomic_output(tmp_path / "a.txt") as tmp:
            tmp.write_text("x")
        with open_writer(tmp_path / "b.csv") as writer:
            writer.write(pa.RecordBatch.from_pydict({"case_id": ["1"]}))
        # what a plain open() makes under the same umask
        (tmp_path / "plain").write_text("x")
    finally:
        os.umask(old)
    want = 0o666 & ~mask
    assert stat.S_IMODE((tmp_path / "plain").stat().st_mode) == want
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == want
    assert stat.S_IMODE((tmp_path / "b.csv").stat().st_mode) == want


# ------------------------------------------------------------------ mistyped policy values

POLICIES = Path(__file__).resolve().parent.parent / "drgkit" / "policies"


def _demo_policy(tmp_path: Path, old: str, new: str) -> Path:
    text = (POLICIES / "demo.toml").read_text(encoding="utf-8")
    assert old in text
    out = tmp_path / "p.toml"
    out.write_text(text.replace(old, new, 1), encoding="utf-8")
    shutil.copy(POLICIES / "demo-weights.csv", tmp_path / "demo-weights.csv")
    return out


@pytest.mark.parametrize(("old", "new", "key"), [
    ('embedded = "demo-weights.csv"', "embedded = true", "weights.embedded"),
    ('classes.basic = { column = "基础病组", values = ["是"] }', 'classes.basic = "x"',
     "weights.classes.basic"),
    ('classes.basic = { column = "基础病组", values = ["是"] }', 'classes.basic = { values = [] }',
     "weights.classes.basic.column"),
    ('values = ["是"]', "values = 3", "weights.classes.basic.values"),
    ('ungroupable_rows = ["0000"]', "ungroupable_rows = 7", "weights.ungroupable_rows"),
    ('ungroupable_rows = ["0000"]', 'ungroupable_rows = "0000"', "weights.ungroupable_rows"),
    ('rw = "RW"', "rw = [1]", "weights.rw"),
    ('level_coefficients = { "1"', 'level_coefficients = 5\nx = { "1"', "level_coefficients"),
    ('"310" = "employee"', '"310" = { a = 1 }', "schemes.310"),
    ('base = { employee = "15000", resident = "14000" }', "base = 3", "rate.base"),
    ('[shares]\nmethod = "claim"', '[shares]\nmethod = "claim"\nfund_ratio = "0.9"',
     "shares.fund_ratio"),
    ('bands = [{ rw_below = "1", ratio = "3" }, { rw_below = "3", ratio = "2.5" }, '
     '{ ratio = "2" }]', "bands = 4", "outliers.high.bands"),
    ('bands = [{ rw_below = "1", ratio = "3" }, { rw_below = "3", ratio = "2.5" }, '
     '{ ratio = "2" }]', 'bands = ["x"]', "outliers.high.bands"),
    ('[exclusions]', '[hospital_coefficients]\napply = "yes"\n[exclusions]',
     "hospital_coefficients.apply"),
    ('drg = "DRG编码"', 'drg = "DRG编码"\nencoding = "klingon"', "weights.encoding"),
    ('ambiguous = { method = "by_item", factor = "0.9" }', "ambiguous = 1", "special.ambiguous"),
    ('ambiguous = { method = "by_item", factor = "0.9" }', 'ambiguous = { method = [1] }',
     "special.ambiguous.method"),
    ('id = "demo"', 'id = { a = 1 }', "policy.id"),
    ('[schemes]', '[levels]\naliases = ["x"]\n[schemes]', "levels.aliases"),
])
def test_a_mistyped_policy_value_is_a_policy_error_naming_key_and_file(tmp_path, old, new, key):
    path = _demo_policy(tmp_path, old, new)
    with pytest.raises(PolicyError) as err:
        Policy.from_toml(path)
    assert key in str(err.value)
    assert str(path) in str(err.value) or "weights" in key


def test_an_override_through_a_value_that_is_not_a_table_is_a_policy_error(tmp_path):
    path = _demo_policy(tmp_path, 'ruleset = "demo"', 'ruleset = "demo"')
    with pytest.raises(PolicyError, match=r"policy\.id is not a table"):
        Policy.from_toml(path, overrides={"policy.id.x": "1"})


# ------------------------------------------------------------------ budgets out of range


@pytest.fixture(scope="module")
def demo_cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import pyarrow.parquet as pq

    from drgkit import _demo

    path = tmp_path_factory.mktemp("cases") / "cases.parquet"
    pq.write_table(_demo.generate_cases(60, seed=3), path)
    return path


def _cli(*args: Any) -> tuple[int, str]:
    from click.testing import CliRunner

    from drgkit.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize("budget", ["1e309", "1e30", "40000000000000.01"])
def test_a_budget_beyond_any_fund_is_a_clear_error(demo_cases, tmp_path, budget):
    code, text = _cli("settle", demo_cases, "-p", "demo-points", "--budget", f"all={budget}",
                      "-o", tmp_path / "out.csv")
    assert code != 0
    assert "points.budget.all is above the limit of 40000000000000.00 yuan" in text
    assert not (tmp_path / "out.csv").exists()


def test_a_point_value_beyond_int64_is_an_amount_range_error_not_a_kernel_crash():
    from drgkit.settlement._kernel import F_FIXED, AmountRangeError, pay_points

    points = np.array([1], dtype=np.int64)
    formula = np.array([F_FIXED], dtype=np.int8)
    assert pay_points(1, points, formula, 300, 100).tolist() == [3]
    with pytest.raises(AmountRangeError, match="beyond the exact range of int64"):
        pay_points(1, points, formula, 2**63, 100)


# ------------------------------------------------------------------ codes over 64 KB

RULESET_2024 = Path(__file__).resolve().parent.parent / "rulesets" / "demo" / "2024"


@pytest.mark.parametrize("size", [0xFFFF + 1, 21846 * 3])
def test_a_ruleset_code_over_64_kb_is_a_ruleset_error_naming_file_row_and_column(tmp_path, size):
    from drgkit.errors import RulesetError
    from drgkit.ruleset._tables import read_tables

    folder = tmp_path / "rs"
    shutil.copytree(RULESET_2024, folder)
    lists = folder / "lists.csv"
    text = lists.read_text(encoding="utf-8")
    rows = text.count("\n")
    list_id = text.splitlines()[1].split(",")[0]
    code = "码" * (size // 3) if size % 3 == 0 else "A" * size  # 3-byte characters count too
    lists.write_text(text + f"{list_id},{code},\n", encoding="utf-8")
    with pytest.raises(RulesetError) as err:
        read_tables(folder)
    assert (err.value.file, err.value.row, err.value.column) == (str(lists), rows + 1, "code")
    assert "longer than 65535 bytes" in str(err.value)


def test_a_code_table_refuses_a_code_over_64_kb_with_a_drgkit_error():
    from drgkit._codes import CodeTable
    from drgkit.errors import TableError

    assert CodeTable(["A" * 0xFFFF]).id("A" * 0xFFFF) == 0
    with pytest.raises(TableError, match="longer than 65535 bytes"):
        CodeTable(["B", "A" * (0xFFFF + 1)])


def test_a_case_code_over_64_kb_is_a_per_case_status():
    import drgkit

    long_code = "K35.800x001" + "0" * 0x10000
    table = pa.table({"case_id": ["a", "b"], "sex": ["1", "1"], "age": ["30", "30"],
                      "diagnoses": [long_code, "K35.800x001"]})
    result = drgkit.group(table, "demo_2024")
    assert result.num_rows == 2
    status = result.column("status").to_pylist()
    assert status[0] != "ok" and result.column("reason").to_pylist()[0]


# ------------------------------------------------------------------ user input, drgkit errors


def test_a_bad_month_a_column_named_twice_and_an_empty_case_are_drgkit_errors(demo_cases):
    import drgkit
    from drgkit.errors import ArgumentError, CaseDataError, DrgkitError
    from drgkit.settlement import presettle, simulate

    settled = pa.table({"hospital_id": ["H1"], "discharge_date": ["2024-03-01"]})
    with pytest.raises(ArgumentError, match="YYYY-MM"):
        presettle(settled, "demo", month="2024-3")
    with pytest.raises(ArgumentError, match="by names a column twice"):
        simulate(demo_cases, base_ruleset="demo", base_policy="demo",
                 by=("hospital_id", "hospital_id"))
    with pytest.raises(CaseDataError, match="the case is empty") as err:
        drgkit.explain({}, "demo_2024")
    assert err.value.file == "<case>"
    assert issubclass(ArgumentError, DrgkitError)
