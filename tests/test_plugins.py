"""The plugin contract from the outside: a third-party plugin installed through an entry point
uses every hook; a broken plugin is named, not a traceback; the fixtures plugin authors get."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO

import drgkit
from drgkit import hookspecs
from drgkit.registry import PluginError, Registry, plugin_manager

pytest_plugins = ["pytester", "drgkit.testing"]

SITE = Path(__file__).resolve().parent / "plugin_site"
DRGKIT = Path(sys.executable).parent / "drgkit"


@pytest.fixture
def thirdparty(monkeypatch: pytest.MonkeyPatch):
    """tests/plugin_site on sys.path: its dist-info declares drgkit_thirdparty in the drgkit
    entry-point group, exactly as `pip install drgkit-thirdparty` would."""
    monkeypatch.syspath_prepend(str(SITE))
    importlib.invalidate_caches()
    yield
    for name in [m for m in sys.modules if m.startswith("drgkit_thirdparty")]:
        del sys.modules[name]


def _cases(tmp_path: Path) -> Path:
    """Two cases in the plugin's own layout: its column names and ';' between codes."""
    path = tmp_path / "export.csv"
    path.write_text(
        "MRN,SEX,AGE,DX_CODES,PX_CODES,DISCHARGED,COST\n"
        "m1,1,60,I21.000;I10.x00,,2024-03-01,12000.00\n"
        "m2,2,30,,,2024-03-02,800.00\n",
        encoding="utf-8",
    )
    return path


# --------------------------------------------------------------------------- every hook


def test_every_hook_from_an_entry_point_plugin(thirdparty, drgkit_registry, tmp_path: Path) -> None:
    reg = drgkit_registry(entry_points=True)
    # drgkit_register_rulesets: an id, a region, the plugin named as the source
    assert reg.registered_by("thirdparty_2024").startswith("plugin thirdparty (")
    assert [v.id for v in reg.regions()["thirdparty"].ordered()] == ["thirdparty_2024"]
    # drgkit_register_layouts: detected from the header, its ';' separator honoured
    assert "thirdparty" in reg.layouts
    result = drgkit.group(str(_cases(tmp_path)), "thirdparty").to_pylist()
    assert [r["case_id"] for r in result] == ["m1", "m2"]
    assert result[0]["status"] == "ok" and result[0]["ruleset"] == "thirdparty_2024", result
    assert result[1]["status"] == "ungroupable"  # no diagnosis
    import pyarrow as pa

    plain = drgkit.group(
        pa.table(
            {"case_id": ["m1"], "sex": ["1"], "age": ["60"], "diagnoses": ["I21.000|I10.x00"]}
        ),
        "demo_2024",
    )
    assert plain.column("drg").to_pylist() == [result[0]["drg"]]  # same tables, same group
    # drgkit_register_policies: the id resolves to the file the plugin gave
    assert "thirdparty-demo" in reg.policies
    assert reg.policy_registered_by("thirdparty-demo").startswith("plugin thirdparty")
    assert reg.policy("thirdparty-demo").method == "rate"


def test_a_plugin_command_runs_through_the_console_entry_point(
    thirdparty, drgkit_registry, tmp_path: Path, capsys
) -> None:
    """drgkit_register_commands really adds a command, reachable from `drgkit`'s main."""
    from drgkit.cli import cli, main

    drgkit_registry(entry_points=True)
    with pytest.raises(SystemExit) as info:
        main(["thirdparty-count", str(_cases(tmp_path))])
    out = capsys.readouterr().out
    assert info.value.code == 0, out
    assert out.strip() == "ok 1; ungroupable 1"
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "thirdparty-count" in capsys.readouterr().out
    assert "thirdparty-count" not in cli.commands  # the module's group is left alone


