"""Integer sums of a settlement run: the first pass's partial sums, the point values reduced
from them (exact rational arithmetic, independent of the ambient decimal context), and the
per-hospital totals of a run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._money import group_sums, half_up, scaled_decimal
from ._output import PAYMENT_CLASSES
from ._policy import Policy, PolicyError

__all__ = ["Partial", "Reduced", "SettleSummary", "point_values"]


@attrs.frozen(slots=True)
class Partial:
    """Integer sums of a batch for the first pass (points method)."""

    points: Mapping[str, int]  # scheme -> Σ points·10^point_decimals
    by_item: Mapping[str, int]  # scheme -> Σ cents paid by item
    cases: int
    #: DIP: settled DIP discharges (the base of the special-review cap)
    discharges: int = 0
    #: DIP: special-review candidates (scheme, cost cents, reference cents, case id, points
    #: if not approved, cents if approved), in row order
    review: tuple = ()

    def __add__(self, other: Partial) -> Partial:
        def add(a, b):
            return {k: a.get(k, 0) + b.get(k, 0) for k in {*a, *b}}

        return Partial(
            add(self.points, other.points),
            add(self.by_item, other.by_item),
            self.cases + other.cases,
            self.discharges + other.discharges,
            self.review + other.review,
        )

    def minus(self, other: Partial) -> Partial:
        """These sums without ``other``'s (rows taken back out after pass 1)."""
        gone = Counter(other.review)
        kept = []
        for item in self.review:
            if gone[item]:
                gone[item] -= 1
            else:
                kept.append(item)
        return Partial(
            {k: v - other.points.get(k, 0) for k, v in self.points.items()},
            {k: v - other.by_item.get(k, 0) for k, v in self.by_item.items()},
            self.cases,
            self.discharges - other.discharges,
            tuple(kept),
        )

    @classmethod
    def zero(cls) -> Partial:
        return cls({}, {}, 0)


@attrs.frozen(slots=True)
class Reduced:
    """What the second pass needs from the whole region: point values (yuan per point,
    exact decimals) per budget pool. Small and picklable."""

    point_values: Mapping[str, Decimal] = attrs.field(factory=dict)
    totals: Partial | None = None
    #: DIP: case ids accepted for special review (within the region-wide cap)
    approved: frozenset = frozenset()
    #: DIP exact fund rounding: partition's first global row -> {pool: (Σ points, Σ cents by
    #: item)} of the rows before it, so each partition continues the cumulative rounding
    offsets: Mapping[int, Mapping[str, tuple[int, int]]] = attrs.field(factory=dict)

    def value_for(self, scheme: str) -> Decimal | None:
        return self.point_values.get(scheme, self.point_values.get("all"))


def _fraction_text(value: Fraction, decimals: int = 6) -> str:
    """A fraction for a message: exact when it has few decimals, else ≈ to ``decimals``."""
    scaled = value * 10**decimals
    approx = "" if scaled.denominator == 1 else "≈ "
    return approx + str(scaled_decimal(half_up(scaled), decimals).normalize())


