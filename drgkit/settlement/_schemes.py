"""Settlement's view of the one scheme table (:mod:`drgkit._schemes`): a policy's ``method``
names a settlement method of a registered scheme, which gives the run class that prepares,
sums (first pass) and finishes batches, and whether point values need a first pass.

There is no second table here: DRG (rate, points) and DIP (dip) are registered by drgkit's
built-in plugin like any plugin's scheme (``drgkit_register_schemes``).
"""

from __future__ import annotations

from typing import Any

from .._schemes import Scheme, SettleMethod, register_scheme, settle_method
from ._policy import PolicyError

__all__ = ["Scheme", "SettleMethod", "register_scheme", "run_class", "scheme_of", "two_pass"]


def scheme_of(policy: Any) -> tuple[Scheme, SettleMethod]:
    """The scheme and settlement method of ``policy`` (its ``method``)."""
    found = settle_method(policy.method)
    if found is None:
        raise PolicyError(
            f"policy {policy.id}: no registered payment scheme settles method {policy.method!r}",
            file=policy.path,
        )
    return found


def run_class(policy: Any) -> Any:
    return scheme_of(policy)[1].run_class()


def two_pass(policy: Any) -> bool:
    return scheme_of(policy)[1].two_pass
