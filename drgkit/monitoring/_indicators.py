"""Indicators per key over settled cases (CMI, cost and time indices, grouping rate, outlier,
drug and consumable shares, low-risk mortality, readmissions, money, growth).

Streaming and exact: each batch adds integer partial sums (counts, cents, days, RW units) to
accumulators per key and per (key, DRG); the ratios are formed once, at the end, from those
integers (as exact fractions, then one conversion to float64 for display). The result does not
depend on how the cases are batched.

Which cases count (the denominators are output columns too, after the contract columns):

* ``cases``: every row; ``grouped``: status ``ok``; ``status_*``: rows per grouping status;
* money, cost, outliers, drug and consumable costs, growth: **settled** cases (``settled`` true;
  a case that is not settled has no payment and may have no valid cost) — ``settled`` column;
* ``total_weight`` = Σ RW of grouped cases with an RW (priced by a standard: a case paid by item
  has none); ``cmi`` = total_weight ÷ ``weighted_cases``; ``cost_per_weight`` =
  ``weighted_cost`` ÷ total_weight (the cost of those same cases);
* ``cost_index`` = ``indexed_cost`` ÷ ``expected_cost``: Σ cost of the settled grouped cases ÷
  Σ over their DRGs of (cases × the region's mean cost of the DRG); ``time_index`` likewise with
  LOS over grouped cases with a known LOS (``indexed_los`` ÷ ``expected_los``). A DRG the
  reference does not know makes the index null (no invented mean);
* ``total_los`` / ``mean_los``: cases with a known whole LOS (``los_cases``);
* ``drug_cost`` / ``consumable_cost``: Σ over settled cases, null when the column is absent or a
  settled case of the key has none; shares are of ``total_cost``;
* ``deaths``: leaving type 5 (死亡) among cases with a known leaving type (``mortality_cases``);
  low-risk cases: grouped cases of a DRG whose regional risk level is ``low``
  (:class:`RiskCutoffs`);
* ``readmissions_31d`` / ``readmission_rate``: settled grouped cases flagged readmitted among
  those with a known flag (``readmission_known``) — the cases the period settlement's quality
  rule compares (drgkit/settlement/_quality.py);
* growth: ``previous_*`` from the previous period's settled cases with the same key (a month
  key compares with the same month one year earlier: '2023-03' against '2022-03'; a key found
  only in the previous period is listed with 0 cases and no growth);
  ``cost_growth`` = total_cost ÷ previous_total_cost − 1, ``cost_per_case_growth`` = (total_cost
  ÷ settled) ÷ (previous_total_cost ÷ previous_settled) − 1.

A ratio whose denominator is 0, or whose inputs are absent, is null — never a 0 pretending.
Rows are ordered by key (text order, a null key last); a null key value is a key of its own, so
that no case is dropped: Σ over rows of ``cases`` = the number of input rows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation, localcontext
from fractions import Fraction
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _cases
from .._io import CaseSource, open_cases
from .._money import OK, RW_DECIMALS, group_sums, rw_units, to_cents
from ..errors import CaseDataError
from ..schema import MONEY
from ..settlement._output import CONSUMABLE_ALIAS, flags_array, text_of

__all__ = [
    "DENOMINATOR_COLUMNS",
    "INDICATOR_COLUMNS",
    "KEYS",
    "REFERENCE_SCHEMA",
    "RISK_LEVELS",
    "RiskCutoffs",
    "drg_reference",
    "indicator_schema",
    "indicators",
]

#: the keys ``by`` may name; ``month`` is 'YYYY-MM' of ``discharge_date``
KEYS = (
    "hospital_id",
    "department",
    "doctor",
    "mdc",
    "drg",
    "month",
    "scheme",
    "insurance_type",
    "hospital_level",
)

#: Σ of RW: at most 100M cases × RW 1000 with 9 decimals needs more than 18 digits
WEIGHT = pa.decimal128(38, 9)
_F = pa.float64()
_N = pa.int64()
_STATUSES = ("ok", "ungroupable", "ambiguous", "invalid")

#: the output columns after the keys, in order, with their types (the contract)
INDICATOR_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("cases", _N),
    ("grouped", _N),
    ("grouping_rate", _F),
    *((f"status_{s}", _N) for s in _STATUSES),
    ("drg_count", _N),
    ("total_weight", WEIGHT),
    ("cmi", _F),
    ("cost_index", _F),
    ("time_index", _F),
    ("total_cost", MONEY),
    ("mean_cost", _F),
    ("total_los", _N),
    ("mean_los", _F),
    ("cost_per_weight", _F),
    ("high_outliers", _N),
    ("high_outlier_share", _F),
    ("low_outliers", _N),
    ("low_outlier_share", _F),
    ("drug_cost", MONEY),
    ("drug_share", _F),
    ("consumable_cost", MONEY),
    ("consumable_share", _F),
    ("deaths", _N),
    ("low_risk_cases", _N),
    ("low_risk_deaths", _N),
    ("low_risk_mortality", _F),
    ("readmissions_31d", _N),
    ("readmission_rate", _F),
    ("payment", MONEY),
    ("fund_payment", MONEY),
    ("gain_loss", MONEY),
    ("previous_total_cost", MONEY),
    ("cost_growth", _F),
    ("previous_cost_per_case", _F),
    ("cost_per_case_growth", _F),
)

#: the exact numerators and denominators behind the ratios, after the contract columns
DENOMINATOR_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("settled", _N),
    ("weighted_cases", _N),
    ("weighted_cost", MONEY),
    ("indexed_cost", MONEY),
    ("expected_cost", _F),
    ("indexed_los", _N),
    ("expected_los", _F),
    ("los_cases", _N),
    ("mortality_cases", _N),
    ("readmission_known", _N),
    ("previous_settled", _N),
)

#: regional risk levels of a DRG by the z-score of ln(mortality)
RISK_LEVELS = ("low", "medium_low", "medium_high", "high")


@attrs.frozen(slots=True)
class RiskCutoffs:
    """How DRGs get their mortality risk level (低风险组 …) from regional mortality.

    Per DRG ``m = deaths ÷ cases`` (grouped cases with a known leaving type, at least
    ``min_cases`` of them); over the DRGs with ``m > 0``, ``z = (ln m − mean) ÷ sd`` (mean and
    population standard deviation of ln m across those DRGs, unweighted). Levels: ``low`` when
    ``z < low``, ``medium_low`` when ``z < medium``, ``medium_high`` when ``z < high``, else
    ``high`` (the usual cut-offs −1, 0, 1). A DRG without deaths has no ln m and takes no part
    in the mean and sd: ``zero_deaths = "low"`` (default) puts it in the low-risk level (no one
    died there: the lowest risk), ``"none"`` leaves it without a level — regions differ, so it is
    a parameter. A DRG with fewer than ``min_cases`` cases has no level.
    """

    low: float = -1.0
    medium: float = 0.0
    high: float = 1.0
    zero_deaths: str = attrs.field(default="low")
    min_cases: int = 1

    @zero_deaths.validator
    def _check(self, _attr: Any, value: str) -> None:
        if value not in ("low", "none"):
            raise ValueError(f"zero_deaths must be 'low' or 'none', got {value!r}")


def indicator_schema(by: Sequence[str]) -> pa.Schema:
    """The schema of :func:`indicators` for keys ``by``: the keys (text), the contract columns
    (:data:`INDICATOR_COLUMNS`), then the numerators and denominators
    (:data:`DENOMINATOR_COLUMNS`)."""
    return pa.schema(
        [pa.field(k, pa.string()) for k in by]
        + [pa.field(n, t) for n, t in (*INDICATOR_COLUMNS, *DENOMINATOR_COLUMNS)]
    )


# --------------------------------------------------------------------------- reading


#: per-case measures summed per key (numerators and denominators, all integers)
_KEY_SUMS = (
    "cases",
    *(f"status_{s}" for s in _STATUSES),
    "settled",
    "weighted_cases",
    "total_weight",
    "weighted_cost",
    "total_cost",
    "high_outliers",
    "low_outliers",
    "drug_cost",
    "drug_missing",
    "consumable_cost",
    "consumable_missing",
    "total_los",
    "los_cases",
    "deaths",
    "mortality_cases",
    "readmissions_31d",
    "readmission_known",
    "payment",
    "fund_payment",
    "gain_loss",
)
#: per-(key, DRG) measures of grouped cases: what the indices and the risk levels need
_CELL_SUMS = ("grouped", "cost_cases", "cost", "los_cases", "los", "mortality_cases", "deaths")
#: optional settled-table columns a ``cases=`` table may supply (settled name, case names)
_FROM_CASES = (
    ("mdc", ("mdc",)),
    ("los", ("los",)),
    ("leaving_type", ("leaving_type",)),
    ("drug_cost", ("drug_cost",)),
    ("consumables_cost", ("consumables_cost", CONSUMABLE_ALIAS)),
    ("doctor", ("doctor",)),
)


def _iterable(value: Any) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict))


def _open(data: Any, what: str) -> CaseSource:
    """Any settled input as a stream of batches: what :func:`drgkit.open_cases` reads, or an
    iterable (a generator, too) of record batches."""
    if (
        _iterable(data)
        and not isinstance(data, (pa.Table, pa.RecordBatch, pa.RecordBatchReader, list, tuple))
        and not hasattr(data, "__arrow_c_stream__")
        and type(data).__module__.split(".")[0] not in ("pandas", "polars")
    ):
        it = iter(data)
        first = next(it, None)
        if first is None:
            raise CaseDataError(f"the {what} input has no batches", file=f"<{what}>")
        if not isinstance(first, pa.RecordBatch):
            raise CaseDataError(
                f"the {what} input yields {type(first).__name__}, not Arrow record batches",
                file=f"<{what}>",
            )
        return CaseSource(f"<{what} batches>", first.schema, itertools.chain([first], it))
    return open_cases(data)


def _plain(arr: pa.Array) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    return arr


def _bools(arr: pa.Array | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(true, known) of a flag column (booleans, or texts such as 'true', '1', '是')."""
    flags = flags_array(None if arr is None else _plain(arr), n)
    known = ~flags.is_null().to_numpy(zero_copy_only=False)
    yes = flags.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
    return yes & known, known


