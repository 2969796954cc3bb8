"""Clinical profiles for the case generator: who the patient is and what was coded.

A *profile* is everything about a case that decides its group: sex, age, birth weight,
department, diagnoses, procedures, ventilation, plus the scenario (ADRG entry) it was drawn
for, its severity and, for deliberately bad rows, the kind of defect. Profiles are sampled one
by one in Python from a ruleset's own code lists (see :mod:`drgkit._demo_scenarios`); the
streaming generator (:mod:`drgkit._generate`) then draws millions of cases from a pool of them
with vectorised numpy (hospital, dates, stay, costs, referrals…).
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from ._demo_mix import (
    BAD_KINDS,
    BIRTH_WEIGHT_CODES,
    COMORBIDITY_PREFIXES,
    DEPT_OUT_OF_SCOPE,
    N_QUANTILES,
    NORMAL_QUANTILES,
    VENT_LONG,
    VENT_SHORT,
    T,
)
from ._demo_scenarios import FEMALE_ONLY, MALE_ONLY, Scenario, Tables, fits


@dataclass(slots=True)
class Profiles:
    """A pool of clinical profiles, one list entry per profile (column-wise)."""

    sex: list[str] = field(default_factory=list)
    age: list[str] = field(default_factory=list)
    age_days: list[str] = field(default_factory=list)
    birth_weight: list[str] = field(default_factory=list)
    department: list[str] = field(default_factory=list)
    diagnoses: list[list[str]] = field(default_factory=list)
    procedures: list[list[str]] = field(default_factory=list)
    ventilation_hours: list[float | None] = field(default_factory=list)
    severity: list[int] = field(default_factory=list)  # 0 none, 1 CC, 2 MCC
    child: list[bool] = field(default_factory=list)  # under 18: resident scheme (居民)
    p_death: list[float] = field(default_factory=list)
    scenario: list[int] = field(default_factory=list)  # index into the scenario list
    kind: list[str] = field(default_factory=list)  # bad-row kind, '' for a good profile

    def __len__(self) -> int:
        return len(self.sex)


def sample_profiles(
    m: int,
    tables: Tables,
    scenarios: Sequence[Scenario],
    *,
    seed: int,
    bad_fraction: float,
) -> Profiles:
    """``m`` profiles drawn from the scenarios' case mix (``scenario.volume``); about
    ``bad_fraction`` of them carry one of :data:`BAD_KINDS`."""
    rng = random.Random(seed)
    rand = rng.random

    def pick(seq: Sequence[T]) -> T:  # faster than rng.choice for the short lists used here
        return seq[int(rand() * len(seq))]

    # Normal draws come from a table of quantiles, indexed by one uniform draw: a fraction of
    # rng.gauss's cost, which matters at several draws per profile.
    nq = N_QUANTILES
    normal = NORMAL_QUANTILES

    cum_weights: list[float] = []
    acc = 0.0
    for sc in scenarios:
        acc += sc.volume
        cum_weights.append(acc)
    index_of = {id(sc): k for k, sc in enumerate(scenarios)}
    # scenarios a bad row needs: a weight-banded newborn, any newborn, an ordinary MDC
    newborn_any = [s for s in scenarios if s.newborn] or list(scenarios)
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
            foreign_or[sc.letter] = list(
                dict.fromkeys(
                    c
                    for other, codes in or_by_letter.items()
                    if other != sc.letter
                    for c in codes
                    if c not in own
                )
            )

    # CC / MCC candidates per population, and plain comorbidities
    populations = ("newborn", "obstetric", "trauma", "adult")
    mcc_pool = {p: [c for c in tables.mcc if fits(c, p)] for p in populations}
    cc_pool = {p: [c for c in tables.cc if fits(c, p)] for p in populations}
    comorbid = [
        c
        for c in tables.dx_codes
        if c.startswith(COMORBIDITY_PREFIXES) and c not in tables.mcc and c not in tables.cc
    ]
    excl = tables.pdx_excl
    sev_table = {**tables.cc, **tables.mcc}
    int_str = [str(k) for k in range(400)]
    out = Profiles()

    def add_secondary(
        dx: list[str],
        pool: list[str],
        pdx_table: str | None,
        forbidden: frozenset[str],
        wrong_sex: tuple[str, ...],
    ) -> None:
        # prefer a complication the principal diagnosis does not exclude (排除表), but keep a few
        # excluded ones: real coders record them and the grouper must ignore them
        if not pool:
            return
        strict = rand() < 0.85
        for _ in range(4):
            code = pick(pool)
            if code in dx or code in forbidden or code.startswith(wrong_sex):
                continue
            if strict and pdx_table is not None and sev_table.get(code) == pdx_table:
                continue
            dx.append(code)
            return

    for _ in range(m):
        kind = ""
        if rand() < bad_fraction:
            kind = BAD_KINDS[int(rand() * len(BAD_KINDS))]
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
            age, age_days = (
                0,
                (
                    0
                    if rand() < 0.6
                    else 1 + int(rand() * 7)
                    if rand() < 0.6
                    else 8 + int(rand() * 21)
                ),
            )
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
            band = BIRTH_WEIGHT_CODES.get(pdx)
            if band and not band[0] <= weight <= band[1]:
                pdx = pick([c for c in sc.pdx if c not in BIRTH_WEIGHT_CODES] or sc.pdx)
        dx = [pdx]
        if sc.any_dx is not None and pdx not in sc.any_dx:
            fitting = [
                c
                for c in sc.any_dx
                if (band := BIRTH_WEIGHT_CODES.get(c)) is None
                or weight is None
                or band[0] <= weight <= band[1]
            ]
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
        wrong_sex = MALE_ONLY if sex == "2" else FEMALE_ONLY
        r = rand()
        elderly = age >= 70
        severity = (
            2 if r < (0.22 if elderly else 0.15) else 1 if r < (0.55 if elderly else 0.42) else 0
        )
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
                if code not in dx and code not in sc.forbidden and not code.startswith(wrong_sex):
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

        # --- outcome and department ---------------------------------------------------------
        p_death = 0.03 if severity == 2 else 0.004
        if sc.entry in ("FR1", "FR2"):
            p_death *= 4  # acute myocardial infarction: several percent die in hospital
        if sc.newborn and sc.weight_range and sc.weight_range[1] <= 1500:
            p_death = 0.05
        dept = sc.dept
        if sc.dept_values and rand() < 0.12:
            dept = pick(sc.dept_values)
        elif sc.letter == "-":
            dept = DEPT_OUT_OF_SCOPE.get(pdx[0], "0300")
        vent = None
        if VENT_LONG in px:
            vent = round(96 + rand() * 400, 1)
        elif VENT_SHORT in px:
            vent = round(4 + rand() * 90, 1)

        # --- deliberate defects --------------------------------------------------------------
        sex_s, age_s = sex, int_str[age]
        days_s = "" if age_days is None else int_str[age_days]
        weight_s = "" if weight is None else str(weight)
        if kind == "unknown_diagnosis":
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
        elif kind == "foreign_or_procedure":
            pool = foreign_or.get(sc.letter) or []
            if pool:
                px = [pick(pool)] + [c for c in px if c not in tables.ss_valid]
        # duplicate_case_id is a property of the row, not of the profile: see _generate

        out.sex.append(sex_s)
        out.age.append(age_s)
        out.age_days.append(days_s)
        out.birth_weight.append(weight_s)
        out.department.append(dept)
        out.diagnoses.append(dx)
        out.procedures.append(px)
        out.ventilation_hours.append(vent)
        out.severity.append(severity)
        out.child.append(age < 18)
        out.p_death.append(p_death)
        out.scenario.append(index_of[id(sc)])
        out.kind.append(kind)
    return out
