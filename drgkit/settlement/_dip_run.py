"""DIP settlement of one run (:class:`DipSettleRun`): the same three steps as the DRG run
(prepare a batch, integer partial sums for the point values, finish it into settled rows) so
``settle``, ``settle_dataset`` with partitions and Dask treat both schemes alike.

The rules (DIP.md §4–§5), with the policy's ``[dip]`` section (:class:`DipRules`):

* case points = score × factor × (auxiliary coefficient × hospital coefficient, when the
  variant applies them to the case's class; primary-care packets take no hospital coefficient);
* r = cost ÷ reference (the packet's mean cost at the case's hospital level, else at ``all``, or
  the payment standard at the start-of-year point value); low: r < (or ≤) low_ratio → factor r;
  high: r > high_ratio → factor r − high_ratio + 1 (or + h); above extreme_ratio: special review
  (capped region-wide, see :func:`dip_point_values`), the high formula, or factor h;
* a packet without a reference cost is paid as a normal case (deviation ``no_reference``);
* blank packet: score × factor, or score × r × k × m; ungroupable cases: by item × factor;
* points are rounded once per case, half up, to ``points.point_decimals``; payment = points ×
  point value, half up to the cent; fund payment = payment × fund payment ratio, half up to the
  cent; totals are sums of the case amounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _cases
from .._money import (
    OK,
    TOO_LARGE,
    cents_array,
    coefficient_units,
    exact_int,
    scaled_array,
    to_cents,
)
from ..errors import CaseDataError
from ..schema import Layout
from ._inputs import parse_level, read_hospitals
from ._output import (
    PAYMENT_CLASSES,
    SETTLE_FIELDS,
    constant,
    dip_settle_schema,
    flags_array,
    plain,
)
from ._policy import Policy, PolicyError
from ._sums import Partial, Reduced, SettleSummary

__all__ = ["DEVIATIONS", "DipSettleRun", "resolve_dip_catalogue"]

DEVIATIONS = ("normal", "low", "high", "extreme", "review", "blank", "no_reference", "none")
D_NORMAL, D_LOW, D_HIGH, D_EXTREME, D_REVIEW, D_BLANK, D_NOREF, D_NONE = range(8)
P = {name: k for k, name in enumerate(PAYMENT_CLASSES)}
U = 10**6  # coefficient units


def resolve_dip_catalogue(catalogue: Any, policy: Policy) -> Any:
    from ..grouping._dip import resolve_catalogue

    return resolve_catalogue(catalogue if catalogue is not None else policy.dip.catalogue)


def _half_up(num: int, den: int) -> int:
    """num/den (den > 0) rounded half up, in integers."""
    return (2 * num + den) // (2 * den)


class _Prepared:
    """One batch, ready to price."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


