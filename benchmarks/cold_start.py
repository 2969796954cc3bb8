#!/usr/bin/env python
"""How long a short ``drgkit`` command takes as a whole process: 10 cases, warm caches.

    python benchmarks/cold_start.py [--runs 7] [--json FILE]

Runs, each ``--runs`` times in a fresh process (after one unmeasured run that fills the
numba and ruleset caches if they are empty):

- ``group``: ``drgkit group cases10.csv -r <chs_drg_11 folder> -o out.csv --silent``;
- ``group_parquet``: the same cases to Parquet;
- ``settle``: ``drgkit settle claims10.csv -r <suzhou_2023 folder> -p suzhou-2023 --weights
  <payment/suzhou-2023.csv> -o out.csv --silent`` (grouped and settled in one run);
- ``import``: ``python -c "import drgkit.cli"`` (the floor every command pays);
- ``python``: ``python -c pass`` (the interpreter alone).

For each it prints the median and the minimum wall time, the median CPU time (user + system,
which other work on the machine disturbs less than wall time) and the peak RSS, and, once,
where the time of a ``group`` run goes (interpreter, imports, ruleset from the cache, kernels
from the numba cache, the run). The load average is printed with the figures: the machine is
shared, so compare runs made at similar load. Byte-compiled modules matter here: the
children run with ``PYTHONDONTWRITEBYTECODE`` unset, as a user's installation does.

Reference data: ``$DRGKIT_SHARED`` or ``../shared`` next to the repository, read in place.
Each run checks its output (10 rows, the statuses ``drgkit.group`` gives in process), so that
a fast wrong answer fails; the script exits with status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# where one short group run spends its time, measured inside one fresh process
_BREAKDOWN = r"""
import json, sys, time
t0 = time.perf_counter()
import drgkit.cli
try:
    from drgkit._io import without_pandas
except ImportError:  # an older drgkit (an A/B run against an earlier source)
    from contextlib import nullcontext as without_pandas
t1 = time.perf_counter()
with without_pandas():
    import drgkit
    rs = drgkit.load_ruleset(sys.argv[1])
    t2 = time.perf_counter()
    from numba.core.registry import cpu_target
    cpu_target.typing_context.refresh()  # what numba sets up once per process before it
    cpu_target.target_context.refresh()  # can load a kernel from its cache
    t3 = time.perf_counter()
    drgkit.group(sys.argv[2], rs)
    t4 = time.perf_counter()
    drgkit.group(sys.argv[2], rs)
    t5 = time.perf_counter()
