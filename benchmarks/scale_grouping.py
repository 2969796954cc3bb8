#!/usr/bin/env python
"""How fast drgkit groups CHS-DRG 1.1 at scale, and how that compares with pure Python.

    python benchmarks/scale_grouping.py [--rows 1000000] [--baseline-rows 20000]
                                        [--scenarios NAME,...] [--repeat N] [--profile]
                                        [--skip-jit-empty] [--json FILE] [--keep]

The 10,000 oracle cases of CHS-DRG 1.1 are replicated to ``--rows`` (copies get the case-id
suffix ``-r<k>``). Every scenario runs in a fresh subprocess of this script (``--scenario
NAME``), which prints one JSON line; the parent collects them and prints a table. Peak memory
is that subprocess's own ``ru_maxrss`` (and, for the CLI, the ``drgkit`` process's), so runs do
not contaminate each other. On Linux a new process's ``ru_maxrss`` starts at its parent's
resident size at spawn time, so the parent stays small (standard library only: it never
imports numpy or pyarrow, and even the input files are written by a ``prepare`` child).

Scenarios (wall time is the timed call only unless it says end to end):

- ``arrow_text_t1``/``_t2``: :func:`drgkit.group` on an in-memory Arrow table as read from
  CSV (all text, code lists ``|``-joined), 1 / 2 threads.
- ``arrow_list_t1``/``_t2``: the same cases with integer columns where lossless and code lists
  pre-split into ``list<dictionary<int32, string>>``.
- ``parquet_e2e_t2``: :func:`drgkit.group_file` Parquet -> Parquet, 2 threads (read, group,
  write; the interpreter, import and ruleset are already warm).
- ``cli_csv_e2e``: ``drgkit group cases.csv -r <folder> -o out.csv --threads 2 --silent`` in a
  subprocess: everything, from interpreter start to the last byte written.
- ``cli_parquet_e2e``: the same to ``out.parquet`` (the issue's "CSV -> Parquet, whole
  process" figure; its peak RSS is the "peak RSS grouping 1M cases from CSV" figure).
- ``pipeline_ab``: :func:`drgkit.group_file` CSV -> Parquet and Parquet -> Parquet, 2 threads,
  with ``pipeline=False`` (read, group, write one after the other) and ``pipeline=True``
  (read ahead and write behind in background threads), alternating, best of ``--repeat``;
  checks that both write the same bytes.
- ``naive``: ``tests/naive.py`` grouping the first ``--baseline-rows`` rows of the same data.
- ``compile``: compiling the ruleset tables into an empty drgkit cache.
- ``cold_start`` (3 fresh processes): ``import drgkit`` and loading chs_drg_11 from the warm
  cache, timed separately.
- ``jit_warm``/``jit_empty``: the first ``group()`` call minus the second, with the numba cache
  as it is vs. an empty temporary ``NUMBA_CACHE_DIR``: on 10,000 text cases, then 10,000
  list<dict> cases, then 100 text cases (small inputs may take other, serial kernels).

Every grouping scenario checks its output against the naive results (status mapped SUCCESS ->
ok, FAIL -> ungroupable, QY -> ambiguous, CHECK_FAILED/ERROR -> invalid; drg equal for ok and
ambiguous): row ``i`` must equal the naive result of base case ``i mod 10000``. The script exits
with status 1 when any check fails. It never judges speed.

Reference data: ``$DRGKIT_SHARED`` or ``../shared`` next to the repository, read in place.
Compiled rulesets go to ``$DRGKIT_CACHE_DIR`` if set, else to a cache inside the run's
temporary folder. The numba cache is left where the environment puts it (except for
``jit_empty``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MARK = "BENCH-JSON "
JIT_ROWS = 10_000  # enough rows for the parallel kernels
SMALL_ROWS = 100  # a few cases: the serial kernels, where drgkit has them

IN_MEMORY = {
    "arrow_text_t1": ("Arrow in memory, text, 1 thread", "text", 1),
    "arrow_text_t2": ("Arrow in memory, text, 2 threads", "text", 2),
    "arrow_list_t1": ("Arrow in memory, list<dict>, 1 thread", "typed", 1),
    "arrow_list_t2": ("Arrow in memory, list<dict>, 2 threads", "typed", 2),
}
END_TO_END = {
    "parquet_e2e_t2": "Parquet -> Parquet group_file, 2 threads",
    "cli_csv_e2e": "CSV -> CSV `drgkit group` CLI, 2 threads",
    "cli_parquet_e2e": "CSV -> Parquet `drgkit group` CLI, 2 thr",
}
PROFILES = {
    "profile_text_t1": "cProfile: Arrow text, 1 thread",
    "profile_list_t1": "cProfile: Arrow list<dict>, 1 thread",
    "profile_csv_t1": "cProfile: CSV -> CSV group_file, 1 thread",
}
DEFAULT_SCENARIOS = [
    "compile",
    "naive",
    *IN_MEMORY,
    *END_TO_END,
    "cold_start",
    "jit_warm",
    "jit_empty",
]


# ============================================================================ child side


def _maxrss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _emit(payload: dict) -> None:
    payload.setdefault("peak_rss_mib", round(_maxrss_mib(), 1))
    sys.stdout.write(MARK + json.dumps(payload) + "\n")
    sys.stdout.flush()


def _bench():
    sys.path.insert(0, str(HERE))
    import bench_data

    return bench_data


def _naive_expectations(path: str) -> tuple[list[str], list[str], int]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return data["statuses"], data["drgs"], data["n_base"]


def _check(result, input_ids, naive_file: str | None) -> dict:
    if not naive_file:
        return {"skipped": "no naive results"}
    B = _bench()
    statuses, drgs, n_base = _naive_expectations(naive_file)
    return B.compare(result, input_ids, statuses, drgs, n_base)


def _versions() -> dict:
    import numba
    import numpy
    import pyarrow

    import drgkit

    out = {
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "pyarrow": pyarrow.__version__,
        "drgkit": drgkit.__version__,
        "cpus": os.cpu_count(),
    }
    try:
        out["threading_layer"] = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        out["threading_layer"] = None
    return out


def child_prepare(args) -> None:
    """Write the replicated cases (text shape) as CSV and/or Parquet into the work folder."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    B = _bench()
    table = B.build(args.rows, "text")
    work = Path(args.workdir)
    if "csv" in args.formats:
        pacsv.write_csv(
            table, work / "cases.csv", write_options=pacsv.WriteOptions(quoting_style="needed")
        )
    if "parquet" in args.formats:
        pq.write_table(table, work / "cases.parquet", compression="zstd")
    _emit({"scenario": "prepare", "rows": table.num_rows, "formats": args.formats})


