"""A slow, obviously correct reference for drgkit.monitoring.indicators: one Python dict per
case, exact fractions for every ratio, no numpy, no Arrow compute.

It follows the definitions of the drgkit/monitoring/_indicators.py docstring line by line.
"""

from __future__ import annotations

import math
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction
from typing import Any

STATUSES = ("ok", "ungroupable", "ambiguous", "invalid")


def _cents(value: Any) -> int | None:
    if value is None:
        return None
    d = Decimal(str(value))
    cents = d * 100
    assert cents == cents.to_integral_value(), value
    return int(cents)


def _rw_units(value: Any) -> int | None:
    if value is None:
        return None
    return int(Decimal(str(value)) * 10**9)


def _key(row: dict[str, Any], by: tuple[str, ...]) -> tuple:
    out = []
    for k in by:
        if k == "month":
            d = row.get("discharge_date")
            out.append(None if d is None else f"{d.year:04d}-{d.month:02d}")
        elif k == "mdc" and "mdc" not in row:
            ok = row["status"] in ("ok", "ambiguous")
            out.append("MDC" + row["drg"][0] if ok else None)
        elif k == "drg":
            out.append(row.get("drg", row.get("group")))
        else:
            v = row.get(k)
            out.append(None if v is None else str(v))
    return tuple(out)


def _f(x: Fraction | None) -> float | None:
    return None if x is None else float(x)


def _div(a: Any, b: Any) -> Fraction | None:
    if a is None or b is None or b == 0:
        return None
    return Fraction(a) / Fraction(b)


def risk_levels(
    rows: list[dict[str, Any]], low=-1.0, medium=0.0, high=1.0, zero_deaths="low", min_cases=1
) -> dict[str, str | None]:
    """DRG -> risk level from grouped cases with a known leaving type."""
    cases: dict[str, int] = defaultdict(int)
    deaths: dict[str, int] = defaultdict(int)
    for r in rows:
        if r["status"] == "ok" and r.get("leaving_type") is not None:
            cases[r["drg"]] += 1
            deaths[r["drg"]] += r["leaving_type"] == "5"
    logs = {
        d: math.log(deaths[d] / cases[d]) for d in cases if cases[d] >= min_cases and deaths[d] > 0
    }
    out: dict[str, str | None] = {}
    if logs:
        mean = math.fsum(logs.values()) / len(logs)
        sd = math.sqrt(math.fsum((x - mean) ** 2 for x in logs.values()) / len(logs))
    for d in cases:
        if d in logs:
            z = 0.0 if sd == 0 else (logs[d] - mean) / sd
            out[d] = (
                "low"
                if z < low
                else "medium_low"
                if z < medium
                else "medium_high"
                if z < high
                else "high"
            )
        elif cases[d] >= min_cases and zero_deaths == "low":
            out[d] = "low"
        else:
            out[d] = None
    return out


