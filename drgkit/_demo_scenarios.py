"""The demo ruleset read as plain tables, and one sampling *scenario* per ADRG entry: which
principal diagnoses, procedures, secondaries, sex, age and birth weight land a case there (see
:mod:`drgkit._demo`)."""

from __future__ import annotations

import csv
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

from ._demo_mix import (
    ADRG_SPREAD,
    AGE_BY_ENTRY,
    AGE_BY_LETTER,
    AGE_DEFAULT,
    BASE_COST,
    CONSUMABLES,
    DEPT_BY_ENTRY,
    DEPT_BY_LETTER,
    KIND_WEIGHT,
    LOS,
    MALE_SHARE,
    MDC_SHARE,
    NATIONAL_OUT_OF_SCOPE_SHARE,
    NON_OR,
    NON_OR_RATE,
    OUT_OF_SCOPE_PREFIXES,
    OUT_OF_SCOPE_SHARE,
    PDX_HINTS,
    VOLUME,
)

# ---------------------------------------------------------------------------------------------
# Reading the ruleset
# ---------------------------------------------------------------------------------------------


def demo_ruleset_root() -> Path:
    """The ``rulesets/demo`` folder: in a source tree, else inside the installed package."""
    here = Path(__file__).resolve()
    candidates = (here.parents[1] / "rulesets" / "demo", here.parent / "_rulesets" / "demo")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "drgkit's demo ruleset is missing (looked in "
        + " and ".join(str(c) for c in candidates)
        + "); reinstall drgkit or pass ruleset_dir"
    )


def _rows(folder: Path, name: str) -> list[dict[str, str]]:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: demo ruleset file missing")
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass(slots=True)
class Tables:
    """The parts of a ruleset the generator needs, in file order (deterministic iteration)."""

    mdcs: list[tuple[str, list[dict[str, str]]]]
    entries: dict[str, list[tuple[dict[str, str], list[dict[str, str]]]]]
    lists: dict[str, list[str]]
    tags: dict[str, dict[str, str]]
    ss_valid: frozenset[str]
    mcc: dict[str, str]
    cc: dict[str, str]
    pdx_excl: dict[str, str]
    dx_codes: list[str]
    px_codes: frozenset[str]
    steps: dict[str, list[list[dict[str, str]]]]


def read_demo_tables(folder: Path) -> Tables:
    rules: dict[str, list[dict[str, str]]] = {}
    for row in _rows(folder, "rules.csv"):
        rules.setdefault(row["rule_id"], []).append(row)
    for atoms in rules.values():
        atoms.sort(key=lambda a: int(a["seq"]))
    lists: dict[str, list[str]] = {}
    tags: dict[str, dict[str, str]] = {}
    for row in _rows(folder, "lists.csv"):
        lists.setdefault(row["list_id"], []).append(row["code"])
        if row["tag"]:
            tags.setdefault(row["list_id"], {})[row["code"]] = row["tag"]
    mdcs = [
        (r["mdc"], rules.get(r["rule_id"], []))
        for r in sorted(_rows(folder, "mdc.csv"), key=lambda r: int(r["seq"]))
    ]
    entries: dict[str, list[tuple[dict[str, str], list[dict[str, str]]]]] = {}
    for r in sorted(_rows(folder, "adrg.csv"), key=lambda r: (r["mdc"], int(r["seq"]))):
        entries.setdefault(r["mdc"], []).append((r, rules.get(r["rule_id"], [])))
    steps: dict[str, list[list[dict[str, str]]]] = {}
    for r in sorted(_rows(folder, "adrg_drg.csv"), key=lambda r: (r["entry"], int(r["seq"]))):
        steps.setdefault(r["entry"], []).append(rules.get(r["rule_id"], []))
    return Tables(
        mdcs=mdcs,
        entries=entries,
        lists=lists,
        tags=tags,
        ss_valid=frozenset(r["code"] for r in _rows(folder, "ss_valid.csv")),
        mcc={r["code"]: r["excl_table"] for r in _rows(folder, "mcc.csv")},
        cc={r["code"]: r["excl_table"] for r in _rows(folder, "cc.csv")},
        pdx_excl={r["code"]: r["excl_table"] for r in _rows(folder, "pdx_excl.csv")},
        dx_codes=[r["code"] for r in _rows(folder, "dx_dict.csv")],
        px_codes=frozenset(r["code"] for r in _rows(folder, "px_dict.csv")),
        steps=steps,
    )


