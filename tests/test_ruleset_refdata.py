"""The refdata plugin (plugins/drgkit-refdata) registers every ruleset folder it finds.

The plugin module is loaded from this repository (not from wherever it is installed), so these
tests check the code next to them.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DEMO, REPO, require_shared

from drgkit.registry import Registry, plugin_manager

PLUGIN_DIR = REPO / "plugins" / "drgkit-refdata"


def _plugin():
    spec = importlib.util.spec_from_file_location(
        "drgkit_refdata_under_test", PLUGIN_DIR / "drgkit_refdata" / "__init__.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _registry(root: Path, monkeypatch) -> Registry:
    monkeypatch.setenv("DRGKIT_REFDATA", str(root))
    return Registry.from_plugins(plugin_manager(entry_points=False, plugins=[_plugin()]))


def test_every_shared_ruleset_is_registered(monkeypatch) -> None:
    shared = require_shared()
    folders = sorted(p.name for p in (shared / "rulesets").iterdir() if (p / "meta.csv").is_file())
    reg = _registry(shared, monkeypatch)
    assert set(folders) <= set(reg.rulesets)
    assert len(folders) >= 28
    info = {name: reg.resolve(name).info for name in folders}
    # the national versions keep their region, versions, dates and names
    assert (info["chs_drg_10"].region, info["chs_drg_10"].version) == ("chs-drg", "1.0")
    assert info["chs_drg_10"].effective_from == dt.date(2020, 6, 1)
    assert info["chs_drg_11"].effective_from == dt.date(2022, 1, 1)
    assert info["chs_drg_11"].name.startswith("CHS-DRG 1.1")
    # the others: <region>_<year>, in force from 1 January, with a readable name
    suzhou = info["suzhou_2023"]
    assert (suzhou.region, suzhou.version, suzhou.effective_from) == (
        "suzhou",
        "2023",
        dt.date(2023, 1, 1),
    )
    assert info["hefei_2023"].name == "合肥 DRG 2023 分组方案"
    assert info["fuzhou_2022"].name == "Fuzhou DRG 2022 分组方案"  # 福州 or 抚州: not guessed
    for name in folders:
        assert info[name].region and info[name].version and info[name].name, name
    # two versions of one region form a series chosen by discharge date
    yunnan = reg.resolve("yunnan")
    assert yunnan.for_date(dt.date(2022, 12, 31)).id == "yunnan_2022"
    assert yunnan.for_date(dt.date(2023, 1, 1)).id == "yunnan_2023"


def _copy_ruleset(target: Path, **meta: str) -> None:
    shutil.copytree(DEMO / "2024", target)
    with open(target / "meta.csv", encoding="utf-8", newline="") as fh:
        # the demo's own identity keys go: the folder name speaks unless ``meta`` says
        identity = ("ruleset", "region", "version", "name", "effective_from", "effective_to")
        rows = [r for r in csv.reader(fh) if r and r[0] not in meta and r[0] not in identity]
    rows += [[k, v] for k, v in meta.items()]
    with open(target / "meta.csv", "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def test_a_new_folder_is_registered_without_a_code_change(tmp_path: Path, monkeypatch) -> None:
    """Folders are found by listing; meta.csv wins over what the folder name says."""
    root = tmp_path / "data"
    _copy_ruleset(root / "rulesets" / "newtown_2025")
    _copy_ruleset(
        root / "rulesets" / "oldtown_2024",
        effective_from="2024-07-01",
        name="Oldtown's own name",
    )
    (root / "rulesets" / "notes").mkdir()  # no meta.csv: not a ruleset
    reg = _registry(root, monkeypatch)
    new = reg.resolve("newtown_2025").info
    assert (new.region, new.version, new.effective_from, new.name) == (
        "newtown",
        "2025",
        dt.date(2025, 1, 1),
        "Newtown DRG 2025 分组方案",
    )
    old = reg.resolve("oldtown_2024").info
    assert (old.region, old.effective_from, old.name) == (
        "oldtown",
        dt.date(2024, 7, 1),
        "Oldtown's own name",
    )
    assert "notes" not in reg.rulesets


def test_rulesets_list_shows_every_shared_ruleset(tmp_path: Path) -> None:
    """``drgkit rulesets list`` with the installed plugin entry point, its code from here."""
    shared = require_shared()
    try:
        importlib.metadata.distribution("drgkit-refdata")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("plugins/drgkit-refdata is not installed")
    env = {
        **os.environ,
        "DRGKIT_REFDATA": str(shared),
        "PYTHONPATH": os.pathsep.join([str(REPO), str(PLUGIN_DIR)]),
    }
    out = subprocess.run(
        [sys.executable, "-m", "drgkit.cli", "rulesets", "list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    ).stdout
    folders = [p.name for p in (shared / "rulesets").iterdir() if (p / "meta.csv").is_file()]
    listed = {line.split()[0] for line in out.splitlines() if line[:1].isalnum()}
    assert set(folders) | {"demo_2023", "demo_2024"} <= listed
    assert "yunnan: yunnan_2022, yunnan_2023" in out
