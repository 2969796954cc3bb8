"""Reading the settled cases (and the model's members) for the alliance split."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._money import FLAG_TEXT, LIMIT_RW, MISSING, OK, RW_DECIMALS, rw_units, to_cents
from ..errors import CaseDataError
from ._model import AllianceModel

__all__ = ["Columns", "Members", "concat", "id_key", "members_of", "read_batch"]

_NEEDED = ("case_id", "hospital_id", "settled", "payment", "total_cost")


@attrs.define
class Columns:
    case_id: pa.Array
    hospital_id: pa.Array
    referral_from: pa.Array
    settled: np.ndarray
    pay: np.ndarray
    pay_valid: np.ndarray
    cost: np.ndarray
    cost_ok: np.ndarray
    rw: np.ndarray


def _string(batch: pa.RecordBatch | pa.Table, name: str, n: int) -> pa.Array:
    if name not in batch.schema.names:
        return pa.nulls(n, pa.large_string())
    arr = batch.column(name)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], arr.type)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    return arr.cast(pa.large_string())


def _rw_units(arr: Any, n: int, row0: int) -> np.ndarray:
    """RW as exact integers RW·RW_SCALE (null -> 0), read as settle writes them; more than
    RW_DECIMALS decimals, a value above LIMIT_RW or a negative RW is an error naming the
    row."""
    if arr is None:
        return np.zeros(n, np.int64)
    values, flag = rw_units(arr, n)
    bad = np.flatnonzero((flag != OK) & (flag != MISSING))
    if len(bad):
        k = int(bad[0])
        raise CaseDataError(
            f"rw {_value_text(arr, k)} is not a weight with at most "
            f"{RW_DECIMALS} decimals up to {LIMIT_RW} "
            f"({FLAG_TEXT[int(flag[k])]}; {len(bad)} such rows)",
            row=row0 + k + 1,
            column="rw",
        )
    negative = np.flatnonzero(values < 0)
    if len(negative):
        raise CaseDataError("rw is negative", row=row0 + int(negative[0]) + 1, column="rw")
    return values


def _value_text(arr: Any, k: int) -> str:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return repr(arr[k].as_py())


def read_batch(batch: pa.RecordBatch | pa.Table, row0: int, need_rw: bool) -> Columns:
    n = batch.num_rows
    names = batch.schema.names
    for name in _NEEDED:
        if name not in names:
            raise CaseDataError(
                f"the settled cases have no {name!r} column (needed: "
                f"{', '.join(_NEEDED)}; optional: referral_from, rw)",
                column=name,
            )
    if need_rw and "rw" not in names:
        raise CaseDataError(
            "the model's volume is \"rw\" but the cases have no 'rw' column", column="rw"
        )
    settled_arr = batch.column("settled")
    if isinstance(settled_arr, pa.ChunkedArray):
        settled_arr = settled_arr.combine_chunks()
    if not pa.types.is_boolean(settled_arr.type):
        raise CaseDataError(
            f"'settled' must be a boolean column, it is {settled_arr.type}", column="settled"
        )
    settled = settled_arr.fill_null(False).to_numpy(zero_copy_only=False).astype(np.bool_)
    pay, pay_flag = to_cents(batch.column("payment"), n)
    bad = np.flatnonzero(settled & (pay_flag != OK))
    if len(bad):
        k = int(bad[0])
        case = _string(batch, "case_id", n)[k].as_py()
        raise CaseDataError(
            f"case {case!r} is settled but its payment is not an amount ({len(bad)} such rows)",
            row=row0 + k + 1,
            column="payment",
        )
    cost, cost_flag = to_cents(batch.column("total_cost"), n)
    # a missing cost is unknown (no down-transfer surplus); a cost that is there but is not an
    # amount is a mistake in the input
    bad = np.flatnonzero(settled & (cost_flag != OK) & (cost_flag != MISSING))
    if len(bad):
        k = int(bad[0])
        case = _string(batch, "case_id", n)[k].as_py()
        raise CaseDataError(
            f"case {case!r}: total_cost is {FLAG_TEXT[int(cost_flag[k])]} ({len(bad)} such rows)",
            row=row0 + k + 1,
            column="total_cost",
        )
    refs = _string(batch, "referral_from", n)
    refs = pc.if_else(pc.equal(refs, ""), pa.scalar(None, pa.large_string()), refs)
    rw = _rw_units(batch.column("rw") if "rw" in names else None, n, row0)
    return Columns(
        _string(batch, "case_id", n),
        _string(batch, "hospital_id", n),
        refs,
        settled,
        np.where(pay_flag == OK, pay, 0),
        pay_flag == OK,
        np.where(cost_flag == OK, cost, 0),
        cost_flag == OK,
        rw,
    )


def concat(parts: list[Columns]) -> Columns:
    if len(parts) == 1:
        return parts[0]

    def strings(name: str) -> pa.Array:
        return pa.concat_arrays([getattr(p, name) for p in parts])

    def arrays(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    return Columns(
        strings("case_id"),
        strings("hospital_id"),
        strings("referral_from"),
        *(arrays(n) for n in ("settled", "pay", "pay_valid", "cost", "cost_ok", "rw")),
    )


# --------------------------------------------------------------------------- members


@attrs.frozen
class Members:
    ids: list[str]
    alliance: np.ndarray  # alliance index per member
    level: np.ndarray
    rank: np.ndarray  # rank of the hospital id in binary order over all members
    members: list[Any]  # Member objects, model order (by alliance, then hospital id)


def members_of(model: AllianceModel) -> Members:
    ids, alliance, level, objs = [], [], [], []
    for a_index, a in enumerate(model.alliances):
        for m in a.members:
            ids.append(m.hospital_id)
            alliance.append(a_index)
            level.append(m.level)
            objs.append(m)
    order = sorted(range(len(ids)), key=lambda k: id_key(ids[k]))
    rank = np.empty(len(ids), np.int64)
    rank[order] = np.arange(len(ids))
    return Members(ids, np.array(alliance, np.int64), np.array(level, np.int64), rank, objs)


def id_key(hospital_id: str) -> bytes:
    return hospital_id.encode("utf-8")
