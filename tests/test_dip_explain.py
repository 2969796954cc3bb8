"""DIP explanations (every tier tried and why) and candidate packets with points."""

from __future__ import annotations

from decimal import Decimal

from conftest import REPO

import drgkit

DEMO = REPO / "catalogues" / "demo" / "2024"


def test_explain_core_partial_match_lists_every_row() -> None:
    e = drgkit.explain(
        {"diagnoses": "I21.000|E11.900", "procedures": "36.0700x001|99.2900"}, "dip_demo_2024"
    )
    assert isinstance(e, drgkit.DipExplanation)
    assert (e.packet, e.tier, e.score) == ("I21.0-1", "core", Decimal(3000))
    tiers = [tier for tier, _text in e.steps]
    assert tiers[:4] == ["checks", "pregroup", "merge", "subdivide"]
    core = [text for tier, text in e.steps if tier == "core"]
    assert any("row 11 I21.0-1: candidate" in t for t in core)
    assert any("I21.0-2: no" in t and "related 00.24 not all present" in t for t in core)
    assert "I21.0-1" in str(e)


def test_explain_names_the_deciding_tier() -> None:
    e = drgkit.explain(
        {"diagnoses": ["I63.500"], "procedures": ["47.0100"]}, drgkit.Catalogue.from_path(DEMO)
    )
    assert e.packet == "I63-T"
    assert e.steps[-1][0] == "comprehensive" and "相关手术" in e.steps[-1][1]
    assert any(t == "core" and "no core packet for diagnosis key I63.5" in x for t, x in e.steps)
    sub = drgkit.explain({"diagnoses": "Z51.100|C34.100"}, "dip_demo_2024")
    assert sub.steps[-1] == ("subdivide", "subdivide.csv row 4 holds -> SD-CHEMO")
    excl = drgkit.explain({"diagnoses": "Z00.000"}, "dip_demo_2024")
    assert (excl.status, excl.reason, excl.packet) == ("ungroupable", "excluded_principal_dx", None)
    px_excl = drgkit.explain({"diagnoses": "K35.800", "procedures": "57.9400"}, "dip_demo_2024")
    assert px_excl.packet == "K35.8-0"
    assert any("treated as no procedure" in text for _t, text in px_excl.steps)
    blank = drgkit.explain({"diagnoses": "A01.000"}, "dip_demo_2024")
    assert [t for t, _x in blank.steps][-3:] == ["comprehensive", "prefix", "blank"]


def test_candidates_points_and_changes() -> None:
    found = drgkit.candidates(
        {"diagnoses": "I21.000", "procedures": "36.0700x001|88.5600"},
        "dip_demo_2024",
        hospital_coefficient="0.95",
    )
    first = found[0]
    assert (first.packet, first.change, first.points) == ("I21.0-1", "as coded", Decimal("2850"))
    by_packet = {c.packet: c for c in found}
    # the intravascular-ultrasound packet: 4700 x 0.95
    assert by_packet["I21.0-2"].change == "add procedure 00.24"
    assert by_packet["I21.0-2"].points == Decimal("4465")
    assert len({c.packet for c in found}) == len(found)


def test_candidates_primary_care_has_no_hospital_coefficient() -> None:
    found = drgkit.candidates(
        {"diagnoses": "J18.900", "age": 40}, "dip_demo_2024", hospital_coefficient="1.2"
    )
    assert (found[0].packet, found[0].kind, found[0].points) == ("J18.9-0", "primary", Decimal(480))


def test_candidates_with_aux_coefficient() -> None:
    found = drgkit.candidates(
        {"diagnoses": "I21.000", "age": 70, "leaving_type": 1},
        "dip_demo_2024",
        hospital_coefficient=2,
    )
    assert found[0].packet == "I21.0-0"
    assert found[0].points == Decimal(1200) * Decimal("1.12") * 2


def test_candidates_secondary_diagnosis_change() -> None:
    found = drgkit.candidates({"diagnoses": "T22.300"}, "dip_demo_2024")
    burn = [c for c in found if c.packet == "SD-BURN3"]
    assert burn and burn[0].change.startswith("add secondary diagnosis T31.")


def test_explain_a_case_of_a_file_by_id(tmp_path) -> None:
    import pytest

    path = tmp_path / "cases.csv"
    path.write_text(
        "case_id,diagnoses,procedures\na,K35.800,47.01\nb,I21.000|E11.900,36.0700|00.2400\n",
        encoding="utf-8",
    )
    e = drgkit.explain(path, "dip_demo_2024", case_id="b")
    assert (e.case_id, e.packet) == ("b", "I21.0-2")
    assert drgkit.explain(path, "dip_demo_2024").packet == "K35.8-1"  # first row
    with pytest.raises(LookupError, match="'zz' is not in the input"):
        drgkit.explain(path, "dip_demo_2024", case_id="zz")


def test_explain_with_a_region_names_the_version() -> None:
    e = drgkit.explain_dip({"diagnoses": "K35.800", "discharge_date": "2024-03-01"}, "demo")
    assert (e.catalogue, e.packet) == ("dip_demo_2024", "K35.8-0")
    early = drgkit.explain_dip({"diagnoses": "K35.800", "discharge_date": "2023-03-01"}, "demo")
    assert (early.status, early.reason) == ("invalid", "no_catalogue_in_force")
    assert "2023-03-01" in early.steps[0][1]
