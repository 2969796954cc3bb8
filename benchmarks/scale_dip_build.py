#!/usr/bin/env python
"""How fast drgkit builds a local DIP catalogue from history.

    python benchmarks/scale_dip_build.py [--cases 10000000] [--seed 0] [--repeat 1]
                                         [--json FILE]

Three years of synthetic settled cases (``dip_history.py``, deterministic in ``--seed``) are
generated in this process; :func:`drgkit.catalogue._build.build_catalogue` is warmed up on
20,000 of them (numba compiles, or loads its cache) and then timed on all of them
(``--repeat`` times, best reported). Printed: generation and build seconds, cases/s, the
catalogue's size, the resident size before the build, the peak resident size during it
(sampled every 5 ms from /proc/self/statm) and the process's ``ru_maxrss``.

Checks (exit 1 if one fails; speed is never judged): every case is in exactly one packet or
excluded (Σ packet cases + excluded = rows), and packet_stats cases add up to the same total
(over the ``all`` rows, and over the per-level rows).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import dip_history  # noqa: E402

from drgkit.catalogue._build import BuildOptions, build_catalogue  # noqa: E402


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _Peak:
    def __init__(self) -> None:
        self.peak = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mib())

    def __enter__(self) -> _Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mib())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()

    t0 = time.perf_counter()
    table = dip_history.history(args.cases, seed=args.seed)
    gen_s = time.perf_counter() - t0
    opt = BuildOptions(procedure_attributes=dip_history.attributes())
    build_catalogue(table.slice(0, 20_000), opt)  # warm-up: numba compile / cache load

    rss_before = _rss_mib()
    times = []
    for _ in range(args.repeat):
        with _Peak() as peak:
            t0 = time.perf_counter()
            result = build_catalogue(table, opt)
            times.append(time.perf_counter() - t0)
    best = min(times)
    rep = result.report
    total = sum(result.packets.column("cases").to_pylist()) + sum(
        result.comprehensive.column("cases").to_pylist()
    )
    levels = result.packet_stats.column("hospital_level").to_pylist()
    stat_cases = result.packet_stats.column("cases").to_pylist()
    ok = (
        total + result.excluded.num_rows == table.num_rows
        and sum(c for lv, c in zip(levels, stat_cases, strict=True) if lv == "all") == total
        and sum(c for lv, c in zip(levels, stat_cases, strict=True) if lv != "all") == total
    )
    figures = {
        "cases": table.num_rows,
        "seed": args.seed,
        "generate_s": round(gen_s, 2),
        "build_s": round(best, 2),
        "build_runs_s": [round(t, 2) for t in times],
        "cases_per_s": round(table.num_rows / best),
        "combinations": result.combinations.num_rows,
        "core_packets": rep.core_packets,
        "comprehensive_packets": rep.comprehensive_packets,
        "core_coverage": round(float(rep.coverage), 4),
        "subtype_rows": result.subtypes.num_rows,
        "rss_before_mib": round(rss_before),
        "peak_rss_build_mib": round(peak.peak),
        "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "threads": os.cpu_count(),
        "checks_ok": ok,
    }
    for key, value in figures.items():
        print(f"{key:>22}: {value}")
    if args.json:
        with open(args.json, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(figures) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
