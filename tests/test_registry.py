"""Plugins and the registry: built-ins are plugins, entry points load, duplicates name both
sources, folders work ad hoc, and a region groups each case by the version in force."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.metadata
import shutil
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import DEMO

import drgkit
from drgkit import hookspecs
from drgkit.errors import RegistryError, RulesetError
from drgkit.registry import Registry, plugin_manager


class _Plugin:
    """A plugin object registering one folder under an id."""

    def __init__(self, path: Path, **info) -> None:
        self.path, self.info = path, info

    @drgkit.hookimpl
    def drgkit_register_rulesets(self, registry) -> None:
        registry.add_ruleset(self.path, **self.info)


def test_builtin_plugin_registers_demo_and_layouts() -> None:
    reg = Registry.from_plugins(plugin_manager(entry_points=False))
    assert {"demo_2023", "demo_2024"} <= set(reg.rulesets)
    assert reg.registered_by("demo_2024").startswith("plugin drgkit.builtin")
    assert {"drgkit", "opendrg", "settlement-list", "zh"} <= set(reg.layouts)
    series = reg.regions()["demo"]
    assert [v.id for v in series.ordered()] == ["demo_2023", "demo_2024"]


def test_duplicate_ids_name_both_sources(tmp_path: Path) -> None:
    pm = plugin_manager(entry_points=False, plugins=[_Plugin(DEMO / "2024")])
    with pytest.raises(RegistryError) as info:
        Registry.from_plugins(pm)
    text = str(info.value)
    assert "'demo_2024' is registered twice" in text
    assert "drgkit.builtin" in text and "_Plugin" in text
    assert str(DEMO / "2024") in text


def test_misspelled_hook_fails_loudly() -> None:
    class Typo:
        @drgkit.hookimpl
        def drgkit_register_ruleset(self, registry) -> None:  # missing "s"
            pass

    import pluggy

    with pytest.raises(pluggy.PluginValidationError, match="drgkit_register_ruleset"):
        plugin_manager(entry_points=False, plugins=[Typo()])


def test_plugins_can_be_blocked(monkeypatch) -> None:
    monkeypatch.setenv("DRGKIT_DISABLE_PLUGINS", "drgkit.builtin")
    reg = Registry.from_plugins(plugin_manager(entry_points=False))
    assert "demo_2024" not in reg.rulesets


def test_entry_point_plugins_are_loaded(tmp_path: Path, monkeypatch) -> None:
    """A distribution on sys.path declaring the drgkit entry-point group is found."""
    folder = tmp_path / "regional"
    shutil.copytree(DEMO / "2024", folder)
    meta = folder / "meta.csv"
    meta.write_text(
        meta.read_text(encoding="utf-8")
        .replace("demo_2024", "xian_2024")
        .replace(",demo\n", ",xian\n"),
        encoding="utf-8",
    )
    site = tmp_path / "site"
    (site / "drgkit_xian").mkdir(parents=True)
    (site / "drgkit_xian" / "__init__.py").write_text(
        textwrap.dedent(f"""
        import drgkit

        @drgkit.hookimpl
        def drgkit_register_rulesets(registry):
            registry.add_ruleset({str(folder)!r}, region="xian", version="2024",
                                 effective_from="2024-01-01")
        """),
        encoding="utf-8",
    )
    dist = site / "drgkit_xian-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: drgkit-xian\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[drgkit]\nxian = drgkit_xian\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    try:
        reg = Registry.from_plugins(plugin_manager())
        assert "xian_2024" in reg.rulesets
        assert reg.registered_by("xian_2024").startswith("plugin xian")
        assert [v.id for v in reg.regions()["xian"].versions] == ["xian_2024"]
    finally:
        sys.modules.pop("drgkit_xian", None)
    assert importlib.metadata  # the stdlib machinery pluggy uses


def test_folder_paths_are_ad_hoc_rulesets(tmp_path: Path) -> None:
    reg = Registry.from_plugins(plugin_manager(entry_points=False))
    single = reg.resolve(str(DEMO / "2023"))
    assert isinstance(single, drgkit.Ruleset) and single.id == "demo_2023"
    series = reg.resolve(DEMO)
    assert isinstance(series, drgkit.RulesetSeries)
    with pytest.raises(RulesetError, match="neither a ruleset folder"):
        reg.resolve(tmp_path)
    with pytest.raises(RegistryError, match="Did you mean demo_2024"):
        reg.resolve("demo_2042")


def _demo_case(day: str | None, case_id: str) -> dict:
    return {
        "case_id": case_id,
        "diagnoses": "I21.000",
        "procedures": "",
        "sex": "1",
        "age": "60",
        "discharge_date": day,
    }


def test_region_groups_each_case_by_the_version_in_force() -> None:
    series = drgkit.default_registry().resolve("demo")
    periods = {v.id: (a, b) for v, a, b in series.periods()}
    assert periods == {
        "demo_2023": (dt.date(2023, 1, 1), dt.date(2023, 12, 31)),
        "demo_2024": (dt.date(2024, 1, 1), None),
    }
    rows = [
        _demo_case("2023-01-01", "a"),
        _demo_case("2023-12-31", "b"),
        _demo_case("2024-01-01", "c"),
        _demo_case("2022-12-31", "d"),
        _demo_case(None, "e"),
        _demo_case("2024-13-01", "f"),
        _demo_case("2024/06/30", "g"),
        _demo_case("20230615", "h"),
    ]
    result = drgkit.group(pa.Table.from_pylist(rows), "demo").to_pylist()
    got = {r["case_id"]: (r["ruleset"], r["reason"]) for r in result}
    assert got["a"] == ("demo_2023", None)
    assert got["b"] == ("demo_2023", None)
    assert got["c"] == ("demo_2024", None)
    assert got["d"] == (None, "no_ruleset_in_force")
    assert got["e"] == (None, "discharge_date_missing")
    assert got["f"] == (None, "discharge_date_invalid")
    assert got["g"] == ("demo_2024", None)
    assert got["h"] == ("demo_2023", None)


def test_overlapping_versions_are_rejected(tmp_path: Path) -> None:
    a = drgkit.Ruleset.from_path(DEMO / "2023")
    b = drgkit.Ruleset.from_path(DEMO / "2024", effective_from="2023-01-01")
    with pytest.raises(RulesetError, match="both take effect on 2023-01-01"):
        drgkit.RulesetSeries("demo", (a, b))


def test_national_versions_by_discharge_date(shared: Path, monkeypatch) -> None:
    """chs_drg_10 and chs_drg_11 registered as one region: each oracle case, dated into the
    period of its own version, groups exactly as that version's expected file says."""
    pm = plugin_manager(
        entry_points=False,
        plugins=[
            _Plugin(shared / "rulesets" / "chs_drg_10", region="chs", effective_from="2020-06-01"),
            _Plugin(shared / "rulesets" / "chs_drg_11", region="chs", effective_from="2022-01-01"),
        ],
    )
    reg = Registry.from_plugins(pm)
    series = reg.resolve("chs")
    rows, expected = [], []
    for name, day in (("chs_drg_10", "2021-07-01"), ("chs_drg_11", "2022-07-01")):
        with open(shared / "oracle" / name / "cases.csv", encoding="utf-8", newline="") as fh:
            cases = list(csv.DictReader(fh))[:3000]
        with open(shared / "oracle" / name / "expected.csv", encoding="utf-8", newline="") as fh:
            expected += list(csv.DictReader(fh))[:3000]
        for c in cases:
            c["discharge_date"] = day
        rows += cases
    # interleave the two versions' cases to exercise the split and the scatter back
    order = [i for pair in zip(range(3000), range(3000, 6000), strict=True) for i in pair]
    table = pa.Table.from_pylist([rows[i] for i in order])
    result = drgkit.group(table, series).to_pylist()
    from test_grouping import STATUS_MAP

    for r, i in zip(result, order, strict=True):
        e = expected[i]
        assert r["case_id"] == e["Index"]
        assert r["ruleset"] == ("chs_drg_10" if i < 3000 else "chs_drg_11")
        assert r["status"] == STATUS_MAP[e["status"]], (r, e)
        if r["status"] in ("ok", "ambiguous"):
            assert (r["mdc"], r["adrg"], r["drg"]) == (e["mdc"], e["adrg"], e["drg"]), (r, e)