def _month(arr: pa.Array | None, n: int) -> pa.Array:
    """'YYYY-MM' of each discharge date (null when missing or not a date)."""
    days, flag = _cases.parse_dates(None if arr is None else _plain(arr), n)
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    low = int(months.min()) if n else 0
    uniq, index = _factorize(months - low, int(months.max()) - low + 1 if n else 0)
    names = [f"{1970 + (m + low) // 12:04d}-{(m + low) % 12 + 1:02d}" for m in uniq.tolist()]
    text = pa.array(names, pa.string()).take(pa.array(index))
    return pc.if_else(pa.array(flag == 0), text, pa.scalar(None, pa.string()))


def _factorize(codes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct codes, inverse) of non-negative codes below ``size``: by a lookup
    table when it is small (no sort), else by sorting."""
    if size <= max(4 * len(codes), 1 << 16):
        present = np.zeros(size, dtype=np.bool_)
        present[codes] = True
        ids = np.cumsum(present) - 1
        return np.flatnonzero(present), ids[codes]
    uniq, inverse = np.unique(codes, return_inverse=True)
    return uniq, inverse.reshape(-1)


def _dense(codes: list[np.ndarray], sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(distinct code rows, inverse) of several code columns, combined pairwise into one int64
    code (re-densified after each step, so no product of sizes can overflow)."""
    uniq, inverse = _factorize(codes[0], sizes[0])
    for col, width in zip(codes[1:], sizes[1:], strict=True):
        uniq, inverse = _factorize(inverse * width + col, len(uniq) * width)
    # the code columns of each distinct row, from any row that has it (they all agree)
    some = np.zeros(len(uniq), dtype=np.int64)
    some[inverse] = np.arange(len(inverse))
    rows = np.stack([c[some] for c in codes], axis=1)
    return rows, inverse


