"""Synthetic settled history for the DIP catalogue-builder benchmark.

:func:`history` returns an Arrow table of ``n`` cases over three years (2021–2023) with the
columns :func:`drgkit.catalogue._build.build_catalogue` reads; it is a pure function of its
arguments and the seed (numpy ``default_rng``), vectorised (no Python loop over cases).

Shape: ``n_dx`` principal diagnoses (4-character ICD-10-like codes ``A00.0``…, Zipf-like
frequencies so a few thousand combinations are large and a long tail is small), each with up
to 6 principal procedures from ``n_proc`` codes (40 % of cases have none); 30 % of procedure
cases carry 1–2 secondary procedures, drawn from the diagnosis's 3 usual "related" codes 80 %
of the time (so related sets repeat) and from all codes otherwise. Cost: log-normal around a
per-(diagnosis, procedure) mean, ×1.6 for one related code in three, ×1.05 per year, ×0.8 /
1.0 / 1.3 by hospital level; whole cents. Levels 1/2/3 in 35/40/25 %; LOS 1–40 days; age
0–95 (age_days for 3 % infants); 1.5 % deaths; ICU days for 5 %; CCI 0–7. Diagnoses and
procedures are list<string> columns; the procedure attribute dictionary of :func:`attributes`
marks half the procedure codes as surgery, a quarter therapeutic, the rest diagnostic.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["attributes", "history"]


def _codes(n: int, letters: str, fmt) -> list[str]:
    return [fmt(letters[i % len(letters)], i // len(letters)) for i in range(n)]


def _dx_codes(n: int) -> list[str]:
    # A00.0, B00.0, … then A00.1 …: 26 letters × 100 categories × 10 sub-categories
    return [f"{chr(65 + i % 26)}{(i // 26) % 100:02d}.{i // 2600}" for i in range(n)]


def _proc_codes(n: int) -> list[str]:
    return [f"{10 + i % 89:02d}.{(i // 89) % 100:02d}00" for i in range(n)]


def attributes(n_proc: int = 800) -> dict[str, str]:
    """Procedure → attribute dictionary for the generated codes."""
    kinds = ("surgery", "surgery", "therapeutic", "diagnostic")
    return {c: kinds[i % 4] for i, c in enumerate(_proc_codes(n_proc))}


def _list_column(offsets: np.ndarray, ids: np.ndarray, codes: list[str]) -> pa.Array:
    values = pa.array(codes, pa.string()).take(pa.array(ids))
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values)


def history(n: int = 10_000_000, seed: int = 0, n_dx: int = 6000, n_proc: int = 800) -> pa.Table:
    rng = np.random.default_rng(seed)
    dx_codes = _dx_codes(n_dx)
    proc_codes = _proc_codes(n_proc)
    # Zipf-like diagnosis frequencies
    p_dx = 1.0 / np.arange(1, n_dx + 1) ** 0.9
    p_dx /= p_dx.sum()
    dx = rng.choice(n_dx, size=n, p=p_dx)
    # per diagnosis: 6 candidate principal procedures and 3 usual related codes
    cand = rng.integers(0, n_proc, size=(n_dx, 6))
    related = rng.integers(0, n_proc, size=(n_dx, 3))
    has_proc = rng.random(n) >= 0.4
    slot = np.minimum(rng.geometric(0.45, size=n) - 1, 5)
    principal = np.where(has_proc, cand[dx, slot], -1)
    n_sec = np.where(has_proc & (rng.random(n) < 0.3), rng.integers(1, 3, size=n), 0)
    # secondary codes: usual related ones mostly, anything otherwise
    total_sec = int(n_sec.sum())
    owner = np.repeat(np.arange(n), n_sec)
    usual = rng.random(total_sec) < 0.8
    sec = np.where(
        usual,
        related[dx[owner], rng.integers(0, 3, size=total_sec)],
        rng.integers(0, n_proc, size=total_sec),
    )
    lengths = has_proc.astype(np.int64) + n_sec
    p_off = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=p_off[1:])
    p_ids = np.empty(int(p_off[-1]), np.int64)
    p_ids[p_off[:-1][has_proc]] = principal[has_proc]
    # secondary slots: every position that is not a case's first
    is_first = np.zeros(len(p_ids), bool)
    is_first[p_off[:-1][has_proc]] = True
    p_ids[~is_first] = sec  # owner order = row order, so positions line up
    # costs
    base = np.exp(rng.normal(8.5, 0.8, size=n_dx))[dx] * 100  # cents
    proc_factor = np.where(has_proc, 1.0 + (principal % 7) * 0.35, 1.0)
    heavy = np.zeros(n, bool)
    np.logical_or.at(heavy, owner, (sec % 3) == 0)
    year = rng.choice(np.array([2021, 2022, 2023], np.int16), size=n, p=[0.3, 0.33, 0.37])
    level = rng.choice(np.array([1, 2, 3], np.int8), size=n, p=[0.35, 0.4, 0.25])
    factor = (
        proc_factor
        * np.where(heavy, 1.6, 1.0)
        * 1.05 ** (year - 2021)
        * np.array([0.0, 0.8, 1.0, 1.3])[level]
    )
    cost = np.maximum(np.rint(base * factor * rng.lognormal(0.0, 0.45, size=n)), 100)
    # second diagnosis: anything
    d_off = np.arange(0, 2 * n + 1, 2, dtype=np.int64)
    d_ids = np.empty(2 * n, np.int64)
    d_ids[0::2] = dx
    d_ids[1::2] = rng.integers(0, n_dx, size=n)
    age = rng.integers(0, 96, size=n)
    infant = rng.random(n) < 0.03
    age = np.where(infant, 0, age)
    age_days = np.where(infant, rng.integers(0, 365, size=n), -1)
    icu = np.where(rng.random(n) < 0.05, rng.integers(1, 40, size=n), 0)
    from drgkit._money import cents_array

    return pa.table(
        {
            "case_id": pa.array(np.char.add("C", np.char.zfill(np.arange(n).astype(str), 9))),
            "hospital_id": pa.array(np.char.add("H", (rng.integers(0, 400, size=n)).astype(str))),
            "hospital_level": pa.array(level),
            "year": pa.array(year),
            "diagnoses": _list_column(d_off, d_ids, dx_codes),
            "procedures": _list_column(p_off, p_ids, proc_codes),
            "total_cost": cents_array(cost.astype(np.int64)),
            "los": pa.array(rng.integers(1, 41, size=n).astype(np.int16)),
            "age": pa.array(age.astype(np.int16)),
            "age_days": pa.array(age_days.astype(np.int16), mask=age_days < 0),
            "leaving_type": pa.array(np.where(rng.random(n) < 0.015, "5", "1")),
            "icu_days": pa.array(icu.astype(np.int16)),
            "cci": pa.array(np.minimum(rng.poisson(1.2, size=n), 7).astype(np.int8)),
        }
    )
