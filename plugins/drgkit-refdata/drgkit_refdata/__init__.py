"""drgkit plugin: the reference rulesets, read in place from a folder you have.

The tables of CHS-DRG 1.0 and 1.1 and of the Beijing 2022, Suzhou 2023 and Wuxi 2022 schemes
are not shipped with drgkit. Point ``DRGKIT_REFDATA`` (or ``DRGKIT_SHARED``) at a folder
whose ``rulesets/`` holds them in drgkit's table layout, and this plugin registers each one
with its region, version and the date it takes effect, so that::

    drgkit group cases.csv -r chs-drg -o out.csv

groups every case with the national version in force on its discharge date.

The dates below are this plugin's configuration (when a pooling region switched is a local
decision); a region that switched on other dates registers its own plugin.
"""

from __future__ import annotations

import os
from pathlib import Path

import drgkit
from drgkit.hookspecs import PluginRegistry

#: folder name -> what the registry needs beyond the folder's own meta.csv
RULESETS = {
    "chs_drg_10": dict(
        region="chs-drg",
        version="1.0",
        effective_from="2020-06-01",
        name="CHS-DRG 1.0 国家医疗保障疾病诊断相关分组细分组方案（1.0版）",
    ),
    "chs_drg_11": dict(
        region="chs-drg",
        version="1.1",
        effective_from="2022-01-01",
        name="CHS-DRG 1.1 国家医疗保障疾病诊断相关分组细分组方案（1.1版）",
    ),
    "beijing_2022": dict(
        region="beijing",
        version="2022",
        effective_from="2022-01-01",
        name="北京 CHS-DRG 2022 本地化分组方案",
    ),
    "suzhou_2023": dict(
        region="suzhou",
        version="2023",
        effective_from="2023-01-01",
        name="苏州 DRG 2023 本地化分组方案",
    ),
    "wuxi_2022": dict(
        region="wuxi",
        version="2022",
        effective_from="2022-01-01",
        name="无锡 DRG 2022 本地化分组方案",
    ),
}


def refdata_root() -> Path | None:
    """The folder holding ``rulesets/``: ``$DRGKIT_REFDATA``, else ``$DRGKIT_SHARED``."""
    for var in ("DRGKIT_REFDATA", "DRGKIT_SHARED"):
        value = os.environ.get(var)
        if value:
            return Path(value)
    return None


@drgkit.hookimpl
def drgkit_register_rulesets(registry: PluginRegistry) -> None:
    root = refdata_root()
    if root is None:
        return  # nothing configured: register nothing
    for folder, info in RULESETS.items():
        path = root / "rulesets" / folder
        if (path / "meta.csv").is_file():
            registry.add_ruleset(path, **info)
