"""Settlement: regional payment policies applied to grouped cases, exactly, in cents."""

from ._money import MONEY
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

__all__ = ["MONEY", "PAYMENT_CLASSES", "Partial", "Policy", "PolicyError", "Reduced",
           "SettleRun", "SettleSummary", "point_values", "settle", "settle_batches",
           "settle_file"]
