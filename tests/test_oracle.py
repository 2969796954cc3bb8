"""Every shared ruleset against its conformance set, and against the naive reference.

1. The oracle: each folder of ``../shared/oracle`` (found by listing it, so a new folder is
   tested without a code change) is grouped with the ruleset of the same name in drgkit's
   default mode; every one of its 10,000 cases and the 30 samples must agree on status, mdc,
   adrg and drg (an ``ERROR`` row of the reference has no codes: there the status and the
   reason's OpenDRG status must agree). A failure shows the first disagreeing cases with
   their explanation trail.
2. The naive reference (tests/naive.py) against the oracle on every 20th case, and drgkit
   against the naive reference on a few hundred cases per ruleset, varied where the later
   rulesets differ: sex, department and leaving type written as text
   or numbers, missing birth weights of newborns, ICU hours, the order of the procedures.

Compiled rulesets come from the session's compiled-array cache, so each ruleset is built
once per run.
"""

from __future__ import annotations

import csv
import functools
import random
import warnings
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import require_shared, shared_dir
from naive import NaiveRuleset

import drgkit
from drgkit.grouping._status import REASONS

STATUS = {
    "SUCCESS": "ok",
    "FAIL": "ungroupable",
    "QY": "ambiguous",
    "CHECK_FAILED": "invalid",
    "ERROR": "invalid",
    "ZD_NOT_MAPPING": "invalid",
    "SS_NOT_MAPPING": "invalid",
}
SHOWN = 10  # disagreeing cases shown in full on failure


def discover_oracles() -> list[str]:
    """The oracle folders: every folder of ``<shared>/oracle`` with cases and expectations."""
    folder = shared_dir() / "oracle"
    if not folder.is_dir():
        return []
    return sorted(
        p.name
        for p in folder.iterdir()
        if (p / "cases.csv").is_file() and (p / "expected.csv").is_file()
    )


ORACLES = discover_oracles()


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _ruleset(shared: Path, name: str) -> Path:
    folder = shared / "rulesets" / name
    assert (folder / "meta.csv").is_file(), f"oracle {name} has no ruleset folder {folder}"
    return folder


def _disagreements(result: pa.Table, expected: list[dict[str, str]]) -> list[tuple]:
    """(position, want, got) of each row that differs from the reference."""
    got = result.to_pydict()
    assert len(got["case_id"]) == len(expected), "a case was dropped or added"
    bad = []
    for i, exp in enumerate(expected):
        status = STATUS[exp["status"]]
        reason = got["reason"][i]
        opendrg = REASONS[reason].opendrg if reason else "SUCCESS"
        have = (got["case_id"][i], got["status"][i], opendrg)
        want = (exp["Index"], status, exp["status"])
        if exp["status"] != "ERROR":  # the reference gives no codes on an error
            have += (got["mdc"][i], got["adrg"][i], got["drg"][i])
            want += (exp["mdc"], exp["adrg"], exp["drg"])
        if have != want:
            bad.append((i, want, have, got["detail"][i]))
    return bad


def _report(name: str, which: str, cases: list[dict], bad: list[tuple], ruleset: Path) -> str:
    lines = [f"{name}/{which}: {len(bad)} of {len(cases)} cases disagree with the reference"]
    for i, want, have, detail in bad[:SHOWN]:
        case = {k: v for k, v in cases[i].items() if k is not None}
        lines.append(f"--- {case['Index']}: expected {want[1:]}, got {have[1:]} ({detail})")
        lines.append(f"    input {case}")
        try:
            trail = drgkit.explain(case, ruleset).render()
        except Exception as exc:  # the report must not hide the disagreement
            trail = f"(no explanation: {exc!r})"
        lines.extend("    " + line for line in trail.splitlines())
    return "\n".join(lines)


@pytest.mark.parametrize("which", ["cases", "samples"])
@pytest.mark.parametrize("name", ORACLES or ["(no oracle folder)"])
def test_oracle_agrees_100_percent(name: str, which: str) -> None:
    shared = require_shared()
    assert ORACLES, f"no oracle folder with cases.csv and expected.csv in {shared / 'oracle'}"
    ruleset = _ruleset(shared, name)
    if which == "cases":
        cases_path = shared / "oracle" / name / "cases.csv"
        expected = _read(shared / "oracle" / name / "expected.csv")
    else:
        cases_path = shared / "oracle" / "samples.csv"
        expected = _read(shared / "oracle" / name / "samples_expected.csv")
    with warnings.catch_warnings():
        # the conformance sets hold deliberately bad records: their DataWarnings are expected
        warnings.simplefilter("ignore")
        result = drgkit.group(cases_path, ruleset)
    bad = _disagreements(result, expected)
    if bad:
        pytest.fail(_report(name, which, _read(cases_path), bad, ruleset))


