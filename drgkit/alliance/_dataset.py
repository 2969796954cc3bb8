"""The alliance split of a partitioned Parquet dataset, in one process or on a Dask cluster.

Two passes over the partitions (``drgkit._runners``: one Parquet file each, or some row groups
of one file), with the link resolution and the package allocation on the driver between them:

1. per partition, :func:`facts_of_partition`: the per-member sums that need no links (cases,
   settled cases, own payments, Σ RW: integers, so the order they are added in does not
   matter), the ids the partition names as referral sources, and the *narrow table* of its
   cases that refer; then, once the driver knows every named id,
   :func:`referred_of_partition`: the narrow table of its cases that are referred to (it reads
   only what it needs again);
2. on the driver, :func:`resolve_dataset`: the narrow tables in dataset order are every case
   that takes part in a link, so the same link, episode and conflict rules as
   :func:`~drgkit.alliance.split` run on them alone, and give the transfers, members, items
   and alliances tables;
3. per partition again, :func:`cases_of_partition`: the partition's case rows, with what the
   driver decided for its narrow cases, written to ``cases/part-<index:05d>.parquet``.

The result is the single-process one: the members, alliances, transfers and items tables are
byte for byte what :meth:`AllianceSplit.write` writes for the whole dataset (and, when the model
has ``[cooperation]`` or ``[synergy_fund]``, the cooperation table is byte for byte
:func:`~drgkit.alliance.cooperation_outcome` of that split: a member's referred cases are
children or parents of up and down links, which are all narrow cases), and each part file
holds that split's case rows of its partition, written with fixed row groups
(:class:`drgkit._runners.PartWriter`), so its bytes depend on those rows only: not on the
runner, the number of workers or partitions elsewhere, or on being resumed. A manifest
(``_drgkit_manifest.json``) records the inputs, the model and the finished parts; ``resume``
keeps the parts whose checksum still matches and writes the others.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._io import DEFAULT_BATCH_ROWS
from .._money import group_sums
from .._runners import (
    MANIFEST_NAME,
    PART_NAME,
    DaskRunner,
    LocalRunner,
    Manifest,
    ManifestError,
    Partition,
    PartRecord,
    PartWriter,
    input_fingerprint,
    partitions_of,
)
from ..errors import CaseDataError
from ._allocate import cooperation_outcome
from ._input import Columns, Members, concat, members_of, read_batch
from ._kernels import NONE, member_counts
from ._model import AllianceModel, load_model
from ._split import (
    AllianceSplit,
    alliance_counts,
    assemble,
    link_counts,
    resolve_links,
    run_episodes,
    table_metadata,
    write_table_file,
)
from ._tables import cases_table, take_strings

#: the columns of the cases table that :func:`cooperation_outcome` reads
_LINK_COLUMNS = ["case_id", "hospital_id", "alliance_id", "link", "parent_case_id"]

__all__ = [
    "AllianceContext",
    "AllianceDatasetResult",
    "CaseInfo",
    "DaskRunner",
    "LocalRunner",
    "PartitionFacts",
    "Resolution",
    "cases_of_partition",
    "facts_of_partition",
    "referred_of_partition",
    "resolve_dataset",
    "split_dataset",
]

CASES_FOLDER = "cases"
#: the columns of a narrow table (one row per case that refers or is referred to)
NARROW_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),  # row number in the dataset (0-based)
        ("case_id", pa.large_string()),
        ("hospital_id", pa.large_string()),
        ("referral_from", pa.large_string()),
        ("settled", pa.bool_()),
        ("pay", pa.int64()),
        ("pay_valid", pa.bool_()),
        ("cost", pa.int64()),
        ("cost_ok", pa.bool_()),
    ]
)


@attrs.frozen(slots=True)
class AllianceContext:
    """What every task needs: the model and how to read the cases (small; pickles to
    workers)."""

    model: AllianceModel
    referral_column: str = "referral_from"
    batch_rows: int = DEFAULT_BATCH_ROWS


# --------------------------------------------------------------------------- reading


def _file_row(part: Partition, local: int) -> int:
    """A partition's row (0-based) as the row of its file (1-based, as errors count)."""
    return (part.start if part.row_groups is not None else 0) + local + 1


