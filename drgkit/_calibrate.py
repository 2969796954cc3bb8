"""Weight calibration (权重测算): relative weights (RW) per DRG from 1–3 years of cases.

The rules, in the order they apply (the README section "Weight calibration" states them too):

1. **Rows.** Every input row is counted. Rows whose grouping ``status`` is not ``ok``
   (ungroupable, ambiguous, invalid; DRG ``0000`` counts as ungroupable) are *excluded* and
   counted per status; every other row must
   have a DRG, a positive total cost in whole cents and a year, else a :class:`CalibrationError`
   names its file, row and column (nothing is rounded, nothing is dropped).
2. **Trimming** inside each cell (DRG, year) — costs of different years are not mixed:

   * ``log-sd``: with ``x = ln(cost)``, ``m`` the mean and ``s`` the sample standard deviation
     (n − 1) of ``x`` in the cell, a case is trimmed when ``|x − m| > k·s`` (``k`` = 3 by
     default); cells of one case are never trimmed. Floats, but deterministic: ``math.log``,
     sums by ``math.fsum`` (exactly rounded, independent of order).
   * ``quantile``: in cells with at least ``quantile_min_cases`` cases, with the costs sorted
     ``c(1) ≤ … ≤ c(n)`` and the nearest-rank quantile ``Q(p) = c(max(1, ⌈p·n⌉))`` (``p`` exact),
     a case is trimmed when its cost is below ``Q(low)`` or above ``Q(high)`` (2.5% and 97.5%).
   * ``none``: nothing is trimmed.
3. **Year weights** ``w`` (oldest first, e.g. 1:2:7): a DRG's mean is
   ``M_g = Σ_y w_y·mean_{g,y} ÷ Σ_y w_y`` over the years in which the DRG has kept cases; the
   overall mean ``M`` is the same formula over all kept cases of each year.
4. **RW** ``= M_g ÷ M``, exact rationals, rounded once half up to 9 decimals (the RW scale).
5. **CV** per DRG over its kept cases of all years: ``sqrt(n·Σc² − (Σc)²) ÷ Σc`` (population
   SD ÷ mean), shown rounded half up to 4 decimals; **stable** when the kept cases reach
   ``min_cases`` and CV < 1 (decided on the exact CV², not on the rounded figure).
6. **Merging** (``merge_small``): a DRG with fewer kept cases than ``min_cases`` takes the RW,
   mean, CV and stable flag of its ADRG's pool (every kept case of every DRG of that ADRG,
   steps 3–5 over the pool); its own ``cases`` and ``trimmed`` stay, ``merged_into`` names the ADRG.
7. **Base rate** a budget implies: ``budget ÷ Σ_g RW_g × cases_{g,target}`` with the published
   (rounded) RW and every case of the target year (the last by default; trimmed cases too, since
   they will be paid), per scheme when the budget names one; exact, rounded once half up to
   the cent.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ._cases import parse_dates
from ._money import FLAG_TEXT, OK, RW_SCALE, RW_TYPE, half_up, to_cents
from ._write import atomic_output
from .errors import ArgumentError, TableError

__all__ = [
    "CALIBRATION_SCHEMA",
    "TRIM_RULES",
    "CalibrationError",
    "calibrate",
    "summary_of",
    "write_weights",
]

TRIM_RULES = ("log-sd", "quantile", "none")
#: insurance_type codes of the national settlement list, by the scheme names policies use
SCHEME_CODES = {"employee": "310", "resident": "390"}
CV_DECIMALS = 4
#: the columns of a policy's weights table (drgkit/policies/demo-weights.csv), then ours
WEIGHT_COLUMNS = (
    "DRG编码",
    "DRG名称",
    "RW",
    "基础病组",
    "病组类型",
    "一级医院系数",
    "二级医院系数",
    "三级医院系数",
)
CALIBRATION_SCHEMA = pa.schema(
    [
        *(pa.field(c, RW_TYPE if c == "RW" else pa.string()) for c in WEIGHT_COLUMNS),
        pa.field("cases", pa.int64()),  # cases read for the DRG, all years, trimmed included
        pa.field("trimmed", pa.int64()),
        pa.field("mean_cost", pa.decimal128(18, 2)),  # the year-weighted mean M_g, yuan
        pa.field("cv", pa.decimal128(12, CV_DECIMALS)),
        pa.field("stable", pa.bool_()),
        pa.field("merged_into", pa.string()),  # the ADRG whose pool priced the DRG, else null
    ]
)
STABLE_TEXT, UNSTABLE_TEXT = "稳定病组", "不稳定病组"
#: the DRG of a case that did not group (drgkit.schema: "0000 when none")
UNGROUPED = "0000"
#: a template's group type that calibration keeps whatever the stability
KEPT_TYPES = ("单议病组",)


class CalibrationError(TableError):
    """Calibration input that cannot be used: names the file, row and column."""


@attrs.frozen
class _Cell:
    """Kept cases of one pool (a DRG or an ADRG) in one year: count, Σc, Σc²."""

    n: int
    total: int
    squares: int


# ------------------------------------------------------------------------------ reading


def _files(source: str | Path) -> list[Path]:
    path = Path(source)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in (".csv", ".parquet"))
        if not found:
            raise CalibrationError("folder has no .csv or .parquet files", file=path)
        return found
    if not path.exists():
        raise CalibrationError("history file is missing", file=path)
    return [path]


def _read(path: Path) -> tuple[pa.Table, int]:
    """The file as a table and the offset from a 0-based index to the row number errors name
    (CSV: the line, header = 1; Parquet: the 1-based row)."""
    if path.suffix.lower() == ".parquet":
        return pq.read_table(path), 1
    if path.suffix.lower() != ".csv":
        raise CalibrationError("history files must be .csv or .parquet", file=path)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh), None)
    if not header:
        raise CalibrationError("empty file", file=path, row=1)
    # every column as text: codes keep their zeros, amounts are read exactly
    table = pacsv.read_csv(
        path, convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()))
    )
    return table, 2


def _sources(history: Any) -> list[tuple[str, pa.Table, int, int | None]]:
    """(name, table, row offset, year or None) for each input."""
    if isinstance(history, Mapping):
        out = []
        for year, source in sorted(history.items(), key=lambda kv: int(kv[0])):
            out.extend((n, t, off, int(year)) for n, t, off, _ in _sources(source))
        return out
    if isinstance(history, pa.Table):
        return [("<table>", history, 1, None)]
    if isinstance(history, (str, Path)):
        return [(str(p), *_read(p), None) for p in _files(history)]
    if isinstance(history, Iterable):
        return [s for item in history for s in _sources(item)]
    raise ArgumentError(f"history must be paths, tables or {{year: source}}, got {history!r}")


def _strings(table: pa.Table, name: str) -> pa.Array | None:
    """A column as trimmed text (codes stay text: trailing zeros matter)."""
    if name not in table.column_names:
        return None
    col = table.column(name).combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    return pc.utf8_trim_whitespace(col.cast(pa.string()))


@attrs.frozen
class _Chunk:
    """The used cases of one input, as columns (never one Python object per case)."""

    drg: pa.Array  # text
    adrg: pa.Array  # text, null when the input has none
    year: np.ndarray  # int64
    cents: np.ndarray  # int64
    scheme: pa.Array  # insurance_type text, "" when none


def _cases_of(
    name: str,
    table: pa.Table,
    offset: int,
    year: int | None,
    ruleset: Any,
    cost_column: str,
    allowed: set[int] | None,
    excluded: Counter,
) -> _Chunk:
    n = table.num_rows
    grouped = table
    if ruleset is not None:
        from . import group  # late: the grouping machinery is only needed with a ruleset

        grouped = group(table, ruleset)
    drg = _strings(grouped, "drg")
    if drg is None:
        raise CalibrationError(
            "no 'drg' column: give grouped cases, or raw cases with a ruleset (-r)",
            file=name,
            row=1,
            column="drg",
        )
    status = _strings(grouped, "status")
    if status is None:
        status = pa.array(["ok"] * n, pa.string())
    # a table without a status column: DRG 0000 says the case did not group
    status = pc.if_else(
        pc.and_(pc.equal(status, "ok"), pc.equal(drg, UNGROUPED)).fill_null(False),
        "ungroupable",
        status,
    ).fill_null("missing status")
    use = pc.equal(status, "ok").to_numpy(zero_copy_only=False)
    for entry in pc.value_counts(status.filter(pa.array(~use))).to_pylist():
        excluded[entry["values"]] += entry["counts"]
    if cost_column not in table.column_names:
        raise CalibrationError(
            f"no {cost_column!r} column (the total cost of each stay)", file=name, row=1
        )
    cents, flags = to_cents(table.column(cost_column), n)
    no_drg = pc.or_(pc.is_null(drg), pc.equal(drg, "")).fill_null(True)
    bad = use & (no_drg.to_numpy(zero_copy_only=False) | (flags != OK) | (cents <= 0))
    if year is None:
        if "discharge_date" not in table.column_names:
            raise CalibrationError(
                "no 'discharge_date' column to give each case its year: add one, or give "
                "the file's year (YEAR=PATH)",
                file=name,
                row=1,
            )
        days, dflag = parse_dates(table.column("discharge_date").combine_chunks(), n)
        years = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
        bad |= use & (dflag != 0)
    else:
        years = np.full(n, year, dtype=np.int64)
        dflag = np.zeros(n, dtype=np.int8)
    if allowed is not None:
        bad |= use & ~np.isin(years, sorted(allowed))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _raise_for_row(
            name,
            i + offset,
            drg[i].as_py(),
            int(flags[i]),
            int(cents[i]),
            cost_column,
            int(dflag[i]),
            int(years[i]),
            allowed,
        )
    keep = pa.array(use)
    adrg = _strings(grouped, "adrg")
    scheme = _strings(table, "insurance_type")
    return _Chunk(
        drg.filter(keep),
        adrg.filter(keep) if adrg is not None else pa.nulls(int(use.sum()), pa.string()),
        years[use],
        cents[use],
        scheme.filter(keep).fill_null("")
        if scheme is not None
        else pa.array([""] * int(use.sum())),
    )


def _raise_for_row(
    name: str,
    row: int,
    drg: str | None,
    flag: int,
    cents: int,
    cost_column: str,
    dflag: int,
    year: int,
    allowed: set[int] | None,
) -> None:
    """The error for the first bad row of an input, checks in a fixed order."""
    if not drg:
        raise CalibrationError("missing DRG on a grouped case", file=name, row=row, column="drg")
    if flag != OK:
        raise CalibrationError(
            f"total cost {FLAG_TEXT[flag]}", file=name, row=row, column=cost_column
        )
    if cents <= 0:
        raise CalibrationError(
            f"total cost must be positive, got {Decimal(cents).scaleb(-2)}",
            file=name,
            row=row,
            column=cost_column,
        )
    if dflag != 0:
        what = "missing" if dflag == 1 else "not a date"
        raise CalibrationError(
            f"discharge date {what}", file=name, row=row, column="discharge_date"
        )
    assert allowed is not None and year not in allowed
    raise CalibrationError(
        f"year {year} is not one of the calibration years {', '.join(map(str, sorted(allowed)))}",
        file=name,
        row=row,
        column="discharge_date",
    )


# ------------------------------------------------------------------------------ the rules


def _trimmed_mask(costs: list[int], trim: str, sd: float, low: Fraction, high: Fraction, qmin: int):
    """Which of one cell's costs are trimmed (see the module docstring, step 2)."""
    n = len(costs)
    if trim == "log-sd":
        if n < 2:
            return [False] * n
        logs = [math.log(c) for c in costs]
        mean = math.fsum(logs) / n
        s = math.sqrt(math.fsum((x - mean) ** 2 for x in logs) / (n - 1))
        return [abs(x - mean) > sd * s for x in logs]
    if trim == "quantile" and n >= qmin:
        ordered = sorted(costs)
        lo = ordered[max(1, math.ceil(low * n)) - 1]
        hi = ordered[max(1, math.ceil(high * n)) - 1]
        return [c < lo or c > hi for c in costs]
    return [False] * n


