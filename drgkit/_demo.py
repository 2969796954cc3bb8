"""Plausible demo cases for ``drgkit demo``, drawn from the demo ruleset's own code lists.

The generator reads the demo ruleset (``rulesets/demo/<version>``) with the :mod:`csv` module
and turns every ADRG entry into a *scenario*: which principal diagnoses, procedures, secondary
diagnoses, sex, age and birth weight make a case land there. It then samples cases from a
fixed case mix, adds complications (CC/MCC) so that every severity level occurs, and prices
each stay. Everything is seeded from one :class:`random.Random`, so a seed always gives the
same table.

A small share of rows is deliberately bad (unknown codes, missing sex, text age, …) so that a
first run shows drgkit's per-case statuses too. Nothing here is real patient data.
"""

from __future__ import annotations

import csv
import math
import os
import random
import sys
from array import array
from bisect import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import TypeVar

import pyarrow as pa

__all__ = ["BAD_KINDS", "DEMO_CASE_SCHEMA", "demo_ruleset_root", "generate_cases"]

_T = TypeVar("_T")
_MONEY = pa.decimal128(14, 2)

#: Arrow schema of :func:`generate_cases` (canonical drgkit column names, see ``schema.py``).
DEMO_CASE_SCHEMA = pa.schema(
    [
        ("case_id", pa.string()),
        ("hospital_id", pa.string()),
        ("hospital_level", pa.int8()),
        ("insurance_type", pa.string()),
        ("sex", pa.string()),
        ("age", pa.string()),
        ("age_days", pa.string()),
        ("birth_weight", pa.string()),
        ("admission_weight", pa.string()),
        ("department", pa.string()),
        ("los", pa.string()),
        ("leaving_type", pa.string()),
        ("diagnoses", pa.list_(pa.string())),
        ("procedures", pa.list_(pa.string())),
        ("admission_date", pa.date32()),
        ("discharge_date", pa.date32()),
        ("ventilation_hours", pa.float64()),
        ("readmitted_31d", pa.bool_()),
        ("total_cost", _MONEY),
        ("drug_cost", _MONEY),
        ("consumables_cost", _MONEY),
        ("fund_paid", _MONEY),
        ("self_pay", _MONEY),
        ("own_pay", _MONEY),
        ("referral_from", pa.string()),
    ]
)

#: The kinds of deliberately bad rows, in the order they are drawn.
BAD_KINDS = (
    "unknown_diagnosis",  # principal truncated to its ICD-10 category: not a code of the version
    "empty_diagnoses",
    "missing_sex",
    "text_age",
    "infant_without_age_days",
    "text_birth_weight",  # '3,2kg' on a low-birth-weight newborn: the weight band cannot be read
    "duplicate_case_id",
    "foreign_or_procedure",  # an operating-room procedure of another MDC: QY where enabled
)

# ---------------------------------------------------------------------------------------------
# Case mix and clinical knowledge. Keyed by ADRG entry (national codes, stable across versions)
# or by MDC letter; anything missing falls back to a neutral default, so a changed ruleset
# still generates.
# ---------------------------------------------------------------------------------------------

# Relative admission volumes of a mid-sized city's hospitals.
_VOLUME = {
    "AB1": 0.05, "AH1": 0.35, "PS1": 0.35, "PS2": 1.0, "PV1": 3.0, "ZC1": 0.5, "ZZ1": 0.5,
    "MB1": 1.0, "MZ1": 1.0, "NA1": 0.4, "NC1": 2.0, "NR1": 1.0, "BB1": 0.7, "BR1": 2.2,
    "BR2": 8.0, "BZ1": 4.0, "FM1": 4.0, "FR1": 2.2, "FR3": 6.0, "FU1": 1.0, "FU2": 2.5,
    "GB1": 0.7, "GB2": 0.8, "GD2": 2.5, "GK1": 3.0, "GR1": 2.5, "GZ1": 8.0, "IC2": 2.2,
    "IF3": 1.4, "IR2": 1.0, "OB1": 4.0, "OR1": 5.0,
}
# Share of cases whose principal diagnosis lies outside the demo's MDCs (pneumonia, diabetes,
# gallbladder…): they are valid codes but cannot group, as in any partial scheme.
_OUT_OF_SCOPE_SHARE = 0.08
_OUT_OF_SCOPE_PREFIXES = ("J18", "J15", "J44", "J45", "E10", "E11.1", "N17", "N39", "A41",
                          "K74", "K81", "K85")