def child_compile(args) -> None:
    import drgkit

    folder = _bench().ruleset_dir()
    t0 = time.perf_counter()
    drgkit.load_ruleset(folder)
    _emit({"scenario": "compile", "seconds": time.perf_counter() - t0})


def child_cold_start(args) -> None:
    t0 = time.perf_counter()
    import drgkit

    t1 = time.perf_counter()
    folder = Path(os.environ["DRGKIT_BENCH_RULESET"])
    drgkit.load_ruleset(folder)
    t2 = time.perf_counter()
    _emit({"scenario": "cold_start", "import_s": t1 - t0, "load_s": t2 - t1})


def child_jit(args) -> None:
    t0 = time.perf_counter()
    import drgkit

    t1 = time.perf_counter()
    B = _bench()
    rs = drgkit.load_ruleset(B.ruleset_dir())
    t2 = time.perf_counter()
    base = B.read_base().slice(0, JIT_ROWS)
    inputs = (("text", base), ("typed", B.typed(base)), ("small", base.slice(0, SMALL_ROWS)))
    timings = {}
    for label, table in inputs:
        for call in ("first", "second"):
            s = time.perf_counter()
            drgkit.group(table, rs, threads=2)
            timings[f"{label}_{call}_s"] = time.perf_counter() - s
    _emit(
        {
            "scenario": args.scenario,
            "import_s": t1 - t0,
            "load_s": t2 - t1,
            "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR", "(default)"),
            "rows": base.num_rows,
            "small_rows": SMALL_ROWS,
            **timings,
            **{
                f"jit_{label}_s": timings[f"{label}_first_s"] - timings[f"{label}_second_s"]
                for label, _t in inputs
            },
        }
    )


