"""Settlement: regional payment policies applied to grouped cases, exactly, in cents."""

from .._money import MONEY
from ._bulk import DaskRunner, DatasetResult, LocalRunner, SettleContext, settle_dataset
from ._period import (
    PeriodRules,
    hospital_totals,
    presettle,
    presettle_all,
    quality_deductions,
    settle_period,
)
from ._policy import Policy, PolicyError
from ._settle import (
    PAYMENT_CLASSES,
    Partial,
    Reduced,
    SettleRun,
    SettleSummary,
    point_values,
    settle,
    settle_batches,
    settle_file,
)
from ._simulate import Simulation, simulate

__all__ = [
    "MONEY",
    "PAYMENT_CLASSES",
    "DaskRunner",
    "DatasetResult",
    "LocalRunner",
    "Partial",
    "PeriodRules",
    "Policy",
    "PolicyError",
    "Reduced",
    "SettleContext",
    "SettleRun",
    "SettleSummary",
    "Simulation",
    "hospital_totals",
    "point_values",
    "presettle",
    "presettle_all",
    "quality_deductions",
    "settle",
    "settle_batches",
    "settle_dataset",
    "settle_file",
    "settle_period",
    "simulate",
]
