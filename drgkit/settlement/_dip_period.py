"""DIP monthly prepayment with a quality deposit, and the annual clearing (DIP.md §5), over the
table of DIP-settled cases. Surplus retention and over-spend sharing are those of
:func:`~drgkit.settlement.settle_period` (one definition for both schemes): the clearing here
calls it with the prepayments actually paid as ``already_paid``.

Per (month of discharge, hospital), in cents, each amount rounded once, half up:

* ``amount`` = Σ over settled cases of half_up(points × start-of-year point value of the case's
  scheme) for cases paid by points, + the payment of cases paid by item;
* ``patient_share`` = Σ the claim's self-pay (``shares.method = "claim"``), else per case
  amount − half_up(amount × fund ratio of its scheme);
* ``prepayment`` = max(half_up((amount − patient_share) × ``dip.prepayment.ratio``), 0);
* ``deposit`` = half_up(prepayment × ``dip.prepayment.deposit``) (quality deposit, withheld);
* ``paid`` = prepayment − deposit.

Annual clearing per hospital: ``settle_period``'s ``fund_due`` (after retention/over-spend),
``already_paid`` = Σ paid + advance, ``clearing`` = fund_due − already_paid: the withheld
deposits are released through the clearing (they were never paid).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa

from .._money import cents_array, half_up, to_cents
from ..errors import CaseDataError
from ._period import settle_period
from ._policy import Policy, PolicyError

__all__ = ["dip_clearing", "dip_prepayments"]


def _plain(table: pa.Table, name: str) -> pa.Array:
    if name not in table.column_names:
        raise CaseDataError(f"the DIP-settled table has no {name!r} column", column=name)
    arr = table.column(name).combine_chunks()
    return arr.cast(arr.type.value_type) if pa.types.is_dictionary(arr.type) else arr


def dip_prepayments(settled: pa.Table, policy: Policy) -> pa.Table:
    """Monthly prepayments per (month, hospital), sorted by month then hospital id."""
    if policy.dip is None:
        raise PolicyError(f"policy {policy.id} is not a dip policy", file=policy.path)
    start = {k: Fraction(v) for k, v in policy.dip.start_point_value.items()}
    ratio = Fraction(policy.dip.prepayment.ratio)
    deposit = Fraction(policy.dip.prepayment.deposit)
    ok = _plain(settled, "settled").fill_null(False).to_pylist()
    pts = _plain(settled, "points").to_pylist()
    pay, _f = to_cents(_plain(settled, "payment"), settled.num_rows)
    share, _f = to_cents(_plain(settled, "patient_share"), settled.num_rows)
    scheme = [policy.scheme_of(x) for x in _plain(settled, "insurance_type").to_pylist()]
    hosp = _plain(settled, "hospital_id").cast(pa.string()).to_pylist()
    dates = _plain(settled, "discharge_date").cast(pa.date32()).to_pylist()
    sums: dict[tuple[str, str | None], list[int]] = {}
    for i in range(settled.num_rows):
        if not ok[i] or dates[i] is None:
            continue
        key = (dates[i].strftime("%Y-%m"), hosp[i])
        row = sums.setdefault(key, [0, 0, 0])
        if pts[i] is not None:
            pv = start.get(scheme[i], start.get("all"))
            if pv is None:
                raise PolicyError(
                    f"dip.start_point_value has no value for scheme {scheme[i]} "
                    "(needed for the monthly prepayment)",
                    file=policy.path,
                )
            amount = half_up(Fraction(pts[i]) * pv * 100)
        else:
            amount = int(pay[i])
        if policy.share_method == "claim":
            patient = int(share[i])  # the claim's self-pay: known when the case is paid
        else:
            # the patients' part of this amount at the scheme's ratio (the settled table's
            # patient_share is of the clearing payment, not known during the year)
            ratio_s = Fraction(policy.fund_ratio.get(scheme[i], policy.fund_ratio.get("all", 0)))
            patient = amount - half_up(amount * ratio_s)
        row[0] += amount
        row[1] += patient
        row[2] += 1
    keys = sorted(sums, key=lambda k: (k[0], k[1] is None, k[1] or ""))
    out: dict[str, list] = {
        n: []
        for n in (
            "month",
            "hospital_id",
            "settled",
            "amount",
            "patient_share",
            "prepayment",
            "deposit",
            "paid",
        )
    }
    for key in keys:
        amount, patient, count = sums[key]
        pre = max(half_up((amount - patient) * ratio), 0)  # never a monthly claw-back
        dep = half_up(pre * deposit)
        for name, value in zip(
            out, (key[0], key[1], count, amount, patient, pre, dep, pre - dep), strict=True
        ):
            out[name].append(value)
    money = ("amount", "patient_share", "prepayment", "deposit", "paid")
    return pa.table(
        {
            n: _cents(v)
            if n in money
            else pa.array(v, pa.int64() if n == "settled" else pa.string())
            for n, v in out.items()
        }
    )


def _cents(values: list[int]) -> pa.Array:
    return cents_array(np.asarray(values, dtype=np.int64))


def dip_clearing(
    settled: pa.Table,
    policy: Policy,
    *,
    prepayments: pa.Table | None = None,
    advance: Mapping[str, int] | None = None,
    budgets: Mapping[str, int] | None = None,
    values: Any = None,
) -> pa.Table:
    """Annual clearing per hospital: :func:`settle_period` with ``already_paid`` = Σ paid
    prepayments (``prepayments``, default: :func:`dip_prepayments` of the same cases) +
    ``advance`` (hospital_id → cents, the advance fund); adds ``deposit_released``.
    ``values``: the per-hospital values of the policy's ``[[period.outcome]]`` rules with
    ``source = "table"`` (passed to :func:`settle_period`)."""
    pre = prepayments if prepayments is not None else dip_prepayments(settled, policy)
    paid: dict[str, int] = {}
    released: dict[str, int] = {}
    cents_paid, _f = to_cents(pre.column("paid").combine_chunks(), pre.num_rows)
    cents_dep, _f = to_cents(pre.column("deposit").combine_chunks(), pre.num_rows)
    for h, p, d in zip(
        pre.column("hospital_id").to_pylist(), cents_paid.tolist(), cents_dep.tolist(), strict=True
    ):
        paid[h] = paid.get(h, 0) + p
        released[h] = released.get(h, 0) + d
    for h, a in (advance or {}).items():
        paid[h] = paid.get(h, 0) + int(a)
    result = settle_period(settled, policy, budgets=budgets, already_paid=paid, values=values)
    hosp = result.column("hospital_id").to_pylist()
    return result.append_column("deposit_released", _cents([released.get(h, 0) for h in hosp]))