def child_naive(args) -> None:
    import csv

    B = _bench()
    sys.path.insert(0, str(REPO / "tests"))
    from naive import NaiveRuleset

    t0 = time.perf_counter()
    rs = NaiveRuleset.load(B.ruleset_dir())
    load_s = time.perf_counter() - t0
    with open(B.cases_csv(), encoding="utf-8", newline="") as fh:
        base = list(csv.DictReader(fh))
    n = len(base)
    rows = args.baseline_rows
    ids = B.case_ids([r[B.ID_COLUMN] for r in base], rows)
    records = []
    for i in range(rows):
        record = dict(base[i % n])
        record[B.ID_COLUMN] = ids[i]
        records.append(record)
    t0 = time.perf_counter()
    results = [rs.group(r) for r in records]
    seconds = time.perf_counter() - t0
    covered = min(rows, n)
    # the copies are the same cases: the naive grouper must say the same for each
    inconsistent = sum(1 for i in range(covered, rows) if results[i] != results[i % n])
    statuses = [B.STATUS_MAP[r[0]] for r in results[:covered]]
    drgs = [r[3] for r in results[:covered]]
    oracle_status, oracle_drg = B.read_expected()
    vs_oracle = sum(
        1
        for k in range(covered)
        if statuses[k] != oracle_status[k]
        or (statuses[k] in B.GROUPED and drgs[k] != oracle_drg[k])
    )
    Path(args.naive_out).write_text(
        json.dumps({"n_base": n, "statuses": statuses, "drgs": drgs}), encoding="utf-8"
    )
    counts: dict[str, int] = {}
    for r in results:
        counts[r[0]] = counts.get(r[0], 0) + 1
    _emit(
        {
            "scenario": "naive",
            "rows": rows,
            "seconds": seconds,
            "cases_per_s": rows / seconds,
            "load_s": load_s,
            "inconsistent_copies": inconsistent,
            "mismatches_vs_oracle": vs_oracle,
            "statuses": counts,
            "check": {"mismatches": inconsistent + vs_oracle, "compared": rows},
        }
    )


def child_in_memory(args) -> None:
    import gc

    import drgkit

    B = _bench()
    label, shape, threads = IN_MEMORY[args.scenario]
    rs = drgkit.load_ruleset(B.ruleset_dir())
    t0 = time.perf_counter()
    table = B.build(args.rows, shape)
    build_s = time.perf_counter() - t0
    drgkit.group(table.slice(0, 10_000), rs, threads=threads)  # kernels in from the cache
    gc.collect()
    input_rss = _maxrss_mib()
    walls = []
    result = None
    for _ in range(args.repeat):
        result = None
        gc.collect()
        t0 = time.perf_counter()
        result = drgkit.group(table, rs, threads=threads)
        walls.append(time.perf_counter() - t0)
    best = min(walls)
    check = _check(result, table.column(B.ID_COLUMN), args.naive_file)
    kernel_s = _kernel_only_seconds(rs, table, args.repeat) if threads == 1 else None
    _emit(
        {
            "scenario": args.scenario,
            "label": label,
            "shape": shape,
            "threads": threads,
            "rows": table.num_rows,
            "seconds": best,
            "all_seconds": walls,
            "cases_per_s": table.num_rows / best,
            "build_s": build_s,
            "kernel_s": kernel_s,
            "kernel_cases_per_s": table.num_rows / kernel_s if kernel_s else None,
            "input_nbytes": table.nbytes,
            "input_rss_mib": round(input_rss, 1),
            "schema": B.typed_summary(table),
            "check": check,
            "versions": _versions(),
        }
    )


def _kernel_only_seconds(rs, table, repeat: int) -> float:
    """Best wall time of the grouping kernel alone (serial build, one core) on kernel arrays
    prepared once by the grouper's own preparation of ``table``."""
    from drgkit.grouping import GroupRun
    from drgkit.grouping import _kernel as K

    batch = table.combine_chunks().to_batches(max_chunksize=table.num_rows)[0]
    run = GroupRun(rs, table.schema, "<bench>", check_duplicates=False)
    f = run.front(batch)
    cases, _parsed = run.prepare(0, None, f.cols, f.n, f.pre, f.checks, f.field, f.detail)
    arrays = K.ruleset_arrays(rs.compiled)
    K.group_all.serial(cases, arrays)  # warm
    walls = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        K.group_all.serial(cases, arrays)
        walls.append(time.perf_counter() - t0)
    return min(walls)