def _mdc_of_drg(drg: pa.Array, ok: np.ndarray) -> pa.Array:
    """A grouped case's MDC when the table has none: CHS-DRG codes begin with their MDC's
    letter (GZ13 is in MDCG); other cases have none (null)."""
    first = pc.utf8_slice_codeunits(drg, 0, 1)
    mdc = pc.binary_join_element_wise(pa.scalar("MDC"), first, "")
    return pc.if_else(pa.array(ok), mdc, pa.scalar(None, pa.string()))


@attrs.define(slots=True)
class _Batch:
    """One batch of settled cases as numpy arrays (integers) and key texts."""

    n: int
    keys: list[pa.Array]
    status: np.ndarray  # int8: index in _STATUSES
    drg: pa.Array  # text of the group
    values: dict[str, np.ndarray]  # per-case integer contributions to _KEY_SUMS
    cell: dict[str, np.ndarray]  # per-case contributions to _CELL_SUMS (grouped rows)
    present: dict[str, bool]


class _Reader:
    """Turns settled batches (with the optional columns of a case table) into :class:`_Batch`."""

    def __init__(self, schema: pa.Schema, by: Sequence[str], name: str) -> None:
        self.by = tuple(by)
        self.name = name
        self.names = set(schema.names)
        for need in ("status", "settled", "total_cost"):
            if need not in self.names:
                raise CaseDataError(
                    f"the settled table has no {need!r} column (expected the output of drgkit "
                    f"settle); columns: {', '.join(schema.names)}",
                    file=name,
                    column=need,
                )
        self.group_col = "drg" if "drg" in self.names else "group"
        if self.group_col not in self.names:
            raise CaseDataError(
                "the settled table has neither a 'drg' nor a 'group' column",
                file=name,
                column="drg",
            )

    def column(self, batch: pa.RecordBatch, extra: dict[str, pa.Array], name: str) -> Any:
        if name in batch.schema.names:
            return _plain(batch.column(name))
        if name == "consumables_cost" and CONSUMABLE_ALIAS in batch.schema.names:
            return _plain(batch.column(CONSUMABLE_ALIAS))
        return extra.get(name)

    def read(self, batch: pa.RecordBatch, extra: dict[str, pa.Array], row0: int) -> _Batch:
        n = batch.num_rows
        col = lambda name: self.column(batch, extra, name)  # noqa: E731
        status_text = _plain(batch.column("status")).cast(pa.string())
        status = np.full(n, -1, dtype=np.int8)
        for k, s in enumerate(_STATUSES):
            status[pc.fill_null(pc.equal(status_text, s), False).to_numpy(zero_copy_only=False)] = k
        if (status < 0).any():
            row = int(np.flatnonzero(status < 0)[0])
            raise CaseDataError(
                f"unknown grouping status {status_text[row].as_py()!r} "
                f"(expected one of {', '.join(_STATUSES)})",
                file=self.name,
                row=row0 + row + 1,
                column="status",
            )
        ok = status == 0
        settled, _known = _bools(col("settled"), n)
        drg = _plain(batch.column(self.group_col)).cast(pa.string())
        cost, cflag = to_cents(col("total_cost"), n)
        if (settled & (cflag != OK)).any():
            row = int(np.flatnonzero(settled & (cflag != OK))[0])
            raise CaseDataError(
                "a settled case has no valid total_cost",
                file=self.name,
                row=row0 + row + 1,
                column="total_cost",
            )
        money = {}
        for name in ("payment", "fund_payment", "gain_loss"):
            cents, flag = to_cents(col(name), n)
            money[name] = np.where(settled & (flag == OK), cents, 0)
        rw, rflag = rw_units(col("rw"), n)
        weighted = ok & (rflag == OK)
        pclass = col("payment_class")
        cls = pa.nulls(n, pa.string()) if pclass is None else pclass.cast(pa.string())
        high = pc.fill_null(pc.equal(cls, "high_outlier"), False).to_numpy(zero_copy_only=False)
        low = pc.fill_null(pc.equal(cls, "low_outlier"), False).to_numpy(zero_copy_only=False)
        present = {}
        v: dict[str, np.ndarray] = {
            "cases": np.ones(n, np.int64),
            **{f"status_{s}": (status == k).astype(np.int64) for k, s in enumerate(_STATUSES)},
            "settled": settled.astype(np.int64),
            "weighted_cases": weighted.astype(np.int64),
            "total_weight": np.where(weighted, rw, 0),
            "weighted_cost": np.where(weighted & settled, cost, 0),
            "total_cost": np.where(settled, cost, 0),
            "high_outliers": (settled & high).astype(np.int64),
            "low_outliers": (settled & low).astype(np.int64),
            **money,
        }
        for out, name in (("drug", "drug_cost"), ("consumable", "consumables_cost")):
            arr = col(name)
            present[name] = arr is not None
            cents, flag = to_cents(arr, n)
            good = (flag == OK) & (cents >= 0)
            v[f"{out}_cost"] = np.where(settled & good, cents, 0)
            v[f"{out}_missing"] = (settled & ~good).astype(np.int64)
        present["rw"] = col("rw") is not None
        los_arr = col("los")
        present["los"] = los_arr is not None
        los = _cases.parse_scalar(los_arr, n)
        los_ok = (
            ((los.kind & _cases.F_INT_OK) != 0)
            & (((los.kind & _cases.F_NUMBER) == 0) | (los.num == los.intv))
            & (los.intv >= 0)
        )
        v["total_los"] = np.where(los_ok, los.intv, 0)
        v["los_cases"] = los_ok.astype(np.int64)
        leaving = col("leaving_type")
        present["leaving_type"] = leaving is not None
        lt = (
            pa.nulls(n, pa.string())
            if leaving is None
            else pc.utf8_trim_whitespace(text_of(leaving))
        )
        lt_known = ~pc.is_null(lt).to_numpy(zero_copy_only=False)
        dead = pc.fill_null(pc.equal(lt, "5"), False).to_numpy(zero_copy_only=False)
        v["deaths"] = (dead & lt_known).astype(np.int64)
        v["mortality_cases"] = lt_known.astype(np.int64)
        readmit = col("readmitted_31d")
        present["readmitted_31d"] = readmit is not None
        flagged, fknown = _bools(readmit, n)
        # the cases the period settlement's quality rule compares: settled, with a group
        v["readmissions_31d"] = (flagged & fknown & settled & ok).astype(np.int64)
        v["readmission_known"] = (fknown & settled & ok).astype(np.int64)
        cell = {
            "grouped": ok.astype(np.int64),
            "cost_cases": (ok & settled).astype(np.int64),
            "cost": np.where(ok & settled, cost, 0),
            "los_cases": (ok & los_ok).astype(np.int64),
            "los": np.where(ok & los_ok, los.intv, 0),
            "mortality_cases": (ok & lt_known).astype(np.int64),
            "deaths": (ok & lt_known & dead).astype(np.int64),
        }
        # an ambiguous case's code names its MDC too (GQY is in MDCG)
        has_mdc = ok | (status == _STATUSES.index("ambiguous"))
        keys = [self.key(batch, extra, k, n, drg, has_mdc) for k in self.by]
        return _Batch(n, keys, status, drg, v, cell, present)

    def key(
        self,
        batch: pa.RecordBatch,
        extra: dict[str, pa.Array],
        key: str,
        n: int,
        drg: pa.Array,
        has_mdc: np.ndarray,
    ) -> pa.Array:
        if key == "month":
            return _month(self.column(batch, extra, "discharge_date"), n)
        if key == "drg":
            return drg
        arr = self.column(batch, extra, key)
        if arr is None:
            if key == "mdc":
                return _mdc_of_drg(drg, has_mdc)
            raise CaseDataError(
                f"cannot group by {key!r}: the settled table has no such column (and no "
                "cases= table gives it)",
                file=self.name,
                column=key,
            )
        return text_of(arr)


