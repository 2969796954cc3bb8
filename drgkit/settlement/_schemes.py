"""Payment schemes as plugins of one pipeline: a policy's ``method`` names a scheme, and the
scheme gives the run class that prepares, sums (first pass) and finishes batches.

A run class takes ``(policy, grouper_spec, schema, source, **options)`` and has ``prepare``,
``partial``, ``finish``, ``summary``, ``schema``, ``rows_done``, ``group_run`` and
``warn_data``; ``two_pass`` says whether point values need a first pass. DRG (rate and points)
and DIP are the two registered here; a third scheme registers its run class with
:func:`register_scheme` instead of forking the runners.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["SCHEMES", "Scheme", "register_scheme", "run_class", "two_pass"]


@attrs.frozen(slots=True)
class Scheme:
    name: str  # "drg", "dip"
    run: Any  # the run class
    two_pass: bool


SCHEMES: dict[str, Scheme] = {}


def register_scheme(method: str, scheme: Scheme) -> None:
    SCHEMES[method] = scheme


def _builtin() -> None:
    if SCHEMES:
        return
    from ._dip_run import DipSettleRun
    from ._run import SettleRun

    register_scheme("rate", Scheme("drg", SettleRun, False))
    register_scheme("points", Scheme("drg", SettleRun, True))
    register_scheme("dip", Scheme("dip", DipSettleRun, True))


def scheme_of(policy: Any) -> Scheme:
    _builtin()
    return SCHEMES[policy.method]


def run_class(policy: Any) -> Any:
    return scheme_of(policy).run


def two_pass(policy: Any) -> bool:
    return scheme_of(policy).two_pass
