"""Regional targets as policy data, reported met or missed (DOMAIN.md §3.6).

The seeds' targets (:func:`default_targets`): total cost growth ≤ 5% a year (region); cost per
inpatient case down ≥ 8% (region); referral rate inside an alliance ≥ 30% (per alliance); a
hospital's cost difference coefficient against the regional average (= 1) inside 0.8–1.2 (per
hospital; the coefficient is the hospital's cost index: its cost against the region's for the
same case mix). A policy overrides them with ``[[monitoring.targets]]``::

    [[monitoring.targets]]
    id = "total_cost_growth"
    indicator = "cost_growth"    # a column of the indicator table, or "referral_rate"
    scope = "region"             # region | hospital | alliance
    max = "0.05"                 # and/or min = "…" (bounds included: 5% exactly is met)

This module only reports; paying for outcomes (deductions, rewards, uplifts, the synergy fund)
is the settlement's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs
import pyarrow as pa

__all__ = [
    "SCOPES",
    "TARGET_SCHEMA",
    "Target",
    "default_targets",
    "parse_targets",
    "referral_rates",
    "targets",
]

SCOPES = ("region", "hospital", "alliance")

#: :func:`targets`: one row per (target, scope id)
TARGET_SCHEMA = pa.schema(
    [
        pa.field("target", pa.string()),
        pa.field("scope", pa.string()),
        pa.field("scope_id", pa.string()),
        pa.field("indicator", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("min", pa.string()),
        pa.field("max", pa.string()),
        pa.field("met", pa.bool_()),
        pa.field("detail", pa.string()),
    ]
)


@attrs.frozen(slots=True)
class Target:
    """A bound on an indicator: met when ``min ≤ value ≤ max`` (either may be None)."""

    id: str
    indicator: str
    scope: str = "region"
    min: Decimal | None = None
    max: Decimal | None = None
    description: str = ""

    def met(self, value: Fraction) -> bool:
        return (self.min is None or value >= Fraction(self.min)) and (
            self.max is None or value <= Fraction(self.max)
        )


def default_targets() -> tuple[Target, ...]:
    """The seeds' regional targets."""
    return (
        Target(
            "total_cost_growth",
            "cost_growth",
            "region",
            None,
            Decimal("0.05"),
            "total cost growth ≤ 5% a year (医疗总费用增长)",
        ),
        Target(
            "cost_per_case_down",
            "cost_per_case_growth",
            "region",
            None,
            Decimal("-0.08"),
            "cost per inpatient case down ≥ 8% (次均住院费用下降)",
        ),
        Target(
            "alliance_referral_rate",
            "referral_rate",
            "alliance",
            Decimal("0.30"),
            None,
            "referral rate inside an alliance ≥ 30% (医联体内转诊率)",
        ),
        Target(
            "cost_difference_coefficient",
            "cost_index",
            "hospital",
            Decimal("0.8"),
            Decimal("1.2"),
            "hospital cost difference coefficient against the regional average in 0.8–1.2 "
            "(费用差异系数)",
        ),
    )


def parse_targets(spec: Any, path: Any) -> tuple[Target, ...]:
    """``[[monitoring.targets]]`` (the list as read from TOML), validated."""
    from ._indicators import INDICATOR_COLUMNS
    from ._warnings import MonitoringError, no_other_keys, rule_decimal

    if not isinstance(spec, list):
        raise MonitoringError(
            "monitoring.targets must be an array of tables ([[monitoring.targets]])", file=path
        )
    known = {n for n, _t in INDICATOR_COLUMNS} | {"referral_rate"}
    out = []
    seen: set[str] = set()
    for k, t in enumerate(spec):
        where = f"monitoring.targets[{k}]"
        if not isinstance(t, Mapping):
            raise MonitoringError(f"{where} must be a table", file=path)
        no_other_keys(t, ("id", "indicator", "scope", "min", "max", "description"), where, path)
        tid = t.get("id")
        if not isinstance(tid, str) or not tid or tid in seen:
            raise MonitoringError(f"{where}.id must be a text, unique, got {tid!r}", file=path)
        seen.add(tid)
        indicator = t.get("indicator")
        if indicator not in known:
            raise MonitoringError(
                f"{where}.indicator must be an indicator column or 'referral_rate', got "
                f"{indicator!r}",
                file=path,
            )
        scope = t.get("scope", "region")
        if scope not in SCOPES:
            raise MonitoringError(
                f"{where}.scope must be one of {', '.join(SCOPES)}, got {scope!r}", file=path
            )
        if (indicator == "referral_rate") != (scope == "alliance"):
            raise MonitoringError(
                f"{where}: the referral rate is an alliance's, and an alliance has only it",
                file=path,
            )
        low = None if "min" not in t else rule_decimal(t["min"], f"{where}.min", path)
        high = None if "max" not in t else rule_decimal(t["max"], f"{where}.max", path)
        if low is None and high is None:
            raise MonitoringError(f"{where} needs a min or a max", file=path)
        if low is not None and high is not None and low > high:
            raise MonitoringError(f"{where}: min ({low}) is above max ({high})", file=path)
        out.append(Target(tid, indicator, scope, low, high, str(t.get("description", ""))))
    return tuple(out)


