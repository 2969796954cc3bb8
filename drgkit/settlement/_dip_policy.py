"""The ``[dip]`` section of a policy file (``[policy] method = "dip"``): every regional choice of
DIP settlement (DIP.md §4–§5) as a parameter, read with the policy loader's error messages.

Variants of DIP.md §4 are expressed by :class:`Deviation`: the low threshold and whether it is
``<`` or ``≤``, the high threshold and its add-on (``r − k + 1`` or ``r − k + h``), what happens
above the extreme threshold (special review, the high formula, or a fixed factor), whether the
auxiliary and hospital coefficients apply again on outliers, and the reference cost (the packet's
mean cost at the hospital's level, or its payment standard at the start-of-year point value).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

__all__ = ["Blank", "Deviation", "DipRules", "Prepayment", "parse_dip"]

REFERENCES = ("mean", "standard")
HIGH_ADDS = ("one", "hospital")
EXTREMES = ("review", "high", "hospital")
BLANK_METHODS = ("factor", "cost_ratio")
FUND_ROUNDINGS = ("exact", "per_case")


@attrs.frozen(slots=True)
class Deviation:
    """Deviation cases (偏差病例): r = case cost ÷ reference."""

    reference: str = "mean"
    low_ratio: Decimal = Decimal("0.5")
    low_inclusive: bool = False  # True: r ≤ low_ratio is low (Tai'an, Jining)
    high_ratio: Decimal = Decimal(2)
    high_add: str = "one"  # factor r − high_ratio + 1, or + h (the hospital coefficient)
    extreme_ratio: Decimal | None = Decimal(5)
    extreme: str = "review"  # review: special review; high: the high formula; hospital: h
    coefficients_on_low: bool = True
    coefficients_on_high: bool = True


@attrs.frozen(slots=True)
class Blank:
    """The blank packet (空白病种): score × factor, or score × cost/reference × k × m."""

    method: str = "factor"
    factor: Decimal = Decimal(1)
    k: Decimal = Decimal(1)
    m: Decimal = Decimal(1)


@attrs.frozen(slots=True)
class Prepayment:
    """Monthly prepayment: (points × start point value − patients' payments) × ratio, less a
    quality deposit share withheld until clearing (≤ 5% under the 2025 procedure)."""

    ratio: Decimal = Decimal(1)
    deposit: Decimal = Decimal("0.05")


@attrs.frozen(slots=True)
class DipRules:
    """Everything a DIP policy says beyond the shared policy sections."""

    catalogue: str
    score_scale: int | None
    auxiliary: bool
    primary_hospital_coefficient: bool
    level_coefficients: Mapping[str, Decimal]
    deviation: Deviation
    review_cap: Decimal
    review_factor: Decimal
    blank: Blank
    ungroupable_factor: Decimal | None  # None: ungroupable cases are not settled
    fund: Mapping[str, Decimal]  # scheme -> DIP fund of the year (yuan)
    start_point_value: Mapping[str, Decimal]
    prepayment: Prepayment
    example: bool
    #: "exact": the exact clearing point value and cumulative rounding in row order, so
    #: Σ fund payments of a pool == its fund to the cent; "per_case": the point value rounded
    #: to ``points.value_decimals`` (a region that publishes a rounded value), each case half up
    fund_rounding: str = "exact"


def parse_dip(
    config: Mapping[str, Any], path: Path | None, err: Any, dec: Any, coef: Any
) -> DipRules:
    """Read ``[dip]``; ``err(message)`` makes a PolicyError naming the file, ``dec`` and
    ``coef`` are the policy loader's number readers (so messages are the same)."""
    meta = config.get("policy", {})
    d = config.get("dip", {})
    if not isinstance(d, Mapping):
        raise err("[dip] must be a table")

    def table(name: str) -> Mapping[str, Any]:
        value = d.get(name, {})
        if not isinstance(value, Mapping):
            raise err(f"[dip.{name}] must be a table")
        return value

    def flag(t: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
        value = t.get(key, default)
        if not isinstance(value, bool):
            raise err(f"{where}.{key} must be true or false, got {value!r}")
        return value

    def choice(
        t: Mapping[str, Any], key: str, default: str, options: tuple[str, ...], where: str
    ) -> str:
        value = t.get(key, default)
        if value not in options:
            raise err(f"{where}.{key} must be one of {', '.join(options)}, got {value!r}")
        return str(value)

    catalogue = str(d.get("catalogue") or meta.get("catalogue") or "")
    if not catalogue:
        raise err("a dip policy needs dip.catalogue (the DIP catalogue id it prices)")
    scale = d.get("score_scale")
    if scale is not None and scale not in (1, 100, 1000):
        raise err(f"dip.score_scale must be 1, 100 or 1000, got {scale!r}")
    dv = table("deviation")
    extreme_ratio = dv.get("extreme_ratio", "5")
    deviation = Deviation(
        reference=choice(dv, "reference", "mean", REFERENCES, "dip.deviation"),
        low_ratio=coef(dv.get("low_ratio", "0.5"), "dip.deviation.low_ratio", path, 1),
        low_inclusive=flag(dv, "low_inclusive", False, "dip.deviation"),
        high_ratio=coef(dv.get("high_ratio", "2"), "dip.deviation.high_ratio", path, 100),
        high_add=choice(dv, "high_add", "one", HIGH_ADDS, "dip.deviation"),
        extreme_ratio=None
        if extreme_ratio in (None, "", False)
        else coef(extreme_ratio, "dip.deviation.extreme_ratio", path, 100),
        extreme=choice(dv, "extreme", "review", EXTREMES, "dip.deviation"),
        coefficients_on_low=flag(dv, "coefficients_on_low", True, "dip.deviation"),
        coefficients_on_high=flag(dv, "coefficients_on_high", True, "dip.deviation"),
    )
    if deviation.low_ratio >= deviation.high_ratio:
        raise err("dip.deviation.low_ratio must be below high_ratio")
    if deviation.extreme_ratio is not None and deviation.extreme_ratio <= deviation.high_ratio:
        raise err("dip.deviation.extreme_ratio must be above high_ratio")
    sr = table("special_review")
    bl = table("blank")
    blank = Blank(
        choice(bl, "method", "factor", BLANK_METHODS, "dip.blank"),
        coef(bl.get("factor", 1), "dip.blank.factor", path),
        coef(bl.get("k", 1), "dip.blank.k", path),
        coef(bl.get("m", 1), "dip.blank.m", path),
    )
    ug = table("ungroupable")
    ug_factor = (
        None
        if ug.get("settle", True) is False
        else coef(ug.get("factor", 1), "dip.ungroupable.factor", path)
    )
    levels = {
        str(k): coef(v, f"dip.hospital_coefficients.{k}", path)
        for k, v in table("hospital_coefficients").items()
    }
    for k, v in levels.items():
        if v == 0:
            raise err(f"dip.hospital_coefficients.{k} must be above 0")
    fund = {str(k): dec(v, f"dip.fund.{k}", path) for k, v in table("fund").items()}
    # ``--budget POOL=YUAN`` (points.budget) gives the DIP fund of a pool on the command line
    budget = config.get("points", {}).get("budget", {})
    fund.update({str(k): dec(v, f"points.budget.{k}", path) for k, v in budget.items()})
    by_ratio = config.get("shares", {}).get("method", "claim") == "ratio"
    # default: exact whenever the fund payment is payment × ratio (the identity can hold)
    fund_rounding = choice(
        d, "fund_rounding", "exact" if by_ratio else "per_case", FUND_ROUNDINGS, "dip"
    )
    if fund_rounding == "exact":
        # the identity Σ fund payments == fund is to the cent: a fund with finer digits
        # could only be met after a rounding nobody asked for
        for k, v in fund.items():
            if v != v.quantize(Decimal("0.01")):
                raise err(
                    f"dip.fund.{k} = {v} has more than 2 decimals: with "
                    "dip.fund_rounding = 'exact' the fund is paid out to the cent"
                )
        if not by_ratio:
            raise err(
                "dip.fund_rounding = 'exact' needs shares.method = 'ratio' (the fund "
                "payment is payment × fund payment ratio); use 'per_case' otherwise"
            )
    start = {
        str(k): dec(v, f"dip.start_point_value.{k}", path, positive=True)
        for k, v in table("start_point_value").items()
    }
    if deviation.reference == "standard" and not start:
        raise err(
            "dip.deviation.reference = 'standard' needs dip.start_point_value per scheme "
            "(the payment standard is score × start-of-year point value)"
        )
    pp = table("prepayment")
    prepay = Prepayment(
        coef(pp.get("ratio", 1), "dip.prepayment.ratio", path, 1),
        coef(pp.get("deposit", "0.05"), "dip.prepayment.deposit", path, 1),
    )
    return DipRules(
        catalogue=catalogue,
        score_scale=scale,
        auxiliary=flag(d, "auxiliary", True, "dip"),
        primary_hospital_coefficient=flag(d, "primary_hospital_coefficient", False, "dip"),
        level_coefficients=levels,
        deviation=deviation,
        review_cap=coef(sr.get("cap", "0.005"), "dip.special_review.cap", path, 1),
        review_factor=coef(sr.get("factor", 1), "dip.special_review.factor", path),
        blank=blank,
        ungroupable_factor=ug_factor,
        fund=fund,
        start_point_value=start,
        prepayment=prepay,
        example=bool(meta.get("example", False)),
        fund_rounding=fund_rounding,
    )