def test_the_oracle_covers_every_shared_ruleset() -> None:
    """Every ruleset folder has a conformance set (else it would go unproven)."""
    shared = require_shared()
    rulesets = sorted(p.name for p in (shared / "rulesets").iterdir() if (p / "meta.csv").is_file())
    assert rulesets == ORACLES
    assert len(ORACLES) >= 28


# --------------------------------------------------------------------------- 2. naive


@functools.cache
def _naive(folder: str) -> NaiveRuleset:
    return NaiveRuleset.load(folder)


_SEX = ["1", "2", "男", "女", "1.0", " 1", "", "3", "M"]
_TEXTY = ["1", "2", "5", "2.0", "ICU", "", "abc", "05"]
_ICU = ["", "0", "1", "24", "120", "121", "500", "12.5", "abc", "-3"]
_WEIGHT = ["", "", "3200", "0", "abc"]


def _variants(cases: list[dict[str, str]], count: int, seed: str) -> list[dict[str, str]]:
    """``count`` cases drawn from ``cases``, each with some fields rewritten where the later
    rulesets read or check differently."""
    rng = random.Random(seed)
    out = []
    for k in range(count):
        case = dict(rng.choice(cases))
        case.pop(None, None)  # type: ignore[call-overload]
        case["Index"] = f"V{k}"
        roll = rng.random()
        if roll < 0.25:
            case["gender"] = rng.choice(_SEX)
        elif roll < 0.4:
            case["age"], case["ageDay"] = "0", rng.choice(["0", "5", "28", "29", "300", ""])
            case["weight"] = rng.choice(_WEIGHT)
        elif roll < 0.55:
            case["dept"] = rng.choice(_TEXTY)
            case["leavingType"] = rng.choice(_TEXTY)
        elif roll < 0.75:
            px = [p for p in case["ICD9_DRGS"].split("|") if p]
            rng.shuffle(px)
            case["ICD9_DRGS"] = "|".join(px)
        case["icuHours"] = rng.choice(_ICU)
        out.append(case)
    return out


@pytest.mark.parametrize("name", ORACLES or ["(no oracle folder)"])
def test_kernel_agrees_with_naive_reference(name: str) -> None:
    shared = require_shared()
    assert ORACLES, f"no oracle folder in {shared / 'oracle'}"
    ruleset = _ruleset(shared, name)
    oracle = _read(shared / "oracle" / name / "cases.csv")
    naive = _naive(str(ruleset))
    # the reference itself agrees with the oracle (on every 20th case: it is slow)
    expected = _read(shared / "oracle" / name / "expected.csv")
    wrong = [
        (case["Index"], want, got)
        for case, want in zip(oracle[::20], expected[::20], strict=True)
        if (got := naive.group(case)) != (want["status"], want["mdc"], want["adrg"], want["drg"])
    ]
    assert not wrong, f"{name}: the naive reference disagrees with the oracle: {wrong[:5]}"
    cases = _variants(oracle, 300, name)
    columns = list(cases[0])
    table = pa.table({c: pa.array([r[c] for r in cases], pa.string()) for c in columns})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = drgkit.group(table, ruleset).to_pylist()
    bad = []
    for case, row in zip(cases, got, strict=True):
        want = naive.group(case)
        have = (row["status"], REASONS[row["reason"]].opendrg if row["reason"] else "SUCCESS")
        expect = (STATUS[want[0]], want[0])
        if want[0] != "ERROR":
            have += (row["mdc"], row["adrg"], row["drg"])
            expect += want[1:]
        if have != expect:
            bad.append((case, expect, have, row["detail"]))
    assert not bad, f"{name}: {len(bad)} of {len(cases)} differ; first: " + "\n".join(
        f"{c} expected {e} got {h} ({d})" for c, e, h, d in bad[:5]
    )
