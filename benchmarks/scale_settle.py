#!/usr/bin/env python
"""How fast drgkit settles Suzhou 2023 DRG cases at scale, and how that compares with SQL.

    python benchmarks/scale_settle.py [--rows 1000000] [--repeat N] [--scenarios NAME,...]
                                      [--partitions 8] [--json FILE] [--keep]

The 10,000 Suzhou 2023 oracle cases are replicated to ``--rows`` with synthetic claim columns
(hospital, level, scheme, total cost, self-pay, own-pay; exact cents; see ``settle_data.py``),
grouped with ``<shared>/rulesets/suzhou_2023`` and settled under policy ``suzhou-2023`` with
``<shared>/payment/suzhou-2023.csv``. Every scenario runs in a fresh subprocess of this script
(``--scenario NAME``) that prints one JSON line; peak memory is that subprocess's own
``ru_maxrss``. The parent uses the standard library only (a child's ``ru_maxrss`` starts at its
parent's resident size), and even the input files are written by a ``prepare`` child.

Scenarios (wall time is the timed call only; kernels are warm):

- ``kernel_t1``/``_t2``: the settlement kernel ``drgkit.settlement._kernel.price_all`` on the
  1M cases prepared by ``SettleRun.prepare`` (formula, price cell, cost), 1 / 2 threads.
- ``settle_mem_t1``/``_t2``: :func:`drgkit.settlement.settle` of the 1M grouped cases held in
  memory as an Arrow table (read from the grouped Parquet).
- ``settle_parquet_t2``: :func:`drgkit.settlement.settle_file`, grouped Parquet -> Parquet.
- ``e2e_parquet_t2``: ``settle_file`` of the ungrouped cases, Parquet -> Parquet: group and
  settle in one run (read, group, settle, write).
- ``dataset_local_t2``: :func:`drgkit.settlement._bulk.settle_dataset`, the same cases as a
  folder of ``--partitions`` Parquet files, :class:`LocalRunner`, 2 threads.
- ``dataset_dask_2w``: the same on a ``dask.distributed`` LocalCluster of 2 worker processes
  with 1 thread each (cluster start and the workers' first call are not timed); its part files
  must be byte-identical to ``dataset_local_t2``'s.
- ``duckdb_t1``/``_t2``: the baseline: the same policy written as DuckDB SQL
  (``settle_data.DUCKDB_SQL``) over the grouped Parquet, to an Arrow table and
  (``parquet_s``) to a Parquet file, 1 / 2 DuckDB threads.

The input files are written in row groups of 131,072 rows, so that DuckDB (which parallelises
over row groups) can use its threads.

Checks (the script exits 1 when one fails; it never judges speed): DuckDB's payment and
patient share equal drgkit's for every case, to the cent (the number of mismatches is printed,
with examples); the kernel's payment equals ``settle()``'s for every settled case; the
end-to-end and dataset outputs equal ``settle()`` of the grouped cases case by case.

Reference data: ``$DRGKIT_SHARED`` or ``../shared`` next to the repository, read in place.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARK = "BENCH-JSON "
#: rows per row group of the input files: DuckDB (and pyarrow) read row groups in parallel
ROW_GROUP = 1 << 17

SCENARIOS = {
    "kernel_t1": "settlement kernel price_all, 1 thread",
    "kernel_t2": "settlement kernel price_all, 2 threads",
    "settle_mem_t1": "settle() grouped Arrow in memory, 1 thread",
    "settle_mem_t2": "settle() grouped Arrow in memory, 2 threads",
    "settle_parquet_t2": "settle_file grouped Parquet -> Parquet, 2 thr",
    "e2e_parquet_t2": "group+settle Parquet -> Parquet, 2 threads",
    "dataset_local_t2": "settle_dataset, LocalRunner, 2 threads",
    "dataset_dask_2w": "settle_dataset, Dask 2 workers x 1 thread",
    "duckdb_t1": "DuckDB SQL baseline -> Arrow, 1 thread",
    "duckdb_t2": "DuckDB SQL baseline -> Arrow, 2 threads",
}
DEFAULT_SCENARIOS = list(SCENARIOS)
THREADS = {
    "kernel_t1": 1,
    "kernel_t2": 2,
    "settle_mem_t1": 1,
    "settle_mem_t2": 2,
    "settle_parquet_t2": 2,
    "e2e_parquet_t2": 2,
    "dataset_local_t2": 2,
    "dataset_dask_2w": 2,
    "duckdb_t1": 1,
    "duckdb_t2": 2,
}


# ============================================================================ child side


def _maxrss_mib(who: int = resource.RUSAGE_SELF) -> float:
    rss = resource.getrusage(who).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _emit(payload: dict) -> None:
    payload.setdefault("peak_rss_mib", round(_maxrss_mib(), 1))
    sys.stdout.write(MARK + json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def _data():
    sys.path.insert(0, str(HERE))
    import settle_data

    return settle_data


def _paths(args) -> dict[str, Path]:
    w = Path(args.workdir)
    return {
        "cases": w / "cases.parquet",
        "grouped": w / "grouped.parquet",
        "folder": w / "cases-parts",
        "settled": w / "settled-grouped.parquet",
        "e2e": w / "settled-e2e.parquet",
        "local": w / "dataset-local",
        "dask": w / "dataset-dask",
        "duck": w / "duckdb.parquet",
    }


def _timed(fn, repeat: int):
    import gc

    walls, result = [], None
    for _ in range(repeat):
        result = None
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - t0)
    return min(walls), walls, result


def _reference(args):
    """drgkit's settlement of the grouped cases (the object every check compares with)."""
    import pyarrow.parquet as pq

    from drgkit.settlement import settle

    S = _data()
    return settle(pq.read_table(_paths(args)["grouped"]), S.POLICY, weights=S.weights_csv())


