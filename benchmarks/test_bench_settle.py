"""Settlement throughput under Suzhou 2023 on the oracle cases replicated to 1,000,000 rows.

Figures only: nothing here asserts a speed. Each benchmark runs a few rounds of 1 iteration
(``benchmark.pedantic``) and records ``cases_per_s`` (best round) and ``cases_per_s_mean`` in
``extra_info``; every result is checked, case by case, so a fast wrong answer fails.

- ``test_price_kernel[1|2]``: the settlement kernel ``drgkit.settlement._kernel.price_all`` on
  the 1M cases prepared by ``SettleRun.prepare`` (formula, price cell, cost), 1 / 2 threads;
  its payments must equal ``settle()``'s for every settled case.
- ``test_settle_arrow[1|2]``: :func:`drgkit.settlement.settle` of the 1M grouped cases in
  memory (policy ``suzhou-2023`` with its published table).
- ``test_group_settle_parquet``: :func:`drgkit.settlement.settle_file`, ungrouped cases
  Parquet -> Parquet: read, group, settle, write; 2 threads.
- ``test_settle_dataset_local``: :func:`drgkit.settlement._bulk.settle_dataset` over the same
  cases as 8 Parquet files, one process, 2 threads.
- ``test_duckdb_baseline[1|2]``: the same policy in DuckDB SQL over the grouped Parquet
  (``settle_data.DUCKDB_SQL``); skipped without duckdb (a benchmark-only dependency). Its
  payments must equal drgkit's to the cent for every case.

Data: ``settle_data.py`` (``$DRGKIT_SHARED``; ``DRGKIT_BENCH_ROWS`` changes the size).
"""

from __future__ import annotations

from collections import Counter

import bench_data as B  # benchmarks/ is on sys.path (conftest.py puts it there)
import numpy as np
import pyarrow.parquet as pq
import pytest
import settle_data as S

import drgkit
from drgkit import set_threads
from drgkit._resolve import resolve_policy
from drgkit.settlement import _kernel as K
from drgkit.settlement import settle, settle_file
from drgkit.settlement._bulk import LocalRunner, settle_dataset
from drgkit.settlement._settle import SettleRun

ROWS = B.bench_rows()
ROUNDS = 3
NONE = np.iinfo(np.int64).min


@pytest.fixture(scope="module")
def suzhou(shared):
    message = S.missing_message()
    if message:
        pytest.skip(message)
    return drgkit.load_ruleset(S.ruleset_dir())


@pytest.fixture(scope="module")
def cases(suzhou):
    """ROWS Suzhou cases with synthetic claim columns, in memory (text shape + money)."""
    return S.build(ROWS)


@pytest.fixture(scope="module")
def grouped(suzhou, cases):
    return S.nullable_ids(drgkit.group(cases, suzhou, keep=S.grouped_keep(cases))).combine_chunks()


