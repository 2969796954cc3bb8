"""The demo case generator proper: samples, prices and damages rows (see
:mod:`drgkit._demo`)."""

from __future__ import annotations

import math
import os
import random
import sys
from array import array
from bisect import bisect
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from ._demo_mix import (
    BAD_KINDS,
    BIRTH_WEIGHT_CODES,
    COMORBIDITY_PREFIXES,
    DEMO_CASE_SCHEMA,
    DEPT_OUT_OF_SCOPE,
    FIRST_2024,
    FIRST_DAY,
    HOSPITALS,
    LAST_DAY,
    LEVEL_COST,
    LEVEL_SHARE,
    N_QUANTILES,
    NORMAL_QUANTILES,
    VENT_LONG,
    VENT_SHORT,
    T,
)
from ._demo_scenarios import (
    FEMALE_ONLY,
    MALE_ONLY,
    build_scenarios,
    demo_ruleset_root,
    fits,
    read_demo_tables,
)

# ---------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------


def generate(
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
    tables = read_demo_tables(folder)
    scenarios = build_scenarios(tables)
    if not scenarios:
        raise ValueError(f"{folder}: no ADRG entry of this ruleset can be drawn from")

    rng = random.Random(seed)
    rand = rng.random

    def pick(seq: Sequence[T]) -> T:  # faster than rng.choice for the short lists used here
        return seq[int(rand() * len(seq))]

    # Normal and log-normal draws come from tables of quantiles, indexed by one uniform draw:
    # a fraction of rng.gauss's cost, which matters at several draws per case.
    nq = N_QUANTILES
    normal = NORMAL_QUANTILES
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

    hospitals_by_tier: dict[int, tuple[list[tuple[str, int]], list[float]]] = {}
    for tier in (1, 2, 3):
        chosen, cum, tot = [], [], 0.0
        for hid, level, volume in HOSPITALS:
            share = LEVEL_SHARE[tier][level] * volume
            if share > 0:
                tot += share
                chosen.append((hid, level))
                cum.append(tot)
        hospitals_by_tier[tier] = (chosen, cum)

    cols: dict[str, list] = {name: [] for name in DEMO_CASE_SCHEMA.names}
    c_case, c_hosp, c_level = cols["case_id"], cols["hospital_id"], cols["hospital_level"]
    c_ins, c_sex, c_age, c_days = (
        cols["insurance_type"],
        cols["sex"],
        cols["age"],
        cols["age_days"],
    )
    c_bw, c_dept, c_los = cols["birth_weight"], cols["department"], cols["los"]
    cols["admission_weight"] = [""] * n  # not recorded in the demo
    c_leave, c_dx, c_px = cols["leaving_type"], cols["diagnoses"], cols["procedures"]
    c_adm, c_dis, c_vent = cols["admission_date"], cols["discharge_date"], cols["ventilation_hours"]
    c_readm, c_ref = cols["readmitted_31d"], cols["referral_from"]
    cents: dict[str, list[int]] = {
        k: []
        for k in ("total_cost", "drug_cost", "consumables_cost", "fund_paid", "self_pay", "own_pay")
    }
    m_total, m_drug, m_cons = cents["total_cost"], cents["drug_cost"], cents["consumables_cost"]
    m_fund, m_self, m_own = cents["fund_paid"], cents["self_pay"], cents["own_pay"]
    int_str = [str(k) for k in range(400)]  # str() of small ages and stays, looked up
    kinds: list[str] = []
    letters: list[str] = []
    day_span = LAST_DAY - FIRST_DAY + 1

    def add_secondary(
        dx: list[str],
        pool: list[str],
        pdx_table: str | None,
        forbidden: frozenset[str],
        wrong_sex: tuple[str, ...],
    ) -> None:
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
        leaving = (
            "5"
            if r < p_death
            else "2"
            if r < p_death + 0.02
            else "9"
            if r < p_death + 0.03
            else "1"
        )
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

        tier_hosps, tier_cum = hospitals_by_tier[sc.tier]
        hid, level = tier_hosps[bisect(tier_cum, rand() * tier_cum[-1])]
        # 390 residents (居民; every child), 310 employees (职工)
        insurance = "390" if age < 18 or rand() < 0.45 else "310"

        discharge = FIRST_DAY + int(rand() * day_span)
        case_id = f"D{2024 if discharge >= FIRST_2024 else 2023}-{i + 1:06d}"

        # --- money, in cents so that the parts add up exactly --------------------------------
        los_factor = 0.55 + 0.45 * los / (med_los or 1)
        los_factor = 3.0 if los_factor > 3.0 else los_factor
        total_yuan = (
            sc.cost
            * LEVEL_COST[level]
            * (1.0, 1.3, 1.75)[severity]
            * los_factor
            * cost_spread[int(rand() * nq)]
        )
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