def indicators(
    rows: list[dict[str, Any]], by: tuple[str, ...], previous: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The indicator rows for settled-case dicts (``to_pylist()`` of a settled table)."""
    has = {name: any(name in r for r in rows) for name in ("los", "leaving_type", "rw")}
    has["drug_cost"] = any("drug_cost" in r for r in rows)
    has["consumables_cost"] = any("consumables_cost" in r for r in rows)
    has["readmitted_31d"] = any("readmitted_31d" in r for r in rows)
    # the region per DRG (from the same data)
    cost_sum: dict[str, int] = defaultdict(int)
    cost_n: dict[str, int] = defaultdict(int)
    los_sum: dict[str, int] = defaultdict(int)
    los_n: dict[str, int] = defaultdict(int)
    for r in rows:
        if r["status"] != "ok":
            continue
        if r["settled"]:
            cost_sum[r["drg"]] += _cents(r["total_cost"])
            cost_n[r["drg"]] += 1
        if r.get("los") is not None:
            los_sum[r["drg"]] += r["los"]
            los_n[r["drg"]] += 1
    levels = risk_levels(rows)
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[_key(r, by)].append(r)
    prev_groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in previous or []:
        key = list(_key(r, by))
        if "month" in by and key[by.index("month")] is not None:
            y, m = key[by.index("month")].split("-")
            key[by.index("month")] = f"{int(y) + 1:04d}-{m}"
        prev_groups[tuple(key)].append(r)
    keys = set(groups) | set(prev_groups)
    out = []
    for key in sorted(keys, key=lambda k: tuple((v is None, v or "") for v in k)):
        g = groups.get(key, [])
        row: dict[str, Any] = dict(zip(by, key, strict=True))
        settled = [r for r in g if r["settled"]]
        ok = [r for r in g if r["status"] == "ok"]
        row["cases"] = len(g)
        row["grouped"] = len(ok)
        row["grouping_rate"] = _f(_div(len(ok), len(g)))
        for s in STATUSES:
            row[f"status_{s}"] = sum(r["status"] == s for r in g)
        row["drg_count"] = len({r["drg"] for r in ok})
        weighted = [r for r in ok if r.get("rw") is not None]
        units = sum(_rw_units(r["rw"]) for r in weighted)
        row["total_weight"] = Decimal(units).scaleb(-9) if has["rw"] else None
        row["cmi"] = _f(_div(Fraction(units, 10**9), len(weighted))) if has["rw"] else None
        indexed = [r for r in ok if r["settled"]]
        expected = sum(
            (Fraction(cost_sum[r["drg"]], cost_n[r["drg"]]) for r in indexed), Fraction(0)
        )
        indexed_cost = sum(_cents(r["total_cost"]) for r in indexed)
        row["cost_index"] = _f(_div(indexed_cost, expected))
        timed = [r for r in ok if r.get("los") is not None]
        expected_los = sum(
            (Fraction(los_sum[r["drg"]], los_n[r["drg"]]) for r in timed), Fraction(0)
        )
        indexed_los = sum(r["los"] for r in timed)
        row["time_index"] = _f(_div(indexed_los, expected_los)) if has["los"] else None
        total = sum(_cents(r["total_cost"]) for r in settled)
        row["total_cost"] = Decimal(total).scaleb(-2)
        row["mean_cost"] = _f(_div(Fraction(total, 100), len(settled)))
        los_known = [r for r in g if r.get("los") is not None]
        row["total_los"] = sum(r["los"] for r in los_known) if has["los"] else None
        row["mean_los"] = _f(_div(row["total_los"], len(los_known))) if has["los"] else None
        wcost = sum(_cents(r["total_cost"]) for r in weighted)
        row["cost_per_weight"] = (
            _f(_div(Fraction(wcost, 100), Fraction(units, 10**9))) if has["rw"] else None
        )
        for side in ("high", "low"):
            n = sum(r["payment_class"] == f"{side}_outlier" for r in settled)
            row[f"{side}_outliers"] = n
            row[f"{side}_outlier_share"] = _f(_div(n, len(settled)))
        for name, col in (("drug", "drug_cost"), ("consumable", "consumables_cost")):
            values = [r.get(col) for r in settled]
            if not has[col] or any(v is None for v in values):
                amount = None
            else:
                amount = sum(_cents(v) for v in values)
            row[f"{name}_cost"] = None if amount is None else Decimal(amount).scaleb(-2)
            row[f"{name}_share"] = _f(_div(amount, total))
        leaving = [r for r in g if r.get("leaving_type") is not None]
        row["deaths"] = (
            sum(r["leaving_type"] == "5" for r in leaving) if has["leaving_type"] else None
        )
        low = [r for r in ok if r.get("leaving_type") is not None and levels.get(r["drg"]) == "low"]
        if has["leaving_type"]:
            row["low_risk_cases"] = len(low)
            row["low_risk_deaths"] = sum(r["leaving_type"] == "5" for r in low)
        else:
            row["low_risk_cases"] = row["low_risk_deaths"] = None
        row["low_risk_mortality"] = _f(_div(row["low_risk_deaths"], row["low_risk_cases"]))
        known = [r for r in ok if r["settled"] and r.get("readmitted_31d") is not None]
        n_re = sum(bool(r["readmitted_31d"]) for r in known)
        row["readmissions_31d"] = n_re if has["readmitted_31d"] else None
        row["readmission_rate"] = _f(_div(n_re, len(known))) if has["readmitted_31d"] else None
        for name in ("payment", "fund_payment", "gain_loss"):
            row[name] = Decimal(sum(_cents(r[name]) for r in settled)).scaleb(-2)
        p = prev_groups.get(key) if previous is not None else None
        if p is None:
            ptotal = psettled = None
        else:
            psettled = sum(1 for r in p if r["settled"])
            ptotal = sum(_cents(r["total_cost"]) for r in p if r["settled"])
        row["previous_total_cost"] = None if ptotal is None else Decimal(ptotal).scaleb(-2)
        row["cost_growth"] = _f(_div(total, ptotal) - 1) if ptotal and g else None
        row["previous_cost_per_case"] = _f(
            _div(None if ptotal is None else Fraction(ptotal, 100), psettled)
        )
        row["cost_per_case_growth"] = (
            _f(Fraction(total, len(settled)) / Fraction(ptotal, psettled) - 1)
            if ptotal and psettled and settled
            else None
        )
        row["settled"] = len(settled)
        row["weighted_cases"] = len(weighted)
        row["weighted_cost"] = Decimal(wcost).scaleb(-2)
        row["indexed_cost"] = Decimal(indexed_cost).scaleb(-2)
        row["expected_cost"] = float(expected / 100)
        row["indexed_los"] = indexed_los if has["los"] else None
        row["expected_los"] = float(expected_los) if has["los"] else None
        row["los_cases"] = len(los_known)
        row["mortality_cases"] = len(leaving)
        row["readmission_known"] = len(known)
        row["previous_settled"] = psettled
        out.append(row)
    return out
