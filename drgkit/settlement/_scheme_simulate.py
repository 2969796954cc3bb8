"""What-if across payment schemes: the same cases settled under a DRG policy and under a DIP
policy (or any two policies, of any registered scheme), compared per key (hospital, department).

This is the regions' question when they switch scheme. Per key, in cents: cases, settled cases,
payment, fund payment and gain/loss under each policy, and the differences. The change is
decomposed on each side into the part paid to cases in normal payment (``normal_*``: DRG cases
of class ``normal``, DIP cases whose deviation class is ``normal`` or ``no_reference``) and the
part paid to outliers, deviation cases, blank/ungroupable and special cases (``special_*``), so
``change = (normal_alt − normal_base) + (special_alt − special_base)`` exactly.

What is NOT decomposed: the DRG regrouping / case-mix / price split of :func:`simulate` needs
both sides to be DRG groups with weights; a DRG code and a DIP packet are different units, so
across schemes there is no common "weight" to split case mix from price. Within one scheme use
:func:`~drgkit.settlement.simulate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from .._money import cents_array, to_cents
from ..errors import CaseDataError
from ._settle import settle

__all__ = ["compare_schemes"]

_NORMAL = {"drg": ("normal",), "dip": ("normal", "no_reference")}


def _side(table: pa.Table) -> tuple[dict[str, np.ndarray], str]:
    n = table.num_rows
    scheme = "dip" if "deviation" in table.column_names else "drg"

    def col(name: str) -> pa.Array:
        arr = table.column(name).combine_chunks()
        return arr.cast(arr.type.value_type) if pa.types.is_dictionary(arr.type) else arr

    settled = col("settled").fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
    out = {"settled": settled.astype(np.int64)}
    for name in ("payment", "fund_payment", "gain_loss", "total_cost"):
        cents, _flag = to_cents(col(name), n)
        out[name] = np.where(settled, cents, 0)
    kind = col("deviation" if scheme == "dip" else "payment_class").to_pylist()
    normal = np.array([k in _NORMAL[scheme] for k in kind], dtype=bool) & settled
    out["normal"] = np.where(normal, out["payment"], 0)
    out["special"] = out["payment"] - out["normal"]
    return out, scheme


def compare_schemes(
    cases: Any,
    base_policy: Any,
    alt_policy: Any,
    *,
    base_grouper: Any = None,
    alt_grouper: Any = None,
    by: Sequence[str] = ("hospital_id",),
    **options: Any,
) -> pa.Table:
    """Settle ``cases`` under both policies (grouping each side with its own ruleset or
    catalogue: ``base_grouper`` / ``alt_grouper``, default the policy's) and compare per key."""
    base = settle(cases, base_policy, base_grouper, **options)
    alt = settle(cases, alt_policy, alt_grouper, **options)
    if base.num_rows != alt.num_rows:  # pragma: no cover - settle keeps every row
        raise CaseDataError("the two settlements differ in rows")
    for key in by:
        if key not in base.column_names or key not in alt.column_names:
            raise CaseDataError(
                f"key {key!r} is not a column of both settled tables "
                f"(keys of both: hospital_id, department, insurance_type, "
                "hospital_level)",
                column=key,
            )
    b, bname = _side(base)
    a, aname = _side(alt)
    keys = list(
        zip(
            *[
                [
                    None if v is None else str(v)
                    for v in (
                        base.column(k).combine_chunks().cast(pa.string())
                        if not pa.types.is_dictionary(base.column(k).type)
                        else base.column(k)
                        .combine_chunks()
                        .cast(base.column(k).type.value_type)
                        .cast(pa.string())
                    ).to_pylist()
                ]
                for k in by
            ],
            strict=True,
        )
    )
    order = sorted(set(keys), key=lambda t: tuple((v is None, v or "") for v in t))
    index = {k: i for i, k in enumerate(order)}
    idx = np.array([index[k] for k in keys], dtype=np.int64)
    m = len(order)

    def total(values: np.ndarray) -> np.ndarray:
        out = np.zeros(m, dtype=np.int64)
        np.add.at(out, idx, values)
        return out

    cols: dict[str, Any] = {
        k: pa.array([t[j] for t in order], pa.string()) for j, k in enumerate(by)
    }
    cols["cases"] = pa.array(np.bincount(idx, minlength=m).astype(np.int64))
    cols[f"settled_{bname}"] = pa.array(total(b["settled"]))
    cols[f"settled_{aname}_alt" if aname == bname else f"settled_{aname}"] = pa.array(
        total(a["settled"])
    )
    sb, sa = ("base", "alt")
    for name in ("payment", "fund_payment", "gain_loss"):
        tb, ta = total(b[name]), total(a[name])
        cols[f"{name}_{sb}"] = cents_array(tb)
        cols[f"{name}_{sa}"] = cents_array(ta)
        cols[f"{name}_change"] = cents_array(ta - tb)
    for name in ("normal", "special"):
        tb, ta = total(b[name]), total(a[name])
        cols[f"{name}_{sb}"] = cents_array(tb)
        cols[f"{name}_{sa}"] = cents_array(ta)
    cols["cost"] = cents_array(total(b["total_cost"]))
    return pa.table(cols, metadata={b"base_scheme": bname.encode(), b"alt_scheme": aname.encode()})
