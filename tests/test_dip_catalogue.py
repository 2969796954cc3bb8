"""DIP catalogue tables: bad catalogues give errors naming file, row and column; the demo
catalogue loads, compiles, caches and registers through the plugin hook."""

from __future__ import annotations

import decimal
from pathlib import Path

import pytest
from conftest import REPO

import drgkit
from drgkit.catalogue import Catalogue
from drgkit.catalogue import _tables as T
from drgkit.catalogue._compile import load_compiled
from drgkit.errors import CatalogueError, RegistryError, TableError
from drgkit.registry import Registry

DEMO = REPO / "catalogues" / "demo" / "2024"


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "cat"
    folder.mkdir(parents=True)
    for f in DEMO.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    return folder


def _edit(folder: Path, name: str, old: str, new: str) -> None:
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text, (name, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _line_of(folder: Path, name: str, text: str) -> int:
    lines = (folder / name).read_text(encoding="utf-8").splitlines()
    return [i for i, line in enumerate(lines, 1) if text in line][-1]  # the later of repeats


def test_demo_catalogue_reads() -> None:
    t = T.read_tables(DEMO)
    assert t.score_scale == 1000 and t.dx_key_chars == 4 and t.blank_packet == "KBBZ"
    assert t.packets["K35.3-1"].score == decimal.Decimal("905.5")
    assert {r.tier for r in t.rules} == {"pregroup.csv", "merge.csv", "subdivide.csv"}
    assert len(t.core) >= 30 and len(t.comprehensive) >= 10


# (file, text to replace, replacement, the column the error must name, words in the message)
BAD = [
    (
        "packets.csv",
        "K35.8-1,急性阑尾炎(其他和未特指):腹腔镜下阑尾切除术,core,850",
        "K35.8-1,急性阑尾炎,core,85O",
        "score",
        "not a decimal",
    ),
    (
        "packets.csv",
        "K35.8-1,急性阑尾炎(其他和未特指):腹腔镜下阑尾切除术,core,850",
        "K35.8-1,x,core,850.1234567",
        "score",
        "more than 6 decimals",
    ),
    (
        "packets.csv",
        "K35.8-1,急性阑尾炎(其他和未特指):腹腔镜下阑尾切除术,core,850",
        "K35.8-1,x,kernel,850",
        "kind",
        "not a packet kind",
    ),
    ("packets.csv", "K35.8-2,", "K35.8-1,", "packet", "repeats row"),
    ("core.csv", "K35.8-1,K35.8,47.01,", "K35.8-9,K35.8,47.01,", "packet", "not in packets.csv"),
    ("core.csv", "K35.8-1,K35.8,47.01,", "K35-S,K35.8,47.01,", "packet", "kind"),
    ("core.csv", "K35.8-1,K35.8,47.01,", "K35.8-1,K35,47.01,", "dx_key", "4-character"),
    ("core.csv", "K35.8-1,K35.8,47.01,", "K35.8-1,K35.8,47.01+47.09,", "principal_px", "'+'"),
    (
        "core.csv",
        "K35.8-1,K35.8,47.01,",
        "K35.8-1,K35.8,47.01,47.09||47.1",
        "related_px",
        "empty item",
    ),
    ("core.csv", "K35.8-1,K35.8,47.01,", "K35.8-1,K35.8,,47.09", "related_px", "need a principal"),
    ("core.csv", "K35.8-2,K35.8,47.09,", "K35.8-1,K35.8,47.01,", "packet", "repeats row"),
    ("pregroup.csv", "PA-VENT96,30,,,,,96,,,", "PA-VENT96,30,,,,,,,,", "packet", "no condition"),
    ("pregroup.csv", "PA-VENT96,30,", "PA-VENT96,20,", "seq", "repeats row"),
    ("pregroup.csv", "PA-VENT96,30,,,,,96,,,", "MG-HIP,30,,,,,96,,,", "packet", "kind"),
    (
        "pregroup.csv",
        "PA-NB2,50,,,,,,1500,2500,28",
        "PA-NB2,50,,,,,,2500,1500,28",
        "max_weight",
        "above min_weight",
    ),
    (
        "pregroup.csv",
        "PA-VENT96,30,,,,,96,,,",
        "PA-VENT96,30,,,,,-96,,,",
        "min_vent_hours",
        "not a decimal",
    ),
    ("comprehensive.csv", "K35-M,K35,内科诊疗", "K35-M,K35,保守", "attribute", "not an attribute"),
    ("comprehensive.csv", "K35-M,K35,内科诊疗", "K35-M,K35,相关手术", "attribute", "repeats"),
    (
        "comprehensive.csv",
        "K35-M,K35,内科诊疗",
        "K35-M,K35.8,内科诊疗",
        "dx_category",
        "3-character",
    ),
    ("fallback.csv", "FB-J,J00-J99", "FB-J,J99-J00", "dx_prefix", "backwards"),
    ("fallback.csv", "FB-J,J00-J99", "FB-J,J00.1", "dx_prefix", "neither"),
    ("px_attribute.csv", "47.0,相关手术", "47.0,surgical", "attribute", "not an attribute"),
    (
        "aux.csv",
        "I21.0-0,age,66-,A66,1.12",
        "I21.0-0,age,66-,A66,0",
        "coefficient",
        "greater than 0",
    ),
    (
        "aux.csv",
        "I21.0-0,age,66-,A66,1.12",
        "I21.0-0,height,66-,A66,1.1",
        "dimension",
        "not one of",
    ),
    ("aux.csv", "I21.0-0,age,66-,A66,1.12", "I21.0-0,age,66-7,A66,1.1", "band", "backwards"),
    ("aux.csv", "I21.0-0,age,66-,A66,1.12", "K35-S,age,66-,A66,1.1", "packet", "kind"),
    (
        "packet_stats.csv",
        "K35.8-1,3,250,9100.00",
        "K35.8-1,4,250,9100.00",
        "hospital_level",
        "not 1, 2, 3",
    ),
    (
        "packet_stats.csv",
        "K35.8-1,3,250,9100.00",
        "K35.8-1,3,250,9100.001",
        "mean_cost",
        "more than 2 decimals",
    ),
    ("meta.csv", "score_scale,1000", "score_scale,10", "value", "score_scale"),
    ("meta.csv", "tie_rule,highest_score", "tie_rule,random", "value", "tie_rule"),
    (
        "meta.csv",
        "fallback_chain,comprehensive|prefix|blank",
        "fallback_chain,comprehensive|blank|blank",
        "value",
        "fallback_chain",
    ),
    ("meta.csv", "blank_packet,KBBZ", "blank_packet,K35-S", "value", "blank"),
    ("meta.csv", "effective_from,2024-01-01", "effective_from,2024-13-01", "value", "ISO date"),
    ("meta.csv", "format,1", "format,2", "value", "not supported"),
]


@pytest.mark.parametrize(("name", "old", "new", "column", "words"), BAD)
def test_bad_catalogue_errors_name_file_row_column(tmp_path, name, old, new, column, words) -> None:
    folder = _copy(tmp_path)
    _edit(folder, name, old, new)
    row = _line_of(folder, name, new.split("\n")[0])
    with pytest.raises(CatalogueError) as info:
        T.read_tables(folder)
    err = info.value
    assert isinstance(err, TableError)
    assert (Path(err.file).name, err.row, err.column) == (name, row, column), str(err)
    assert words in str(err)


def test_structural_errors(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "core.csv").unlink()
    with pytest.raises(CatalogueError, match="file is missing") as info:
        T.read_tables(folder)
    assert info.value.file.endswith("core.csv")

    folder = _copy(tmp_path / "b")
    _edit(folder, "fallback.csv", "packet,dx_prefix", "packet,prefix")
    with pytest.raises(CatalogueError) as info:
        T.read_tables(folder)
    assert (info.value.row, info.value.column) == (1, "prefix")

    folder = _copy(tmp_path / "c")
    _edit(folder, "excluded_dx.csv", "Z02,行政管理目的的检查", "Z02,行政管理,extra")
    with pytest.raises(CatalogueError, match="expected 2 fields") as info:
        T.read_tables(folder)
    assert info.value.row == 3

    folder = _copy(tmp_path / "d")
    (folder / "excluded_px.csv").write_bytes("code,name\n57.94,\xff\n".encode("latin-1"))
    with pytest.raises(CatalogueError, match="UTF-8"):
        T.read_tables(folder)

    folder = _copy(tmp_path / "e")
    _edit(folder, "meta.csv", "catalogue,dip_demo_2024\n", "")
    with pytest.raises(CatalogueError, match="'catalogue' is missing"):
        T.read_tables(folder)

    with pytest.raises(CatalogueError, match="no such directory"):
        Catalogue.from_path(tmp_path / "nowhere")


def test_columns_in_any_order_and_bom(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "fallback.csv").write_text("\ufeffdx_prefix,packet\nK,FB-K\n", encoding="utf-8")
    assert T.read_tables(folder).fallback_prefix == {"K": "FB-K"}


def test_compiled_form_is_cached_by_content_hash(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DRGKIT_CACHE_DIR", str(tmp_path / "cache"))
    first = load_compiled(DEMO)
    files = list((tmp_path / "cache").glob("dip-catalogue-*.npz"))
    assert len(files) == 1
    second = load_compiled(DEMO)
    assert second.content_hash == first.content_hash
    assert second.names["packets"] == first.names["packets"]
    folder = _copy(tmp_path)
    _edit(folder, "packets.csv", "KBBZ,空白病种,blank,300", "KBBZ,空白病种,blank,301")
    assert load_compiled(folder).content_hash != first.content_hash
    assert len(list((tmp_path / "cache").glob("dip-catalogue-*.npz"))) == 2


def test_demo_registered_through_the_hook() -> None:
    registry = Registry.from_plugins()
    cat = registry.catalogues["dip_demo_2024"]
    assert cat.info.region == "demo" and cat.info.score_scale == 1000
    assert str(cat.info.effective_from) == "2024-01-01"
    assert registry.resolve_catalogue("dip_demo_2024") is cat
    assert registry.resolve_catalogue(str(DEMO)).id == "dip_demo_2024"
    with pytest.raises(RegistryError, match="Did you mean dip_demo_2024"):
        registry.resolve_catalogue("dip_demo_2042")
    # DIP catalogues are not DRG rulesets
    assert "dip_demo_2024" not in registry.rulesets


def test_plugin_catalogue_duplicate_names_both(tmp_path: Path) -> None:
    class Plugin:
        @drgkit.hookimpl
        def drgkit_register_catalogues(self, registry) -> None:
            registry.add_catalogue(DEMO)

    pm = drgkit.plugin_manager()
    pm.register(Plugin(), name="thirdparty")
    with pytest.raises(RegistryError, match="registered twice") as info:
        Registry.from_plugins(pm)
    assert "thirdparty" in str(info.value) and "builtin" in str(info.value)


def test_plugin_catalogue_overrides(tmp_path: Path) -> None:
    class Plugin:
        @drgkit.hookimpl
        def drgkit_register_catalogues(self, registry) -> None:
            registry.add_catalogue(DEMO, id="city_2025", region="city", effective_from="2025-01-01")

    pm = drgkit.plugin_manager()
    pm.register(Plugin(), name="city")
    info = Registry.from_plugins(pm).catalogues["city_2025"].info
    assert (info.region, str(info.effective_from)) == ("city", "2025-01-01")


def test_load_catalogue_by_id_region_and_path() -> None:
    by_id = drgkit.load_catalogue("dip_demo_2024")
    assert isinstance(by_id, Catalogue) and by_id.content_hash
    region = drgkit.load_catalogue("demo")
    assert isinstance(region, drgkit.CatalogueSeries)
    assert [v.id for v in region.versions] == ["dip_demo_2024"]
    assert drgkit.load_catalogue(DEMO).id == "dip_demo_2024"
    assert drgkit.load_catalogue(DEMO.parent).region == "demo"  # a folder of versions


def test_series_needs_distinct_dates(tmp_path: Path) -> None:
    a = Catalogue.from_path(DEMO)
    b = Catalogue.from_path(DEMO, id="other")
    with pytest.raises(CatalogueError, match="both take effect on 2024-01-01"):
        drgkit.CatalogueSeries("demo", (a, b))
    undated = Catalogue.from_path(DEMO, id="undated", effective_from="")
    with pytest.raises(CatalogueError, match="has no effective_from"):
        drgkit.CatalogueSeries("demo", (a, undated))