# --------------------------------------------------------------------------- accumulating


class _Sums:
    """Exact sums per id: Python integers in object arrays, so no total can wrap."""

    def __init__(self, names: Sequence[str]) -> None:
        self.data = {name: np.zeros(0, dtype=object) for name in names}

    def add(self, ids: np.ndarray, local: dict[str, np.ndarray]) -> None:
        size = int(ids.max()) + 1 if len(ids) else 0
        for name, arr in self.data.items():
            if len(arr) < size:
                grown = np.zeros(max(size, 2 * len(arr)), dtype=object)
                grown[: len(arr)] = arr
                self.data[name] = arr = grown
            # ids are distinct within one call, so fancy += adds each once
            arr[ids] += np.asarray(local[name]).astype(object)

    def get(self, name: str, i: int) -> int:
        arr = self.data[name]
        return int(arr[i]) if 0 <= i < len(arr) else 0


class _Acc:
    """Partial sums of a stream of settled batches per key and per (key, DRG)."""

    def __init__(self, by: Sequence[str]) -> None:
        self.by = tuple(by)
        self.keys: dict[tuple, int] = {}
        self.drgs: dict[str | None, int] = {}
        self.cells: dict[tuple[int, int], int] = {}
        self.key_sums = _Sums(_KEY_SUMS)
        self.cell_sums = _Sums(_CELL_SUMS)
        self.present: dict[str, bool] = {}
        self.rows = 0

    def _ids(self, table: dict, values: list) -> np.ndarray:
        return np.array([table.setdefault(v, len(table)) for v in values], dtype=np.int64)

    def add(self, b: _Batch) -> None:
        self.rows += b.n
        for name, here in b.present.items():
            self.present[name] = self.present.get(name, False) or here
        if b.n == 0:
            return
        if self.by:
            codes, uniques = [], []
            for arr in b.keys:
                u, index = _cases.encode_values(arr)
                uniques.append(u)
                codes.append(np.asarray(index, dtype=np.int64))
            combos, inverse = _dense(codes, [len(u) for u in uniques])
            tuples = [
                tuple(
                    None if u[c] is None else str(u[c]) for u, c in zip(uniques, row, strict=True)
                )
                for row in combos.tolist()
            ]
        else:
            inverse = np.zeros(b.n, dtype=np.int64)
            tuples = [()]
        gkey = self._ids(self.keys, tuples)
        m = len(tuples)
        self.key_sums.add(gkey, {k: group_sums(inverse, b.values[k], m) for k in _KEY_SUMS})
        ok = b.status == 0
        if not ok.any():
            return
        rows = np.flatnonzero(ok)
        du, dindex = _cases.encode_values(b.drg.take(pa.array(rows)))
        gdrg = self._ids(self.drgs, du)[np.asarray(dindex, dtype=np.int64)]
        pairs, cinv = _dense([gkey[inverse[rows]], gdrg], [len(self.keys), len(self.drgs)])
        gcell = self._ids(self.cells, [(int(k), int(d)) for k, d in pairs.tolist()])
        self.cell_sums.add(
            gcell, {k: group_sums(cinv, b.cell[k][rows], len(pairs)) for k in _CELL_SUMS}
        )

    def region(self) -> dict[str | None, dict[str, int]]:
        """Σ of the per-(key, DRG) sums per DRG: the region's own reference."""
        names = list(self.drgs)
        out: dict[str | None, dict[str, int]] = {}
        for (_k, d), c in self.cells.items():
            sums = out.setdefault(names[d], dict.fromkeys(_CELL_SUMS, 0))
            for name in _CELL_SUMS:
                sums[name] += self.cell_sums.get(name, c)
        return out