# ---------------------------------------------------------------------------------------------
# Scenarios: what makes a case land in one ADRG entry
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Scenario:
    entry: str
    letter: str  # MDC letter, "-" for out-of-scope diagnoses
    pdx: list[str]
    surgical: bool = False
    any_dx: list[str] | None = None  # ANY_DX_IN: one of these somewhere in the diagnoses
    sdx_required: list[str] | None = None  # SDX_IN
    forbidden: frozenset[str] = frozenset()  # NO_SDX_IN / NO_DX_IN
    proc_pools: list[list[str]] = field(default_factory=list)  # first one gives the principal
    tag_alternatives: list[list[list[str]]] = field(default_factory=list)  # PROC_TAGS
    sex: str | None = None
    newborn: bool = False
    weight_range: tuple[int, int] | None = None
    regions: dict[str, str] | None = None  # MULTI_REGION: code -> body region
    dept_values: list[str] = field(default_factory=list)  # CMP_STR dept == … in DRG steps
    non_or: list[str] = field(default_factory=list)
    volume: float = 1.0  # relative frequency in the case mix
    # derived
    age: tuple[int, int, int, int] = AGE_DEFAULT
    male_share: float = 0.5
    los: tuple[int, int] = (7, 1)
    cost: float = 9000.0
    consumables: float = 0.08
    dept: str = "0300"
    tier: int = 1
    non_or_rate: float = 0.2
    population: str = "adult"
    # (codes as a set, codes to draw from when the pool gives the principal procedure, codes)
    proc_plan: list[tuple[frozenset[str], list[str], list[str]]] = field(default_factory=list)


def _mdc_constraints(atoms: list[dict[str, str]]) -> tuple[str, str | None, bool, str]:
    """An MDC entry rule as (principal-diagnosis list, sex, newborns only, region list)."""
    pool, sex, newborn, regions = "", None, False, ""
    for a in atoms:
        t, lid, fld, op, val = a["template"], a["list_id"], a["field"], a["op"], a["value"]
        if t == "PDX_IN":
            pool = lid
        elif t in ("CMP", "CMP_INT") and fld == "gender" and op == "==":
            sex = val
        elif t in ("CMP", "CMP_INT") and fld == "age" and op == "==" and val == "0":
            newborn = True
        elif t == "MULTI_REGION":
            regions = lid
    return pool, sex, newborn, regions


def _hint_codes(entry: str, tables: Tables) -> list[str]:
    codes: list[str] = []
    for source, prefixes in PDX_HINTS.get(entry, ()):
        pool = tables.dx_codes if source == "dx_dict" else tables.lists.get(source, [])
        codes += [c for c in pool if (not prefixes or c.startswith(prefixes)) and c not in codes]
    return codes


