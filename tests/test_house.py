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

from drgkit._write import atomic_output, open_writer
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


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('embedded = "demo-weights.csv"', "embedded = true", "weights.embedded"),
        (
            'classes.basic = { column = "基础病组", values = ["是"] }',
            'classes.basic = "x"',
            "weights.classes.basic",
        ),
        (
            'classes.basic = { column = "基础病组", values = ["是"] }',
            "classes.basic = { values = [] }",
            "weights.classes.basic.column",
        ),
        ('values = ["是"]', "values = 3", "weights.classes.basic.values"),
        ('ungroupable_rows = ["0000"]', "ungroupable_rows = 7", "weights.ungroupable_rows"),
        ('ungroupable_rows = ["0000"]', 'ungroupable_rows = "0000"', "weights.ungroupable_rows"),
        ('rw = "RW"', "rw = [1]", "weights.rw"),
        ('level_coefficients = { "1"', 'level_coefficients = 5\nx = { "1"', "level_coefficients"),
        ('"310" = "employee"', '"310" = { a = 1 }', "schemes.310"),
        ('base = { employee = "15000", resident = "14000" }', "base = 3", "rate.base"),
        (
            '[shares]\nmethod = "claim"',
            '[shares]\nmethod = "claim"\nfund_ratio = "0.9"',
            "shares.fund_ratio",
        ),
        (
            'bands = [{ rw_below = "1", ratio = "3" }, { rw_below = "3", ratio = "2.5" }, '
            '{ ratio = "2" }]',
            "bands = 4",
            "outliers.high.bands",
        ),
        (
            'bands = [{ rw_below = "1", ratio = "3" }, { rw_below = "3", ratio = "2.5" }, '
            '{ ratio = "2" }]',
            'bands = ["x"]',
            "outliers.high.bands",
        ),
        (
            "[exclusions]",
            '[hospital_coefficients]\napply = "yes"\n[exclusions]',
            "hospital_coefficients.apply",
        ),
        ('drg = "DRG编码"', 'drg = "DRG编码"\nencoding = "klingon"', "weights.encoding"),
        (
            'ambiguous = { method = "by_item", factor = "0.9" }',
            "ambiguous = 1",
            "special.ambiguous",
        ),
        (
            'ambiguous = { method = "by_item", factor = "0.9" }',
            "ambiguous = { method = [1] }",
            "special.ambiguous.method",
        ),
        ('id = "demo"', "id = { a = 1 }", "policy.id"),
        ("[schemes]", '[levels]\naliases = ["x"]\n[schemes]', "levels.aliases"),
    ],
)
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
    code, text = _cli(
        "settle",
        demo_cases,
        "-p",
        "demo-points",
        "--budget",
        f"all={budget}",
        "-o",
        tmp_path / "out.csv",
    )
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
    table = pa.table(
        {
            "case_id": ["a", "b"],
            "sex": ["1", "1"],
            "age": ["30", "30"],
            "diagnoses": [long_code, "K35.800x001"],
        }
    )
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
        simulate(
            demo_cases, base_ruleset="demo", base_policy="demo", by=("hospital_id", "hospital_id")
        )
    with pytest.raises(CaseDataError, match="the case is empty") as err:
        drgkit.explain({}, "demo_2024")
    assert err.value.file == "<case>"
    assert issubclass(ArgumentError, DrgkitError)


# ------------------------------------------------------------------ the house rules, by AST

import ast  # noqa: E402