def read_partition(ctx: AllianceContext, part: Partition, need_rw: bool) -> Columns:
    """The partition's cases as the split reads them; a bad value is an error naming the
    partition's file, the row in that file and the column."""
    names = part.schema().names
    wanted = ["case_id", "hospital_id", "settled", "payment", "total_cost"]
    if ctx.referral_column in names:
        wanted.append(ctx.referral_column)
    if need_rw and "rw" in names:
        wanted.append("rw")
    wanted = [c for c in wanted if c in names]  # read_batch names what is missing
    pieces = []
    local = 0
    try:
        for batch in _batches(part, ctx.batch_rows, wanted):
            if ctx.referral_column != "referral_from" and ctx.referral_column in wanted:
                batch = batch.rename_columns(
                    ["referral_from" if c == ctx.referral_column else c for c in batch.schema.names]
                )
            pieces.append(read_batch(batch, local, need_rw))
            local += batch.num_rows
    except CaseDataError as exc:
        if exc.file is not None:
            raise
        row = None if exc.row is None else _file_row(part, exc.row - 1)
        raise CaseDataError(exc.message, file=part.path, row=row, column=exc.column) from None
    return concat(pieces)


def _batches(part: Partition, batch_rows: int, columns: list[str]) -> Iterator[pa.RecordBatch]:
    seen = False
    for batch in part.batches(batch_rows, columns):
        seen = True
        yield batch
    if not seen:  # an empty partition still has its columns (and is checked for them)
        schema = pq.ParquetFile(part.path).schema_arrow
        yield pa.RecordBatch.from_pylist([], schema=pa.schema([schema.field(c) for c in columns]))


def _member_of(cols: Columns, mem: Members) -> np.ndarray:
    member = pc.index_in(cols.hospital_id, value_set=pa.array(mem.ids, pa.large_string()))
    return member.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _narrow(cols: Columns, rows: np.ndarray, start: int) -> pa.Table:
    take = pa.array(rows, pa.int64())
    return pa.Table.from_arrays(
        [
            pa.array(rows + start, pa.int64()),
            cols.case_id.take(take),
            cols.hospital_id.take(take),
            cols.referral_from.take(take),
            pa.array(cols.settled[rows]),
            pa.array(cols.pay[rows]),
            pa.array(cols.pay_valid[rows]),
            pa.array(cols.cost[rows]),
            pa.array(cols.cost_ok[rows]),
        ],
        schema=NARROW_SCHEMA,
    )


# --------------------------------------------------------------------------- pass 1


@attrs.frozen(slots=True, eq=False)
class PartitionFacts:
    """Pass 1 of one partition: per-member counts and exact sums (Python integers), the ids
    it names as referral sources, and the narrow table of its cases that refer."""

    index: int
    rows: int
    cases: list[int]
    settled: list[int]
    own_payment: list[int]
    rw: list[int]
    named: pa.Array
    referring: pa.Table


def facts_of_partition(ctx: AllianceContext, part: Partition) -> PartitionFacts:
    model = ctx.model
    mem = members_of(model)
    cols = read_partition(ctx, part, model.rules.volume == "rw")
    member = _member_of(cols, mem)
    n_members = len(mem.ids)
    cases_m, settled_m = member_counts(member, cols.settled, n_members)
    counted = (member >= 0) & cols.settled
    own = group_sums(member[counted], cols.pay[counted], n_members)
    rw = group_sums(member[counted], cols.rw[counted], n_members)
    refs = cols.referral_from
    valid = refs.is_valid()
    referring = np.flatnonzero(valid.to_numpy(zero_copy_only=False))
    return PartitionFacts(
        part.index,
        len(member),
        [int(v) for v in cases_m],
        [int(v) for v in settled_m],
        [int(v) for v in own],
        [int(v) for v in rw],
        pc.unique(refs.filter(valid)),
        _narrow(cols, referring, part.start),
    )