def _weighted_mean(cells: Mapping[int, _Cell], weights: Mapping[int, Fraction]) -> Fraction:
    """Σ_y w_y·mean_y ÷ Σ_y w_y over the years with kept cases (step 3), exact."""
    num = sum((weights[y] * Fraction(c.total, c.n) for y, c in cells.items() if c.n), Fraction(0))
    den = sum((weights[y] for y, c in cells.items() if c.n), Fraction(0))
    return num / den


def _cv_squared(cells: Iterable[_Cell]) -> Fraction:
    n = total = squares = 0
    for c in cells:
        n, total, squares = n + c.n, total + c.total, squares + c.squares
    return Fraction(n * squares - total * total, total * total)


def _cv_rounded(cv2: Fraction) -> Decimal:
    """sqrt(cv2) rounded half up to CV_DECIMALS, exactly (integer square roots)."""
    scaled = cv2 * 10 ** (2 * CV_DECIMALS)
    m = math.isqrt(math.floor(scaled))  # floor(sqrt(scaled))
    # round up when sqrt(scaled) ≥ m + 1/2, i.e. 4·scaled ≥ (2m + 1)²
    if 4 * scaled >= (2 * m + 1) ** 2:
        m += 1
    return Decimal(m).scaleb(-CV_DECIMALS)


