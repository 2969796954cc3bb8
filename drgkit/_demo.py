"""Plausible demo cases for ``drgkit demo``, drawn from the demo ruleset's own code lists.

The generator reads the demo ruleset (``rulesets/demo/<version>``) with the :mod:`csv` module
and turns every ADRG entry into a *scenario*: which principal diagnoses, procedures, secondary
diagnoses, sex, age and birth weight make a case land there. It samples clinical profiles from
a fixed case mix, adds complications (CC/MCC) so that every severity level occurs, and prices
each stay around the demo policy's price of its group at the hospital's own efficiency, so
that some hospitals gain and others lose (:mod:`drgkit._generate`, the same generator that
writes national-scale datasets). A seed always gives the same table.

A small share of rows is deliberately bad (unknown codes, missing sex, text age, …) so that a
first run shows drgkit's per-case statuses too. Nothing here is real patient data.
"""

from __future__ import annotations

import os

import pyarrow as pa

from ._demo_mix import BAD_KINDS, DEMO_CASE_SCHEMA
from ._demo_scenarios import demo_ruleset_root
from ._generate import CASE_SCHEMA, demo_generator

__all__ = [
    "BAD_KINDS",
    "CASE_SCHEMA",
    "DEMO_CASE_SCHEMA",
    "demo_ruleset_root",
    "generate_cases",
]


def generate_cases(
    n: int = 2000,
    *,
    seed: int = 20231,
    ruleset_dir: str | os.PathLike[str] | None = None,
    bad_fraction: float = 0.02,
) -> pa.Table:
    """``n`` plausible inpatient cases for the demo ruleset, as an Arrow table.

    Discharge dates spread over 2023 and 2024, so both demo versions are used. About
    ``bad_fraction`` of the rows are deliberately bad (see :data:`BAD_KINDS`). The same
    ``seed`` always gives the same table. ``ruleset_dir`` is a demo ruleset version folder
    (default: the 2024 demo); its code lists are what the cases are drawn from.
    """
    gen = demo_generator(n, seed=seed, ruleset_dir=ruleset_dir, bad_fraction=bad_fraction)
    return gen.table(0, n)
