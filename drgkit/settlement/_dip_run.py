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
* points are rounded once per case, half up, to ``points.point_decimals``;
* ``dip.fund_rounding = "exact"``: payment and fund payment by cumulative rounding of the exact
  amounts in row order within each fund pool (see :mod:`._dip_values`), so the fund_payment
  column of a pool sums to its fund to the cent; ``"per_case"``: payment = points × rounded
  point value, half up to the cent; fund payment = payment × fund payment ratio, half up;
* totals are sums of the case amounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _cases
from .._jit import jit
from .._money import (
    OK,
    cents_array,
    coefficient_units,
    exact_int,
    exact_sum,
    scaled_array,
    to_scaled,
)
from .._resolve import RESOLVER, Names
from ..errors import CaseDataError
from ..schema import Layout
from . import _kernel as K
from ._inputs import case_money, parse_level, read_hospitals
from ._kernel import SATURATED, half_up_u128, mul_u64
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

__all__ = [
    "DEVIATIONS",
    "CasePoints",
    "DipSettleRun",
    "case_points",
    "check_dip_policy",
    "resolve_dip_catalogue",
]

DEVIATIONS = ("normal", "low", "high", "extreme", "review", "blank", "no_reference", "none")
D_NORMAL, D_LOW, D_HIGH, D_EXTREME, D_REVIEW, D_BLANK, D_NOREF, D_NONE = range(8)
P = {name: k for k, name in enumerate(PAYMENT_CLASSES)}
U = 10**6  # coefficient units


def resolve_dip_catalogue(catalogue: Any, policy: Policy, names: Names | None = None) -> Any:
    """The DIP catalogue to settle with: ``catalogue``, else the one the policy names; a name is
    resolved by ``names`` (the public functions pass :data:`drgkit._resolve.RESOLVER`)."""
    from ..catalogue import Catalogue, CatalogueSeries

    spec = catalogue if catalogue is not None else policy.dip.catalogue
    if isinstance(spec, (Catalogue, CatalogueSeries)):
        return spec
    if names is None:
        raise TypeError(f"DIP settlement takes a Catalogue, or names= to resolve {spec!r}")
    return names.catalogue(spec)


def _half_up(num: int, den: int) -> int:
    """num/den (den > 0) rounded half up, in integers."""
    return (2 * num + den) // (2 * den)