def _ratio(text: Any, what: str) -> Fraction:
    try:
        value = Fraction(Decimal(str(text)))
    except (InvalidOperation, ValueError):
        raise ArgumentError(f"{what} must be a number, got {text!r}") from None
    return value


def parse_year_weights(text: str | Sequence[Any] | None) -> list[Fraction] | None:
    """``"1:2:7"`` (oldest first) as exact positive numbers."""
    if text is None:
        return None
    parts = text.split(":") if isinstance(text, str) else list(text)
    weights = [_ratio(p, "a year weight") for p in parts]
    if not weights or any(w <= 0 for w in weights):
        raise ArgumentError(f"year weights must be positive numbers such as 1:2:7, got {text!r}")
    return weights


def _template_rows(path: Any) -> tuple[list[str], dict[str, dict[str, str]]]:
    """A weights table in the policies' format: its header and its rows by DRG code (names,
    basic flag, coefficients, and whatever other columns the region's table has)."""
    if path is None:
        return [], {}
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CalibrationError("template weights table is missing", file=path) from None
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    if not rows or "DRG编码" not in rows[0]:
        raise CalibrationError("template has no 'DRG编码' column", file=path, row=1)
    return [c for c in reader.fieldnames or () if c], {r["DRG编码"].strip(): r for r in rows}