# Where the principal diagnosis of a surgical ADRG comes from: (list id or "dx_dict", code
# prefixes). Surgical ADRGs match on the procedure only, so without this an appendectomy could
# be drawn for a gastric cancer.
_PDX_HINTS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "AB1": (("dx_dict", ("C22.0", "K72.1", "K74.6")),),
    "AH1": (("BR1.adrg_zd", ()), ("MDCZ.mdc_zd", ("S06",))),
    "ZC1": (("MDCZ.mdc_zd", ("S32", "S42", "S52", "S72", "S82")),),
    "MB1": (("MZ1.adrg_zd", ("N40",)),),
    "NC1": (("MDCN.mdc_zd", ("D25", "D27", "N80", "N83")),),
    "BB1": (("BR1.adrg_zd", ()),),
    "FM1": (("FR1.adrg_zd", ()), ("FR3.adrg_zd", ("I20", "I25.1"))),
    "GB1": (("GR1.adrg_zd", ("C15", "C16")),),
    "GB2": (("GR1.adrg_zd", ("C18", "C19", "C20")),),
    "GD2": (("GZ1.adrg_zd", ("K35", "K36")),),
    "GK1": (("GZ1.adrg_zd", ("K62.1", "K63.5", "D12.6")),),
    "IC2": (("MDCI.mdc_zd", ("M16", "M17", "M87", "S72.0")),),
    "IF3": (("IR2.adrg_zd", ()),),
    "OB1": (("OR1.adrg_zd", ("O14", "O32", "O34", "O42", "O68")),),
}

# Age in years: (mean, sd, min, max), by entry, else by MDC letter.
_AGE_BY_ENTRY = {
    "GD2": (34, 15, 8, 85), "GK1": (56, 11, 30, 85), "MZ1": (52, 18, 16, 90),
    "NC1": (44, 8, 22, 70), "IR2": (78, 10, 35, 102), "IF3": (70, 16, 18, 100),
    "BZ1": (55, 18, 14, 95), "FU2": (64, 14, 18, 95),
}
_AGE_BY_LETTER = {
    "A": (55, 13, 18, 80), "B": (66, 12, 20, 95), "F": (66, 11, 30, 95), "G": (54, 16, 16, 92),
    "I": (66, 14, 18, 98), "M": (68, 9, 40, 92), "N": (49, 11, 20, 85), "O": (30, 5, 19, 45),
    "Z": (45, 16, 16, 90),
}
_AGE_DEFAULT = (62, 16, 18, 98)
_MALE_SHARE = {"A": 0.66, "B": 0.55, "F": 0.62, "G": 0.55, "I": 0.42, "Z": 0.68, "P": 0.52}

# Length of stay in days: (median, minimum).
_LOS = {
    "AB1": (30, 10), "AH1": (32, 8), "PS1": (42, 10), "PS2": (18, 4), "PV1": (6, 1),
    "ZC1": (22, 6), "ZZ1": (14, 2), "MB1": (7, 3), "MZ1": (6, 1), "NA1": (14, 6), "NC1": (7, 3),
    "NR1": (9, 1), "BB1": (20, 5), "BR1": (16, 2), "BR2": (11, 2), "BZ1": (7, 1), "FM1": (6, 2),
    "FR1": (9, 1), "FR3": (6, 1), "FU1": (9, 2), "FU2": (6, 1), "GB1": (17, 7), "GB2": (16, 7),
    "GD2": (5, 2), "GK1": (3, 0), "GR1": (10, 1), "GZ1": (6, 1), "IC2": (12, 5), "IF3": (13, 4),
    "IR2": (12, 2), "OB1": (5, 3), "OR1": (3, 1),
}

# Typical total cost of a stay at a level-2 hospital, yuan.
_BASE_COST = {
    "AB1": 320000, "AH1": 160000, "PS1": 90000, "PS2": 32000, "PV1": 6500, "ZC1": 90000,
    "ZZ1": 38000, "MB1": 18000, "MZ1": 6500, "NA1": 52000, "NC1": 21000, "NR1": 13000,
    "BB1": 72000, "BR1": 28000, "BR2": 13500, "BZ1": 8500, "FM1": 48000, "FR1": 21000,
    "FR3": 9000, "FU1": 14000, "FU2": 10000, "GB1": 62000, "GB2": 58000, "GD2": 12500,
    "GK1": 6000, "GR1": 14000, "GZ1": 7000, "IC2": 60000, "IF3": 45000, "IR2": 12000,
    "OB1": 10500, "OR1": 5500,
}
# Consumables share of the cost for surgical stays (stents and implants dominate).
_CONSUMABLES = {
    "FM1": 0.55, "IC2": 0.5, "IF3": 0.42, "ZC1": 0.4, "BB1": 0.3, "GB1": 0.3, "GB2": 0.32,
    "NA1": 0.28, "AB1": 0.25, "AH1": 0.2, "GD2": 0.22, "GK1": 0.25, "MB1": 0.3, "NC1": 0.22,
    "OB1": 0.15,
}