def _stream(
    data: Any,
    by: Sequence[str],
    what: str,
    cases: Any = None,
    progress: Callable[[int], None] | None = None,
) -> _Acc:
    src = _open(data, what)
    reader = _Reader(src.schema, by, src.name)
    acc = _Acc(by)
    extra_rows = _aligned(cases, src.schema) if cases is not None else None
    row0 = 0
    for batch in src.batches:
        extra: dict[str, pa.Array] = {}
        if extra_rows is not None:
            extra = extra_rows.take(batch, row0, src.name)
        acc.add(reader.read(batch, extra, row0))
        row0 += batch.num_rows
        if progress is not None:
            progress(row0)
    if src.malformed:
        bad = src.malformed[0]
        raise CaseDataError(
            f"{len(src.malformed)} line(s) of the {what} input could not be read as cases "
            f"(first: {bad.describe()}); indicators would miss them",
            file=src.name,
            row=bad.row,
        )
    if extra_rows is not None:
        extra_rows.finish(row0, src.name)
    return acc


class _aligned:
    """The case table beside a settled stream, row for row (settle writes one row per input
    case, in order): each settled batch takes the same number of case rows, and the ids must
    agree."""

    def __init__(self, cases: Any, settled_schema: pa.Schema) -> None:
        self.src = _open(cases, "cases")
        names = self.src.schema.names
        self.wanted = {
            out: next((c for c in choices if c in names), None)
            for out, choices in _FROM_CASES
            if out not in settled_schema.names
        }
        self.wanted = {k: v for k, v in self.wanted.items() if v is not None}
        self.columns = [*dict.fromkeys([*self.wanted.values(), "case_id"])]
        self.columns = [c for c in self.columns if c in names]
        self.pending: list[pa.RecordBatch] = []
        self.batches: Iterator[pa.RecordBatch] = iter(self.src.batches)

    def _rows(self, n: int) -> pa.Table:
        have = sum(b.num_rows for b in self.pending)
        while have < n:
            nxt = next(self.batches, None)
            if nxt is None:
                break
            self.pending.append(nxt.select(self.columns))
            have += nxt.num_rows
        table = (
            pa.Table.from_batches(self.pending, schema=self.pending[0].schema)
            if self.pending
            else None
        )
        if table is None or table.num_rows < n:
            return table
        self.pending = [b for b in table.slice(n).to_batches() if b.num_rows]
        return table.slice(0, n)

    def take(self, batch: pa.RecordBatch, row0: int, name: str) -> dict[str, pa.Array]:
        n = batch.num_rows
        rows = self._rows(n)
        if rows is None or rows.num_rows < n:
            raise CaseDataError(
                "the cases table has fewer rows than the settled table (it ends after "
                f"{row0 + (0 if rows is None else rows.num_rows):,})",
                file=self.src.name,
            )
        if "case_id" in rows.column_names and "case_id" in batch.schema.names:
            mine = text_of(_plain(batch.column("case_id")))
            theirs = text_of(_plain(rows.column("case_id")))
            same = pc.fill_null(pc.equal(mine, theirs), False).to_numpy(zero_copy_only=False)
            both_null = mine.is_null().to_numpy(zero_copy_only=False) & theirs.is_null().to_numpy(
                zero_copy_only=False
            )
            bad = ~(same | both_null)
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise CaseDataError(
                    f"the cases table is not the settled table's input row for row: case "
                    f"{theirs[k].as_py()!r} beside settled case {mine[k].as_py()!r}",
                    file=self.src.name,
                    row=row0 + k + 1,
                    column="case_id",
                )
        return {out: _plain(rows.column(col)) for out, col in self.wanted.items()}

    def finish(self, rows: int, name: str) -> None:
        extra = self._rows(1)
        if extra is not None and extra.num_rows:
            raise CaseDataError(
                f"the cases table has more rows than the settled table ({rows:,})",
                file=self.src.name,
                row=rows + 1,
            )


# --------------------------------------------------------------------------- the reference

#: digits of the decimal arithmetic of expected costs and LOS (the DRG means have different
#: denominators, so their weighted sum is formed in 60 digits, far beyond float64's 17)
_DIGITS = 60


@attrs.frozen(slots=True)
class _Ref:
    """Per DRG: mean cost (cents) and LOS as exact fractions, and the risk level."""

    mean_cost: dict[str | None, Fraction]
    mean_los: dict[str | None, Fraction]
    risk: dict[str | None, str | None]
    has_risk: bool


