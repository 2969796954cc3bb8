"""Data for the grouping benchmarks: the CHS-DRG 1.1 oracle cases, replicated to any size.

Shared by ``benchmarks/conftest.py`` (pytest-benchmark) and ``benchmarks/scale_grouping.py``
(the scaling script). Reference data is read in place from ``$DRGKIT_SHARED`` or the ``shared``
folder next to the repository; nothing is copied into the repository.

Two input shapes are built from the same cases:

``text``
    as a CSV reader gives them: every column a string, diagnoses and procedures as ``|``- (or
    ``,``-) joined text.
``typed``
    scalar columns that are losslessly integer (every non-empty value is the canonical text of an
    integer) become ``int64`` (empty -> null); columns with any genuinely textual value
    (``'abc'``, ``'3,2kg'``, a department ``'0302'`` whose leading zero matters) stay strings.
    Diagnoses and procedures are pre-split on ``,``/``|`` into ``list<dictionary<int32,
    string>>``: an empty diagnosis field is ``['']`` (one empty principal), an empty procedure
    field is ``[]``, exactly as drgkit reads the text form.

Copies get unique case ids: copy 0 keeps the oracle id, copy ``k`` gets the suffix ``-r<k>``
(drgkit flags repeated ids as invalid).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

# numpy and pyarrow are imported inside the functions that need them: the scaling script's
# parent process uses only the path helpers and must stay small (a child's ru_maxrss starts
# at its parent's resident size when it is spawned).

RULESET = "chs_drg_11"
ID_COLUMN = "Index"
CODE_COLUMNS = ("ICD10_DRGS", "ICD9_DRGS")
EMPTY_IS_ONE = {"ICD10_DRGS": True, "ICD9_DRGS": False}
#: naive status -> drgkit status (the brief's mapping)
STATUS_MAP = {
    "SUCCESS": "ok",
    "FAIL": "ungroupable",
    "QY": "ambiguous",
    "CHECK_FAILED": "invalid",
    "ERROR": "invalid",
}
GROUPED = ("ok", "ambiguous")  # statuses whose drg must agree
DEFAULT_ROWS = 1_000_000


def bench_rows() -> int:
    """Cases per pytest benchmark input: ``$DRGKIT_BENCH_ROWS`` or 1,000,000."""
    return int(os.environ.get("DRGKIT_BENCH_ROWS", DEFAULT_ROWS))


class SharedDataMissing(RuntimeError):
    """The shared reference data is not where we looked."""


def shared_dir() -> Path:
    """``$DRGKIT_SHARED`` if set, else the ``shared`` folder next to the repository."""
    env = os.environ.get("DRGKIT_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared"


def ruleset_dir() -> Path:
    return shared_dir() / "rulesets" / RULESET


def cases_csv() -> Path:
    return shared_dir() / "oracle" / RULESET / "cases.csv"


def expected_csv() -> Path:
    return shared_dir() / "oracle" / RULESET / "expected.csv"


def missing_message() -> str | None:
    """Why the benchmarks cannot run (None when the data is there)."""
    for path in (ruleset_dir(), cases_csv()):
        if not path.exists():
            return (
                f"shared reference data not found: {path} is missing; set DRGKIT_SHARED "
                "to the folder holding rulesets/ and oracle/"
            )
    return None


def require_data() -> None:
    message = missing_message()
    if message:
        raise SharedDataMissing(message)


def source_stamp() -> tuple[float, str]:
    """Newest modification time of drgkit's source files (without importing drgkit)."""
    import importlib.util

    spec = importlib.util.find_spec("drgkit")
    if spec is None or not spec.submodule_search_locations:
        return 0.0, "unknown"
    newest, name = 0.0, ""
    for root in spec.submodule_search_locations:
        for path in Path(root).rglob("*.py"):
            mtime = path.stat().st_mtime
            if mtime > newest:
                newest, name = mtime, str(path.relative_to(root))
    return newest, name


# ------------------------------------------------------------------------------ base cases


def read_base(path: Path | None = None) -> pa.Table:
    """The oracle cases exactly as a CSV reader gives them: all columns text."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = path or cases_csv()
    with open(path, encoding="utf-8-sig", newline="") as fh:
        header = fh.readline().strip().split(",")
    return pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    ).combine_chunks()


def _lossless_int(col: pa.ChunkedArray | pa.Array) -> pa.Array | None:
    """``int64`` of a text column when every non-empty value is an integer's canonical text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    empty = pc.equal(arr, "")
    as_null = pc.if_else(empty, pa.scalar(None, pa.string()), arr)
    try:
        ints = pc.cast(as_null, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    back = pc.cast(ints, pa.string())
    same = pc.fill_null(pc.equal(back, as_null), True)
    return ints if pc.all(same).as_py() else None


def _split_codes(col: pa.ChunkedArray | pa.Array, empty_is_one: bool) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    lists = pc.split_pattern_regex(arr, "[,|]")
    if not empty_is_one:  # an empty procedure field is no procedure at all
        lists = pc.if_else(pc.equal(arr, ""), pa.scalar([], lists.type), lists)
    offsets = lists.offsets
    values = lists.values.slice(offsets[0].as_py(), offsets[-1].as_py() - offsets[0].as_py())
    if offsets[0].as_py():
        offsets = pc.subtract(offsets, offsets[0])
    return pa.ListArray.from_arrays(offsets, values.dictionary_encode())


def typed(table: pa.Table) -> pa.Table:
    """The ``typed`` shape of a ``text`` table (see the module docstring)."""
    import pyarrow as pa

    columns, fields = [], []
    for name in table.column_names:
        col = table.column(name)
        if name in CODE_COLUMNS:
            new = _split_codes(col, EMPTY_IS_ONE[name])
        elif name == ID_COLUMN:
            new = col.combine_chunks()
        else:
            new = _lossless_int(col)
            if new is None:
                new = col.combine_chunks()
        columns.append(new)
        fields.append(pa.field(name, new.type))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def typed_summary(table: pa.Table) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in table.schema)