def referred_of_partition(ctx: AllianceContext, part: Partition, named: pa.Array) -> pa.Table:
    """The narrow table of the partition's cases whose id some case names, and that refer to
    none themselves (those are in pass 1's table already)."""
    cols = read_partition(ctx, part, False)
    hit = pc.and_(pc.is_in(cols.case_id, value_set=named), cols.referral_from.is_null())
    rows = np.flatnonzero(hit.fill_null(False).to_numpy(zero_copy_only=False))
    return _narrow(cols, rows, part.start)


# --------------------------------------------------------------------------- the driver


@attrs.frozen(slots=True, eq=False)
class CaseInfo:
    """What the driver decided for a partition's narrow cases (rows local to the
    partition); every other case of it has no link and is paid by itself."""

    rows: np.ndarray
    kind: np.ndarray
    absorbed: np.ndarray
    absorbed_into: pa.Array
    surplus: np.ndarray
    surplus_ok: np.ndarray


@attrs.frozen(slots=True, eq=False)
class Resolution:
    """The driver's results: the four small tables and each partition's :class:`CaseInfo`;
    ``links``: the narrow cases' rows of the cases table (case and parent ids, alliance, link
    kind), in dataset order: every case in an up or down link, as child or parent."""

    transfers: pa.Table
    items: pa.Table
    members: pa.Table
    alliances: pa.Table
    outside_cases: int
    rows: int
    cases: dict[int, CaseInfo]
    links: pa.Table | None = None


def _columns_of(narrow: pa.Table) -> Columns:
    def strings(name: str) -> pa.Array:
        col = narrow.column(name)
        return col.combine_chunks() if col.num_chunks else pa.array([], pa.large_string())

    def ints(name: str, dtype: Any) -> np.ndarray:
        return narrow.column(name).to_numpy().astype(dtype)

    return Columns(
        strings("case_id"),
        strings("hospital_id"),
        strings("referral_from"),
        ints("settled", np.bool_),
        ints("pay", np.int64),
        ints("pay_valid", np.bool_),
        ints("cost", np.int64),
        ints("cost_ok", np.bool_),
        np.zeros(narrow.num_rows, np.int64),
    )


def _sum_lists(lists: Sequence[list[int]], size: int) -> list[int]:
    out = [0] * size
    for values in lists:
        for k, v in enumerate(values):
            out[k] += v
    return out


def _int64(values: list[int], what: str) -> np.ndarray:
    try:
        return np.array(values, np.int64)
    except OverflowError:
        raise CaseDataError(f"a member's {what} is beyond the exact integer range") from None


def resolve_dataset(
    model: AllianceModel,
    parts: Sequence[Partition],
    facts: Sequence[PartitionFacts],
    referred: Sequence[pa.Table],
) -> Resolution:
    """Links, episodes and the package allocation from every partition's facts and narrow
    tables (see the module documentation)."""
    mem = members_of(model)
    n_members = len(mem.ids)
    n_alliances = len(model.alliances)
    narrow = pa.concat_tables([f.referring for f in facts] + list(referred))
    narrow = narrow.take(pc.sort_indices(narrow, [("row", "ascending")]))
    cols = _columns_of(narrow)
    member, kind, parent = resolve_links(cols, mem)
    absorbed, paid, paying, surplus, surplus_ok, sums, tr = run_episodes(
        cols, mem, model, member, kind, parent
    )
    # own payments are summed over every case, not only the narrow ones
    sums[0] = _int64(_sum_lists([f.own_payment for f in facts], n_members), "own payment")
    cases_m = _int64(_sum_lists([f.cases for f in facts], n_members), "case count")
    settled_m = _int64(_sum_lists([f.settled for f in facts], n_members), "case count")
    rw_total = _sum_lists([f.rw for f in facts], n_members)
    rw_m = np.array(rw_total, object)
    counts = alliance_counts(mem, n_alliances, cases_m, settled_m)
    counts.update(link_counts(mem, n_alliances, member, cols.settled, absorbed, kind))
    transfers, items, members, alliances = assemble(
        model, mem, cols, sums, cases_m, settled_m, rw_m, counts, tr
    )
    rows = sum(f.rows for f in facts)

    # each narrow case back to its partition (an empty partition shares its start with the
    # next one: searchsorted to the right finds the one that holds the row)
    global_rows = narrow.column("row").to_numpy()
    starts = np.array([p.start for p in parts], np.int64)
    owner = np.searchsorted(starts, global_rows, side="right") - 1
    absorbed_into = take_strings(cols.case_id, np.where(absorbed, paying, -1))
    links = cases_table(cols, mem, model, member, kind, absorbed_into, paid, surplus, surplus_ok)
    info = {}
    for k, part in enumerate(parts):
        sel = np.flatnonzero(owner == k)
        info[part.index] = CaseInfo(
            global_rows[sel] - part.start,
            kind[sel],
            absorbed[sel],
            absorbed_into.take(pa.array(sel, pa.int64())),
            surplus[sel],
            surplus_ok[sel],
        )
    return Resolution(
        transfers,
        items,
        members,
        alliances,
        int(rows - int(cases_m.sum())),
        rows,
        info,
        links.select(_LINK_COLUMNS),
    )