def _is_standard(column: str) -> bool:
    """A published payment standard (支付标准) column: RW × base rate × coefficient of the *old*
    weights, so it is written empty (a policy reads an empty cell as "none published") rather
    than copied beside a new RW it would contradict."""
    return "支付标准" in column


# ------------------------------------------------------------------------------ calibrate


def calibrate(
    history: Any,
    *,
    ruleset: Any = None,
    year_weights: str | Sequence[Any] | None = None,
    years: Sequence[int] | None = None,
    trim: str = "log-sd",
    sd: Any = 3,
    quantiles: tuple[Any, Any] = ("0.025", "0.975"),
    quantile_min_cases: int = 25,
    min_cases: int = 10,
    merge_small: bool = False,
    budgets: Mapping[str | None, Any] | None = None,
    target_year: int | None = None,
    template: Any = None,
    cost_column: str = "total_cost",
) -> pa.Table:
    """Relative weights per DRG from history (the rules: this module's docstring).

    ``history``: a file or folder (CSV/Parquet), an Arrow table, a list of them, or
    ``{year: source}`` (then every row of the source counts for that year; otherwise the
    year of ``discharge_date``). Grouped cases need ``drg`` (and ``status``, ``adrg`` when
    they have them); raw cases are grouped with ``ruleset``. ``years`` (oldest first) are the
    years ``year_weights`` refer to (default: the years in the history); a case of another
    year is an error. ``budgets``: ``{None: yuan}`` for all cases or ``{scheme: yuan}`` (a
    scheme name such as ``employee`` or an ``insurance_type`` code). ``template``: a weights
    table whose names, basic-group flags and level coefficients are copied, and whose other
    columns are carried (copied per DRG; published standards, 支付标准, written empty since
    they belong to the old RW).

    Returns a table with the policies' weights columns plus ``cases``, ``trimmed``,
    ``mean_cost``, ``cv``, ``stable`` and ``merged_into``, one row per DRG in code order; the
    run's summary (rows read and excluded, years, base rates) is in its metadata
    (:func:`summary_of`).
    """
    if trim not in TRIM_RULES:
        raise ArgumentError(f"trim must be one of {', '.join(TRIM_RULES)}, got {trim!r}")
    sd_value = float(_ratio(sd, "sd"))
    if not sd_value > 0:
        raise ArgumentError(f"sd must be a positive number of standard deviations, got {sd!r}")
    low, high = (_ratio(q, "a quantile") for q in quantiles)
    if not 0 < low < high < 1:
        raise ArgumentError(f"quantiles must satisfy 0 < low < high < 1, got {quantiles!r}")
    if min_cases < 1 or quantile_min_cases < 1:
        raise ArgumentError("min_cases and quantile_min_cases must be at least 1")
    weights_list = parse_year_weights(year_weights)

    excluded: Counter = Counter()
    chunks: list[_Chunk] = []
    rows_read = 0
    allowed = {int(y) for y in years} if years is not None else None
    for name, table, offset, year in _sources(history):
        rows_read += table.num_rows
        chunks.append(_cases_of(name, table, offset, year, ruleset, cost_column, allowed, excluded))
    used = sum(len(c.cents) for c in chunks)
    if not used:
        raise CalibrationError("the history has no grouped case to calibrate from")
    drg_text = pa.chunked_array([c.drg for c in chunks], pa.string()).combine_chunks()
    adrg_text = pa.chunked_array([c.adrg for c in chunks], pa.string()).combine_chunks()
    scheme_text = pa.chunked_array([c.scheme for c in chunks], pa.string()).combine_chunks()
    case_year = np.concatenate([c.year for c in chunks])
    case_cents = np.concatenate([c.cents for c in chunks])
    found = sorted(int(y) for y in np.unique(case_year))
    year_list = sorted(allowed) if allowed is not None else found
    for y in year_list:
        if y not in found:
            raise ArgumentError(f"no grouped case of year {y} in the history")
    if weights_list is None:
        weights_list = [Fraction(1)] * len(year_list)
    if len(weights_list) != len(year_list):
        raise ArgumentError(
            f"{len(weights_list)} year weights for {len(year_list)} years "
            f"({', '.join(map(str, year_list))}): give one weight per year, oldest first"
        )
    yw = dict(zip(year_list, weights_list, strict=True))

    # DRGs as integer ids in code order; a DRG's ADRG: the first non-empty adrg given, else
    # the code's first three characters (the national ADRG convention)
    codes = sorted(set(pc.unique(drg_text).to_pylist()))
    drg_id = np.asarray(pc.index_in(drg_text, pa.array(codes, pa.string())), dtype=np.int64)
    adrg_of = {d: d[:3] for d in codes}
    given = pc.and_(pc.is_valid(adrg_text), pc.not_equal(adrg_text, "")).fill_null(False)
    if pc.any(given).as_py():
        at = np.flatnonzero(given.to_numpy(zero_copy_only=False))
        ids, first = np.unique(drg_id[at], return_index=True)
        for d, k in zip(ids.tolist(), at[first].tolist(), strict=True):
            adrg_of[codes[d]] = adrg_text[k].as_py()

    # trim inside each (DRG, year) cell, keep Σc and Σc² of what stays (Python ints: Σc² of
    # large costs leaves int64)
    year_pos = np.searchsorted(np.asarray(year_list), case_year)
    key = drg_id * len(year_list) + year_pos
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    ends = np.r_[starts[1:], len(order)]
    kept: dict[str, dict[int, _Cell]] = defaultdict(dict)
    pool: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    year_tot: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    count: Counter = Counter()
    trimmed: Counter = Counter()
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        k = int(sorted_key[a])
        drg, year = codes[k // len(year_list)], year_list[k % len(year_list)]
        costs = case_cents[order[a:b]].tolist()
        mask = _trimmed_mask(costs, trim, sd_value, low, high, quantile_min_cases)
        stay = [c for c, t in zip(costs, mask, strict=True) if not t]
        count[drg] += len(costs)
        trimmed[drg] += len(costs) - len(stay)
        cell = _Cell(len(stay), sum(stay), sum(c * c for c in stay))
        kept[drg][year] = cell
        p = pool[adrg_of[drg]][year]
        p[0], p[1], p[2] = p[0] + cell.n, p[1] + cell.total, p[2] + cell.squares
        year_tot[year][0] += cell.n
        year_tot[year][1] += cell.total
    for drg in sorted(kept):
        if not any(c.n for c in kept[drg].values()):
            # possible below one SD (k² < (n − 1)/n): no cost is left to price the DRG
            raise CalibrationError(
                f"every case of DRG {drg} was trimmed (log-sd beyond {sd} SD): no cost is left "
                "to weigh it; use a larger --sd"
            )
    overall = _weighted_mean({y: _Cell(n, t, 0) for y, (n, t) in year_tot.items()}, yw)

    header, tmpl = _template_rows(template)
    stats = CALIBRATION_SCHEMA.names[len(WEIGHT_COLUMNS) :]
    # the template's other columns (a TCM flag, published standards…) are carried, so that a
    # policy whose [weights] names them reads the calibrated table as it reads the template
    carried = [c for c in header if c not in WEIGHT_COLUMNS and c not in stats]
    schema = pa.schema(
        [
            *(CALIBRATION_SCHEMA.field(c) for c in WEIGHT_COLUMNS),
            *(pa.field(c, pa.string()) for c in carried),
            *(CALIBRATION_SCHEMA.field(c) for c in stats),
        ]
    )
    out: dict[str, list[Any]] = {f.name: [] for f in schema}
    rw_units: dict[str, int] = {}
    for drg in sorted(kept):
        cells = kept[drg]
        n_kept = sum(c.n for c in cells.values())
        merged = None
        if merge_small and n_kept < min_cases:
            merged = adrg_of[drg]
            cells = {y: _Cell(*v) for y, v in pool[merged].items()}
            n_kept = sum(c.n for c in cells.values())
        mean = _weighted_mean(cells, yw)
        units = half_up(mean / overall * RW_SCALE)
        rw_units[drg] = units
        cv2 = _cv_squared(cells.values())
        stable = n_kept >= min_cases and cv2 < 1
        row = tmpl.get(drg, {})
        kind = (row.get("病组类型") or "").strip()
        out["DRG编码"].append(drg)
        out["DRG名称"].append((row.get("DRG名称") or "").strip())
        out["RW"].append(Decimal(units).scaleb(-9))
        out["基础病组"].append((row.get("基础病组") or "").strip())
        out["病组类型"].append(
            kind if kind in KEPT_TYPES else STABLE_TEXT if stable else UNSTABLE_TEXT
        )
        for col in (*WEIGHT_COLUMNS[5:], *carried):
            out[col].append("" if _is_standard(col) else (row.get(col) or "").strip())
        out["cases"].append(count[drg])
        out["trimmed"].append(trimmed[drg])
        out["mean_cost"].append(Decimal(half_up(mean)).scaleb(-2))
        out["cv"].append(_cv_rounded(cv2))
        out["stable"].append(stable)
        out["merged_into"].append(merged)

    target = int(target_year) if target_year is not None else year_list[-1]
    if target not in year_list:
        raise ArgumentError(f"target year {target} is not one of the years {year_list}")
    base_rates = {}
    for key, budget in (budgets or {}).items():
        amount = _ratio(budget, "a budget") * 100
        if amount.denominator != 1 or amount <= 0:
            # a budget is never rounded: it must be a positive amount in whole cents
            raise ArgumentError(f"a budget must be positive whole cents, got {budget!r}")
        budget_cents = int(amount)
        code = SCHEME_CODES.get(key, key) if key is not None else None
        chosen = case_year == target
        if code is not None:
            in_scheme = pc.is_in(scheme_text, pa.array([code, key], pa.string()))
            chosen &= in_scheme.fill_null(False).to_numpy(zero_copy_only=False)
        per_drg = np.bincount(drg_id[chosen], minlength=len(codes)).tolist()
        expected = sum(rw_units[d] * m for d, m in zip(codes, per_drg, strict=True) if m)
        if expected == 0:
            raise ArgumentError(
                f"no case of {target}{'' if key is None else f' in scheme {key}'} to spread "
                "the budget over"
            )
        rate = half_up(Fraction(budget_cents * RW_SCALE, expected))
        base_rates["all" if key is None else key] = {
            "budget": str(Decimal(budget_cents).scaleb(-2)),
            "expected_weight": str(Decimal(expected).scaleb(-9)),
            "base_rate": str(Decimal(rate).scaleb(-2)),
        }

    summary = {
        "rows_read": rows_read,
        "cases_used": used,
        "excluded": dict(sorted(excluded.items())),
        "trimmed": sum(trimmed.values()),
        "years": year_list,
        "year_weights": [str(w) for w in weights_list],
        "trim": trim,
        "overall_mean_cost": str(Decimal(half_up(overall)).scaleb(-2)),
        "target_year": target,
        "base_rates": base_rates,
    }
    meta = {b"drgkit.calibration": json.dumps(summary, ensure_ascii=False).encode()}
    return pa.table(out, schema=schema.with_metadata(meta))


def summary_of(table: pa.Table) -> dict[str, Any]:
    """The run summary :func:`calibrate` keeps in its table's metadata."""
    return json.loads((table.schema.metadata or {})[b"drgkit.calibration"])


def weights_csv(table: pa.Table) -> bytes:
    """The table as CSV text a policy reads directly; the same table gives the same bytes."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True):
        writer.writerow(
            [
                "" if v is None else ("true" if v else "false") if isinstance(v, bool) else str(v)
                for v in row
            ]
        )
    return buf.getvalue().encode("utf-8")


def write_weights(table: pa.Table, path: str | Path) -> None:
    """Write :func:`calibrate`'s table as a weights CSV (atomically: all or nothing)."""
    with atomic_output(path) as tmp:
        Path(tmp).write_bytes(weights_csv(table))