def build_scenarios(tables: Tables) -> list[Scenario]:
    scenarios: list[Scenario] = []
    mdc_pool_codes: set[str] = set()
    for mdc, matoms in tables.mdcs:
        pool_id, sex, newborn, regions_id = _mdc_constraints(matoms)
        letter = mdc[-1]
        mdc_pool = tables.lists.get(pool_id, [])
        mdc_pool_codes.update(mdc_pool)
        regions = tables.tags.get(regions_id) if regions_id else None
        # codes of weight-banded lists: a newborn without a weight band should not carry them
        banded: set[str] = set()
        for _row, atoms in tables.entries.get(mdc, []):
            if any(a["field"] == "weight" and a["template"] == "CMP" for a in atoms):
                for a in atoms:
                    if a["template"] in ("ANY_DX_IN", "PDX_IN"):
                        banded.update(tables.lists.get(a["list_id"], []))
        for row, atoms in tables.entries.get(mdc, []):
            if row["kind"] != "ADRG" or any(a["template"] == "FALSE" for a in atoms):
                continue
            entry = row["entry"]
            sc = Scenario(
                entry=entry, letter=letter, pdx=[], sex=sex, newborn=newborn, regions=regions
            )
            pdx_list: list[str] | None = None
            lo, hi = None, None
            for a in atoms:
                t, lid, fld, op, val = a["template"], a["list_id"], a["field"], a["op"], a["value"]
                codes = tables.lists.get(lid, []) if lid and lid != "SS_VALID" else []
                if t == "PDX_IN":
                    pdx_list = codes
                elif t == "ANY_DX_IN":
                    sc.any_dx = codes
                elif t == "SDX_IN":
                    sc.sdx_required = codes
                elif t in ("NO_SDX_IN", "NO_DX_IN"):
                    sc.forbidden = sc.forbidden | frozenset(codes)
                elif t == "HAS_PROC":
                    sc.surgical = True
                elif t in ("PPROC_IN", "ANY_PROC_IN") and codes:
                    sc.proc_pools.append(codes)
                    sc.surgical = True
                elif t == "PROC_TAGS":
                    tag_map = tables.tags.get(lid, {})
                    for alternative in val.split("|"):
                        pools = [
                            [c for c, g in tag_map.items() if g == tag]
                            for tag in alternative.split("+")
                        ]
                        if all(pools):
                            sc.tag_alternatives.append(pools)
                    sc.surgical = True
                elif t == "CMP" and fld == "weight":
                    bound = int(float(val))
                    if op in (">=", ">"):
                        lo = bound + (op == ">")
                    elif op in ("<", "<="):
                        hi = bound + (op == "<=")
            if lo is not None or hi is not None:
                sc.weight_range = (lo if lo is not None else 500, hi if hi is not None else 4600)
            hint = _hint_codes(entry, tables)
            if mdc_pool:
                hint = [c for c in hint if c in mdc_pool]
            if pdx_list:
                sc.pdx = list(pdx_list)
            elif hint:
                sc.pdx = hint
            elif mdc_pool:
                sc.pdx = list(mdc_pool)
            if sc.newborn and sc.weight_range is None:
                sc.pdx = [c for c in sc.pdx if c not in banded] or sc.pdx
            if not sc.pdx or (sc.surgical and not (sc.proc_pools or sc.tag_alternatives)):
                continue  # nothing sensible to draw (e.g. an ADRG of a pre-MDC without hints)
            for step in tables.steps.get(entry, []):
                sc.dept_values += [
                    a["value"]
                    for a in step
                    if a["template"] == "CMP_STR" and a["field"] == "dept" and a["op"] == "=="
                ]
            scenarios.append(sc)
    out_of_scope = [
        c
        for c in tables.dx_codes
        if c.startswith(OUT_OF_SCOPE_PREFIXES) and c not in mdc_pool_codes
    ]
    share = OUT_OF_SCOPE_SHARE
    if sum(sc.entry in VOLUME for sc in scenarios) * 2 >= len(scenarios):
        for sc in scenarios:
            sc.volume = VOLUME.get(sc.entry, 1.0)
    else:  # a national ruleset: volumes from the MDC shares, and few cases without an MDC
        national_volumes(scenarios)
        share = NATIONAL_OUT_OF_SCOPE_SHARE
    total = sum(sc.volume for sc in scenarios)
    if out_of_scope:
        scenarios.append(
            Scenario(
                entry="-",
                letter="-",
                pdx=out_of_scope,
                volume=total * share / (1 - share),
            )
        )
    in_lists = {c for codes in tables.lists.values() for c in codes}
    for sc in scenarios:
        _derive(sc, tables, in_lists)
    return scenarios