class _Prepared:
    """One batch, ready to price."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


class DipSettleRun:
    """State of one DIP settlement run (the interface of :class:`SettleRun`)."""

    def __init__(
        self,
        policy: Policy,
        catalogue: Any,
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
        book: Any = None,
        names: Names | None = None,
    ) -> None:
        """``names``: resolves a catalogue given by name and knows the layouts (as for
        :class:`~drgkit.settlement.SettleRun`)."""
        if policy.dip is None:
            raise PolicyError(f"policy {policy.id} is not a dip policy", file=policy.path)
        self.policy = policy
        self.rules = policy.dip
        self.source = source
        self.book = None  # no price book: scores and mean costs come from the catalogue
        self.grouped_input = all(c in schema.names for c in ("status", "packet", "score"))
        target = resolve_dip_catalogue(catalogue, policy, names)
        self.catalogue = target
        versions = [v for v, _a, _b in target.periods()] if hasattr(target, "periods") else [target]
        # mean cost (cents) per (packet, level): the reference of deviation cases
        self._stats: dict[tuple[str, str], int] = {}
        for v in versions:
            scale = v.info.score_scale
            if self.rules.score_scale is not None and scale != self.rules.score_scale:
                raise PolicyError(
                    f"policy {policy.id} expects scores on the scale "
                    f"{self.rules.score_scale}, catalogue {v.id} has {scale}",
                    file=policy.path,
                )
            for (packet, level), st in v.tables.stats.items():
                self._stats.setdefault((packet, level), exact_int(Decimal(st["mean_cost"]), 2))
        if self.grouped_input:
            self.group_run = None
        else:
            from ..grouping._dip import DipRun

            self.group_run = DipRun(
                target,
                schema,
                source,
                layout=layout,
                columns=columns,
                check_duplicates=check_duplicates,
                layouts=names.layouts if names is not None else None,
            )
            if tracker is not None:
                self.group_run.ids = tracker
            self.group_run.rows_done = row_offset
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
                "have no self_pay / own_pay columns",
                file=source,
            )
        self.keep = list(keep or [])
        for name in self.keep:
            if name not in schema.names:
                raise CaseDataError(
                    f"column {name!r} to keep is not in the input", file=source, column=name
                )
        self.schema = dip_settle_schema(policy, pa.schema([schema.field(n) for n in self.keep]))
        self.hospitals = read_hospitals(hospitals, policy)
        self.schemes = policy.scheme_names()
        self.rows_done = row_offset
        self._row0 = row_offset
        #: exact fund rounding: pool -> [Σ points, Σ cents by item] of the rows before the next
        #: batch (None until the first batch is finished)
        self._cum: dict[str, list[int]] | None = None
        self.summary = SettleSummary()
        d = self.rules.deviation
        self._low = coefficient_units(d.low_ratio)
        self._high = coefficient_units(d.high_ratio)
        self._extreme = coefficient_units(d.extreme_ratio) if d.extreme_ratio is not None else None
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
        ids = (
            idc.cast(pa.string())
            if idc is not None
            else pa.array([str(row0 + i + 1) for i in range(n)])
        )
        status = text("status")

        def status_is(value: str) -> np.ndarray:
            return pc.fill_null(pc.equal(status, value), False).to_numpy(zero_copy_only=False)

        ok, ungroupable = status_is("ok"), status_is("ungroupable")
        cols = {f: self.plan.column(batch, f) for f in self.plan.source}
        p = self.policy
        reason = np.full(n, None, dtype=object)
        other = ~(ok | ungroupable)
        live = ~other  # not yet given a reason (kept beside ``reason`` for speed)
        if other.any():
            greason = text("reason").to_numpy(zero_copy_only=False)
            reason[other] = [g or "not_grouped" for g in greason[other]]

        def unsettled(mask: np.ndarray, why: str) -> None:
            new = mask & live
            if new.any():
                reason[new] = why
                live[new] = False

        cost, cflag, patient = case_money(cols, n, p, unsettled)
        arr = cols.get("insurance_type")
        if arr is None:
            s = p.default_scheme
            scheme = np.full(n, self.schemes.index(s) if s in self.schemes else -1, np.int64)
        else:
            uniq, index = _cases.encode_values(arr)
            tab = [p.scheme_of(_cases.value_text(v) or None) for v in uniq]
            scheme = np.array(
                [self.schemes.index(t) if t in self.schemes else -1 for t in tab] + [-1],
                dtype=np.int64,
            )[index]
        unsettled(scheme < 0, "scheme_unknown")
        level, hcoef, h_ok = self._levels(cols.get("hospital_level"), cols.get("hospital_id"), n)
        unsettled(ok & ~h_ok, "level_unknown")
        if self.rules.ungroupable_factor is None:
            unsettled(ungroupable, "ungroupable")
        group = text("packet")
        kind = text("packet_kind")

        def kind_is(value: str) -> np.ndarray:
            return pc.fill_null(pc.equal(kind, value), False).to_numpy(zero_copy_only=False)

        score, _s_ok = _units(g, "score", n)
        aux, aux_ok = _units(g, "aux_coefficient", n)
        mean, mean_ok = self._means(group, level, n)
        return _Prepared(
            n=n,
            ids=ids,
            status_arr=g.column("status"),
            ok=ok,
            ungroupable=ungroupable,
            group=group,
            kind=kind,
            blank=kind_is("blank"),
            primary=kind_is("primary"),
            score=score,
            aux=aux,
            aux_ok=aux_ok,
            catalogue=text("catalogue"),
            cost=cost,
            cost_ok=cflag == OK,
            patient=patient,
            scheme=scheme,
            level=level,
            hcoef=hcoef,
            h_ok=h_ok,
            mean=mean,
            mean_ok=mean_ok,
            reason=reason,
            live=live,
            columns={**cols, **{k: batch.column(k) for k in self.keep}},
        )

    def _means(self, group: pa.Array, level: pa.Array, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The packet's mean cost (cents) at the case's level, else at ``all``."""
        key = pc.binary_join_element_wise(pc.fill_null(group, ""), pc.fill_null(level, ""), "\x1f")
        enc = pc.dictionary_encode(key)
        table = []
        for text in enc.dictionary.to_pylist():
            packet, lv = text.split("\x1f")
            table.append(self._stats.get((packet, lv), self._stats.get((packet, "all"), -1)))
        values = (
            np.array([*table, -1], dtype=np.int64)[
                enc.indices.fill_null(len(table)).to_numpy(zero_copy_only=False)
            ]
            if n
            else np.zeros(0, np.int64)
        )
        return np.maximum(values, 0), values >= 0

    def _levels(
        self, arr: pa.Array | None, hospital: pa.Array | None, n: int
    ) -> tuple[pa.Array, np.ndarray, np.ndarray]:
        """Level text per case (hospitals table first, then the case's column, then the
        policy's default; aliases applied) and the hospital coefficient in units of 10^-6:
        the hospitals table's coefficient, else the policy's level coefficient (1 when the
        policy has no level table)."""
        level = np.full(n, None, dtype=object)
        if arr is not None:
            uniq, index = _cases.encode_values(arr)
            level = np.array([parse_level(v) for v in uniq] + [None], dtype=object)[index]
        coef = np.full(n, -1, dtype=np.int64)
        if self.hospitals and hospital is not None:
            uniq, index = _cases.encode_values(hospital.cast(pa.string()))
            known = [self.hospitals.get(v, (None, None)) for v in uniq]
            lv = np.array([k[0] for k in known] + [None], dtype=object)[index]
            coef = np.array(
                [coefficient_units(k[1]) if k[1] is not None else -1 for k in known] + [-1],
                dtype=np.int64,
            )[index]
            level = np.where(lv != None, lv, level)  # noqa: E711
        if self.policy.default_level:
            level = np.where(level == None, self.policy.default_level, level)  # noqa: E711
        aliases = {
            str(k): str(v)
            for k, v in self.policy.config.get("levels", {}).get("aliases", {}).items()
        }
        enc = pc.dictionary_encode(pa.array(level, pa.string()))
        names = [aliases.get(x, x) for x in enc.dictionary.to_pylist()]
        table = self.rules.level_coefficients
        units = [coefficient_units(table[x]) if x in table else (-1 if table else U) for x in names]
        idx = (
            enc.indices.fill_null(len(names)).to_numpy(zero_copy_only=False)
            if n
            else np.zeros(0, np.int64)
        )
        by_level = np.array([*units, -1 if table else U], dtype=np.int64)[idx]
        out = np.where(coef >= 0, coef, by_level)
        level_arr = (
            pa.array(np.array([*names, None], dtype=object)[idx], pa.string())
            if n
            else pa.nulls(0, pa.string())
        )
        return level_arr, out, out >= 0

    # ------------------------------------------------------------------ pricing
    def _price(
        self, q: _Prepared, approved: frozenset[str] | None, no_cost: np.ndarray | None = None
    ) -> dict[str, Any]:
        """Per case: payment class, deviation class, points (×10^point_decimals), money paid
        by item, the factor, the reference and the packet's standard. ``approved``: the case
        ids accepted for special review (None in pass 1: candidates are only marked).

        Exact and rounded once, half up. Amounts that depend only on the packet's score and
        the coefficients (normal cases, the standard, the blank packet by factor) are computed
        once per distinct (score, auxiliary, hospital coefficient, scheme) in Python integers;
        deviation cases, whose factor depends on the cost, in Python integers on their rows
        (numpy object arrays): nothing can overflow.

        ``no_cost``: rows priced without a cost (:func:`case_points` for a case described
        without one): normal points, no deviation rule (shown as ``no_reference``)."""
        n = q.n
        r = self.rules
        d = r.deviation
        scale = 10**self.policy.point_decimals
        live = q.live
        ung = live & q.ungroupable
        pts_case = live & q.ok
        blank = pts_case & q.blank
        score = np.where(pts_case, q.score, 0)
        a = np.where(q.aux_ok & r.auxiliary, q.aux, U)
        hh = np.where(
            q.primary & (not r.primary_hospital_coefficient), U, np.where(q.h_ok, q.hcoef, U)
        )
        combo, first = _combos((score, a, hh, np.maximum(q.scheme, 0)))
        u3 = U**3
        c_normal, c_std, c_has_std, c_blank = [], [], [], []
        bf = coefficient_units(r.blank.factor)
        for s_, a_, h_, k_ in zip(
            score[first].tolist(),
            a[first].tolist(),
            hh[first].tolist(),
            np.maximum(q.scheme, 0)[first].tolist(),
            strict=True,
        ):
            base = s_ * a_ * h_
            c_normal.append((2 * base * scale + u3) // (2 * u3))
            c_blank.append((2 * s_ * bf * scale + U * U) // (2 * U * U))
            pv = self._start.get(
                self.schemes[k_] if k_ < len(self.schemes) else "", self._start.get("all")
            )
            if pv is None:
                c_std.append(0)
                c_has_std.append(False)
            else:
                num, den = base * pv.numerator * 100, u3 * pv.denominator
                c_std.append((2 * num + den) // (2 * den))
                c_has_std.append(True)
        standard = np.array(c_std, dtype=np.int64)[combo] if n else np.zeros(0, np.int64)
        has_std = pts_case & (
            np.array(c_has_std, dtype=np.bool_)[combo] if n else np.zeros(0, np.bool_)
        )
        if d.reference == "standard":
            ref, has_ref = standard.copy(), has_std & (standard > 0)
        else:
            ref, has_ref = q.mean.copy(), pts_case & q.mean_ok & (q.mean > 0)
        if no_cost is not None:
            has_ref &= ~no_cost
        ref = np.where(has_ref, ref, 1)
        cost = np.where(live, q.cost, 0)
        # thresholds in int64: cost·U ≤ 4·10^17; ratio·ref ≤ 10^8 · 9·10^10 < 2^63
        safe = ref <= 9 * 10**10
        cu = cost * U
        low_t = self._low * np.where(safe, ref, 1)
        low = has_ref & ~blank & safe & ((cu <= low_t) if d.low_inclusive else (cu < low_t))
        high = has_ref & ~blank & safe & ~low & (cu > self._high * np.where(safe, ref, 1))
        extreme = (
            high & (cu > self._extreme * np.where(safe, ref, 1))
            if self._extreme is not None
            else np.zeros(n, np.bool_)
        )
        slow = (pts_case & has_ref & ~blank & ~safe) | (low | high)
        if r.blank.method == "cost_ratio":
            slow |= blank
        points = np.where(
            pts_case,
            np.array(c_normal, dtype=object)[combo].astype(np.int64)
            if n
            else np.zeros(0, np.int64),
            0,
        )
        factor = np.where(pts_case, U, 0).astype(np.int64)
        if r.blank.method == "factor" and blank.any():
            points[blank] = np.array(c_blank, dtype=np.int64)[combo[blank]]
            factor[blank] = bf
        bad_blank = np.zeros(n, dtype=np.bool_)
        rows = np.flatnonzero(slow)
        if len(rows):
            o = self._slow(rows, cost, score, a, hh, ref, has_ref, blank, q)
            points[rows], factor[rows] = o["points"], o["factor"]
            low[rows], high[rows], extreme[rows] = o["low"], o["high"], o["extreme"]
            bad_blank[rows] = o["bad_blank"]
        normal = pts_case & ~blank & ~low & ~high
        dev = np.full(n, D_NONE, dtype=np.int8)
        dev[pts_case & ~has_ref] = D_NOREF
        dev[normal & has_ref] = D_NORMAL
        dev[low], dev[high], dev[extreme], dev[blank] = D_LOW, D_HIGH, D_EXTREME, D_BLANK
        pclass = np.full(n, P["not_settled"], dtype=np.int8)
        pclass[pts_case] = P["normal"]
        pclass[low], pclass[high] = P["low_outlier"], P["high_outlier"]
        pclass[ung] = P["ungroupable"]
        by_item = np.zeros(n, dtype=np.int64)
        if ung.any():
            f = coefficient_units(r.ungroupable_factor)
            by_item[ung] = ((2 * cost[ung].astype(object) * f + U) // (2 * U)).astype(np.int64)
            factor[ung] = f
        candidate = extreme & (d.extreme == "review")
        alt_points = np.where(candidate, points, 0)
        if candidate.any():
            f = coefficient_units(r.review_factor)
            by_item[candidate] = ((2 * cost[candidate].astype(object) * f + U) // (2 * U)).astype(
                np.int64
            )
        is_points = pts_case & ~bad_blank
        is_item = ung.copy()
        if bad_blank.any():
            q.reason[bad_blank] = "no_reference"
            q.live[bad_blank] = False
            pclass[bad_blank] = P["not_settled"]
        if approved and candidate.any():
            cand = np.flatnonzero(candidate)
            ids = q.ids.take(pa.array(cand)).to_pylist()
            yes = cand[np.array([i in approved for i in ids], dtype=np.bool_)]
            is_points[yes], is_item[yes] = False, True
            dev[yes], pclass[yes] = D_REVIEW, P["special_review"]
            factor[yes] = coefficient_units(r.review_factor)
        return {
            "pclass": pclass,
            "dev": dev,
            "points": points,
            "by_item": by_item,
            "is_points": is_points,
            "is_item": is_item,
            "candidate": candidate,
            "alt_points": alt_points,
            "factor": factor,
            "has_factor": is_points | is_item,
            "ref": np.where(has_ref, ref, 0),
            "has_ref": has_ref,
            "standard": standard,
            "has_std": has_std,
        }

    def _slow(
        self,
        rows: np.ndarray,
        cost: np.ndarray,
        score: np.ndarray,
        a: np.ndarray,
        hh: np.ndarray,
        ref: np.ndarray,
        has_ref: np.ndarray,
        blank: np.ndarray,
        q: _Prepared,
    ) -> dict[str, np.ndarray]:
        """Deviation cases (and the blank packet by cost ratio, and any case whose reference
        is too large for the int64 thresholds): classes and points in Python integers."""
        r = self.rules
        d = r.deviation
        scale = 10**self.policy.point_decimals
        m = len(rows)
        cost_o = cost[rows].astype(object)
        ref_o = ref[rows].astype(object)
        hr = has_ref[rows]
        bl = blank[rows]
        hh_o = hh[rows].astype(object)
        cu = cost_o * U
        low_t = self._low * ref_o
        low = (hr & ~bl & ((cu <= low_t) if d.low_inclusive else (cu < low_t))).astype(np.bool_)
        high = (hr & ~bl & ~low & (cu > self._high * ref_o)).astype(np.bool_)
        extreme = (
            (high & (cu > self._extreme * ref_o)).astype(np.bool_)
            if self._extreme is not None
            else np.zeros(m, np.bool_)
        )
        normal = ~bl & ~low & ~high
        fn = np.ones(m, dtype=object)
        fd = np.ones(m, dtype=object)
        fn[low], fd[low] = cost_o[low], ref_o[low]
        add = U if d.high_add == "one" else hh_o[high]
        fn[high] = cu[high] - self._high * ref_o[high] + add * ref_o[high]
        fd[high] = ref_o[high] * U
        if d.extreme == "hospital":
            fn[extreme], fd[extreme] = hh_o[extreme], U
        coefs = normal | (low & d.coefficients_on_low) | (high & d.coefficients_on_high)
        ca = np.where(coefs, a[rows].astype(object), U)
        ch = np.where(coefs, hh_o, U)
        bad_blank = np.zeros(m, dtype=np.bool_)
        if bl.any():
            b = r.blank
            ca[bl], ch[bl] = U, U
            mean_ok = q.mean_ok[rows] & (q.mean[rows] > 0)
            bad_blank = bl & ~mean_ok
            mref = np.where(mean_ok, q.mean[rows], 1).astype(object)
            fn[bl] = cost_o[bl] * (coefficient_units(b.k) * coefficient_units(b.m))
            fd[bl] = mref[bl] * (U * U)
        num = score[rows].astype(object) * ca * ch * fn * scale
        den = U**3 * fd
        return {
            "points": ((2 * num + den) // (2 * den)).astype(np.int64),
            "factor": ((2 * fn * U + fd) // (2 * fd)).astype(np.int64),
            "low": low,
            "high": high,
            "extreme": extreme,
            "bad_blank": bad_blank,
        }

    # ------------------------------------------------------------------ pass 1
    def partial(self, q: _Prepared) -> Partial:
        """Integer sums for the clearing point values and the special-review cap."""
        x = self._price(q, None)
        pts: dict[str, int] = {}
        item: dict[str, int] = {}
        review = []
        for k, name in enumerate(self.schemes):
            mine = q.scheme == k
            pts[name] = exact_sum(x["points"][mine & x["is_points"] & ~x["candidate"]])
            item[name] = exact_sum(x["by_item"][mine & x["is_item"]])
        rows = np.flatnonzero(x["candidate"])
        ids = dict(
            zip(rows.tolist(), q.ids.take(pa.array(rows, pa.int64())).to_pylist(), strict=True)
        )
        for i in rows.tolist():
            review.append(
                (
                    self.schemes[q.scheme[i]],
                    int(q.cost[i]),
                    int(x["ref"][i]),
                    str(ids[i]),
                    int(x["alt_points"][i]),
                    int(x["by_item"][i]),
                )
            )
        discharges = int(np.count_nonzero(x["is_points"] | x["is_item"]))
        return Partial(pts, item, q.n, discharges, tuple(review))

    # ------------------------------------------------------------------ pass 2
    def finish(self, q: _Prepared, reduced: Reduced | None = None) -> pa.RecordBatch:
        p = self.policy
        n = q.n
        reduced = reduced or Reduced()
        x = self._price(q, frozenset(reduced.approved))
        pay = np.where(x["is_item"], x["by_item"], 0).astype(np.int64)
        exact = self.rules.fund_rounding == "exact" and reduced.totals is not None
        fund = np.zeros(n, dtype=np.int64)
        pooled = np.zeros(n, dtype=np.bool_)
        if exact:
            pooled = self._exact(q, x, reduced, pay, fund)
        vd = p.value_decimals
        for k, name in enumerate(() if exact else self.schemes):
            mine = (q.scheme == k) & x["is_points"]
            if not mine.any():
                continue
            value = reduced.value_for(name)
            if value is None and not x["points"][mine].any():
                continue  # the pool has no points at all: its point cases pay 0
            if value is None:
                raise PolicyError(
                    f"no point value for scheme {name}: give dip.fund for it", file=p.path
                )
            num = exact_int(value, vd) * 100
            den = 10 ** (p.point_decimals + vd)
            # round half up of points·num/den with a 128-bit intermediate (exact)
            pts = x["points"][mine]
            pay[mine] = K.pay_points(len(pts), pts, np.full(len(pts), K.F_FIXED, np.int8), num, den)
        settled = q.live
        if p.share_method == "claim":
            over = settled & (q.patient > pay)
            self.summary.shares_capped += int(over.sum())
            patient = np.where(over, np.maximum(pay, 0), q.patient)
        else:
            ratios = np.array(
                [
                    coefficient_units(p.fund_ratio.get(s, p.fund_ratio.get("all", Decimal(0))))
                    for s in self.schemes
                ]
                + [0],
                dtype=np.int64,
            )
            rr = ratios[q.scheme]
            small = np.abs(pay) < 4 * 10**12  # pay·ratio (ratio ≤ 10^6) stays in int64
            per_case = (2 * np.where(small, pay, 0) * rr + U) // (2 * U)
            if not small.all():
                big = ~small
                per_case[big] = ((2 * pay[big].astype(object) * rr[big] + U) // (2 * U)).astype(
                    np.int64
                )
            fund = np.where(pooled, fund, per_case)
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
        reasons = q.reason
        pclass = x["pclass"]
        pts_valid = settled & x["is_points"]
        group = q.group
        status = (
            q.status_arr
            if pa.types.is_dictionary(q.status_arr.type)
            else q.status_arr.dictionary_encode()
        )
        status = status.cast(pa.dictionary(pa.int8(), pa.string()))
        columns = [cols[name] for name in self.keep] + [
            q.ids,
            text("hospital_id"),
            text("department"),
            text("insurance_type"),
            q.level,
            discharge,
            status,
            constant("dip", n).cast(pa.dictionary(pa.int8(), pa.string())),
            group,
            pa.DictionaryArray.from_arrays(pa.array(pclass, pa.int8()), pa.array(PAYMENT_CLASSES)),
            pa.array(settled),
            pa.array(reasons, pa.string(), from_pandas=True),
            cents_array(q.cost, q.cost_ok),
            cents_array(x["standard"], settled & x["has_std"]),
            cents_array(pay, settled),
            cents_array(fund, settled),
            cents_array(patient, settled),
            cents_array(gain, settled),
            scaled_array(x["points"], p.point_decimals, pts_valid),
            scaled_array(q.score, 6, q.ok & settled),
            q.kind,
            pa.DictionaryArray.from_arrays(pa.array(x["dev"], pa.int8()), pa.array(DEVIATIONS)),
            scaled_array(x["factor"], 6, x["has_factor"] & settled),
            cents_array(x["ref"], x["has_ref"] & settled),
            flags_array(cols.get("readmitted_31d"), n),
            q.catalogue.dictionary_encode().cast(pa.dictionary(pa.int16(), pa.string())),
            constant(p.id, n),
            constant(p.content_hash, n),
        ]
        self.summary.add(
            text("hospital_id"),
            settled,
            pclass,
            {
                "payment": np.where(settled, pay, 0),
                "fund_payment": np.where(settled, fund, 0),
                "patient_share": np.where(settled, patient, 0),
                "total_cost": np.where(settled, q.cost, 0),
            },
            reasons,
        )
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)

    def _exact(
        self, q: _Prepared, x: dict[str, Any], reduced: Reduced, pay: np.ndarray, fund: np.ndarray
    ) -> np.ndarray:
        """Exact fund rounding: fill ``pay`` and ``fund`` (cents) of the rows paid from a fund
        pool by cumulative rounding in row order, continuing from the rows before this batch;
        returns the mask of those rows. D = v·points + cents by item, E = ratio·D (exact
        rationals, v = spendable ÷ Σ points); a row gets round(D) − round(D before it)."""
        from ._dip_values import dip_pools, pool_of

        p = self.policy
        if self._cum is None:
            if self._row0 and self._row0 not in reduced.offsets:
                raise PolicyError(
                    f"exact DIP fund rounding: no cumulative sums for the rows before row "
                    f"{self._row0}; settle the whole dataset (settle_dataset computes them in "
                    "pass 1) or use dip.fund_rounding = 'per_case'",
                    file=p.path,
                )
            self._cum = {k: list(v) for k, v in reduced.offsets.get(self._row0, {}).items()}
        pools = dip_pools(p, reduced.totals)
        settled = q.live & (x["is_points"] | x["is_item"])
        pooled = np.zeros(q.n, dtype=np.bool_)
        for name, pool in pools.items():
            ks = [k for k, s in enumerate(self.schemes) if pool_of(p, s) == name]
            rows = np.flatnonzero(settled & np.isin(q.scheme, ks))
            if not len(rows):
                continue
            pooled[rows] = True
            pts = np.where(x["is_points"][rows], x["points"][rows], 0)
            item = np.where(x["is_item"][rows], x["by_item"][rows], 0)
            if pool.points == 0 and pts.any():
                raise PolicyError(f"no point value for pool {name}", file=p.path)
            cum = self._cum.setdefault(name, [0, 0])
            # prefix sums with the state before the batch in front (int64: Σ points < 2^63)
            cp = np.concatenate(([cum[0]], cum[0] + np.cumsum(pts))).astype(np.int64)
            ci = np.concatenate(([cum[1]], cum[1] + np.cumsum(item))).astype(np.int64)
            cum[0], cum[1] = int(cp[-1]), int(ci[-1])
            # D·Sd·P = Sn·points + Sd·P·by item; E = ratio·D (S = Sn/Sd: cents for points)
            if pool.points:
                spend = pool.fund / pool.ratio - pool.by_item
                sn, sdp = spend.numerator, spend.denominator * pool.points
            else:
                sn, sdp = 0, 1
            rn, rd = pool.ratio.numerator, pool.ratio.denominator
            d = cumulative_round(cp, ci, sn, sdp, sdp)
            e = cumulative_round(cp, ci, rn * sn, rn * sdp, rd * sdp)
            pay[rows] = np.diff(d)
            fund[rows] = np.diff(e)
        return pooled

    def warn_data(self) -> None:
        import warnings

        from .._io import DataWarning

        for message in self.summary.data_warnings(self.policy):
            warnings.warn(message, DataWarning, stacklevel=3)


_LIMIT = 2**62


@jit
def _cum_round_kernel(cp, ci, a, b, den):
    """round half up of (cp·a + ci·b) / den per row, exactly (128-bit intermediate), for
    non-negative int64 inputs with a, b, den < 2^62; SATURATED where the result does not fit."""
    n = len(cp)
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        h1, l1 = mul_u64(cp[i], a)
        h2, l2 = mul_u64(ci[i], b)
        lo = l1 + l2
        hi = h1 + h2 + (np.uint64(1) if lo < l1 else np.uint64(0))
        out[i] = half_up_u128(hi, lo, den)
    return out


def cumulative_round(cp: np.ndarray, ci: np.ndarray, a: int, b: int, den: int) -> np.ndarray:
    """(cp·a + ci·b) / den rounded half up, per row, exactly: a 128-bit kernel when the
    constants fit, else Python integers (never a wrapped or approximate value)."""
    if (
        0 <= a < _LIMIT
        and 0 <= b < _LIMIT
        and 0 < den < _LIMIT
        and (cp >= 0).all()
        and (ci >= 0).all()
    ):
        out = _cum_round_kernel(cp, ci, a, b, den)
        if not (out == SATURATED).any():
            return out
    top = cp.astype(object) * a + ci.astype(object) * b
    return ((2 * top + den) // (2 * den)).astype(object)


def _combos(columns: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, first row of each code) of the distinct tuples of int64 columns."""
    n = len(columns[0])
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    key = np.zeros(n, dtype=np.int64)
    for col in columns:
        enc = pc.dictionary_encode(pa.array(col, pa.int64()))
        codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        key = key * (len(enc.dictionary) + 1) + codes
        # keep the key small: re-encode the running key after each column
        enc = pc.dictionary_encode(pa.array(key, pa.int64()))
        key = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    # codes are dense (0..m-1), so the sorted uniques are 0..m-1 and index the first rows
    _codes, first = np.unique(key, return_index=True)
    return key, first


def _units(g: pa.RecordBatch, name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A decimal column (≤ 6 decimals) → exact integers in units of 10^-6, and validity."""
    if name not in g.schema.names:
        return np.zeros(n, np.int64), np.zeros(n, np.bool_)
    arr = g.column(name)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    scaled, flag = to_scaled(arr, n, 6, 10**17)
    return np.where(valid, scaled, 0), valid & (flag == OK)


def check_dip_policy(policy: Policy) -> str:
    """Resolve the policy's catalogue and check it fits (score scale, packets with mean costs);
    a one-line description, or a PolicyError naming the policy file."""
    from ..errors import DrgkitError

    try:
        target = resolve_dip_catalogue(None, policy, RESOLVER)
    except DrgkitError as exc:
        raise PolicyError(
            f"dip.catalogue {policy.dip.catalogue!r}: {exc}", file=policy.path
        ) from None
    versions = [v for v, _a, _b in target.periods()] if hasattr(target, "periods") else [target]
    parts = []
    for v in versions:
        scale = v.info.score_scale
        if policy.dip.score_scale is not None and scale != policy.dip.score_scale:
            raise PolicyError(
                f"dip.score_scale is {policy.dip.score_scale}, catalogue {v.id} has {scale}",
                file=policy.path,
            )
        packets = {p for p, _lv in v.tables.stats}
        parts.append(f"catalogue {v.id} (scale {scale}, {len(packets)} packets with mean costs)")
    return "; ".join(parts)


class CasePoints(NamedTuple):
    """One grouped case priced in points by the settlement's own rule (:func:`case_points`)."""

    #: the case's insurance scheme under the policy (None when the policy does not know it)
    scheme: str | None
    level: str | None
    #: one of :data:`DEVIATIONS` (``no_reference`` also for a case priced without a cost)
    deviation: str
    #: points after the deviation rule, rounded as settled (None: not payable by points)
    points: Decimal | None
    factor: Decimal | None
    #: the reference cost r is measured against (yuan), when there is one
    reference: Decimal | None
    #: above the extreme threshold under ``extreme = "review"``: a special-review candidate,
    #: paid by item if accepted within the region's cap, else these (high formula) points
    review_candidate: bool
    #: why the case is not payable by points (the settled ``reason``), else None
    reason: str | None


def case_points(
    policy: Policy,
    grouped: pa.Table,
    catalogue: Any = None,
    *,
    names: Names | None = None,
    hospitals: Any = None,
) -> list[CasePoints]:
    """Deviation class and points of grouped DIP cases (columns ``status``, ``packet``,
    ``score``, ``aux_coefficient``, ``packet_kind``, ``catalogue`` as grouping writes them,
    plus ``total_cost``, ``insurance_type``, ``hospital_level`` …), priced by
    :meth:`DipSettleRun._price` — the very code settlement uses, so a per-case answer cannot
    drift from the settled one. A case with no ``total_cost`` is priced as a normal case
    (deviation ``no_reference``): its cost decides any deviation, and there is none to judge.
    """
    n = grouped.num_rows
    if "total_cost" not in grouped.column_names:
        grouped = grouped.append_column("total_cost", pa.nulls(n, pa.string()))
    # a missing cost is priced as 0 with the deviation rule off (every other check still runs)
    k_cost = grouped.column_names.index("total_cost")
    cost_col = grouped.column(k_cost)
    missing = cost_col.is_null().to_numpy(zero_copy_only=False)
    grouped = grouped.set_column(
        k_cost,
        "total_cost",
        pc.if_else(cost_col.is_null(), pa.scalar("0"), cost_col.cast(pa.string())),
    )
    run = DipSettleRun(
        policy,
        catalogue,
        grouped.schema,
        "<case>",
        check_duplicates=False,
        hospitals=hospitals,
        names=names,
    )
    out: list[CasePoints] = []
    start = 0
    for batch in grouped.to_batches():
        q = run.prepare(batch)
        no_cost = missing[start : start + q.n]
        start += q.n
        x = run._price(q, None, no_cost)
        pd = policy.point_decimals
        for i in range(q.n):
            if no_cost[i] and q.blank[i] and run.rules.blank.method == "cost_ratio" and q.live[i]:
                q.reason[i], q.live[i] = "cost_missing", False  # score × cost/mean needs it
            ok = bool(q.live[i] and x["is_points"][i])
            k = int(q.scheme[i])
            out.append(
                CasePoints(
                    run.schemes[k] if 0 <= k < len(run.schemes) else None,
                    q.level[i].as_py(),
                    DEVIATIONS[int(x["dev"][i])],
                    Decimal(int(x["points"][i])).scaleb(-pd) if ok else None,
                    Decimal(int(x["factor"][i])).scaleb(-6) if ok else None,
                    Decimal(int(x["ref"][i])).scaleb(-2) if x["has_ref"][i] else None,
                    bool(x["candidate"][i]),
                    None if ok else (q.reason[i] or "not_settled"),
                )
            )
    return out
