"""DIP grouping throughput with the demo catalogue, from an in-memory Arrow table.

Figures only: nothing here asserts a speed. Cases are generated from the demo catalogue's own
codes (full 医保版-style codes, so every distinct code goes through the per-code lookup once),
``$DRGKIT_BENCH_ROWS`` rows (default 1,000,000), as text columns (as read from CSV) and as
list columns. The last round's results are checked against the naive reference
(``tests/dip_naive.py``) on a sample, so a fast wrong answer does not pass unnoticed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import bench_data as B
import numpy as np
import pyarrow as pa
import pytest

import drgkit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from dip_naive import NaiveCatalogue  # noqa: E402

DEMO = HERE.parent / "catalogues" / "demo" / "2024"
ROWS = B.bench_rows()
ROUNDS = 3

DX = [
    "K35.800x001",
    "K35.300",
    "K35.900",
    "K80.100",
    "K80.100x002",
    "K80.200",
    "K80.500",
    "I21.000",
    "I21.000x001",
    "I21.400",
    "I63.900",
    "I63.500",
    "J18.900",
    "J18.000",
    "J44.100",
    "E11.900",
    "I10.x00x002",
    "N20.000",
    "O34.200",
    "S72.000",
    "C34.100",
    "C50.900",
    "H25.900",
    "K40.900",
    "M17.900",
    "I48.x00",
    "Z51.100",
    "T22.300",
    "A15.000",
    "I25.100",
    "K92.200",
    "J45.900",
    "D36.900",
    "A01.000",
    "Z00.000",
]
SDX = ["E11.900", "I10.x00x002", "C34.100", "T31.400", "U84.300", "J44.100", "N18.500"]
PX = [
    "47.0100x001",
    "47.0900",
    "51.2300",
    "51.2200",
    "51.4100",
    "51.1000",
    "36.0700x001",
    "00.2400",
    "88.5600",
    "99.1000",
    "98.5100",
    "55.0400",
    "74.1000",
    "81.5100",
    "81.5200",
    "32.4100",
    "85.4300",
    "40.2300",
    "13.4100",
    "13.7100",
    "17.1100",
    "81.5400",
    "37.3400",
    "57.9400",
    "99.2800",
    "50.5900",
    "39.6500",
    "89.5200",
]


def _cases(rows: int, seed: int = 7) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    ndx = rng.integers(1, 4, rows)
    npx = rng.integers(0, 4, rows)
    pdx = rng.integers(0, len(DX), rows)
    dxs, pxs = [], []
    sdx = rng.integers(0, len(SDX), (rows, 3))
    px = rng.integers(0, len(PX), (rows, 3))
    for i in range(rows):
        dxs.append([DX[pdx[i]], *(SDX[j] for j in sdx[i, : ndx[i] - 1])])
        pxs.append([PX[j] for j in px[i, : npx[i]]])
    return dxs, pxs


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    base = min(ROWS, 100_000)
    dxs, pxs = _cases(base)
    reps = -(-ROWS // base)
    ids = pa.array([str(i) for i in range(base * reps)][:ROWS])
    typed = pa.table(
        {
            "diagnoses": pa.array(dxs, pa.list_(pa.string())),
            "procedures": pa.array(pxs, pa.list_(pa.string())),
        }
    )
    text = pa.table(
        {
            "diagnoses": pa.array(["|".join(d) for d in dxs]),
            "procedures": pa.array(["|".join(p) for p in pxs]),
        }
    )
    out = {}
    for name, t in (("typed", typed), ("text", text)):
        big = pa.concat_tables([t] * reps).slice(0, ROWS)
        out[name] = big.add_column(0, "case_id", ids).combine_chunks()
    return out


@pytest.fixture(scope="module")
def catalogue():
    cat = drgkit.Catalogue.from_path(DEMO).load()
    drgkit.group_dip(pa.table({"diagnoses": ["K35.800"]}), cat)  # compile the kernels
    return cat


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", ["text", "typed"])
def test_group_dip_arrow(benchmark, shape, threads, tables, catalogue) -> None:
    table = tables[shape]
    benchmark.group = f"DIP grouping, arrow in memory, {ROWS:,} cases"
    result = benchmark.pedantic(
        drgkit.group_dip,
        args=(table, catalogue),
        kwargs={"threads": threads},
        rounds=ROUNDS,
        iterations=1,
    )
    assert result.num_rows == table.num_rows
    naive = NaiveCatalogue.load(DEMO)
    sample = np.random.default_rng(1).integers(0, table.num_rows, 2000)
    packets = result.column("packet")
    reasons = result.column("reason")
    for i in sample.tolist():
        dx = table.column("diagnoses")[i].as_py()
        px = table.column("procedures")[i].as_py()
        if isinstance(dx, str):
            dx, px = dx.split("|"), (px.split("|") if px else [])
        reason, packet, _tier = naive.group({"diagnoses": dx, "procedures": px})
        assert (reasons[i].as_py() or "", packets[i].as_py()) == (reason, packet), (dx, px)
    stats = benchmark.stats.stats
    benchmark.extra_info.update(
        {
            "rows": table.num_rows,
            "rounds": ROUNDS,
            "shape": shape,
            "threads": threads,
            "cases_per_s": table.num_rows / stats.min,
            "cases_per_s_mean": table.num_rows / stats.mean,
            "seconds_best": stats.min,
            "check": "2,000 sampled rows = naive",
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )
