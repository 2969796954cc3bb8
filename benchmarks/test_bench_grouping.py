"""Grouping throughput of CHS-DRG 1.1 on the oracle cases replicated to 1,000,000 rows.

Figures only: nothing here asserts a speed. Each big benchmark runs 3 rounds of 1 iteration
(``benchmark.pedantic``) and records ``cases_per_s`` (best round) and ``cases_per_s_mean`` in
``extra_info``; the results of the last round are also checked against the oracle's expected
groups, so a fast wrong answer does not pass unnoticed.

- ``test_group_arrow[text-1]`` … ``[typed-2]``: :func:`drgkit.group` on an in-memory Arrow
  table, all-text as read from CSV (``text``) or with integer columns and pre-split code lists
  (``typed``, see ``bench_data.py``), with 1 and 2 threads.
- ``test_group_file_parquet``: :func:`drgkit.group_file` Parquet -> Parquet, 2 threads, end to
  end (read, group, write).
- ``test_group_kernel_only``: the grouping kernel alone (``_kernel.group_all``, its serial
  build: one core) on kernel arrays prepared once from the all-text table; the figure behind
  the README's "kernel alone" cases/s. Its results are checked against :func:`drgkit.group`.
- ``test_ruleset_load_warm``: loading the compiled ruleset from the warm cache.
"""

from __future__ import annotations

import time

import bench_data as B  # benchmarks/ is on sys.path (conftest.py puts it there)
import pyarrow.parquet as pq
import pytest

import drgkit

ROWS = B.bench_rows()

ROUNDS = 3


def _record(benchmark, rows: int, **info) -> None:
    stats = benchmark.stats.stats
    benchmark.extra_info.update(info)
    benchmark.extra_info["rows"] = rows
    benchmark.extra_info["rounds"] = ROUNDS
    benchmark.extra_info["cases_per_s"] = rows / stats.min
    benchmark.extra_info["cases_per_s_mean"] = rows / stats.mean
    benchmark.extra_info["seconds_best"] = stats.min
    benchmark.extra_info["drgkit_source_mtime"] = time.strftime(
        "%Y-%m-%d %H:%M:%S", time.localtime(B.source_stamp()[0])
    )


def _check(result, input_ids, expected, n_base: int) -> str:
    statuses, drgs = expected
    report = B.compare(result, input_ids, statuses, drgs, n_base)
    assert report["ids_ok"] is not False, "result rows are not the input rows, in order"
    assert report["mismatches"] == 0, f"results differ from the oracle: {report['examples']}"
    return f"{report['compared']:,} rows = oracle"


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", ["text", "typed"])
def test_group_arrow(benchmark, shape, threads, ruleset, big_table, warm, expected, base_text):
    table = big_table(shape)
    benchmark.group = f"arrow in memory, {ROWS:,} cases"
    result = benchmark.pedantic(
        drgkit.group,
        args=(table, ruleset),
        kwargs={"threads": threads},
        rounds=ROUNDS,
        iterations=1,
    )
    check = _check(result, table.column(B.ID_COLUMN), expected, base_text.num_rows)
    _record(benchmark, table.num_rows, shape=shape, threads=threads, check=check)


def test_group_file_parquet(benchmark, ruleset, parquet_cases, warm, expected, base_text, tmp_path):
    out = tmp_path / "groups.parquet"
    benchmark.group = f"end to end, {ROWS:,} cases"
    summary = benchmark.pedantic(
        drgkit.group_file,
        args=(parquet_cases, out, ruleset),
        kwargs={"threads": 2},
        rounds=ROUNDS,
        iterations=1,
    )
    result = pq.read_table(out)
    check = _check(result, None, expected, base_text.num_rows)
    _record(benchmark, summary.rows, threads=2, check=check, by_status=dict(summary.by_status))


def test_ruleset_load_warm(benchmark, ruleset_dir, ruleset):
    """A fresh Ruleset object each round, so the compiled tables come from the disk cache."""
    benchmark.group = "ruleset"

    def load():
        return drgkit.Ruleset.from_path(ruleset_dir).load()

    loaded = benchmark.pedantic(load, rounds=10, iterations=1, warmup_rounds=1)
    assert loaded.compiled.content_hash == ruleset.compiled.content_hash
    benchmark.extra_info["seconds"] = benchmark.stats.stats.min


def kernel_inputs(ruleset, table):
    """Kernel arrays of ``table`` (one batch), built by the grouper's own preparation."""
    from drgkit.grouping import GroupRun
    from drgkit.grouping import _kernel as K

    batch = table.combine_chunks().to_batches(max_chunksize=table.num_rows)[0]
    run = GroupRun(ruleset, table.schema, "<bench>", check_duplicates=False)
    f = run.front(batch)
    cases, _parsed = run.prepare(0, None, f.cols, f.n, f.pre, f.checks, f.field, f.detail)
    return cases, K.ruleset_arrays(ruleset.compiled)


def test_group_kernel_only(benchmark, ruleset, big_table, warm, base_text):
    from drgkit.grouping import _kernel as K
    from drgkit.grouping._group import _result_codes

    table = big_table("text")
    cases, arrays = kernel_inputs(ruleset, table)
    benchmark.group = f"grouping kernel alone, 1 core, {ROWS:,} cases"
    outcome, res, _err, _mdc = benchmark.pedantic(
        K.group_all.serial, args=(cases, arrays), rounds=ROUNDS, iterations=1, warmup_rounds=1
    )
    # the kernel's groups are those of the whole grouper, on the base cases
    n = base_text.num_rows
    whole = drgkit.group(table.slice(0, n), ruleset)
    drgs = _result_codes(ruleset.compiled).drg.to_pylist()
    got = [
        drgs[r] if o == K.OUT_GROUPED else None for o, r in zip(outcome[:n], res[:n], strict=True)
    ]
    want = [
        d if s in ("ok", "ambiguous") else None
        for s, d in zip(
            whole.column("status").to_pylist(), whole.column("drg").to_pylist(), strict=True
        )
    ]
    assert got == want
    _record(benchmark, table.num_rows, threads=1, check=f"{n:,} rows = drgkit.group")
