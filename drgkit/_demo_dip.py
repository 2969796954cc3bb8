"""Plausible DIP history and this year's cases for ``drgkit demo`` (nothing here is real data).

A small region: six hospitals of three levels (三级, 二级, 一级), a case mix of common
diagnoses each with its usual treatments (conservative, a procedure, a related second
procedure), a few rare diagnoses (too few cases for a core packet: they fall to comprehensive
packets) and one diagnosis seen only this year (the blank packet). Costs are log-normal around
a per-treatment mean, higher at higher levels, 3 % a year dearer, and each hospital has its
own efficiency, so some hospitals land above and some below break-even. Everything comes from
one :class:`random.Random` seeded by the caller: a seed always gives the same tables.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from decimal import Decimal
from typing import Any

import attrs
import pyarrow as pa

__all__ = ["HISTORY_YEARS", "HOSPITALS", "PROCEDURE_ATTRIBUTES", "DipDemoData", "generate"]

#: (hospital id, level, efficiency: cost factor against the region's usual cost)
HOSPITALS: tuple[tuple[str, int, float], ...] = (
    ("H3A", 3, 0.92),
    ("H3B", 3, 1.12),
    ("H2A", 2, 0.95),
    ("H2B", 2, 1.08),
    ("H1A", 1, 0.90),
    ("H1B", 1, 1.10),
)
#: share of a level's cases: tertiary hospitals see most cases
_HOSPITAL_WEIGHTS = (30, 24, 16, 14, 9, 7)
_LEVEL_COST = {1: 0.75, 2: 0.9, 3: 1.15}
HISTORY_YEARS = (2021, 2022, 2023)
CURRENT_YEAR = 2024

#: principal diagnosis, weight, treatments: (principal procedure or "", share, mean cost in
#: yuan, related second procedure or "", share of the treatment's cases that have it)
_MIX: tuple[tuple[str, int, tuple[tuple[str, int, int, str, int], ...]], ...] = (
    (
        "K35.800",
        10,
        (("", 2, 5200, "", 0), ("47.0100", 6, 11800, "54.5100", 15), ("47.0900", 2, 9600, "", 0)),
    ),
    ("J18.900", 14, (("", 8, 6900, "", 0), ("33.2200", 2, 9400, "", 0))),
    ("I63.900", 10, (("", 7, 12500, "", 0), ("99.1000", 2, 19800, "", 0))),
    ("I21.900", 5, (("", 2, 14800, "", 0), ("36.0700", 5, 46000, "37.2200", 40))),
    ("K80.100", 6, (("", 2, 5600, "", 0), ("51.2300", 6, 15200, "", 0))),
    ("E11.900", 8, (("", 1, 6100, "", 0),)),
    ("I10.x00", 7, (("", 1, 4400, "", 0),)),
    (
        "S72.000",
        4,
        (("", 1, 9800, "", 0), ("81.5100", 3, 47000, "", 0), ("79.3500", 2, 31000, "", 0)),
    ),
    ("N18.500", 5, (("", 1, 7200, "", 0), ("39.9500", 3, 9300, "", 0))),
    (
        "C34.900",
        5,
        (("", 1, 9100, "", 0), ("99.2500", 3, 8200, "", 0), ("32.4100", 2, 62000, "", 0)),
    ),
    ("H25.900", 6, (("13.4100", 1, 6300, "", 0),)),
    ("O80.000", 5, (("73.5900", 1, 4100, "", 0),)),
)
#: rare in every year: each code has too few cases for a core packet, but a category has
#: enough for a comprehensive packet (category × treatment attribute); L03.1 is too rare even
#: for that and goes to the blank packet
_RARE: tuple[tuple[tuple[str, ...], str, int, int], ...] = (
    (tuple(f"K56.{k}00" for k in range(8)), "", 13000, 50),
    (tuple(f"M17.{k}00" for k in (0, 1, 2, 3, 4, 5, 9)), "81.5400", 42000, 42),
    (("L03.100",), "86.0400", 5200, 8),
)
#: seen only this year: no packet of the built catalogue knows it
_NEW_THIS_YEAR = ("T78.400", 3800)
#: secondary diagnoses a case may carry
_SECONDARY = ("I10.x00", "E11.900", "J44.900", "N18.500", "I48.x00")

#: the procedure attribute dictionary the catalogue is built with (DIP.md §2)
PROCEDURE_ATTRIBUTES: dict[str, str] = {
    "47.0100": "surgery",
    "47.0900": "surgery",
    "54.5100": "surgery",
    "33.2200": "diagnostic",
    "99.1000": "therapeutic",
    "36.0700": "surgery",
    "37.2200": "diagnostic",
    "51.2300": "surgery",
    "81.5100": "surgery",
    "79.3500": "surgery",
    "39.9500": "therapeutic",
    "99.2500": "therapeutic",
    "32.4100": "surgery",
    "13.4100": "surgery",
    "73.5900": "therapeutic",
    "45.6200": "surgery",
    "86.0400": "therapeutic",
    "81.5400": "surgery",
}


@attrs.frozen(slots=True)
class DipDemoData:
    """The generated history (three past years) and this year's cases."""

    history: pa.Table
    current: pa.Table


