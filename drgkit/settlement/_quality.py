"""The quality link between a hospital's readmissions and its payment, defined once.

A ``[[period.quality]]`` rule of a policy (e.g. the seeds' "a DRG whose 31-day readmission
rate at a hospital is more than 20% above the regional rate loses 10% of its payment there")
is read into a :class:`QualityRule` by the period settlement's parser
(:func:`drgkit.settlement._period.quality_rules`). Two places apply it and both decide with
:meth:`QualityRule.exceeds`: the period settlement deducts (``quality_deductions``) and the
monitoring lights it red (``drgkit.monitoring.warnings``), so a red light and a deduction can
never disagree.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import attrs

from .._money import half_up

__all__ = ["QUALITY_METRICS", "QUALITY_STATUSES", "QualityRule"]

#: Quality metrics a ``[[period.quality]]`` rule may name (a boolean column of settled cases).
QUALITY_METRICS = ("readmitted_31d",)
#: Grouping statuses a quality rule may look at (``statuses``; default ``["ok"]``).
QUALITY_STATUSES = ("ok", "ungroupable", "ambiguous")


@attrs.frozen(slots=True)
class QualityRule:
    """A group whose ``metric`` rate at a hospital exceeds the regional rate × (1 +
    ``above_average_by``) loses ``deduct`` of its payment there."""

    metric: str
    above_average_by: Decimal
    deduct: Decimal
    #: grouping statuses of the cases the rule looks at: by default only ``ok`` (cases with a
    #: DRG); ``ungroupable`` and ``ambiguous`` cases have no group to compare
    statuses: tuple[str, ...] = ("ok",)

    def exceeds(self, flagged: int, known: int, regional_flagged: int, regional_known: int) -> bool:
        """True when ``flagged ÷ known > regional_flagged ÷ regional_known × (1 +
        above_average_by)``, compared exactly (a rate exactly on the threshold is not above it);
        False when ``known`` is 0 (no evidence). The regional counts include the hospital's own
        cases, so ``regional_known`` ≥ ``known`` > 0 there."""
        if known <= 0:
            return False
        factor = 1 + Fraction(self.above_average_by)
        # a/b > (c/d)·f  ⇔  a·d > c·b·f  (b, d > 0)
        return Fraction(flagged * regional_known) > Fraction(regional_flagged * known) * factor

    def deduction(self, payment_cents: int) -> int:
        """The deduction in cents from a group's payment: ``payment × deduct``, rounded once,
        half up."""
        return half_up(payment_cents * Fraction(self.deduct))