print("BREAKDOWN " + json.dumps({
    "import drgkit.cli": t1 - t0,
    "ruleset from the cache": t2 - t1,
    "numba start (target context)": t3 - t2,
    "first group(): kernels from the cache + run": t4 - t3,
    "second group() (the run alone)": t5 - t4,
}))
"""


def shared_dir() -> Path:
    env = os.environ.get("DRGKIT_SHARED")
    return Path(env) if env else REPO.parent / "shared"


def drgkit_command() -> list[str]:
    exe = Path(sys.executable).parent / "drgkit"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "drgkit.cli"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # this checkout's drgkit, unless PYTHONPATH names another (an A/B run: see the README)
    env.setdefault("PYTHONPATH", str(REPO))
    return env


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall s, cpu s, peak RSS MiB) of one process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(cmd)} failed: {err.decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def prepare(work: Path, shared: Path) -> dict[str, Path]:
    """10 oracle cases of CHS-DRG 1.1 (CSV) and 10 Suzhou claims (CSV). Runs in a child
    (``--prepare``): a child's peak RSS starts at its parent's size when it is spawned, so the
    measuring parent never imports pyarrow or drgkit before the measurements."""
    sys.path.insert(0, str(HERE))
    import pyarrow.csv as pacsv
    import settle_data

    lines = (shared / "oracle" / "chs_drg_11" / "cases.csv").read_text(encoding="utf-8")
    cases = work / "cases10.csv"
    cases.write_text("\n".join(lines.splitlines()[:11]) + "\n", encoding="utf-8")
    claims = work / "claims10.csv"
    pacsv.write_csv(settle_data.build(10), claims)
    return {"cases": cases, "claims": claims}


def expected_statuses(cases: Path, ruleset: Path) -> list[str]:
    import drgkit

    return [str(s) for s in drgkit.group(cases, ruleset).column("status").to_pylist()]


def check(out: Path, expected: list[str] | None) -> str:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if out.suffix == ".parquet":
        table = pq.read_table(out)
    else:
        table = pacsv.read_csv(
            out, convert_options=pacsv.ConvertOptions(column_types={"status": pa.string()})
        )
    if table.num_rows != 10:
        return f"FAILED: {table.num_rows} rows"
    if expected is not None:
        got = [str(s) for s in table.column("status").to_pylist()]
        if got != expected:
            return f"FAILED: statuses {got} != {expected}"
    return "ok"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="measured runs per command (>= 5)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)  # child: write the inputs
    args = ap.parse_args(argv)
    shared = shared_dir()
    if args.prepare:
        prepare(args.prepare, shared)
        return 0
    if not (shared / "rulesets" / "chs_drg_11").is_dir():
        print(f"reference data not found at {shared}; set DRGKIT_SHARED", file=sys.stderr)
        return 2
    drg = shared / "rulesets" / "chs_drg_11"
    suzhou = shared / "rulesets" / "suzhou_2023"
    weights = shared / "payment" / "suzhou-2023.csv"
    env = child_env()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    failed = False
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="drgkit-cold-") as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, __file__, "--prepare", str(work)], env=env, check=True)
        files = {"cases": work / "cases10.csv", "claims": work / "claims10.csv"}
        cli = drgkit_command()
        commands = {
            "group": (
                [*cli, "group", str(files["cases"]), "-r", str(drg), "-o", str(work / "g.csv")],
                work / "g.csv",
                True,
            ),
            "group_parquet": (
                [
                    *cli,
                    "group",
                    str(files["cases"]),
                    "-r",
                    str(drg),
                    "-o",
                    str(work / "g.parquet"),
                ],
                work / "g.parquet",
                True,
            ),
            "settle": (
                [
                    *cli,
                    "settle",
                    str(files["claims"]),
                    "-r",
                    str(suzhou),
                    "-p",
                    "suzhou-2023",
                    "--weights",
                    str(weights),
                    "-o",
                    str(work / "s.csv"),
                ],
                work / "s.csv",
                None,
            ),
            "import": ([sys.executable, "-c", "import drgkit.cli"], None, None),
            "python": ([sys.executable, "-c", "pass"], None, None),
        }
        for name, (cmd, _out, _want) in commands.items():
            if name not in ("import", "python"):
                cmd = [*cmd, "--silent"]
            run_once(cmd, env)  # fills the caches when they are empty; not measured
            samples = [run_once(cmd, env) for _ in range(max(5, args.runs))]
            walls = [s[0] for s in samples]
            results[name] = {
                "command": " ".join(cmd),
                "median_wall_s": statistics.median(walls),
                "min_wall_s": min(walls),
                "median_cpu_s": statistics.median(s[1] for s in samples),
                "peak_rss_mib": max(s[2] for s in samples),
                "runs": len(samples),
                "check": "-",
            }
        proc = subprocess.run(
            [sys.executable, "-c", _BREAKDOWN, str(drg), str(files["cases"])],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        line = [x for x in proc.stdout.splitlines() if x.startswith("BREAKDOWN ")][-1]
        breakdown = json.loads(line[len("BREAKDOWN ") :])
        # checks after the measurements (they import drgkit into this process)
        statuses = expected_statuses(files["cases"], drg)
        for name, (_cmd, out, want) in commands.items():
            if out is not None:
                verdict = check(out, statuses if want else None)
                results[name]["check"] = verdict
                failed |= verdict.startswith("FAILED")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print(
        f"{'command':<16}{'median wall s':>15}{'min wall s':>12}{'median cpu s':>14}"
        f"{'peak MiB':>10}  check"
    )
    for name, r in results.items():
        print(
            f"{name:<16}{r['median_wall_s']:>15.3f}{r['min_wall_s']:>12.3f}"
            f"{r['median_cpu_s']:>14.3f}{r['peak_rss_mib']:>10.0f}  {r['check']}"
        )
    print()
    print("where a 10-case group run's time goes (one fresh process, wall s):")
    for label, seconds in breakdown.items():
        print(f"    {label:<48}{seconds:>7.3f}")
    target = results["group"]["median_wall_s"]
    print()
    print(
        f"target <= 0.8 s wall for a 10-case run: group {target:.2f} s, settle "
        f"{results['settle']['median_wall_s']:.2f} s -> "
        + ("MET" if max(target, results["settle"]["median_wall_s"]) <= 0.8 else "NOT MET")
    )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"(this script's own peak RSS: {own} MiB)")
    if args.json:
        args.json.write_text(
            json.dumps({"results": results, "breakdown": breakdown}, indent=2), encoding="utf-8"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
