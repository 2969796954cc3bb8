"""The machinery rulesets and DIP catalogues share (drgkit._versions): what it gained by being
written once — atomic cache writes, located CSV errors for catalogues, undated versions named by
file, and version lookup by date for catalogue series too."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

import drgkit
from drgkit import _versions
from drgkit.catalogue import Catalogue
from drgkit.catalogue import _tables as CT
from drgkit.catalogue._compile import CompiledCatalogue, load_compiled
from drgkit.errors import CatalogueError, RulesetError

DIP_DEMO = REPO / "catalogues" / "demo" / "2024"
DRG_DEMO = REPO / "rulesets" / "demo"


def test_a_failed_cache_write_leaves_the_old_entry_and_no_temporary_file(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("DRGKIT_CACHE_DIR", str(tmp_path / "cache"))
    first = load_compiled(DIP_DEMO)
    (entry,) = (tmp_path / "cache").iterdir()
    before = entry.read_bytes()

    def die(handle, **arrays):
        handle.write(b"half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", die)
    with pytest.raises(OSError, match="disk full"):
        first.save(entry)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [entry.name]
    assert entry.read_bytes() == before
    # and loading still works from the intact entry
    again = CompiledCatalogue.load(entry, first.content_hash)
    assert again.names["packets"] == first.names["packets"]


def test_catalogue_csv_errors_name_file_and_row(tmp_path: Path) -> None:
    folder = tmp_path / "cat"
    folder.mkdir()
    (folder / "fallback.csv").write_text(
        "packet,dx_prefix\nFB-K,K\nFB-J,J,extra\n", encoding="utf-8"
    )
    with pytest.raises(CatalogueError) as info:
        list(CT.iter_rows(folder, "fallback.csv"))
    assert info.value.file == str(folder / "fallback.csv") and info.value.row == 3
    assert "expected 2 fields (packet,dx_prefix), found 3" in str(info.value)

    (folder / "fallback.csv").write_bytes(b"packet,dx_prefix\nFB-K,\xff\n")
    with pytest.raises(CatalogueError, match=r"fallback\.csv: not UTF-8 text"):
        list(CT.iter_rows(folder, "fallback.csv"))
    # an absent optional table is empty, an absent required one is an error
    assert list(CT.iter_rows(folder, "aux.csv")) == []
    with pytest.raises(CatalogueError, match=r"core\.csv: file is missing"):
        list(CT.iter_rows(folder, "core.csv"))


def test_undated_ruleset_version_is_named_with_its_meta_file() -> None:
    dated = drgkit.Ruleset.from_path(DRG_DEMO / "2023")
    undated = drgkit.Ruleset.from_path(DRG_DEMO / "2024", effective_from="")
    with pytest.raises(RulesetError) as info:
        drgkit.RulesetSeries("demo", (dated, undated))
    assert info.value.file == str(DRG_DEMO / "2024" / "meta.csv")
    assert "has no effective_from date" in str(info.value)


def test_catalogue_series_picks_the_version_in_force_by_date() -> None:
    old = Catalogue.from_path(
        DIP_DEMO, id="old", effective_from="2023-01-01", effective_to="2023-12-31"
    )
    new = Catalogue.from_path(DIP_DEMO, id="new", effective_from="2024-01-01")
    series = drgkit.CatalogueSeries("demo", (new, old))
    assert [v.id for v in series.ordered()] == ["old", "new"]
    assert series.for_date(dt.date(2022, 12, 31)) is None
    assert series.for_date(dt.date(2023, 12, 31)).id == "old"
    assert series.for_date(dt.date(2024, 1, 1)).id == "new"
    days = np.array([(dt.date(2023, 6, 1) - dt.date(1970, 1, 1)).days, 0])
    assert series.select(days).tolist() == [0, -1]


def test_tables_hash_depends_on_format_label_names_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(b"x\n1\n")
    base = _versions.tables_hash(tmp_path, "fmt-1", ["a.csv", "b.csv"])
    assert base != _versions.tables_hash(tmp_path, "fmt-2", ["a.csv", "b.csv"])
    (tmp_path / "b.csv").write_bytes(b"")  # an empty table is not an absent one
    assert base != _versions.tables_hash(tmp_path, "fmt-1", ["a.csv", "b.csv"])


def test_catalogue_list_shows_the_period_the_series_applies(capsys) -> None:
    """`catalogues list` and `rulesets list` print through one helper: an older catalogue
    version without its own end date is shown ending the day before the next one starts."""
    from drgkit.cli._listing import echo_versions

    old = Catalogue.from_path(DIP_DEMO, id="old", effective_from="2023-01-01")
    new = Catalogue.from_path(DIP_DEMO, id="new", effective_from="2024-01-01")
    echo_versions(
        {"new": new, "old": old},
        {"demo": drgkit.CatalogueSeries("demo", (new, old))},
        noun="DIP catalogue",
        region_option="dip:REGION",
    )
    lines = capsys.readouterr().out.splitlines()
    assert next(line for line in lines if line.startswith("old ")).split()[3:6] == [
        "2023-01-01",
        "–",
        "2023-12-31",
    ]
    assert "  demo: old, new" in lines
    echo_versions({}, {}, noun="DIP catalogue", region_option="dip:REGION")
    assert capsys.readouterr().out == (
        "No DIP catalogues are registered. Give a catalogue folder with -r PATH.\n"
    )
