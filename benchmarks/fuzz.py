"""Fuzz drgkit's input doors: case files, ruleset folders, policy and alliance model files.

Each *target* turns a random generator into one hostile input, feeds it to drgkit and checks
the one property every door must keep: the call either raises a drgkit error (a
:class:`~drgkit.errors.DrgkitError` with a message) or returns a result in which every input
row is accounted for. Any other exception, an empty error message or a lost row is a failure.

The generators take any object with the :class:`random.Random` interface, so the same code
runs under Hypothesis (``tests/test_fuzz.py`` passes ``st.randoms()``, which shrinks) and here
with plain seeded ``random.Random`` objects, without Hypothesis overhead::

    python benchmarks/fuzz.py --inputs 1000000          # every target, shares by weight
    python benchmarks/fuzz.py --inputs 2000 --target csv --seed 7

An *input* is one hostile record: a row of a generated case file (each file holds up to
``--max-rows`` rows, some damaged), or one whole ruleset folder, policy or alliance model file.
It prints how many inputs ran, the outcomes by type, and each failure with its seed (rerun one
with ``--target T --seed S --inputs 1``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import random
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import drgkit  # noqa: E402
from drgkit.errors import DrgkitError  # noqa: E402
from drgkit.schema import LAYOUTS  # noqa: E402

DEMO_RULESET = REPO / "rulesets" / "demo" / "2024"
DEMO_POLICY = REPO / "drgkit" / "policies" / "demo.toml"
DEMO_ALLIANCE = REPO / "drgkit" / "alliances" / "demo.toml"

# ------------------------------------------------------------------------------ values

#: field values that have broken parsers somewhere: signs, exponents, huge, unicode, NUL
NASTY = [
    "",
    " ",
    "0",
    "-0",
    "1",
    "2",
    "-5",
    "45.5",
    "99999999999999999999",
    "1e309",
    "-1e309",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1_0",
    "１２",
    "0x10",
    "+",
    "-",
    ".",
    "1.",
    ".5",
    "1e5",
    "男",
    "女",
    "\x00",
    "\u200b",
    "\ufeff1",
    "=1+1",
    "@SUM(A1)",
    "'",
    '"',
    ",",
    "|",
    ";",
    "\t",
    "a" * 300,
    "I10.x05",
    "i63.500",
    "I63.500;E03.900",
    "9" * 400,
]
CODES = [
    "I63.500",
    "E03.900",
    "I20.800x001",
    "O42.000",
    "P28.500",
    "N80.100",
    "K62.100",
    "S72.200",
    "J18.900",
    "C18.200",
    "74.0x00",
    "65.2500",
    "36.0600",
    "93.3900",
    "45.4300x004",
    "17.3600",
    "",
    "ZZZ",
    "i63.500",
    " I63.500 ",
]
SEPARATORS = ["|", ",", ";", "/", "\t", " | ", "||"]


def _value(rng: Any) -> str:
    roll = rng.random()
    if roll < 0.5:
        return str(rng.choice([0, 1, 2, 5, 30, 45, 72, 1500, 3200]))
    if roll < 0.8:
        return rng.choice(NASTY)
    return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(0, 6)))


def _codes(rng: Any) -> str:
    sep = rng.choice(SEPARATORS) if rng.random() < 0.3 else "|"
    return sep.join(rng.choice(CODES) for _ in range(rng.randrange(0, 5)))


def _columns(rng: Any, layout_name: str | None = None) -> list[str]:
    """The column names of a layout (random when not named), plus sometimes an unknown or
    repeated one."""
    layout = LAYOUTS[layout_name or rng.choice(sorted(LAYOUTS))]
    fields = [
        "case_id",
        "sex",
        "age",
        "age_days",
        "birth_weight",
        "los",
        "diagnoses",
        "procedures",
        "discharge_date",
        "department",
        "leaving_type",
    ]
    names = []
    for f in fields:
        if rng.random() < 0.9:
            names.append(layout.source_for(f) or f)
    if rng.random() < 0.1:
        names.append(rng.choice(["extra", "", " ", "病案号", names[0] if names else "x"]))
    return names


def _is_codes(name: str) -> bool:
    low = name.lower()
    return any(k in low for k in ("diag", "icd10", "zd", "诊断", "proc", "icd9", "ss", "手术"))


def _rows(rng: Any, names: list[str], n: int) -> list[list[str]]:
    rows = []
    for i in range(n):
        row = []
        for name in names:
            if _is_codes(name):
                row.append(_codes(rng))
            elif name in ("case_id", "Index") or "id" in name.lower() or "病案" in name:
                row.append(rng.choice([f"C{i}", f"C{i}", "", f"C{rng.randrange(n)}"]))
            else:
                row.append(_value(rng))
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------ CSV bytes

_DAMAGE_BYTES = [
    b'"',
    b",",
    b"\n",
    b"\r",
    b"\r\n",
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    b";",
    b"\t",
    b"\xe4\xb8",
    b" ",
    b"|",
    b"=",
    b"\\",
]


_TEXT_DAMAGE = [b for b in _DAMAGE_BYTES if b not in (b"\xff", b"\xe4\xb8")]


def damage(data: bytes, rng: Any, edits: int, binary: bool = True) -> bytes:
    """``edits`` random byte-level changes: insert, delete, replace, repeat or cut. Without
    ``binary`` the inserted and replaced bytes are ASCII (the text may still be cut inside a
    character)."""
    buf = bytearray(data)
    for _ in range(edits):
        kind = rng.randrange(6)
        pos = rng.randrange(len(buf) + 1)
        if kind == 0:
            buf[pos:pos] = rng.choice(_DAMAGE_BYTES if binary else _TEXT_DAMAGE)
        elif kind == 1 and buf:
            del buf[pos : pos + rng.randrange(1, 8)]
        elif kind == 2 and pos < len(buf):
            buf[pos] = rng.randrange(256 if binary else 128)
        elif kind == 3 and buf:
            start = rng.randrange(len(buf))
            buf[pos:pos] = buf[start : start + rng.randrange(1, 80)]
        elif kind == 4:
            del buf[pos:]
        else:
            buf[pos:pos] = rng.choice(NASTY).encode("utf-8", "surrogatepass")
    if not binary:  # a cut inside a character: drop its remains, the text stays UTF-8
        return bytes(buf).decode("utf-8", "ignore").encode("utf-8")
    return bytes(buf)


def csv_bytes(
    rng: Any, max_rows: int, layout: str | None = None, binary: bool | None = None
) -> tuple[bytes, int]:
    """A damaged case CSV (a layout's columns) and its number of data rows before damage.
    Each line is damaged on its own (rarely), so one file holds many hostile rows. ``binary``:
    damage may write bytes that are not UTF-8 (default: in 10% of the files)."""
    names = _columns(rng, layout)
    rows = _rows(rng, names, rng.randrange(0, max_rows + 1))
    out = io.StringIO()
    end = rng.choice(["\n", "\r\n"])
    writer = csv.writer(out, lineterminator=end)
    writer.writerow(names)
    header = out.getvalue().encode("utf-8")
    if binary is None:
        binary = rng.random() < 0.1  # bytes that are not UTF-8 reject the whole file
    if rng.random() < 0.1:
        header = damage(header, rng, 1, binary)
    lines = [header]
    rate = rng.choice([0.0, 0.001, 0.01, 0.05])
    for row in rows:
        out.seek(0)
        out.truncate()
        writer.writerow(row)
        line = out.getvalue().encode("utf-8")
        if rng.random() < rate:
            line = damage(line, rng, rng.randrange(1, 3), binary)
        lines.append(line)
    data = b"".join(lines)
    if rng.random() < 0.1:
        data = damage(data, rng, 1, binary)  # anywhere, e.g. a cut at the end
    return data, len(rows)


def csv_records(data: bytes) -> int | None:
    """Data records of ``data`` as drgkit reads a CSV: one physical line is one case (a quote
    left open at the end of a line is that line's error, never a line break inside a field),
    blank lines skipped; None when the bytes are not UTF-8 or hold a lone CR or NUL (counted
    differently by design: see drgkit._io)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text or "\r" in text.replace("\r\n", ""):
        return None
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    records = [line for line in lines if line != ""]
    return max(0, len(records) - 1)


# ------------------------------------------------------------------------------ Parquet


def _arrow_column(rng: Any, values: list[str], name: str) -> pa.Array:
    """``values`` as a random Arrow type, with random nulls."""
    n = len(values)
    nulls = [rng.random() < 0.2 for _ in range(n)]
    kind = rng.randrange(10)
    if kind in (4, 7) and not (_is_codes(name) and kind == 4) and rng.random() < 0.9:
        kind = 9  # a list or date where one value belongs rejects the whole input: rarely

    def num(v: str, cast: Callable[[str], Any]) -> Any:
        try:
            return cast(v)
        except (ValueError, OverflowError):
            return None

    if kind == 0:
        data = [None if z else num(v, int) for v, z in zip(values, nulls, strict=True)]
        data = [x if x is None or -(2**63) <= x < 2**63 else None for x in data]
        return pa.array(data, pa.int64())
    if kind == 1:
        data = [None if z else num(v, float) for v, z in zip(values, nulls, strict=True)]
        return pa.array(data, pa.float64())
    if kind == 2:
        return pa.array([rng.random() < 0.5 for _ in range(n)], pa.bool_())
    if kind == 3:
        return pa.nulls(n)
    if kind == 4:
        return pa.array(
            [None if z else v.split("|") for v, z in zip(values, nulls, strict=True)],
            pa.list_(pa.string()),
        )
    if kind == 5:
        return pa.array(
            [None if z else v for v, z in zip(values, nulls, strict=True)], pa.string()
        ).dictionary_encode()
    if kind == 6:
        return pa.array(
            [
                None if z else v.encode("utf-8", "surrogatepass")
                for v, z in zip(values, nulls, strict=True)
            ],
            pa.binary(),
        )
    if kind == 7:
        return pa.array([None if z else rng.randrange(-(10**6), 10**6) for z in nulls], pa.date32())
    if kind == 8:
        return pa.array(
            [None if z else v for v, z in zip(values, nulls, strict=True)], pa.large_string()
        )
    return pa.array([None if z else v for v, z in zip(values, nulls, strict=True)], pa.string())


def arrow_table(rng: Any, max_rows: int, layout: str | None = None) -> pa.Table:
    names = _columns(rng, layout)
    rows = _rows(rng, names, rng.randrange(0, max_rows + 1))
    columns = [_arrow_column(rng, [r[k] for r in rows], name) for k, name in enumerate(names)]
    # Arrow allows repeated names; drgkit must refuse or cope, never crash
    return pa.Table.from_arrays(columns, names=names) if columns else pa.table({})


# ------------------------------------------------------------------------------ CSV tables


def _read_rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def damage_table_folder(folder: Path, rng: Any, edits: int) -> None:
    """Random cell-level damage to the CSV files of a ruleset folder (in place)."""
    files = sorted(folder.glob("*.csv"))
    for _ in range(edits):
        path = rng.choice(files)
        rows = _read_rows(path)
        kind = rng.randrange(8)
        if kind == 0 and len(rows) > 1:  # a cell becomes junk
            r = rng.randrange(1, len(rows))
            if rows[r]:
                rows[r][rng.randrange(len(rows[r]))] = rng.choice(NASTY)
        elif kind == 1 and len(rows) > 1:  # a row repeated
            r = rng.randrange(1, len(rows))
            rows.insert(r, list(rows[r]))
        elif kind == 2 and len(rows) > 1:  # a row lost
            del rows[rng.randrange(1, len(rows))]
        elif kind == 3 and rows:  # a header cell renamed
            rows[0][rng.randrange(len(rows[0]))] = rng.choice(["", "x", "code ", "CODE"])
        elif kind == 4 and len(rows) > 1:  # a row too short or too long
            r = rng.randrange(1, len(rows))
            rows[r] = rows[r][:-1] if rng.random() < 0.5 else [*rows[r], "extra"]
        elif kind == 5:  # only the header left
            rows = rows[:1]
        elif kind == 6:  # the file is empty
            rows = []
        else:  # a cell swapped with another row's cell of the same column
            if len(rows) > 2 and rows[1]:
                a, b = rng.randrange(1, len(rows)), rng.randrange(1, len(rows))
                c = rng.randrange(len(rows[1]))
                if c < len(rows[a]) and c < len(rows[b]):
                    rows[a][c], rows[b][c] = rows[b][c], rows[a][c]
        with open(path, "w", encoding="utf-8", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerows(rows)


# ------------------------------------------------------------------------------ TOML


def _toml_lines(text: str) -> list[str]:
    return text.splitlines()


_TOML_VALUES = [
    '""',
    '"0"',
    '"-1"',
    '"1e309"',
    '"NaN"',
    '"0.0000000001"',
    '"abc"',
    "0",
    "-1",
    "1e400",
    "true",
    "[]",
    "{}",
    '"99999999999999999999"',
    '"1.234567891"',
    '[{ up_to = "2", keep = "1" }]',
    '"3"',
    '"rw"',
    '"cases"',
    '"2024-13-01"',
]


def mutate_toml(text: str, rng: Any, edits: int, retype: bool = True) -> str:
    """Line-level TOML mutations: values replaced, lines dropped, repeated or broken. Without
    ``retype`` a quoted value is only replaced by another quoted value (the types the loader
    expects stay)."""
    lines = _toml_lines(text)
    if not retype:
        return _mutate_strings(lines, rng, edits)
    for _ in range(edits):
        if not lines:
            lines.append(rng.choice(["[x]", "a = 1", "="]))
            continue
        i = rng.randrange(len(lines))
        line = lines[i]
        kind = rng.randrange(6)
        if kind <= 1 and "=" in line and not line.lstrip().startswith("#"):
            key = line.split("=", 1)[0]
            lines[i] = f"{key}= {rng.choice(_TOML_VALUES)}"
        elif kind == 2:
            del lines[i]
        elif kind == 3:
            lines.insert(i, line)
        elif kind == 4:
            cut = rng.randrange(len(line) + 1)
            lines[i] = (
                line[:cut] + rng.choice(["", '"', "[", "]", "=", "{", ",", "\\"]) + line[cut:]
            )
        else:
            lines.insert(
                i, f"{rng.choice(['extra', 'rw', 'id', 'name'])} = {rng.choice(_TOML_VALUES)}"
            )
    return "\n".join(lines) + "\n"


_STRINGS = [v for v in _TOML_VALUES if v.startswith('"')]


def _mutate_strings(lines: list[str], rng: Any, edits: int) -> str:
    """Replace quoted values of ``key = "value"`` lines by other quoted values."""
    candidates = [
        i
        for i, line in enumerate(lines)
        if "=" in line
        and line.split("=", 1)[1].strip().startswith('"')
        and line.rstrip().endswith('"')
        and not line.lstrip().startswith("#")
    ]
    for _ in range(edits):
        if candidates:
            i = rng.choice(candidates)
            key = lines[i].split("=", 1)[0]
            lines[i] = f"{key}= {rng.choice(_STRINGS)}"
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ targets


class Lost(AssertionError):
    """The property broke: rows lost or invented, or an error without a message."""


@dataclass
class Context:
    """Files a run reuses: a scratch folder, the pristine demo inputs."""

    scratch: Path
    policy_text: str
    alliance_text: str
    ruleset: Any
    #: rows of a generated case file at most (the test keeps this small)
    max_rows: int
    #: also damage Parquet bytes, and write bytes that are not UTF-8 into CSV files (the
    #: readers' errors there are not yet all drgkit errors: see the report of the fuzz run)
    damage_binary: bool
    #: TOML mutations may change a value's type (a table where text belongs...)
    retype: bool

    @classmethod
    def make(cls, scratch: Path, max_rows: int = 12, damage_binary: bool = True) -> Context:
        return cls(
            scratch,
            DEMO_POLICY.read_text(encoding="utf-8"),
            DEMO_ALLIANCE.read_text(encoding="utf-8"),
            drgkit.load_ruleset("demo_2024"),
            max_rows,
            damage_binary,
            True,
        )


def _group(source: Any, ctx: Context, **options: Any) -> pa.Table:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return drgkit.group(source, ctx.ruleset, **options)


def _check_group(result: pa.Table, rows: int | None) -> None:
    statuses = result.column("status").to_pylist()
    if any(s not in drgkit.STATUSES for s in statuses):
        raise Lost(f"a row without a status: {set(statuses)}")
    if rows is not None and result.num_rows != rows:
        raise Lost(f"{rows} input rows, {result.num_rows} output rows")


def target_csv(rng: Any, ctx: Context) -> int:
    data, rows = csv_bytes(rng, ctx.max_rows, binary=None if ctx.damage_binary else False)
    path = ctx.scratch / "cases.csv"
    path.write_bytes(data)
    try:
        _check_group(_group(path, ctx), csv_records(data))
    except DrgkitError as exc:
        raise _Counted(exc, rows + 1) from exc
    return rows + 1


def target_parquet(rng: Any, ctx: Context) -> int:
    table = arrow_table(rng, ctx.max_rows)
    path = ctx.scratch / "cases.parquet"
    try:
        pq.write_table(table, path)
    except (pa.ArrowException, ValueError):
        return 0  # a table Arrow itself cannot write is no input
    try:
        if ctx.damage_binary and rng.random() < 0.2:
            path.write_bytes(damage(path.read_bytes(), rng, 1))
            _check_group(_group(path, ctx), None)
        else:
            _check_group(_group(path, ctx), table.num_rows)
    except DrgkitError as exc:
        raise _Counted(exc, table.num_rows + 1) from exc
    return table.num_rows + 1


def target_arrow(rng: Any, ctx: Context) -> int:
    table = arrow_table(rng, ctx.max_rows)
    try:
        _check_group(_group(table, ctx), table.num_rows)
    except DrgkitError as exc:
        raise _Counted(exc, table.num_rows + 1) from exc
    return table.num_rows + 1


class _Counted(Exception):
    """A drgkit error raised on an input of several records (rows): carries their number."""

    def __init__(self, error: DrgkitError, inputs: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.inputs = inputs


def target_ruleset(rng: Any, ctx: Context) -> int:
    folder = ctx.scratch / "ruleset"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(DEMO_RULESET, folder)
    damage_table_folder(folder, rng, rng.randrange(1, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ruleset = drgkit.load_ruleset(folder)
        cases = pa.table(
            {
                "case_id": ["a", "b", "c"],
                "sex": ["1", "2", "1"],
                "age": ["72", "0", "33"],
                "age_days": ["", "3", ""],
                "birth_weight": ["", "3200", ""],
                "los": ["5", "4", "7"],
                "diagnoses": ["I63.500|E03.900", "P28.500", "O42.000"],
                "procedures": ["93.3900", "", "74.0x00"],
            }
        )
        _check_group(drgkit.group(cases, ruleset), 3)
    return 1


def target_policy(rng: Any, ctx: Context) -> int:
    from drgkit.settlement._policy import Policy

    folder = ctx.scratch / "policy"
    folder.mkdir(exist_ok=True)
    shutil.copy(DEMO_POLICY.parent / "demo-weights.csv", folder / "demo-weights.csv")
    path = folder / "demo.toml"
    path.write_text(
        mutate_toml(ctx.policy_text, rng, rng.randrange(1, 4), ctx.retype), encoding="utf-8"
    )
    Policy.from_toml(path)
    return 1


def target_alliance(rng: Any, ctx: Context) -> int:
    from drgkit.alliance._model import load_model

    path = ctx.scratch / "alliance.toml"
    path.write_text(
        mutate_toml(ctx.alliance_text, rng, rng.randrange(1, 4), ctx.retype), encoding="utf-8"
    )
    load_model(path)
    return 1


#: name -> (function, share of the inputs when every target runs)
#: An *input* is one hostile record: a case row (or header) of a case file, or one whole
#: ruleset folder, policy file or alliance model file.
TARGETS: dict[str, tuple[Callable[[Any, Context], int], float]] = {
    "csv": (target_csv, 0.4),
    "parquet": (target_parquet, 0.2),
    "arrow": (target_arrow, 0.3),
    "ruleset": (target_ruleset, 0.005),
    "policy": (target_policy, 0.05),
    "alliance": (target_alliance, 0.045),
}


def run_one(name: str, rng: Any, ctx: Context) -> tuple[str, int]:
    """Run one generated file: (``"ok"`` or the drgkit error's class name, inputs it held).
    Raises on a failure of the property."""
    func = TARGETS[name][0]
    try:
        return "ok", func(rng, ctx)
    except _Counted as counted:
        exc, inputs = counted.error, counted.inputs
    except DrgkitError as error:
        exc, inputs = error, 1
    if not str(exc).strip():
        raise Lost(f"{type(exc).__name__} without a message") from exc
    return type(exc).__name__, inputs


# ------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--target", choices=sorted(TARGETS), action="append")
    parser.add_argument("--seed", type=int, default=0, help="first seed; input k uses seed+k")
    parser.add_argument("--report-every", type=float, default=60.0, help="seconds")
    parser.add_argument(
        "--max-rows",
        type=int,
        default=2000,
        help="rows of a generated case file at most (each row is one input)",
    )
    args = parser.parse_args(argv)
    names = args.target or list(TARGETS)
    weights = [TARGETS[n][1] for n in names]
    total = sum(weights)
    plan = [(n, math.ceil(args.inputs * w / total)) for n, w in zip(names, weights, strict=True)]
    ran = files = 0
    outcomes: dict[str, Counter] = {n: Counter() for n in names}
    inputs: Counter = Counter()
    failures: list[str] = []
    started = last = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="drgkit-fuzz-") as tmp:
        ctx = Context.make(Path(tmp), max_rows=args.max_rows)
        seed = args.seed
        for name, count in plan:
            while inputs[name] < count:
                rng = random.Random(seed)
                try:
                    outcome, k = run_one(name, rng, ctx)
                except Exception as exc:  # a failure: keep going, report at the end
                    outcome, k = "FAILURE " + type(exc).__name__, 1
                    if len(failures) < 50:
                        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
                        failures.append(f"--target {name} --seed {seed}: {tb[:300]}")
                outcomes[name][outcome] += 1
                inputs[name] += max(k, 1)
                seed += 1
                files += 1
                now = time.perf_counter()
                if now - last > args.report_every:
                    last = now
                    print(
                        f"  {sum(inputs.values()):,} inputs, {now - started:,.0f} s",
                        file=sys.stderr,
                        flush=True,
                    )
    ran = sum(inputs.values())
    elapsed = time.perf_counter() - started
    print(
        f"{ran:,} inputs ({files:,} generated files/folders) in {elapsed:,.1f} s "
        f"({ran / max(elapsed, 1e-9):,.0f} inputs/s); outcomes count files:"
    )
    for name in names:
        parts = ", ".join(f"{k} {v:,}" for k, v in outcomes[name].most_common())
        print(f"  {name} ({inputs[name]:,} inputs): {parts}")
    bad = sum(v for c in outcomes.values() for k, v in c.items() if k.startswith("FAILURE"))
    print(f"failures: {bad:,}")
    for line in failures:
        print("  " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
