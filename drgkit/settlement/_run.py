"""State of one settlement run (:class:`SettleRun`): prepare a batch (group it if needed, read
money, scheme and level, choose each case's formula and price cell), sum it for the point
values, and finish it into output rows. Partial sums are integers, so results do not depend on
how the cases are batched."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _cases
from .._io import DataWarning
from .._money import (
    OK,
    RW_DECIMALS,
    cents_array,
    coefficient_units,
    exact_int,
    exact_sum,
    scaled_array,
)
from ..errors import CaseDataError
from ..grouping._group import GroupRun
from ..ruleset._model import Ruleset, RulesetSeries
from ..schema import Layout
from . import _kernel as K
from ._inputs import accepted_rulesets, case_money, parse_level, read_hospitals, rows_of
from ._output import (
    P_NOT_COVERED,
    P_NOT_SETTLED,
    PAYMENT_CLASSES,
    SETTLE_FIELDS,
    SPECIAL_CLASS,
    carried_columns,
    carried_names,
    constant,
    flags_array,
    plain,
    settle_schema,
)
from ._policy import Policy, PolicyError
from ._price import PriceBook
from ._sums import Partial, Reduced, SettleSummary

if TYPE_CHECKING:
    from .._resolve import Names

__all__ = ["SettleRun"]


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
    row0: int = 0  # rows of the run before this batch (for messages)


class SettleRun:
    """State of one settlement run."""

    def __init__(
        self,
        policy: Policy,
        ruleset: Any,
        schema: pa.Schema,
        source: str = "<cases>",
        *,
        layout: str | Layout | None = None,
        columns: dict[str, str] | None = None,
        hospitals: Any = None,
        keep: Sequence[str] | None = None,
        check_duplicates: bool = True,
        tracker: Any = None,
        row_offset: int = 0,
        book: PriceBook | None = None,
        names: Names | None = None,
    ) -> None:
        """``ruleset``: a :class:`Ruleset` or :class:`RulesetSeries` (None: the cases must be
        grouped already). ``names``: what the run may look up while it runs (the ruleset a
        name or the policy gives, the rulesets named in grouped input, the layouts); the
        public functions pass :data:`drgkit._resolve.RESOLVER`; without it only objects are
        taken and the built-in layouts are known. ``book``: a price book of the same policy
        to share between runs (partitions of one dataset); cells are pure functions of the
        policy, so sharing only saves time."""
        self.names = names
        self.policy = policy
        self.source = source
        if book is not None and book.policy is not policy:
            raise ValueError("a shared price book must belong to the same policy object")
        self.book = book if book is not None else PriceBook(policy)
        self.grouped_input = all(c in schema.names for c in ("status", "drg"))
        if self.grouped_input:
            self.group_run = None
            ruleset = (
                ruleset
                if ruleset is None or isinstance(ruleset, (Ruleset, RulesetSeries))
                else names.try_ruleset(ruleset)
                if names is not None
                else None
            )
        else:
            if names is not None:
                ruleset = names.ruleset(ruleset, policy)
            elif ruleset is not None and not isinstance(ruleset, (Ruleset, RulesetSeries)):
                raise TypeError(
                    f"SettleRun takes a Ruleset or RulesetSeries (or names=, to "
                    f"resolve {ruleset!r})"
                )
            if ruleset is None:
                raise CaseDataError(
                    "the cases are not grouped (no status/drg columns) and no "
                    "ruleset was given to group them",
                    file=source,
                )
            self.group_run = GroupRun(
                ruleset,
                schema,
                source,
                layout=layout,
                columns=columns,
                check_duplicates=check_duplicates,
                tracker=tracker,
                row_offset=row_offset,
                layouts=names.layouts if names is not None else None,
            )
        self.plan = _cases.plan_columns(
            schema,
            source,
            layout=layout,
            columns=columns,
            fields=SETTLE_FIELDS,
            required=("total_cost",),
            layouts=names.layouts if names is not None else None,
        )
        if policy.share_method == "claim" and not ({"self_pay", "own_pay"} & set(self.plan.source)):
            raise CaseDataError(
                f"policy {policy.id} takes the patient's share from the claim, but the cases "
                "have no self_pay / own_pay columns (use a policy with shares.method = "
                "'ratio', or map the columns)",
                file=source,
            )
        self.keep = list(keep or [])
        for name in self.keep:
            if name not in schema.names:
                raise CaseDataError(
                    f"column {name!r} to keep is not in the input", file=source, column=name
                )
        # the monitoring columns the input has (drgkit.schema.CARRIED_SCHEMA), after the others
        self.carried = carried_names(
            schema, self.plan.source, self.group_run is not None, self.keep
        )
        self.schema = settle_schema(
            policy, pa.schema([schema.field(n) for n in self.keep]), self.carried
        )
        self.hospitals = read_hospitals(hospitals, policy)
        self.rows_done = row_offset
        self.summary = SettleSummary()
        if ruleset is not None:
            versions = ruleset.ordered() if isinstance(ruleset, RulesetSeries) else [ruleset]
            self._rs_hash = {v.id: v.content_hash for v in versions}
        else:
            self._rs_hash = {}
        self.ruleset = ruleset
        self._points_ratio = [self.book.points_ratio(s) for s in range(len(self.book.schemes))]
        # cases grouped with a ruleset the policy does not price (id -> cases, not covered)
        # cases grouped with a ruleset the policy does not price are counted in the summary
        self._accepted = accepted_rulesets(policy)
        self._checked_ids: dict[str, bool] = {}

    # ------------------------------------------------------------------ pass 0: prepare
    def prepare(self, batch: pa.RecordBatch) -> _Prepared:
        n = batch.num_rows
        row0 = self.rows_done
        self.rows_done += n
        if self.group_run is not None:
            grouped = self.group_run.process(batch)
            group = {c: grouped.column(c) for c in ("status", "reason", "drg", "ruleset", "mdc")}
            ids = grouped.column("case_id")
        else:
            group = {c: batch.column(c) for c in ("status", "drg")}
            group["reason"] = (
                batch.column("reason")
                if "reason" in batch.schema.names
                else pa.nulls(n, pa.string())
            )
            group["ruleset"] = (
                batch.column("ruleset")
                if "ruleset" in batch.schema.names
                else pa.nulls(n, pa.string())
            )
            idc = self.plan.column(batch, "case_id")
            ids = (
                idc.cast(pa.string())
                if idc is not None
                else pa.array([str(row0 + i + 1) for i in range(n)])
            )
        cols = {f: self.plan.column(batch, f) for f in self.plan.source}
        p = self.policy
        book = self.book
        status = plain(group["status"])

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
        greason = plain(group["reason"])
        not_settled(
            status_is("invalid"), lambda rows: greason.take(pa.array(rows, pa.int64())).to_pylist()
        )
        # 2. money
        cost, cflag, patient = case_money(cols, n, p, not_settled)
        # 3. scheme and level
        scheme = self._schemes(cols.get("insurance_type"), n)
        not_settled(scheme < 0, "scheme_unknown")
        level, coef = self._levels(cols.get("hospital_level"), cols.get("hospital_id"), n)
        not_settled(level < 0, "level_unknown")
        # 4. the group's row in the published table
        drg = plain(group["drg"])
        row = rows_of(drg, book)

        def special(mask: np.ndarray, kind: str) -> None:
            mask = mask & (formula == K.F_DRG)
            if not mask.any():
                return
            spec = p.specials[kind]
            pclass[mask] = SPECIAL_CLASS[kind]
            if spec.method == "by_item":
                formula[mask] = K.F_BY_ITEM
                item_b[mask] = coefficient_units(spec.factor)
            elif spec.method == "standard":
                formula[mask & (row >= 0)] = K.F_FIXED
                formula[mask & (row < 0)] = K.F_BY_ITEM
                item_b[mask & (row < 0)] = coefficient_units(spec.factor)
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
        cls_of = {
            name: k + 1 for k, name in enumerate(("not_covered", "unstable", "special_review"))
        }
        row_class = np.array(
            [next((cls_of[c] for c in cls_of if c in r.classes), 0) for r in book.rows] + [0],
            dtype=np.int8,
        )
        classes = row_class[np.where(row >= 0, row, len(book.rows))]
        missing_row = (row < 0) & (formula == K.F_DRG)
        special(missing_row | (classes == 1), "not_covered")
        special(classes == 2, "unstable")
        special(classes == 3, "special_review")
        # 6. cells; a cell without a price leaves its cases unsettled
        cell = book.cells(
            np.where(formula >= K.F_FIXED, row, -1),
            np.maximum(level, 0),
            np.maximum(scheme, 0),
            coef,
        )
        priced = formula >= K.F_FIXED
        no_cell = priced & (cell < 0)
        special(no_cell, "not_covered")  # a fixed special without its table row
        cell_bad = np.array([bool(why) for why in book.cell_ok] or [False], dtype=np.bool_)
        bad = priced & (cell >= 0) & cell_bad[np.maximum(cell, 0)]
        not_settled(bad, "no_price")
        pclass[(formula == K.F_DRG) & (pclass < 0)] = -1  # decided by the kernel
        keep_cols = {name: batch.column(name) for name in self.keep}
        return _Prepared(
            batch,
            n,
            ids,
            group,
            formula,
            np.maximum(cell, 0),
            pclass,
            cost,
            cflag == OK,
            patient,
            item_b,
            scheme,
            level,
            reason,
            {**cols, **keep_cols},
            row,
            row0,
        )

    def _schemes(self, arr: pa.Array | None, n: int) -> np.ndarray:
        schemes = self.book.schemes
        if arr is None:
            k = schemes.index(self.policy.default_scheme) if self.policy.default_scheme else -1
            return np.full(n, k, dtype=np.int64)
        uniques, index = _cases.encode_values(arr)
        table = []
        for v in uniques:
            s = self.policy.scheme_of(_cases.value_text(v) or None)
            table.append(schemes.index(s) if s in schemes else -1)
        return np.array(table, dtype=np.int64)[index]

    def _levels(
        self, arr: pa.Array | None, hospital: pa.Array | None, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        book = self.book
        aliases = {
            str(k): str(v)
            for k, v in self.policy.config.get("levels", {}).get("aliases", {}).items()
        }
        level_text: np.ndarray = np.full(n, None, dtype=object)
        if arr is not None:
            uniques, index = _cases.encode_values(arr)
            level_text = np.array([parse_level(v) for v in uniques], dtype=object)[index]
        coef = np.zeros(n, dtype=np.int64)
        if self.hospitals and hospital is not None:
            uniques, index = _cases.encode_values(hospital.cast(pa.string()))
            known_levels = np.array(
                [self.hospitals.get(v, (None, None))[0] for v in uniques], dtype=object
            )[index]
            coefs = [self.hospitals.get(v, (None, None))[1] for v in uniques]
            coef_idx = np.array(
                [book.coefficient_index(c) if c is not None else 0 for c in coefs], dtype=np.int64
            )[index]
            level_text = np.where(known_levels != None, known_levels, level_text)  # noqa: E711
            coef = coef_idx
        if self.policy.default_level:
            missing = level_text == None  # noqa: E711 (element-wise on an object array)
            level_text = np.where(missing, self.policy.default_level, level_text)
        table = {lv: k for k, lv in enumerate(book.levels)}
        keys = np.where(level_text == None, "", level_text).astype(str)  # noqa: E711
        uniq, inverse = np.unique(keys, return_inverse=True)
        mapped = np.array(
            [table.get(aliases.get(t, t), -1) if t else -1 for t in uniq.tolist()], dtype=np.int64
        )
        return (mapped[inverse] if n else np.zeros(0, np.int64)), coef

    def _ruleset_hash(self, ruleset_id: str | None) -> str:
        """Content hash of a ruleset named in the output: the one this run grouped with, or
        (grouped input) the registered ruleset of that id; empty when it is unknown here."""
        if not ruleset_id:
            return ""
        if ruleset_id not in self._rs_hash:
            found = self.names.registered_ruleset(ruleset_id) if self.names is not None else None
            self._rs_hash[ruleset_id] = found.content_hash if found is not None else ""
        return self._rs_hash[ruleset_id]

    # ------------------------------------------------------------------ ruleset check
    def _count_foreign(self, rulesets: pa.Array, pclass: np.ndarray) -> None:
        """Count the cases grouped with a ruleset other than the policy's (rows without a
        ruleset name are not counted: nothing says which grouper made them)."""
        if self._accepted is None or not len(rulesets):
            return
        for item in pc.value_counts(rulesets).to_pylist():
            name = item["values"]
            if name and not self._ruleset_accepted(name):
                self.summary.foreign[name] += item["counts"]
        if self.summary.foreign:
            uncovered = rulesets.filter(pa.array(pclass == P_NOT_COVERED))
            for item in pc.value_counts(uncovered).to_pylist():
                if item["values"] in self.summary.foreign:
                    self.summary.foreign_not_covered[item["values"]] += item["counts"]

    def _ruleset_accepted(self, name: str) -> bool:
        known = self._checked_ids.get(name)
        if known is None:
            assert self._accepted is not None
            if name not in self._accepted:
                # the policy may name a region whose versions (demo -> demo_2024) group cases
                for wanted in list(self._accepted):
                    found = self.names.try_ruleset(wanted) if self.names is not None else None
                    if isinstance(found, RulesetSeries):
                        self._accepted.update(v.id for v in found.versions)
                    if found is not None:
                        self._accepted.add(found.id)
            known = self._checked_ids[name] = name in self._accepted
        return known

    def warn_data(self) -> None:
        """Warn (DataWarning) about what the run's summary found in the input: cases grouped
        with another ruleset than the policy's (``[policy] accepted_rulesets`` lists rulesets
        a policy takes on purpose), patients' self-pay above the payment."""
        for message in self.summary.data_warnings(self.policy):
            warnings.warn(message, DataWarning, stacklevel=3)

    # ------------------------------------------------------------------ pass 1: partial sums
    def _price(self, prep: _Prepared):
        a = self.book.arrays()
        cls, standard, money = K.price_all(
            prep.n,
            prep.formula,
            prep.cell,
            prep.cost,
            prep.item_b,
            a["std_g"],
            a["low_c"],
            a["high_c"],
            a["low_a"],
            a["low_b"],
            a["high_a"],
            a["high_b"],
        )
        points = None
        if self.policy.method == "points":
            nums = np.array([r[0] for r in self._points_ratio], dtype=np.int64)
            dens = np.array([r[1] for r in self._points_ratio], dtype=np.int64)
            sidx = np.maximum(prep.scheme, 0)
            points = K.points_all(
                prep.n,
                prep.formula,
                cls,
                np.maximum(money, 0),
                a["points"][prep.cell] if len(a["points"]) else np.zeros(prep.n, np.int64),
                nums[sidx],
                dens[sidx],
            )
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
            by_points[name] = exact_sum(points[mine & (prep.formula >= K.F_FIXED)])
            by_item[name] = exact_sum(money[mine & (prep.formula == K.F_BY_ITEM)])
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
                    raise PolicyError(
                        f"no point value for scheme {name}: give a budget for it", file=p.path
                    )
                num = exact_int(value, p.value_decimals) * 100
                den = 10 ** (p.point_decimals + p.value_decimals)
                paid = K.pay_points(n, points, prep.formula, num, den)
                pay[mine] = paid[mine]
        pclass = np.where(prep.pclass >= 0, prep.pclass, cls).astype(np.int8)
        settled = prep.formula != K.F_NOT_SETTLED
        # fund and patient
        if p.share_method == "claim":
            # the patient's share is part of the payment: when the claim's self-pay exceeds
            # the payment (a fixed or points payment below what the patient paid), the fund
            # pays 0, never a negative amount; such cases are counted and reported
            over = settled & (prep.patient > pay)
            self.summary.shares_capped += int(over.sum())
            patient = np.where(over, np.maximum(pay, 0), prep.patient)
        else:
            ratios = [coefficient_units(p.fund_ratio.get(s, Decimal(0))) for s in self.book.schemes]
            r = np.array(ratios, dtype=np.int64)[np.maximum(prep.scheme, 0)]
            fund = (2 * pay * r + 1_000_000) // 2_000_000  # round half up of pay·ratio
            patient = pay - fund
        fund = pay - patient
        gain = pay - prep.cost
        has_std = settled & (prep.formula >= K.F_FIXED)
        rw_scaled = self.book.rw_scaled()
        rw_arr = scaled_array(
            rw_scaled[prep.cell] if len(rw_scaled) else np.zeros(n, np.int64),
            RW_DECIMALS,
            settled & (prep.formula >= K.F_FIXED),
        )
        reasons = np.where(settled, None, prep.reason)
        cols = prep.columns

        def text(name: str) -> pa.Array:
            arr = cols.get(name)
            if arr is None:
                return pa.nulls(n, pa.string())
            if pa.types.is_dictionary(arr.type):
                arr = arr.cast(arr.type.value_type)
            return arr.cast(pa.string())

        level_names = (
            pa.array(self.book.levels, pa.string()).take(pa.array(np.maximum(prep.level, 0)))
            if n
            else pa.nulls(0, pa.string())
        )
        level_names = pc.if_else(
            pa.array(prep.level >= 0), level_names, pa.scalar(None, pa.string())
        )
        days, dflag = _cases.parse_dates(cols.get("discharge_date"), n)
        discharge = pa.array(days, pa.int32()).cast(pa.date32())
        discharge = pc.if_else(pa.array(dflag == 0), discharge, pa.scalar(None, pa.date32()))
        readmit = cols.get("readmitted_31d")
        readmit = flags_array(readmit, n)
        rs = plain(prep.group["ruleset"]).cast(pa.string()).dictionary_encode()
        rs_names = rs.cast(pa.dictionary(pa.int16(), pa.string()))
        rs_hash = pa.DictionaryArray.from_arrays(
            rs.indices.cast(pa.int16()),
            pa.array([self._ruleset_hash(x) for x in rs.dictionary.to_pylist()], pa.string()),
        )
        columns = [cols[name] for name in self.keep] + [
            prep.ids,
            text("hospital_id"),
            text("department"),
            text("insurance_type"),
            level_names,
            discharge,
            prep.group["status"]
            if pa.types.is_dictionary(prep.group["status"].type)
            else prep.group["status"]
            .dictionary_encode()
            .cast(pa.dictionary(pa.int8(), pa.string())),
            plain(prep.group["drg"]),
            constant("drg", n).cast(pa.dictionary(pa.int8(), pa.string())),
            plain(prep.group["drg"]),
            rw_arr,
            pa.DictionaryArray.from_arrays(pa.array(pclass, pa.int8()), pa.array(PAYMENT_CLASSES)),
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
            columns.append(
                scaled_array(points, p.point_decimals, settled & (prep.formula >= K.F_FIXED))
            )
        columns += [
            readmit,
            rs_names,
            rs_hash,
            constant(p.id, n),
            constant(p.content_hash, n),
            *carried_columns(
                self.carried, cols, prep.batch, prep.group.get("mdc"), self.source, prep.row0
            ),
        ]
        self._count_foreign(plain(prep.group["ruleset"]).cast(pa.string()), pclass)
        self.summary.add(
            text("hospital_id"),
            settled,
            pclass,
            {
                "payment": np.where(settled, pay, 0),
                "fund_payment": np.where(settled, fund, 0),
                "patient_share": np.where(settled, patient, 0),
                "total_cost": np.where(settled, prep.cost, 0),
            },
            reasons,
        )
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)