# Discharge department (出院科别): (surgical, medical) by MDC letter.
_DEPT_BY_LETTER = {
    "A": ("0401", "2800"), "P": ("0701", "0701"), "Z": ("0403", "0403"), "M": ("0404", "0404"),
    "N": ("0501", "0501"), "O": ("0502", "0502"), "B": ("0402", "0303"), "F": ("0304", "0304"),
    "G": ("0401", "0302"), "I": ("0403", "0403"),
}
_DEPT_BY_ENTRY = {"AH1": "2800", "GK1": "0302"}
_DEPT_OUT_OF_SCOPE = {"J": "0301", "A": "0301", "E": "0307", "N": "0306", "K": "0302"}

# Non-operating-room procedures that often accompany a stay, by MDC letter ("-": no MDC).
# Only codes outside SS_VALID and outside every ADRG procedure list are used, so they never
# change the group.
_NON_OR = {
    "A": ("96.0400", "38.9300", "99.1500", "99.0400"),
    "P": ("93.9000", "99.8300", "99.1500", "96.7100"),
    "Z": ("34.0400", "99.0400", "87.0300", "87.4100"),
    "M": ("57.9400",),
    "N": ("68.1600", "99.2500"),
    "B": ("87.0300", "88.9100", "88.4100", "99.1000", "93.3900"),
    "F": ("88.5700", "88.7200", "89.5200", "99.6200"),
    "G": ("45.1300", "45.2300", "44.4300", "99.0400", "96.0800x005", "99.2500"),
    "I": ("93.3900", "99.0400"),
    "O": ("73.5900", "73.6x00", "75.6900"),
    "-": ("87.4100", "93.9600", "89.5200"),
}
_NON_OR_RATE = {"OR1": 0.75, "PV1": 0.35}
_VENT_LONG, _VENT_SHORT = "96.7200", "96.7100"  # ICD-9-CM-3 invasive ventilation ≥96 h / <96 h

# Weight-specific newborn codes: only drawn when the birth weight fits.
_BIRTH_WEIGHT_CODES = {"P07.000": (0, 999), "P07.100": (1000, 2499)}

# Comorbidities that are neither CC nor MCC (hypertension, diabetes, …), for adults.
_COMORBIDITY_PREFIXES = ("I10", "E11.9", "E78", "I25.1", "I25.2", "K76", "M81", "E03", "K29.7",
                         "I67.2", "K21")

# Hospitals of one demo city: id, level (1/2/3), relative volume. Level is fixed per hospital.
_HOSPITALS = (
    ("H320500001", 3, 1.0), ("H320500002", 3, 0.9), ("H320500003", 3, 0.7),
    ("H320500004", 2, 0.6), ("H320500005", 2, 0.5), ("H320500006", 2, 0.4),
    ("H320500007", 1, 0.25), ("H320500008", 1, 0.2),
)
# How often each level takes a stay of a given complexity tier (3 = transplant-class).
# tier -> {hospital level: share}
_LEVEL_SHARE = {3: {3: 1.0, 2: 0.08, 1: 0.0}, 2: {3: 1.0, 2: 0.6, 1: 0.0},
                1: {3: 1.0, 2: 0.8, 1: 0.6}}
_LEVEL_COST = {1: 0.72, 2: 0.9, 3: 1.12}

_N_QUANTILES = 2048
_NORMAL_QUANTILES = tuple(NormalDist().inv_cdf((k + 0.5) / _N_QUANTILES)
                          for k in range(_N_QUANTILES))

_FIRST_DAY = 19358  # 2023-01-01, days since 1970-01-01
_LAST_DAY = 20088  # 2024-12-31
_FIRST_2024 = 19723  # 2024-01-01


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
class _Tables:
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