def _same_payments(got, ref) -> dict:
    import numpy as np

    S = _data()
    a, b = S.cents_of(got.column("payment")), S.cents_of(ref.column("payment"))
    c, d = S.cents_of(got.column("patient_share")), S.cents_of(ref.column("patient_share"))
    ids = got.column("case_id").to_pylist() == ref.column("case_id").to_pylist()
    bad = np.flatnonzero((a != b) | (c != d)) if len(a) == len(b) else np.arange(len(a))
    return {
        "compared": len(a),
        "mismatches": len(bad),
        "ids_ok": ids,
        "examples": [int(i) for i in bad[:5]],
    }


def _versions() -> dict:
    import numba
    import numpy
    import pyarrow

    out = {
        "numba": numba.__version__,
        "numpy": numpy.__version__,
        "pyarrow": pyarrow.__version__,
        "cpus": os.cpu_count(),
    }
    try:
        out["threading_layer"] = numba.threading_layer()
    except ValueError:
        out["threading_layer"] = None
    return out


def child_prepare(args) -> None:
    """Cases (one Parquet file and a folder of parts) and the grouped cases."""
    import pyarrow.parquet as pq

    import drgkit

    S = _data()
    p = _paths(args)
    t0 = time.perf_counter()
    table = S.build(args.rows)
    build_s = time.perf_counter() - t0
    pq.write_table(table, p["cases"], compression="zstd", row_group_size=ROW_GROUP)
    p["folder"].mkdir()
    step = -(-table.num_rows // args.partitions)
    for k in range(args.partitions):
        pq.write_table(
            table.slice(k * step, step),
            p["folder"] / f"cases-{k:03d}.parquet",
            compression="zstd",
            row_group_size=ROW_GROUP,
        )
    rs = drgkit.load_ruleset(S.ruleset_dir())
    t0 = time.perf_counter()
    grouped = drgkit.group(table, rs, keep=S.grouped_keep(table), threads=2)
    group_s = time.perf_counter() - t0
    pq.write_table(
        S.nullable_ids(grouped), p["grouped"], compression="zstd", row_group_size=ROW_GROUP
    )
    status = grouped.column("status").combine_chunks().cast("string").value_counts()
    _emit(
        {
            "scenario": "prepare",
            "rows": table.num_rows,
            "build_s": build_s,
            "group_s": group_s,
            "partitions": args.partitions,
            "status": {s["values"]: s["counts"] for s in status.to_pylist()},
            "cases_bytes": p["cases"].stat().st_size,
            "grouped_bytes": p["grouped"].stat().st_size,
        }
    )


def child_kernel(args) -> None:
    import pyarrow.parquet as pq

    from drgkit import set_threads
    from drgkit._resolve import resolve_policy
    from drgkit.settlement import _kernel as K
    from drgkit.settlement._settle import SettleRun

    S = _data()
    threads = THREADS[args.scenario]
    grouped = pq.read_table(_paths(args)["grouped"]).combine_chunks()
    policy = resolve_policy(S.POLICY, S.weights_csv())
    run = SettleRun(policy, None, grouped.schema, "grouped")
    batch = grouped.to_batches()[0]
    prep = run.prepare(batch)
    a = run.book.arrays()
    kernel_args = (
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
    set_threads(threads)
    K.price_all(prep.n, *kernel_args)  # warm (compiled or loaded from the numba cache)
    best, walls, out = _timed(lambda: K.price_all(prep.n, *kernel_args), max(args.repeat, 5))
    peak = _maxrss_mib()
    _cls, _standard, money = out
    ref = _reference(args)
    import numpy as np

    ref_pay = S.cents_of(ref.column("payment"))
    settled = ref_pay != np.iinfo(np.int64).min
    bad = int((money[settled] != ref_pay[settled]).sum())
    _emit(
        {
            "scenario": args.scenario,
            "threads": threads,
            "rows": prep.n,
            "seconds": best,
            "all_seconds": walls,
            "cases_per_s": prep.n / best,
            "peak_rss_mib": round(peak, 1),
            "check": {
                "compared": int(settled.sum()),
                "mismatches": bad,
                "what": "kernel payment = settle() payment, every settled case",
            },
            "versions": _versions(),
        }
    )


def child_settle_mem(args) -> None:
    import pyarrow.parquet as pq

    from drgkit.settlement import settle

    S = _data()
    threads = THREADS[args.scenario]
    grouped = pq.read_table(_paths(args)["grouped"]).combine_chunks()
    settle(grouped.slice(0, 10_000), S.POLICY, weights=S.weights_csv(), threads=threads)
    input_rss = _maxrss_mib()
    best, walls, out = _timed(
        lambda: settle(grouped, S.POLICY, weights=S.weights_csv(), threads=threads), args.repeat
    )
    peak = _maxrss_mib()
    classes = out.column("payment_class").combine_chunks().cast("string").value_counts()
    _emit(
        {
            "scenario": args.scenario,
            "threads": threads,
            "rows": out.num_rows,
            "seconds": best,
            "all_seconds": walls,
            "cases_per_s": out.num_rows / best,
            "input_rss_mib": round(input_rss, 1),
            "peak_rss_mib": round(peak, 1),
            "input_nbytes": grouped.nbytes,
            "payment_classes": {c["values"]: c["counts"] for c in classes.to_pylist()},
        }
    )


def child_settle_parquet(args) -> None:
    import pyarrow.parquet as pq

    from drgkit.settlement import settle_file

    S = _data()
    p = _paths(args)
    settle_file(
        pq.read_table(p["grouped"]).slice(0, 10_000),
        p["settled"],
        S.POLICY,
        weights=S.weights_csv(),
        threads=2,
    )
    best, walls, summary = _timed(
        lambda: settle_file(
            p["grouped"], p["settled"], S.POLICY, weights=S.weights_csv(), threads=2
        ),
        args.repeat,
    )
    peak = _maxrss_mib()
    check = _same_payments(pq.read_table(p["settled"]), _reference(args))
    _emit(
        {
            "scenario": args.scenario,
            "threads": 2,
            "rows": summary.rows,
            "seconds": best,
            "all_seconds": walls,
            "cases_per_s": summary.rows / best,
            "peak_rss_mib": round(peak, 1),
            "out_bytes": p["settled"].stat().st_size,
            "check": check,
        }
    )


def _e2e_reference(args):
    """drgkit's group+settle of the ungrouped cases equals the settlement of the grouped file
    (grouping kept every input column)."""
    return _reference(args)


def child_e2e(args) -> None:
    import pyarrow.parquet as pq

    from drgkit.settlement import settle_file

    S = _data()
    p = _paths(args)
    rs = str(S.ruleset_dir())
    settle_file(
        pq.read_table(p["cases"]).slice(0, 10_000),
        p["e2e"],
        S.POLICY,
        rs,
        weights=S.weights_csv(),
        threads=2,
    )
    best, walls, summary = _timed(
        lambda: settle_file(p["cases"], p["e2e"], S.POLICY, rs, weights=S.weights_csv(), threads=2),
        args.repeat,
    )
    peak = _maxrss_mib()
    check = _same_payments(pq.read_table(p["e2e"]), _e2e_reference(args))
    _emit(
        {
            "scenario": args.scenario,
            "threads": 2,
            "rows": summary.rows,
            "seconds": best,
            "all_seconds": walls,
            "cases_per_s": summary.rows / best,
            "peak_rss_mib": round(peak, 1),
            "in_bytes": p["cases"].stat().st_size,
            "out_bytes": p["e2e"].stat().st_size,
            "check": check,
        }
    )


def _dataset_table(paths):
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa.concat_tables([pq.read_table(x) for x in paths])


def child_dataset_local(args) -> None:
    import pyarrow.parquet as pq

    from drgkit.settlement._bulk import LocalRunner, settle_dataset

    S = _data()
    p = _paths(args)
    rs = str(S.ruleset_dir())
    warm = Path(args.workdir) / "warm-local"
    warm.mkdir(exist_ok=True)
    pq.write_table(pq.read_table(p["cases"]).slice(0, 10_000), warm / "w.parquet")
    settle_dataset(warm, warm / "out", S.POLICY, rs, weights=S.weights_csv(), threads=2)

    def run():
        return settle_dataset(
            p["folder"],
            p["local"],
            S.POLICY,
            rs,
            weights=S.weights_csv(),
            runner=LocalRunner(),
            threads=2,
            overwrite=True,
        )

    best, walls, result = _timed(run, args.repeat)
    peak = _maxrss_mib()
    check = _same_payments(_dataset_table(result.paths), _e2e_reference(args))
    _emit(
        {
            "scenario": args.scenario,
            "threads": 2,
            "rows": result.rows,
            "seconds": best,
            "all_seconds": walls,
            "cases_per_s": result.rows / best,
            "partitions": len(result.partitions),
            "peak_rss_mib": round(peak, 1),
            "check": check,
        }
    )


def child_dataset_dask(args) -> None:
    import pyarrow.parquet as pq

    try:
        import distributed  # noqa: F401

        from drgkit.settlement._bulk import DaskRunner, settle_dataset
    except ImportError:
        _emit({"scenario": args.scenario, "skipped": "dask.distributed is not installed"})
        return
    S = _data()
    p = _paths(args)
    rs = str(S.ruleset_dir())
    warm = Path(args.workdir) / "warm-dask"
    warm.mkdir(exist_ok=True)
    small = pq.read_table(p["cases"]).slice(0, 10_000)
    for k in range(4):  # enough partitions for both workers to load their kernels
        pq.write_table(small.slice(k * 2500, 2500), warm / f"w{k}.parquet")
    t0 = time.perf_counter()
    with DaskRunner(n_workers=2, threads_per_worker=1, processes=True) as runner:
        start_s = time.perf_counter() - t0
        settle_dataset(
            warm,
            warm / "out",
            S.POLICY,
            rs,
            weights=S.weights_csv(),
            runner=runner,
            threads=1,
            overwrite=True,
        )

        def run():
            return settle_dataset(
                p["folder"],
                p["dask"],
                S.POLICY,
                rs,
                weights=S.weights_csv(),
                runner=runner,
                threads=1,
                overwrite=True,
            )

        best, walls, result = _timed(run, args.repeat)
    peak = _maxrss_mib()
    workers_peak = _maxrss_mib(resource.RUSAGE_CHILDREN)
    local = sorted(p["local"].glob("part-*.parquet"))
    mine = [Path(x) for x in result.paths]
    same = (
        bool(local)
        and [x.name for x in local] == [x.name for x in mine]
        and all(a.read_bytes() == b.read_bytes() for a, b in zip(local, mine, strict=True))
    )
    check = _same_payments(_dataset_table(result.paths), _e2e_reference(args))
    check["bytes_equal_local"] = same if local else None
    if local and not same:
        check["mismatches"] = max(1, check["mismatches"])
    _emit(
        {
            "scenario": args.scenario,
            "threads": 2,
            "rows": result.rows,
            "seconds": best,
            "all_seconds": walls,
            "cases_per_s": result.rows / best,
            "cluster_start_s": start_s,
            "partitions": len(result.partitions),
            "peak_rss_mib": round(peak, 1),
            "workers_peak_rss_mib": round(workers_peak, 1),
            "check": check,
        }
    )


def child_duckdb(args) -> None:
    try:
        import duckdb
    except ImportError:
        _emit({"scenario": args.scenario, "skipped": "duckdb is not installed"})
        return
    S = _data()
    p = _paths(args)
    threads = THREADS[args.scenario]
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    sql = S.duckdb_sql(p["grouped"])
    con.sql(sql).limit(10).to_arrow_table()  # warm: catalog, CSV of the weights
    best, walls, duck = _timed(lambda: con.sql(sql).to_arrow_table(), args.repeat)
    out = str(p["duck"]).replace("'", "''")
    pbest, pwalls, _ = _timed(
        lambda: con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)"),
        args.repeat,
    )
    peak = _maxrss_mib()
    check = S.compare_with_duckdb(duck, _reference(args))
    _emit(
        {
            "scenario": args.scenario,
            "threads": threads,
            "rows": duck.num_rows,
            "seconds": best,
            "all_seconds": walls,
            "cases_per_s": duck.num_rows / best,
            "parquet_s": pbest,
            "parquet_all_s": pwalls,
            "parquet_cases_per_s": duck.num_rows / pbest,
            "peak_rss_mib": round(peak, 1),
            "duckdb": duckdb.__version__,
            "check": check,
        }
    )


CHILDREN = {
    "prepare": child_prepare,
    "kernel_t1": child_kernel,
    "kernel_t2": child_kernel,
    "settle_mem_t1": child_settle_mem,
    "settle_mem_t2": child_settle_mem,
    "settle_parquet_t2": child_settle_parquet,
    "e2e_parquet_t2": child_e2e,
    "dataset_local_t2": child_dataset_local,
    "dataset_dask_2w": child_dataset_dask,
    "duckdb_t1": child_duckdb,
    "duckdb_t2": child_duckdb,
}


# ============================================================================ parent side


class ScenarioFailed(RuntimeError):
    pass


def run_child(scenario: str, args, env: dict[str, str]) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--scenario",
        scenario,
        "--rows",
        str(args.rows),
        "--repeat",
        str(args.repeat),
        "--partitions",
        str(args.partitions),
        "--workdir",
        str(args.workdir),
    ]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    lines = [ln for ln in stdout.splitlines() if ln.startswith(MARK)]
    if code or not lines:
        raise ScenarioFailed(
            f"scenario {scenario} failed (exit {code}):\n{stderr[-3000:]}{stdout[-1000:]}"
        )
    payload = json.loads(lines[-1][len(MARK) :])
    payload["process_wall_s"] = wall
    rss = usage.ru_maxrss
    payload["wait4_maxrss_mib"] = round(
        rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024, 1
    )
    return payload


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _check_text(check: dict | None) -> str:
    if not check:
        return "-"
    if check.get("mismatches"):
        return f"FAIL: {check['mismatches']:,} differ"
    if check.get("ids_ok") is False:
        return "FAIL: case ids"
    extra = " bytes = local" if check.get("bytes_equal_local") else ""
    return f"ok ({check.get('compared', 0):,} cases){extra}"


