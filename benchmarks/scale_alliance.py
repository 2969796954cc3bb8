#!/usr/bin/env python
"""How fast drgkit splits alliance packages at the scale of a province, with checks.

    python benchmarks/scale_alliance.py [--cases 5000000] [--alliances 250] [--members 8]
                                        [--repeat 3] [--seed 0] [--volume cases|rw]
                                        [--share-by coefficient_volume|claims]
                                        [--no-reference] [--tracemalloc] [--json FILE]
                                        [--partitions N [--copies K] [--dask] [--workdir DIR]]

A synthetic province (``alliance_data.py``: ``--alliances`` × ``--members`` member hospitals,
plus ~5 % of the cases at hospitals in no alliance, ~4 % of the cases referred) is generated
in this process, then :func:`drgkit.alliance.split` is timed ``--repeat`` times on the same
Arrow table and model (best reported; the first call, on 20,000 cases, warms up and is
reported apart).

Baseline, in the same process and on the same table, timed the same way: a straightforward
pyarrow (Acero) group-by that computes only the *own-payment and claims totals*: per member
the settled cases and Σ payment of its settled cases (own payment); the up-referred parents it
loses (one hash self-join of ``referral_from`` to ``case_id``, keeping settled children in the
same alliance at a higher level whose parent id occurs once), so referred_up = −Σ their
payment; claims before transfers = own payment + referred_up; and Σ per alliance. It does
much less than split(): no link kinds or conflicts, no up/down share splits, chains or
rounding, no package, bands or allocations, no per-case output. Since transfers net to zero
inside an alliance, its per-alliance claims must equal split()'s, and its per-member own
payment must equal split()'s: both are checked.

Figures: wall seconds of split() (min of N, and every run), cases/s, and memory: the process's
``ru_maxrss`` (it includes generating the data), the resident size just before split() and the
peak resident size during split() (sampled every 2 ms from /proc/self/statm), so "added" is
what one split() call needs on top of its input; ``--tracemalloc`` adds one untimed run under
tracemalloc (peak of Python and numpy allocations; Arrow's own pool is not traced) and
pyarrow's pool growth.

Partitioned (``--partitions N``): the province is written as N Parquet files (``--copies K``:
K copies of it, every case id and referral source prefixed ``K<k>-`` so that links stay
inside a copy but cross its files; N/K files a copy) into ``--workdir`` (a temporary folder by
default), then :func:`drgkit.alliance.split_dataset` is timed once in this process
(``LocalRunner``) and, with ``--dask``, once on a local Dask cluster of 2 worker processes of 1
thread (started before the clock; the workers' peak RSS is asked of them). Checks: with one
copy, every output file is byte for byte the single-process split's (the small tables as
``AllianceSplit.write`` writes them, the case rows cut at the partitions' boundaries); with K
copies, every per-member count and sum that links decide (cases, own payment, referral columns,
claims) is K times the single-process one, the transfers are K times as many, and the case
rows of the first copy are the single-process rows with the prefix taken off. The Dask run's
files must equal the local run's byte for byte.

Checks (exit status 1 if one fails; speed is never judged): the accounting identities of the
split (``alliance_data.identities``: per member and per alliance, Σ member net = the alliance
net, Σ claims = Σ payment of the paid cases, package = claims + adjustment, bands, transfers and
items against the member columns); the baseline's figures; and unless ``--no-reference`` an
independent re-derivation from the input and the spec (``alliance_data.reference_check``: link
kinds, absorptions, every transfer amount with the largest-remainder rule, volumes, claims,
packages and allocations).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_data as B  # noqa: E402  (the source stamp)


def _maxrss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _rss_mib() -> float | None:
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return None


class RssSampler:
    """Peak resident size while the ``with`` block runs (a thread reading /proc every 2 ms)."""

    def __init__(self, every: float = 0.002) -> None:
        self.every = every
        self.before = self.peak = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = _rss_mib()
            if now is not None and self.peak is not None and now > self.peak:
                self.peak = now
            time.sleep(self.every)

    def __enter__(self) -> RssSampler:
        self.before = self.peak = _rss_mib()
        if self.before is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        now = _rss_mib()
        if now is not None and self.peak is not None:
            self.peak = max(self.peak, now)


def timed(fn, repeat: int):
    """(best s, every s, last result, (RSS before, peak RSS during) MiB of the run that added
    the most) over ``repeat`` calls."""
    walls, result, rss = [], None, None
    for _ in range(repeat):
        result = None  # let the previous result go before the next call
        gc.collect()
        with RssSampler() as s:
            t0 = time.perf_counter()
            result = fn()
            walls.append(time.perf_counter() - t0)
        if s.peak is not None and (rss is None or s.peak - s.before > rss[1] - rss[0]):
            rss = (s.before, s.peak)
    return min(walls), walls, result, rss


# ------------------------------------------------------------------------------ baseline


def members_table(model):
    import pyarrow as pa

    rows = [(a.id, m.hospital_id, m.level) for a in model.alliances for m in a.members]
    return pa.table(
        {
            "hospital_id": pa.array([r[1] for r in rows], pa.string()),
            "alliance_id": pa.array([r[0] for r in rows], pa.string()),
            "level": pa.array([r[2] for r in rows], pa.int8()),
        }
    )


def baseline(table, members):
    """Own payment and claims before transfers per member, and claims per alliance (pyarrow
    Acero joins and group-bys; see the module docstring). Returns (members, alliances)."""
    import pyarrow.compute as pc

    t = table.select(["case_id", "hospital_id", "settled", "payment", "referral_from"])
    t = t.append_column("row", _row_numbers(t.num_rows))
    t = t.join(members, "hospital_id", join_type="left outer")
    own = (
        t.filter(pc.and_(t["settled"], pc.is_valid(t["alliance_id"])))
        .group_by("hospital_id")
        .aggregate([("payment", "sum"), ("payment", "count")])
    )
    kids = (
        t.filter(pc.and_(t["settled"], pc.is_valid(t["referral_from"])))
        .select(["row", "referral_from", "alliance_id", "level"])
        .rename_columns(["c_row", "pid", "c_alliance", "c_level"])
    )
    par = t.select(["case_id", "hospital_id", "payment", "alliance_id", "level"]).rename_columns(
        ["p_case_id", "p_hospital", "p_payment", "p_alliance", "p_level"]
    )
    j = par.join(kids, keys="p_case_id", right_keys="pid", join_type="inner")
    once = j.group_by("c_row").aggregate([("c_row", "count")])
    once = once.filter(pc.equal(once["c_row_count"], 1)).select(["c_row"])
    j = j.join(once, "c_row", join_type="inner")
    j = j.filter(
        pc.and_(pc.equal(j["p_alliance"], j["c_alliance"]), pc.greater(j["c_level"], j["p_level"]))
    )
    absorbed = j.group_by("p_case_id").aggregate([("p_hospital", "min"), ("p_payment", "min")])
    lost = absorbed.group_by("p_hospital_min").aggregate([("p_payment_min", "sum")])
    return own, lost


def _row_numbers(n: int):
    import numpy as np
    import pyarrow as pa

    return pa.array(np.arange(n, dtype=np.int64))


def baseline_figures(own, lost, model):
    """{hospital: own payment cents}, {hospital: claims before transfers}, {alliance: claims}
    (cents) from the baseline's tables (a few thousand rows)."""
    from alliance_data import _int

    own_p = {r["hospital_id"]: _int(r["payment_sum"]) for r in own.to_pylist()}
    lost_p = {r["p_hospital_min"]: _int(r["p_payment_min_sum"]) for r in lost.to_pylist()}
    claims = {}
    per_alliance = {}
    for a in model.alliances:
        total = 0
        for m in a.members:
            h = m.hospital_id
            claims[h] = own_p.get(h, 0) - lost_p.get(h, 0)
            total += claims[h]
        per_alliance[a.id] = total
    return own_p, claims, per_alliance


