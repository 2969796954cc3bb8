"""The settled-case table: payment classes, reasons, the output schema, reading a settled
table back with its types, and the Arrow helpers that assemble output columns."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _cases
from .._io import DataWarning, open_cases
from .._money import LIMIT_CENTS, MISSING, OK, RW_DECIMALS, cents_array, to_cents
from ..errors import CaseDataError
from ..schema import CARRIED_SCHEMA, DIP_COLUMNS, dip_settle_schema, settle_schema

__all__ = [
    "CARRIED_INPUT",
    "DIP_COLUMNS",
    "GROUP_COLUMNS",
    "PAYMENT_CLASSES",
    "RW_DECIMALS",
    "SETTLE_FIELDS",
    "SETTLE_REASONS",
    "SPECIAL_CLASS",
    "carried_columns",
    "carried_names",
    "constant",
    "dip_settle_schema",
    "flags_array",
    "plain",
    "read_settled",
    "settle_schema",
    "settle_schema_fields",
    "text_of",
]


PAYMENT_CLASSES = (
    "normal",
    "low_outlier",
    "high_outlier",
    "excluded_stay",
    "ungroupable",
    "ambiguous",
    "unstable",
    "special_review",
    "not_covered",
    "not_settled",
)
(
    P_NORMAL,
    P_LOW,
    P_HIGH,
    P_EXCLUDED,
    P_UNGROUPABLE,
    P_AMBIGUOUS,
    P_UNSTABLE,
    P_REVIEW,
    P_NOT_COVERED,
    P_NOT_SETTLED,
) = range(10)
SPECIAL_CLASS = {
    "excluded_stay": P_EXCLUDED,
    "ungroupable": P_UNGROUPABLE,
    "ambiguous": P_AMBIGUOUS,
    "unstable": P_UNSTABLE,
    "special_review": P_REVIEW,
    "not_covered": P_NOT_COVERED,
}

#: why a case is not settled, beyond the grouping reasons of invalid cases
SETTLE_REASONS = {
    "cost_missing": "the total cost is missing",
    "cost_invalid": "the total cost is not an amount in whole cents",
    "cost_too_large": f"the total cost is above the limit of {LIMIT_CENTS // 100:,} yuan",
    "cost_negative": "the total cost is negative (a refund line, not a case)",
    "scheme_unknown": "the insurance scheme is not one the policy prices",
    "level_unknown": "the hospital level is unknown",
    "no_price": "the policy has no price for this group, level and scheme",
    "patient_share_invalid": "the patient's self-pay amounts are not amounts in whole cents",
}

SETTLE_FIELDS = (
    "case_id",
    "hospital_id",
    "hospital_level",
    "insurance_type",
    "department",
    "los",
    "total_cost",
    "self_pay",
    "own_pay",
    "discharge_date",
    "readmitted_31d",
    "diagnoses",
    # carried into the output for monitoring (CARRIED_SCHEMA), when the input has them
    "leaving_type",
    "drug_cost",
    "consumables_cost",
    "doctor",
)
#: input fields carried as they are (typed) into the settled table; mdc comes from grouping
CARRIED_INPUT = ("los", "leaving_type", "drug_cost", "consumables_cost", "doctor")
#: the cost-category column's other spelling (generated data writes it)
CONSUMABLE_ALIAS = "consumable_cost"
GROUP_COLUMNS = ("status", "reason", "mdc", "adrg", "drg")


def read_settled(source: Any) -> pa.Table:
    """A settled-case table (drgkit settle's output) from any input, with its types restored:
    a CSV gives text, which is cast back exactly (money as decimals, flags as booleans)."""
    src = open_cases(source)
    table = pa.Table.from_batches(list(src.batches), schema=src.schema)
    reference = {f.name: f.type for f in settle_schema_fields()}
    columns = []
    for name in table.column_names:
        col = table.column(name)
        want = reference.get(name)
        if want is not None and col.type != want:
            target = want.value_type if pa.types.is_dictionary(want) else want
            try:
                if pa.types.is_string(col.type) and not pa.types.is_string(target):
                    col = pc.if_else(pc.equal(col, ""), pa.scalar(None, col.type), col)
                col = col.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise CaseDataError(
                    f"cannot read as {target}: {exc}", file=src.name, column=name
                ) from None
        columns.append(col)
    return pa.table(columns, names=table.column_names)


def carried_names(
    schema: pa.Schema, mapped: Iterable[str], grouping: bool, keep: Iterable[str] = ()
) -> list[str]:
    """The :data:`CARRIED_SCHEMA` columns a run writes: ``mdc`` when it groups the cases or
    they carry an ``mdc``; the :data:`CARRIED_INPUT` fields the input has (``mapped``: the case
    fields its columns were mapped to; ``consumable_cost`` is read as ``consumables_cost``),
    except those the run keeps verbatim (``keep``: one column, one name)."""
    have = set(mapped)
    if CONSUMABLE_ALIAS in schema.names:
        have.add("consumables_cost")
    if "mdc" in schema.names or grouping:
        have.add("mdc")
    have -= set(keep)
    return [f.name for f in CARRIED_SCHEMA if f.name in have]


def carried_columns(
    names: Iterable[str],
    cols: Mapping[str, Any],
    batch: pa.RecordBatch,
    mdc: pa.Array | None,
    source: str,
    row0: int,
) -> list[pa.Array]:
    """The carried columns of one batch, typed as :data:`CARRIED_SCHEMA` says (``mdc``: the
    grouper's, else the input's). A LOS that is not a whole number of days is null; a drug or
    consumable cost that is not a non-negative amount in whole cents is null and warned about
    (:class:`DataWarning` naming the file, the first such row and the column): it does not
    change the payment, so the case is still settled."""
    n = batch.num_rows
    out = []
    for name in names:
        arr = cols.get(name)
        if name == "mdc":
            arr = mdc if mdc is not None else batch.column("mdc")
        elif arr is None and name == "consumables_cost":
            arr = batch.column(CONSUMABLE_ALIAS)
        if name == "los":
            los = _cases.parse_scalar(arr, n)
            # a whole number of days (3.7 is not 3: nothing is rounded on the way in)
            whole = ((los.kind & _cases.F_INT_OK) != 0) & (
                ((los.kind & _cases.F_NUMBER) == 0) | (los.num == los.intv)
            )
            known = whole & (los.intv >= 0) & (los.intv < 2**31)
            out.append(pa.array(np.where(known, los.intv, 0).astype(np.int32), mask=~known))
        elif name in ("drug_cost", "consumables_cost"):
            cents, flag = to_cents(arr, n)
            bad = ((flag != OK) & (flag != MISSING)) | ((flag == OK) & (cents < 0))
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                warnings.warn(
                    f"{source}: {int(bad.sum())} case(s) have a {name} that is not a "
                    f"non-negative amount in whole cents (first: row {row0 + first + 1}, "
                    f"column {name}); left empty in the settled table",
                    DataWarning,
                    stacklevel=3,
                )
            out.append(cents_array(cents, (flag == OK) & ~bad))
        else:
            out.append(text_of(arr))
    return out


def text_of(arr: pa.Array) -> pa.Array:
    """Codes as text: numbers without a trailing .0, blanks null."""
    uniques, index = _cases.encode_values(arr)
    table = []
    for v in uniques:
        text = None if v is None else _cases.value_text(v).strip()
        table.append(text or None)
    return (
        pa.array(table, pa.string()).take(pa.array(index))
        if len(index)
        else pa.nulls(0, pa.string())
    )


def settle_schema_fields() -> list[pa.Field]:
    """The typed columns of a settlement result (every method, both schemes)."""
    fields = list(settle_schema(_SchemaProbe(), carried=[f.name for f in CARRIED_SCHEMA]))
    names = {f.name for f in fields}
    fields += [f for f in dip_settle_schema(_SchemaProbe()) if f.name not in names]
    return fields


class _SchemaProbe:
    method = "points"
    point_decimals = 4
    id = ""
    content_hash = ""


def plain(arr: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(arr.type):
        return arr.cast(arr.type.value_type)
    return arr


def constant(value: str, n: int) -> pa.Array:
    """One text for every row, dictionary-encoded (one entry, n zero indices)."""
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, np.int16)), pa.array([value], pa.string())
    )


def flags_array(arr: pa.Array | None, n: int) -> pa.Array:
    if arr is None:
        return pa.nulls(n, pa.bool_())
    if pa.types.is_boolean(arr.type):
        return arr
    uniques, index = _cases.encode_values(arr)
    truth = {"1", "true", "yes", "y", "是", "t"}
    table = [
        None
        if v is None or _cases.value_text(v) == ""
        else _cases.value_text(v).strip().lower() in truth
        for v in uniques
    ]
    return pa.array([table[k] for k in index.tolist()], pa.bool_())