def test_a_plugin_command_through_the_cli_fixture(
    thirdparty, drgkit_registry, drgkit_cli, tmp_path: Path
) -> None:
    drgkit_registry(entry_points=True)
    result = drgkit_cli("thirdparty-count", _cases(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "ok 1; ungroupable 1"
    # a plugin's policy, chosen on the command line
    import pyarrow.parquet as pq

    from drgkit import _demo

    pq.write_table(_demo.generate_cases(300, seed=4), tmp_path / "demo.parquet")
    for policy, out in (("thirdparty-demo", "a.csv"), ("demo", "b.csv")):
        result = drgkit_cli(
            "settle", tmp_path / "demo.parquet", "-p", policy, "-o", tmp_path / out, "--silent"
        )
        assert result.exit_code == 0, result.output
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_a_plugin_may_not_replace_a_command(drgkit_registry, drgkit_cli) -> None:
    class Hijack:
        @drgkit.hookimpl
        def drgkit_register_commands(self, cli) -> None:
            @cli.command("group")
            def group() -> None:
                """Not the real one."""

    drgkit_registry(Hijack())
    from drgkit.cli import command_line

    with pytest.raises(PluginError, match="replaces the command 'group'"):
        command_line()


def test_a_plugin_raising_in_a_hook_is_named(drgkit_registry) -> None:
    class Faulty:
        @drgkit.hookimpl
        def drgkit_register_rulesets(self, registry) -> None:
            raise KeyError("region")

    with pytest.raises(PluginError) as info:
        drgkit_registry(Faulty())
    text = str(info.value)
    assert "in drgkit_register_rulesets" in text and "KeyError: 'region'" in text
    assert text.startswith("plugin test_plugins.") and "<locals>.Faulty failed" in text
    assert "DRGKIT_DISABLE_PLUGINS" not in text  # it has no name to block: it is in code


# --------------------------------------------------------------------------- a broken plugin


@pytest.fixture
def broken_site(tmp_path: Path) -> Path:
    """A site folder with a plugin that raises on import, declared by a real entry point."""
    site = tmp_path / "site"
    (site / "drgkit_broken").mkdir(parents=True)
    (site / "drgkit_broken" / "__init__.py").write_text(
        "raise RuntimeError('boom: this plugin needs a licence server')\n", encoding="utf-8"
    )
    dist = site / "drgkit_broken-0.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: drgkit-broken\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[drgkit]\nbroken = drgkit_broken\n")
    return site


def _drgkit(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "DRGKIT_DISABLE_PLUGINS"}
    environ.update(PYTHONPATH=os.pathsep.join([str(site), str(REPO)]), **env)
    return subprocess.run(
        [str(DRGKIT), *args], capture_output=True, text=True, env=environ, timeout=300, check=False
    )


def test_a_plugin_broken_on_import_is_named_and_help_still_works(broken_site: Path) -> None:
    for args in (["--help"], ["--version"], ["group", "--help"]):
        run = _drgkit(broken_site, *args)
        assert run.returncode == 0, (args, run.stderr)
        assert "Traceback" not in run.stderr
    run = _drgkit(broken_site, "rulesets", "list")
    assert run.returncode == 1, run.stderr
    assert run.stdout == "" and "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: plugin 'broken'"), run.stderr
    for words in (
        "drgkit_broken",
        "RuntimeError: boom: this plugin needs a licence server",
        "DRGKIT_DISABLE_PLUGINS=broken",
    ):
        assert words in lines[0], lines[0]
    run = _drgkit(broken_site, "rulesets", "list", DRGKIT_DISABLE_PLUGINS="broken")
    assert run.returncode == 0 and "demo_2024" in run.stdout, run.stderr


def test_a_plugin_broken_on_import_fails_the_library_with_its_name(
    broken_site: Path, monkeypatch
) -> None:
    monkeypatch.syspath_prepend(str(broken_site))
    importlib.invalidate_caches()
    try:
        with pytest.raises(PluginError, match=r"plugin 'broken' \(entry point drgkit_broken\)"):
            plugin_manager()
        monkeypatch.setenv("DRGKIT_DISABLE_PLUGINS", "broken")
        assert "demo_2024" in Registry.from_plugins(plugin_manager()).rulesets
    finally:
        sys.modules.pop("drgkit_broken", None)


# --------------------------------------------------------------------------- the contract