# ------------------------------------------------------------------------------ partitioned


def _relabel(table, k: int):
    """A copy of the province with every case id and referral source prefixed ``K<k>-``."""
    import pyarrow.compute as pc

    prefix = f"K{k}-"
    for name in ("case_id", "referral_from"):
        col = table.column(name)
        table = table.set_column(
            table.schema.get_field_index(name),
            name,
            pc.binary_join_element_wise(prefix, col, ""),
        )
    return table


def _decoded(table):
    """The table with every dictionary column cast to its value type (no schema metadata)."""
    import pyarrow as pa

    cols = [
        c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns
    ]
    return pa.table(cols, names=table.column_names)


def write_dataset(table, folder: Path, parts: int, copies: int) -> int:
    """The dataset's files (``copies`` relabelled copies, ``parts // copies`` files each);
    returns the bytes written."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    per_copy = parts // copies
    n = table.num_rows
    cuts = [n * j // per_copy for j in range(per_copy + 1)]
    k = 0
    for c in range(copies):
        copy = table if copies == 1 else _relabel(table, c)
        for a, b in itertools.pairwise(cuts):
            pq.write_table(copy.slice(a, b - a), folder / f"cases-{k:05d}.parquet")
            k += 1
    return sum(f.stat().st_size for f in folder.glob("*.parquet"))


def _status_mib(key: str) -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak_rss() -> float:
    """Reset this process's peak RSS (VmHWM; Linux ≥ 4.0) and return the resident MiB."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")
    return _status_mib("VmRSS")


