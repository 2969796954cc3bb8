"""Red, yellow and green lights (红黄绿灯) on an indicator table, from rules that are policy data.

The rules live in a ``[monitoring]`` section of the policy TOML, or in a TOML file of their own
with the same section::

    [[monitoring.rules]]
    indicator = "cost_growth"     # a column of the indicator table
    direction = "higher"          # higher is worse ("lower": lower is worse)
    yellow = "0.08"               # worse than this: yellow (strictly: 0.08 itself is green)
    red = "0.10"                  # worse than this: red
    min_cases = 30                # fewer settled cases: no light (null)
    action = "费用增长预警: review the hospital's cost growth"

A rule ``relative = true`` compares a row with the regional value of the same indicator
(the table's rows summed; per DRG when ``drg`` is a key) instead of a fixed threshold: the row
is worse when it exceeds the regional value × (1 + threshold). The 31-day readmission rule of
the seeds (a DRG more than 20% above the regional rate loses 10% of its payment) is such a rule,
and it is *the same* rule as the period settlement's quality deduction: a policy's
``[[period.quality]]`` rules become warning rules (:meth:`MonitoringRules.from_policy`), and
both decide through :meth:`drgkit.settlement._quality.QualityRule.exceeds`.

Comparisons are exact: a ratio whose numerator and denominator are integer columns of the
indicator table is compared as a fraction (cost growth of exactly 8% is green), never through
its float.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs
import pyarrow as pa

__all__ = [
    "DEFAULT_RULES",
    "LIGHTS",
    "MonitoringRules",
    "WarningRule",
    "warning_details",
    "warnings",
]

#: the lights, best first
LIGHTS = ("green", "yellow", "red")


@attrs.frozen(slots=True)
class WarningRule:
    """One indicator's thresholds: worse than ``yellow`` is yellow, worse than ``red`` is red
    ("worse" is above for ``direction = "higher"``, below for ``"lower"``; either threshold may
    be None). ``relative``: thresholds are margins over the regional value. Rows with fewer than
    ``min_cases`` settled cases get no light from this rule."""

    indicator: str
    direction: str = "higher"
    yellow: Decimal | None = None
    red: Decimal | None = None
    min_cases: int = 0
    action: str = ""
    relative: bool = False

    def describe(self) -> str:
        """The rule as one line of text (the ``rule`` column)."""
        raise NotImplementedError


@attrs.frozen(slots=True)
class MonitoringRules:
    """The ``[monitoring]`` section: warning rules (and the regional targets, see
    :mod:`drgkit.monitoring._targets`)."""

    rules: tuple[WarningRule, ...] = ()
    targets: tuple[Any, ...] = ()
    source: str | None = None

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None, *, path: Any = None) -> MonitoringRules:
        """Validate a ``[monitoring]`` table (as read from TOML); errors name the key and file."""
        raise NotImplementedError

    @classmethod
    def from_toml(cls, path: Any) -> MonitoringRules:
        """The ``[monitoring]`` section of a TOML file (a policy or a file of its own)."""
        raise NotImplementedError

    @classmethod
    def from_policy(cls, policy: Any) -> MonitoringRules:
        """A policy's ``[monitoring]`` section, or :data:`DEFAULT_RULES` when it has none; its
        ``[[period.quality]]`` rules are added as relative readmission rules."""
        raise NotImplementedError


#: the seeds' defaults: cost growth above 8% yellow, above 10% red
DEFAULT_RULES = MonitoringRules(
    (
        WarningRule(
            "cost_growth",
            "higher",
            Decimal("0.08"),
            Decimal("0.10"),
            0,
            "费用增长预警: cost growth above 8% (yellow) / 10% (red)",
        ),
    )
)


def warnings(table: pa.Table, rules: MonitoringRules | Sequence[WarningRule] | Any) -> pa.Table:
    """``table`` (an indicator table) with two columns added: ``light`` ('red', 'yellow',
    'green', or null when no rule applies to the row: every rule below its minimum cases or its
    value not computable) and ``rule`` (the rule that set the light, as text; the worst rule
    wins, the first listed among equals). ``rules``: :class:`MonitoringRules`, a sequence of
    :class:`WarningRule`, a policy, or a TOML path."""
    raise NotImplementedError


def warning_details(
    table: pa.Table, rules: MonitoringRules | Sequence[WarningRule] | Any
) -> pa.Table:
    """One row per (key, rule): the keys, ``indicator``, ``value`` (float64, display),
    ``regional`` (relative rules), ``light``, ``rule`` and ``action``."""
    raise NotImplementedError
