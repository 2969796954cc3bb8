"""Settlement of cases under a policy: per batch, exact, in two passes when points need it.

A :class:`SettleRun` holds what a run needs (policy, ruleset, price book, column plan). Each
batch goes through :meth:`SettleRun.prepare` (group it if it is not grouped yet; read money,
scheme, level; choose each case's formula and price cell), then, for the points method,
:meth:`SettleRun.partial` (integer sums: points and by-item money per scheme) — reduced over the
whole region into :class:`Reduced` (the point values) — and finally :meth:`SettleRun.finish`.
Partial sums are integers, so results do not depend on how the cases are batched.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _cases
from .._io import CaseSource, check_not_input, open_cases, open_writer, write_rejects
from .._jit import set_threads
from ..errors import CaseDataError
from ..grouping._group import GroupRun
from ..ruleset._model import Ruleset, RulesetSeries
from ..schema import Layout
from . import _kernel as K
from .._money import MONEY, OK, cents_array, to_cents
from ._policy import Policy, PolicyError
from ._price import PriceBook

__all__ = ["PAYMENT_CLASSES", "Partial", "Reduced", "SettleRun", "SettleSummary", "settle",
           "settle_batches", "settle_file"]

PAYMENT_CLASSES = ("normal", "low_outlier", "high_outlier", "excluded_stay", "ungroupable",
                   "ambiguous", "unstable", "special_review", "not_covered", "not_settled")
P_NORMAL, P_LOW, P_HIGH, P_EXCLUDED, P_UNGROUPABLE, P_AMBIGUOUS, P_UNSTABLE, P_REVIEW, \
    P_NOT_COVERED, P_NOT_SETTLED = range(10)
_SPECIAL_CLASS = {"excluded_stay": P_EXCLUDED, "ungroupable": P_UNGROUPABLE,
                  "ambiguous": P_AMBIGUOUS, "unstable": P_UNSTABLE,
                  "special_review": P_REVIEW, "not_covered": P_NOT_COVERED}

#: why a case is not settled, beyond the grouping reasons of invalid cases
SETTLE_REASONS = {
    "cost_missing": "the total cost is missing",
    "cost_invalid": "the total cost is not an amount in whole cents",
    "cost_negative": "the total cost is negative (a refund line, not a case)",
    "scheme_unknown": "the insurance scheme is not one the policy prices",
    "level_unknown": "the hospital level is unknown",
    "no_price": "the policy has no price for this group, level and scheme",
    "patient_share_invalid": "the patient's self-pay amounts are not amounts in whole cents",
}

#: decimals of the rw column (weights with more are shown rounded; payments use them exactly)
RW_DECIMALS = 8

SETTLE_FIELDS = ("case_id", "hospital_id", "hospital_level", "insurance_type", "department",
                 "los", "total_cost", "self_pay", "own_pay", "discharge_date",
                 "readmitted_31d", "diagnoses")
GROUP_COLUMNS = ("status", "reason", "mdc", "adrg", "drg")


def settle_schema(policy: Policy, keep: pa.Schema | None = None) -> pa.Schema:
    fields = list(keep) if keep is not None else []
    fields += [
        pa.field("case_id", pa.string()),
        pa.field("hospital_id", pa.string()),
        pa.field("department", pa.string()),
        pa.field("insurance_type", pa.string()),
        pa.field("hospital_level", pa.string()),
        pa.field("discharge_date", pa.date32()),
        pa.field("status", pa.dictionary(pa.int8(), pa.string())),
        pa.field("drg", pa.string()),
        pa.field("rw", pa.decimal128(18, RW_DECIMALS)),
        pa.field("payment_class", pa.dictionary(pa.int8(), pa.string())),
        pa.field("settled", pa.bool_()),
        pa.field("reason", pa.string()),
        pa.field("total_cost", MONEY),
        pa.field("standard", MONEY),
        pa.field("payment", MONEY),
        pa.field("fund_payment", MONEY),
        pa.field("patient_share", MONEY),
        pa.field("gain_loss", MONEY),
    ]
    if policy.method == "points":
        fields.append(pa.field("points", pa.decimal128(18, policy.point_decimals)))
    fields += [
        pa.field("readmitted_31d", pa.bool_()),
        pa.field("ruleset", pa.dictionary(pa.int16(), pa.string())),
        pa.field("ruleset_hash", pa.dictionary(pa.int16(), pa.string())),
        pa.field("policy", pa.dictionary(pa.int16(), pa.string())),
        pa.field("policy_hash", pa.dictionary(pa.int16(), pa.string())),
    ]
    return pa.schema(fields, metadata={
        b"money": "exact yuan (decimal128(18,2)); each case rounded once, half up, to 0.01",
        b"policy": policy.id, b"policy_hash": policy.content_hash})


def read_settled(source: Any) -> pa.Table:
    """A settled-case table (drgkit settle's output) from any input, with its types restored:
    a CSV gives text, which is cast back exactly (money as decimals, flags as booleans)."""
    src = open_cases(source)
    table = pa.Table.from_batches(list(src.batches), schema=src.schema)
    reference = {f.name: f.type for f in settle_schema_fields()}
    columns = []
    for name in table.column_names:
        col = table.column(name)
        want = reference.get(name)
        if want is not None and col.type != want:
            target = want.value_type if pa.types.is_dictionary(want) else want
            try:
                if pa.types.is_string(col.type) and not pa.types.is_string(target):
                    col = pc.if_else(pc.equal(col, ""), pa.scalar(None, col.type), col)
                col = col.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise CaseDataError(f"cannot read as {target}: {exc}", file=src.name,
                                    column=name) from None
        columns.append(col)
    return pa.table(columns, names=table.column_names)


def settle_schema_fields() -> list[pa.Field]:
    """The typed columns of a settlement result (both methods)."""
    fields = list(settle_schema(_SchemaProbe()))
    return fields


class _SchemaProbe:
    method = "points"
    point_decimals = 4
    id = ""
    content_hash = ""


@attrs.frozen(slots=True)
class Partial:
    """Integer sums of a batch for the first pass (points method)."""

    points: Mapping[str, int]  # scheme -> Σ points·10^point_decimals
    by_item: Mapping[str, int]  # scheme -> Σ cents paid by item
    cases: int

    def __add__(self, other: Partial) -> Partial:
        def add(a, b):
            return {k: a.get(k, 0) + b.get(k, 0) for k in {*a, *b}}
        return Partial(add(self.points, other.points), add(self.by_item, other.by_item),
                       self.cases + other.cases)

    @classmethod
    def zero(cls) -> Partial:
        return cls({}, {}, 0)


@attrs.frozen(slots=True)
class Reduced:
    """What the second pass needs from the whole region: point values (yuan per point,
    exact decimals) per budget pool. Small and picklable."""

    point_values: Mapping[str, Decimal] = attrs.field(factory=dict)
    totals: Partial | None = None

    def value_for(self, scheme: str) -> Decimal | None:
        return self.point_values.get(scheme, self.point_values.get("all"))


def point_values(policy: Policy, total: Partial) -> Reduced:
    """Point value per pool: (budget × (1 − reserve) − paid by item) ÷ Σ points, rounded half up
    to ``value_decimals``. A budget named ``all`` pools every scheme."""
    if policy.method != "points":
        return Reduced({}, total)
    if not policy.budget:
        raise PolicyError(f"policy {policy.id} uses points but has no points.budget (give "
                          "it in the policy or with --budget SCHEME=YUAN)", file=policy.path)
    pools: dict[str, Decimal] = {}
    quantum = Decimal(1).scaleb(-policy.value_decimals)
    for pool, budget in policy.budget.items():
        schemes = list(total.points) if pool == "all" else [pool]
        points = sum(total.points.get(s, 0) for s in schemes)
        by_item = sum(total.by_item.get(s, 0) for s in schemes)
        distributable = budget * (1 - policy.reserve) - Decimal(by_item).scaleb(-2)
        if points == 0:
            continue
        if distributable <= 0:
            raise PolicyError(
                f"budget pool {pool!r} leaves nothing for points: budget {budget} × (1 − "
                f"reserve {policy.reserve}) minus {Decimal(by_item).scaleb(-2)} paid by item "
                f"is {distributable}", file=policy.path)
        value = distributable / Decimal(points).scaleb(-policy.point_decimals)
        pools[pool] = value.quantize(quantum, rounding=ROUND_HALF_UP)
    return Reduced(pools, total)


@attrs.define(slots=True, eq=False)
class _Prepared:
    """One batch, ready to price."""

    batch: pa.RecordBatch
    n: int
    ids: pa.Array
    group: dict[str, pa.Array]  # status, reason, drg
    formula: np.ndarray
    cell: np.ndarray
    pclass: np.ndarray  # payment class when not decided by the kernel (else -1)
    cost: np.ndarray
    cost_ok: np.ndarray
    patient: np.ndarray
    item_b: np.ndarray
    scheme: np.ndarray
    level: np.ndarray
    reason: np.ndarray  # object: why each case is not settled (None when it is)
    columns: dict[str, pa.Array]
    rows: np.ndarray


@attrs.define(slots=True)
class SettleSummary:
    """Totals of a run, per hospital, in cents; they reconcile with the case rows."""

    rows: int = 0
    settled: int = 0
    by_class: Counter = attrs.field(factory=Counter)
    by_reason: Counter = attrs.field(factory=Counter)
    hospitals: dict[str, dict[str, int]] = attrs.field(factory=dict)
    point_values: Mapping[str, Decimal] = attrs.field(factory=dict)
    #: rows read; rows written; unreadable CSV lines sent to the rejects file (IO accounting:
    #: rows_in == rows_out + rows_rejected)
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0

    def add(self, hospital: pa.Array, settled: np.ndarray, pclass: np.ndarray,
            amounts: Mapping[str, np.ndarray], reasons: np.ndarray) -> None:
        self.rows += len(settled)
        self.settled += int(settled.sum())
        for k, c in enumerate(np.bincount(pclass, minlength=len(PAYMENT_CLASSES))):
            if c:
                self.by_class[PAYMENT_CLASSES[k]] += int(c)
        named = [r for r in reasons[np.flatnonzero(reasons != None)].tolist() if r]  # noqa: E711
        self.by_reason.update(named)
        encoded = pc.dictionary_encode(hospital.fill_null("")) if len(hospital) else None
        if encoded is None:
            return
        idx = encoded.indices.to_numpy(zero_copy_only=False)
        names = encoded.dictionary.to_pylist()
        for name, values in (("cases", np.ones(len(settled), np.int64)),
                             ("settled", settled.astype(np.int64)), *amounts.items()):
            sums = np.bincount(idx, weights=None, minlength=len(names)) if name == "cases" \
                else _int_bincount(idx, values, len(names))
            for k, hosp in enumerate(names):
                self.hospitals.setdefault(hosp, Counter())[name] += int(sums[k])

    def total(self, name: str) -> int:
        return sum(h.get(name, 0) for h in self.hospitals.values())


def _int_bincount(idx: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Exact integer sums per bin (np.bincount would go through float64)."""
    out = np.zeros(size, dtype=np.int64)
    np.add.at(out, idx, values.astype(np.int64))
    return out


class SettleRun:
    """State of one settlement run."""

    def __init__(self, policy: Policy, ruleset: Any,
                 schema: pa.Schema, source: str = "<cases>", *,
                 layout: str | Layout | None = None, columns: dict[str, str] | None = None,
                 hospitals: Any = None, keep: Sequence[str] | None = None,
                 check_duplicates: bool = True, tracker: Any = None,
                 row_offset: int = 0, book: PriceBook | None = None) -> None:
        """``book``: a price book of the same policy to share between runs (partitions of one
        dataset); cells are pure functions of the policy, so sharing only saves time."""
        self.policy = policy
        self.source = source
        if book is not None and book.policy is not policy:
            raise ValueError("a shared price book must belong to the same policy object")
        self.book = book if book is not None else PriceBook(policy)
        self.grouped_input = all(c in schema.names for c in ("status", "drg"))
        if self.grouped_input:
            self.group_run = None
            ruleset = _try_resolve(ruleset)
        else:
            ruleset = _ruleset_of(ruleset, policy)
            if ruleset is None:
                raise CaseDataError("the cases are not grouped (no status/drg columns) and no "
                                    "ruleset was given to group them", file=source)
            self.group_run = GroupRun(ruleset, schema, source, layout=layout, columns=columns,
                                      check_duplicates=check_duplicates, tracker=tracker,
                                      row_offset=row_offset)
        from ..registry import default_registry

        self.plan = _cases.plan_columns(schema, source, layout=layout, columns=columns,
                                        fields=SETTLE_FIELDS, required=("total_cost",),
                                        layouts=default_registry().layouts)
        if policy.share_method == "claim" and not ({"self_pay", "own_pay"} & set(
                self.plan.source)):
            raise CaseDataError(
                f"policy {policy.id} takes the patient's share from the claim, but the cases "
                "have no self_pay / own_pay columns (use a policy with shares.method = "
                "'ratio', or map the columns)", file=source)
        self.keep = list(keep or [])
        for name in self.keep:
            if name not in schema.names:
                raise CaseDataError(f"column {name!r} to keep is not in the input", file=source,
                                    column=name)
        self.schema = settle_schema(policy, pa.schema([schema.field(n) for n in self.keep]))
        self.hospitals = _hospitals(hospitals, policy)
        self.rows_done = row_offset
        self.summary = SettleSummary()
        if ruleset is not None:
            versions = ruleset.ordered() if isinstance(ruleset, RulesetSeries) else [ruleset]
            self._rs_hash = {v.id: v.content_hash for v in versions}
        else:
            self._rs_hash = {}
        self.ruleset = ruleset
        self._points_ratio = [self.book.points_ratio(s) for s in range(len(self.book.schemes))]

    # ------------------------------------------------------------------ pass 0: prepare
    def prepare(self, batch: pa.RecordBatch) -> _Prepared:
        n = batch.num_rows
        row0 = self.rows_done
        self.rows_done += n
        if self.group_run is not None:
            grouped = self.group_run.process(batch)
            group = {c: grouped.column(c) for c in ("status", "reason", "drg", "ruleset")}
            ids = grouped.column("case_id")
        else:
            group = {c: batch.column(c) for c in ("status", "drg")}
            group["reason"] = batch.column("reason") if "reason" in batch.schema.names else \
                pa.nulls(n, pa.string())
            group["ruleset"] = batch.column("ruleset") if "ruleset" in batch.schema.names \
                else pa.nulls(n, pa.string())
            idc = self.plan.column(batch, "case_id")
            ids = idc.cast(pa.string()) if idc is not None else pa.array(
                [str(row0 + i + 1) for i in range(n)])
        cols = {f: self.plan.column(batch, f) for f in self.plan.source}
        p = self.policy
        book = self.book
        status = _plain(group["status"])

        def status_is(value: str) -> np.ndarray:
            return pc.fill_null(pc.equal(status, value), False).to_numpy(zero_copy_only=False)

        reason = np.full(n, None, dtype=object)
        formula = np.full(n, K.F_DRG, dtype=np.int8)
        pclass = np.full(n, -1, dtype=np.int8)
        item_b = np.zeros(n, dtype=np.int64)

        def not_settled(mask: np.ndarray, why: Any) -> None:
            new = mask & (formula != K.F_NOT_SETTLED)
            if isinstance(why, str):
                reason[new] = why
            else:
                rows = np.flatnonzero(new)
                reason[rows] = np.array(why(rows), dtype=object)
            formula[mask] = K.F_NOT_SETTLED
            pclass[mask] = P_NOT_SETTLED

        # 1. cases the grouper rejected (their reason is the grouper's)
        greason = _plain(group["reason"])
        not_settled(status_is("invalid"),
                    lambda rows: greason.take(pa.array(rows, pa.int64())).to_pylist())
        # 2. money
        cost, cflag = to_cents(cols.get("total_cost"), n)
        not_settled(cflag == 1, "cost_missing")
        not_settled(cflag > 1, "cost_invalid")
        not_settled((cflag == OK) & (cost < 0), "cost_negative")
        patient = np.zeros(n, dtype=np.int64)
        if p.share_method == "claim":
            for name in ("self_pay", "own_pay"):
                if name in cols:
                    cents, flag = to_cents(cols[name], n)
                    not_settled(flag > 1, "patient_share_invalid")
                    patient += np.where(flag == OK, cents, 0)  # a missing part is 0
        # 3. scheme and level
        scheme = self._schemes(cols.get("insurance_type"), n)
        not_settled(scheme < 0, "scheme_unknown")
        level, coef = self._levels(cols.get("hospital_level"), cols.get("hospital_id"), n)
        not_settled(level < 0, "level_unknown")
        # 4. the group's row in the published table
        drg = _plain(group["drg"])
        row = _rows_of(drg, book)

        def special(mask: np.ndarray, kind: str) -> None:
            mask = mask & (formula == K.F_DRG)
            if not mask.any():
                return
            spec = p.specials[kind]
            pclass[mask] = _SPECIAL_CLASS[kind]
            if spec.method == "by_item":
                formula[mask] = K.F_BY_ITEM
                item_b[mask] = int(spec.factor.scaleb(6))
            elif spec.method == "standard":
                formula[mask & (row >= 0)] = K.F_FIXED
                formula[mask & (row < 0)] = K.F_BY_ITEM
                item_b[mask & (row < 0)] = int(spec.factor.scaleb(6))
            else:
                target = book.special_row(kind)
                formula[mask] = K.F_FIXED
                row[mask] = -1 if target is None else target

        # 5. stays outside DRG payment, then ungroupable / ambiguous, then group classes
        if p.los_min is not None or p.los_max is not None:
            los = _cases.parse_scalar(cols.get("los"), n)
            known = (los.kind & _cases.F_INT_OK) != 0
            outside = np.zeros(n, dtype=np.bool_)
            if p.los_min is not None:
                outside |= known & (los.intv < p.los_min)
            if p.los_max is not None:
                outside |= known & (los.intv > p.los_max)
            special(outside, "excluded_stay")
        special(status_is("ungroupable"), "ungroupable")
        special(status_is("ambiguous"), "ambiguous")
        classes = np.zeros(n, dtype=np.int8)
        cls_of = {name: k + 1 for k, name in enumerate(("not_covered", "unstable",
                                                        "special_review"))}
        row_class = np.array([next((cls_of[c] for c in cls_of if c in r.classes), 0)
                              for r in book.rows] + [0], dtype=np.int8)
        classes = row_class[np.where(row >= 0, row, len(book.rows))]
        missing_row = (row < 0) & (formula == K.F_DRG)
        special(missing_row | (classes == 1), "not_covered")
        special(classes == 2, "unstable")
        special(classes == 3, "special_review")
        # 6. cells; a cell without a price leaves its cases unsettled
        cell = book.cells(np.where(formula >= K.F_FIXED, row, -1), np.maximum(level, 0),
                          np.maximum(scheme, 0), coef)
        priced = formula >= K.F_FIXED
        no_cell = priced & (cell < 0)
        special(no_cell, "not_covered")  # a fixed special without its table row
        cell_bad = np.array([bool(why) for why in book.cell_ok] or [False], dtype=np.bool_)
        bad = priced & (cell >= 0) & cell_bad[np.maximum(cell, 0)]
        not_settled(bad, "no_price")
        pclass[(formula == K.F_DRG) & (pclass < 0)] = -1  # decided by the kernel
        keep_cols = {name: batch.column(name) for name in self.keep}
        return _Prepared(batch, n, ids, group, formula, np.maximum(cell, 0), pclass, cost,
                         cflag == OK, patient, item_b, scheme, level, reason,
                         {**cols, **keep_cols}, row)

    def _schemes(self, arr: pa.Array | None, n: int) -> np.ndarray:
        schemes = self.book.schemes
        if arr is None:
            k = schemes.index(self.policy.default_scheme) if self.policy.default_scheme else -1
            return np.full(n, k, dtype=np.int64)
        uniques, index = _cases._encode(arr)
        table = []
        for v in uniques:
            s = self.policy.scheme_of(_cases.value_text(v) or None)
            table.append(schemes.index(s) if s in schemes else -1)
        return np.array(table, dtype=np.int64)[index]

    def _levels(self, arr: pa.Array | None, hospital: pa.Array | None, n: int
                ) -> tuple[np.ndarray, np.ndarray]:
        book = self.book
        aliases = {str(k): str(v) for k, v in self.policy.config.get("levels", {}).get(
            "aliases", {}).items()}
        level_text: np.ndarray = np.full(n, None, dtype=object)
        if arr is not None:
            uniques, index = _cases._encode(arr)
            level_text = np.array([_level_text(v) for v in uniques], dtype=object)[index]
        coef = np.zeros(n, dtype=np.int64)
        if self.hospitals and hospital is not None:
            uniques, index = _cases._encode(hospital.cast(pa.string()))
            known_levels = np.array([self.hospitals.get(v, (None, None))[0] for v in uniques],
                                    dtype=object)[index]
            coefs = [self.hospitals.get(v, (None, None))[1] for v in uniques]
            coef_idx = np.array([book.coefficient_index(c) if c is not None else 0
                                 for c in coefs], dtype=np.int64)[index]
            level_text = np.where(known_levels != None, known_levels, level_text)  # noqa: E711
            coef = coef_idx
        if self.policy.default_level:
            level_text = np.where(level_text == None, self.policy.default_level,  # noqa: E711
                                  level_text)
        table = {lv: k for k, lv in enumerate(book.levels)}
        keys = np.where(level_text == None, "", level_text).astype(str)  # noqa: E711
        uniq, inverse = np.unique(keys, return_inverse=True)
        mapped = np.array([table.get(aliases.get(t, t), -1) if t else -1 for t in uniq.tolist()],
                          dtype=np.int64)
        return (mapped[inverse] if n else np.zeros(0, np.int64)), coef

    def _ruleset_hash(self, ruleset_id: str | None) -> str:
        """Content hash of a ruleset named in the output: the one this run grouped with, or
        (grouped input) the registered ruleset of that id; empty when it is unknown here."""
        if not ruleset_id:
            return ""
        if ruleset_id not in self._rs_hash:
            from ..errors import DrgkitError
            from ..registry import default_registry

            try:
                self._rs_hash[ruleset_id] = default_registry().ruleset(ruleset_id).content_hash
            except DrgkitError:
                self._rs_hash[ruleset_id] = ""
        return self._rs_hash[ruleset_id]

    # ------------------------------------------------------------------ pass 1: partial sums
    def _price(self, prep: _Prepared):
        a = self.book.arrays()
        cls, standard, money = K.price_all(
            prep.n, prep.formula, prep.cell, prep.cost, prep.item_b, a["std_g"], a["low_c"],
            a["high_c"], a["low_a"], a["low_b"], a["high_a"], a["high_b"])
        points = None
        if self.policy.method == "points":
            nums = np.array([r[0] for r in self._points_ratio], dtype=np.int64)
            dens = np.array([r[1] for r in self._points_ratio], dtype=np.int64)
            sidx = np.maximum(prep.scheme, 0)
            points = K.points_all(prep.n, prep.formula, cls, np.maximum(money, 0),
                                  a["points"][prep.cell] if len(a["points"]) else
                                  np.zeros(prep.n, np.int64), nums[sidx], dens[sidx])
        return cls, standard, money, points

    def partial(self, prep: _Prepared) -> Partial:
        """Integer sums of a prepared batch for the point values (points method)."""
        if self.policy.method != "points":
            return Partial({}, {}, prep.n)
        _cls, _std, money, points = self._price(prep)
        by_points: dict[str, int] = {}
        by_item: dict[str, int] = {}
        for k, name in enumerate(self.book.schemes):
            mine = prep.scheme == k
            by_points[name] = int(points[mine & (prep.formula >= K.F_FIXED)].sum())
            by_item[name] = int(money[mine & (prep.formula == K.F_BY_ITEM)].sum())
        return Partial(by_points, by_item, prep.n)

    # ------------------------------------------------------------------ pass 2: pay
    def finish(self, prep: _Prepared, reduced: Reduced | None = None) -> pa.RecordBatch:
        p = self.policy
        n = prep.n
        cls, standard, pay, points = self._price(prep)
        if p.method == "points":
            reduced = reduced or Reduced()
            pay = pay.copy()
            for k, name in enumerate(self.book.schemes):
                value = reduced.value_for(name)
                mine = (prep.scheme == k) & (prep.formula >= K.F_FIXED)
                if not mine.any():
                    continue
                if value is None:
                    raise PolicyError(f"no point value for scheme {name}: give a budget for it",
                                      file=p.path)
                num = int(value.scaleb(p.value_decimals)) * 100
                den = 10 ** (p.point_decimals + p.value_decimals)
                paid = K.pay_points(n, points, prep.formula, num, den)
                pay[mine] = paid[mine]
        pclass = np.where(prep.pclass >= 0, prep.pclass, cls).astype(np.int8)
        settled = prep.formula != K.F_NOT_SETTLED
        # fund and patient
        if p.share_method == "claim":
            patient = prep.patient
        else:
            ratios = [int(p.fund_ratio.get(s, Decimal(0)).scaleb(6)) for s in self.book.schemes]
            r = np.array(ratios, dtype=np.int64)[np.maximum(prep.scheme, 0)]
            fund = (2 * pay * r + 1_000_000) // 2_000_000  # round half up of pay·ratio
            patient = pay - fund
        fund = pay - patient
        gain = pay - prep.cost
        has_std = settled & (prep.formula >= K.F_FIXED)
        rw_scaled = self.book.rw_scaled()
        rw_arr = _scaled_decimal(rw_scaled[prep.cell] if len(rw_scaled) else np.zeros(n, np.int64),
                                 RW_DECIMALS, settled & (prep.formula >= K.F_FIXED))
        reasons = np.where(settled, None, prep.reason)
        cols = prep.columns

        def text(name: str) -> pa.Array:
            arr = cols.get(name)
            if arr is None:
                return pa.nulls(n, pa.string())
            if pa.types.is_dictionary(arr.type):
                arr = arr.cast(arr.type.value_type)
            return arr.cast(pa.string())

        level_names = pa.array(self.book.levels, pa.string()).take(
            pa.array(np.maximum(prep.level, 0))) if n else pa.nulls(0, pa.string())
        level_names = pc.if_else(pa.array(prep.level >= 0), level_names,
                                 pa.scalar(None, pa.string()))
        days, dflag = _cases.parse_dates(cols.get("discharge_date"), n)
        discharge = pa.array(days, pa.int32()).cast(pa.date32())
        discharge = pc.if_else(pa.array(dflag == 0), discharge, pa.scalar(None, pa.date32()))
        readmit = cols.get("readmitted_31d")
        readmit = _flags(readmit, n)
        rs = _plain(prep.group["ruleset"]).cast(pa.string()).dictionary_encode()
        rs_names = rs.cast(pa.dictionary(pa.int16(), pa.string()))
        rs_hash = pa.DictionaryArray.from_arrays(
            rs.indices.cast(pa.int16()),
            pa.array([self._ruleset_hash(x) for x in rs.dictionary.to_pylist()], pa.string()))
        columns = [cols[name] for name in self.keep] + [
            prep.ids,
            text("hospital_id"),
            text("department"),
            text("insurance_type"),
            level_names,
            discharge,
            prep.group["status"] if pa.types.is_dictionary(prep.group["status"].type) else
            prep.group["status"].dictionary_encode().cast(pa.dictionary(pa.int8(), pa.string())),
            _plain(prep.group["drg"]),
            rw_arr,
            pa.DictionaryArray.from_arrays(pa.array(pclass, pa.int8()),
                                           pa.array(PAYMENT_CLASSES)),
            pa.array(settled),
            pa.array(reasons, pa.string(), from_pandas=True),
            cents_array(prep.cost, prep.cost_ok),
            cents_array(standard, has_std),
            cents_array(pay, settled),
            cents_array(fund, settled),
            cents_array(patient, settled),
            cents_array(gain, settled),
        ]
        if p.method == "points":
            columns.append(_scaled_decimal(points, p.point_decimals,
                                           settled & (prep.formula >= K.F_FIXED)))
        columns += [
            readmit,
            rs_names,
            rs_hash,
            _constant(p.id, n),
            _constant(p.content_hash, n),
        ]
        self.summary.add(text("hospital_id"), settled, pclass,
                         {"payment": np.where(settled, pay, 0),
                          "fund_payment": np.where(settled, fund, 0),
                          "patient_share": np.where(settled, patient, 0),
                          "total_cost": np.where(settled, prep.cost, 0)},
                         reasons)
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)


