"""Reading settled batches and summing them: the streaming half of the indicators.

Each batch becomes integer contributions per case (:class:`_Batch`), summed per key and per
(key, DRG) into Python integers (:class:`Accumulator`), so no total can wrap and the result does not
depend on batch sizes. The ratios are formed in :mod:`._indicators`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _cases
from .._io import CaseSource, open_cases
from .._money import OK, group_sums, rw_units, to_cents
from ..errors import CaseDataError
from ..settlement._output import CONSUMABLE_ALIAS, flags_array, text_of

#: the grouping statuses, each with a ``status_*`` column
STATUSES = ("ok", "ungroupable", "ambiguous", "invalid")
_STATUSES = STATUSES

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
CELL_SUMS = ("grouped", "cost_cases", "cost", "los_cases", "los", "mortality_cases", "deaths")
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


def open_settled(data: Any, what: str) -> CaseSource:
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
    cell: dict[str, np.ndarray]  # per-case contributions to CELL_SUMS (grouped rows)
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


class Accumulator:
    """Partial sums of a stream of settled batches per key and per (key, DRG)."""

    def __init__(self, by: Sequence[str]) -> None:
        self.by = tuple(by)
        self.keys: dict[tuple, int] = {}
        self.drgs: dict[str | None, int] = {}
        self.cells: dict[tuple[int, int], int] = {}
        self.key_sums = _Sums(_KEY_SUMS)
        self.cell_sums = _Sums(CELL_SUMS)
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
            gcell, {k: group_sums(cinv, b.cell[k][rows], len(pairs)) for k in CELL_SUMS}
        )

    def region(self) -> dict[str | None, dict[str, int]]:
        """Σ of the per-(key, DRG) sums per DRG: the region's own reference."""
        names = list(self.drgs)
        out: dict[str | None, dict[str, int]] = {}
        for (_k, d), c in self.cells.items():
            sums = out.setdefault(names[d], dict.fromkeys(CELL_SUMS, 0))
            for name in CELL_SUMS:
                sums[name] += self.cell_sums.get(name, c)
        return out


def accumulate(
    data: Any,
    by: Sequence[str],
    what: str,
    cases: Any = None,
    progress: Callable[[int], None] | None = None,
) -> Accumulator:
    src = open_settled(data, what)
    reader = _Reader(src.schema, by, src.name)
    acc = Accumulator(by)
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
        self.src = open_settled(cases, "cases")
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
