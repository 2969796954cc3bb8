"""Indicators per key over settled cases (CMI, cost and time indices, grouping rate, outlier,
drug and consumable shares, low-risk mortality, readmissions, money, growth).

Streaming and exact: each batch adds integer partial sums (counts, cents, days, RW units) to
accumulators per key and per (key, DRG); the ratios are formed once, at the end, from those
integers (as exact fractions, then one conversion to float64 for display). The result does not
depend on how the cases are batched.

Which cases count (the denominators are output columns too, after the contract columns):

* ``cases``: every row; ``grouped``: status ``ok``; ``status_*``: rows per grouping status;
* money, cost, outliers, drug and consumable costs, growth: **settled** cases (``settled`` true;
  a case that is not settled has no payment and may have no valid cost) — ``settled`` column;
* ``total_weight`` = Σ RW of grouped cases with an RW (priced by a standard: a case paid by item
  has none); ``cmi`` = total_weight ÷ ``weighted_cases``; ``cost_per_weight`` =
  ``weighted_cost`` ÷ total_weight (the cost of those same cases);
* ``cost_index`` = ``indexed_cost`` ÷ ``expected_cost``: Σ cost of the settled grouped cases ÷
  Σ over their DRGs of (cases × the region's mean cost of the DRG); ``time_index`` likewise with
  LOS over grouped cases with a known LOS (``indexed_los`` ÷ ``expected_los``). A DRG the
  reference does not know makes the index null (no invented mean);
* ``total_los`` / ``mean_los``: cases with a known whole LOS (``los_cases``);
* ``drug_cost`` / ``consumable_cost``: Σ over settled cases, null when the column is absent or a
  settled case of the key has none; shares are of ``total_cost``;
* ``deaths``: leaving type 5 (死亡) among cases with a known leaving type (``mortality_cases``);
  low-risk cases: grouped cases of a DRG whose regional risk level is ``low``
  (:class:`RiskCutoffs`);
* ``readmissions_31d`` / ``readmission_rate``: settled grouped cases flagged readmitted among
  those with a known flag (``readmission_known``) — the cases the period settlement's quality
  rule compares (drgkit/settlement/_quality.py);
* growth: ``previous_*`` from the previous period's settled cases with the same key (a month
  key matches the same calendar month: '2023-03' against '2022-03');
  ``cost_growth`` = total_cost ÷ previous_total_cost − 1, ``cost_per_case_growth`` = (total_cost
  ÷ settled) ÷ (previous_total_cost ÷ previous_settled) − 1.

A ratio whose denominator is 0, or whose inputs are absent, is null — never a 0 pretending.
Rows are ordered by key (text order, a null key last); a null key value is a key of its own, so
that no case is dropped: Σ over rows of ``cases`` = the number of input rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import pyarrow as pa

from ..schema import MONEY

__all__ = [
    "DENOMINATOR_COLUMNS",
    "INDICATOR_COLUMNS",
    "KEYS",
    "RISK_LEVELS",
    "RiskCutoffs",
    "drg_reference",
    "indicator_schema",
    "indicators",
]

#: the keys ``by`` may name; ``month`` is 'YYYY-MM' of ``discharge_date``
KEYS = (
    "hospital_id",
    "department",
    "doctor",
    "mdc",
    "drg",
    "month",
    "scheme",
    "insurance_type",
    "hospital_level",
)

#: Σ of RW: at most 100M cases × RW 1000 with 9 decimals needs more than 18 digits
WEIGHT = pa.decimal128(38, 9)
_F = pa.float64()
_N = pa.int64()
_STATUSES = ("ok", "ungroupable", "ambiguous", "invalid")

#: the output columns after the keys, in order, with their types (the contract)
INDICATOR_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("cases", _N),
    ("grouped", _N),
    ("grouping_rate", _F),
    *((f"status_{s}", _N) for s in _STATUSES),
    ("drg_count", _N),
    ("total_weight", WEIGHT),
    ("cmi", _F),
    ("cost_index", _F),
    ("time_index", _F),
    ("total_cost", MONEY),
    ("mean_cost", _F),
    ("total_los", _N),
    ("mean_los", _F),
    ("cost_per_weight", _F),
    ("high_outliers", _N),
    ("high_outlier_share", _F),
    ("low_outliers", _N),
    ("low_outlier_share", _F),
    ("drug_cost", MONEY),
    ("drug_share", _F),
    ("consumable_cost", MONEY),
    ("consumable_share", _F),
    ("deaths", _N),
    ("low_risk_cases", _N),
    ("low_risk_deaths", _N),
    ("low_risk_mortality", _F),
    ("readmissions_31d", _N),
    ("readmission_rate", _F),
    ("payment", MONEY),
    ("fund_payment", MONEY),
    ("gain_loss", MONEY),
    ("previous_total_cost", MONEY),
    ("cost_growth", _F),
    ("previous_cost_per_case", _F),
    ("cost_per_case_growth", _F),
)

#: the exact numerators and denominators behind the ratios, after the contract columns
DENOMINATOR_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("settled", _N),
    ("weighted_cases", _N),
    ("weighted_cost", MONEY),
    ("indexed_cost", MONEY),
    ("expected_cost", _F),
    ("indexed_los", _N),
    ("expected_los", _F),
    ("los_cases", _N),
    ("mortality_cases", _N),
    ("readmission_known", _N),
    ("previous_settled", _N),
)

#: regional risk levels of a DRG by the z-score of ln(mortality)
RISK_LEVELS = ("low", "medium_low", "medium_high", "high")


@attrs.frozen(slots=True)
class RiskCutoffs:
    """How DRGs get their mortality risk level (低风险组 …) from regional mortality.

    Per DRG ``m = deaths ÷ cases`` (grouped cases with a known leaving type, at least
    ``min_cases`` of them); over the DRGs with ``m > 0``, ``z = (ln m − mean) ÷ sd`` (mean and
    population standard deviation of ln m across those DRGs, unweighted). Levels: ``low`` when
    ``z < low``, ``medium_low`` when ``z < medium``, ``medium_high`` when ``z < high``, else
    ``high`` (the usual cut-offs −1, 0, 1). A DRG without deaths has no ln m and takes no part
    in the mean and sd: ``zero_deaths = "low"`` (default) puts it in the low-risk level (no one
    died there: the lowest risk), ``"none"`` leaves it without a level — regions differ, so it is
    a parameter. A DRG with fewer than ``min_cases`` cases has no level.
    """

    low: float = -1.0
    medium: float = 0.0
    high: float = 1.0
    zero_deaths: str = attrs.field(default="low")
    min_cases: int = 1

    @zero_deaths.validator
    def _check(self, _attr: Any, value: str) -> None:
        if value not in ("low", "none"):
            raise ValueError(f"zero_deaths must be 'low' or 'none', got {value!r}")


def indicator_schema(by: Sequence[str]) -> pa.Schema:
    """The schema of :func:`indicators` for keys ``by``: the keys (text), the contract columns
    (:data:`INDICATOR_COLUMNS`), then the numerators and denominators
    (:data:`DENOMINATOR_COLUMNS`)."""
    return pa.schema(
        [pa.field(k, pa.string()) for k in by]
        + [pa.field(n, t) for n, t in (*INDICATOR_COLUMNS, *DENOMINATOR_COLUMNS)]
    )


def drg_reference(
    settled: Any,
    *,
    cases: Any = None,
    risk: RiskCutoffs | None = None,
    progress: Callable[[int], None] | None = None,
) -> pa.Table:
    """The region's per-DRG reference: ``drg``, ``cases`` (grouped), ``cost_cases`` and
    ``total_cost`` (settled grouped cases) and ``mean_cost``, ``los_cases``, ``total_los`` and
    ``mean_los``, ``mortality_cases``, ``deaths``, ``mortality``, ``z`` and ``risk_level``.

    Give it to :func:`indicators` as ``reference=`` to measure a period against another one
    (last year's region). Means are float64 for display; :func:`indicators` uses the exact sums
    when they are present (a user table may give only ``mean_cost`` / ``mean_los`` /
    ``risk_level``, read exactly as decimals)."""
    raise NotImplementedError


def indicators(
    settled: Any,
    by: Sequence[str] = ("hospital_id",),
    *,
    reference: Any = None,
    previous: Any = None,
    cases: Any = None,
    policy: Any = None,
    risk: RiskCutoffs | None = None,
    progress: Callable[[int], None] | None = None,
) -> pa.Table:
    """Indicators per key of settled cases (see the module docstring for every definition).

    ``settled``: the settled table (drgkit settle's output), a path (Parquet or CSV file, or a
    folder of Parquet files) or an iterable of record batches; read batch by batch.
    ``by``: any of :data:`KEYS` (``()``: one row for the whole region).
    ``reference``: the region's per-DRG means (:func:`drg_reference` or a table with ``drg``,
    ``mean_cost``, ``mean_los``, optionally ``risk_level``); None: from the same data.
    ``previous``: the previous period's settled cases (same kinds of input) for growth.
    ``cases``: the case input the settled table came from (same rows, same order), for columns
    the settled table lacks (``los``, ``leaving_type``, ``drug_cost``, ``consumables_cost``,
    ``doctor``, ``mdc``); rows are matched by ``case_id`` and a mismatch is an error.
    ``policy``: only to name it in the metadata. ``risk``: :class:`RiskCutoffs`.
    ``progress``: called with the number of rows read after each batch.

    Returns one row per key (schema :func:`indicator_schema`)."""
    raise NotImplementedError


def _iterable(value: Any) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict))
