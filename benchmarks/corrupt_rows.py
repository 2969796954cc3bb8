"""Corruption script: damage 5% of a valid case CSV in many ways and account for every row.

Not a test and not timed. It generates a valid case file with the demo ruleset's codes
(:func:`drgkit._demo.generate_cases`), damages a fraction of its data lines in at least 12
distinct ways, groups it with ``drgkit group`` (the CLI, in a subprocess, with ``--rejects``
when the CLI has it) or, with ``--library``, with :func:`drgkit.group_file` in this process,
and prints the accounting:

* physical lines == 1 (header) + rows in + blank lines,
* rows in == rows out + rows rejected (out: the output file's rows, rejected: the rejects
  file's rows),
* per damage kind, where each damaged line ended up: in the rejects file (with which reason)
  or in the output (with which status/reason).

Every output row is matched back to its input line: the output holds exactly the lines that
were neither rejected nor blank, in input order, so each damaged line's fate is known exactly.

Run::

    python benchmarks/corrupt_rows.py --rows 1000000 [--fraction 0.05] [--seed 7] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]

#: damage kinds, applied in turn to the chosen lines. "huge_field" is capped (each one is
#: 2 MB) and "truncated_last_line" happens once, to the last line.
KINDS = (
    "unclosed_quote",  # a quoted field that never closes
    "extra_field",  # one field too many
    "missing_field",  # one field too few
    "bad_utf8",  # bytes that are not UTF-8 in the case id
    "nul_byte",  # a NUL byte in a field
    "wrong_delimiter",  # ';' instead of ',' on this line
    "stray_cr",  # a bare carriage return inside the line
    "blank_line_before",  # an empty line inserted before this (good) line
    "crlf",  # this line ends in CRLF, the others in LF
    "text_in_numeric",  # the age is text
    "duplicate_id",  # the case id of an earlier line
    "missing_id",  # an empty case id
    "huge_field",  # a 2 MB diagnoses field
)
HUGE_FIELD_CAP = 3
HUGE_FIELD_CHARS = 2_000_000


def make_clean_csv(rows: int, seed: int, path: Path) -> tuple[pa.Table, list[str]]:
    """A valid case CSV (every string quoted, as pyarrow writes it); returns the table and
    the header."""
    from drgkit import _demo
    from drgkit._write import _plain_for_csv

    table = _demo.generate_cases(rows, seed=seed, bad_fraction=0.0)
    plain = _plain_for_csv(table)
    pacsv.write_csv(plain, path)
    return table, plain.schema.names


def damage(
    clean: Path, damaged: Path, header: list[str], fraction: float, seed: int
) -> tuple[dict[int, str], int]:
    """Write ``damaged`` from ``clean``; returns {data index (0-based): kind} and the number of
    blank lines inserted."""
    lines = clean.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    head, data = lines[0], lines[1:]
    n = len(data)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(n - 1, size=max(len(KINDS), int(n * fraction)) - 1, replace=False))
    age = header.index("age")
    diag = header.index("diagnoses")
    kinds: dict[int, str] = {}
    huge = 0
    k = 0
    for i in chosen.tolist():
        kind = KINDS[k % len(KINDS)]
        k += 1
        if kind == "huge_field":
            if huge >= HUGE_FIELD_CAP:
                kind = KINDS[k % len(KINDS)]
                k += 1
            else:
                huge += 1
        kinds[i] = kind
    kinds[n - 1] = "truncated_last_line"
    first_id = data[0].split(b",", 1)[0]
    out: list[bytes] = [head]
    blanks = 0
    for i, line in enumerate(data):
        kind = kinds.get(i)
        if kind is None:
            out.append(line)
            continue
        fields = line.split(b",")  # the generator never puts a comma inside a field
        if kind == "unclosed_quote":
            fields[-1] = b'"never closed'
            line = b",".join(fields)
        elif kind == "extra_field":
            line += b',"extra"'
        elif kind == "missing_field":
            line = b",".join(fields[:-1])
        elif kind == "bad_utf8":
            line = line[:2] + b"\xff\xfe" + line[2:]
        elif kind == "nul_byte":
            fields[age] = b'"4\x000"'
            line = b",".join(fields)
        elif kind == "wrong_delimiter":
            line = b";".join(fields)
        elif kind == "stray_cr":
            fields[age] = b'"4\r0"'
            line = b",".join(fields)
        elif kind == "blank_line_before":
            out.append(b"")
            blanks += 1
        elif kind == "crlf":
            line += b"\r"
        elif kind == "text_in_numeric":
            fields[age] = b'"forty"'
            line = b",".join(fields)
        elif kind == "duplicate_id":
            fields[0] = first_id
            line = b",".join(fields)
        elif kind == "missing_id":
            fields[0] = b'""'
            line = b",".join(fields)
        elif kind == "huge_field":
            fields[diag] = b'"' + b"K" * HUGE_FIELD_CHARS + b'"'
            line = b",".join(fields)
        elif kind == "truncated_last_line":
            # the file stops inside the quoted diagnoses field (whatever the columns after it)
            line = b",".join([*fields[:diag], b'"' + fields[diag].strip(b'"')[:3]])
        out.append(line)
    # the truncated last line has no newline: the file simply stops
    damaged.write_bytes(b"\n".join(out))
    return kinds, blanks


def _cli_has_rejects() -> bool:
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("drgkit")), "group", "--help"],
        capture_output=True,
        text=True,
        env=_env(),
    )
    return "--rejects" in proc.stdout


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def group(damaged: Path, out: Path, rejects: Path, library: bool) -> dict[str, Any]:
    """Group ``damaged``; returns how (cli/library) and the run's own summary when known."""
    if library or not _cli_has_rejects():
        import warnings

        import drgkit

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary = drgkit.group_file(damaged, out, "demo_2024", rejects=rejects)
        return {
            "via": "drgkit.group_file",
            "rows_in": summary.rows_in,
            "rows_out": summary.rows_out,
            "rows_rejected": summary.rows_rejected,
            "blank_lines": summary.blank_lines,
        }
    cmd = [
        str(Path(sys.executable).with_name("drgkit")),
        "group",
        str(damaged),
        "-r",
        "demo_2024",
        "-o",
        str(out),
        "--rejects",
        str(rejects),
        "--silent",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    if proc.returncode != 0:
        raise SystemExit(f"drgkit group failed ({proc.returncode}):\n{proc.stderr}")
    return {"via": "drgkit group (CLI)"}


def account(
    damaged: Path, out: Path, rejects: Path, kinds: dict[int, str], blanks: int, n_clean: int
) -> dict[str, Any]:
    """Match every output row and every reject back to its input line; per kind outcomes."""
    raw = damaged.read_bytes()
    physical = raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)
    result = pq.read_table(out, columns=["case_id", "status", "reason"])
    # the raw text of a rejected line may hold a carriage return (quoted in the CSV)
    rej = pacsv.read_csv(
        rejects,
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={"line": pa.int64(), "reason": pa.string(), "text": pa.string()}
        ),
    )
    rejected_lines = dict(
        zip(rej.column("line").to_pylist(), rej.column("reason").to_pylist(), strict=True)
    )
    # physical line of each data index: +2 for the header and 1-based numbering, +1 for every
    # blank line inserted before it
    line_of: list[int] = []
    extra = 0
    for i in range(n_clean):
        if kinds.get(i) == "blank_line_before":
            extra += 1
        line_of.append(i + 2 + extra)
    kept = [i for i in range(n_clean) if line_of[i] not in rejected_lines]
    status = result.column("status").to_pylist()
    reason = pc.fill_null(result.column("reason").cast(pa.string()), "").to_pylist()
    if len(kept) != result.num_rows:
        raise SystemExit(
            f"output has {result.num_rows} rows but {len(kept)} lines were "
            "neither rejected nor blank: a row is lost or invented"
        )
    row_of = {i: k for k, i in enumerate(kept)}
    outcomes: dict[str, Counter] = {kind: Counter() for kind in (*KINDS, "truncated_last_line")}
    for i, kind in kinds.items():
        line = line_of[i]
        if line in rejected_lines:
            outcomes[kind][f"rejects file: {rejected_lines[line]}"] += 1
        else:
            k = row_of[i]
            outcomes[kind][f"output: {status[k]}" + (f"/{reason[k]}" if reason[k] else "")] += 1
    rows_in = physical - 1 - blanks
    return {
        "physical_lines": physical,
        "blank_lines": blanks,
        "rows_in": rows_in,
        "rows_out": result.num_rows,
        "rows_rejected": rej.num_rows,
        "balanced": rows_in == result.num_rows + rej.num_rows,
        "damaged_lines": len(kinds),
        "outcomes": {k: dict(v) for k, v in outcomes.items() if v},
    }