# ------------------------------------------------------------------ helpers


def _plain(arr: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(arr.type):
        return arr.cast(arr.type.value_type)
    return arr


def _constant(value: str, n: int) -> pa.Array:
    """One text for every row, dictionary-encoded (one entry, n zero indices)."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int16)),
                                          pa.array([value], pa.string()))


def _scaled_decimal(values: np.ndarray, scale: int, valid: np.ndarray) -> pa.Array:
    words = np.empty((len(values), 2), dtype=np.int64)
    words[:, 0] = values
    words[:, 1] = np.where(values < 0, -1, 0)
    validity = pa.py_buffer(np.packbits(valid.astype(np.uint8), bitorder="little"))
    return pa.Array.from_buffers(pa.decimal128(18, scale), len(values),
                                 [validity, pa.py_buffer(words)],
                                 null_count=int((~valid).sum()))


def _flags(arr: pa.Array | None, n: int) -> pa.Array:
    if arr is None:
        return pa.nulls(n, pa.bool_())
    if pa.types.is_boolean(arr.type):
        return arr
    uniques, index = _cases._encode(arr)
    truth = {"1", "true", "yes", "y", "是", "t"}
    table = [None if v is None or _cases.value_text(v) == "" else
             _cases.value_text(v).strip().lower() in truth for v in uniques]
    return pa.array([table[k] for k in index.tolist()], pa.bool_())


def _level_text(value: Any) -> str | None:
    text = _cases.value_text(value).strip()
    if text == "":
        return None
    kind, num, iv, _missing = _cases.parse_value(text)
    if kind & _cases.F_NUMBER and num == iv:
        return str(iv)
    return text


def _rows_of(drg: pa.Array, book: PriceBook) -> np.ndarray:
    uniques, index = _cases._encode(drg)
    table = np.array([book.row_index.get(v, -1) if v is not None else -1 for v in uniques],
                     dtype=np.int64)
    return table[index].copy()


def _hospitals(source: Any, policy: Policy) -> dict[str, tuple[str | None, Decimal | None]]:
    """hospital id -> (level, coefficient) from a table with hospital_id, hospital_level
    and/or coefficient columns (CSV path, Arrow table, pandas…)."""
    if source is None:
        return {}
    if isinstance(source, Mapping):
        return {str(k): v for k, v in source.items()}
    src = open_cases(source)
    table = pa.Table.from_batches(list(src.batches), schema=src.schema)
    names = table.column_names
    if "hospital_id" not in names:
        raise CaseDataError(f"the hospitals table needs a hospital_id column; found "
                            f"{', '.join(names)}", file=src.name, column="hospital_id")
    level_col = next((c for c in ("hospital_level", "level") if c in names), None)
    out: dict[str, tuple[str | None, Decimal | None]] = {}
    for k, rec in enumerate(table.to_pylist(), start=2):
        hid = str(rec["hospital_id"])
        coef = rec.get("coefficient")
        if coef is not None and str(coef).strip() != "":
            try:
                coef = Decimal(str(coef).strip())
            except Exception:
                raise CaseDataError(f"coefficient {coef!r} is not a number", file=src.name,
                                    row=k, column="coefficient") from None
        else:
            coef = None
        level = _level_text(rec[level_col]) if level_col else None
        out[hid] = (level, coef)
    return out


# ------------------------------------------------------------------ entry points


def _policy_of(policy: Any, weights: Any = None, overrides: Mapping[str, Any] | None = None
               ) -> Policy:
    if isinstance(policy, Policy):
        return policy
    from ..registry import default_registry

    return default_registry().policy(policy, weights=weights, overrides=overrides)


def _try_resolve(ruleset: Any) -> Ruleset | RulesetSeries | None:
    """The ruleset when it can be found (to name its hash), else None: grouped input does
    not need it."""
    if ruleset is None:
        return None
    from ..errors import DrgkitError

    try:
        return _ruleset_of(ruleset, None)
    except DrgkitError:
        return None


def _ruleset_of(ruleset: Any, policy: Policy | None) -> Ruleset | RulesetSeries | None:
    from ..grouping._group import _resolve

    if ruleset is None and policy is not None and policy.ruleset:
        ruleset = policy.ruleset
    return _resolve(ruleset) if ruleset is not None else None


def settle_batches(
    cases: Any,
    policy: Any,
    ruleset: Any = None,
    *,
    weights: Any = None,
    hospitals: Any = None,
    layout: str | Layout | None = None,
    columns: dict[str, str] | None = None,
    keep: Sequence[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    reduced: Reduced | None = None,
    batch_rows: int | None = None,
    threads: int | None = None,
    check_duplicates: bool = True,
    encoding: str = "utf-8",
    run_hook: Any = None,
    rejects_ok: bool = False,
) -> Iterator[pa.RecordBatch]:
    """Settle cases batch by batch. The points method reads the input twice (first pass:
    partial sums for the point values) unless ``reduced`` gives the point values.

    CSV lines that cannot be read as cases are an error unless ``rejects_ok`` (the caller
    then takes them from the source and writes a rejects file, see :func:`settle_file`)."""
    pol = _policy_of(policy, weights, overrides)
    rs = ruleset  # resolved by SettleRun, only when the cases still need grouping
    kwargs = {"encoding": encoding,
              **({"batch_rows": batch_rows} if batch_rows is not None else {})}
    previous = set_threads(threads) if threads else None
    try:
        if pol.method == "points" and reduced is None:
            if not isinstance(cases, (str, os.PathLike, pa.Table, pa.RecordBatch, list)) and \
                    type(cases).__module__.split(".")[0] not in ("pandas", "polars"):
                # a one-shot stream: keep it in memory to read it twice
                src = open_cases(cases, **kwargs)
                cases = pa.Table.from_batches(list(src.batches), schema=src.schema)
            src = open_cases(cases, **kwargs)
            first = SettleRun(pol, rs, src.schema, src.name, layout=layout, columns=columns,
                              hospitals=hospitals, keep=keep,
                              check_duplicates=check_duplicates)
            total = Partial.zero()
            for batch in src.batches:
                total = total + first.partial(first.prepare(batch))
            reduced = point_values(pol, total)
        src = open_cases(cases, **kwargs)
        run = SettleRun(pol, rs, src.schema, src.name, layout=layout, columns=columns,
                        hospitals=hospitals, keep=keep, check_duplicates=check_duplicates)
        if reduced is not None:
            run.summary.point_values = dict(reduced.point_values)
        if run_hook is not None:
            run_hook(run, src)
        for batch in src.batches:
            yield run.finish(run.prepare(batch), reduced)
        # grouped or not, an unreadable line is never dropped silently
        if src.malformed and not rejects_ok:
            raise CaseDataError(f"{len(src.malformed)} line(s) of the input could not be "
                                f"read as cases (the first: {src.malformed[0].describe()}); "
                                "give a rejects file or group the file first (drgkit group) "
                                "to see them", file=src.name)
        run.summary.rows_rejected = len(src.malformed)
        run.summary.rows_out = run.summary.rows
        run.summary.rows_in = src.counts.rows if src.counts is not None else run.summary.rows
    finally:
        if previous is not None:
            set_threads(previous)


def settle(cases: Any, policy: Any, ruleset: Any = None, **options: Any) -> pa.Table:
    """Settle cases under ``policy`` (grouping them with ``ruleset`` first when they are not
    grouped yet) and return one Arrow table: every input row, in order."""
    holder: list[pa.Schema] = []
    batches = list(settle_batches(cases, policy, ruleset,
                                  run_hook=lambda run, _src: holder.append(run.schema),
                                  **options))
    return pa.Table.from_batches(batches, schema=holder[0])


def settle_file(cases: Any, out: str | os.PathLike[str], policy: Any, ruleset: Any = None, *,
                out_format: str | None = None, progress: Any = None,
                rejects: str | os.PathLike[str] | None = None, **options: Any
                ) -> SettleSummary:
    """Stream cases from ``cases`` to ``out`` (CSV or Parquet); returns the run's totals.

    ``rejects``: where CSV lines that cannot be read as cases go (see
    :func:`drgkit.group_file`); without it such lines are an error. ``out`` may not name
    the input."""
    check_not_input(out, cases)
    if rejects is not None:
        check_not_input(rejects, cases, out)
    writer = open_writer(out, out_format)
    state: dict[str, Any] = {}

    def hook(run: SettleRun, src: CaseSource) -> None:
        state["run"], state["src"] = run, src

    try:
        for batch in settle_batches(cases, policy, ruleset, run_hook=hook,
                                    rejects_ok=rejects is not None, **options):
            writer.write(batch)
            if progress is not None:
                src = state["src"]
                fraction = src.progress() if src.progress else (
                    state["run"].rows_done / src.num_rows if src.num_rows else 0.0)
                progress(min(1.0, fraction), state["run"].rows_done)
        if rejects is not None:
            write_rejects(rejects, state["src"].malformed, state["src"].name)
    except BaseException:
        writer.abort()
        raise
    writer.close(state["run"].schema if "run" in state else None)
    return state["run"].summary