class DipSettleRun:
    """State of one DIP settlement run (the interface of :class:`SettleRun`)."""

    def __init__(self, policy: Policy, catalogue: Any, schema: pa.Schema,
                 source: str = "<cases>", *, layout: str | Layout | None = None,
                 columns: dict[str, str] | None = None, hospitals: Any = None,
                 keep: Sequence[str] | None = None, check_duplicates: bool = True,
                 tracker: Any = None, row_offset: int = 0, book: Any = None) -> None:
        if policy.dip is None:
            raise PolicyError(f"policy {policy.id} is not a dip policy", file=policy.path)
        self.policy = policy
        self.rules = policy.dip
        self.source = source
        self.book = None  # no price book: scores and mean costs come from the catalogue
        self.grouped_input = all(c in schema.names for c in ("status", "packet", "score"))
        target = resolve_dip_catalogue(catalogue, policy)
        self.catalogue = target
        versions = [v for v, _a, _b in target.periods()] if hasattr(target, "periods") \
            else [target]
        # mean cost (cents) per (packet, level): the reference of deviation cases
        self._stats: dict[tuple[str, str], int] = {}
        for v in versions:
            scale = v.info.score_scale
            if self.rules.score_scale is not None and scale != self.rules.score_scale:
                raise PolicyError(f"policy {policy.id} expects scores on the scale "
                                  f"{self.rules.score_scale}, catalogue {v.id} has {scale}",
                                  file=policy.path)
            for (packet, level), st in v.tables.stats.items():
                self._stats.setdefault((packet, level), exact_int(Decimal(st["mean_cost"]), 2))
        if self.grouped_input:
            self.group_run = None
        else:
            from ..grouping._dip import DipRun

            self.group_run = DipRun(target, schema, source, layout=layout, columns=columns,
                                    check_duplicates=check_duplicates)
            if tracker is not None:
                self.group_run.ids = tracker
            self.group_run.rows_done = row_offset
        from ..registry import default_registry

        self.plan = _cases.plan_columns(schema, source, layout=layout, columns=columns,
                                        fields=SETTLE_FIELDS, required=("total_cost",),
                                        layouts=default_registry().layouts)
        if policy.share_method == "claim" and not ({"self_pay", "own_pay"} & set(
                self.plan.source)):
            raise CaseDataError(
                f"policy {policy.id} takes the patient's share from the claim, but the cases "
                "have no self_pay / own_pay columns", file=source)
        self.keep = list(keep or [])
        for name in self.keep:
            if name not in schema.names:
                raise CaseDataError(f"column {name!r} to keep is not in the input", file=source,
                                    column=name)
        self.schema = dip_settle_schema(policy, pa.schema([schema.field(n) for n in self.keep]))
        self.hospitals = read_hospitals(hospitals, policy)
        self.schemes = policy.scheme_names()
        self.rows_done = row_offset
        self.summary = SettleSummary()
        d = self.rules.deviation
        self._low = coefficient_units(d.low_ratio)
        self._high = coefficient_units(d.high_ratio)
        self._extreme = coefficient_units(d.extreme_ratio) if d.extreme_ratio is not None \
            else None
        self._start = {s: Fraction(v) for s, v in self.rules.start_point_value.items()}

    # ------------------------------------------------------------------ prepare
    def prepare(self, batch: pa.RecordBatch) -> _Prepared:
        n = batch.num_rows
        row0 = self.rows_done
        self.rows_done += n
        g = self.group_run.process(batch) if self.group_run is not None else batch
        names = g.schema.names

        def text(name: str) -> pa.Array:
            if name not in names:
                return pa.nulls(n, pa.string())
            return plain(g.column(name)).cast(pa.string())

        idc = g.column("case_id") if "case_id" in names else None
        ids = idc.cast(pa.string()) if idc is not None else pa.array(
            [str(row0 + i + 1) for i in range(n)])
        status = text("status").to_pylist()
        greason = text("reason").to_pylist()
        cols = {f: self.plan.column(batch, f) for f in self.plan.source}
        p = self.policy
        reason = np.full(n, None, dtype=object)
        for i, s in enumerate(status):
            if s not in ("ok", "ungroupable"):
                reason[i] = greason[i] or "not_grouped"

        def unsettled(mask: np.ndarray, why: str) -> None:
            reason[mask & (reason == None)] = why  # noqa: E711

        cost, cflag = to_cents(cols.get("total_cost"), n)
        unsettled(cflag == 1, "cost_missing")
        unsettled(cflag == TOO_LARGE, "cost_too_large")
        unsettled(cflag > 1, "cost_invalid")
        unsettled((cflag == OK) & (cost < 0), "cost_negative")
        patient = np.zeros(n, dtype=np.int64)
        if p.share_method == "claim":
            for name in ("self_pay", "own_pay"):
                if name in cols:
                    cents, flag = to_cents(cols[name], n)
                    unsettled(flag > 1, "patient_share_invalid")
                    patient += np.where(flag == OK, cents, 0)
        arr = cols.get("insurance_type")
        if arr is None:
            s = p.default_scheme
            scheme = np.full(n, self.schemes.index(s) if s in self.schemes else -1, np.int64)
        else:
            uniq, index = _cases._encode(arr)
            tab = [p.scheme_of(_cases.value_text(v) or None) for v in uniq]
            scheme = np.array([self.schemes.index(t) if t in self.schemes else -1
                               for t in tab] + [-1], dtype=np.int64)[index]
        unsettled(scheme < 0, "scheme_unknown")
        level, hcoef = self._levels(cols.get("hospital_level"), cols.get("hospital_id"), n)
        ok = np.array([s == "ok" for s in status], dtype=np.bool_)
        unsettled(ok & (hcoef == None), "level_unknown")  # noqa: E711
        ungroupable = np.array([s == "ungroupable" for s in status], dtype=np.bool_)
        if self.rules.ungroupable_factor is None:
            unsettled(ungroupable, "ungroupable")
        return _Prepared(
            n=n, ids=ids, status=status, status_arr=g.column("status"), group=text("packet"),
            kind=text("packet_kind").to_pylist(), score=_units(g, "score", n),
            aux=_units(g, "aux_coefficient", n), catalogue=text("catalogue"),
            cost=cost, cost_ok=cflag == OK, patient=patient, scheme=scheme, level=level,
            hcoef=hcoef, reason=reason, columns={**cols, **{k: batch.column(k)
                                                            for k in self.keep}})

    def _levels(self, arr: pa.Array | None, hospital: pa.Array | None, n: int
                ) -> tuple[np.ndarray, np.ndarray]:
        level = np.full(n, None, dtype=object)
        if arr is not None:
            uniq, index = _cases._encode(arr)
            level = np.array([parse_level(v) for v in uniq] + [None], dtype=object)[index]
        coef = np.full(n, None, dtype=object)
        if self.hospitals and hospital is not None:
            uniq, index = _cases._encode(hospital.cast(pa.string()))
            known = [self.hospitals.get(v, (None, None)) for v in uniq]
            lv = np.array([k[0] for k in known] + [None], dtype=object)[index]
            cf = np.array([k[1] for k in known] + [None], dtype=object)[index]
            level = np.where(lv != None, lv, level)  # noqa: E711
            coef = cf
        if self.policy.default_level:
            level = np.where(level == None, self.policy.default_level, level)  # noqa: E711
        aliases = {str(k): str(v) for k, v in self.policy.config.get("levels", {}).get(
            "aliases", {}).items()}
        level = np.array([aliases.get(x, x) if x is not None else None for x in level],
                         dtype=object)
        table = self.rules.level_coefficients
        out = np.full(n, None, dtype=object)
        for i in range(n):
            c = coef[i]
            if c is not None:
                out[i] = coefficient_units(c)
            elif not table:
                out[i] = U
            elif level[i] in table:
                out[i] = coefficient_units(table[level[i]])
        return level, out

    # ------------------------------------------------------------------ pricing
    def _price(self, q: _Prepared, approved: frozenset[str] | None) -> dict[str, Any]:
        """Per case: payment class, deviation class, points (×10^point_decimals), money paid
        by item, the factor, the reference and the packet's standard. ``approved``: the case
        ids accepted for special review (None in pass 1: candidates are only marked)."""
        n = q.n
        r = self.rules
        d = r.deviation
        pd = self.policy.point_decimals
        pclass = np.full(n, P["not_settled"], dtype=np.int8)
        dev = np.full(n, D_NONE, dtype=np.int8)
        points = np.zeros(n, dtype=np.int64)
        by_item = np.zeros(n, dtype=np.int64)
        is_points = np.zeros(n, dtype=np.bool_)
        is_item = np.zeros(n, dtype=np.bool_)
        candidate = np.zeros(n, dtype=np.bool_)
        alt_points = np.zeros(n, dtype=np.int64)  # a candidate's points if not approved
        factor: list[Fraction | None] = [None] * n
        ref = np.zeros(n, dtype=np.int64)
        has_ref = np.zeros(n, dtype=np.bool_)
        standard = np.zeros(n, dtype=np.int64)
        has_std = np.zeros(n, dtype=np.bool_)
        group = q.group.to_pylist()
        ids = q.ids.to_pylist() if approved is not None else None
        scale = 10**pd
        den3 = U * U * U
        for i in range(n):
            if q.reason[i] is not None:
                continue
            cost = int(q.cost[i])
            if q.status[i] == "ungroupable":
                f = r.ungroupable_factor
                by_item[i] = _half_up(cost * coefficient_units(f), U)
                is_item[i] = True
                pclass[i] = P["ungroupable"]
                factor[i] = Fraction(f)
                continue
            packet, kind = group[i], q.kind[i]
            score = q.score[i]
            h = q.hcoef[i]
            a = q.aux[i] if (r.auxiliary and q.aux[i] is not None) else U
            hh = U if (kind == "primary" and not r.primary_hospital_coefficient) else h
            sname = self.schemes[q.scheme[i]]
            pv = self._start.get(sname, self._start.get("all"))
            if pv is not None:
                standard[i] = _half_up(score * a * hh * pv.numerator * 100,
                                       den3 * pv.denominator)
                has_std[i] = True
            if d.reference == "standard":
                rc = int(standard[i]) if pv is not None else None
            else:
                rc = self._stats.get((packet, q.level[i]), self._stats.get((packet, "all")))
            if rc is not None and rc > 0:
                ref[i], has_ref[i] = rc, True
            is_points[i] = True
            pclass[i] = P["normal"]
            if kind == "blank":
                dev[i] = D_BLANK
                b = r.blank
                if b.method == "factor":
                    fn, fd = coefficient_units(b.factor), U
                else:
                    if not has_ref[i]:
                        q.reason[i] = "no_reference"
                        is_points[i] = False
                        pclass[i] = P["not_settled"]
                        continue
                    fn = cost * coefficient_units(b.k) * coefficient_units(b.m)
                    fd = rc * U * U
                points[i] = _half_up(score * fn * scale, U * fd)
                factor[i] = Fraction(fn, fd)
                continue
            if not has_ref[i]:
                dev[i] = D_NOREF
                points[i] = _half_up(score * a * hh * scale, den3)
                factor[i] = Fraction(1)
                continue
            cu = cost * U
            low = cu <= self._low * rc if d.low_inclusive else cu < self._low * rc
            high = cu > self._high * rc
            extreme = self._extreme is not None and cu > self._extreme * rc
            if low:
                fn, fd = cost, rc
                coefs = d.coefficients_on_low
                dev[i], pclass[i] = D_LOW, P["low_outlier"]
            elif high:
                add = U if d.high_add == "one" else hh
                fn, fd = cu - self._high * rc + add * rc, rc * U
                coefs = d.coefficients_on_high
                dev[i], pclass[i] = D_HIGH, P["high_outlier"]
                if extreme:
                    dev[i] = D_EXTREME
                    if d.extreme == "hospital":
                        fn, fd = hh, U
            else:
                fn, fd = 1, 1
                coefs = True
                dev[i] = D_NORMAL
            ca, ch = (a, hh) if coefs else (U, U)
            pts = _half_up(score * ca * ch * fn * scale, den3 * fd)
            factor[i] = Fraction(fn, fd)
            if extreme and d.extreme == "review":
                candidate[i] = True
                alt_points[i] = pts
                by_item[i] = _half_up(cost * coefficient_units(r.review_factor), U)
                if approved is not None and ids[i] in approved:
                    is_points[i], is_item[i] = False, True
                    dev[i], pclass[i] = D_REVIEW, P["special_review"]
                    factor[i] = Fraction(r.review_factor)
                    continue
            points[i] = pts
        return {"pclass": pclass, "dev": dev, "points": points, "by_item": by_item,
                "is_points": is_points, "is_item": is_item, "candidate": candidate,
                "alt_points": alt_points, "factor": factor, "ref": ref, "has_ref": has_ref,
                "standard": standard, "has_std": has_std}

    # ------------------------------------------------------------------ pass 1
    def partial(self, q: _Prepared) -> Partial:
        """Integer sums for the clearing point values and the special-review cap."""
        x = self._price(q, None)
        pts: dict[str, int] = {}
        item: dict[str, int] = {}
        review = []
        ids = q.ids.to_pylist()
        for k, name in enumerate(self.schemes):
            mine = q.scheme == k
            pts[name] = int(sum(int(v) for v in x["points"][mine & x["is_points"] &
                                                           ~x["candidate"]]))
            item[name] = int(sum(int(v) for v in x["by_item"][mine & x["is_item"]]))
        for i in np.flatnonzero(x["candidate"]).tolist():
            review.append((self.schemes[q.scheme[i]], int(q.cost[i]), int(x["ref"][i]),
                           str(ids[i]), int(x["alt_points"][i]), int(x["by_item"][i])))
        discharges = int(np.count_nonzero(x["is_points"] | x["is_item"]))
        return Partial(pts, item, q.n, discharges, tuple(review))

    # ------------------------------------------------------------------ pass 2
    def finish(self, q: _Prepared, reduced: Reduced | None = None) -> pa.RecordBatch:
        p = self.policy
        n = q.n
        reduced = reduced or Reduced()
        x = self._price(q, frozenset(reduced.approved))
        pay = np.where(x["is_item"], x["by_item"], 0).astype(np.int64)
        vd = p.value_decimals
        for k, name in enumerate(self.schemes):
            mine = (q.scheme == k) & x["is_points"]
            if not mine.any():
                continue
            value = reduced.value_for(name)
            if value is None and not x["points"][mine].any():
                continue  # the pool has no points at all: its point cases pay 0
            if value is None:
                raise PolicyError(f"no point value for scheme {name}: give dip.fund for it",
                                  file=p.path)
            num = exact_int(value, vd) * 100
            den = 10 ** (p.point_decimals + vd)
            for i in np.flatnonzero(mine).tolist():
                pay[i] = _half_up(int(x["points"][i]) * num, den)
        settled = q.reason == None  # noqa: E711
        if p.share_method == "claim":
            over = settled & (q.patient > pay)
            self.summary.shares_capped += int(over.sum())
            patient = np.where(over, np.maximum(pay, 0), q.patient)
        else:
            ratios = np.array([coefficient_units(p.fund_ratio.get(s, Decimal(0)))
                               for s in self.schemes], dtype=np.int64)
            rr = ratios[np.maximum(q.scheme, 0)]
            fund = np.array([_half_up(int(a) * int(b), U) for a, b in zip(pay, rr, strict=True)],
                            dtype=np.int64)
            patient = pay - fund
        fund = pay - patient
        gain = pay - q.cost
        cols = q.columns

        def text(name: str) -> pa.Array:
            arr = cols.get(name)
            if arr is None:
                return pa.nulls(n, pa.string())
            return plain(arr).cast(pa.string())

        days, dflag = _cases.parse_dates(cols.get("discharge_date"), n)
        discharge = pa.array(days, pa.int32()).cast(pa.date32())
        discharge = pc.if_else(pa.array(dflag == 0), discharge, pa.scalar(None, pa.date32()))
        reasons = np.where(settled, None, q.reason)
        pclass = x["pclass"]
        pts_valid = settled & x["is_points"]
        factor = np.array([_half_up(f.numerator * U, f.denominator) if f is not None else 0
                           for f in x["factor"]], dtype=np.int64)
        group = q.group
        status = q.status_arr if pa.types.is_dictionary(q.status_arr.type) else \
            q.status_arr.dictionary_encode()
        status = status.cast(pa.dictionary(pa.int8(), pa.string()))
        columns = [cols[name] for name in self.keep] + [
            q.ids,
            text("hospital_id"),
            text("department"),
            text("insurance_type"),
            pa.array(list(q.level), pa.string()),
            discharge,
            status,
            constant("dip", n).cast(pa.dictionary(pa.int8(), pa.string())),
            group,
            pa.DictionaryArray.from_arrays(pa.array(pclass, pa.int8()),
                                           pa.array(PAYMENT_CLASSES)),
            pa.array(settled),
            pa.array(reasons, pa.string(), from_pandas=True),
            cents_array(q.cost, q.cost_ok),
            cents_array(x["standard"], settled & x["has_std"]),
            cents_array(pay, settled),
            cents_array(fund, settled),
            cents_array(patient, settled),
            cents_array(gain, settled),
            scaled_array(x["points"], p.point_decimals, pts_valid),
            scaled_array(np.array([v if v is not None else 0 for v in q.score], np.int64), 6,
                         np.array([v is not None for v in q.score], np.bool_)),
            pa.array(q.kind, pa.string()),
            pa.DictionaryArray.from_arrays(pa.array(x["dev"], pa.int8()),
                                           pa.array(DEVIATIONS)),
            scaled_array(factor, 6, np.array([f is not None for f in x["factor"]], np.bool_)
                         & settled),
            cents_array(x["ref"], x["has_ref"] & settled),
            flags_array(cols.get("readmitted_31d"), n),
            q.catalogue.dictionary_encode().cast(pa.dictionary(pa.int16(), pa.string())),
            constant(p.id, n),
            constant(p.content_hash, n),
        ]
        self.summary.add(text("hospital_id"), settled, pclass,
                         {"payment": np.where(settled, pay, 0),
                          "fund_payment": np.where(settled, fund, 0),
                          "patient_share": np.where(settled, patient, 0),
                          "total_cost": np.where(settled, q.cost, 0)},
                         reasons)
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)

    def warn_data(self) -> None:
        import warnings

        from .._io import DataWarning

        for message in self.summary.data_warnings(self.policy):
            warnings.warn(message, DataWarning, stacklevel=3)


def _units(g: pa.RecordBatch, name: str, n: int) -> np.ndarray:
    """Decimal column → exact integer units of 10^-6 (None for null or absent)."""
    out = np.full(n, None, dtype=object)
    if name not in g.schema.names:
        return out
    values = g.column(name).to_pylist()
    for i, v in enumerate(values):
        if v is not None:
            out[i] = exact_int(Decimal(str(v)), 6)
    return out