def _derive(sc: Scenario, tables: Tables, procedure_list_codes: set[str]) -> None:
    """Fill the demographic, stay and cost parameters of a scenario."""
    sc.age = AGE_BY_ENTRY.get(sc.entry) or AGE_BY_LETTER.get(sc.letter, AGE_DEFAULT)
    sc.male_share = MALE_SHARE.get(sc.letter, 0.5)
    if sc.sex is None and sc.letter == "O":
        sc.sex = "2"
    sc.los = LOS.get(sc.entry, (9, 2) if sc.surgical else (7, 1))
    sc.cost = float(BASE_COST.get(sc.entry, 30000 if sc.surgical else 9000))
    sc.consumables = CONSUMABLES.get(sc.entry, 0.28) if sc.surgical else 0.08
    sc.tier = 3 if sc.cost >= 40000 else 2 if sc.cost >= 12000 or sc.surgical else 1
    surgical_dept, medical_dept = DEPT_BY_LETTER.get(sc.letter, ("0401", "0300"))
    sc.dept = DEPT_BY_ENTRY.get(sc.entry, surgical_dept if sc.surgical else medical_dept)
    sc.non_or = [
        c
        for c in NON_OR.get(sc.letter, ())
        if c in tables.px_codes and c not in tables.ss_valid and c not in procedure_list_codes
    ]
    sc.non_or_rate = NON_OR_RATE.get(sc.entry, 0.3 if sc.surgical else 0.2)
    sc.population = _population(sc)
    # a principal procedure must be an operating-room one where an MDC is entered by it (MDCA)
    sc.proc_plan = [
        (frozenset(pool), [c for c in pool if c in tables.ss_valid] or pool, pool)
        for pool in sc.proc_pools
    ]


# ---------------------------------------------------------------------------------------------
# Secondary diagnoses
# ---------------------------------------------------------------------------------------------


def _population(sc: Scenario) -> str:
    if sc.newborn:
        return "newborn"
    if sc.letter == "O":
        return "obstetric"
    if sc.letter in ("Z", "I", "A"):
        return "trauma"
    return "adult"


_OBSTETRIC_EXTRA = ("D6", "E86", "E87", "J18", "N39", "A41")
FEMALE_ONLY = ("O", "M80.0", "M81.0", "C5", "D25", "D27", "N7", "N8", "N9")
MALE_ONLY = ("N4", "C6")


def fits(code: str, population: str) -> bool:
    if population == "newborn":
        return code.startswith(("P", "Q"))
    if population == "obstetric":
        return code.startswith(("O", *_OBSTETRIC_EXTRA))
    if code.startswith(("O", "P", "Q")):
        return False
    return population == "trauma" or not code.startswith("S")


def national_volumes(scenarios: list[Scenario]) -> None:
    """Case-mix volumes for a national ruleset: the MDC's share (MDC_SHARE) split over its
    ADRGs by kind (KIND_WEIGHT) and by a fixed log-normal factor per ADRG code (seeded by the
    code, so the same ruleset always gets the same mix)."""
    raw: dict[int, float] = {}
    by_letter: dict[str, float] = {}
    for k, sc in enumerate(scenarios):
        second = sc.entry[1:2]
        kind = "surgical" if second <= "J" else "procedure" if second <= "Q" else "medical"
        u = (zlib.crc32(sc.entry.encode()) + 0.5) / 2**32
        raw[k] = KIND_WEIGHT[kind] * math.exp(ADRG_SPREAD * NormalDist().inv_cdf(u))
        by_letter[sc.letter] = by_letter.get(sc.letter, 0.0) + raw[k]
    for k, sc in enumerate(scenarios):
        share = MDC_SHARE.get(sc.letter, 0.5)
        sc.volume = share * raw[k] / by_letter[sc.letter]