def test_hooks_are_typed_by_a_protocol_not_the_registry() -> None:
    """hookspecs does not import the registry (which imports hookspecs), even for typing;
    the registry satisfies the protocol hooks are typed with."""
    tree = ast.parse(Path(hookspecs.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "registry" not in imported and "drgkit.registry" not in imported
    assert isinstance(Registry(), hookspecs.PluginRegistry)
    for name in (
        "drgkit_register_rulesets",
        "drgkit_register_policies",
        "drgkit_register_layouts",
        "drgkit_register_schemes",
    ):
        assert getattr(hookspecs, name).__annotations__["registry"] == "PluginRegistry"


def test_built_in_hooks_work_with_any_object_of_the_protocol() -> None:
    """A plugin's own tests may hand its hooks a stub registry: the built-in plugin needs
    nothing beyond the protocol's methods."""
    from drgkit import _builtin

    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, object]] = []

        def add_ruleset(self, path, *, id=None, **info):
            self.calls.append(("ruleset", Path(path).name))

        def add_policy(self, path, *, id=None, weights=None):
            self.calls.append(("policy", Path(path).stem))
            return Path(path).stem

        def add_catalogue(self, path, *, id=None, **info):
            self.calls.append(("catalogue", Path(path).name))

        def add_layout(self, layout):
            self.calls.append(("layout", layout.name))

        def add_scheme(self, scheme):
            self.calls.append(("scheme", scheme.name))

    stub = Recorder()
    assert isinstance(stub, hookspecs.PluginRegistry)
    _builtin.drgkit_register_rulesets(stub)
    _builtin.drgkit_register_policies(stub)
    _builtin.drgkit_register_layouts(stub)
    _builtin.drgkit_register_catalogues(stub)
    _builtin.drgkit_register_schemes(stub)
    assert ("ruleset", "2024") in stub.calls and ("policy", "demo") in stub.calls
    assert ("catalogue", "2024") in stub.calls
    assert ("layout", "opendrg") in stub.calls
    assert [c for c in stub.calls if c[0] == "scheme"] == [("scheme", "drg"), ("scheme", "dip")]


# --------------------------------------------------------------------------- the fixtures


def test_fixtures_are_declared_as_a_pytest_plugin() -> None:
    import tomllib

    meta = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["entry-points"]["pytest11"] == {"drgkit.testing": "drgkit.testing"}
    module = importlib.import_module("drgkit.testing")
    assert {"drgkit_registry", "drgkit_cli"} <= set(module.__all__)