def _levels(
    mortality: dict[str | None, tuple[int, int]], risk: RiskCutoffs
) -> dict[str | None, tuple[float | None, str | None]]:
    """(z, level) per DRG from (deaths, cases); see :class:`RiskCutoffs`."""
    logs = {
        d: math.log(deaths / cases)
        for d, (deaths, cases) in mortality.items()
        if cases >= risk.min_cases and cases > 0 and deaths > 0
    }
    out: dict[str | None, tuple[float | None, str | None]] = {}
    if logs:
        mean = math.fsum(logs.values()) / len(logs)
        sd = math.sqrt(math.fsum((x - mean) ** 2 for x in logs.values()) / len(logs))
    for d, (_deaths, cases) in mortality.items():
        if d in logs:
            z = 0.0 if sd == 0 else (logs[d] - mean) / sd
            if z < risk.low:
                level = "low"
            elif z < risk.medium:
                level = "medium_low"
            elif z < risk.high:
                level = "medium_high"
            else:
                level = "high"
            out[d] = (z, level)
        elif cases >= risk.min_cases and cases > 0 and risk.zero_deaths == "low":
            out[d] = (None, "low")
        else:
            out[d] = (None, None)
    return out


def _ref_from_region(acc: _Acc, risk: RiskCutoffs) -> _Ref:
    region = acc.region()
    levels = _levels({d: (s["deaths"], s["mortality_cases"]) for d, s in region.items()}, risk)
    return _Ref(
        {d: Fraction(s["cost"], s["cost_cases"]) for d, s in region.items() if s["cost_cases"]},
        {d: Fraction(s["los"], s["los_cases"]) for d, s in region.items() if s["los_cases"]},
        {d: lv for d, (_z, lv) in levels.items()},
        acc.present.get("leaving_type", False),
    )


def _exact(value: Any, where: str) -> Fraction | None:
    """A number of a reference table, exactly (a float as the decimal it prints as)."""
    if value is None:
        return None
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidOperation
            return Fraction(Decimal(repr(value)))
        return Fraction(Decimal(str(value).strip()))
    except (InvalidOperation, ValueError):
        raise CaseDataError(
            f"{value!r} is not a number", file="<reference>", column=where
        ) from None


def _ref_from_table(data: Any, risk: RiskCutoffs) -> _Ref:
    """A reference table: drg_reference's output, or a table of ``drg`` with ``mean_cost``
    (yuan) and ``mean_los``, optionally ``risk_level`` (or ``deaths`` and
    ``mortality_cases``)."""
    src = _open(data, "reference")
    table = pa.Table.from_batches(list(src.batches), schema=src.schema)
    names = table.column_names
    if "drg" not in names:
        raise CaseDataError("the reference table needs a 'drg' column", file=src.name, column="drg")
    rows = table.to_pylist()
    drgs = [None if r["drg"] is None else str(r["drg"]) for r in rows]
    seen: set[str | None] = set()
    for k, d in enumerate(drgs):
        if d in seen:
            raise CaseDataError(f"DRG {d} is listed twice", file=src.name, row=k + 2, column="drg")
        seen.add(d)
    mean_cost: dict[str | None, Fraction] = {}
    mean_los: dict[str | None, Fraction] = {}
    for d, r in zip(drgs, rows, strict=True):
        if r.get("cost_cases") and r.get("total_cost") is not None:
            mean_cost[d] = _exact(r["total_cost"], "total_cost") * 100 / int(r["cost_cases"])
        elif r.get("mean_cost") is not None:
            mean_cost[d] = _exact(r["mean_cost"], "mean_cost") * 100
        if r.get("los_cases") and r.get("total_los") is not None:
            mean_los[d] = Fraction(int(r["total_los"]), int(r["los_cases"]))
        elif r.get("mean_los") is not None:
            mean_los[d] = _exact(r["mean_los"], "mean_los")
    if "risk_level" in names:
        bad = [r["risk_level"] for r in rows if r["risk_level"] not in (*RISK_LEVELS, None)]
        if bad:
            raise CaseDataError(
                f"risk_level {bad[0]!r} is not one of {', '.join(RISK_LEVELS)}",
                file=src.name,
                column="risk_level",
            )
        levels = {d: r["risk_level"] for d, r in zip(drgs, rows, strict=True)}
        return _Ref(mean_cost, mean_los, levels, True)
    if "deaths" in names and "mortality_cases" in names:
        mort = {
            d: (int(r["deaths"] or 0), int(r["mortality_cases"] or 0))
            for d, r in zip(drgs, rows, strict=True)
        }
        return _Ref(
            mean_cost, mean_los, {d: lv for d, (_z, lv) in _levels(mort, risk).items()}, True
        )
    return _Ref(mean_cost, mean_los, {}, False)


# --------------------------------------------------------------------------- the output


def _ratio(num: int | Fraction | None, den: int | Fraction | None) -> float | None:
    """num ÷ den once, exactly, as float64; None when either is unknown or den is 0."""
    if num is None or den is None or den == 0:
        return None
    return float(Fraction(num) / Fraction(den))


def _index(num: int, den: Decimal | None) -> float | None:
    """An index: integer numerator ÷ a 60-digit expected value, as float64."""
    if den is None or den == 0:
        return None
    with localcontext() as ctx:
        ctx.prec = _DIGITS
        return float(Decimal(num) / den)


def _expected(
    cells: list[tuple[int, int]], means: dict[str | None, Fraction], drgs: list
) -> Decimal | None:
    """Σ cases × mean of their DRG (60 digits); None when a DRG with cases has no mean."""
    total = Decimal(0)
    with localcontext() as ctx:
        ctx.prec = _DIGITS
        for count, d in cells:
            if count == 0:
                continue
            mean = means.get(drgs[d])
            if mean is None:
                return None
            total += Decimal(count) * Decimal(mean.numerator) / Decimal(mean.denominator)
    return total


def _yuan(cents: int | None) -> Decimal | None:
    return None if cents is None else Decimal(int(cents)).scaleb(-2)


