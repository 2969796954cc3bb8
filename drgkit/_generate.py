"""Synthetic inpatient cases at any scale: ``drgkit demo generate`` and the demo's cases.

One generator. A pool of clinical profiles (diagnoses, procedures, sex, age…) is sampled from
a ruleset's own code lists (:mod:`drgkit._demo_generate`), grouped once with drgkit to learn
each profile's DRG, and priced with a policy's published table, so that costs are scaled by
the RW of the group the case really lands in. Cases are then drawn from the pool with
vectorised numpy: hospital (hundreds, three levels, alliances), insurance scheme, discharge
date over 12 (or 24) months, length of stay, death, a log-normal cost around the hospital's
own efficiency with a few extreme cases, cost categories, fund and patient shares, 31-day
readmission, referrals between members of an alliance, and a doctor id.

Every random draw of case *r* is a hash of (seed, r, draw number), never a stream, so any
range of rows can be generated on its own: the output is the same whatever the chunk size,
file size or number of threads, and memory is bounded by one chunk per thread. Cases that
refer each other are pairs of rows (2k, 2k+1), so a pair never needs a row from far away.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ._demo_mix import (
    DEMO_CASE_SCHEMA,
    FIRST_DAY,
    HOSPITALS,
    LAST_DAY,
    LEVEL_COST,
    LEVEL_SHARE,
    LOS,
)

__all__ = [
    "CASE_SCHEMA",
    "GENERATOR_VERSION",
    "CaseGenerator",
    "Hospitals",
    "demo_hospitals",
    "national_hospitals",
    "refdata_root",
    "write_dataset",
]

#: bumped whenever the same options would give different cases
GENERATOR_VERSION = 3
#: the generated table (canonical drgkit column names, see ``schema.py``)
CASE_SCHEMA = DEMO_CASE_SCHEMA
#: rows per row group (and per generation chunk) of the files written
ROW_GROUP = 1 << 17
#: profiles in the pool at most (a national run draws each one many times)
MAX_PROFILES = 1 << 16

# draw numbers: each field of a case has its own, so adding a field never shifts another
(
    D_PROFILE,
    D_HOSPITAL,
    D_SCHEME,
    D_DAY,
    D_LOS1,
    D_LOS2,
    D_DAYCASE,
    D_LEAVE,
    D_COST1,
    D_COST2,
    D_OUTLIER,
    D_OUTLIER_SIZE,
    D_DRUG,
    D_CONS,
    D_OWN,
    D_FUND,
    D_READMIT,
    D_REFER,
    D_REFER_TO,
    D_DOCTOR,
) = range(20)
_SLOTS = np.uint64(32)

# Cost model: log-normal around the price of the case's group at its hospital's level,
# times the hospital's efficiency; the stay and the cost share one normal draw (long stays
# cost more).
COST_SIGMA_SHARED = 0.25
COST_SIGMA_OWN = 0.2
LOS_SIGMA = 0.45
HIGH_OUTLIER = 0.004  # share of cases costing 3–8 × the usual (complications, ICU)
LOW_OUTLIER = 0.03  # share leaving early at 15–35 % of the usual cost
DEATH_TRANSFER, OTHER_LEAVING = 0.02, 0.01
READMISSION = 0.03
REFERRAL = 0.05  # of the even rows at an alliance hospital: the case is referred on


# ---------------------------------------------------------------------------------------------
# Hospitals
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hospitals:
    """Hospitals by index: id, level, relative volume, cost efficiency (cost ÷ price of an
    average stay), readmission factor, alliance (id or ''), whether it leads it, doctors."""

    ids: tuple[str, ...]
    level: np.ndarray  # int8, 1..3
    volume: np.ndarray
    efficiency: np.ndarray
    quality: np.ndarray
    alliance: tuple[str, ...]
    lead: np.ndarray  # bool
    doctors: np.ndarray  # int64 per hospital

    def __len__(self) -> int:
        return len(self.ids)

    def alliance_lead(self) -> np.ndarray:
        """Index of each hospital's alliance lead (-1 outside any alliance)."""
        lead_of = {a: k for k, a in enumerate(self.alliance) if a and self.lead[k]}
        return np.array([lead_of.get(a, -1) if a else -1 for a in self.alliance], np.int64)

    def members(self) -> list[np.ndarray]:
        """Per hospital: the non-lead members of its alliance (empty outside one)."""
        groups: dict[str, list[int]] = {}
        for k, a in enumerate(self.alliance):
            if a and not self.lead[k]:
                groups.setdefault(a, []).append(k)
        return [np.array(groups.get(a, []) if a else [], np.int64) for a in self.alliance]

    def table(self) -> pa.Table:
        return pa.table(
            {
                "hospital_id": list(self.ids),
                "level": pa.array(self.level, pa.int8()),
                "volume": np.round(self.volume, 4),
                "efficiency": np.round(self.efficiency, 4),
                "readmission_factor": np.round(self.quality, 4),
                "alliance_id": list(self.alliance),
                "role": [
                    "lead" if x else ("member" if a else "")
                    for x, a in zip(self.lead, self.alliance, strict=True)
                ],
                "doctors": self.doctors,
            }
        )