def referral_rates(
    alliance_cases: pa.Table,
) -> dict[str, tuple[int, int]]:
    """alliance id -> (referred cases, cases) from drgkit.alliance's ``cases`` table: a case
    is referred when its ``link`` is a referral between two members of its alliance (``up``
    or ``down``; a self, lateral, outside or unresolved link is not); cases without an
    alliance are not counted."""
    out: dict[str, list[int]] = {}
    for r in alliance_cases.select(["alliance_id", "link"]).to_pylist():
        if r["alliance_id"] is None:
            continue
        acc = out.setdefault(r["alliance_id"], [0, 0])
        acc[1] += 1
        acc[0] += r["link"] in ("up", "down")
    return {k: (v[0], v[1]) for k, v in out.items()}


def _value(row: Mapping[str, Any], indicator: str) -> Fraction | None:
    from ._warnings import exact_value

    return exact_value(row, indicator)


def targets(
    region: pa.Table | None,
    hospitals: pa.Table | None = None,
    *,
    rules: Sequence[Target] | Any = None,
    referrals: Mapping[str, tuple[int, int]] | None = None,
) -> pa.Table:
    """Each target met or missed (schema :data:`TARGET_SCHEMA`).

    ``region``: an indicator table ``by=()`` (one row) for region targets; ``hospitals``: one
    ``by=("hospital_id",)`` for hospital targets; ``referrals``: alliance id -> (referred
    cases, cases) for alliance targets (:func:`referral_rates` makes it from drgkit.alliance's
    cases table). ``rules``: targets (default :func:`default_targets`), a
    :class:`~drgkit.monitoring.MonitoringRules` or a policy. Values are compared exactly
    (bounds included: growth of exactly 5% meets "≤ 5%"). A target whose value cannot be
    computed (no previous period, no referral data) has ``met`` null and says why in
    ``detail``."""
    from ._warnings import MonitoringRules

    if rules is None:
        the = default_targets()
    elif isinstance(rules, MonitoringRules):
        the = rules.targets
    elif hasattr(rules, "config") and hasattr(rules, "path"):
        the = MonitoringRules.from_policy(rules).targets
    else:
        the = tuple(rules)
    out: dict[str, list[Any]] = {f.name: [] for f in TARGET_SCHEMA}

    def add(t: Target, scope_id: str | None, value: Fraction | None, why: str) -> None:
        out["target"].append(t.id)
        out["scope"].append(t.scope)
        out["scope_id"].append(scope_id)
        out["indicator"].append(t.indicator)
        out["value"].append(None if value is None else float(value))
        out["min"].append(None if t.min is None else str(t.min))
        out["max"].append(None if t.max is None else str(t.max))
        out["met"].append(None if value is None else t.met(value))
        out["detail"].append(why if value is None else t.description)

    for t in the:
        if t.scope == "region":
            if region is None or region.num_rows != 1:
                add(t, None, None, "needs the region's indicator table (by=(), one row)")
                continue
            value = _value(region.to_pylist()[0], t.indicator)
            add(t, None, value, f"{t.indicator} is not computable (no previous period?)")
        elif t.scope == "hospital":
            if hospitals is None or "hospital_id" not in hospitals.column_names:
                add(t, None, None, "needs an indicator table by hospital_id")
                continue
            for row in hospitals.to_pylist():
                add(
                    t,
                    row["hospital_id"],
                    _value(row, t.indicator),
                    f"{t.indicator} is not computable",
                )
        else:
            if not referrals:
                add(t, None, None, "needs referral counts per alliance (referrals=)")
                continue
            for aid in sorted(referrals):
                referred, cases = referrals[aid]
                value = Fraction(referred, cases) if cases else None
                add(t, aid, value, "the alliance has no cases")
    return pa.table(out, schema=TARGET_SCHEMA)