def _rows(acc: _Acc, ref: _Ref, previous: _Acc | None) -> list[dict[str, Any]]:
    by = acc.by
    month = by.index("month") if "month" in by else None

    def shift(key: tuple) -> tuple:
        """A previous key as the current key it compares with: a month one year on."""
        if month is None or key[month] is None:
            return key
        year, mm = key[month].split("-")
        return (*key[:month], f"{int(year) + 1:04d}-{mm}", *key[month + 1 :])

    prev: dict[tuple, list[int]] = {}
    if previous is not None:
        for key, i in previous.keys.items():
            entry = prev.setdefault(shift(key), [0, 0])
            entry[0] += previous.key_sums.get("total_cost", i)
            entry[1] += previous.key_sums.get("settled", i)
    drgs = list(acc.drgs)
    by_key: dict[int, list[int]] = {}
    cell_drg: dict[int, int] = {}
    for (k, d), c in acc.cells.items():
        by_key.setdefault(k, []).append(c)
        cell_drg[c] = d
    keys = dict(acc.keys)
    for key in prev:
        if key not in keys:
            keys[key] = -1  # a key of the previous period only: no current cases
    p = acc.present
    out = []
    for key in sorted(keys, key=_order):
        i = keys[key]

        def get(name: str, i: int = i) -> int:
            return acc.key_sums.get(name, i)

        cells = by_key.get(i, []) if i >= 0 else []
        cs = acc.cell_sums
        row: dict[str, Any] = dict(zip(by, key, strict=True))
        cases, grouped, settled = get("cases"), get("status_ok"), get("settled")
        row["cases"], row["grouped"] = cases, grouped
        row["grouping_rate"] = _ratio(grouped, cases)
        for s in _STATUSES:
            row[f"status_{s}"] = get(f"status_{s}")
        row["drg_count"] = len(cells)
        units, weighted = get("total_weight"), get("weighted_cases")
        has_rw = p.get("rw", True)
        row["total_weight"] = Decimal(units).scaleb(-RW_DECIMALS) if has_rw else None
        row["cmi"] = _ratio(Fraction(units, 10**RW_DECIMALS), weighted) if has_rw else None
        indexed_cost = sum(cs.get("cost", c) for c in cells)
        expected_cost = _expected(
            [(cs.get("cost_cases", c), cell_drg[c]) for c in cells], ref.mean_cost, drgs
        )
        indexed_los = sum(cs.get("los", c) for c in cells)
        expected_los = _expected(
            [(cs.get("los_cases", c), cell_drg[c]) for c in cells], ref.mean_los, drgs
        )
        row["cost_index"] = _index(indexed_cost, expected_cost)
        row["time_index"] = _index(indexed_los, expected_los) if p.get("los") else None
        total = get("total_cost")
        row["total_cost"] = _yuan(total)
        row["mean_cost"] = _ratio(Fraction(total, 100), settled)
        los_cases = get("los_cases")
        row["total_los"] = get("total_los") if p.get("los") else None
        row["mean_los"] = _ratio(get("total_los"), los_cases) if p.get("los") else None
        row["cost_per_weight"] = (
            _ratio(Fraction(get("weighted_cost"), 100), Fraction(units, 10**RW_DECIMALS))
            if has_rw
            else None
        )
        for side in ("high", "low"):
            row[f"{side}_outliers"] = get(f"{side}_outliers")
            row[f"{side}_outlier_share"] = _ratio(get(f"{side}_outliers"), settled)
        for out_name, col in (("drug", "drug_cost"), ("consumable", "consumables_cost")):
            known = p.get(col) and get(f"{out_name}_missing") == 0
            amount = get(f"{out_name}_cost") if known else None
            row[f"{out_name}_cost"] = _yuan(amount)
            row[f"{out_name}_share"] = _ratio(amount, total)
        mortality = p.get("leaving_type")
        row["deaths"] = get("deaths") if mortality else None
        low = [c for c in cells if ref.risk.get(drgs[cell_drg[c]]) == "low"]
        lr = mortality and ref.has_risk
        row["low_risk_cases"] = sum(cs.get("mortality_cases", c) for c in low) if lr else None
        row["low_risk_deaths"] = sum(cs.get("deaths", c) for c in low) if lr else None
        row["low_risk_mortality"] = _ratio(row["low_risk_deaths"], row["low_risk_cases"])
        readmit = p.get("readmitted_31d")
        row["readmissions_31d"] = get("readmissions_31d") if readmit else None
        row["readmission_rate"] = (
            _ratio(get("readmissions_31d"), get("readmission_known")) if readmit else None
        )
        for name in ("payment", "fund_payment", "gain_loss"):
            row[name] = _yuan(get(name))
        found = prev.get(key) if previous is not None else None
        ptotal, psettled = (found[0], found[1]) if found is not None else (None, None)
        row["previous_total_cost"] = _yuan(ptotal)
        row["cost_growth"] = (
            None if ptotal is None or ptotal == 0 or i < 0 else float(Fraction(total, ptotal) - 1)
        )
        row["previous_cost_per_case"] = _ratio(
            None if ptotal is None else Fraction(ptotal, 100), psettled
        )
        row["cost_per_case_growth"] = (
            float(Fraction(total * psettled, settled * ptotal) - 1)
            if ptotal and psettled and settled
            else None
        )
        row["settled"] = settled
        row["weighted_cases"] = weighted
        row["weighted_cost"] = _yuan(get("weighted_cost"))
        row["indexed_cost"] = _yuan(indexed_cost)
        row["expected_cost"] = None if expected_cost is None else float(expected_cost / 100)
        row["indexed_los"] = indexed_los if p.get("los") else None
        row["expected_los"] = (
            None if expected_los is None or not p.get("los") else float(expected_los)
        )
        row["los_cases"] = los_cases
        row["mortality_cases"] = get("mortality_cases")
        row["readmission_known"] = get("readmission_known")
        row["previous_settled"] = psettled
        out.append(row)
    return out