@pytest.fixture(scope="module")
def files(tmp_path_factory, cases, grouped):
    """cases.parquet, grouped.parquet and a folder of 8 case files."""
    folder = tmp_path_factory.mktemp("bench-settle")
    # row groups of 131,072 rows: DuckDB parallelises over row groups
    pq.write_table(cases, folder / "cases.parquet", compression="zstd", row_group_size=1 << 17)
    pq.write_table(grouped, folder / "grouped.parquet", compression="zstd", row_group_size=1 << 17)
    parts = folder / "parts"
    parts.mkdir()
    step = -(-cases.num_rows // 8)
    for k in range(8):
        pq.write_table(cases.slice(k * step, step), parts / f"cases-{k:03d}.parquet")
    return folder


@pytest.fixture(scope="module")
def reference(grouped):
    """drgkit's settlement of the grouped cases (also warms every kernel)."""
    out = settle(grouped, S.POLICY, weights=S.weights_csv())
    return {
        "table": out,
        "payment": S.cents_of(out.column("payment")),
        "patient": S.cents_of(out.column("patient_share")),
    }


def _check(result, reference) -> str:
    pay, patient = S.cents_of(result.column("payment")), S.cents_of(result.column("patient_share"))
    assert result.num_rows == ROWS
    assert (
        result.column("case_id").to_pylist() == reference["table"].column("case_id").to_pylist()
    ), "rows are not the input rows"
    bad = int(((pay != reference["payment"]) | (patient != reference["patient"])).sum())
    assert bad == 0, f"{bad} cases differ from settle() of the grouped cases"
    hospitals: Counter = Counter()
    for h, p in zip(result.column("hospital_id").to_pylist(), pay.tolist(), strict=True):
        hospitals[h] += p if p != NONE else 0
    assert sum(hospitals.values()) == int(pay[pay != NONE].sum())
    return f"{ROWS:,} cases = settle(); {len(hospitals)} hospitals reconcile"


@pytest.mark.parametrize("threads", [1, 2])
def test_price_kernel(benchmark, threads, grouped, reference):
    policy = resolve_policy(S.POLICY, S.weights_csv())
    run = SettleRun(policy, None, grouped.schema, "grouped")
    prep = run.prepare(grouped.to_batches(max_chunksize=grouped.num_rows)[0])
    a = run.book.arrays()
    args = (
        prep.n,
        prep.formula,
        prep.cell,
        prep.cost,
        prep.item_b,
        a["std_g"],
        a["low_c"],
        a["high_c"],
        a["low_a"],
        a["low_b"],
        a["high_a"],
        a["high_b"],
    )
    previous = set_threads(threads)
    try:
        K.price_all(*args)
        benchmark.group = f"settlement kernel, {ROWS:,} cases"
        _cls, _std, money = benchmark.pedantic(K.price_all, args=args, rounds=7, iterations=1)
    finally:
        set_threads(previous)
    settled = reference["payment"] != NONE
    bad = int((money[settled] != reference["payment"][settled]).sum())
    assert bad == 0, f"{bad} kernel payments differ from settle()"
    S.record(
        benchmark,
        prep.n,
        7,
        threads=threads,
        check=f"{int(settled.sum()):,} settled cases = settle()",
    )


@pytest.mark.parametrize("threads", [1, 2])
def test_settle_arrow(benchmark, threads, grouped, reference):
    benchmark.group = f"settle in memory, {ROWS:,} cases"
    result = benchmark.pedantic(
        settle,
        args=(grouped, S.POLICY),
        kwargs={"weights": S.weights_csv(), "threads": threads},
        rounds=ROUNDS,
        iterations=1,
    )
    S.record(benchmark, result.num_rows, ROUNDS, threads=threads, check=_check(result, reference))


def test_group_settle_parquet(benchmark, files, reference, suzhou, tmp_path):
    out = tmp_path / "settled.parquet"
    benchmark.group = f"end to end, {ROWS:,} cases"
    summary = benchmark.pedantic(
        settle_file,
        args=(files / "cases.parquet", out, S.POLICY, str(S.ruleset_dir())),
        kwargs={"weights": S.weights_csv(), "threads": 2},
        rounds=ROUNDS,
        iterations=1,
    )
    S.record(
        benchmark, summary.rows, ROUNDS, threads=2, check=_check(pq.read_table(out), reference)
    )


def test_settle_dataset_local(benchmark, files, reference, suzhou, tmp_path):
    benchmark.group = f"end to end, {ROWS:,} cases"

    def run():
        return settle_dataset(
            files / "parts",
            tmp_path / "out",
            S.POLICY,
            str(S.ruleset_dir()),
            weights=S.weights_csv(),
            runner=LocalRunner(),
            threads=2,
            overwrite=True,
        )

    result = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    S.record(
        benchmark,
        result.rows,
        ROUNDS,
        threads=2,
        partitions=len(result.partitions),
        check=_check(result.table(), reference),
    )


@pytest.mark.parametrize("threads", [1, 2])
def test_duckdb_baseline(benchmark, threads, files, reference):
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    sql = S.duckdb_sql(files / "grouped.parquet")
    con.sql(sql).limit(10).to_arrow_table()
    benchmark.group = f"settle in memory, {ROWS:,} cases"
    duck = benchmark.pedantic(lambda: con.sql(sql).to_arrow_table(), rounds=ROUNDS, iterations=1)
    report = S.compare_with_duckdb(duck, reference["table"])
    assert report["ids_ok"] and report["compared"] == ROWS
    assert report["mismatches"] == 0, f"DuckDB differs from drgkit: {report['examples']}"
    S.record(
        benchmark,
        duck.num_rows,
        ROUNDS,
        threads=threads,
        duckdb=duckdb.__version__,
        check=f"{ROWS:,} cases: DuckDB = drgkit to the cent",
    )
