"""Explanations: the trail is the reference grouper's own decision path, and it reads like a
coder's explanation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import DEMO, SHARED_RULESETS
from naive import NaiveRuleset

import drgkit

SAMPLE = "22058878"  # K22.301 with K11.901, E11.900, I10.x05; procedure 96.0800x005 → GZ13


@pytest.fixture(scope="module")
def sample(shared: Path) -> drgkit.Explanation:
    return drgkit.explain(
        shared / "oracle" / "samples.csv", shared / "rulesets" / "chs_drg_11", case_id=SAMPLE
    )


def test_sample_case_reads_like_a_coder_explanation(sample: drgkit.Explanation) -> None:
    e = sample
    assert (e.status, e.mdc, e.adrg, e.drg) == ("ok", "MDCG", "GZ1", "GZ13")
    assert e.drg_name == "其他消化系统诊断，伴并发症或合并症"
    assert e.principal == ("K22.301", "食管破裂")
    # secondary diagnoses and their complication status
    sec = {s.code: s for s in e.secondaries}
    assert sec["K11.901"].severity == "CC" and not sec["K11.901"].excluded
    assert sec["E11.900"].severity == "" and sec["I10.x05"].severity == ""
    assert e.procedures == (("96.0800x005", "鼻十二指肠营养管置入术", False),)
    # MDC level: every MDC tried before MDCG failed, with the reason
    mdcs = [t for t in e.trail if t.level == "mdc"]
    assert [t.target for t in mdcs][-1] == "MDCG" and mdcs[-1].held
    assert all(not t.held for t in mdcs[:-1])
    assert "not in the operating-room procedure list" in mdcs[0].why  # MDCA
    assert "principal diagnosis K22.301 食管破裂 is in MDCG.mdc_zd" in mdcs[-1].why
    # ADRG level: GZ1 matched on its diagnosis list
    adrgs = [t for t in e.trail if t.level == "adrg"]
    assert adrgs[-1].target == "GZ1" and adrgs[-1].held
    assert adrgs[-1].name == "其他消化系统诊断"
    assert "K22.301" in adrgs[-1].why and "GZ1.adrg_zd" in adrgs[-1].why
    # DRG level: the CC that made it GZ13
    drgs = [t for t in e.trail if t.level == "drg"]
    assert [t.target for t in drgs if t.held] == ["GZ13"]
    assert "K11.901 腮腺区肿物 is a CC (exclusion table 110)" in drgs[-1].why
    text = e.render()
    for words in (
        "Case 22058878",
        "✓ MDCG 消化系统疾病及功能障碍",
        "✓ GZ1 其他消化系统诊断",
        "✓ GZ13 其他消化系统诊断，伴并发症或合并症",
        "[CC, table 110]",
        "Result: GZ13",
    ):
        assert words in text, words


def test_explanation_is_json_serialisable(sample: drgkit.Explanation) -> None:
    data = json.loads(json.dumps(sample.to_dict(), ensure_ascii=False, default=str))
    assert data["drg"] == "GZ13" and data["trail"][-1]["target"] == "GZ13"


def _naive_path(reference: NaiveRuleset, record: dict) -> list[tuple[str, str, bool]]:
    path = []
    for level, ident, held in reference.explain_path(record):
        if level in ("mdc", "entry", "drg"):
            path.append(("adrg" if level == "entry" else level, ident, bool(held)))
    return path


@pytest.mark.parametrize("name", SHARED_RULESETS)
def test_trail_is_the_reference_decision_path(shared: Path, name: str) -> None:
    """For a spread of oracle cases, the explanation's (level, target, held) sequence equals
    the independent reference grouper's decision path, and the explained group equals the
    bulk result."""
    reference = NaiveRuleset.load(shared / "rulesets" / name)
    cases_path = shared / "oracle" / name / "cases.csv"
    with open(cases_path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))[::250]
    ruleset = drgkit.load_ruleset(shared / "rulesets" / name)
    bulk = {r["case_id"]: r for r in drgkit.group(cases_path, ruleset).to_pylist()}
    for row in rows:
        e = drgkit.explain(row, ruleset, layout="opendrg")
        assert (e.status, e.drg) == (bulk[row["Index"]]["status"], bulk[row["Index"]]["drg"])
        if e.status == "invalid" and not e.trail:
            continue  # stopped by an input check before any rule
        record = {k: v for k, v in row.items() if k != "Index"}
        mine = [(t.level, t.target, t.held) for t in e.trail]
        theirs = _naive_path(reference, record)
        if e.reason in ("text_compared", "not_integer", "no_principal_procedure"):
            # the erroring rule is the last step of ours; the reference records an error
            mine = mine[:-1]
            theirs = theirs[: len(mine)]
        assert mine == theirs, (row, mine[-5:], theirs[-5:])


def test_error_case_names_field_and_rule(shared: Path) -> None:
    e = drgkit.explain(
        shared / "oracle" / "beijing_2022" / "cases.csv",
        shared / "rulesets" / "beijing_2022",
        case_id="BEIJING2022-004243",
    )
    assert (e.status, e.reason) == ("invalid", "text_compared")
    last = e.trail[-1]
    assert last.outcome == "error" and last.target == "PS1"
    assert "birth_weight" in last.why and "'abc'" in last.why
    assert "ADRG:PS1" in e.detail


@pytest.mark.filterwarnings("ignore::drgkit.DataWarning")
def test_invalid_case_without_trail_explains_the_check() -> None:
    e = drgkit.explain(
        {"case_id": "x", "diagnoses": "I21.000", "sex": "", "age": "60"}, "demo_2024"
    )
    assert e.status == "invalid" and e.reason == "sex_missing"
    assert "Not grouped: sex_missing — sex '' is not 1, 2, 男 or 女" in e.render()


@pytest.mark.filterwarnings("ignore::drgkit.DataWarning")
def test_ad_hoc_case_picks_the_version_by_date_and_agrees_with_bulk() -> None:
    import pyarrow as pa

    for day, version in (("2023-05-01", "demo_2023"), ("2024-05-01", "demo_2024")):
        case = {
            "case_id": "adhoc",
            "diagnoses": ["G45.900", "E11.900"],
            "procedures": [],
            "sex": 1,
            "age": 70,
            "discharge_date": day,
        }
        e = drgkit.explain(case, "demo")
        assert e.ruleset == version
        bulk = drgkit.group(
            pa.Table.from_pylist(
                [
                    {
                        "case_id": "adhoc",
                        "diagnoses": "G45.900|E11.900",
                        "sex": "1",
                        "age": "70",
                        "discharge_date": day,
                    }
                ]
            ),
            "demo",
        ).to_pylist()[0]
        assert (e.status, e.drg, bulk["ruleset"]) == (bulk["status"], bulk["drg"], version)


def test_demo_rulesets_explain_every_template() -> None:
    """Every atom template the demo uses renders a sentence (no blank explanations)."""
    from drgkit import _demo

    cases = _demo.generate_cases(400, seed=5)
    ids = cases.column("case_id").to_pylist()
    seen = set()
    for case_id in ids[:150]:
        e = drgkit.explain(cases, DEMO, case_id=case_id)
        for step in e.trail:
            for atom in step.atoms:
                assert atom.text, atom
                seen.add(atom.template)
    assert {"PDX_IN", "HAS_PROC", "PPROC_IN"} <= seen


@pytest.mark.kernel
def test_explain_shows_trimmed_codes_and_the_mistake_hint() -> None:
    case = {
        "case_id": "H1",
        "sex": "1",
        "age": "72",
        "los": "5",
        "diagnoses": " I63.500 | E03.900 ",
        "procedures": "93.3900",
    }
    e = drgkit.explain(case, "demo_2024")
    assert e.status == "ok" and e.principal[0] == "I63.500"
    assert [s.code for s in e.secondaries] == ["E03.900"]
    with pytest.warns(drgkit.DataWarning):
        bad = drgkit.explain(dict(case, diagnoses="I63.500;E03.900"), "demo_2024")
    assert bad.status == "ungroupable" and "hint:" in bad.detail and "';'" in bad.detail
    implausible = drgkit.explain(dict(case, age="-5"), "demo_2024", value_checks="strict")
    assert (implausible.status, implausible.reason) == ("invalid", "age_implausible")
    with pytest.warns(drgkit.DataWarning, match="implausible age"):
        assert drgkit.explain(dict(case, age="-5"), "demo_2024").status == "ok"