def child_parquet(args) -> None:
    import gc

    import pyarrow.parquet as pq

    import drgkit

    B = _bench()
    rs = drgkit.load_ruleset(B.ruleset_dir())
    src = Path(args.workdir) / "cases.parquet"
    out = Path(args.workdir) / "groups.parquet"
    drgkit.group(B.read_base(), rs, threads=2)  # kernels in from the cache
    gc.collect()
    input_rss = _maxrss_mib()
    walls = []
    summary = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        summary = drgkit.group_file(src, out, rs, threads=2)
        walls.append(time.perf_counter() - t0)
    best = min(walls)
    peak = _maxrss_mib()
    result = pq.read_table(out)  # after the peak was taken
    check = _check(result, None, args.naive_file)
    _emit(
        {
            "scenario": args.scenario,
            "rows": summary.rows,
            "seconds": best,
            "all_seconds": walls,
            "cases_per_s": summary.rows / best,
            "input_rss_mib": round(input_rss, 1),
            "peak_rss_mib": round(peak, 1),
            "in_bytes": src.stat().st_size,
            "out_bytes": out.stat().st_size,
            "check": check,
        }
    )


def child_pipeline_ab(args) -> None:
    import gc

    import drgkit
    from drgkit.grouping import group_file

    B = _bench()
    rs = drgkit.load_ruleset(B.ruleset_dir())
    drgkit.group(B.read_base(), rs, threads=2)  # kernels in from the cache
    work = Path(args.workdir)
    best: dict[str, float] = {}
    same = True
    for _ in range(max(1, args.repeat)):
        for fmt in ("csv", "parquet"):
            outs = []
            for pipeline in (False, True):
                out = work / f"ab-{fmt}-{pipeline}.parquet"
                gc.collect()
                t0 = time.perf_counter()
                group_file(work / f"cases.{fmt}", out, rs, threads=2, pipeline=pipeline)
                key = f"{fmt}_{'pipelined' if pipeline else 'plain'}_s"
                best[key] = min(best.get(key, 1e9), time.perf_counter() - t0)
                outs.append(out.read_bytes())
            same &= outs[0] == outs[1]
    _emit(
        {
            "scenario": args.scenario,
            "rows": args.rows,
            **best,
            "check": {"compared": args.rows} if same else {"mismatches": 1},
        }
    )


def _drgkit_command() -> list[str]:
    exe = Path(sys.executable).parent / "drgkit"
    if exe.is_file():
        return [str(exe)]
    return [sys.executable, "-m", "drgkit.cli"]


def child_cli(args) -> None:
    # nothing heavy before the CLI runs: its ru_maxrss starts at this process's size
    B = _bench()
    src = Path(args.workdir) / "cases.csv"
    out = Path(args.workdir) / (
        "groups.parquet" if args.scenario == "cli_parquet_e2e" else "groups.csv"
    )
    cmd = [
        *_drgkit_command(),
        "group",
        str(src),
        "-r",
        str(B.ruleset_dir()),
        "-o",
        str(out),
        "--threads",
        "2",
        "--silent",
    ]
    walls, peaks = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        err = proc.stderr.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - t0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise SystemExit(f"drgkit group failed ({proc.returncode}): {err.decode()[-2000:]}")
        rss = usage.ru_maxrss
        peaks.append(rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024)
    best = min(walls)
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if out.suffix == ".parquet":
        result = pq.read_table(out)
    else:
        with open(out, encoding="utf-8") as fh:
            header = fh.readline().strip().split(",")
        result = pacsv.read_csv(
            out,
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header}, strings_can_be_null=False
            ),
        )
    check = _check(result, None, args.naive_file)
    _emit(
        {
            "scenario": args.scenario,
            "rows": result.num_rows,
            "seconds": best,
            "all_seconds": walls,
            "cases_per_s": result.num_rows / best,
            "peak_rss_mib": round(max(peaks), 1),
            "command": " ".join(cmd[1:]),
            "in_bytes": src.stat().st_size,
            "out_bytes": out.stat().st_size,
            "check": check,
        }
    )