def parent(args) -> int:
    from importlib.metadata import PackageNotFoundError, version

    S = _data()
    message = S.missing_message()
    if message:
        print(f"skipped: {message}")
        return 0
    scenarios = args.scenarios.split(",") if args.scenarios else list(DEFAULT_SCENARIOS)
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
        return 2
    args.workdir = Path(tempfile.mkdtemp(prefix="drgkit-settle-bench-"))
    env = dict(os.environ)
    env.setdefault("DRGKIT_CACHE_DIR", str(args.workdir / "drgkit-cache"))
    env["DRGKIT_SHARED"] = str(S.B.shared_dir())
    env["PYTHONWARNINGS"] = "ignore"

    def ver(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "absent"

    print(f"drgkit settlement scale benchmark — {time.strftime('%Y-%m-%d %H:%M')}")
    print(
        f"data: {S.cases_csv()} replicated to {args.rows:,} rows with synthetic claims; "
        f"ruleset {S.ruleset_dir()}; policy {S.POLICY} + {S.weights_csv()}"
    )
    print(
        "versions: "
        + ", ".join(
            f"{p} {ver(p)}"
            for p in ("drgkit", "numba", "numpy", "pyarrow", "duckdb", "dask", "distributed")
        )
        + f", python {sys.version.split()[0]}; {os.cpu_count()} cpus"
    )
    stamp, newest = S.B.source_stamp()
    print(
        f"drgkit source as of {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(stamp))} "
        f"(newest file: {newest})"
    )
    print("load average before the run: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(flush=True)
    results: dict[str, dict] = {}
    failures: list[str] = []
    try:
        print("  running prepare …", flush=True)
        try:
            results["prepare"] = run_child("prepare", args, env)
        except ScenarioFailed as exc:
            print(exc)
            return 1
        for name in scenarios:
            print(f"  running {name} …", flush=True)
            try:
                res = run_child(name, args, env)
            except ScenarioFailed as exc:
                failures.append(str(exc))
                print(f"  {exc}", flush=True)
                continue
            results[name] = res
            check = res.get("check")
            if check and (check.get("mismatches") or check.get("ids_ok") is False):
                failures.append(f"{name}: check failed: {json.dumps(check, default=str)}")
    finally:
        if args.keep:
            print(f"kept {args.workdir}")
        else:
            shutil.rmtree(args.workdir, ignore_errors=True)

    report(results)
    if S.B.source_stamp()[0] != stamp:
        failures.append("drgkit's source changed during the run: the figures mix versions")
    print("\nload average after the run: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"this parent process peaked at {_maxrss_mib():.0f} MiB")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            for name, res in results.items():
                fh.write(json.dumps({"name": name, **res}, default=str) + "\n")
        print(f"wrote {args.json}")
    if failures:
        print("\nFAILED:")
        for f in failures:
            print(f"  {f[:3000]}")
        return 1
    return 0


def report(results: dict[str, dict]) -> None:
    prep = results.get("prepare")
    if prep:
        print(
            f"\nprepared {prep['rows']:,} cases in {prep['build_s']:.1f} s; grouped in "
            f"{prep['group_s']:.2f} s (2 threads): {prep['status']}"
        )
    duck = results.get("duckdb_t2") or results.get("duckdb_t1")
    duck_rate = duck.get("cases_per_s") if duck else None
    head = (
        f"{'scenario':<46} {'rows':>10} {'wall s':>7} {'cases/s':>11} {'per core':>10} "
        f"{'x DuckDB':>8} {'peak MiB':>9}  check"
    )
    print()
    print(head)
    print("-" * (len(head) + 14))
    for name, label in SCENARIOS.items():
        r = results.get(name)
        if not r:
            continue
        if "skipped" in r:
            print(f"{label:<46} skipped: {r['skipped']}")
            continue
        threads = r.get("threads") or 1
        ratio = (
            f"{r['cases_per_s'] / duck_rate:.2f}"
            if duck_rate and not name.startswith(("duckdb", "kernel"))
            else "-"
        )
        print(
            f"{label:<46} {r['rows']:>10,} {r['seconds']:>7.3f} {_rate(r['cases_per_s']):>11} "
            f"{_rate(r['cases_per_s'] / threads):>10} {ratio:>8} {r['peak_rss_mib']:>9,.0f}"
            f"  {_check_text(r.get('check'))}"
        )
        if name.startswith("duckdb"):
            print(
                f"{'  … same SQL, Parquet -> Parquet (COPY)':<46} {r['rows']:>10,} "
                f"{r['parquet_s']:>7.3f} {_rate(r['parquet_cases_per_s']):>11} "
                f"{_rate(r['parquet_cases_per_s'] / threads):>10}"
            )
        if name == "dataset_dask_2w":
            print(
                f"{'  … dask workers peak (each process)':<46} {'':>10} {'':>7} {'':>11} "
                f"{'':>10} {'':>8} {r['workers_peak_rss_mib']:>9,.0f}  cluster start "
                f"{r['cluster_start_s']:.1f} s (not timed)"
            )
    for name in ("duckdb_t1", "duckdb_t2"):
        r = results.get(name)
        if r and "check" in r:
            c = r["check"]
            print(
                f"\n{name}: DuckDB vs drgkit, case by case: {c['mismatches']:,} mismatches in "
                f"{c['compared']:,} cases ({c['settled']:,} settled)"
            )
            for e in c["examples"]:
                print(f"    {e}")
    pairs = [
        ("settle_mem_t2", "duckdb_t2", "cases_per_s", "cases_per_s"),
        ("settle_parquet_t2", "duckdb_t2", "cases_per_s", "parquet_cases_per_s"),
        ("settle_mem_t1", "duckdb_t1", "cases_per_s", "cases_per_s"),
    ]
    lines = []
    for mine, theirs, k1, k2 in pairs:
        a, b = results.get(mine), results.get(theirs)
        if a and b and k1 in a and k2 in b:
            lines.append(
                f"  {SCENARIOS[mine]} / DuckDB ({k2.replace('_', ' ')}): {a[k1] / b[k2]:.2f}x"
            )
    if lines:
        print("\nratios, drgkit / DuckDB:")
        print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=1_000_000, help="cases per scenario")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="timed runs per scenario, best reported (the kernel runs >= 5)",
    )
    ap.add_argument(
        "--partitions", type=int, default=8, help="Parquet files of the dataset scenarios"
    )
    ap.add_argument("--scenarios", help="comma-separated subset of: " + ", ".join(SCENARIOS))
    ap.add_argument("--json", help="write every scenario's JSON record to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    ap.add_argument("--scenario", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.scenario:
        CHILDREN[args.scenario](args)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
