"""drgkit plugin: the reference rulesets, read in place from a folder you have.

The tables of CHS-DRG 1.0 and 1.1 and of the regional schemes (Beijing 2022, Suzhou 2023,
Yunnan 2022/2023, …) are not shipped with drgkit. Point ``DRGKIT_REFDATA`` (or
``DRGKIT_SHARED``) at a folder whose ``rulesets/`` holds them in drgkit's table layout, and
this plugin registers **every** subfolder that has a ``meta.csv``, with its region, version and
the date it takes effect, so that::

    drgkit group cases.csv -r chs-drg -o out.csv

groups every case with the national version in force on its discharge date.

Where a folder's ``meta.csv`` names its ``region``, ``version``, ``name`` or ``effective_from``,
that wins. Otherwise they come from the folder name ``<region>_<year>`` (``suzhou_2023``:
region ``suzhou``, version ``2023``, in force from 1 January 2023), so a new folder needs no
change here. The two national folders are the exception (``chs_drg_10``/``chs_drg_11``: region
``chs-drg``, versions 1.0 and 1.1, with the dates below). The dates are this plugin's
configuration (when a pooling region switched is a local decision); a region that switched on
other dates registers its own plugin.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import drgkit
from drgkit.hookspecs import PluginRegistry

#: folder name -> registry fields for the folders the folder-name rule does not cover
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
    # the first regional folders keep the names they were registered with
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

#: Chinese names of the regions, for a readable ruleset name. Names that would be a guess
#: (``taizhou``: 台州 or 泰州; ``fuzhou``: 福州 or 抚州) are left out: those get the pinyin.
REGION_NAMES = {
    "anyang": "安阳",
    "beijing": "北京",
    "changsha": "长沙",
    "changzhou": "常州",
    "chongqing": "重庆",
    "foshan": "佛山",
    "guangxi": "广西",
    "haerbin": "哈尔滨",
    "handan": "邯郸",
    "hefei": "合肥",
    "lanzhou": "兰州",
    "liaocheng": "聊城",
    "linfen": "临汾",
    "qingdao": "青岛",
    "suzhou": "苏州",
    "wlmq": "乌鲁木齐",
    "wuhan": "武汉",
    "wuxi": "无锡",
    "yancheng": "盐城",
    "yantai": "烟台",
    "yinchuan": "银川",
    "yunnan": "云南",
    "zhejiang": "浙江",
}

_REGION_YEAR = re.compile(r"(?P<region>[A-Za-z][A-Za-z0-9_]*?)_(?P<year>(19|20)[0-9]{2})")


def refdata_root() -> Path | None:
    """The folder holding ``rulesets/``: ``$DRGKIT_REFDATA``, else ``$DRGKIT_SHARED``."""
    for var in ("DRGKIT_REFDATA", "DRGKIT_SHARED"):
        value = os.environ.get(var)
        if value:
            return Path(value)
    return None


def _meta(folder: Path) -> dict[str, str]:
    """The keys of ``meta.csv`` (first value of a repeated key), leniently: drgkit itself
    validates the file when the ruleset is used."""
    keys: dict[str, str] = {}
    try:
        with open(folder / "meta.csv", encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("key"):
                    keys.setdefault(row["key"], row.get("value") or "")
    except (OSError, UnicodeDecodeError, csv.Error):
        pass
    return keys


def ruleset_fields(folder: Path) -> dict[str, str]:
    """Region, version, name and effective date of one ruleset folder (see the module doc):
    only what ``meta.csv`` does not say itself, since the folder's own meta is read too."""
    if folder.name in RULESETS:
        return dict(RULESETS[folder.name])
    meta = _meta(folder)
    match = _REGION_YEAR.fullmatch(folder.name)
    if match:
        region, year = match["region"].replace("_", "-"), match["year"]
    else:
        region, year = folder.name.replace("_", "-"), ""
    fields: dict[str, str] = {}
    if not meta.get("region"):
        fields["region"] = region
    if not meta.get("version") and year:
        fields["version"] = year
    if not meta.get("effective_from") and year and not meta.get("version"):
        fields["effective_from"] = f"{year}-01-01"
    if not meta.get("name"):
        region_name = meta.get("region") or region
        label = REGION_NAMES.get(region_name) or region_name.replace("-", " ").title()
        version = meta.get("version") or year
        fields["name"] = f"{label} DRG {version} 分组方案".replace("  ", " ")
    return fields


@drgkit.hookimpl
def drgkit_register_rulesets(registry: PluginRegistry) -> None:
    root = refdata_root()
    if root is None:
        return  # nothing configured: register nothing
    folder = root / "rulesets"
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        if path.is_dir() and (path / "meta.csv").is_file():
            registry.add_ruleset(path, **ruleset_fields(path))