def _order(key: tuple) -> tuple:
    """Text order, a null key value after every text."""
    return tuple((v is None, "" if v is None else v) for v in key)


def _check_by(by: Sequence[str]) -> tuple[str, ...]:
    if isinstance(by, str):
        by = tuple(k.strip() for k in by.split(",") if k.strip())
    by = tuple(by)
    unknown = [k for k in by if k not in KEYS]
    if unknown:
        raise CaseDataError(f"unknown key {unknown[0]!r} in by: keys are {', '.join(KEYS)}")
    if len(set(by)) < len(by):
        raise CaseDataError(f"a key is repeated in by: {', '.join(by)}")
    return by


def drg_reference(
    settled: Any,
    *,
    cases: Any = None,
    risk: RiskCutoffs | None = None,
    progress: Callable[[int], None] | None = None,
) -> pa.Table:
    """The region's per-DRG reference: ``drg``, ``cases`` (grouped), ``cost_cases`` and
    ``total_cost`` (settled grouped cases) and ``mean_cost``, ``los_cases``, ``total_los`` and
    ``mean_los``, ``mortality_cases``, ``deaths``, ``mortality``, ``z`` and ``risk_level``.

    Give it to :func:`indicators` as ``reference=`` to measure a period against another one
    (last year's region). Means are float64 for display; :func:`indicators` uses the exact sums
    when they are present (a user table may give only ``mean_cost`` / ``mean_los`` /
    ``risk_level``, read exactly as decimals)."""
    risk = risk or RiskCutoffs()
    acc = _stream(settled, (), "settled", cases, progress)
    region = acc.region()
    levels = _levels({d: (s["deaths"], s["mortality_cases"]) for d, s in region.items()}, risk)
    mort = acc.present.get("leaving_type", False)
    rows = []
    for d in sorted(region, key=lambda x: (x is None, x or "")):
        s = region[d]
        z, level = levels[d]
        rows.append(
            {
                "drg": d,
                "cases": s["grouped"],
                "cost_cases": s["cost_cases"],
                "total_cost": _yuan(s["cost"]),
                "mean_cost": _ratio(Fraction(s["cost"], 100), s["cost_cases"]),
                "los_cases": s["los_cases"],
                "total_los": s["los"],
                "mean_los": _ratio(s["los"], s["los_cases"]),
                "mortality_cases": s["mortality_cases"] if mort else None,
                "deaths": s["deaths"] if mort else None,
                "mortality": _ratio(s["deaths"], s["mortality_cases"]) if mort else None,
                "z": z if mort else None,
                "risk_level": level if mort else None,
            }
        )
    return pa.Table.from_pylist(rows, schema=REFERENCE_SCHEMA)


#: :func:`drg_reference`
REFERENCE_SCHEMA = pa.schema(
    [
        pa.field("drg", pa.string()),
        pa.field("cases", _N),
        pa.field("cost_cases", _N),
        pa.field("total_cost", MONEY),
        pa.field("mean_cost", _F),
        pa.field("los_cases", _N),
        pa.field("total_los", _N),
        pa.field("mean_los", _F),
        pa.field("mortality_cases", _N),
        pa.field("deaths", _N),
        pa.field("mortality", _F),
        pa.field("z", _F),
        pa.field("risk_level", pa.string()),
    ]
)


def indicators(
    settled: Any,
    by: Sequence[str] = ("hospital_id",),
    *,
    reference: Any = None,
    previous: Any = None,
    cases: Any = None,
    policy: Any = None,
    risk: RiskCutoffs | None = None,
    progress: Callable[[int], None] | None = None,
) -> pa.Table:
    """Indicators per key of settled cases (see the module docstring for every definition).

    ``settled``: the settled table (drgkit settle's output), a path (Parquet or CSV file, or a
    folder of Parquet files) or an iterable of record batches; read batch by batch.
    ``by``: any of :data:`KEYS` (``()``: one row for the whole region).
    ``reference``: the region's per-DRG means (:func:`drg_reference` or a table with ``drg``,
    ``mean_cost``, ``mean_los``, optionally ``risk_level``); None: from the same data.
    ``previous``: the previous period's settled cases (same kinds of input) for growth.
    ``cases``: the case input the settled table came from (same rows, same order), for columns
    the settled table lacks (``los``, ``leaving_type``, ``drug_cost``, ``consumables_cost``,
    ``doctor``, ``mdc``); rows are matched by ``case_id`` and a mismatch is an error.
    ``policy``: only to name it in the metadata. ``risk``: :class:`RiskCutoffs`.
    ``progress``: called with the number of rows read after each batch.

    Returns one row per key (schema :func:`indicator_schema`)."""
    by = _check_by(by)
    risk = risk or RiskCutoffs()
    acc = _stream(settled, by, "settled", cases, progress)
    ref = _ref_from_region(acc, risk) if reference is None else _ref_from_table(reference, risk)
    prev = None
    if previous is not None:
        prev = _stream(previous, by, "previous")
    rows = _rows(acc, ref, prev)
    schema = indicator_schema(by)
    meta = {
        b"by": ",".join(by).encode(),
        b"reference": b"same data" if reference is None else b"given",
        b"rows": str(acc.rows).encode(),
    }
    if policy is not None:
        meta[b"policy"] = str(getattr(policy, "id", policy)).encode()
    try:
        table = pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, OverflowError) as exc:  # a total beyond decimal128(18, 2)
        raise CaseDataError(f"an indicator total does not fit its column: {exc}") from None
    return table.replace_schema_metadata(meta)
