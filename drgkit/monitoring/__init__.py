"""Monitoring: the indicators insurers and hospitals watch, their warning lights and the
regional targets (DOMAIN.md §3.6).

Arrow in, Arrow out, streaming: :func:`indicators` reads settled cases batch by batch and keeps
only exact integer partial sums per key, so a year of 100M cases never has to fit in memory;
every ratio is computed once, at the end, from those integers.

>>> from drgkit import monitoring
>>> table = monitoring.indicators("settled.parquet", by=("hospital_id", "month"))  # doctest: +SKIP
>>> rules = monitoring.MonitoringRules.from_policy(policy)  # doctest: +SKIP
>>> lights = monitoring.warnings(table, rules)  # doctest: +SKIP
"""

from __future__ import annotations

from ._indicators import (
    DENOMINATOR_COLUMNS,
    INDICATOR_COLUMNS,
    KEYS,
    REFERENCE_SCHEMA,
    RISK_LEVELS,
    RiskCutoffs,
    drg_reference,
    indicator_schema,
    indicators,
)
from ._targets import TARGET_SCHEMA, Target, default_targets, referral_rates, targets
from ._warnings import (
    DEFAULT_RULES,
    LIGHTS,
    MonitoringError,
    MonitoringRules,
    WarningRule,
    exact_value,
    warning_details,
    warnings,
)

__all__ = [
    "DEFAULT_RULES",
    "DENOMINATOR_COLUMNS",
    "INDICATOR_COLUMNS",
    "KEYS",
    "LIGHTS",
    "REFERENCE_SCHEMA",
    "RISK_LEVELS",
    "TARGET_SCHEMA",
    "MonitoringError",
    "MonitoringRules",
    "RiskCutoffs",
    "Target",
    "WarningRule",
    "default_targets",
    "drg_reference",
    "exact_value",
    "indicator_schema",
    "indicators",
    "referral_rates",
    "targets",
    "warning_details",
    "warnings",
]
