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
  key compares with the same month one year earlier: '2023-03' against '2022-03'; a key found
  only in the previous period is listed with 0 cases and no growth);
  ``cost_growth`` = total_cost ÷ previous_total_cost − 1, ``cost_per_case_growth`` = (total_cost
  ÷ settled) ÷ (previous_total_cost ÷ previous_settled) − 1.

A DIP settled table works the same way with its packets in place of DRGs (``drg`` is then
the ``group`` column; there is no RW, so ``total_weight`` and ``cmi`` are null).

A ratio whose denominator is 0, or whose inputs are absent, is null — never a 0 pretending.
Rows are ordered by key (text order, a null key last); a null key value is a key of its own, so
that no case is dropped: Σ over rows of ``cases`` = the number of input rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation, localcontext
from fractions import Fraction
from typing import Any

import attrs
import pyarrow as pa

from .._money import RW_DECIMALS
from ..errors import CaseDataError
from ..schema import MONEY
from ._stream import STATUSES, Accumulator, accumulate, open_settled

__all__ = [
    "DENOMINATOR_COLUMNS",
    "INDICATOR_COLUMNS",
    "KEYS",
    "REFERENCE_SCHEMA",
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
_STATUSES = STATUSES

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


# --------------------------------------------------------------------------- the reference

#: digits of the decimal arithmetic of expected costs and LOS (the DRG means have different
#: denominators, so their weighted sum is formed in 60 digits, far beyond float64's 17)
_DIGITS = 60


@attrs.frozen(slots=True)
class _Ref:
    """Per DRG: mean cost (cents) and LOS as exact fractions, and the risk level."""

    mean_cost: dict[str | None, Fraction]
    mean_los: dict[str | None, Fraction]
    risk: dict[str | None, str | None]
    has_risk: bool


def _levels(
    mortality: dict[str | None, tuple[int, int]], risk: RiskCutoffs
) -> dict[str | None, tuple[float | None, str | None]]:
    """(z, level) per DRG from (deaths, cases); see :class:`RiskCutoffs`."""
    logs = {
        d: math.log(deaths / cases)
        for d, (deaths, cases) in mortality.items()
        if cases >= risk.min_cases and cases > 0 and deaths > 0
    }
    out: dict[str | None, tuple[float | None, str | None]] = {}
    if logs:
        mean = math.fsum(logs.values()) / len(logs)
        sd = math.sqrt(math.fsum((x - mean) ** 2 for x in logs.values()) / len(logs))
    for d, (_deaths, cases) in mortality.items():
        if d in logs:
            z = 0.0 if sd == 0 else (logs[d] - mean) / sd
            if z < risk.low:
                level = "low"
            elif z < risk.medium:
                level = "medium_low"
            elif z < risk.high:
                level = "medium_high"
            else:
                level = "high"
            out[d] = (z, level)
        elif cases >= risk.min_cases and cases > 0 and risk.zero_deaths == "low":
            out[d] = (None, "low")
        else:
            out[d] = (None, None)
    return out


def _ref_from_region(acc: Accumulator, risk: RiskCutoffs) -> _Ref:
    region = acc.region()
    levels = _levels({d: (s["deaths"], s["mortality_cases"]) for d, s in region.items()}, risk)
    return _Ref(
        {d: Fraction(s["cost"], s["cost_cases"]) for d, s in region.items() if s["cost_cases"]},
        {d: Fraction(s["los"], s["los_cases"]) for d, s in region.items() if s["los_cases"]},
        {d: lv for d, (_z, lv) in levels.items()},
        acc.present.get("leaving_type", False),
    )


def _exact(value: Any, where: str) -> Fraction | None:
    """A number of a reference table, exactly (a float as the decimal it prints as)."""
    if value is None:
        return None
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidOperation
            return Fraction(Decimal(repr(value)))
        return Fraction(Decimal(str(value).strip()))
    except (InvalidOperation, ValueError):
        raise CaseDataError(
            f"{value!r} is not a number", file="<reference>", column=where
        ) from None


def _ref_from_table(data: Any, risk: RiskCutoffs) -> _Ref:
    """A reference table: drg_reference's output, or a table of ``drg`` with ``mean_cost``
    (yuan) and ``mean_los``, optionally ``risk_level`` (or ``deaths`` and
    ``mortality_cases``)."""
    src = open_settled(data, "reference")
    table = pa.Table.from_batches(list(src.batches), schema=src.schema)
    names = table.column_names
    if "drg" not in names:
        raise CaseDataError("the reference table needs a 'drg' column", file=src.name, column="drg")
    rows = table.to_pylist()
    drgs = [None if r["drg"] is None else str(r["drg"]) for r in rows]
    seen: set[str | None] = set()
    for k, d in enumerate(drgs):
        if d in seen:
            raise CaseDataError(f"DRG {d} is listed twice", file=src.name, row=k + 2, column="drg")
        seen.add(d)
    mean_cost: dict[str | None, Fraction] = {}
    mean_los: dict[str | None, Fraction] = {}
    for d, r in zip(drgs, rows, strict=True):
        if r.get("cost_cases") and r.get("total_cost") is not None:
            mean_cost[d] = _exact(r["total_cost"], "total_cost") * 100 / int(r["cost_cases"])
        elif r.get("mean_cost") is not None:
            mean_cost[d] = _exact(r["mean_cost"], "mean_cost") * 100
        if r.get("los_cases") and r.get("total_los") is not None:
            mean_los[d] = Fraction(int(r["total_los"]), int(r["los_cases"]))
        elif r.get("mean_los") is not None:
            mean_los[d] = _exact(r["mean_los"], "mean_los")
    if "risk_level" in names:
        bad = [r["risk_level"] for r in rows if r["risk_level"] not in (*RISK_LEVELS, None)]
        if bad:
            raise CaseDataError(
                f"risk_level {bad[0]!r} is not one of {', '.join(RISK_LEVELS)}",
                file=src.name,
                column="risk_level",
            )
        levels = {d: r["risk_level"] for d, r in zip(drgs, rows, strict=True)}
        return _Ref(mean_cost, mean_los, levels, True)
    if "deaths" in names and "mortality_cases" in names:
        mort = {
            d: (int(r["deaths"] or 0), int(r["mortality_cases"] or 0))
            for d, r in zip(drgs, rows, strict=True)
        }
        return _Ref(
            mean_cost, mean_los, {d: lv for d, (_z, lv) in _levels(mort, risk).items()}, True
        )
    return _Ref(mean_cost, mean_los, {}, False)


# --------------------------------------------------------------------------- the output


def _ratio(num: int | Fraction | None, den: int | Fraction | None) -> float | None:
    """num ÷ den once, exactly, as float64; None when either is unknown or den is 0."""
    if num is None or den is None or den == 0:
        return None
    return float(Fraction(num) / Fraction(den))


def _index(num: int, den: Decimal | None) -> float | None:
    """An index: integer numerator ÷ a 60-digit expected value, as float64."""
    if den is None or den == 0:
        return None
    with localcontext() as ctx:
        ctx.prec = _DIGITS
        return float(Decimal(num) / den)


def _expected(
    cells: list[tuple[int, int]], means: dict[str | None, Fraction], drgs: list
) -> Decimal | None:
    """Σ cases × mean of their DRG (60 digits); None when a DRG with cases has no mean."""
    total = Decimal(0)
    with localcontext() as ctx:
        ctx.prec = _DIGITS
        for count, d in cells:
            if count == 0:
                continue
            mean = means.get(drgs[d])
            if mean is None:
                return None
            total += Decimal(count) * Decimal(mean.numerator) / Decimal(mean.denominator)
    return total


def _yuan(cents: int | None) -> Decimal | None:
    return None if cents is None else Decimal(int(cents)).scaleb(-2)


def _rows(acc: Accumulator, ref: _Ref, previous: Accumulator | None) -> list[dict[str, Any]]:
    by = acc.by
    month = by.index("month") if "month" in by else None

    def shift(key: tuple) -> tuple:
        """A previous key as the current key it compares with: a month one year on."""
        if month is None or key[month] is None:
            return key
        year, mm = key[month].split("-")
        return (*key[:month], f"{int(year) + 1:04d}-{mm}", *key[month + 1 :])

    prev: dict[tuple, list[int]] = {}
    if previous is not None:
        for key, i in previous.keys.items():
            entry = prev.setdefault(shift(key), [0, 0])
            entry[0] += previous.key_sums.get("total_cost", i)
            entry[1] += previous.key_sums.get("settled", i)
    drgs = list(acc.drgs)
    by_key: dict[int, list[int]] = {}
    cell_drg: dict[int, int] = {}
    for (k, d), c in acc.cells.items():
        by_key.setdefault(k, []).append(c)
        cell_drg[c] = d
    keys = dict(acc.keys)
    for key in prev:
        if key not in keys:
            keys[key] = -1  # a key of the previous period only: no current cases
    p = acc.present
    out = []
    for key in sorted(keys, key=_order):
        i = keys[key]

        def get(name: str, i: int = i) -> int:
            return acc.key_sums.get(name, i)

        cells = by_key.get(i, []) if i >= 0 else []
        cs = acc.cell_sums
        row: dict[str, Any] = dict(zip(by, key, strict=True))
        cases, grouped, settled = get("cases"), get("status_ok"), get("settled")
        row["cases"], row["grouped"] = cases, grouped
        row["grouping_rate"] = _ratio(grouped, cases)
        for s in _STATUSES:
            row[f"status_{s}"] = get(f"status_{s}")
        row["drg_count"] = len(cells)
        units, weighted = get("total_weight"), get("weighted_cases")
        has_rw = p.get("rw", True)
        row["total_weight"] = Decimal(units).scaleb(-RW_DECIMALS) if has_rw else None
        row["cmi"] = _ratio(Fraction(units, 10**RW_DECIMALS), weighted) if has_rw else None
        indexed_cost = sum(cs.get("cost", c) for c in cells)
        expected_cost = _expected(
            [(cs.get("cost_cases", c), cell_drg[c]) for c in cells], ref.mean_cost, drgs
        )
        indexed_los = sum(cs.get("los", c) for c in cells)
        expected_los = _expected(
            [(cs.get("los_cases", c), cell_drg[c]) for c in cells], ref.mean_los, drgs
        )
        row["cost_index"] = _index(indexed_cost, expected_cost)
        row["time_index"] = _index(indexed_los, expected_los) if p.get("los") else None
        total = get("total_cost")
        row["total_cost"] = _yuan(total)
        row["mean_cost"] = _ratio(Fraction(total, 100), settled)
        los_cases = get("los_cases")
        row["total_los"] = get("total_los") if p.get("los") else None
        row["mean_los"] = _ratio(get("total_los"), los_cases) if p.get("los") else None
        row["cost_per_weight"] = (
            _ratio(Fraction(get("weighted_cost"), 100), Fraction(units, 10**RW_DECIMALS))
            if has_rw
            else None
        )
        for side in ("high", "low"):
            row[f"{side}_outliers"] = get(f"{side}_outliers")
            row[f"{side}_outlier_share"] = _ratio(get(f"{side}_outliers"), settled)
        for out_name, col in (("drug", "drug_cost"), ("consumable", "consumables_cost")):
            known = p.get(col) and get(f"{out_name}_missing") == 0
            amount = get(f"{out_name}_cost") if known else None
            row[f"{out_name}_cost"] = _yuan(amount)
            row[f"{out_name}_share"] = _ratio(amount, total)
        mortality = p.get("leaving_type")
        row["deaths"] = get("deaths") if mortality else None
        low = [c for c in cells if ref.risk.get(drgs[cell_drg[c]]) == "low"]
        lr = mortality and ref.has_risk
        row["low_risk_cases"] = sum(cs.get("mortality_cases", c) for c in low) if lr else None
        row["low_risk_deaths"] = sum(cs.get("deaths", c) for c in low) if lr else None
        row["low_risk_mortality"] = _ratio(row["low_risk_deaths"], row["low_risk_cases"])
        readmit = p.get("readmitted_31d")
        row["readmissions_31d"] = get("readmissions_31d") if readmit else None
        row["readmission_rate"] = (
            _ratio(get("readmissions_31d"), get("readmission_known")) if readmit else None
        )
        for name in ("payment", "fund_payment", "gain_loss"):
            row[name] = _yuan(get(name))
        found = prev.get(key) if previous is not None else None
        ptotal, psettled = (found[0], found[1]) if found is not None else (None, None)
        row["previous_total_cost"] = _yuan(ptotal)
        row["cost_growth"] = (
            None if ptotal is None or ptotal == 0 or i < 0 else float(Fraction(total, ptotal) - 1)
        )
        row["previous_cost_per_case"] = _ratio(
            None if ptotal is None else Fraction(ptotal, 100), psettled
        )
        row["cost_per_case_growth"] = (
            float(Fraction(total * psettled, settled * ptotal) - 1)
            if ptotal and psettled and settled
            else None
        )
        row["settled"] = settled
        row["weighted_cases"] = weighted
        row["weighted_cost"] = _yuan(get("weighted_cost"))
        row["indexed_cost"] = _yuan(indexed_cost)
        row["expected_cost"] = None if expected_cost is None else float(expected_cost / 100)
        row["indexed_los"] = indexed_los if p.get("los") else None
        row["expected_los"] = (
            None if expected_los is None or not p.get("los") else float(expected_los)
        )
        row["los_cases"] = los_cases
        row["mortality_cases"] = get("mortality_cases")
        row["readmission_known"] = get("readmission_known")
        row["previous_settled"] = psettled
        out.append(row)
    return out


def _order(key: tuple) -> tuple:
    """Text order, a null key value after every text."""
    return tuple((v is None, "" if v is None else v) for v in key)


def _check_by(by: Sequence[str]) -> tuple[str, ...]:
    if isinstance(by, str):
        by = tuple(k.strip() for k in by.split(",") if k.strip())
    by = tuple(by)
    unknown = [k for k in by if k not in KEYS]
    if unknown:
        raise CaseDataError(f"unknown key {unknown[0]!r} in by: keys are {', '.join(KEYS)}")
    if len(set(by)) < len(by):
        raise CaseDataError(f"a key is repeated in by: {', '.join(by)}")
    return by


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
    risk = risk or RiskCutoffs()
    acc = accumulate(settled, (), "settled", cases, progress)
    region = acc.region()
    levels = _levels({d: (s["deaths"], s["mortality_cases"]) for d, s in region.items()}, risk)
    mort = acc.present.get("leaving_type", False)
    rows = []
    for d in sorted(region, key=lambda x: (x is None, x or "")):
        s = region[d]
        z, level = levels[d]
        rows.append(
            {
                "drg": d,
                "cases": s["grouped"],
                "cost_cases": s["cost_cases"],
                "total_cost": _yuan(s["cost"]),
                "mean_cost": _ratio(Fraction(s["cost"], 100), s["cost_cases"]),
                "los_cases": s["los_cases"],
                "total_los": s["los"],
                "mean_los": _ratio(s["los"], s["los_cases"]),
                "mortality_cases": s["mortality_cases"] if mort else None,
                "deaths": s["deaths"] if mort else None,
                "mortality": _ratio(s["deaths"], s["mortality_cases"]) if mort else None,
                "z": z if mort else None,
                "risk_level": level if mort else None,
            }
        )
    return pa.Table.from_pylist(rows, schema=REFERENCE_SCHEMA)


#: :func:`drg_reference`
REFERENCE_SCHEMA = pa.schema(
    [
        pa.field("drg", pa.string()),
        pa.field("cases", _N),
        pa.field("cost_cases", _N),
        pa.field("total_cost", MONEY),
        pa.field("mean_cost", _F),
        pa.field("los_cases", _N),
        pa.field("total_los", _N),
        pa.field("mean_los", _F),
        pa.field("mortality_cases", _N),
        pa.field("deaths", _N),
        pa.field("mortality", _F),
        pa.field("z", _F),
        pa.field("risk_level", pa.string()),
    ]
)


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
    by = _check_by(by)
    risk = risk or RiskCutoffs()
    acc = accumulate(settled, by, "settled", cases, progress)
    ref = _ref_from_region(acc, risk) if reference is None else _ref_from_table(reference, risk)
    prev = None
    if previous is not None:
        prev = accumulate(previous, by, "previous")
    rows = _rows(acc, ref, prev)
    schema = indicator_schema(by)
    meta = {
        b"by": ",".join(by).encode(),
        b"reference": b"same data" if reference is None else b"given",
        b"rows": str(acc.rows).encode(),
    }
    if policy is not None:
        meta[b"policy"] = str(getattr(policy, "id", policy)).encode()
    try:
        table = pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, OverflowError) as exc:  # a total beyond decimal128(18, 2)
        raise CaseDataError(f"an indicator total does not fit its column: {exc}") from None
    return table.replace_schema_metadata(meta)