def test_registry_fixture_isolates_and_restores(pytester: pytest.Pytester) -> None:
    """Run a plugin author's test file with the fixtures: registries hold only the given
    plugins, commands see them, and the default registry comes back after each test."""
    pytester.makepyfile(
        test_author=textwrap.dedent("""
        import drgkit
        from drgkit import registry

        class Mine:
            @drgkit.hookimpl
            def drgkit_register_layouts(self, registry):
                registry.add_layout(drgkit.Layout("mine", {"case_id": "ID"}, detect=("ID",)))

        def test_only_mine(drgkit_registry, drgkit_cli):
            reg = drgkit_registry(Mine(), builtin=False)
            assert list(reg.layouts) == ["mine"] and not reg.rulesets
            assert registry.default_registry() is reg
            result = drgkit_cli("layouts")
            assert result.exit_code == 0 and result.output.startswith("mine:")
            result = drgkit_cli("rulesets", "show", "demo")
            assert result.exit_code == 2 and "unknown ruleset 'demo'" in result.output

        def test_default_is_back(drgkit_cli):
            assert "demo_2024" in registry.default_registry().rulesets
            assert drgkit_cli("layouts").output.startswith("drgkit:")
        """)
    )
    result = pytester.runpytest_inprocess("-p", "drgkit.testing", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


# --------------------------------------------------------------------------- a third scheme


class _AllInOne:
    """A toy grouping target: every case goes to the one group ``ALL``."""


def _toy_group(cases, target, **options):
    import pyarrow as pa

    table = cases if isinstance(cases, pa.Table) else pa.table(cases)
    n = table.num_rows
    return pa.table(
        {
            "case_id": table.column("case_id").cast(pa.string()),
            "scheme": pa.array(["item"] * n),
            "group": pa.array(["ALL"] * n),
            "status": pa.array(["ok"] * n),
        }
    )


def _toy_group_file(cases, out, target, **options):
    import pyarrow.csv as pacsv

    table = _toy_group(cases, target)
    pacsv.write_csv(table, out)
    return table.num_rows


class _ByItemRun:
    """Settles every case by item (payment = cost), grouping it to ``ALL`` itself: the run
    class interface of drgkit.settlement.SettleRun, one pass."""

    def __init__(self, policy, target, schema, source="<cases>", **options):
        import pyarrow as pa

        from drgkit.settlement import SettleSummary

        self.policy, self.rows_done, self.group_run = policy, 0, None
        self.summary = SettleSummary()
        self.schema = pa.schema(
            [
                ("case_id", pa.string()),
                ("scheme", pa.string()),
                ("group", pa.string()),
                ("settled", pa.bool_()),
                ("payment", pa.decimal128(18, 2)),
            ]
        )

    def prepare(self, batch):
        self.rows_done += batch.num_rows
        return batch

    def partial(self, batch):  # pragma: no cover - one pass
        raise AssertionError("the by-item method has no first pass")

    def finish(self, batch, reduced=None):
        import pyarrow as pa

        grouped = _toy_group(pa.Table.from_batches([batch]), None)
        cost = batch.column("total_cost").cast(pa.decimal128(18, 2))
        n = batch.num_rows
        return pa.RecordBatch.from_arrays(
            [
                grouped["case_id"].combine_chunks(),
                grouped["scheme"].combine_chunks(),
                grouped["group"].combine_chunks(),
                pa.array([True] * n),
                cost,
            ],
            schema=self.schema,
        )

    def warn_data(self):
        pass


class _ToySchemePlugin:
    """A third-party plugin adding a third payment scheme through the hook."""

    @drgkit.hookimpl
    def drgkit_register_schemes(self, registry) -> None:
        registry.add_scheme(
            drgkit.Scheme(
                "item",
                "by-item toy",
                lambda t: isinstance(t, _AllInOne) or t == "all_in_one",
                lambda t: t if isinstance(t, _AllInOne) else _AllInOne(),
                _toy_group,
                _toy_group_file,
                lambda case, target, **o: "every case groups to ALL",
                {"item": drgkit.SettleMethod(lambda: _ByItemRun, two_pass=False)},
            )
        )


def test_a_third_scheme_plugs_in_through_the_hook(drgkit_registry, tmp_path: Path) -> None:
    """One registration (drgkit_register_schemes) and the third scheme groups, explains and
    settles through drgkit's own entry points; DRG and DIP still work beside it."""
    import pyarrow as pa

    from drgkit.settlement import settle

    reg = drgkit_registry(_ToySchemePlugin())
    assert list(reg.schemes) == ["drg", "dip", "item"]
    cases = pa.table(
        {
            "case_id": ["a", "b"],
            "total_cost": ["120.50", "80.00"],
            "diagnoses": ["I21.000", "K35.800"],
        }
    )
    grouped = drgkit.group(cases, "all_in_one")
    assert grouped.column("group").to_pylist() == ["ALL", "ALL"]
    assert drgkit.group(cases, "item:anything").column("scheme").to_pylist() == ["item"] * 2
    assert drgkit.explain({"case_id": "a"}, "all_in_one") == "every case groups to ALL"
    assert drgkit.group_file(cases, tmp_path / "g.csv", "all_in_one") == 2
    policy = tmp_path / "item.toml"
    policy.write_text(
        '[policy]\nid = "toy-item"\nname = "toy"\nmethod = "item"\n', encoding="utf-8"
    )
    settled = settle(cases, str(policy), "all_in_one").to_pylist()
    assert [(r["group"], str(r["payment"])) for r in settled] == [
        ("ALL", "120.50"),
        ("ALL", "80.00"),
    ]
    # the built-in schemes are untouched
    assert drgkit.group(cases, "dip_demo_2024").column("scheme").to_pylist() == ["dip"] * 2
    assert drgkit.group(cases, "demo_2024").column("scheme").to_pylist() == ["drg"] * 2


def test_a_scheme_or_method_registered_twice_names_both_plugins(drgkit_registry) -> None:
    from drgkit.errors import RegistryError

    class Again:
        @drgkit.hookimpl
        def drgkit_register_schemes(self, registry) -> None:
            registry.add_scheme(
                drgkit.Scheme(
                    "dip2",
                    "x",
                    bool,
                    bool,
                    bool,
                    bool,
                    bool,
                    {"dip": drgkit.SettleMethod(lambda: object)},
                )
            )

    with pytest.raises(
        RegistryError,
        match=r"policy method 'dip' is settled by scheme 'dip' "
        r"\(plugin drgkit\.builtin",
    ):
        drgkit_registry(Again())
