"""Settlement: regional payment policies applied to grouped cases, exactly, in cents."""

from .._money import MONEY
from ._bulk import DaskRunner, DatasetResult, LocalRunner, SettleContext, settle_dataset
from ._dip_period import dip_clearing, dip_prepayments
from ._dip_run import DipSettleRun, check_dip_policy
from ._dip_values import fund_residue, start_point_value, start_point_values
from ._period import (
    OUTCOME_SCHEMA,
    CostCoefficient,
    OutcomeRule,
    PeriodRules,
    hospital_totals,
    outcome_details,
    presettle,
    presettle_all,
    quality_deductions,
    settle_period,
)
from ._policy import Policy, PolicyError
from ._scheme_simulate import compare_schemes
from ._schemes import Scheme, SettleMethod, register_scheme
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
    "OUTCOME_SCHEMA",
    "PAYMENT_CLASSES",
    "CostCoefficient",
    "DaskRunner",
    "DatasetResult",
    "DipSettleRun",
    "LocalRunner",
    "OutcomeRule",
    "Partial",
    "PeriodRules",
    "Policy",
    "PolicyError",
    "Reduced",
    "Scheme",
    "SettleContext",
    "SettleMethod",
    "SettleRun",
    "SettleSummary",
    "Simulation",
    "check_dip_policy",
    "compare_schemes",
    "dip_clearing",
    "dip_prepayments",
    "fund_residue",
    "hospital_totals",
    "outcome_details",
    "point_values",
    "presettle",
    "presettle_all",
    "quality_deductions",
    "register_scheme",
    "settle",
    "settle_batches",
    "settle_dataset",
    "settle_file",
    "settle_period",
    "simulate",
    "start_point_value",
    "start_point_values",
]