def test_refdata_plugin_when_installed(shared: Path, monkeypatch) -> None:
    """The example plugin in plugins/drgkit-refdata, when installed, registers the reference
    rulesets through the entry-point group."""
    try:
        importlib.metadata.distribution("drgkit-refdata")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("plugins/drgkit-refdata is not installed")
    monkeypatch.setenv("DRGKIT_REFDATA", str(shared))
    reg = Registry.from_plugins(plugin_manager())
    assert {"chs_drg_10", "chs_drg_11", "suzhou_2023"} <= set(reg.rulesets)
    assert reg.registered_by("chs_drg_11").startswith("plugin refdata")
    series = reg.resolve("chs-drg")
    assert series.for_date(dt.date(2021, 12, 31)).id == "chs_drg_10"
    assert series.for_date(dt.date(2022, 1, 1)).id == "chs_drg_11"


def test_every_hook_is_documented() -> None:
    for name in dir(hookspecs):
        if name.startswith("drgkit_"):
            doc = getattr(hookspecs, name).__doc__ or ""
            assert len(doc.split()) > 20, name


def test_unknown_ruleset_says_what_is_registered_and_how_to_get_chs_drg(monkeypatch) -> None:
    """A newcomer following the README's CHS-DRG example without the refdata plugin."""
    monkeypatch.delenv("DRGKIT_REFDATA", raising=False)
    monkeypatch.delenv("DRGKIT_SHARED", raising=False)
    reg = Registry.from_plugins(plugin_manager(entry_points=False))
    with pytest.raises(RegistryError) as info:
        reg.resolve("chs_drg_11")
    text = str(info.value)
    assert "Registered: demo_2023, demo_2024, demo." in text
    assert "drgkit-refdata" in text and "DRGKIT_REFDATA" in text and "-r PATH" in text