PACKAGE = Path(__file__).resolve().parent.parent / "drgkit"
#: the API edge: these resolve names through the registry; every other module is a lower
#: layer and takes objects (or asks a resolver object it was given)
EDGE = {
    "drgkit",
    "drgkit.registry",
    "drgkit._resolve",
    "drgkit.testing",
    "drgkit.cli",
    "drgkit._schemes",
}  # the scheme table: which scheme a named target belongs to


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _source_of(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a ``from … import`` reads from."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _modules() -> list[tuple[str, Path, ast.Module]]:
    return [
        (_module_name(p), p, ast.parse(p.read_text(encoding="utf-8")))
        for p in sorted(PACKAGE.rglob("*.py"))
    ]


def _imports(module: str, path: Path, tree: ast.Module) -> list[tuple[int, str, str, str]]:
    """(line, source module, name, bound as) of every drgkit import, at any depth."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            src = _source_of(module, path, node)
            if src == "drgkit" or src.startswith("drgkit."):
                out += [(node.lineno, src, a.name, a.asname or a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            out += [
                (node.lineno, a.name, "", a.asname or a.name)
                for a in node.names
                if a.name == "drgkit" or a.name.startswith("drgkit.")
            ]
    return out


def _is_edge(module: str) -> bool:
    return module in EDGE or module.startswith("drgkit.cli.")


def test_the_ast_checks_see_every_module_and_their_imports():
    modules = {m for m, _p, _t in _modules()}
    assert {"drgkit.settlement._run", "drgkit.grouping._group", "drgkit._resolve"} <= modules
    m, p, t = next(x for x in _modules() if x[0] == "drgkit.settlement._settle")
    assert _source_of(m, p, ast.parse("from .._io import x").body[0]) == "drgkit._io"
    assert ("drgkit._resolve", "RESOLVER") in {(s, n) for _l, s, n, _a in _imports(m, p, t)}


def test_lower_layers_do_not_import_the_registry():
    found = []
    for module, path, tree in _modules():
        if _is_edge(module):
            continue
        for line, src, name, _as in _imports(module, path, tree):
            if (
                src == "drgkit.registry"
                or (src == "drgkit" and name == "registry")
                or (src == "drgkit" and name in ("default_registry", "Registry"))
            ):
                found.append(f"{module}:{line}")
    assert found == []


def _top_level_owner(tree: ast.Module) -> dict[int, str]:
    """Line -> the top-level function or class it is in."""
    owner = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for sub in ast.walk(node):
                if hasattr(sub, "lineno"):
                    owner[sub.lineno] = node.name
    return owner


def _exported(tree: ast.Module) -> set[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return set(ast.literal_eval(node.value))
    return set()


def test_lower_layers_resolve_names_only_in_their_public_entry_points():
    """A lower module may use the edge's resolver only inside a function or class it exports
    (``settle_batches``, ``group_batches``, ``SettleContext``, …): its runs and helpers are
    given objects, or the resolver as an argument."""
    found = []
    for module, path, tree in _modules():
        if _is_edge(module):
            continue
        names = {
            bound
            for _l, src, name, bound in _imports(module, path, tree)
            if src == "drgkit._resolve" and name not in ("Names", "Resolver")
        }
        if not names:
            continue
        owner, public = _top_level_owner(tree), _exported(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Name)
                and node.id in names
                and owner.get(node.lineno) not in public
            ):
                found.append(
                    f"{module}:{node.lineno} {node.id} in {owner.get(node.lineno, 'module level')}"
                )
    assert found == []


def test_no_module_reaches_into_another_modules_private_names():
    """``from .x import _name`` and ``x._name`` across drgkit modules; importing a private
    module (``from . import _kernel as K``) is fine, and so is a package's ``__init__``
    re-exporting its own submodules."""
    found = []
    for module, path, tree in _modules():
        modules_bound = {}
        for line, src, name, bound in _imports(module, path, tree):
            full = f"{src}.{name}" if name else src
            if name == "" or _is_module(full):
                modules_bound[bound] = full
                continue
            if not name.startswith("_") or name.startswith("__") or src == module:
                continue
            if path.name == "__init__.py" and src.startswith(module + "."):
                continue
            found.append(f"{module}:{line} from {src} import {name}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules_bound
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not _is_module(f"{modules_bound[node.value.id]}.{node.attr}")
            ):
                found.append(f"{module}:{node.lineno} {node.value.id}.{node.attr}")
    assert found == []


# ------------------------------------------------------------------ output schemas, declared once


def test_each_period_output_has_the_schema_declared_in_drgkit_schema(demo_cases):
    import drgkit
    from drgkit import schema as S
    from drgkit.settlement import (
        hospital_totals,
        presettle,
        presettle_all,
        quality_deductions,
        settle,
        settle_period,
    )

    settled = settle(demo_cases, "demo")
    assert settled.num_rows == 60
    assert "readmitted_31d" in settled.column_names  # the demo cases carry the quality flag
    month = str(settled.column("discharge_date")[0])[:7]
    outputs = {
        "hospital_totals": (hospital_totals(settled), S.HOSPITAL_TOTALS_SCHEMA),
        "quality_deductions": (
            quality_deductions(settled, drgkit.settlement.Policy.from_toml(POLICIES / "demo.toml")),
            S.QUALITY_SCHEMA,
        ),
        "settle_period": (
            settle_period(settled, drgkit.settlement.Policy.from_toml(POLICIES / "demo.toml")),
            S.PERIOD_SCHEMA,
        ),
        "presettle": (
            presettle(
                settled, drgkit.settlement.Policy.from_toml(POLICIES / "demo.toml"), month=month
            ),
            S.PRESETTLE_SCHEMA,
        ),
        "presettle_all": (
            presettle_all(settled, drgkit.settlement.Policy.from_toml(POLICIES / "demo.toml")),
            S.PRESETTLE_SCHEMA,
        ),
        "group": (drgkit.group(demo_cases, "demo_2024"), S.GROUP_RESULT_SCHEMA),
    }
    for name, (table, declared) in outputs.items():
        assert table.num_rows > 0, name
        got = pa.schema([pa.field(f.name, f.type) for f in table.schema])
        want = pa.schema([pa.field(f.name, f.type) for f in declared])
        if name == "group":  # the result columns follow the input's kept columns
            got = pa.schema([got.field(n) for n in want.names])
        assert got.equals(want), (name, got, want)
    # money has one Arrow type, owned by the schema module
    from drgkit import _money

    assert _money.MONEY is S.MONEY


# ------------------------------------------------------------------ one half-up, one exact decimal


def test_one_half_up_and_one_exact_decimal_serve_settlement_and_the_catalogue_builder():
    from decimal import Decimal, localcontext
    from fractions import Fraction

    from drgkit._money import half_up, round_fraction, scaled_decimal
    from drgkit.catalogue._build_stats import round_half_up
    from drgkit.settlement._sums import _fraction_text

    big = 10**40 + 7  # more digits than any default decimal context keeps
    with localcontext() as ctx:
        ctx.prec = 5
        assert scaled_decimal(big, 2) == Decimal("100000000000000000000000000000000000000.07")
        assert str(scaled_decimal(-5, 4)) == "-0.0005"
    for x in (
        Fraction(5, 2),
        Fraction(-5, 2),
        Fraction(1, 3),
        Fraction(-7, 20),
        Fraction(-25, 100),
    ):
        assert round_half_up(x, 1) == Fraction(half_up(x * 10), 10)
        assert Fraction(round_fraction(x, 1)) == round_half_up(x, 1)
    assert round_half_up(Fraction(-25, 100), 1) == Fraction(-3, 10)  # away from zero
    assert _fraction_text(Fraction(1, 3)) == "≈ 0.333333"
    assert _fraction_text(Fraction(-5, 2)) == "-2.5"


# ------------------------------------------------------------------ damaged Parquet


def _damaged_parquet(folder: Path) -> Path:
    import pyarrow.parquet as pq

    n = 4000
    table = pa.table(
        {
            "case_id": [f"c{i:06d}" for i in range(n)],
            "diagnoses": [f"K35.{i % 997:03d}" for i in range(n)],
            "sex": ["1"] * n,
            "age": [str(20 + i % 60) for i in range(n)],
        }
    )
    path = folder / "cases.parquet"
    pq.write_table(table, path, compression="snappy", row_group_size=1000)
    meta = pq.ParquetFile(path).metadata
    # zero the middle of the second row group's diagnoses chunk: the footer stays readable
    chunk = meta.row_group(1).column(1)
    start = chunk.data_page_offset
    data = bytearray(path.read_bytes())
    middle = start + chunk.total_compressed_size // 2
    data[middle : middle + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("as_folder", [False, True])
def test_damaged_parquet_data_is_a_case_data_error_naming_the_file(tmp_path, as_folder):
    import drgkit
    from drgkit.errors import CaseDataError

    path = _damaged_parquet(tmp_path)
    target = tmp_path if as_folder else path
    damaged = r"damaged Parquet data after [0-9,]+ rows: Corrupt snappy"
    with pytest.raises(CaseDataError, match=damaged) as err:
        drgkit.group(target, "demo_2024")
    assert err.value.file == str(target)


def test_each_alliance_table_has_the_schema_declared_in_drgkit_schema():
    import test_alliance as TA

    from drgkit import schema as S
    from drgkit.alliance import Alliance, split

    r = split(
        TA.cases(("c1", "P1", "100.00", "90.00", None), ("c2", "L3", "1000.00", "800.00", "c1")),
        TA.model(Alliance("A", TA.THREE)),
    )
    declared = {
        "alliances": S.ALLIANCE_SUMMARY_SCHEMA,
        "members": S.ALLIANCE_MEMBERS_SCHEMA,
        "items": S.ALLIANCE_ITEMS_SCHEMA,
        "cases": S.ALLIANCE_CASES_SCHEMA,
        "transfers": S.ALLIANCE_TRANSFERS_SCHEMA,
    }
    for name, schema in declared.items():
        table = getattr(r, name)
        assert table.num_rows > 0 or name == "items", name  # no package or shared items here
        assert table.schema.equals(schema), (name, table.schema, schema)


def test_dip_results_have_the_schema_declared_in_drgkit_schema(demo_cases):
    import drgkit
    from drgkit import schema as S
    from drgkit.grouping import _dip

    result = drgkit.group_dip(demo_cases, "dip_demo_2024")
    assert result.num_rows == 60
    assert result.schema.equals(S.DIP_RESULT_SCHEMA)
    assert _dip.DIP_RESULT_SCHEMA is S.DIP_RESULT_SCHEMA is drgkit.DIP_RESULT_SCHEMA


def test_both_schemes_refuse_bad_costs_with_the_same_reasons(demo_cases):
    """One rule reads the cost and the patient's share for DRG and DIP settlement."""
    import pyarrow.parquet as pq

    from drgkit.settlement import settle

    table = pq.read_table(demo_cases).slice(0, 5)
    costs = ["", "abc", "-1.00", "5000000000.00", "100.00"]
    table = table.set_column(
        table.schema.get_field_index("total_cost"), "total_cost", pa.array(costs, pa.string())
    )
    table = table.set_column(
        table.schema.get_field_index("self_pay"),
        "self_pay",
        pa.array(["0", "0", "0", "0", "x"], pa.string()),
    )
    want = ["cost_missing", "cost_invalid", "cost_negative", "cost_too_large"]
    drg = settle(table, "demo").column("reason").to_pylist()
    assert drg == [*want, "patient_share_invalid"]
    dip = settle(table, "dip-national-1.0").column("reason").to_pylist()
    assert dip[:4] == want  # the DIP policy takes the share by ratio: no self-pay check


@pytest.mark.parametrize("policy_id", ["demo", "demo-points", "dip-national-1.0"])
def test_settled_tables_have_the_schema_declared_in_drgkit_schema(demo_cases, policy_id):
    from drgkit import schema as S
    from drgkit._resolve import resolve_policy
    from drgkit.settlement import settle

    policy = resolve_policy(policy_id)
    table = settle(demo_cases, policy)
    # a DRG settlement carries the monitoring columns its input has (the demo has all of them)
    carried = ("mdc", "los", "leaving_type", "drug_cost", "consumables_cost", "doctor")
    declared = (
        S.dip_settle_schema(policy)
        if policy.method == "dip"
        else S.settle_schema(policy, carried=carried)
    )
    assert table.num_rows == 60
    assert table.schema.equals(declared, check_metadata=True)
    if policy.method == "points":
        assert table.schema.field("points").type == pa.decimal128(18, policy.point_decimals)


def test_simulation_tables_have_the_columns_declared_in_drgkit_schema(demo_cases):
    from drgkit import schema as S
    from drgkit.settlement import simulate

    sim = simulate(
        demo_cases,
        base_ruleset="demo_2023",
        base_policy="demo",
        alt_ruleset="demo_2024",
        by=("hospital_id", "department"),
    )
    key = sim.table.schema
    assert key.names[:2] == ["hospital_id", "department"]
    assert pa.schema(list(key)[2:]).equals(S.SIMULATE_KEY_SCHEMA)
    cases = sim.cases.schema
    assert cases.names[:3] == ["case_id", "hospital_id", "department"]
    assert pa.schema(list(cases)[3:]).equals(S.SIMULATE_CASE_SCHEMA)
    assert sim.table.num_rows > 0 and sim.cases.num_rows == 60


def test_one_128_bit_half_up_serves_points_payments_and_dip_cumulative_amounts():
    import random

    from drgkit.settlement._dip_run import cumulative_round
    from drgkit.settlement._kernel import SATURATED, half_up_u128, muldiv_round

    def exact(x: int, d: int) -> int:
        q = (2 * x + d) // (2 * d)
        return q if q < 2**63 else int(SATURATED)

    rng = random.Random(5)
    cp = np.array([rng.randrange(2**40) for _ in range(50)], np.int64)
    ci = np.array([rng.randrange(2**40) for _ in range(50)], np.int64)
    for _ in range(40):
        a, b, d = rng.randrange(2**62), rng.randrange(2**62), rng.randrange(1, 2**62)
        assert muldiv_round(a, b, d) == exact(a * b, d)
        assert muldiv_round(-a, b, d) == -exact(a * b, d)
        got = cumulative_round(cp, ci, a % 2**30, b % 2**30, d % 2**40 + 1)
        assert got.tolist() == [
            exact(int(x) * (a % 2**30) + int(y) * (b % 2**30), d % 2**40 + 1)
            for x, y in zip(cp, ci, strict=True)
        ]
    assert half_up_u128(np.uint64(0), np.uint64(5), 2) == 3  # 2.5 → 3
    assert half_up_u128(np.uint64(1), np.uint64(0), 2**62 - 1) == 4  # 2^64 / (2^62 - 1) ≈ 4
