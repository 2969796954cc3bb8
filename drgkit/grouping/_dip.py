"""DIP grouping (按病种分值付费 入组): Arrow batches in, one result row per case out.

The public functions validate and prepare; :mod:`._dip_kernel` computes. Each batch's code
columns are dictionary-encoded by Arrow; every *distinct* code is looked up once (and remembered
for the whole catalogue) for what the catalogue says about it, then the kernel walks the cases.
Every input case comes out: a packet with its score, or a status with a reason.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _cases
from .._codes import IdTracker
from .._io import CaseSource, MalformedRow, open_cases
from .._jit import set_threads
from .._resolve import RESOLVER
from .._write import open_writer
from ..catalogue import _tables as T
from ..catalogue._compile import CompiledCatalogue
from ..catalogue._model import Catalogue, CatalogueSeries
from ..errors import CaseDataError
from ..schema import DIP_RESULT_SCHEMA, Layout
from . import _dip_kernel as K
from ._status import (
    CASE_ID_REASONS,
    INVALID,
    MALFORMED_ROW,
    OK,
    STATUSES,
    UNGROUPABLE,
    Reason,
    version_reasons,
)

__all__ = [
    "DIP_FIELDS",
    "DIP_REASONS",
    "DIP_RESULT_SCHEMA",
    "DipSummary",
    "group_dip",
    "group_dip_batches",
    "group_dip_file",
]

_DIP_REASONS = (
    Reason("", OK, "SUCCESS", "grouped", "入组成功"),
    *CASE_ID_REASONS,
    Reason(
        "principal_dx_missing", INVALID, "", "the case has no principal diagnosis", "主要诊断缺失"
    ),
    Reason(
        "excluded_principal_dx",
        UNGROUPABLE,
        "",
        "the principal diagnosis is on the catalogue's exclusion list",
        "主要诊断在排除目录内",
    ),
    Reason(
        "no_packet",
        UNGROUPABLE,
        "",
        "no packet of the catalogue takes the case and it has no blank packet",
        "未能入组且无空白病种",
    ),
    MALFORMED_ROW,
    *version_reasons("catalogue", "病种目录"),
)
R_DATE_MISSING, R_DATE_INVALID, R_NOT_IN_FORCE = 7, 8, 9
#: reason code -> Reason; ids are positions (the kernel's R_* constants)
DIP_REASONS: dict[str, Reason] = {r.code: r for r in _DIP_REASONS}
_REASON_STATUS = np.array([r.status for r in _DIP_REASONS], dtype=np.int8)
_REASON_TEXTS = [r.text for r in _DIP_REASONS]
TIERS = ("", "pregroup", "merge", "subdivide", "core", "comprehensive", "prefix", "blank")


DIP_FIELDS = (
    "case_id",
    "age",
    "age_days",
    "birth_weight",
    "leaving_type",
    "diagnoses",
    "procedures",
    "ventilation_hours",
)


# ------------------------------------------------------------------------- per-code facts


class CodeFacts:
    """What one catalogue says about each distinct code string, remembered across batches."""

    def __init__(self, compiled: CompiledCatalogue, kind: str) -> None:
        names = compiled.names
        self.kind = kind
        self.ids: dict[str, int] = {}
        self.rows: list[tuple] = []
        self._arrays: tuple[np.ndarray, ...] | None = None
        if kind == "dx":
            self.patterns = {p: i for i, p in enumerate(names["dx_patterns"])}
            self.excluded = frozenset(names["excluded_dx"])
            self.keys = {k: i for i, k in enumerate(names["keys"])}
            self.key_chars = int(names["key_chars"])
            self.cats = {c: i for i, c in enumerate(names["categories"])}
            self.prefix = dict(names["fallback_prefix"])
            self.ranges = [tuple(r) for r in names["fallback_ranges"]]
        else:
            self.patterns = {p: i for i, p in enumerate(names["px_patterns"])}
            self.excluded = frozenset(names["excluded_px"])
            self.attribute = dict(names["px_attribute"])

    def _facts(self, code: str) -> tuple:
        norm = T.normalise(code)
        prefixes = [norm[:n] for n in range(1, len(norm) + 1)]
        pats = tuple(self.patterns[p] for p in prefixes if p in self.patterns)
        excl = any(p in self.excluded for p in prefixes)
        if self.kind == "dx":
            key = self.keys.get(norm[: self.key_chars], -1) if len(norm) >= self.key_chars else -1
            cat = self.cats.get(norm[:3], -1) if len(norm) >= 3 else -1
            fb = -1
            for p in reversed(prefixes[:3]):
                if p in self.prefix:
                    fb = self.prefix[p]
                    break
            else:
                for lo, hi, packet in self.ranges:
                    if lo <= norm[:3] <= hi:
                        fb = packet
                        break
            return norm == "", excl, pats, key, cat, fb
        attr = -1
        for p in reversed(prefixes):
            if p in self.attribute:
                attr = self.attribute[p]
                break
        return norm == "", excl, pats, attr

    def map(self, values: list[str | None]) -> np.ndarray:
        """Fact ids of the given code strings (new strings are looked up once)."""
        out = np.empty(len(values), dtype=np.int32)
        ids = self.ids
        for k, v in enumerate(values):
            v = v or ""
            j = ids.get(v)
            if j is None:
                j = ids[v] = len(self.rows)
                self.rows.append(self._facts(v))
                self._arrays = None
            out[k] = j
        return out

    def arrays(self) -> tuple[np.ndarray, ...]:
        if self._arrays is None:
            rows = self.rows or [self._facts("")]
            ptr = np.zeros(len(rows) + 1, dtype=np.int64)
            np.cumsum([len(r[2]) for r in rows], out=ptr[1:])
            pat = np.array([p for r in rows for p in r[2]] or [0], dtype=np.int32)
            empty = np.array([r[0] for r in rows], dtype=np.bool_)
            excl = np.array([r[1] for r in rows], dtype=np.bool_)
            rest = tuple(
                np.array([r[k] for r in rows], dtype=np.int32) for k in range(3, len(rows[0]))
            )
            self._arrays = (ptr, pat, empty, excl, *rest)
        return self._arrays


def code_column(
    arr: pa.Array | None, n: int, separators: str, field: str, source: str
) -> tuple[np.ndarray, list[str | None], np.ndarray]:
    """(offsets int64[n+1], distinct strings, per-element index into them) of a code column."""
    if arr is None or pa.types.is_null(arr.type):
        return np.zeros(n + 1, dtype=np.int64), [], np.zeros(0, dtype=np.int32)
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_string_view(t):
        arr = arr.cast(pa.large_string())
        t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        pattern = "[" + "".join("\\" + c for c in separators) + "]"
        arr = pc.split_pattern_regex(arr, pattern)
        t = arr.type
    if pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        arr = arr.cast(pa.large_list(t.value_type))
        t = arr.type
    if not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)):
        raise CaseDataError(
            f"codes must be text or a list of texts, got {arr.type}", file=source, column=field
        )
    lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = pc.list_flatten(arr)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if pa.types.is_null(values.type):
        return offsets, [""], np.zeros(len(values), dtype=np.int32)
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    encoded = pc.dictionary_encode(pc.fill_null(values, ""))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    idx = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    return offsets, encoded.dictionary.to_pylist(), idx


def _numbers(field: _cases.ParsedField) -> np.ndarray:
    """The numeric value of a raw field per case; NaN where missing or text."""
    return np.where(field.kind & _cases.F_NUMBER, field.num, np.nan)


# ------------------------------------------------------------------------------- the run


@attrs.define(slots=False)
class DipSummary:
    """Counts of one DIP grouping run (``none`` counts the cases without a value)."""

    cases: int = 0
    by_status: dict[str, int] = attrs.field(factory=dict)
    by_tier: dict[str, int] = attrs.field(factory=dict)
    by_reason: dict[str, int] = attrs.field(factory=dict)
    #: core / comprehensive / blank / primary …, as packets.csv names the packet's kind
    by_packet_kind: dict[str, int] = attrs.field(factory=dict)
    by_packet: dict[str, int] = attrs.field(factory=dict)


class _VersionRun:
    """Groups cases with one catalogue version (its code facts and result strings)."""

    def __init__(
        self,
        catalogue: Catalogue,
        plan: _cases.ColumnPlan,
        source: str,
        summary: DipSummary,
        catalogue_dict: pa.Array,
        index: int,
    ) -> None:
        self.catalogue = catalogue
        self.compiled = catalogue.compiled
        self.plan = plan
        self.source = source
        self.separators = plan.layout.separators
        self.schema = DIP_RESULT_SCHEMA
        self.summary = summary
        self._catalogue_dict = catalogue_dict
        self._catalogue_index = index
        derived = self.compiled.derived
        if "dx" not in derived:
            derived["dx"] = CodeFacts(self.compiled, "dx")
            derived["px"] = CodeFacts(self.compiled, "px")
        self.dx: CodeFacts = derived["dx"]
        self.px: CodeFacts = derived["px"]
        names = self.compiled.names
        self._packets = pa.array(names["packets"] + [None], pa.string())
        self._scores = pa.array(
            [decimal.Decimal(s) for s in names["scores"]] + [None], pa.decimal128(18, 6)
        )
        kinds = list(T.KINDS)
        self._kind_dict = pa.array(kinds, pa.string())
        self._kind_of = np.array(
            [kinds.index(k) for k in names["packet_kinds"]] + [0], dtype=np.int8
        )
        self._status_dict = pa.array(STATUSES, pa.string())
        self._reason_dict = pa.array([r.code for r in _DIP_REASONS], pa.string())
        self._tier_dict = pa.array(TIERS, pa.string())
        self._aux = [
            (names["packets"].index(a[0]), a[1], a[3], a[4], a[5], decimal.Decimal(a[6]))
            for a in names["aux"]
        ]

    def group(
        self, batch: pa.RecordBatch, ids: pa.Array, pre: np.ndarray, detail: dict[int, str]
    ) -> pa.RecordBatch:
        """Result rows of ``batch``; ``pre`` holds reasons found before grouping (kept)."""
        n = batch.num_rows
        col = self.plan.column
        dx_off, dx_uniq, dx_idx = code_column(
            col(batch, "diagnoses"), n, self.separators, "diagnoses", self.source
        )
        px_off, px_uniq, px_idx = code_column(
            col(batch, "procedures"), n, self.separators, "procedures", self.source
        )
        dx_u = self.dx.map(dx_uniq)[dx_idx] if len(dx_idx) else np.zeros(0, np.int32)
        px_u = self.px.map(px_uniq)[px_idx] if len(px_idx) else np.zeros(0, np.int32)
        vent = _numbers(_cases.parse_scalar(col(batch, "ventilation_hours"), n))
        weight = _numbers(_cases.parse_scalar(col(batch, "birth_weight"), n))
        age_days = _numbers(_cases.parse_scalar(col(batch, "age_days"), n))
        packet = np.empty(n, dtype=np.int32)
        tier = np.empty(n, dtype=np.int8)
        reason = np.empty(n, dtype=np.int8)
        c = self.compiled
        K.dip_kernel(
            n,
            dx_off,
            dx_u,
            px_off,
            px_u,
            *self.dx.arrays(),
            *self.px.arrays(),
            vent,
            weight,
            age_days,
            pre,
            c.spec_ptr,
            c.alt_ptr,
            c.items,
            c.r_tier,
            c.r_packet,
            c.r_pdx,
            c.r_sdx,
            c.r_ppx,
            c.r_px,
            c.r_vent,
            c.r_wmin,
            c.r_wmax,
            c.r_agemax,
            c.core_ptr,
            c.c_packet,
            c.c_ppx,
            c.c_rel,
            c.c_order,
            c.p_rank,
            c.tie,
            c.comp,
            c.cons,
            c.chain,
            c.blank,
            packet,
            tier,
            reason,
        )
        detail.update(self._details(reason, dx_off, dx_uniq, dx_idx))
        aux_sub, aux_coef = self._aux_columns(batch, packet, n)
        return self._assemble(ids, packet, tier, reason, detail, aux_sub, aux_coef)

    def _details(
        self, reason: np.ndarray, dx_off: np.ndarray, dx_uniq: list, dx_idx: np.ndarray
    ) -> dict[int, str]:
        detail: dict[int, str] = {}
        for i in np.flatnonzero((reason == K.R_EXCLUDED_PDX) | (reason == K.R_NO_PACKET)):
            code = dx_uniq[dx_idx[dx_off[i]]]
            if reason[i] == K.R_EXCLUDED_PDX:
                detail[int(i)] = f"principal diagnosis {code} is on excluded_dx.csv"
            else:
                detail[int(i)] = (
                    f"principal diagnosis {code}: no core, comprehensive or "
                    "fallback packet and no blank packet"
                )
        return detail

    def _aux_columns(
        self, batch: pa.RecordBatch, packet: np.ndarray, n: int
    ) -> tuple[pa.Array, pa.Array]:
        if not self._aux:
            return pa.nulls(n, pa.string()), pa.nulls(n, pa.decimal128(12, 6))
        values: dict[str, np.ndarray] = {}

        def value(dim: str) -> np.ndarray:
            if dim not in values:
                if dim == "age":  # in days: age_days for infants, else whole years × 365
                    years = _numbers(_cases.parse_scalar(self.plan.column(batch, "age"), n))
                    days = _numbers(_cases.parse_scalar(self.plan.column(batch, "age_days"), n))
                    values[dim] = np.where(years >= 1, years * 365, days)
                elif dim == "death":
                    lt = _numbers(_cases.parse_scalar(self.plan.column(batch, "leaving_type"), n))
                    values[dim] = np.where(lt == 5, 1.0, 0.0)
                elif dim == "severity":
                    arr = batch.column(dim) if dim in batch.schema.names else None
                    raw = arr.to_pylist() if arr is not None else [None] * n
                    values[dim] = np.array(
                        [T.SEVERITIES.index(v) if v in T.SEVERITIES else np.nan for v in raw],
                        dtype=np.float64,
                    )
                else:  # icu_days, cci: optional extra columns of the input
                    arr = batch.column(dim) if dim in batch.schema.names else None
                    values[dim] = _numbers(_cases.parse_scalar(arr, n))
            return values[dim]

        best = np.full(n, -1, dtype=np.int32)
        coef: list[decimal.Decimal] = []
        best_coef = np.zeros(n, dtype=np.float64)
        for k, (pid, dim, lo, hi, _sub, c) in enumerate(self._aux):
            v = value(dim)
            hit = (packet == pid) & (v >= lo) & ((v <= hi) if hi is not None else True)
            # the highest coefficient wins; ties keep the earlier row
            take = hit & ((best < 0) | (float(c) > best_coef))
            best[take] = k
            best_coef[take] = float(c)
            coef.append(c)
        subs = pa.array([a[4] for a in self._aux] + [None], pa.string())
        coefs = pa.array([*coef, None], pa.decimal128(12, 6))
        pick = np.where(best >= 0, best, len(self._aux))
        return subs.take(pick), coefs.take(pick)

    def _assemble(self, ids, packet, tier, reason, detail, aux_sub, aux_coef) -> pa.RecordBatch:
        n = len(packet)
        status = _REASON_STATUS[reason]
        detail_idx = reason.astype(np.int32)
        specific = sorted(detail.items())
        for j, (i, _text) in enumerate(specific):
            detail_idx[i] = len(_REASON_TEXTS) + j
        detail_arr = pa.DictionaryArray.from_arrays(
            pa.array(detail_idx, pa.int32(), mask=status == OK),
            pa.array(_REASON_TEXTS + [t for _i, t in specific], pa.string()),
        )
        pick = np.where(packet >= 0, packet, len(self._packets) - 1)
        none = packet < 0
        columns = [
            ids,
            pa.DictionaryArray.from_arrays(pa.array(status, pa.int8()), self._status_dict),
            pa.DictionaryArray.from_arrays(
                pa.array(reason, pa.int8(), mask=reason == 0), self._reason_dict
            ),
            detail_arr,
            pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int8)), pa.array(["dip"])),
            self._packets.take(pick),
            self._packets.take(pick),
            pa.DictionaryArray.from_arrays(
                pa.array(self._kind_of[pick], pa.int8(), mask=none), self._kind_dict
            ),
            pa.DictionaryArray.from_arrays(pa.array(tier, pa.int8(), mask=none), self._tier_dict),
            self._scores.take(pick),
            aux_sub,
            aux_coef,
            pa.DictionaryArray.from_arrays(
                pa.array(
                    np.full(n, self._catalogue_index, np.int16),
                    pa.int16(),
                    mask=np.full(n, self._catalogue_index < 0),
                ),
                self._catalogue_dict,
            ),
        ]
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)

    def not_grouped(
        self, ids: pa.Array, reason: np.ndarray, detail: dict[int, str]
    ) -> pa.RecordBatch:
        """Rows for cases that never reach a catalogue (reasons decided before grouping)."""
        n = len(reason)
        return self._assemble(
            ids,
            np.full(n, -1, np.int32),
            np.zeros(n, np.int8),
            reason,
            detail,
            pa.nulls(n, pa.string()),
            pa.nulls(n, pa.decimal128(12, 6)),
        )


class DipRun:
    """Groups the batches of one input with a catalogue, or with the versions of a region
    (each case by its discharge date)."""

    def __init__(
        self,
        target: Catalogue | CatalogueSeries,
        schema: pa.Schema,
        source: str,
        *,
        layout: str | Layout | None = None,
        columns: dict[str, str] | None = None,
        keep: Sequence[str] | str | None = None,
        check_duplicates: bool = True,
        layouts: Mapping[str, Layout] | None = None,
    ) -> None:
        """``layouts``: those ``layout`` may name or detection tries (the public functions
        pass the registry's; default the built-in ones)."""
        self.target = target
        self.series = target if isinstance(target, CatalogueSeries) else None
        versions = [v for v, _a, _b in self.series.periods()] if self.series else [target]
        fields = DIP_FIELDS + (("discharge_date",) if self.series else ())
        self.plan = _cases.plan_columns(
            schema, source, layout=layout, columns=columns, fields=fields, layouts=layouts
        )
        self.source = source
        self.keep = _keep_columns(schema, keep, source)
        self.schema = pa.schema(
            [schema.field(n) for n in self.keep] + list(DIP_RESULT_SCHEMA),
            metadata=DIP_RESULT_SCHEMA.metadata,
        )
        self.ids = IdTracker() if check_duplicates else None
        self.rows_done = 0
        self.summary = DipSummary()
        names = pa.array([v.id for v in versions], pa.string())
        self.versions = [
            _VersionRun(v, self.plan, source, self.summary, names, k)
            for k, v in enumerate(versions)
        ]
        self._none = _VersionRun(versions[0], self.plan, source, self.summary, names, -1)

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        n = batch.num_rows
        col = self.plan.column
        ids = _case_ids(col(batch, "case_id"), n, self.rows_done)
        pre = np.zeros(n, dtype=np.int8)
        pre[pc.is_null(ids).to_numpy(zero_copy_only=False)] = K.R_ID_MISSING
        if self.ids is not None:
            seen = self.ids.check(ids, self.rows_done)
            pre[(seen >= 0) & (pre == 0)] = K.R_DUPLICATE
        self.rows_done += n
        if self.series is None or n == 0:
            return self._count(self.versions[0].group(batch, ids, pre, {}), batch)
        days, flag = _cases.parse_dates(col(batch, "discharge_date"), n)
        version = np.where(flag == 0, self.series.select(days), -1)
        pieces, order = [], []
        for k, run in enumerate(self.versions):
            idx = np.flatnonzero(version == k)
            if len(idx):
                take = pa.array(idx)
                pieces.append(run.group(batch.take(take), ids.take(take), pre[idx], {}))
                order.append(idx)
        idx = np.flatnonzero(version < 0)
        if len(idx):
            reason = pre[idx].copy()
            detail: dict[int, str] = {}
            raw = col(batch, "discharge_date")
            for j, i in enumerate(idx):
                if reason[j]:
                    continue
                if flag[i] == 1:
                    reason[j] = R_DATE_MISSING
                elif flag[i] == 2:
                    reason[j] = R_DATE_INVALID
                    detail[j] = f"discharge date {raw[int(i)].as_py()!r} is not a date"
                else:
                    reason[j] = R_NOT_IN_FORCE
                    spans = "; ".join(
                        f"{v.id} {a or '…'} to {b or '…'}" for v, a, b in self.series.periods()
                    )
                    detail[j] = (
                        f"discharge date {_EPOCH + dt.timedelta(days=int(days[i]))} "
                        f"is outside every catalogue of {self.series.region} ({spans})"
                    )
            pieces.append(self._none.not_grouped(ids.take(pa.array(idx)), reason, detail))
            order.append(idx)
        back = np.argsort(np.concatenate(order), kind="stable")
        table = pa.Table.from_batches(pieces, schema=DIP_RESULT_SCHEMA).take(pa.array(back))
        return self._count(table.combine_chunks().to_batches()[0], batch)

    def _count(self, out: pa.RecordBatch, batch: pa.RecordBatch | None) -> pa.RecordBatch:
        if self.keep:
            n = out.num_rows
            kept = [
                batch.column(name)
                if batch is not None
                else pa.nulls(n, self.schema.field(name).type)
                for name in self.keep
            ]
            out = pa.RecordBatch.from_arrays(kept + list(out.columns), schema=self.schema)
        s = self.summary
        s.cases += out.num_rows
        for name in ("status", "tier", "reason", "packet_kind", "packet"):
            counts = getattr(s, "by_" + name)
            for item in pc.value_counts(out.column(name)).to_pylist():
                key = item["values"] or "none"
                counts[key] = counts.get(key, 0) + item["counts"]
        return out

    def malformed_rows(self, rows: list[MalformedRow]) -> pa.RecordBatch | None:
        """Invalid-case rows for CSV lines that could not be split into columns."""
        if not rows:
            return None
        n = len(rows)
        ids = pa.array(
            [(r.text.split(",", 1)[0].strip('"') if r.text else "") or None for r in rows],
            pa.string(),
        )
        detail = {
            i: f"{f'line {r.row}' if r.row else 'a line'} has {r.actual} fields, the "
            f"header has {r.expected}: {r.text[:120]!r}"
            for i, r in enumerate(rows)
        }
        return self._count(
            self._none.not_grouped(ids, np.full(n, K.R_MALFORMED, np.int8), detail), None
        )


def _case_ids(arr: pa.Array | None, n: int, row0: int) -> pa.Array:
    """Text ids, empty -> null; the 1-based row number when the input has no id column."""
    if arr is None:
        return pa.array([str(row0 + i + 1) for i in range(n)], pa.string())
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    empty = pc.equal(arr, "")
    if pc.any(empty).as_py():
        arr = pc.if_else(empty, pa.scalar(None, pa.string()), arr)
    return arr


_EPOCH = dt.date(1970, 1, 1)


def _keep_columns(schema: pa.Schema, keep: Sequence[str] | str | None, source: str) -> list[str]:
    """Input columns to pass through in front of the result columns (``"all"``: every input
    column the result does not itself provide)."""
    if keep is None:
        return []
    if keep == "all":
        return [n for n in schema.names if n not in DIP_RESULT_SCHEMA.names]
    names = [keep] if isinstance(keep, str) else list(keep)
    for name in names:
        if name not in schema.names:
            raise CaseDataError(
                f"column {name!r} to keep is not in the input; columns found: "
                f"{', '.join(schema.names)}",
                file=source,
                column=name,
            )
    clash = [n for n in names if n in DIP_RESULT_SCHEMA.names]
    if clash:
        raise CaseDataError(
            f"kept input column(s) {clash} would collide with result columns of the same name",
            file=source,
            column=clash[0],
        )
    return names


def group_dip_batches(
    cases: Any,
    catalogue: Any,
    *,
    layout: str | Layout | None = None,
    columns: dict[str, str] | None = None,
    keep: Sequence[str] | str | None = None,
    check_duplicates: bool = True,
    batch_rows: int | None = None,
    encoding: str = "utf-8",
    threads: int | None = None,
    run_hook: Callable[[DipRun, CaseSource], None] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Group cases with a DIP catalogue batch by batch; one result batch per input batch.

    Rows the CSV parser could not split come last, as ``invalid``/``malformed_row``.
    """
    target = RESOLVER.catalogue(catalogue)
    src = open_cases(cases, encoding=encoding, **({"batch_rows": batch_rows} if batch_rows else {}))
    run = DipRun(
        target,
        src.schema,
        src.name,
        layout=layout,
        columns=columns,
        keep=keep,
        check_duplicates=check_duplicates,
        layouts=RESOLVER.layouts,
    )
    if run_hook is not None:
        run_hook(run, src)
    previous = set_threads(threads) if threads else None
    try:
        for batch in src.batches:
            yield run.process(batch)
        tail = run.malformed_rows(src.malformed)
        if tail is not None:
            yield tail
    finally:
        if previous is not None:
            set_threads(previous)


def group_dip(cases: Any, catalogue: Any, **options: Any) -> pa.Table:
    """Group cases with a DIP catalogue: every input row, in order, with its packet or status.

    ``cases``: a CSV/Parquet path, Arrow table/batches/reader, pandas or polars frame.
    ``catalogue``: a :class:`~drgkit.Catalogue`, a registered catalogue id or a folder path.
    """
    runs: list[DipRun] = []
    batches = list(
        group_dip_batches(cases, catalogue, run_hook=lambda run, _src: runs.append(run), **options)
    )
    return pa.Table.from_batches(batches, schema=runs[0].schema)


def group_dip_file(
    cases: Any,
    out: str | os.PathLike[str],
    catalogue: Any,
    *,
    out_format: str | None = None,
    progress: Callable[[float, int], None] | None = None,
    **options: Any,
) -> DipSummary:
    """Stream cases to ``out`` (CSV or Parquet by extension), batch by batch; the file appears
    only when every batch is written. ``progress(fraction, rows)`` is called after each batch."""
    writer = open_writer(out, out_format)
    state: dict[str, Any] = {}

    def hook(run: DipRun, src: CaseSource) -> None:
        state["run"], state["src"] = run, src

    try:
        for batch in group_dip_batches(cases, catalogue, run_hook=hook, **options):
            writer.write(batch)
            if progress is not None:
                src, run = state["src"], state["run"]
                if src.progress is not None:
                    fraction = src.progress()
                elif src.num_rows:
                    fraction = run.rows_done / src.num_rows
                else:
                    fraction = 0.0
                progress(min(1.0, fraction), run.rows_done)
    except BaseException:
        writer.abort()
        raise
    writer.close(state["run"].schema if "run" in state else DIP_RESULT_SCHEMA)
    return state["run"].summary