def run(
    rows: int,
    seed: int = 7,
    fraction: float = 0.05,
    workdir: Path | None = None,
    library: bool = False,
) -> dict[str, Any]:
    """Generate, damage, group and account; returns the report (see :func:`account`)."""
    own = workdir is None
    folder = Path(tempfile.mkdtemp(prefix="drgkit-corrupt-")) if own else Path(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        clean, damaged = folder / "clean.csv", folder / "damaged.csv"
        out, rejects = folder / "grouped.parquet", folder / "rejects.csv"
        t0 = time.perf_counter()
        _table, header = make_clean_csv(rows, seed, clean)
        kinds, blanks = damage(clean, damaged, header, fraction, seed)
        t1 = time.perf_counter()
        run_info = group(damaged, out, rejects, library)
        t2 = time.perf_counter()
        report = account(damaged, out, rejects, kinds, blanks, rows)
        report["run"] = run_info
        report["seconds"] = {"generate_and_damage": round(t1 - t0, 1), "group": round(t2 - t1, 1)}
        return report
    finally:
        if own:
            shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="keep the files in this folder")
    parser.add_argument(
        "--library", action="store_true", help="call drgkit.group_file instead of the drgkit CLI"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = run(args.rows, args.seed, args.fraction, args.keep, args.library)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if report["balanced"] else 1
    print(f"grouped via {report['run']['via']}")
    print(
        f"physical lines   {report['physical_lines']:>12,}  (1 header + rows in + "
        f"{report['blank_lines']:,} blank)"
    )
    print(f"rows in          {report['rows_in']:>12,}")
    print(f"rows out         {report['rows_out']:>12,}")
    print(f"rows rejected    {report['rows_rejected']:>12,}")
    print(f"in == out + rejected: {report['balanced']}")
    print(f"damaged lines    {report['damaged_lines']:>12,}  ({len(report['outcomes'])} kinds)")
    for kind, where in report["outcomes"].items():
        parts = ", ".join(f"{n:,} {what}" for what, n in sorted(where.items()))
        print(f"  {kind:<20} {parts}")
    print(f"seconds: {report['seconds']}")
    return 0 if report["balanced"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
