#!/usr/bin/env python
"""National scale: generate N cases, then group + settle them, partitioned Parquet to Parquet.

    python benchmarks/scale_100m.py --rows 100000000 --dir /path/to/work [--seed 20231]
        [--hospitals 300] [--rows-per-file 1000000] [--threads 2] [--sample 3000]
        [--ruleset chs_drg_11] [--json FILE]

1. **Generate** (skipped when ``DIR/cases`` already holds this dataset: its
   ``_generated.json`` names the same rows, seed and hospitals): ``drgkit demo generate``
   writes ``DIR/cases/part-NNNNN.parquet`` (chs_drg_11 code lists, 300 hospitals, priced
   with the Suzhou 2023 table).
2. **Group + settle** (always): :func:`drgkit.settlement._bulk.settle_dataset` of that
   folder under policy ``suzhou-2023`` (rate method, the published table
   ``payment/suzhou-2023.csv``), grouping with ``rulesets/chs_drg_11``, into
   ``DIR/settled/part-NNNNN.parquet`` (the path of ``drgkit settle --partitions``).

Each step runs in a child process of this script (``--step``), which prints one JSON line:
wall time, cases/s, peak RSS of its whole process tree (its own ``ru_maxrss`` and that of
any child it waited for), bytes written. Then the parent checks correctness (exit 1 on a
failure; speed is never judged):

- reconciliation: rows in = rows out (a settled file has one row per input row, rejected or
  not; the settlement's own count of rows equals the input's), per part and in total; the
  payment sum of every output part equals the manifest's per-part summary, and the total the
  run reported;
- the grouping of ``--sample`` rows spread over the dataset, against the naive grouper of
  ``tests/naive.py`` (written from the format specification only): same status and DRG;
- the first part settled again by :func:`drgkit.settle` in one process: the same payment
  for every case, to the cent.

Reference data: ``$DRGKIT_SHARED`` or ``../shared`` next to the repository, read in place.
Check the free disk first: 100M cases take about 4.5 GB of input and about as much output.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MARK = "SCALE-JSON "
POLICY = "suzhou-2023"


def shared_dir() -> Path:
    env = os.environ.get("DRGKIT_SHARED")
    return Path(env) if env else REPO.parent / "shared"


def _peak_rss_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rss = max(own, kids)
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and the children it waited for: on a
    shared machine, wall time says how busy the host was, CPU time what the step cost."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _emit(payload: dict) -> None:
    payload.setdefault("peak_rss_mib", round(_peak_rss_mib(), 1))
    payload.setdefault("cpu_s", round(_cpu_s(), 1))
    sys.stdout.write(MARK + json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.parquet"))


# ============================================================================ child steps


def step_generate(args) -> None:
    from drgkit import _generate as G

    out = Path(args.dir) / "cases"
    t0 = time.perf_counter()
    gen = G.national(
        args.rows,
        seed=args.seed,
        ruleset=str(shared_dir() / "rulesets" / args.ruleset),
        hospitals=args.hospitals,
    )
    prepare = time.perf_counter() - t0
    G.write_dataset(
        gen,
        out,
        rows_per_file=args.rows_per_file,
        threads=args.threads,
        options=_options(args),
    )
    wall = time.perf_counter() - t0
    _emit(
        {
            "step": "generate",
            "rows": args.rows,
            "wall_s": round(wall, 2),
            "prepare_s": round(prepare, 2),
            "cases_per_s": round(args.rows / (wall - prepare)),
            "bytes": _folder_bytes(out),
            "files": len(list(out.glob("part-*.parquet"))),
        }
    )


def step_settle(args) -> None:
    import warnings

    from drgkit.settlement._bulk import settle_dataset

    os.environ.setdefault("NUMBA_NUM_THREADS", str(args.threads))
    src, out = Path(args.dir) / "cases", Path(args.dir) / "settled"
    shared = shared_dir()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # data warnings (unknown codes…) are expected
        result = settle_dataset(
            src,
            out,
            POLICY,
            str(shared / "rulesets" / args.ruleset),
            weights=shared / "payment" / f"{POLICY}.csv",
            threads=args.threads,
            overwrite=True,
            check_duplicates=not args.no_duplicate_check,
        )
    wall = time.perf_counter() - t0
    _emit(
        {
            "step": "settle",
            "rows": result.rows,
            "wall_s": round(wall, 2),
            "cases_per_s": round(result.rows / wall),
            "bytes": _folder_bytes(out),
            "parts": len(result.paths),
            "payment_cents": result.total("payment"),
            "settled": result.total("settled"),
            "cases": result.total("cases"),
        }
    )


# ============================================================================ parent


def _options(args) -> dict:
    return {"seed": args.seed, "hospitals": args.hospitals, "ruleset": args.ruleset}


def _child(args, step: str) -> dict:
    cmd = [sys.executable, __file__, "--step", step, *sys.argv[1:]]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"step {step} failed (exit {proc.returncode})")
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    raise SystemExit(f"step {step} printed no result:\n{proc.stdout}\n{proc.stderr}")


def _naive_record(row: dict) -> dict:
    return {
        "gender": row["sex"],
        "age": row["age"],
        "ageDay": row["age_days"],
        "weight": row["birth_weight"],
        "dept": row["department"],
        "inHospitalTime": row["los"],
        "leavingType": row["leaving_type"],
        "ICD10_DRGS": ",".join(row["diagnoses"] or []),
        "ICD9_DRGS": ",".join(row["procedures"] or []),
    }


def check(args, settle_result: dict) -> list[str]:
    """The correctness checks (see the module doc); returns the failures."""
    import warnings

    import numpy as np
    import pyarrow.parquet as pq

    from drgkit._money import sum_cents
    from drgkit._runners import Manifest

    failures: list[str] = []
    src, out = Path(args.dir) / "cases", Path(args.dir) / "settled"
    inputs = sorted(src.glob("part-*.parquet"))
    outputs = sorted(out.glob("part-*.parquet"))
    if len(inputs) != len(outputs):
        failures.append(f"{len(inputs)} input parts but {len(outputs)} output parts")
    manifest = Manifest.read(out)
    rows_in = rows_out = 0
    pay_total = 0
    for k, (a, b) in enumerate(zip(inputs, outputs, strict=False)):
        n_in = pq.ParquetFile(a).metadata.num_rows
        n_out = pq.ParquetFile(b).metadata.num_rows
        rows_in, rows_out = rows_in + n_in, rows_out + n_out
        if n_in != n_out:
            failures.append(f"part {k}: {n_in} rows in, {n_out} out")
        paid = sum_cents(pq.read_table(b, columns=["payment"]).column("payment").combine_chunks())
        pay_total += paid
        record = manifest.parts.get(k) if manifest is not None else None
        if record is not None:
            summary_paid = sum(h["payment"] for h in record.info["hospitals"].values())
            if summary_paid != paid:
                failures.append(f"part {k}: payments {paid} but its summary says {summary_paid}")
    if rows_in != args.rows or rows_out != args.rows or settle_result["rows"] != args.rows:
        failures.append(f"rows: generated {args.rows}, in {rows_in}, out {rows_out}")
    if pay_total != settle_result["payment_cents"]:
        failures.append(f"payments: parts {pay_total}, run total {settle_result['payment_cents']}")

    # the grouping of a sample against the naive grouper
    sys.path.insert(0, str(REPO / "tests"))
    from naive import NaiveRuleset

    naive = NaiveRuleset.load(shared_dir() / "rulesets" / args.ruleset)
    per_part = max(1, args.sample // max(1, len(inputs)))
    compared = mismatched = 0
    for a, b in zip(inputs, outputs, strict=False):
        n = pq.ParquetFile(a).metadata.num_rows
        rows = np.unique(np.linspace(0, n - 1, min(n, per_part)).astype(np.int64))
        cases = pq.read_table(a).take(rows).to_pylist()
        got = pq.read_table(b, columns=["status", "drg", "reason"]).take(rows).to_pylist()
        for case, res in zip(cases, got, strict=True):
            if res["reason"] == "duplicate_case_id":
                continue  # a check across cases, which the one-case naive grouper cannot make
            status, _mdc, _adrg, drg = naive.group(_naive_record(case), checks="drgkit")
            compared += 1
            # the naive grouper says SUCCESS where drgkit says ok; both must agree on the DRG
            if (res["status"] == "ok") != (status == "SUCCESS") or (
                status == "SUCCESS" and drg != res["drg"]
            ):
                mismatched += 1
    if mismatched:
        failures.append(f"naive grouper: {mismatched} of {compared} sampled cases differ")

    # the first part settled again in one process
    from drgkit.settlement import settle

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = settle(
            pq.read_table(inputs[0]),
            POLICY,
            str(shared_dir() / "rulesets" / args.ruleset),
            weights=shared_dir() / "payment" / f"{POLICY}.csv",
            check_duplicates=not args.no_duplicate_check,
        )
    part = pq.read_table(outputs[0], columns=["case_id", "payment"])
    same_ids = part.column("case_id").equals(again.column("case_id"))
    same_pay = part.column("payment").equals(again.column("payment"))
    if not (same_ids and same_pay):
        failures.append("part 0: settle() in one process differs from the partitioned output")
    print(
        f"checks: {rows_in:,} rows in = {rows_out:,} out over {len(inputs)} parts; payment "
        f"sums per part = summaries = run total ({pay_total / 100:,.2f} yuan); naive "
        f"grouper on {compared:,} sampled cases: {mismatched} differ; part 0 re-settled in "
        f"one process: {'identical' if same_ids and same_pay else 'DIFFERENT'}"
    )
    return failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dir", required=True, help="work folder (cases/ and settled/ inside)")
    ap.add_argument("--seed", type=int, default=20231)
    ap.add_argument(
        "--ruleset",
        default="chs_drg_11",
        help="ruleset under <shared>/rulesets the cases are drawn from and grouped with",
    )
    ap.add_argument("--hospitals", type=int, default=300)
    ap.add_argument("--rows-per-file", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sample", type=int, default=3000)
    ap.add_argument(
        "--no-duplicate-check",
        action="store_true",
        help="settle without the dataset-wide duplicate case-id check (its id set is what "
        "grows with the number of cases)",
    )
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--step", choices=["generate", "settle"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.step == "generate":
        step_generate(args)
        return 0
    if args.step == "settle":
        step_settle(args)
        return 0

    from drgkit import _generate as G

    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(work).free
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average: {load}; free disk at {work}: {free / 2**30:.1f} GiB")
    need = args.rows * 100  # about 45 bytes per case in, as much out, plus room
    if free < need:
        print(f"not enough free disk: need about {need / 2**30:.1f} GiB")
        return 2
    manifest = G.read_manifest(work / "cases")
    wanted = {"rows": args.rows, "generator": G.GENERATOR_VERSION, **_options(args)}
    figures: dict = {"rows": args.rows, "cpus": os.cpu_count(), "load": os.getloadavg()}
    if manifest is not None and all(manifest.get(k) == v for k, v in wanted.items()):
        print(f"cases: {work / 'cases'} already holds these {args.rows:,} cases")
    else:
        shutil.rmtree(work / "cases", ignore_errors=True)
        figures["generate"] = gen = _child(args, "generate")
        print(
            f"generate: {gen['rows']:,} cases in {gen['wall_s']} s ({gen['cases_per_s']:,} "
            f"cases/s after {gen['prepare_s']} s preparing; {gen['cpu_s']} s CPU), peak RSS "
            f"{gen['peak_rss_mib']} MiB, {gen['bytes'] / 2**20:,.0f} MiB in {gen['files']} files"
        )
    figures["settle"] = st = _child(args, "settle")
    print(
        f"group + settle: {st['rows']:,} cases in {st['wall_s']} s ({st['cases_per_s']:,} "
        f"cases/s; {st['cpu_s']} s CPU), peak RSS {st['peak_rss_mib']} MiB, "
        f"{st['bytes'] / 2**20:,.0f} MiB written in {st['parts']} parts; "
        f"{st['settled']:,} settled"
    )
    failures = check(args, st)
    figures["failures"] = failures
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    for f in failures:
        print("FAILED:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