# --------------------------------------------------------------------------- pass 2


@attrs.frozen(slots=True)
class CasesPart:
    """A written part file of the cases table."""

    index: int
    path: str
    rows: int
    sha256: str


def partition_cases(ctx: AllianceContext, part: Partition, info: CaseInfo) -> pa.Table:
    """The cases table of one partition (the single-process split's rows of it)."""
    model = ctx.model
    mem = members_of(model)
    cols = read_partition(ctx, part, False)
    n = len(cols.settled)
    member = _member_of(cols, mem)
    kind = np.full(n, NONE, np.int8)
    absorbed = np.zeros(n, np.bool_)
    surplus = np.zeros(n, np.int64)
    surplus_ok = np.zeros(n, np.bool_)
    where = np.full(n, -1, np.int64)
    if len(info.rows):
        if int(info.rows.max()) >= n:
            raise CaseDataError(
                "the partition has fewer rows than when the run started: the input changed",
                file=part.path,
            )
        kind[info.rows] = info.kind
        absorbed[info.rows] = info.absorbed
        surplus[info.rows] = info.surplus
        surplus_ok[info.rows] = info.surplus_ok
        where[info.rows] = np.arange(len(info.rows))
    paid = cols.settled & (member >= 0) & ~absorbed
    into = take_strings(info.absorbed_into, where)
    table = cases_table(cols, mem, model, member, kind, into, paid, surplus, surplus_ok)
    return table.replace_schema_metadata(table_metadata(model))


def cases_of_partition(
    ctx: AllianceContext, part: Partition, info: CaseInfo, out_dir: str
) -> CasesPart:
    """Write the partition's case rows to ``out_dir/cases/part-<index:05d>.parquet``."""
    table = partition_cases(ctx, part, info)
    path = Path(out_dir) / CASES_FOLDER / PART_NAME.format(part.index)
    with PartWriter(path, table.schema) as writer:
        for batch in table.to_batches():
            writer.write(batch)
    return CasesPart(part.index, str(path), table.num_rows, writer.sha256)


# --------------------------------------------------------------------------- entry point


@attrs.frozen(slots=True, eq=False)
class AllianceDatasetResult:
    """The outcome of :func:`split_dataset`: the small tables (as written), the case part
    files, one per partition, in dataset order."""

    partitions: tuple[Partition, ...]
    rows: int
    members: pa.Table
    alliances: pa.Table
    transfers: pa.Table
    items: pa.Table
    outside_cases: int
    model_id: str
    model_hash: str
    paths: tuple[str, ...]  # the case part files
    files: tuple[str, ...]  # the small tables' files
    #: :func:`~drgkit.alliance.cooperation_outcome` per member (None: the model has neither
    #: ``[cooperation]`` nor ``[synergy_fund]``)
    cooperation: pa.Table | None = None

    def cases(self) -> pa.Table:
        """Every case row, in dataset order (reads the part files back)."""
        return pa.concat_tables([pq.read_table(p) for p in self.paths])