# stages of a profiled run: (label, file suffix, function name); cumulative times
_STAGES = [
    ("read input (CSV/Parquet batches)", "_io.py", "batches"),
    ("write output", "_io.py", "write"),
    ("kernel (group_all)", "_kernel.py", "group_all"),
    ("code lists: split + map (code_lists)", "_cases.py", "code_lists"),
    ("scalar parsing (parse_scalar)", "_cases.py", "parse_scalar"),
    ("duplicate ids (IdTracker.check)", "_codes.py", "check"),
    ("result assembly (_assemble)", "_group.py", "_assemble"),
    ("  of which summary counters (GroupSummary.add)", "_group.py", "add"),
]


def _profile_breakdown(stats, total: float) -> list[tuple[str, float]]:
    table = stats.stats  # (file, line, func) -> (cc, nc, tt, ct, callers)
    rows = []
    accounted = 0.0
    for label, suffix, name in _STAGES:
        ct = 0.0
        for (filename, _line, func), value in table.items():
            if func == name and filename.endswith(suffix) and "drgkit" in filename:
                # a generator's or recursive function's calls are listed once per entry
                ct += value[3]
        if name == "batches":
            # the reading generators are nested (a rechunker around the reader): keep the
            # outermost, which is the largest
            ct = max(
                (v[3] for (f, _l, fn), v in table.items() if fn == name and f.endswith(suffix)),
                default=0.0,
            )
        if ct:
            rows.append((label, ct))
            if not label.startswith("  "):
                accounted += ct
    rows.append(("everything else (checks, ids, glue)", max(0.0, total - accounted)))
    return rows


def child_profile(args) -> None:
    import cProfile
    import io
    import pstats

    import drgkit

    B = _bench()
    rs = drgkit.load_ruleset(B.ruleset_dir())
    drgkit.group(B.read_base(), rs, threads=1)  # kernels in from the cache
    profiler = cProfile.Profile()
    if args.scenario == "profile_csv_t1":
        src = Path(args.workdir) / "cases.csv"
        out = Path(args.workdir) / "profile-groups.csv"
        t0 = time.perf_counter()
        profiler.enable()
        summary = drgkit.group_file(src, out, rs, threads=1)
        profiler.disable()
        seconds = time.perf_counter() - t0
        rows = summary.rows
    else:
        table = B.build(args.rows, "text" if args.scenario == "profile_text_t1" else "typed")
        t0 = time.perf_counter()
        profiler.enable()
        result = drgkit.group(table, rs, threads=1)
        profiler.disable()
        seconds = time.perf_counter() - t0
        rows = result.num_rows
    stats = pstats.Stats(profiler)
    total = max(v[3] for (_f, _l, fn), v in stats.stats.items() if fn in ("group", "group_file"))
    buf = io.StringIO()
    pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(12)
    _emit(
        {
            "scenario": args.scenario,
            "rows": rows,
            "seconds": seconds,
            "profiled_total_s": total,
            "stages": _profile_breakdown(stats, total),
            "top_tottime": buf.getvalue(),
        }
    )


# ============================================================================ parent side


class ScenarioFailed(RuntimeError):
    pass


