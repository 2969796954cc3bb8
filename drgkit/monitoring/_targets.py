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
from typing import Any

import attrs
import pyarrow as pa

__all__ = ["SCOPES", "TARGET_SCHEMA", "Target", "default_targets", "targets"]

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


def default_targets() -> tuple[Target, ...]:
    """The seeds' regional targets."""
    raise NotImplementedError


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
    cases, cases) for alliance targets. ``rules``: targets (default :func:`default_targets`),
    a :class:`~drgkit.monitoring.MonitoringRules` or a policy. A target whose value cannot be
    computed (no previous period, no referral data) has ``met`` null and says why in
    ``detail``."""
    raise NotImplementedError
