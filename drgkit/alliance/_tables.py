"""The output tables of the alliance split (money as exact ``decimal128(18, 2)`` yuan)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._money import cents_array
from ..schema import (
    ALLIANCE_CASES_SCHEMA,
    ALLIANCE_ITEMS_SCHEMA,
    ALLIANCE_MEMBERS_SCHEMA,
    ALLIANCE_SUMMARY_SCHEMA,
    ALLIANCE_TRANSFERS_SCHEMA,
)
from ._input import Columns, Members
from ._kernels import LINKS, UP
from ._model import AllianceModel

__all__ = [
    "SUMMARY_NAMES",
    "cases_table",
    "items_table",
    "members_table",
    "summary_table",
    "take_strings",
    "transfers_table",
]

SUMMARY_NAMES = tuple(ALLIANCE_SUMMARY_SCHEMA.names)
_MEMBER_MONEY = tuple(f.name for f in ALLIANCE_MEMBERS_SCHEMA if f.type == pa.decimal128(18, 2))


def _table(columns: dict[str, pa.Array], schema: pa.Schema) -> pa.Table:
    """The columns in the declared order and types (a mismatch raises: a bug here)."""
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def _money(values: Sequence[int | None]) -> pa.Array:
    arr = np.array([0 if v is None else v for v in values], np.int64)
    valid = np.array([v is not None for v in values], np.bool_)
    return cents_array(arr, valid)


def summary_table(rows: dict[str, list[Any]]) -> pa.Table:
    arrays = {
        f.name: _money(rows[f.name])
        if pa.types.is_decimal(f.type)
        else pa.array(rows[f.name], f.type)
        for f in ALLIANCE_SUMMARY_SCHEMA
    }
    return _table(arrays, ALLIANCE_SUMMARY_SCHEMA)


def members_table(
    mem: Members,
    model: AllianceModel,
    cases_m: np.ndarray,
    settled_m: np.ndarray,
    volume: list[Fraction],
    sums: np.ndarray,
    claims_m: np.ndarray,
    extra: np.ndarray,
) -> pa.Table:
    alliance_ids = [model.alliances[int(a)].id for a in mem.alliance]
    net = claims_m + extra.sum(axis=0)
    money = dict(zip(_MEMBER_MONEY, [*sums, claims_m, *extra, net], strict=True))
    vol = [Decimal(v.numerator) / Decimal(v.denominator) for v in volume]
    types = {f.name: f.type for f in ALLIANCE_MEMBERS_SCHEMA}
    return _table(
        {
            "alliance_id": pa.array(alliance_ids, pa.string()),
            "hospital_id": pa.array(mem.ids, pa.string()),
            "role": pa.array([m.role for m in mem.members], pa.string()),
            "level": pa.array(mem.level, pa.int8()),
            "coefficient": pa.array([m.coefficient for m in mem.members], types["coefficient"]),
            "cases": pa.array(cases_m, pa.int64()),
            "settled_cases": pa.array(settled_m, pa.int64()),
            "volume": pa.array(vol, types["volume"]),
            **{name: cents_array(np.asarray(v, np.int64)) for name, v in money.items()},
        },
        ALLIANCE_MEMBERS_SCHEMA,
    )


def items_table(rows: list[tuple]) -> pa.Table:
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in range(6)]
    return _table(
        {
            "alliance_id": pa.array(cols[0], pa.string()),
            "kind": pa.array(cols[1], pa.string()),
            "item": pa.array(cols[2], pa.string()),
            "hospital_id": pa.array(cols[3], pa.string()),
            "weight": pa.array(cols[4], pa.string()),
            "amount": cents_array(np.array(cols[5], np.int64)),
        },
        ALLIANCE_ITEMS_SCHEMA,
    )


def take_strings(arr: pa.Array, rows: np.ndarray) -> pa.Array:
    """arr[rows] with -1 -> null, as plain strings."""
    valid = rows >= 0
    idx = pa.array(np.where(valid, rows, 0), mask=~valid)
    return arr.take(idx).cast(pa.string())


def cases_table(
    cols: Columns,
    mem: Members,
    model: AllianceModel,
    member: np.ndarray,
    kind: np.ndarray,
    absorbed_into: pa.Array,
    paid: np.ndarray,
    surplus: np.ndarray,
    surplus_ok: np.ndarray,
) -> pa.Table:
    in_alliance = member >= 0
    alliance_names = pa.array([a.id for a in model.alliances], pa.string())
    alliance_idx = np.where(in_alliance, mem.alliance[np.maximum(member, 0)], -1)
    link = pa.DictionaryArray.from_arrays(pa.array(kind, pa.int8()), pa.array(LINKS, pa.string()))
    pay_valid = cols.settled & cols.pay_valid
    return _table(
        {
            "case_id": cols.case_id.cast(pa.string()),
            "hospital_id": cols.hospital_id.cast(pa.string()),
            "alliance_id": take_strings(alliance_names, alliance_idx),
            "link": link,
            "parent_case_id": cols.referral_from.cast(pa.string()),
            "absorbed_into": absorbed_into,
            "paid": pa.array(paid, pa.bool_()),
            "payment": cents_array(cols.pay, pay_valid),
            "claim": cents_array(np.where(paid, cols.pay, 0), in_alliance),
            "down_surplus": cents_array(surplus, surplus_ok),
        },
        ALLIANCE_CASES_SCHEMA,
    )


def transfers_table(
    cols: Columns,
    mem: Members,
    model: AllianceModel,
    t_kind,
    t_case,
    t_child,
    t_parent,
    t_payer,
    t_payee,
    t_base,
    t_amount,
) -> pa.Table:
    ids = pa.array(mem.ids, pa.string())
    alliance_names = pa.array([a.id for a in model.alliances], pa.string())
    table = _table(
        {
            "alliance_id": alliance_names.take(pa.array(mem.alliance[t_payer])),
            "kind": pa.array(np.where(t_kind == UP, "up", "down").astype(object), pa.string()),
            "case_id": take_strings(cols.case_id, t_case),
            "child_case_id": take_strings(cols.case_id, t_child),
            "parent_case_id": take_strings(cols.case_id, t_parent),
            "payer_hospital_id": ids.take(pa.array(t_payer)),
            "payee_hospital_id": ids.take(pa.array(t_payee)),
            "base": cents_array(t_base),
            "amount": cents_array(t_amount),
        },
        ALLIANCE_TRANSFERS_SCHEMA,
    )
    # a canonical order, whatever the input order: by alliance, kind and the paying case
    # (its id, then hospital, payment, cost and referral source, for repeated ids), then the
    # steps of a chain from the paying case up
    step = np.zeros(len(t_case), np.int64)
    if len(t_case):
        new_episode = np.r_[True, t_case[1:] != t_case[:-1]]
        starts = np.flatnonzero(new_episode)
        step = np.arange(len(t_case)) - np.repeat(starts, np.diff(np.r_[starts, len(t_case)]))
    keyed = (
        table.append_column("_h", take_strings(cols.hospital_id, t_case))
        .append_column("_p", pa.array(cols.pay[t_case]))
        .append_column("_c", pa.array(np.where(cols.cost_ok[t_case], cols.cost[t_case], -(2**62))))
        .append_column("_r", take_strings(cols.referral_from, t_case))
        .append_column("_s", pa.array(step))
    )
    order = pc.sort_indices(
        keyed,
        [
            (name, "ascending")
            for name in ("alliance_id", "kind", "case_id", "_h", "_p", "_c", "_r", "_s")
        ],
    )
    return table.take(order)