def _peak_rss() -> float:
    return _status_mib("VmHWM")


def _files_equal(a: list[Path], b: list[Path]) -> list[str]:
    out = []
    for x, y in zip(a, b, strict=True):
        if x.read_bytes() != y.read_bytes():
            out.append(f"{x} differs from {y}")
    return out


def _outputs(result, out: Path) -> list[Path]:
    return [Path(p) for p in result.files] + [Path(p) for p in result.paths]


def partitioned(args, table, model, res) -> tuple[list[str], dict]:
    """Time split_dataset locally (and on Dask) and check it (see the module docstring)."""
    import shutil
    import tempfile

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from drgkit._runners import DaskRunner, LocalRunner, partitions_of
    from drgkit.alliance import split_dataset
    from drgkit.alliance._dataset import split_as_parts

    work = Path(args.workdir or tempfile.mkdtemp(prefix="drgkit-alliance-"))
    work.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    figures: dict = {"partitions": args.partitions, "copies": args.copies}
    t0 = time.perf_counter()
    data = work / "in"
    if data.exists():
        shutil.rmtree(data)
    size = write_dataset(table, data, args.partitions, args.copies)
    figures["write_input_s"] = time.perf_counter() - t0
    rows = table.num_rows * args.copies
    print(
        f"\npartitioned: {rows:,} cases in {args.partitions} Parquet files "
        f"({size / 2**20:,.0f} MiB, {args.copies} cop{'y' if args.copies == 1 else 'ies'}) "
        f"written in {figures['write_input_s']:.1f} s to {data}"
    )

    def run(name: str, runner) -> tuple[object, float]:
        out = work / name
        if out.exists():
            shutil.rmtree(out)
        gc.collect()
        with RssSampler() as s:
            t0 = time.perf_counter()
            result = split_dataset(data, out, model, runner=runner)
            wall = time.perf_counter() - t0
        out_bytes = sum(p.stat().st_size for p in _outputs(result, out))
        figures[name] = {
            "seconds": wall,
            "cases_per_s": rows / wall,
            "rss_before_mib": s.before,
            "rss_peak_mib": s.peak,
            "output_mib": out_bytes / 2**20,
        }
        print(
            f"  split_dataset, {name:<6} {wall:>8.2f} s {rows / wall:>12,.0f} cases/s; driver "
            f"RSS {s.before:,.0f} -> {s.peak:,.0f} MiB; output {out_bytes / 2**20:,.0f} MiB"
        )
        return result, wall

    local, _ = run("local", LocalRunner())

    # ---- checks of the local run
    t0 = time.perf_counter()
    if args.copies == 1:
        ref = work / "single"
        if ref.exists():
            shutil.rmtree(ref)
        res.write(ref, "parquet")
        parts = split_as_parts(res, partitions_of(data), ref / "cases")
        want = [ref / f"{n}.parquet" for n in ("members", "alliances", "transfers", "items")]
        bad = _files_equal(_outputs(local, work / "local"), want + parts)
        what = "every file byte for byte the single-process split's"
    else:
        k = args.copies
        bad = []
        mine = {r["hospital_id"]: r for r in res.members.to_pylist()}
        for r in local.members.to_pylist():
            for col in (
                "cases",
                "settled_cases",
                "own_payment",
                "referred_up",
                "up_received",
                "up_paid_out",
                "down_received",
                "down_paid_out",
                "claims",
            ):
                if r[col] != mine[r["hospital_id"]][col] * k:
                    bad.append(f"member {r['hospital_id']} {col}: {r[col]} != {k} x single")
        if local.transfers.num_rows != k * res.transfers.num_rows:
            bad.append(f"{local.transfers.num_rows} transfers != {k} x {res.transfers.num_rows}")
        first = pa.concat_tables([pq.read_table(p) for p in local.paths[: args.partitions // k]])
        cols = []
        for name in first.column_names:
            col = first.column(name)
            if name in ("case_id", "parent_case_id", "absorbed_into"):
                col = pc.utf8_slice_codeunits(col, 3)
            cols.append(col)
        first = _decoded(pa.table(cols, names=first.column_names))
        # values, not dictionary layouts: a part file's dictionary holds the values of its
        # own rows, in the order they first occur there, the single split's those of all rows
        if not first.equals(_decoded(res.cases), check_metadata=False):
            bad.append("the first copy's case rows differ from the single-process rows")
        what = f"members and transfers {k}x the single split's, the first copy's rows its rows"
    print(
        f"  check {what} ({time.perf_counter() - t0:.1f} s): "
        + ("OK" if not bad else f"FAILED ({len(bad)})")
    )
    for line in bad[:20]:
        print(f"    {line}")
    failures += bad

    if args.dask:
        with DaskRunner(n_workers=2, threads_per_worker=1, processes=True) as runner:
            # a worker's high-water mark starts at its parent's (fork): reset it first
            before = runner.client.run(_reset_peak_rss)
            remote, _ = run("dask", runner)
            peaks = runner.client.run(_peak_rss)
        figures["dask"]["worker_rss_start_mib"] = sorted(before.values())
        figures["dask"]["worker_peak_rss_mib"] = sorted(peaks.values())
        print(
            "  dask workers' peak RSS: "
            + ", ".join(f"{v:,.0f} MiB" for v in sorted(peaks.values()))
            + " (at start "
            + ", ".join(f"{v:,.0f}" for v in sorted(before.values()))
            + ")"
        )
        bad = _files_equal(_outputs(remote, work / "dask"), _outputs(local, work / "local"))
        print(
            "  check Dask files = local files, byte for byte: "
            + ("OK" if not bad else f"FAILED ({len(bad)})")
        )
        failures += bad
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return failures, figures


# ------------------------------------------------------------------------------ main


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for p in ("drgkit", "numba", "numpy", "pyarrow"):
        try:
            out.append(f"{p} {version(p)}")
        except PackageNotFoundError:
            out.append(f"{p} absent")
    return ", ".join(out) + f", python {sys.version.split()[0]}; {os.cpu_count()} cpus"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cases", type=int, default=5_000_000)
    ap.add_argument("--alliances", type=int, default=250)
    ap.add_argument("--members", type=int, default=8, help="members per alliance")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs, best reported")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--volume", choices=("cases", "rw"), default="cases")
    ap.add_argument(
        "--share-by", choices=("coefficient_volume", "claims"), default="coefficient_volume"
    )
    ap.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the independent re-derivation (the identities still run)",
    )
    ap.add_argument(
        "--tracemalloc", action="store_true", help="one more (untimed) split() under tracemalloc"
    )
    ap.add_argument("--json", help="write the figures as one JSON object to this file")
    ap.add_argument(
        "--partitions", type=int, default=0, help="also time split_dataset over N Parquet files"
    )
    ap.add_argument(
        "--copies", type=int, default=1, help="the partitioned dataset is K relabelled copies"
    )
    ap.add_argument("--dask", action="store_true", help="also on a local Dask cluster")
    ap.add_argument("--workdir", help="folder for the partitioned input and outputs")
    args = ap.parse_args(argv)
    if args.partitions and args.partitions % max(1, args.copies):
        ap.error("--partitions must be a multiple of --copies")

    import alliance_data as D
    import pyarrow as pa
    import pyarrow.compute as pc

    from drgkit.alliance import split

    stamp, newest = B.source_stamp()
    print(f"drgkit alliance split scale benchmark — {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"versions: {_versions()}")
    print(
        f"drgkit source as of {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(stamp))} "
        f"(newest file: {newest})"
    )
    print("load average before the run: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    rss0 = _maxrss_mib()

    t0 = time.perf_counter()
    prov = D.generate(
        args.cases,
        args.alliances,
        args.members,
        args.seed,
        volume=args.volume,
        share_by=args.share_by,
    )
    gen_s = time.perf_counter() - t0
    table, model = prov.table, prov.model
    n = table.num_rows
    n_members = sum(len(a.members) for a in model.alliances)
    refs = n - table.column("referral_from").null_count
    print(
        f"\nprovince: {n:,} cases, {len(model.alliances)} alliances, {n_members:,} members, "
        f"{prov.outside_rows:,} cases at hospitals in no alliance, {refs:,} with "
        f"referral_from ({refs / n:.1%}); volume = {args.volume}, share_by = "
        f"{args.share_by}; input {table.nbytes / 2**20:,.0f} MiB; generated in {gen_s:.1f} s"
    )
    print("  planned referral rows: " + ", ".join(f"{k} {v:,}" for k, v in prov.planned.items()))
    rss_gen = _maxrss_mib()

    # ---- warm-up (JIT, imports) on a slice, then the timed runs
    small = table.slice(0, min(n, 20_000))
    t0 = time.perf_counter()
    split(small, model)
    first_s = time.perf_counter() - t0
    best, walls, res, rss = timed(lambda: split(table, model), args.repeat)
    rss_split = _maxrss_mib()

    members = members_table(model)
    b_best, b_walls, (own, lost), b_rss = timed(lambda: baseline(table, members), args.repeat)

    trace = None
    if args.tracemalloc:
        import tracemalloc

        gc.collect()
        pool0 = pa.total_allocated_bytes()
        tracemalloc.start()
        kept = split(table, model)
        _cur, tpeak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        trace = {
            "tracemalloc_peak_mib": tpeak / 2**20,
            "arrow_pool_growth_mib": (pa.total_allocated_bytes() - pool0) / 2**20,
        }
        del kept

    # ---- report
    rate, b_rate = n / best, n / b_best
    print(f"\n{'':<44} {'wall s':>8} {'cases/s':>12}  runs")
    print(
        f"{'split() (first call, 20,000 cases: warm-up)':<44} {first_s:>8.3f} "
        f"{min(n, 20_000) / first_s:>12,.0f}"
    )
    print(
        f"{'split(), best of ' + str(args.repeat):<44} {best:>8.3f} {rate:>12,.0f}  "
        + " ".join(f"{w:.3f}" for w in walls)
    )
    print(
        f"{'baseline (pyarrow group-by), best of ' + str(args.repeat):<44} {b_best:>8.3f} "
        f"{b_rate:>12,.0f}  " + " ".join(f"{w:.3f}" for w in b_walls)
    )
    print(
        f"\nsplit() / baseline: {rate / b_rate:.2f}x the baseline's cases/s "
        f"(split() takes {best / b_best:.2f}x the baseline's time; the baseline does less, "
        "see --help)"
    )
    print(
        f"\nmemory: process peak (ru_maxrss) {rss_split:,.0f} MiB (start {rss0:,.0f}, after "
        f"generating the data {rss_gen:,.0f});"
    )
    if rss is not None:
        print(
            f"  split(): resident {rss[0]:,.0f} MiB before, peak {rss[1]:,.0f} MiB during "
            f"(+{rss[1] - rss[0]:,.0f} MiB; the run that added most); baseline: "
            f"{b_rss[0]:,.0f} -> {b_rss[1]:,.0f} MiB (+{b_rss[1] - b_rss[0]:,.0f}; with "
            "split()'s result alive)"
        )
    if trace:
        print(
            f"  tracemalloc peak of one split() {trace['tracemalloc_peak_mib']:,.0f} MiB "
            f"(Python + numpy); Arrow pool growth {trace['arrow_pool_growth_mib']:,.0f} MiB "
            "(the result tables)"
        )
    print(
        f"  result: cases {res.cases.nbytes / 2**20:,.0f} MiB, transfers "
        f"{res.transfers.num_rows:,} rows, items {res.items.num_rows:,} rows"
    )

    links = pc.value_counts(res.cases.column("link").combine_chunks()).to_pylist()
    print(
        "\nlinks: "
        + ", ".join(
            f"{d['values']} {d['counts']:,}" for d in sorted(links, key=lambda d: -d["counts"])
        )
    )
    al = res.alliances.to_pylist()
    with_budget = [r for r in al if r["budget"] is not None]
    print(
        f"alliances: {len(al)}, with a budget {len(with_budget)} (surplus "
        f"{sum(1 for r in with_budget if D._int(r['surplus']) > 0)}, over-spend "
        f"{sum(1 for r in with_budget if D._int(r['overspend']) > 0)}); paid cases "
        f"{sum(r['paid_cases'] for r in al):,}, absorbed "
        f"{sum(r['absorbed_cases'] for r in al):,}"
    )

    # ---- checks
    failures: list[str] = []
    t0 = time.perf_counter()
    bad, counts = D.identities(res, table)
    print(
        f"\ncheck identities ({counts['alliances']} alliances, {counts['members']:,} members, "
        f"{counts['transfers']:,} transfers, {counts['items']:,} items; "
        f"{time.perf_counter() - t0:.1f} s): " + ("OK" if not bad else f"FAILED ({len(bad)})")
    )
    for line in bad[:20]:
        print(f"    {line}")
    failures += bad

    own_p, _claims, per_alliance = baseline_figures(own, lost, model)
    got_m = {r["hospital_id"]: r for r in res.members.to_pylist()}
    bad = [
        f"member {h}: own_payment {D._int(got_m[h]['own_payment'])}, baseline {v}"
        for h, v in own_p.items()
        if D._int(got_m[h]["own_payment"]) != v
    ]
    bad += [
        f"alliance {r['alliance_id']}: claims {D._int(r['claims'])}, baseline "
        f"{per_alliance[r['alliance_id']]}"
        for r in al
        if D._int(r["claims"]) != per_alliance[r["alliance_id"]]
    ]
    print(
        "check split() = baseline (own payment per member, claims per alliance): "
        + ("OK" if not bad else f"FAILED ({len(bad)})")
    )
    for line in bad[:20]:
        print(f"    {line}")
    failures += bad

    figures = None
    if not args.no_reference:
        t0 = time.perf_counter()
        bad, figures = D.reference_check(res, table, model)
        print(
            f"check against an independent re-derivation ({figures['transfers']:,} "
            f"transfers, {figures['absorbed']:,} absorbed, {figures['paid']:,} paid; "
            f"{time.perf_counter() - t0:.1f} s): " + ("OK" if not bad else f"FAILED ({len(bad)})")
        )
        for line in bad[:30]:
            print(f"    {line[:1500]}")
        if figures["links_of_rows_in_no_alliance"]:
            print(
                "  links of referred rows at hospitals in no alliance (not checked): "
                + ", ".join(f"{k} {v}" for k, v in figures["links_of_rows_in_no_alliance"].items())
            )
        failures += bad

    parted = None
    if args.partitions:
        bad, parted = partitioned(args, table, model, res)
        failures += bad

    if B.source_stamp()[0] != stamp:
        failures.append("drgkit's source changed during the run: the figures mix versions")
    print("\nload average after the run: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.json:
        out = {
            "cases": n,
            "alliances": len(model.alliances),
            "members": n_members,
            "volume": args.volume,
            "share_by": args.share_by,
            "generate_s": gen_s,
            "first_call_s": first_s,
            "seconds": best,
            "all_seconds": walls,
            "cases_per_s": rate,
            "baseline_seconds": b_best,
            "baseline_all_seconds": b_walls,
            "baseline_cases_per_s": b_rate,
            "ratio_to_baseline": rate / b_rate,
            "peak_rss_mib": rss_split,
            "rss_before_split_mib": rss and rss[0],
            "rss_peak_split_mib": rss and rss[1],
            "baseline_rss_mib": b_rss,
            "tracemalloc": trace,
            "failures": failures[:50],
            "links": {d["values"]: d["counts"] for d in links},
            "partitioned": parted,
        }
        Path(args.json).write_text(json.dumps(out, default=str, indent=1), encoding="utf-8")
        print(f"wrote {args.json}")
    if failures:
        print(f"\nFAILED: {len(failures)} check(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