def _read_tables(folder: Path) -> _Tables:
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
    mdcs = [(r["mdc"], rules.get(r["rule_id"], []))
            for r in sorted(_rows(folder, "mdc.csv"), key=lambda r: int(r["seq"]))]
    entries: dict[str, list[tuple[dict[str, str], list[dict[str, str]]]]] = {}
    for r in sorted(_rows(folder, "adrg.csv"), key=lambda r: (r["mdc"], int(r["seq"]))):
        entries.setdefault(r["mdc"], []).append((r, rules.get(r["rule_id"], [])))
    steps: dict[str, list[list[dict[str, str]]]] = {}
    for r in sorted(_rows(folder, "adrg_drg.csv"), key=lambda r: (r["entry"], int(r["seq"]))):
        steps.setdefault(r["entry"], []).append(rules.get(r["rule_id"], []))
    return _Tables(
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
class _Scenario:
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
    age: tuple[int, int, int, int] = _AGE_DEFAULT
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


def _hint_codes(entry: str, tables: _Tables) -> list[str]:
    codes: list[str] = []
    for source, prefixes in _PDX_HINTS.get(entry, ()):
        pool = tables.dx_codes if source == "dx_dict" else tables.lists.get(source, [])
        codes += [c for c in pool if (not prefixes or c.startswith(prefixes)) and c not in codes]
    return codes


def _build_scenarios(tables: _Tables) -> list[_Scenario]:
    scenarios: list[_Scenario] = []
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
            sc = _Scenario(entry=entry, letter=letter, pdx=[], sex=sex, newborn=newborn,
                           regions=regions)
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
                        pools = [[c for c, g in tag_map.items() if g == tag]
                                 for tag in alternative.split("+")]
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
                sc.dept_values += [a["value"] for a in step
                                   if a["template"] == "CMP_STR" and a["field"] == "dept"
                                   and a["op"] == "=="]
            scenarios.append(sc)
    out_of_scope = [c for c in tables.dx_codes
                    if c.startswith(_OUT_OF_SCOPE_PREFIXES) and c not in mdc_pool_codes]
    for sc in scenarios:
        sc.volume = _VOLUME.get(sc.entry, 1.0)
    total = sum(sc.volume for sc in scenarios)
    if out_of_scope:
        scenarios.append(_Scenario(entry="-", letter="-", pdx=out_of_scope,
                                   volume=total * _OUT_OF_SCOPE_SHARE / (1 - _OUT_OF_SCOPE_SHARE)))
    in_lists = {c for codes in tables.lists.values() for c in codes}
    for sc in scenarios:
        _derive(sc, tables, in_lists)
    return scenarios


def _derive(sc: _Scenario, tables: _Tables, procedure_list_codes: set[str]) -> None:
    """Fill the demographic, stay and cost parameters of a scenario."""
    sc.age = _AGE_BY_ENTRY.get(sc.entry) or _AGE_BY_LETTER.get(sc.letter, _AGE_DEFAULT)
    sc.male_share = _MALE_SHARE.get(sc.letter, 0.5)
    if sc.sex is None and sc.letter == "O":
        sc.sex = "2"
    sc.los = _LOS.get(sc.entry, (9, 2) if sc.surgical else (7, 1))
    sc.cost = float(_BASE_COST.get(sc.entry, 30000 if sc.surgical else 9000))
    sc.consumables = _CONSUMABLES.get(sc.entry, 0.28) if sc.surgical else 0.08
    sc.tier = 3 if sc.cost >= 40000 else 2 if sc.cost >= 12000 or sc.surgical else 1
    surgical_dept, medical_dept = _DEPT_BY_LETTER.get(sc.letter, ("0401", "0300"))
    sc.dept = _DEPT_BY_ENTRY.get(sc.entry, surgical_dept if sc.surgical else medical_dept)
    sc.non_or = [c for c in _NON_OR.get(sc.letter, ())
                 if c in tables.px_codes and c not in tables.ss_valid
                 and c not in procedure_list_codes]
    sc.non_or_rate = _NON_OR_RATE.get(sc.entry, 0.3 if sc.surgical else 0.2)
    sc.population = _population(sc)
    # a principal procedure must be an operating-room one where an MDC is entered by it (MDCA)
    sc.proc_plan = [(frozenset(pool), [c for c in pool if c in tables.ss_valid] or pool, pool)
                    for pool in sc.proc_pools]


# ---------------------------------------------------------------------------------------------
# Secondary diagnoses
# ---------------------------------------------------------------------------------------------


def _population(sc: _Scenario) -> str:
    if sc.newborn:
        return "newborn"
    if sc.letter == "O":
        return "obstetric"
    if sc.letter in ("Z", "I", "A"):
        return "trauma"
    return "adult"


_OBSTETRIC_EXTRA = ("D6", "E86", "E87", "J18", "N39", "A41")
_FEMALE_ONLY = ("O", "M80.0", "M81.0", "C5", "D25", "D27", "N7", "N8", "N9")
_MALE_ONLY = ("N4", "C6")


def _fits(code: str, population: str) -> bool:
    if population == "newborn":
        return code.startswith(("P", "Q"))
    if population == "obstetric":
        return code.startswith(("O", *_OBSTETRIC_EXTRA))
    if code.startswith(("O", "P", "Q")):
        return False
    return population == "trauma" or not code.startswith("S")


# ---------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------


def generate_cases(
    n: int = 2000,
    *,
    seed: int = 20231,
    ruleset_dir: str | os.PathLike[str] | None = None,
    bad_fraction: float = 0.02,
) -> pa.Table:
    """``n`` plausible inpatient cases for the demo ruleset, as an Arrow table.

    Discharge dates spread over 2023 and 2024, so both demo versions are used. About
    ``bad_fraction`` of the rows are deliberately bad (see :data:`BAD_KINDS`). The same
    ``seed`` always gives the same table. ``ruleset_dir`` is a demo ruleset version folder
    (default: the 2024 demo); its code lists are what the cases are drawn from.
    """
    return _generate(n, seed=seed, ruleset_dir=ruleset_dir, bad_fraction=bad_fraction)[0]


def _generate(
    n: int,
    *,
    seed: int = 20231,
    ruleset_dir: str | os.PathLike[str] | None = None,
    bad_fraction: float = 0.02,
) -> tuple[pa.Table, list[str], list[str]]:
    """:func:`generate_cases`, plus for every row its bad-row kind ('' for a good row) and the
    MDC letter its principal diagnosis was drawn for ('-' outside the demo's MDCs)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= bad_fraction <= 1.0:
        raise ValueError(f"bad_fraction must be between 0 and 1, got {bad_fraction}")
    folder = Path(ruleset_dir) if ruleset_dir is not None else demo_ruleset_root() / "2024"
    tables = _read_tables(folder)
    scenarios = _build_scenarios(tables)
    if not scenarios:
        raise ValueError(f"{folder}: no ADRG entry of this ruleset can be drawn from")

    rng = random.Random(seed)
    rand = rng.random

    def pick(seq: Sequence[_T]) -> _T:  # faster than rng.choice for the short lists used here
        return seq[int(rand() * len(seq))]

    # Normal and log-normal draws come from tables of quantiles, indexed by one uniform draw:
    # a fraction of rng.gauss's cost, which matters at several draws per case.
    nq = _N_QUANTILES
    normal = _NORMAL_QUANTILES
    los_spread = [math.exp(0.45 * q) for q in normal]  # stays vary about ±45 % (1 sd)
    cost_spread = [math.exp(0.2 * q) for q in normal]

    cum_weights: list[float] = []
    acc = 0.0
    for sc in scenarios:
        acc += sc.volume
        cum_weights.append(acc)
    # scenarios a bad row needs: a weight-banded newborn, any newborn, an ordinary MDC
    newborn_any = [s for s in scenarios if s.newborn] or scenarios
    newborn_banded = [s for s in newborn_any if s.weight_range] or newborn_any
    ordinary = [s for s in scenarios if s.letter not in ("-", "A", "P", "Z") and not s.newborn]

    # Operating-room procedures of each ordinary MDC's surgical lists, to put into a case of
    # another MDC (pre-MDC procedures are left out: a transplant would win MDCA, not make a QY).
    or_by_letter: dict[str, list[str]] = {}
    for sc in ordinary:
        for pool in sc.proc_pools[:1]:
            for c in pool:
                if c in tables.ss_valid and c not in or_by_letter.setdefault(sc.letter, []):
                    or_by_letter[sc.letter].append(c)
    foreign_or: dict[str, list[str]] = {}
    for sc in ordinary:
        if sc.letter not in foreign_or:
            own = set(or_by_letter.get(sc.letter, ()))
            foreign_or[sc.letter] = list(dict.fromkeys(
                c for other, codes in or_by_letter.items() if other != sc.letter
                for c in codes if c not in own))

    # CC / MCC candidates per population, and plain comorbidities
    populations = ("newborn", "obstetric", "trauma", "adult")
    mcc_pool = {p: [c for c in tables.mcc if _fits(c, p)] for p in populations}
    cc_pool = {p: [c for c in tables.cc if _fits(c, p)] for p in populations}
    comorbid = [c for c in tables.dx_codes if c.startswith(_COMORBIDITY_PREFIXES)
                and c not in tables.mcc and c not in tables.cc]
    excl = tables.pdx_excl
    sev_table = {**tables.cc, **tables.mcc}

    hospitals_by_tier: dict[int, tuple[list[tuple[str, int]], list[float]]] = {}
    for tier in (1, 2, 3):
        chosen, cum, tot = [], [], 0.0
        for hid, level, volume in _HOSPITALS:
            share = _LEVEL_SHARE[tier][level] * volume
            if share > 0:
                tot += share
                chosen.append((hid, level))
                cum.append(tot)
        hospitals_by_tier[tier] = (chosen, cum)

    cols: dict[str, list] = {name: [] for name in DEMO_CASE_SCHEMA.names}
    c_case, c_hosp, c_level = cols["case_id"], cols["hospital_id"], cols["hospital_level"]
    c_ins, c_sex, c_age, c_days = (cols["insurance_type"], cols["sex"], cols["age"],
                                   cols["age_days"])
    c_bw, c_dept, c_los = cols["birth_weight"], cols["department"], cols["los"]
    cols["admission_weight"] = [""] * n  # not recorded in the demo
    c_leave, c_dx, c_px = cols["leaving_type"], cols["diagnoses"], cols["procedures"]
    c_adm, c_dis, c_vent = cols["admission_date"], cols["discharge_date"], cols["ventilation_hours"]
    c_readm, c_ref = cols["readmitted_31d"], cols["referral_from"]
    cents: dict[str, list[int]] = {k: [] for k in ("total_cost", "drug_cost", "consumables_cost",
                                                   "fund_paid", "self_pay", "own_pay")}
    m_total, m_drug, m_cons = cents["total_cost"], cents["drug_cost"], cents["consumables_cost"]
    m_fund, m_self, m_own = cents["fund_paid"], cents["self_pay"], cents["own_pay"]
    int_str = [str(k) for k in range(400)]  # str() of small ages and stays, looked up
    kinds: list[str] = []
    letters: list[str] = []
    day_span = _LAST_DAY - _FIRST_DAY + 1

    def add_secondary(dx: list[str], pool: list[str], pdx_table: str | None,
                      forbidden: frozenset[str], wrong_sex: tuple[str, ...]) -> None:
        # prefer a complication the principal diagnosis does not exclude (排除表), but keep a few
        # excluded ones: real coders record them and the grouper must ignore them
        strict = rand() < 0.85
        for _ in range(4):
            code = pick(pool)
            if code in dx or code in forbidden or code.startswith(wrong_sex):
                continue
            if strict and pdx_table is not None and sev_table.get(code) == pdx_table:
                continue
            dx.append(code)
            return

    for i in range(n):
        kind = ""
        if rand() < bad_fraction:
            kind = BAD_KINDS[int(rand() * len(BAD_KINDS))]
            if kind == "duplicate_case_id" and i == 0:
                kind = "missing_sex"
        if kind == "text_birth_weight":
            sc = pick(newborn_banded)
        elif kind == "infant_without_age_days":
            sc = pick(newborn_any)
        elif kind == "foreign_or_procedure" and ordinary:
            sc = pick(ordinary)
        else:
            sc = scenarios[bisect(cum_weights, rand() * acc)]

        # --- who --------------------------------------------------------------------------
        if sc.newborn:
            age, age_days = 0, (0 if rand() < 0.6 else 1 + int(rand() * 7) if rand() < 0.6
                                else 8 + int(rand() * 21))
            if sc.weight_range:
                lo, hi = sc.weight_range
                lo = max(lo, 550)
                weight = lo + int(rand() * (hi - lo))
            else:
                weight = int(min(4600, max(2500, 3250 + 420 * normal[int(rand() * nq)])))
        else:
            mu, sd, lo_age, hi_age = sc.age
            age = int(min(hi_age, max(lo_age, mu + sd * normal[int(rand() * nq)])))
            age_days, weight = None, None
        sex = sc.sex or ("1" if rand() < sc.male_share else "2")

        # --- diagnoses ----------------------------------------------------------------------
        pdx = pick(sc.pdx)
        if weight is not None:
            band = _BIRTH_WEIGHT_CODES.get(pdx)
            if band and not band[0] <= weight <= band[1]:
                pdx = pick([c for c in sc.pdx if c not in _BIRTH_WEIGHT_CODES] or sc.pdx)
        dx = [pdx]
        if sc.any_dx is not None and pdx not in sc.any_dx:
            fitting = [c for c in sc.any_dx if (band := _BIRTH_WEIGHT_CODES.get(c)) is None
                       or weight is None or band[0] <= weight <= band[1]]
            dx.append(pick(fitting or sc.any_dx))
        if sc.sdx_required:
            dx.append(pick(sc.sdx_required))
        if sc.regions:
            # multiple trauma: one or two injuries of other body regions
            own = sc.regions.get(pdx)
            others = [c for c, r in sc.regions.items() if r != own]
            for _ in range(1 if rand() < 0.7 else 2):
                code = pick(others)
                if code not in dx:
                    dx.append(code)
        population = sc.population
        pdx_table = excl.get(pdx)
        wrong_sex = _MALE_ONLY if sex == "2" else _FEMALE_ONLY
        r = rand()
        elderly = age >= 70
        severity = 2 if r < (0.22 if elderly else 0.15) else \
            1 if r < (0.55 if elderly else 0.42) else 0
        if severity == 2:
            add_secondary(dx, mcc_pool[population], pdx_table, sc.forbidden, wrong_sex)
            if rand() < 0.4:
                add_secondary(dx, cc_pool[population], pdx_table, sc.forbidden, wrong_sex)
        elif severity == 1:
            for _ in range(1 if rand() < 0.7 else 2):
                add_secondary(dx, cc_pool[population], pdx_table, sc.forbidden, wrong_sex)
        if age >= 35 and comorbid and population != "obstetric":
            for _ in range(0 if rand() < 0.45 else 1 if rand() < 0.6 else 2):
                code = pick(comorbid)
                if code not in dx and code not in sc.forbidden \
                        and not code.startswith(wrong_sex):
                    dx.append(code)

        # --- procedures ---------------------------------------------------------------------
        px: list[str] = []
        if sc.tag_alternatives:
            for pool in pick(sc.tag_alternatives):
                code = pick(pool)
                if code not in px:
                    px.append(code)
        for pool_set, principal_pool, pool in sc.proc_plan:
            if pool_set.isdisjoint(px):
                px.append(pick(pool if px else principal_pool))
        if sc.non_or and rand() < sc.non_or_rate:
            code = pick(sc.non_or)
            if code not in px:
                px.append(code)

        # --- the stay -----------------------------------------------------------------------
        med_los, min_los = sc.los
        los = round(med_los * los_spread[int(rand() * nq)] * (1.0 + 0.2 * severity))
        if los < min_los:
            los = min_los
        if min_los == 0 and rand() < 0.15:
            los = 0  # day case (日间): no stay-length step holds, the ADRG itself is returned
        p_death = 0.03 if severity == 2 else 0.004
        if sc.entry == "FR1":
            p_death *= 4  # acute myocardial infarction: several percent die in hospital
        if sc.newborn and sc.weight_range and sc.weight_range[1] <= 1500:
            p_death = 0.05
        r = rand()
        leaving = "5" if r < p_death else "2" if r < p_death + 0.02 else \
            "9" if r < p_death + 0.03 else "1"
        dept = sc.dept
        if sc.dept_values and rand() < 0.12:
            dept = pick(sc.dept_values)
        elif sc.letter == "-":
            dept = _DEPT_OUT_OF_SCOPE.get(pdx[0], "0300")
        vent = None
        if _VENT_LONG in px:
            vent = round(96 + rand() * 400, 1)
        elif _VENT_SHORT in px:
            vent = round(4 + rand() * 90, 1)

        tier_hosps, tier_cum = hospitals_by_tier[sc.tier]
        hid, level = tier_hosps[bisect(tier_cum, rand() * tier_cum[-1])]
        # 390 residents (居民; every child), 310 employees (职工)
        insurance = "390" if age < 18 or rand() < 0.45 else "310"

        discharge = _FIRST_DAY + int(rand() * day_span)
        case_id = f"D{2024 if discharge >= _FIRST_2024 else 2023}-{i + 1:06d}"

        # --- money, in cents so that the parts add up exactly --------------------------------
        los_factor = 0.55 + 0.45 * los / (med_los or 1)
        los_factor = 3.0 if los_factor > 3.0 else los_factor
        total_yuan = (sc.cost * _LEVEL_COST[level] * (1.0, 1.3, 1.75)[severity] * los_factor
                      * cost_spread[int(rand() * nq)])
        total = max(30000, int(total_yuan * 100))
        # shares of the cost: uniform around typical values is enough for a demo
        drug_share = (0.12 if sc.surgical else 0.26) + 0.16 * rand()
        cons_share = sc.consumables * (0.75 + 0.5 * rand())
        if drug_share + cons_share > 0.9:
            scale = 0.9 / (drug_share + cons_share)
            drug_share, cons_share = drug_share * scale, cons_share * scale
        own_share = 0.08 * rand()
        fund_share = (0.67 if insurance == "310" else 0.56) + 0.14 * rand()
        own = int(total * own_share)
        fund = min(int(total * fund_share), total - own)
        m_total.append(total)
        m_drug.append(int(total * drug_share))
        m_cons.append(int(total * cons_share))
        m_fund.append(fund)
        m_own.append(own)
        m_self.append(total - fund - own)

        # --- deliberate defects --------------------------------------------------------------
        sex_s, age_s = sex, int_str[age]
        days_s = "" if age_days is None else int_str[age_days]
        weight_s = "" if weight is None else str(weight)
        if not kind:
            pass
        elif kind == "unknown_diagnosis":
            dx[0] = dx[0][:5]  # e.g. K35.8: a category, not a code of the version
        elif kind == "empty_diagnoses":
            dx = []
        elif kind == "missing_sex":
            sex_s = ""
        elif kind == "text_age":
            age_s = "abc"
        elif kind == "infant_without_age_days":
            age_s, days_s = "0", ""
        elif kind == "text_birth_weight":
            weight_s = "3,2kg"
        elif kind == "duplicate_case_id":
            case_id = c_case[int(rand() * i)]
        elif kind == "foreign_or_procedure":
            pool = foreign_or.get(sc.letter) or []
            if pool:
                px = [pick(pool)] + [c for c in px if c not in tables.ss_valid]

        referral = None
        if i and rand() < 0.02:
            for _ in range(3):  # a referral comes from another hospital (转诊)
                j = int(rand() * i)
                if c_hosp[j] != hid:
                    referral = c_case[j]
                    break

        c_case.append(case_id)
        c_hosp.append(hid)
        c_level.append(level)
        c_ins.append(insurance)
        c_sex.append(sex_s)
        c_age.append(age_s)
        c_days.append(days_s)
        c_bw.append(weight_s)
        c_dept.append(dept)
        c_los.append(int_str[los] if los < 400 else str(los))
        c_leave.append(leaving)
        c_dx.append(dx)
        c_px.append(px)
        c_dis.append(discharge)
        c_adm.append(discharge - los)
        c_vent.append(vent)
        c_readm.append(rand() < 0.03)
        c_ref.append(referral)
        kinds.append(kind)
        letters.append(sc.letter)

    arrays = []
    for f in DEMO_CASE_SCHEMA:
        if f.name in cents:
            arrays.append(_decimal_from_cents(cents[f.name], f.type))
        elif f.type == pa.date32():
            arrays.append(pa.array(cols[f.name], pa.int32()).cast(pa.date32()))
        else:
            arrays.append(pa.array(cols[f.name], f.type))
    return pa.Table.from_arrays(arrays, schema=DEMO_CASE_SCHEMA), kinds, letters


def _decimal_from_cents(values: list[int], type_: pa.DataType) -> pa.Array:
    """A decimal128 array whose unscaled integers are ``values``: exact, and no Decimal objects.

    decimal128 is a little-endian two's-complement 128-bit integer; each value is written as
    its low 64 bits followed by the sign extension.
    """
    if sys.byteorder != "little":  # a rare platform: take the slow, obviously correct path
        from decimal import Decimal

        return pa.array([Decimal(v).scaleb(-type_.scale) for v in values], type_)
    words = array("q", bytes(16 * len(values)))
    words[0::2] = array("q", values)
    if values and min(values) < 0:
        words[1::2] = array("q", [-1 if v < 0 else 0 for v in values])
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(words)])
