"""Splitting an alliance package among its members (rules: the package docstring).

The per-case work — resolving referral links, walking up-transfer chains, splitting payments
and surpluses, summing per member — runs in numba kernels over integer columns
(``_kernels``); the per-item allocations (shared costs, joint services, cost increases, the
package adjustment: a few per alliance) use exact Python fractions (``_allocate``). Reading the
cases is ``_input``, the output tables ``_tables``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._money import RW_SCALE, coefficient_units, group_sums
from .._write import open_writer
from ..errors import CaseDataError
from ._allocate import alliance_money, largest_remainder
from ._input import Columns, Members, concat, id_key, members_of, read_batch
from ._kernels import CONFLICT, DOWN, LINKS, UP, episodes, link_kinds, member_counts
from ._model import AllianceModel
from ._tables import cases_table, items_table, members_table, take_strings, transfers_table

__all__ = ["LINKS", "AllianceSplit", "largest_remainder", "split", "split_batches"]


# --------------------------------------------------------------------------- result


@attrs.frozen
class AllianceSplit:
    """The split: Arrow tables (money as exact ``decimal128(18, 2)`` yuan)."""

    cases: pa.Table
    transfers: pa.Table
    items: pa.Table
    members: pa.Table
    alliances: pa.Table
    outside_cases: int
    model_id: str
    model_hash: str

    TABLES = ("members", "alliances", "transfers", "items", "cases")

    def write(self, folder: str | os.PathLike[str], fmt: str = "csv") -> list[Path]:
        """Write every table to ``folder`` as ``<name>.csv`` (or ``.parquet``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for name in self.TABLES:
            path = folder / f"{name}.{fmt}"
            write_table_file(path, getattr(self, name), fmt)
            out.append(path)
        return out


def write_table_file(path: Path, table: pa.Table, fmt: str) -> None:
    """One result table to one file, atomically (the partitioned run writes its small tables
    with this too, so that they are the same bytes)."""
    with open_writer(path, fmt) as writer:
        for batch in table.to_batches():
            writer.write(batch)
        writer.close(table.schema)


# --------------------------------------------------------------------------- split


def split(settled: pa.Table | pa.RecordBatch, model: AllianceModel) -> AllianceSplit:
    """Split every alliance's package for the settled cases (one table)."""
    return split_batches([settled], model)


def split_batches(
    batches: Iterable[pa.RecordBatch | pa.Table], model: AllianceModel
) -> AllianceSplit:
    """:func:`split` over a stream of batches (the result does not depend on the batching)."""
    need_rw = model.rules.volume == "rw"
    parts = []
    row0 = 0
    for batch in batches:
        parts.append(read_batch(batch, row0, need_rw))
        row0 += batch.num_rows
    if not parts:
        raise CaseDataError("no settled cases were given (not even an empty table)")
    return _split(concat(parts), model)


def _split(cols: Columns, model: AllianceModel) -> AllianceSplit:
    mem = members_of(model)
    n_members = len(mem.ids)
    member, kind, parent = resolve_links(cols, mem)
    absorbed, paid, paying, surplus, surplus_ok, sums, tr = run_episodes(
        cols, mem, model, member, kind, parent
    )
    cases_m, settled_m = member_counts(member, cols.settled, n_members)
    counted = (member >= 0) & cols.settled
    rw_m = group_sums(member[counted], cols.rw[counted], n_members)  # exact at any size
    counts = alliance_counts(mem, len(model.alliances), cases_m, settled_m)
    counts.update(link_counts(mem, len(model.alliances), member, cols.settled, absorbed, kind))
    absorbed_into = take_strings(cols.case_id, np.where(absorbed, paying, -1))
    cases = cases_table(cols, mem, model, member, kind, absorbed_into, paid, surplus, surplus_ok)
    transfers, items, members, summary = assemble(
        model, mem, cols, sums, cases_m, settled_m, rw_m, counts, tr
    )
    return AllianceSplit(
        cases.replace_schema_metadata(table_metadata(model)),
        transfers,
        items,
        members,
        summary,
        outside_cases=int((member < 0).sum()),
        model_id=model.id,
        model_hash=model.content_hash,
    )


def resolve_links(cols: Columns, mem: Members) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Member index, link kind and parent row of every row of ``cols``.

    ``cols`` may be every case, or only the cases that refer or are referred to (the
    partitioned run's narrow table, in input order): the kinds do not depend on other rows."""
    member = pc.index_in(cols.hospital_id, value_set=pa.array(mem.ids, pa.large_string()))
    member = member.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)

    # only the ids that some case names as its referral source are hashed: codes index them
    refs = cols.referral_from
    named = pc.unique(refs.filter(refs.is_valid()))
    own_code = pc.index_in(cols.case_id, value_set=named)
    own_code = own_code.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    rows = np.flatnonzero(own_code >= 0)
    code_count = np.bincount(own_code[rows], minlength=len(named)).astype(np.int64)
    code_first = np.full(len(named), -1, np.int64)
    code_first[own_code[rows[::-1]]] = rows[::-1]
    parent_code = pc.index_in(refs, value_set=named)
    parent_code = parent_code.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    parent_code[refs.is_null().to_numpy(zero_copy_only=False)] = -2

    kind, parent = link_kinds(
        own_code, parent_code, code_count, code_first, member, mem.alliance, mem.level, cols.settled
    )
    _resolve_conflicts(kind, parent, cols)
    return member, kind, parent


def run_episodes(
    cols: Columns,
    mem: Members,
    model: AllianceModel,
    member: np.ndarray,
    kind: np.ndarray,
    parent: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Absorbed, paid, paying row, down surplus (and whether known), the per-member sums and
    the transfers (see :func:`._kernels.episodes`)."""
    rules = model.rules
    return episodes(
        kind,
        parent,
        member,
        cols.settled,
        cols.pay,
        cols.cost,
        cols.cost_ok,
        mem.rank,
        coefficient_units(rules.up_referrer_share),
        coefficient_units(rules.down_sender_share),
        rules.down_share_losses,
        len(mem.ids),
    )


def alliance_counts(
    mem: Members, n_alliances: int, cases_m: np.ndarray, settled_m: np.ndarray
) -> dict[str, np.ndarray]:
    """Cases and settled cases per alliance, from the per-member counts."""
    out = {}
    for name, per_member in (("cases", cases_m), ("settled_cases", settled_m)):
        total = np.zeros(n_alliances, np.int64)
        np.add.at(total, mem.alliance, np.asarray(per_member, np.int64))
        out[name] = total
    return out


def link_counts(
    mem: Members,
    n_alliances: int,
    member: np.ndarray,
    settled: np.ndarray,
    absorbed: np.ndarray,
    kind: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per alliance: absorbed cases (and of them the settled ones), up and down links. Every
    row they count refers or is referred to, so the narrow table gives the same counts."""
    a_of_case = np.where(member >= 0, mem.alliance[np.maximum(member, 0)], -1)
    inside = a_of_case >= 0

    def per_alliance(mask: np.ndarray) -> np.ndarray:
        return np.bincount(a_of_case[mask & inside], minlength=n_alliances).astype(np.int64)

    return {
        "absorbed_cases": per_alliance(absorbed),
        "absorbed_settled": per_alliance(absorbed & settled),
        "up_links": per_alliance(kind == UP),
        "down_links": per_alliance(kind == DOWN),
    }


def assemble(
    model: AllianceModel,
    mem: Members,
    cols: Columns,
    sums: np.ndarray,
    cases_m: np.ndarray,
    settled_m: np.ndarray,
    rw_m: np.ndarray,
    counts: dict[str, np.ndarray],
    tr: np.ndarray,
) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
    """The transfers, items, members and alliances tables from the per-member sums, the
    per-alliance counts and the transfers (whose rows index ``cols``)."""
    rules = model.rules
    claims_m = sums.sum(axis=0)
    volume = (
        [Fraction(int(v)) for v in settled_m]
        if rules.volume == "cases"
        else [Fraction(int(v), RW_SCALE) for v in rw_m]
    )
    extra, item_rows, summary = alliance_money(model, mem, claims_m, volume, counts)
    transfers = transfers_table(cols, mem, model, *np.ascontiguousarray(tr.T))
    members = members_table(mem, model, cases_m, settled_m, volume, sums, claims_m, extra)
    items = items_table(item_rows)
    meta = table_metadata(model)
    return tuple(t.replace_schema_metadata(meta) for t in (transfers, items, members, summary))


def table_metadata(model: AllianceModel) -> dict[bytes, bytes]:
    return {
        b"drgkit.alliance_model": model.id.encode(),
        b"drgkit.alliance_model_hash": model.content_hash.encode(),
        b"drgkit.rounding": b"largest remainder per split, ties to the smaller hospital id",
    }


def _resolve_conflicts(kind: np.ndarray, parent: np.ndarray, cols: Columns) -> None:
    """Of several up-children of one parent, the smallest (case_id, hospital_id, payment,
    cost — a missing cost first) keeps the link; the others become ``conflict``."""
    up = np.flatnonzero(kind == UP)
    if not len(up):
        return
    parents = parent[up]
    counts = np.bincount(parents, minlength=len(kind))
    contested = up[counts[parents] > 1]
    if not len(contested):
        return
    groups: dict[int, list[int]] = {}
    for i in contested.tolist():
        groups.setdefault(int(parent[i]), []).append(i)
    case_ids = cols.case_id.take(pa.array(contested)).to_pylist()
    hospitals = cols.hospital_id.take(pa.array(contested)).to_pylist()
    key = {
        i: (
            id_key(c or ""),
            id_key(h or ""),
            int(cols.pay[i]),
            int(cols.cost[i]) if cols.cost_ok[i] else -(2**62),
        )
        for i, c, h in zip(contested.tolist(), case_ids, hospitals, strict=True)
    }
    for children in groups.values():
        winner = min(children, key=lambda i: (key[i], i))
        for i in children:
            if i != winner:
                kind[i] = CONFLICT