def _case(
    rng: random.Random,
    case_id: str,
    year: int,
    hospital: tuple[str, int, float],
    dx: str,
    px: list[str],
    mean: float,
) -> dict:
    hid, level, efficiency = hospital
    secondary = [d for d in _SECONDARY if d != dx and rng.random() < 0.12]
    cost = mean * _LEVEL_COST[level] * efficiency * 1.03 ** (year - HISTORY_YEARS[0])
    cost *= math.exp(rng.gauss(0.0, 0.3)) * (1 + 0.15 * len(secondary))
    start = dt.date(year, 1, 1)
    discharge = start + dt.timedelta(days=rng.randrange(365 if year % 4 else 366))
    los = max(1, round(cost / 1200 * rng.uniform(0.6, 1.4)))
    age = rng.randint(18, 92) if not dx.startswith("O") else rng.randint(20, 40)
    return {
        "case_id": case_id,
        "hospital_id": hid,
        "hospital_level": level,
        "insurance_type": "310" if rng.random() < 0.6 else "390",
        "sex": "2" if dx.startswith("O") else rng.choice("12"),
        "age": age,
        "los": los,
        "leaving_type": "5" if rng.random() < 0.01 else "1",
        "diagnoses": [dx, *secondary],
        "procedures": px,
        "discharge_date": discharge,
        "total_cost": Decimal(max(100, round(cost * 100))) / 100,
    }


def _draw(rng: random.Random, year: int, n: int, prefix: str, new: bool) -> list[dict]:
    rows = []
    dx_weights = [w for _dx, w, _t in _MIX]
    for k in range(n):
        hospital = rng.choices(HOSPITALS, _HOSPITAL_WEIGHTS)[0]
        case_id = f"{prefix}{k + 1:06d}"
        roll = rng.random()
        if roll < 0.025:  # a rare diagnosis
            codes, principal, mean, _w = rng.choices(_RARE, [r[3] for r in _RARE])[0]
            dx = rng.choice(codes)
            px = [principal] if principal else []
        elif new and roll < 0.035:
            dx, mean = _NEW_THIS_YEAR
            px = []
        else:
            dx, _w, treatments = rng.choices(_MIX, dx_weights)[0]
            principal, _s, mean, related, share = rng.choices(
                treatments, [t[1] for t in treatments]
            )[0]
            px = [principal] if principal else []
            if related and rng.randrange(100) < share:
                px.append(related)
                mean *= 1.35
        rows.append(_case(rng, case_id, year, hospital, dx, px, mean))
    return rows


def _table(rows: list[dict]) -> pa.Table:
    return pa.table(
        {
            "case_id": pa.array([r["case_id"] for r in rows], pa.string()),
            "hospital_id": pa.array([r["hospital_id"] for r in rows], pa.string()),
            "hospital_level": pa.array([r["hospital_level"] for r in rows], pa.int8()),
            "insurance_type": pa.array([r["insurance_type"] for r in rows], pa.string()),
            "sex": pa.array([r["sex"] for r in rows], pa.string()),
            "age": pa.array([r["age"] for r in rows], pa.int16()),
            "los": pa.array([r["los"] for r in rows], pa.int16()),
            "leaving_type": pa.array([r["leaving_type"] for r in rows], pa.string()),
            "diagnoses": pa.array([r["diagnoses"] for r in rows], pa.list_(pa.string())),
            "procedures": pa.array([r["procedures"] for r in rows], pa.list_(pa.string())),
            "discharge_date": pa.array([r["discharge_date"] for r in rows], pa.date32()),
            "total_cost": pa.array([r["total_cost"] for r in rows], pa.decimal128(12, 2)),
        }
    )


def generate(history_per_year: int = 1500, current: int = 1500, *, seed: int = 2024) -> DipDemoData:
    """Three years of history (``history_per_year`` cases each) and ``current`` cases of this
    year, from ``seed``."""
    rng = random.Random(seed)
    rows = []
    for year in HISTORY_YEARS:
        rows += _draw(rng, year, history_per_year, f"D{year}-", new=False)
    now = _draw(rng, CURRENT_YEAR, current, f"D{CURRENT_YEAR}-", new=True)
    return DipDemoData(_table(rows), _table(now))


#: the demo's DIP fund as a share of what the fund would pay by item this year: a fund a little
#: short of cost, as most pooling regions run theirs
FUND_SHARE = Decimal("0.97")


def demo_funds(cases: pa.Table, policy: Any) -> dict[str, Decimal]:
    """The demo's DIP fund per pool of ``policy``: Σ this year's cost of the pool's cases ×
    its fund payment ratio × :data:`FUND_SHARE`, to the cent (half up: the demo chooses its
    budget, no case amount is rounded here). Keys are pools (schemes) as ``--budget``
    takes them."""
    from decimal import ROUND_HALF_UP

    cost: dict[str, Decimal] = {}
    for kind, value in zip(
        cases.column("insurance_type").to_pylist(),
        cases.column("total_cost").to_pylist(),
        strict=True,
    ):
        scheme = policy.scheme_of(kind)
        pool = scheme if scheme in policy.dip.fund else "all"
        cost[pool] = cost.get(pool, Decimal(0)) + Decimal(value)
    out = {}
    for pool, total in sorted(cost.items()):
        ratio = policy.fund_ratio.get(pool, policy.fund_ratio.get("all"))
        out[pool] = (total * ratio * FUND_SHARE).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return out