def _shared(runner: Any, value: Any) -> Any:
    """``value`` sent once to every worker of a Dask runner (a future the tasks resolve),
    as it is for a local one."""
    client = getattr(runner, "client", None)
    if client is None:
        return value
    return client.scatter(value, broadcast=True, hash=False)


def _identity(
    ctx: AllianceContext, parts: Sequence[Partition], fmt: str, row_groups_per_partition: int
) -> dict[str, Any]:
    from .. import __version__

    files = list(dict.fromkeys(p.path for p in parts))
    return {
        "job": "alliance split",
        "drgkit_version": __version__,
        "pyarrow_version": pa.__version__,
        "inputs": [input_fingerprint(f) for f in files],
        "partitions": [[list(p.row_groups) if p.row_groups else None, p.rows] for p in parts],
        "model": [ctx.model.id, ctx.model.content_hash],
        "options": {
            "referral_column": ctx.referral_column,
            "format": fmt,
            "row_groups_per_partition": row_groups_per_partition,
        },
    }


def _prepare_out_dir(out: Path, overwrite: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    folder = out / CASES_FOLDER
    stale = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
    if stale and not overwrite:
        raise CaseDataError(
            f"the output folder already holds {len(stale)} case part file(s); choose an "
            "empty folder, pass overwrite=True, or resume=True to finish an interrupted run",
            file=out,
        )
    Manifest.path_in(out).unlink(missing_ok=True)
    for path in stale:
        path.unlink()
    _remove_leftovers(out)
    folder.mkdir(exist_ok=True)


def _remove_leftovers(out: Path) -> None:
    """Temporary files of a killed run (``atomic_output`` names them ``.<name>.*.part``)."""
    for pattern in (f"{CASES_FOLDER}/.part-*.parquet.*.part", f".{MANIFEST_NAME}.*.part"):
        for path in out.glob(pattern):
            path.unlink(missing_ok=True)


def split_dataset(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    model: str | os.PathLike[str] | AllianceModel,
    *,
    runner: Any = None,
    fmt: str = "parquet",
    referral_column: str = "referral_from",
    batch_rows: int | None = None,
    row_groups_per_partition: int = 1,
    overwrite: bool = False,
    resume: bool = False,
    shared_results: Any = None,
) -> AllianceDatasetResult:
    """Split every alliance's package for a partitioned dataset of settled cases.

    ``source``: a folder of Parquet files of settled cases (``drgkit settle --partitions``
    writes one), a list of them, or one file (split by row groups,
    ``row_groups_per_partition`` each). ``out_dir`` receives ``members``, ``alliances``,
    ``transfers`` and ``items`` (``fmt``: ``parquet`` or ``csv``), ``cases/part-NNNNN.parquet``
    (one per partition) and the manifest. ``runner``: :class:`LocalRunner` (default) or
    :class:`DaskRunner`. ``resume``: keep the verified case parts of an interrupted run in
    ``out_dir`` (the inputs, model and options must be those of its manifest) and write the
    rest. The tables equal :func:`~drgkit.alliance.split` of the whole dataset in one process
    (see the module documentation). When the model has ``[cooperation]`` or
    ``[synergy_fund]``, ``cooperation`` (``fmt``) holds
    :func:`~drgkit.alliance.cooperation_outcome` per member; ``shared_results``: the members
    that share results (a set of hospital ids, or a mapping id → bool), required when
    ``[cooperation] shared_results = true``."""
    if fmt not in ("csv", "parquet"):
        raise CaseDataError(f"unknown output format {fmt!r}: use csv or parquet")
    alliance_model = load_model(model)
    coop = alliance_model.rules.cooperation
    if coop is not None and coop.shared_results and shared_results is None:
        # said before any partition is read, not after the whole run
        from ._model import AllianceError

        raise AllianceError(
            f"model {alliance_model.id}: [cooperation] shared_results = true: pass "
            "shared_results= (the members that share results)"
        )
    ctx = AllianceContext(alliance_model, referral_column, batch_rows or DEFAULT_BATCH_ROWS)
    parts = partitions_of(source, row_groups_per_partition=row_groups_per_partition)
    out = Path(out_dir).absolute()
    runner = runner if runner is not None else LocalRunner()
    identity = _identity(ctx, parts, fmt, row_groups_per_partition)
    manifest = Manifest.read(out) if resume and out.is_dir() else None
    done: set[int] = set()
    if manifest is not None:
        changed = manifest.differences(identity)
        if changed:
            raise ManifestError(
                "cannot resume: the run would not give the output the manifest describes ("
                + "; ".join(changed)
                + "). Split again without resume, with overwrite=True",
                file=Manifest.path_in(out),
            )
        _remove_leftovers(out)
        (out / CASES_FOLDER).mkdir(exist_ok=True)
        done = manifest.verified_parts(out)
    else:
        _prepare_out_dir(out, overwrite)
        manifest = Manifest(identity, {})
        manifest.write(out)

    n = len(parts)
    facts = runner.map(facts_of_partition, [ctx] * n, parts)
    named = pa.concat_arrays([f.named for f in facts]) if facts else pa.array([], pa.large_string())
    named = pc.unique(named)
    shared = _shared(runner, named)
    referred = runner.map(referred_of_partition, [ctx] * n, parts, [shared] * n)
    res = resolve_dataset(alliance_model, parts, facts, referred)

    def record(o: CasesPart) -> None:
        manifest.parts[o.index] = PartRecord(
            f"{CASES_FOLDER}/{Path(o.path).name}", o.rows, o.sha256
        )
        manifest.write(out)

    todo = [p for p in parts if p.index not in done]
    runner.map(
        cases_of_partition,
        [ctx] * len(todo),
        todo,
        [res.cases[p.index] for p in todo],
        [str(out)] * len(todo),
        done=record,
    )
    files = []
    for name, table in (
        ("members", res.members),
        ("alliances", res.alliances),
        ("transfers", res.transfers),
        ("items", res.items),
    ):
        path = out / f"{name}.{fmt}"
        write_table_file(path, table, fmt)
        files.append(str(path))
    cooperation = None
    if coop is not None or alliance_model.rules.synergy_fund is not None:
        # the single-process split's figures: members and alliances are the same tables, and
        # every case the referral counts look at is a narrow case
        view = _LinksView(res.links, res.members, res.alliances)
        cooperation = cooperation_outcome(alliance_model, view, shared_results=shared_results)
        path = out / f"cooperation.{fmt}"
        write_table_file(path, cooperation, fmt)
        files.append(str(path))
    return AllianceDatasetResult(
        tuple(parts),
        res.rows,
        res.members,
        res.alliances,
        res.transfers,
        res.items,
        res.outside_cases,
        alliance_model.id,
        alliance_model.content_hash,
        tuple(str(out / CASES_FOLDER / PART_NAME.format(p.index)) for p in parts),
        tuple(files),
        cooperation,
    )


@attrs.frozen(slots=True)
class _LinksView:
    """What :func:`cooperation_outcome` reads of a split: the cases in links, the members and
    the alliances tables."""

    cases: pa.Table
    members: pa.Table
    alliances: pa.Table


def split_as_parts(
    split: AllianceSplit, parts: Sequence[Partition], out_dir: str | os.PathLike[str]
) -> list[Path]:
    """Write a single-process split's case rows cut at the partitions' boundaries, as
    :func:`split_dataset` writes them (to compare the two byte for byte)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for part in parts:
        rows = split.cases.slice(part.start, part.rows)
        path = out / PART_NAME.format(part.index)
        with PartWriter(path, split.cases.schema) as writer:
            for batch in rows.to_batches():
                writer.write(batch)
        paths.append(path)
    return paths