def replicate(base: pa.Table, rows: int) -> pa.Table:
    """``rows`` rows cycling through ``base``, one chunk per column, ids made unique."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = base.num_rows
    index = np.arange(rows, dtype=np.int64)
    out = base.take(pa.array(index % n))
    copies = rows // n + 1
    suffixes = pa.array([""] + [f"-r{k}" for k in range(1, copies)], pa.string())
    suffix = suffixes.take(pa.array(index // n))
    ids = pc.binary_join_element_wise(out.column(ID_COLUMN).combine_chunks(), suffix, "")
    out = out.set_column(out.schema.get_field_index(ID_COLUMN), ID_COLUMN, ids)
    return out.combine_chunks()


def build(rows: int, shape: str = "text", base: pa.Table | None = None) -> pa.Table:
    base = base if base is not None else read_base()
    if shape == "text":
        return replicate(base, rows)
    if shape == "typed":
        return replicate(typed(base), rows)
    raise ValueError(f"unknown shape {shape!r}")


def base_index(rows: int, n_base: int) -> np.ndarray:
    import numpy as np

    return np.arange(rows, dtype=np.int64) % n_base


def case_ids(base_ids: list[str], rows: int) -> list[str]:
    n = len(base_ids)
    return [base_ids[i % n] + (f"-r{i // n}" if i >= n else "") for i in range(rows)]


# ------------------------------------------------------------------------------ checking


def read_expected(path: Path | None = None) -> tuple[list[str], list[str]]:
    """The oracle's (drgkit status, drg) per base case."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(
        path or expected_csv(),
        convert_options=pacsv.ConvertOptions(
            column_types={
                "Index": pa.string(),
                "status": pa.string(),
                "drg": pa.string(),
                "mdc": pa.string(),
                "adrg": pa.string(),
            },
            strings_can_be_null=False,
        ),
    )
    statuses = [STATUS_MAP[s] for s in table.column("status").to_pylist()]
    return statuses, table.column("drg").to_pylist()


def compare(
    result: pa.Table,
    input_ids: pa.Array | pa.ChunkedArray | None,
    statuses: list[str],
    drgs: list[str],
    n_base: int,
) -> dict:
    """Compare drgkit results row by row with expectations per base case.

    Row ``i`` of ``result`` is base case ``i % n_base``; only base cases with an expectation
    (``i % n_base < len(statuses)``) are compared. Returns counts and a few examples.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = result.num_rows
    covered = len(statuses)
    base = base_index(rows, n_base)
    mask = base < covered
    take = pa.array(base[mask])
    sel = pa.array(mask)
    got_status = pc.filter(result.column("status"), sel)
    got_status = (
        got_status.cast(pa.string()) if pa.types.is_dictionary(got_status.type) else got_status
    )
    got_drg = pc.filter(result.column("drg"), sel)
    exp_status = pa.array(statuses, pa.string()).take(take)
    exp_drg = pa.array(drgs, pa.string()).take(take)
    bad_status = pc.invert(pc.equal(got_status, exp_status))
    grouped = pc.is_in(exp_status, pa.array(GROUPED))
    bad_drg = pc.and_(grouped, pc.invert(pc.equal(got_drg, exp_drg)))
    bad = pc.or_(bad_status, bad_drg)
    n_bad = int(pc.sum(bad.cast(pa.int64())).as_py() or 0)
    report = {
        "rows": rows,
        "compared": int(mask.sum()),
        "mismatches": n_bad,
        "ids_ok": None,
        "examples": [],
    }
    if input_ids is not None:
        got_ids = result.column("case_id")
        report["ids_ok"] = bool(
            len(got_ids) == len(input_ids) and pc.all(pc.equal(got_ids, input_ids)).as_py()
        )
    if n_bad:
        rows_compared = np.flatnonzero(mask)
        where = np.flatnonzero(bad.to_numpy(zero_copy_only=False))[:3]
        for j in where:
            i = int(rows_compared[j])
            report["examples"].append(
                {
                    "row": i,
                    "case_id": result.column("case_id")[i].as_py(),
                    "status": got_status[int(j)].as_py(),
                    "drg": got_drg[int(j)].as_py(),
                    "expected_status": exp_status[int(j)].as_py(),
                    "expected_drg": exp_drg[int(j)].as_py(),
                }
            )
    return report