def run_child(scenario: str, args, env: dict[str, str], extra: list[str] | None = None) -> dict:
    """Run ``--scenario`` in a fresh interpreter; its JSON line plus wall time and rusage."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--scenario",
        scenario,
        "--rows",
        str(args.rows),
        "--baseline-rows",
        str(args.baseline_rows),
        "--repeat",
        str(args.repeat),
        "--workdir",
        str(args.workdir),
        *(extra or []),
    ]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    lines = [ln for ln in stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode or not lines:
        raise ScenarioFailed(
            f"scenario {scenario} failed (exit {proc.returncode}):\n"
            f"{stderr[-3000:]}{stdout[-1000:]}"
        )
    payload = json.loads(lines[-1][len(MARK) :])
    payload["process_wall_s"] = wall
    rss = usage.ru_maxrss
    payload["wait4_maxrss_mib"] = round(
        rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024, 1
    )
    return payload


def _fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _check_text(check: dict | None) -> str:
    if not check:
        return "-"
    if "skipped" in check:
        return "not checked"
    if check.get("mismatches"):
        return f"FAIL: {check['mismatches']:,} differ"
    if check.get("ids_ok") is False:
        return "FAIL: case ids"
    return f"ok ({check.get('compared', 0):,} rows)"


def parent(args) -> int:
    from importlib.metadata import version

    B = _bench()
    message = B.missing_message()
    if message:
        print(f"skipped: {message}")
        return 0
    scenarios = args.scenarios.split(",") if args.scenarios else list(DEFAULT_SCENARIOS)
    if args.skip_jit_empty and "jit_empty" in scenarios:
        scenarios.remove("jit_empty")
    if args.profile:
        scenarios += [p for p in PROFILES if p not in scenarios]
    unknown = [s for s in scenarios if s not in CHILDREN]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(CHILDREN)}")
        return 2

    args.workdir = Path(tempfile.mkdtemp(prefix="drgkit-bench-"))
    env = dict(os.environ)
    env.setdefault("DRGKIT_CACHE_DIR", str(args.workdir / "drgkit-cache"))
    env["DRGKIT_SHARED"] = str(B.shared_dir())
    env["DRGKIT_BENCH_RULESET"] = str(B.ruleset_dir())
    env["PYTHONWARNINGS"] = "ignore"
    naive_file = args.workdir / "naive.json"
    results: dict[str, dict] = {}
    failures: list[str] = []

    print(f"drgkit grouping scale benchmark — {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"data: {B.cases_csv()} (replicated to {args.rows:,} rows); ruleset {B.ruleset_dir()}")
    print(
        "versions: "
        + ", ".join(
            f"{p} {version(p)}" for p in ("drgkit", "numba", "llvmlite", "numpy", "pyarrow")
        )
        + f", python {sys.version.split()[0]}; {os.cpu_count()} cpus"
    )
    print(
        f"work folder: {args.workdir}; drgkit cache: {env['DRGKIT_CACHE_DIR']}; numba cache: "
        f"{env.get('NUMBA_CACHE_DIR', 'default (next to the package)')}"
    )
    stamp, newest = B.source_stamp()
    print(
        f"drgkit source as of {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(stamp))} "
        f"(newest file: {newest})"
    )
    print(
        "load average before the run: "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
        + " (other work on the machine skews every figure)"
    )
    print(flush=True)

    def run(name: str, **kw) -> dict | None:
        print(f"  running {name} …", flush=True)
        try:
            res = run_child(name, args, kw.pop("env", env), **kw)
        except ScenarioFailed as exc:
            failures.append(str(exc))
            print(f"  {exc}", flush=True)
            return None
        check = res.get("check")
        if check and (check.get("mismatches") or check.get("ids_ok") is False):
            failures.append(f"{name}: results differ from the naive grouper: {check}")
        return res

    try:
        # the ruleset: compiled once into the (possibly empty) cache, then warm for everyone
        compile_env = dict(env, DRGKIT_CACHE_DIR=str(args.workdir / "compile-cache"))
        res = run("compile", env=compile_env)
        if res:
            results["compile"] = res
        try:  # warm the run's own cache (a no-op when it is already warm)
            run_child("compile", args, env)
        except ScenarioFailed as exc:
            failures.append(str(exc))

        if "naive" in scenarios or any(s in scenarios for s in (*IN_MEMORY, *END_TO_END)):
            res = run("naive", extra=["--naive-out", str(naive_file)])
            if res:
                results["naive"] = res
        naive_extra = ["--naive-file", str(naive_file)] if naive_file.exists() else []

        formats = [
            f
            for f, users in (
                ("csv", ("cli_csv_e2e", "cli_parquet_e2e", "profile_csv_t1", "pipeline_ab")),
                ("parquet", ("parquet_e2e_t2", "pipeline_ab")),
            )
            if any(u in scenarios for u in users)
        ]
        if formats:
            run("prepare", extra=["--formats", ",".join(formats)])
        for name in [*IN_MEMORY, *END_TO_END]:
            if name in scenarios:
                res = run(name, extra=naive_extra)
                if res:
                    results[name] = res
        if "pipeline_ab" in scenarios:
            res = run("pipeline_ab")
            if res:
                results["pipeline_ab"] = res
        if "cold_start" in scenarios:
            runs = [r for r in (run("cold_start") for _ in range(3)) if r]
            if runs:
                results["cold_start"] = {
                    "import_s": statistics.median(r["import_s"] for r in runs),
                    "load_s": statistics.median(r["load_s"] for r in runs),
                    "process_wall_s": statistics.median(r["process_wall_s"] for r in runs),
                    "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
                    "runs": runs,
                }
        if "jit_warm" in scenarios:
            res = run("jit_warm")
            if res:
                results["jit_warm"] = res
        if "jit_empty" in scenarios:
            empty = args.workdir / "numba-cache-empty"
            empty.mkdir()
            res = run("jit_empty", env=dict(env, NUMBA_CACHE_DIR=str(empty)))
            if res:
                results["jit_empty"] = res
        for name in PROFILES:
            if name in scenarios:
                res = run(name)
                if res:
                    results[name] = res
    finally:
        if args.keep:
            print(f"kept {args.workdir}")
        else:
            shutil.rmtree(args.workdir, ignore_errors=True)

    report(results, args)
    if B.source_stamp()[0] != stamp:
        failures.append("drgkit's source changed during the run: the figures mix versions")
    print("\nload average after the run: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(
        f"this parent process peaked at {_maxrss_mib():.0f} MiB (a child's ru_maxrss cannot "
        "be below its parent's resident size at spawn)"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            for name, res in results.items():
                fh.write(json.dumps({"name": name, **res}) + "\n")
        print(f"\nwrote {args.json}")
    if failures:
        print("\nFAILED:")
        for f in failures:
            print(f"  {f}")
        return 1
    return 0


def report(results: dict[str, dict], args) -> None:
    naive = results.get("naive")
    naive_rate = naive["cases_per_s"] if naive else None
    print()
    head = (
        f"{'scenario':<44} {'rows':>10} {'wall s':>8} {'cases/s':>11} {'per core':>11} "
        f"{'x naive':>8} {'peak MiB':>9} {'input MiB':>9}  check"
    )
    print(head)
    print("-" * len(head) + "-" * 12)
    for name in [*IN_MEMORY, *END_TO_END]:
        r = results.get(name)
        if not r:
            continue
        label = IN_MEMORY[name][0] if name in IN_MEMORY else END_TO_END[name]
        threads = r.get("threads") or 2
        ratio = f"{r['cases_per_s'] / naive_rate:.1f}" if naive_rate else "-"
        print(
            f"{label:<44} {r['rows']:>10,} {r['seconds']:>8.2f} "
            f"{_fmt_rate(r['cases_per_s']):>11} "
            f"{_fmt_rate(r['cases_per_s'] / threads):>11} {ratio:>8} "
            f"{r['peak_rss_mib']:>9,.0f} {_fmt_rate(r.get('input_rss_mib')):>9}  "
            f"{_check_text(r.get('check'))}"
        )
    if naive:
        if naive["check"]["mismatches"]:
            naive_check = (
                f"FAIL: {naive['inconsistent_copies']} copies disagree, "
                f"{naive['mismatches_vs_oracle']} differ from the oracle"
            )
        else:
            naive_check = f"ok (= oracle on {min(naive['rows'], 10000):,} base cases)"
        print(
            f"{'naive pure Python (tests/naive.py), 1 thread':<44} {naive['rows']:>10,} "
            f"{naive['seconds']:>8.2f} {_fmt_rate(naive_rate):>11} {_fmt_rate(naive_rate):>11} "
            f"{'1.0':>8} {naive['peak_rss_mib']:>9,.0f} {'-':>9}  {naive_check}"
        )
    print()
    if "compile" in results:
        print(f"ruleset compile into an empty cache: {results['compile']['seconds']:.2f} s")
    cs = results.get("cold_start")
    if cs:
        print(
            f"cold start (median of 3 fresh processes): import drgkit {cs['import_s']:.2f} s, "
            f"load chs_drg_11 from the warm cache {cs['load_s']:.3f} s; whole process "
            f"{cs['process_wall_s']:.2f} s, peak {cs['peak_rss_mib']:.0f} MiB"
        )
    for name, what in (("jit_warm", "warm numba cache"), ("jit_empty", "empty numba cache")):
        j = results.get(name)
        if j:
            print(
                f"first group() call, {what}: {j['text_first_s']:.2f} s on {j['rows']:,} "
                f"text cases (second call {j['text_second_s']:.3f} s -> JIT/cache load "
                f"{j['jit_text_s']:.2f} s); then the first list<dict> call adds "
                f"{j['jit_typed_s']:.2f} s and the first {j['small_rows']}-case call "
                f"{j['jit_small_s']:.2f} s"
            )
    for name in IN_MEMORY:
        r = results.get(name)
        if r and r.get("kernel_cases_per_s"):
            print(
                f"grouping kernel alone ({r['shape']} input, serial build, one core): "
                f"{r['kernel_s']:.2f} s for {r['rows']:,} cases -> "
                f"{r['kernel_cases_per_s']:,.0f} cases/s"
            )
    best = max(
        (results[n]["cases_per_s"] / results[n]["threads"] for n in IN_MEMORY if n in results),
        default=None,
    )
    if best is not None:
        verdict = "MET" if best >= 1_000_000 else "NOT MET"
        print(
            f"\ntarget >= 1,000,000 cases/s per core from Arrow in memory: best measured "
            f"{best:,.0f} cases/s per core -> {verdict}"
        )
    ab = results.get("pipeline_ab")
    if ab:
        for fmt in ("csv", "parquet"):
            plain, piped = ab[f"{fmt}_plain_s"], ab[f"{fmt}_pipelined_s"]
            print(
                f"group_file {fmt} -> Parquet, 2 threads, {ab['rows']:,} rows: plain "
                f"{plain:.2f} s, pipelined {piped:.2f} s ({ab['rows'] / piped:,.0f} cases/s); "
                f"same bytes: {_check_text(ab.get('check'))}"
            )
    cli = results.get("cli_parquet_e2e")
    if cli:
        rate, peak = cli["cases_per_s"], cli["peak_rss_mib"]
        print(
            f"target >= 700,000 cases/s for `drgkit group` CSV -> Parquet, whole process: "
            f"{rate:,.0f} -> {'MET' if rate >= 700_000 else 'NOT MET'}; target peak RSS <= 400 "
            f"MiB grouping {cli['rows']:,} cases from CSV: {peak:,.0f} MiB -> "
            f"{'MET' if peak <= 400 else 'NOT MET'}"
        )
    for name in PROFILES:
        p = results.get(name)
        if not p:
            continue
        print(
            f"\n{PROFILES[name]} ({p['rows']:,} rows, {p['profiled_total_s']:.2f} s under "
            f"cProfile):"
        )
        for label, seconds in p["stages"]:
            share = 100 * seconds / p["profiled_total_s"] if p["profiled_total_s"] else 0
            print(f"    {label:<48} {seconds:>8.2f} s  {share:5.1f}%")
        if args.verbose:
            print(p["top_tottime"])


CHILDREN = {
    "prepare": child_prepare,
    "compile": child_compile,
    "cold_start": child_cold_start,
    "jit_warm": child_jit,
    "jit_empty": child_jit,
    "naive": child_naive,
    "parquet_e2e_t2": child_parquet,
    "cli_csv_e2e": child_cli,
    "cli_parquet_e2e": child_cli,
    "pipeline_ab": child_pipeline_ab,
    **{k: child_in_memory for k in IN_MEMORY},
    **{k: child_profile for k in PROFILES},
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=1_000_000, help="cases per scenario")
    ap.add_argument(
        "--baseline-rows",
        type=int,
        default=20_000,
        help="cases the pure-Python naive grouper groups",
    )
    ap.add_argument(
        "--scenarios",
        help="comma-separated subset of: "
        + ", ".join([*DEFAULT_SCENARIOS, "cli_parquet_e2e", "pipeline_ab", *PROFILES]),
    )
    ap.add_argument(
        "--repeat", type=int, default=1, help="timed runs per scenario (the best is reported)"
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="also profile 1-thread runs with cProfile and print where time goes",
    )
    ap.add_argument(
        "--skip-jit-empty",
        action="store_true",
        help="skip the empty-numba-cache scenario (it compiles every kernel)",
    )
    ap.add_argument("--json", help="write every scenario's JSON record to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    ap.add_argument(
        "-v", "--verbose", action="store_true", help="print the cProfile top functions too"
    )
    # internal: run one scenario in this (child) process
    ap.add_argument("--scenario", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--naive-file", help=argparse.SUPPRESS)
    ap.add_argument("--naive-out", help=argparse.SUPPRESS)
    ap.add_argument("--formats", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.scenario:
        CHILDREN[args.scenario](args)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
