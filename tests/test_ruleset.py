"""Ruleset tables: validation names file, row and column; the compiled cache is keyed by content."""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import pytest
from conftest import DEMO, SHARED_RULESETS

import drgkit
from drgkit.errors import RulesetError
from drgkit.ruleset import _compile
from drgkit.ruleset._tables import read_tables


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rs"
    shutil.copytree(DEMO / "2024", target)
    return target


def _rewrite(path: Path, fn) -> None:
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    rows = fn(rows)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def _set_cell(path: Path, row: int, column: str, value: str) -> None:
    """Set one cell; ``row`` is the file row (header = 1)."""

    def fn(rows):
        rows[row - 1][rows[0].index(column)] = value
        return rows

    _rewrite(path, fn)


def _first_row(path: Path, **match: str) -> int:
    with open(path, encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            if all(row[k] == v for k, v in match.items()):
                return n
    raise AssertionError(f"no row {match} in {path}")


def test_demo_and_shared_rulesets_validate(request) -> None:
    for version in ("2023", "2024"):
        tables = read_tables(DEMO / version)
        assert tables.mdcs and tables.entries and tables.steps
    from conftest import shared_dir

    root = shared_dir() / "rulesets"
    if root.is_dir():
        for name in SHARED_RULESETS:
            assert read_tables(root / name).warnings == ()


def _expect(folder: Path, file: str, row: int | None, column: str | None, words: str) -> None:
    with pytest.raises(RulesetError) as info:
        read_tables(folder)
    err = info.value
    assert Path(err.file).name == file, str(err)
    assert err.row == row, str(err)
    assert err.column == column, str(err)
    assert words in str(err), str(err)
    # the message itself names all three, for people
    text = str(err)
    assert file in text
    if row is not None:
        assert f"row {row}" in text
    if column is not None:
        assert repr(column) in text


def test_unknown_template(demo_copy: Path) -> None:
    rules = demo_copy / "rules.csv"
    row = _first_row(rules, template="PDX_IN")
    _set_cell(rules, row, "template", "PDX_INN")
    _expect(demo_copy, "rules.csv", row, "template", "unknown template 'PDX_INN'")


def test_list_that_does_not_exist_is_empty_with_a_warning(demo_copy: Path) -> None:
    """A list is written as its member rows, so a list with no rows is an empty list (hefei_2023
    has one: MB1X.adrg_ss); the tables load, and a warning names the list and the row."""
    rules = demo_copy / "rules.csv"
    row = _first_row(rules, template="PDX_IN")
    _set_cell(rules, row, "list_id", "NOPE.adrg_zd")
    warnings = read_tables(demo_copy).warnings
    assert any("NOPE.adrg_zd" in w and "empty" in w and f"row {row}" in w for w in warnings)


def test_cmp_with_text_value(demo_copy: Path) -> None:
    rules = demo_copy / "rules.csv"
    row = _first_row(rules, template="CMP")
    _set_cell(rules, row, "value", "twenty")
    _expect(demo_copy, "rules.csv", row, "value", "compares with a number")


def test_cmp_unknown_field_and_op(demo_copy: Path) -> None:
    rules = demo_copy / "rules.csv"
    row = _first_row(rules, template="CMP")
    _set_cell(rules, row, "field", "height")
    _expect(demo_copy, "rules.csv", row, "field", "field must be one of")
    _set_cell(rules, row, "field", "age")
    _set_cell(rules, row, "op", "=>")
    _expect(demo_copy, "rules.csv", row, "op", "op must be one of")


def test_cmp_str_rejects_ordering(demo_copy: Path) -> None:
    rules = demo_copy / "rules.csv"
    row = _first_row(rules, template="CMP_STR")
    _set_cell(rules, row, "op", "<")
    _expect(demo_copy, "rules.csv", row, "op", "CMP_STR compares text with == or != only")


def test_proc_tags_unknown_tag(demo_copy: Path) -> None:
    rules = demo_copy / "rules.csv"
    row = _first_row(rules, template="PROC_TAGS")
    _set_cell(rules, row, "value", "1+99")
    _expect(demo_copy, "rules.csv", row, "value", "tag '99' does not occur")


def test_duplicate_code_in_list(demo_copy: Path) -> None:
    lists = demo_copy / "lists.csv"

    def dup(rows):
        return [*rows, rows[1]]

    _rewrite(lists, dup)
    with open(lists, encoding="utf-8") as fh:
        last = sum(1 for _ in fh)
    _expect(demo_copy, "lists.csv", last, "code", "appears twice in list")


def test_wrong_field_count(demo_copy: Path) -> None:
    mcc = demo_copy / "mcc.csv"
    _rewrite(mcc, lambda rows: [*rows[:3], [rows[3][0]], *rows[4:]])
    _expect(demo_copy, "mcc.csv", 4, None, "expected 2 fields")


def test_bad_header(demo_copy: Path) -> None:
    _rewrite(demo_copy / "cc.csv", lambda rows: [["code", "table"], *rows[1:]])
    _expect(demo_copy, "cc.csv", 1, "excl_table", "header must be code,excl_table")


def test_missing_file(demo_copy: Path) -> None:
    (demo_copy / "pdx_excl.csv").unlink()
    with pytest.raises(RulesetError, match=r"pdx_excl\.csv: file is missing"):
        read_tables(demo_copy)


def test_entry_with_unknown_mdc_and_rule(demo_copy: Path) -> None:
    adrg = demo_copy / "adrg.csv"
    _set_cell(adrg, 2, "mdc", "MDCQQ")
    _expect(demo_copy, "adrg.csv", 2, "mdc", "MDC 'MDCQQ' is not in mdc.csv")


def test_step_rule_without_atoms(demo_copy: Path) -> None:
    steps = demo_copy / "adrg_drg.csv"
    _set_cell(steps, 3, "rule_id", "DRG:NOWHERE")
    _expect(demo_copy, "adrg_drg.csv", 3, "rule_id", "rule 'DRG:NOWHERE' has no atoms")


def test_seq_not_a_number(demo_copy: Path) -> None:
    _set_cell(demo_copy / "mdc.csv", 3, "seq", "two")
    _expect(demo_copy, "mdc.csv", 3, "seq", "must be a whole number")


def test_qy_entry_with_fallback(demo_copy: Path) -> None:
    adrg = demo_copy / "adrg.csv"
    row = _first_row(adrg, kind="QY")
    _set_cell(adrg, row, "fallback", "BQY")
    _expect(demo_copy, "adrg.csv", row, "fallback", "takes no fallback")


def test_format_version(demo_copy: Path) -> None:
    meta = demo_copy / "meta.csv"
    row = _first_row(meta, key="format_version")
    _set_cell(meta, row, "value", "2")
    _expect(demo_copy, "meta.csv", None, "value", "format_version must be 1")


def test_not_utf8(demo_copy: Path) -> None:
    (demo_copy / "dx_dict.csv").write_bytes("code,name\nA00.000,霍乱\n".encode("gbk"))
    (demo_copy / "cc.csv").write_bytes("code,excl_table\nA00.000,霍乱\n".encode("gbk"))
    with pytest.raises(RulesetError, match=r"cc\.csv: not UTF-8"):
        read_tables(demo_copy)


def test_cli_validate_reports_the_location(demo_copy: Path) -> None:
    from click.testing import CliRunner

    from drgkit.cli import cli

    rules = demo_copy / "rules.csv"
    row = _first_row(rules, template="PDX_IN")
    _set_cell(rules, row, "template", "PDXIN")
    result = CliRunner().invoke(cli, ["rulesets", "validate", str(demo_copy)])
    assert result.exit_code == 2
    assert f"rules.csv, row {row}, column 'template': unknown template 'PDXIN'" in result.output


# --------------------------------------------------------------------------- the cache


def test_cache_is_keyed_by_content(demo_copy: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DRGKIT_CACHE_DIR", str(tmp_path / "cache"))
    first = _compile.load_compiled(demo_copy)
    files = list((tmp_path / "cache").glob("*.npz"))
    assert len(files) == 1 and first.content_hash[:32] in files[0].name

    calls = []
    real = _compile.compile_tables
    monkeypatch.setattr(_compile, "compile_tables", lambda t: calls.append(1) or real(t))
    again = _compile.load_compiled(demo_copy)
    assert calls == [] and again.content_hash == first.content_hash
    assert again.names == first.names

    # any change of content is a new key, and the change takes effect
    names = demo_copy / "drg_names.csv"
    names.write_text(names.read_text(encoding="utf-8") + "ZZ99,测试\n", encoding="utf-8")
    changed = _compile.load_compiled(demo_copy)
    assert calls == [1] and changed.content_hash != first.content_hash

    # a corrupt cache entry is rebuilt, not trusted
    entry = next(
        p for p in (tmp_path / "cache").glob("*.npz") if changed.content_hash[:32] in p.name
    )
    entry.write_bytes(b"garbage")
    _compile.load_compiled(demo_copy)
    assert calls == [1, 1]


def test_cached_load_is_fast_for_a_national_ruleset(shared: Path) -> None:
    """The compiled cache makes loading cheap; the figure itself is a benchmark, so this
    only checks that a cached load does no compiling."""
    folder = shared / "rulesets" / "chs_drg_11"
    _compile.load_compiled(folder)
    started = time.perf_counter()
    compiled = _compile.load_compiled(folder)
    elapsed = time.perf_counter() - started
    assert compiled.names["mdcs"][0] == "MDCA"
    print(f"cached load of chs_drg_11: {elapsed * 1000:.0f} ms")


def test_read_only_cache_does_not_stop_grouping(
    demo_copy: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("DRGKIT_CACHE_DIR", str(tmp_path / "ro"))

    def refuse(self, path):
        raise PermissionError(f"read-only: {path}")

    monkeypatch.setattr(_compile.CompiledRuleset, "save", refuse)
    compiled = _compile.load_compiled(demo_copy)
    assert compiled.names["mdcs"]
    result = drgkit.group(
        {"case_id": ["a"], "diagnoses": ["I21.000"], "sex": ["1"], "age": ["50"]},
        drgkit.Ruleset(drgkit.RulesetInfo("x", demo_copy), compiled),
    )
    assert result.num_rows == 1


def test_ruleset_identity_from_meta() -> None:
    rs = drgkit.Ruleset.from_path(DEMO / "2023")
    assert rs.info.id == "demo_2023"
    assert rs.info.region == "demo"
    assert str(rs.info.effective_from) == "2023-01-01"
    assert len(rs.content_hash) == 64


def test_a_drg_code_listed_twice_is_refused(demo_copy: Path) -> None:
    """A DRG code belongs to one ADRG (settlement prices by the code): a step of another ADRG
    or a second step of the same entry returning it is an error naming file, row and column.
    Alternative entries of one ADRG (chs_drg_10's AH1_1/AH1_2 → AH19) stay valid: see
    test_demo_and_shared_rulesets_validate."""
    steps = demo_copy / "adrg_drg.csv"
    _set_cell(steps, 4, "drg", "AB19")  # AH1's second step returns AB1's group
    _expect(
        demo_copy, "adrg_drg.csv", 4, "drg", "DRG AB19 is listed twice (first on row 2, ADRG AB1)"
    )
    _set_cell(steps, 4, "drg", "AH11")  # AH1 returns AH11 from two steps
    _expect(
        demo_copy, "adrg_drg.csv", 4, "drg", "DRG AH11 is listed twice (first on row 3, entry AH1)"
    )


def test_a_drg_named_twice_is_refused(demo_copy: Path) -> None:
    names = demo_copy / "drg_names.csv"
    _rewrite(names, lambda rows: [*rows, [rows[1][0], "另一个名字"]])
    with open(names, encoding="utf-8") as fh:
        last = sum(1 for _ in fh)
    _expect(demo_copy, "drg_names.csv", last, "drg", "DRG AB19 is listed twice (first on row 2)")