#: the demo hospitals' efficiency: three of them cost less than they are paid, five more or
#: about as much, so that the demo shows both sides of break-even
_DEMO_EFFICIENCY = (0.94, 1.05, 0.99, 1.08, 0.93, 1.03, 1.1, 0.96)
_DEMO_ALLIANCES = {
    "H320500001": "east",
    "H320500004": "east",
    "H320500007": "east",
    "H320500002": "west",
    "H320500005": "west",
    "H320500008": "west",
}


def demo_hospitals() -> Hospitals:
    """The eight hospitals of the demo city, with the alliances of ``alliances/demo.toml``."""
    ids = tuple(h for h, _lv, _v in HOSPITALS)
    level = np.array([lv for _h, lv, _v in HOSPITALS], np.int8)
    return Hospitals(
        ids=ids,
        level=level,
        volume=np.array([v for _h, _lv, v in HOSPITALS]),
        efficiency=np.array(_DEMO_EFFICIENCY[: len(ids)]),
        quality=np.array([0.8, 1.0, 1.3, 0.9, 1.5, 1.0, 1.2, 0.7][: len(ids)]),
        alliance=tuple(_DEMO_ALLIANCES.get(h, "") for h in ids),
        lead=np.array([h in ("H320500001", "H320500002") for h in ids]),
        doctors=np.maximum(4, (level.astype(np.int64) * 6)),
    )


def national_hospitals(count: int = 300, *, seed: int = 20231, region: str = "32") -> Hospitals:
    """``count`` hospitals of one province: about 15 % level 3 (large), 35 % level 2, 50 %
    level 1 (small); volumes log-normal by level; cost efficiency log-normal around 1 (sd
    8 %); 60 % of the level-3 hospitals lead an alliance (医共体) of two to five level-1 or
    level-2 hospitals. Deterministic for ``seed``."""
    if count < 3:
        raise ValueError(f"hospitals must be at least 3 (one per level), got {count}")
    rng = np.random.Generator(np.random.PCG64([seed, 7]))
    n3 = max(1, round(count * 0.15))
    n2 = max(1, round(count * 0.35))
    level = np.array([3] * n3 + [2] * n2 + [1] * (count - n3 - n2), np.int8)
    base = np.array([0.0, 1.0, 4.0, 14.0])[level]
    volume = base * rng.lognormal(0.0, 0.5, count)
    efficiency = np.clip(rng.lognormal(0.0, 0.08, count), 0.8, 1.25)
    quality = np.clip(rng.lognormal(0.0, 0.3, count), 0.4, 2.5)
    width = max(5, len(str(count)))
    ids = tuple(f"H{region}{k + 1:0{width}d}" for k in range(count))
    alliance = [""] * count
    lead = np.zeros(count, bool)
    free = list(rng.permutation(np.arange(n3, count)))
    for k in range(n3):
        if rng.random() >= 0.6 or len(free) < 2:
            continue
        name = f"A{k + 1:03d}"
        alliance[k], lead[k] = name, True
        for _ in range(int(rng.integers(2, 6))):
            if not free:
                break
            alliance[int(free.pop())] = name
    doctors = np.maximum(3, np.round(volume * 6)).astype(np.int64)
    return Hospitals(ids, level, volume, efficiency, quality, tuple(alliance), lead, doctors)


# ---------------------------------------------------------------------------------------------
# Counter-based random draws
# ---------------------------------------------------------------------------------------------


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (uint64, wrapping)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class _Draws:
    """Uniform and normal draws of given rows: a pure function of (seed, row, draw)."""

    def __init__(self, seed: int, rows: np.ndarray) -> None:
        with np.errstate(over="ignore"):
            key = _mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], np.uint64) + np.uint64(0x9E37))[0]
        self.base = rows.astype(np.uint64) * _SLOTS + key

    def bits(self, draw: int) -> np.ndarray:
        with np.errstate(over="ignore"):
            return _mix(self.base + np.uint64(draw) * np.uint64(0x9E3779B97F4A7C15))

    def uniform(self, draw: int) -> np.ndarray:
        """In [0, 1)."""
        return (self.bits(draw) >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)

    def normal(self, d1: int, d2: int) -> np.ndarray:
        """Standard normal, Box–Muller of two draws."""
        u1 = 1.0 - self.uniform(d1)  # in (0, 1]: log is finite
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * self.uniform(d2))