def point_values(policy: Policy, total: Partial) -> Reduced:
    """Point value per pool: (budget × (1 − reserve) − paid by item) ÷ Σ points, rounded half up
    to ``value_decimals``. A budget named ``all`` pools every scheme.

    Computed with exact rationals (budget, reserve and sums are exact), so the value does not
    depend on the ambient ``decimal`` context (its precision or rounding)."""
    if policy.method == "dip":
        from ._dip_values import dip_point_values

        return dip_point_values(policy, total)
    if policy.method != "points":
        return Reduced({}, total)
    if not policy.budget:
        raise PolicyError(
            f"policy {policy.id} uses points but has no points.budget (give "
            "it in the policy or with --budget SCHEME=YUAN)",
            file=policy.path,
        )
    pools: dict[str, Decimal] = {}
    for pool, budget in policy.budget.items():
        schemes = list(total.points) if pool == "all" else [pool]
        points = sum(total.points.get(s, 0) for s in schemes)
        by_item = sum(total.by_item.get(s, 0) for s in schemes)
        distributable = Fraction(budget) * (1 - Fraction(policy.reserve)) - Fraction(by_item, 100)
        if points == 0:
            continue
        if distributable <= 0:
            raise PolicyError(
                f"budget pool {pool!r} leaves nothing for points: budget {budget} × (1 − "
                f"reserve {policy.reserve}) minus {scaled_decimal(by_item, 2)} paid by item "
                f"is {_fraction_text(distributable)}",
                file=policy.path,
            )
        # yuan per point = distributable ÷ (points / 10^pd); kept as value × 10^vd
        scaled = distributable * 10 ** (policy.point_decimals + policy.value_decimals) / points
        pools[pool] = scaled_decimal(half_up(scaled), policy.value_decimals)
    return Reduced(pools, total)


@attrs.define(slots=True)
class SettleSummary:
    """Totals of a run, per hospital, in cents; they reconcile with the case rows."""

    rows: int = 0
    settled: int = 0
    by_class: Counter = attrs.field(factory=Counter)
    by_reason: Counter = attrs.field(factory=Counter)
    hospitals: dict[str, dict[str, int]] = attrs.field(factory=dict)
    point_values: Mapping[str, Decimal] = attrs.field(factory=dict)
    #: cases grouped with a ruleset the policy does not price: ruleset id -> cases, and how
    #: many of those are not_covered
    foreign: Counter = attrs.field(factory=Counter)
    foreign_not_covered: Counter = attrs.field(factory=Counter)
    #: cases whose claimed self-pay exceeded the payment (fund pays 0, share capped)
    shares_capped: int = 0
    #: rows read; rows written; unreadable CSV lines sent to the rejects file (IO accounting:
    #: rows_in == rows_out + rows_rejected)
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0

    def add_checks(self, other: SettleSummary) -> None:
        """Merge another run's check counts (for runners that merge partition summaries)."""
        self.foreign.update(other.foreign)
        self.foreign_not_covered.update(other.foreign_not_covered)
        self.shares_capped += other.shares_capped

    def data_warnings(self, policy: Policy) -> list[str]:
        """What the user should know about the run's input: cases grouped with another
        ruleset than the policy's, and patients' self-pay above the payment."""
        out = []
        if self.foreign:
            parts = [
                f"{count:,} with {name} ({self.foreign_not_covered[name]:,} of them not_covered)"
                for name, count in sorted(self.foreign.items())
            ]
            out.append(
                f"{sum(self.foreign.values()):,} of {self.rows:,} cases were grouped "
                f"{'; '.join(parts)}, but policy {policy.id} prices the groups of ruleset "
                f"{policy.ruleset}: group them with -r {policy.ruleset}, or list the ruleset in "
                "the policy's [policy] accepted_rulesets if this is on purpose"
            )
        if self.shares_capped:
            out.append(
                f"{self.shares_capped:,} case(s): the patient's self-pay on the claim "
                "exceeds the payment; their fund_payment is 0 and patient_share is "
                "capped at the payment"
            )
        return out

    def add(
        self,
        hospital: pa.Array,
        settled: np.ndarray,
        pclass: np.ndarray,
        amounts: Mapping[str, np.ndarray],
        reasons: np.ndarray,
    ) -> None:
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
        for name, values in (
            ("cases", np.ones(len(settled), np.int64)),
            ("settled", settled.astype(np.int64)),
            *amounts.items(),
        ):
            sums = (
                np.bincount(idx, weights=None, minlength=len(names))
                if name == "cases"
                else group_sums(idx, values, len(names))
            )
            for k, hosp in enumerate(names):
                self.hospitals.setdefault(hosp, Counter())[name] += int(sums[k])

    def total(self, name: str) -> int:
        return sum(h.get(name, 0) for h in self.hospitals.values())