# ---------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------


def refdata_root() -> Path | None:
    """The reference-data folder (holding ``rulesets/``): ``$DRGKIT_REFDATA``,
    ``$DRGKIT_SHARED``, or ``shared`` next to a source checkout; None when absent."""
    for env in ("DRGKIT_REFDATA", "DRGKIT_SHARED"):
        value = os.environ.get(env)
        if value and (Path(value) / "rulesets").is_dir():
            return Path(value)
    beside = Path(__file__).resolve().parents[1].parent / "shared"
    return beside if (beside / "rulesets").is_dir() else None


def _fixed_width_strings(prefix: np.ndarray, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix[i] + str(numbers[i]).zfill(width)`` as an Arrow string array, built from bytes
    (no Python string per row). ``prefix``: an ``S<k>`` array (one per row, equal lengths)."""
    n = len(numbers)
    k = prefix.dtype.itemsize
    buf = np.empty((n, k + width), np.uint8)
    buf[:, :k] = prefix.view(np.uint8).reshape(n, k)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    buf[:, k:] = (numbers[:, None] // powers) % 10 + 48
    offsets = np.arange(n + 1, dtype=np.int32) * (k + width)
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(buf.reshape(-1))]
    )


def _cents(values: np.ndarray, type_: pa.DataType) -> pa.Array:
    """A decimal128 array whose unscaled integers are ``values`` (exact, vectorised)."""
    words = np.empty((len(values), 2), np.int64)
    words[:, 0] = values
    words[:, 1] = np.where(values < 0, -1, 0)
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(words.reshape(-1))])


@dataclass(frozen=True, slots=True)
class _Pool:
    """The profile pool as arrays, with what the vectorised part needs per profile."""

    arrow: dict[str, pa.Array]  # the profile columns of the output, to take() from
    tier: np.ndarray  # 1..3: which hospital levels take such a stay
    price: np.ndarray  # (profiles, 3) yuan: usual cost at a level-1/2/3 hospital
    los_median: np.ndarray
    los_min: np.ndarray
    severity: np.ndarray
    child: np.ndarray
    p_death: np.ndarray
    surgical: np.ndarray
    consumables: np.ndarray
    duplicate: np.ndarray  # profile of a row that repeats the previous row's case id
    kind: tuple[str, ...]
    entry: tuple[str, ...]
    letter: tuple[str, ...]
    drg: tuple[str | None, ...]


class CaseGenerator:
    """Cases ``start .. stop-1`` of one seeded population, on demand (see the module doc).

    ``ruleset_dir``: the ruleset version folder the profiles are drawn from; ``ruleset``: what
    drgkit groups them with (a registered name, series, or that folder); ``policy`` and
    ``weights``: the payment table that prices each group (None: per-ADRG typical costs).
    ``first_day``/``days``: discharge dates (days since 1970-01-01). ``id_prefix``: case ids are
    the prefix and the 1-based row number; ``"{year}"`` in it becomes the discharge year.
    """

    def __init__(
        self,
        n: int,
        *,
        seed: int = 20231,
        ruleset_dir: str | os.PathLike[str],
        ruleset: Any = None,
        policy: Any = None,
        weights: Any = None,
        hospitals: Hospitals | None = None,
        bad_fraction: float = 0.0,
        first_day: int = FIRST_DAY,
        days: int = 365,
        id_prefix: str = "C",
        profiles: int | None = None,
    ) -> None:
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if not 0.0 <= bad_fraction <= 1.0:
            raise ValueError(f"bad_fraction must be between 0 and 1, got {bad_fraction}")
        if days < 1:
            raise ValueError(f"days must be >= 1, got {days}")
        self.n, self.seed = n, seed
        self.first_day, self.days = first_day, days
        self.hospitals = hospitals if hospitals is not None else national_hospitals(seed=seed)
        self.id_prefix = id_prefix
        self.id_width = max(6, len(str(n)))
        m = profiles if profiles is not None else min(max(n, 1), MAX_PROFILES)
        if policy is not None:
            from ._resolve import resolve_policy  # names resolve at this public entry point

            policy = resolve_policy(policy, weights)
        self.pool = self._pool(m, Path(ruleset_dir), ruleset, policy, bad_fraction)
        self._tier_cum = self._tier_tables()
        self._lead = self.hospitals.alliance_lead()
        self._members = self.hospitals.members()
        self._doctor_offset = np.concatenate([[0], np.cumsum(self.hospitals.doctors)[:-1]])
        self._doctor_names = pa.array(
            [
                f"{h}-{d + 1:03d}"
                for h, c in zip(self.hospitals.ids, self.hospitals.doctors, strict=True)
                for d in range(int(c))
            ],
            pa.string(),
        )
        self._hospital_ids = pa.array(self.hospitals.ids, pa.string())

    # ------------------------------------------------------------------ the pool
    def _pool(
        self,
        m: int,
        folder: Path,
        ruleset: Any,
        policy: Any,
        bad_fraction: float,
    ) -> _Pool:
        from ._demo_generate import sample_profiles
        from ._demo_scenarios import build_scenarios, read_demo_tables

        tables = read_demo_tables(folder)
        scenarios = build_scenarios(tables)
        if not scenarios:
            raise ValueError(f"{folder}: no ADRG entry of this ruleset can be drawn from")
        p = sample_profiles(m, tables, scenarios, seed=self.seed, bad_fraction=bad_fraction)
        scen = [scenarios[k] for k in p.scenario]
        arrow = {
            "sex": pa.array(p.sex, pa.string()),
            "age": pa.array(p.age, pa.string()),
            "age_days": pa.array(p.age_days, pa.string()),
            "birth_weight": pa.array(p.birth_weight, pa.string()),
            "department": pa.array(p.department, pa.string()),
            "diagnoses": pa.array(p.diagnoses, pa.list_(pa.string())),
            "procedures": pa.array(p.procedures, pa.list_(pa.string())),
            "ventilation_hours": pa.array(p.ventilation_hours, pa.float64()),
        }
        drg = _group_profiles(arrow, ruleset if ruleset is not None else str(folder), self)
        severity = np.array(p.severity, np.int64)
        # fallback price: the scenario's typical cost by level and severity
        fallback = np.array([sc.cost for sc in scen]) * np.array([1.0, 1.3, 1.75])[severity]
        price = fallback[:, None] * np.array([LEVEL_COST[1], LEVEL_COST[2], LEVEL_COST[3]])
        rw = np.full(m, np.nan)
        if policy is not None:
            table = _price_table(policy, {d for d in drg if d})
            for k, d in enumerate(drg):
                if d in table:
                    rw[k], price[k] = table[d][0], table[d][1:]
        has_rw = ~np.isnan(rw)
        tier = np.array([sc.tier for sc in scen], np.int64)
        surgical = np.array([sc.surgical for sc in scen])
        tier = np.where(has_rw, np.where(rw >= 3, 3, np.where((rw >= 1.3) | surgical, 2, 1)), tier)
        # length of stay: the demo's table, else from the weight (a heavier group stays longer)
        known = np.array([sc.entry in LOS for sc in scen])
        med = np.array([sc.los[0] for sc in scen], np.float64)
        low = np.array([sc.los[1] for sc in scen], np.int64)
        derived = np.clip(np.round(3 + 3.5 * np.nan_to_num(rw, nan=1.0)), 2, 30)
        med = np.where(known | ~has_rw, med, derived)
        low = np.where(known | ~has_rw, low, np.where(surgical, 2, 1))
        return _Pool(
            arrow=arrow,
            tier=tier,
            price=price,
            los_median=med,
            los_min=low,
            severity=severity,
            child=np.array(p.child),
            p_death=np.array(p.p_death),
            surgical=surgical,
            consumables=np.array([sc.consumables for sc in scen]),
            duplicate=np.array([k == "duplicate_case_id" for k in p.kind]),
            kind=tuple(p.kind),
            entry=tuple(sc.entry for sc in scen),
            letter=tuple(sc.letter for sc in scen),
            drg=tuple(drg),
        )

    def _tier_tables(self) -> list[np.ndarray]:
        """Per tier: cumulative share of each hospital in taking such a stay."""
        h = self.hospitals
        out = [np.zeros(0)]
        for tier in (1, 2, 3):
            share = np.array([LEVEL_SHARE[tier][int(lv)] for lv in h.level]) * h.volume
            if share.sum() <= 0:  # no hospital of a fitting level: the largest ones take it
                share = h.volume * (h.level == h.level.max())
            out.append(np.cumsum(share) / share.sum())
        return out

    # ------------------------------------------------------------------ rows
    def profile_of(self, rows: np.ndarray) -> np.ndarray:
        m = len(self.pool.kind)
        if self.n <= m:
            return rows.astype(np.int64) % m  # a small run uses each profile once, in order
        u = _Draws(self.seed, rows).uniform(D_PROFILE)
        return np.minimum((u * m).astype(np.int64), m - 1)

    def _frame(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Everything of rows (consecutive, starting at an even row) that does not depend on
        another row."""
        pool = self.pool
        d = _Draws(self.seed, rows)
        t = self.profile_of(rows)
        tier = pool.tier[t]
        h = np.empty(len(rows), np.int64)
        u = d.uniform(D_HOSPITAL)
        for k in (1, 2, 3):
            sel = tier == k
            cum = self._tier_cum[k]
            h[sel] = np.minimum(np.searchsorted(cum, u[sel], side="right"), len(cum) - 1)
        z = d.normal(D_LOS1, D_LOS2)
        sev = pool.severity[t]
        los = np.round(pool.los_median[t] * np.exp(LOS_SIGMA * z) * (1.0 + 0.2 * sev))
        los = np.maximum(los, pool.los_min[t]).astype(np.int64)
        los = np.where((pool.los_min[t] == 0) & (d.uniform(D_DAYCASE) < 0.15), 0, los)
        # a few extreme stays (complications, intensive care) and early leavers
        o = d.uniform(D_OUTLIER)
        high = o < HIGH_OUTLIER
        low = (o >= HIGH_OUTLIER) & (o < HIGH_OUTLIER + LOW_OUTLIER)
        los = np.where(high, los * 2 + 3, np.where(low, np.maximum(pool.los_min[t], los // 3), los))
        day = self.first_day + (d.uniform(D_DAY) * self.days).astype(np.int64)
        return {
            "t": t,
            "h": h,
            "z": z,
            "los": np.minimum(los, 365),
            "day": day,
            "u": d,
            "high": high,
            "low": low,
        }

    def table(self, start: int, stop: int) -> pa.Table:
        """Cases ``start .. stop-1`` as an Arrow table of :data:`CASE_SCHEMA`."""
        return self.generate(start, stop)[0]

    def generate(self, start: int, stop: int) -> tuple[pa.Table, np.ndarray]:
        """Cases ``start .. stop-1`` and each one's profile index (into ``pool``)."""
        if not 0 <= start <= stop <= self.n:
            raise ValueError(f"rows {start}..{stop} outside 0..{self.n}")
        pool, hosp = self.pool, self.hospitals
        # rows from two before start: the pair partner and the previous row of a duplicate id,
        # and one after stop: whether the last row refers its case on decides its leaving type
        lo = max(0, start - 2 - (start % 2))
        rows = np.arange(lo, min(self.n, stop + 1), dtype=np.int64)
        f = self._frame(rows)
        d: _Draws = f["u"]
        t, h, los, day = f["t"], f["h"], f["los"], f["day"]
        n = len(rows)

        # --- leaving type (离院方式) --------------------------------------------------------
        r = d.uniform(D_LEAVE)
        pd = pool.p_death[t]
        leaving = np.where(
            r < pd, 0, np.where(r < pd + DEATH_TRANSFER, 1, np.where(r < pd + 0.03, 2, 3))
        )

        # --- referrals: pairs (2k, 2k+1) between members of one alliance --------------------
        even = (rows % 2) == 0
        nxt = np.minimum(np.arange(n) + 1, n - 1)
        has_next = np.arange(n) + 1 < n
        lead = self._lead[h]
        refer_u = d.uniform(D_REFER)
        source = (
            even
            & has_next
            & (lead >= 0)
            & (refer_u < REFERRAL)
            & (leaving != 0)
            & (day + los[nxt] <= self.first_day + self.days - 1)
        )
        target = np.full(n, -1, np.int64)
        up = source & (lead != h)
        target[up] = lead[up]  # a member refers up to its lead (上转)
        down = np.flatnonzero(source & (lead == h))
        pick = d.uniform(D_REFER_TO)
        for i in down:  # the lead refers down to one of its members (下转), for recovery
            members = self._members[h[i]]
            if len(members):
                target[i] = members[int(pick[i] * len(members))]
        source &= target >= 0
        src = np.flatnonzero(source)
        referred = np.zeros(n, bool)
        referred[src + 1] = True
        h[src + 1] = target[src]
        t[src + 1] = t[src]  # the same condition, treated on
        leaving[src] = 1  # 医嘱转院
        admission = day - los
        admission[src + 1] = day[src]
        day[src + 1] = day[src] + los[src + 1]
        discharge = day

        # --- case ids -----------------------------------------------------------------------
        ids = self._ids(rows, discharge)
        dup = pool.duplicate[t] & (rows > 0)
        prev_dup = np.concatenate([[True], dup[:-1]])  # row lo is kept only when it is row 0
        dup &= ~prev_dup  # a duplicate repeats a row that keeps its own id
        position = np.arange(n)
        case_id = ids.take(pa.array(np.where(dup, position - 1, position)))
        # the referred row names the case it came from: the row before it (null elsewhere)
        ref_col = case_id.take(pa.array(np.maximum(position - 1, 0), mask=~referred))

        # --- money, in cents so that the parts add up exactly ------------------------------
        level = hosp.level[h].astype(np.int64)
        sev = pool.severity[t]
        noise = np.exp(
            COST_SIGMA_SHARED * f["z"]
            + COST_SIGMA_OWN * d.normal(D_COST1, D_COST2)
            - 0.5 * (COST_SIGMA_SHARED**2 + COST_SIGMA_OWN**2)
        )
        yuan = pool.price[t, level - 1] * hosp.efficiency[h] * noise
        size = d.uniform(D_OUTLIER_SIZE)
        high, low = f["high"], f["low"]
        yuan = np.where(high, yuan * (3.0 + 5.0 * size), yuan)
        yuan = np.where(low, yuan * (0.15 + 0.2 * size), yuan)
        total = np.maximum(30000, np.round(yuan * 100)).astype(np.int64)
        child = pool.child[t]
        employee = ~child & (d.uniform(D_SCHEME) >= 0.45)
        drug_share = np.where(pool.surgical[t], 0.12, 0.26) + 0.16 * d.uniform(D_DRUG)
        cons_share = pool.consumables[t] * (0.75 + 0.5 * d.uniform(D_CONS))
        scale = np.minimum(1.0, 0.9 / (drug_share + cons_share))
        drug = (total * (drug_share * scale)).astype(np.int64)
        cons = (total * (cons_share * scale)).astype(np.int64)
        own = (total * (0.08 * d.uniform(D_OWN))).astype(np.int64)
        fund_share = np.where(employee, 0.67, 0.56) + 0.14 * d.uniform(D_FUND)
        fund = np.minimum((total * fund_share).astype(np.int64), total - own)
        selfpay = total - fund - own

        # --- quality and people -------------------------------------------------------------
        readmit = d.uniform(D_READMIT) < READMISSION * hosp.quality[h] * np.where(sev == 2, 1.5, 1)
        doctor = self._doctor_offset[h] + (d.uniform(D_DOCTOR) * hosp.doctors[h]).astype(np.int64)

        keep = slice(start - lo, stop - lo)
        tk = pa.array(t[keep])
        money = DEMO_CASE_SCHEMA.field("total_cost").type
        columns = {
            "case_id": case_id.slice(start - lo, stop - start),
            "hospital_id": self._hospital_ids.take(pa.array(h[keep])),
            "hospital_level": pa.array(hosp.level[h[keep]], pa.int8()),
            "insurance_type": pa.array(np.where(employee[keep], "310", "390"), pa.string()),
            "admission_weight": pa.nulls(stop - start, pa.string()).fill_null(""),
            "los": _INT_STR.take(pa.array(los[keep])),
            "leaving_type": _LEAVING.take(pa.array(leaving[keep])),
            "admission_date": pa.array(admission[keep].astype(np.int32)).cast(pa.date32()),
            "discharge_date": pa.array(discharge[keep].astype(np.int32)).cast(pa.date32()),
            "readmitted_31d": pa.array(readmit[keep]),
            "total_cost": _cents(total[keep], money),
            "drug_cost": _cents(drug[keep], money),
            "consumables_cost": _cents(cons[keep], money),
            "fund_paid": _cents(fund[keep], money),
            "self_pay": _cents(selfpay[keep], money),
            "own_pay": _cents(own[keep], money),
            "referral_from": ref_col.slice(start - lo, stop - start),
            "doctor": self._doctor_names.take(pa.array(doctor[keep])),
        }
        for name, arr in pool.arrow.items():
            columns[name] = arr.take(tk)
        arrays = [columns[f.name] for f in CASE_SCHEMA]
        return pa.Table.from_arrays(arrays, schema=CASE_SCHEMA), t[keep]

    def _ids(self, rows: np.ndarray, discharge: np.ndarray) -> pa.Array:
        prefix = self.id_prefix
        if prefix == "":
            return pa.array([str(r + 1).zfill(self.id_width) for r in rows], pa.string())
        if "{year}" in prefix:
            years = discharge.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64)
            years = years + 1970
            head, tail = prefix.split("{year}", 1)
            texts = np.char.add(np.char.add(head, years.astype("U4")), tail).astype("S")
        else:
            texts = np.full(len(rows), prefix.encode(), dtype=f"S{len(prefix.encode())}")
        return _fixed_width_strings(texts, rows + 1, self.id_width)


_INT_STR = pa.array([str(k) for k in range(3 * 365 + 20)], pa.string())
_LEAVING = pa.array(["5", "2", "9", "1"], pa.string())  # died, ordered transfer, other, home


def _group_profiles(arrow: dict[str, pa.Array], ruleset: Any, gen: CaseGenerator) -> list:
    """Each profile's DRG code (None when the result has none), grouped by drgkit with the
    ruleset in force in the middle of the generated dates."""
    import warnings

    from .grouping import group

    m = len(arrow["sex"])
    mid = np.full(m, gen.first_day + gen.days // 2, np.int32)
    table = pa.table(
        {
            "case_id": pa.array([f"p{k}" for k in range(m)], pa.string()),
            **arrow,
            "los": pa.array(["7"] * m, pa.string()),
            "leaving_type": pa.array(["1"] * m, pa.string()),
            "discharge_date": pa.array(mid).cast(pa.date32()),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = group(table, ruleset)
    # an ungroupable profile keeps its code (0000), which a table may price (table_row)
    return [g or None for g in result.column("drg").to_pylist()]


def _price_table(pol: Any, drgs: set[str]) -> dict[str, tuple[float, ...]]:
    """DRG -> (RW, standard at level 1, 2, 3) in yuan under ``policy`` (first scheme, hospital
    coefficient 1); DRGs the table does not price are left out."""
    from .settlement._price import PriceBook

    book = PriceBook(pol)
    scheme = pol.scheme_names()[0]
    out: dict[str, tuple[float, ...]] = {}
    for code in sorted(drgs):
        row = pol.weights.rows.get(code)
        if row is None:
            continue
        stds, rw = [], None
        for level in ("1", "2", "3"):
            std, rw_used, _why = book.standard(row, level, scheme, Decimal(1))
            if std is None:
                break
            stds.append(float(std))
            rw = rw_used
        if len(stds) == 3 and rw is not None:
            out[code] = (float(rw), *stds)
    return out


# ---------------------------------------------------------------------------------------------
# Writing a dataset
# ---------------------------------------------------------------------------------------------

PART_NAME = "part-{:05d}.parquet"
#: columns worth a Parquet dictionary: few distinct values. Dictionary-encoding the unique
#: ones (case ids, amounts) made writing three times slower and the files larger.
DICTIONARY_COLUMNS = [
    "hospital_id",
    "insurance_type",
    "sex",
    "age",
    "age_days",
    "birth_weight",
    "admission_weight",
    "department",
    "los",
    "leaving_type",
    "doctor",
    "diagnoses.list.element",
    "procedures.list.element",
]
MANIFEST = "_generated.json"
HOSPITALS_FILE = "_hospitals.csv"


def write_dataset(
    gen: CaseGenerator,
    out_dir: str | os.PathLike[str],
    *,
    rows_per_file: int = 1_000_000,
    threads: int = 2,
    options: dict[str, Any] | None = None,
    progress: Any = None,
) -> list[Path]:
    """Write all ``gen.n`` cases into ``out_dir/part-NNNNN.parquet`` (``rows_per_file`` each,
    row groups of :data:`ROW_GROUP`), plus ``_hospitals.csv`` and ``_generated.json`` (the
    options, to tell whether a folder already holds this dataset). Files are written by
    ``threads`` threads, one chunk of rows in memory per thread; ``progress(rows)`` is called
    after each chunk."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if rows_per_file < 1:
        raise ValueError(f"rows_per_file must be >= 1, got {rows_per_file}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # written last: present means complete
    starts = list(range(0, gen.n, rows_per_file)) or [0]
    for old in out.glob("part-*.parquet"):
        old.unlink()

    def one(k: int) -> Path:
        path = out / PART_NAME.format(k)
        tmp = path.with_name("." + path.name + ".tmp")
        begin, end = starts[k], min(gen.n, starts[k] + rows_per_file)
        with pq.ParquetWriter(
            tmp, CASE_SCHEMA, compression="zstd", use_dictionary=DICTIONARY_COLUMNS
        ) as writer:
            if begin == end:
                writer.write_table(CASE_SCHEMA.empty_table())
            for a in range(begin, end, ROW_GROUP):
                b = min(end, a + ROW_GROUP)
                writer.write_table(gen.table(a, b), row_group_size=ROW_GROUP)
                if progress is not None:
                    progress(b - a)
        os.replace(tmp, path)
        return path

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        paths = list(pool.map(one, range(len(starts))))
    pacsv.write_csv(gen.hospitals.table(), out / HOSPITALS_FILE)
    (out / MANIFEST).write_text(
        json.dumps({"generator": GENERATOR_VERSION, "rows": gen.n, **(options or {})}, indent=1)
        + "\n",
        encoding="utf-8",
    )
    return paths


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The options a completed :func:`write_dataset` recorded in ``out_dir`` (None if none)."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def default_target() -> tuple[Path, str, Any, Any]:
    """(ruleset folder, ruleset name, policy, weights) a national run uses by default:
    chs_drg_11 priced with the Suzhou 2023 table when the reference data is found, else the
    shipped demo ruleset and policy."""
    root = refdata_root()
    if root is not None and (root / "rulesets" / "chs_drg_11" / "rules.csv").is_file():
        weights = root / "payment" / "suzhou-2023.csv"
        folder = root / "rulesets" / "chs_drg_11"
        return folder, str(folder), "suzhou-2023", weights if weights.is_file() else None
    from ._demo_scenarios import demo_ruleset_root

    return demo_ruleset_root() / "2024", "demo", "demo", None


def resolve_target(ruleset: str | None) -> tuple[Path, str, Any, Any]:
    """Like :func:`default_target` for a named ruleset (``demo``, a name under the reference
    data's ``rulesets/``, or a ruleset version folder)."""
    if ruleset is None:
        return default_target()
    if ruleset == "demo":
        from ._demo_scenarios import demo_ruleset_root

        return demo_ruleset_root() / "2024", "demo", "demo", None
    path = Path(ruleset)
    if not (path / "rules.csv").is_file():
        root = refdata_root()
        candidate = root / "rulesets" / ruleset if root is not None else None
        if candidate is None or not (candidate / "rules.csv").is_file():
            raise FileNotFoundError(
                f"ruleset {ruleset!r}: neither a ruleset folder nor found under the reference "
                "data (set DRGKIT_REFDATA to the folder holding rulesets/)"
            )
        path = candidate
    # priced with the Suzhou 2023 table when there is one: groups it does not list (other
    # regions' local subdivisions) keep the typical costs of their ADRG
    policy, weights = None, None
    root = refdata_root()
    if root is not None and (root / "payment" / "suzhou-2023.csv").is_file():
        policy, weights = "suzhou-2023", root / "payment" / "suzhou-2023.csv"
    return path, str(path), policy, weights


def national(
    n: int,
    *,
    seed: int = 20231,
    ruleset: str | None = None,
    hospitals: int = 300,
    bad_fraction: float = 0.005,
    year: int = 2023,
) -> CaseGenerator:
    """The generator behind ``drgkit demo generate``: ``n`` cases discharged in ``year`` at
    ``hospitals`` hospitals, drawn from ``ruleset`` (default: chs_drg_11 when the reference
    data is found, else the demo ruleset)."""
    import datetime as dt

    folder, spec, policy, weights = resolve_target(ruleset)
    first = (dt.date(year, 1, 1) - dt.date(1970, 1, 1)).days
    days = (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days
    return CaseGenerator(
        n,
        seed=seed,
        ruleset_dir=folder,
        ruleset=spec,
        policy=policy,
        weights=weights,
        hospitals=national_hospitals(hospitals, seed=seed),
        bad_fraction=bad_fraction,
        first_day=first,
        days=days,
        id_prefix="C",
    )


def demo_generator(
    n: int,
    *,
    seed: int = 20231,
    ruleset_dir: str | os.PathLike[str] | None = None,
    bad_fraction: float = 0.02,
) -> CaseGenerator:
    """The demo's cases: the demo ruleset, the eight demo hospitals, 2023–2024, priced with
    the demo policy."""
    from ._demo_scenarios import demo_ruleset_root

    folder = Path(ruleset_dir) if ruleset_dir is not None else demo_ruleset_root() / "2024"
    return CaseGenerator(
        n,
        seed=seed,
        ruleset_dir=folder,
        ruleset="demo" if ruleset_dir is None else str(folder),
        policy="demo",
        hospitals=demo_hospitals(),
        bad_fraction=bad_fraction,
        first_day=FIRST_DAY,
        days=LAST_DAY - FIRST_DAY + 1,
        id_prefix="D{year}-",
    )
