"""Settlement of a partitioned Parquet dataset, in one process or on a cluster, resumable.

A dataset is a folder of Parquet files (one partition per file, in the order pyarrow's dataset
discovery lists them) or one Parquet file split by row groups (:mod:`drgkit._runners`). The
work is two passes of pure functions of one partition (:mod:`drgkit.settlement._passes`):
partial sums and case-id fingerprints, a reduction on the driver (point values, duplicate ids
resolved in partition order), then each partition settled into ``part-<index:05d>.parquet``.

Memory: pass 1 spills each partition's case-id fingerprints to ``out_dir/.duplicate-ids.tmp``
(workers write them, as they write the part files: the folder must be shared with the driver),
grouped by shard, and the driver resolves the duplicate ids one shard at a time, so its memory
does not grow with the number of cases; the folder is removed after the first pass.

Determinism: partial sums are integers; duplicate ids are resolved by the driver in partition
order, never by whichever worker finishes first; every case is settled by itself; part files
are written in fixed row groups with their dictionaries rebuilt per row group, so a part
file's bytes depend on its partition's rows only: not on the batch size, the runner, the
number of workers or threads. The concatenated part files equal ``settle()`` of the whole
dataset in one process, row for row.

Atomic and resumable: every part file appears under its name only when complete; the output
folder keeps a manifest (:class:`drgkit._runners.Manifest`) written when the first pass is done
and after every part. ``settle_dataset(..., resume=True)`` checks that the inputs, policy,
ruleset, hospitals, options and drgkit version are those of the manifest, reuses its
first-pass results (point values and duplicate resolution, stored exactly), keeps the parts
whose checksum matches and settles the rest: the folder ends byte for byte as an
uninterrupted run leaves it.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .._duplicates import remove_spill, spill_area
from .._io import DEFAULT_BATCH_ROWS, DataWarning
from .._resolve import RESOLVER, Names
from .._runners import (
    MANIFEST_NAME,
    PART_NAME,
    ROW_GROUP_ROWS,
    WRITER_OPTIONS,
    DaskRunner,
    LocalRunner,
    Manifest,
    ManifestError,
    Partition,
    PartRecord,
    input_fingerprint,
    partitions_of,
)
from ..errors import CaseDataError
from ..ruleset._model import Ruleset, RulesetSeries
from ._passes import (
    KnownDuplicates,
    PartitionFacts,
    PartitionOutput,
    Reduction,
    SettleContext,
    correction_of_partition,
    partial_of_partition,
    reduce_facts,
    settle_partition,
)
from ._settle import Partial, Reduced, SettleSummary

__all__ = [
    "ROW_GROUP_ROWS",
    "WRITER_OPTIONS",
    "DaskRunner",
    "DatasetResult",
    "KnownDuplicates",
    "LocalRunner",
    "Partition",
    "PartitionFacts",
    "PartitionOutput",
    "SettleContext",
    "correction_of_partition",
    "partial_of_partition",
    "partitions_of",
    "reduce_facts",
    "settle_dataset",
    "settle_partition",
]


# ------------------------------------------------------------------ entry point


@attrs.frozen(slots=True, eq=False)
class DatasetResult:
    """The outcome of :func:`settle_dataset`."""

    partitions: tuple[Partition, ...]
    rows: int
    point_values: Mapping[str, Decimal]
    paths: tuple[str, ...]
    summary: SettleSummary  # every partition's summary added up
    reduced: Reduced
    duplicates: int  # rows flagged as repeating an earlier case id

    @property
    def hospitals(self) -> dict[str, dict[str, int]]:
        """hospital id -> {cases, settled, payment, fund_payment, patient_share, total_cost}
        (amounts in cents)."""
        return self.summary.hospitals

    def total(self, name: str) -> int:
        """A region total (cents for amounts) over every hospital."""
        return self.summary.total(name)

    def table(self) -> pa.Table:
        """Every settled row, in dataset order (reads the part files back)."""
        return pa.concat_tables([pq.read_table(p) for p in self.paths])


def merge_summaries(
    summaries: Iterable[SettleSummary], point_values_: Mapping[str, Decimal] | None = None
) -> SettleSummary:
    out = SettleSummary()
    for s in summaries:
        out.rows += s.rows
        out.settled += s.settled
        out.by_class.update(s.by_class)
        out.by_reason.update(s.by_reason)
        for hosp, sums in s.hospitals.items():
            out.hospitals.setdefault(hosp, Counter()).update(sums)
        out.add_checks(s)
    out.hospitals = dict(sorted(out.hospitals.items()))
    out.point_values = dict(point_values_ or {})
    return out


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    """A fresh run: refuse a folder that holds part files (unless ``overwrite``), and clear
    an earlier run's manifest and leftovers (the manifest first: a half-cleared folder then
    has no manifest that would vouch for its parts)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stale = sorted(out_dir.glob("part-*.parquet"))
    if stale and not overwrite:
        raise CaseDataError(
            f"the output folder already holds {len(stale)} part file(s); "
            "choose an empty folder, pass overwrite=True, or resume=True to "
            "finish an interrupted run",
            file=out_dir,
        )
    Manifest.path_in(out_dir).unlink(missing_ok=True)
    for path in stale:
        path.unlink()
    _remove_leftovers(out_dir)


def _remove_leftovers(out_dir: Path) -> None:
    """Temporary files of a killed run (``atomic_output`` names them ``.<name>.*.part``), and
    the case-id fingerprints its first pass spilled."""
    for pattern in (".part-*.parquet.*.part", f".{MANIFEST_NAME}.*.part"):
        for path in out_dir.glob(pattern):
            path.unlink(missing_ok=True)
    remove_spill(out_dir)


def _absolute(spec: Any, kind: str = "file", names: Names | None = None) -> Any:
    """A relative path made absolute (workers may run in another folder). A registered
    policy id, ruleset id or region (``names`` knows them) stays as it is, as the registry
    resolves those first."""
    if not isinstance(spec, (str, os.PathLike)) or not os.path.exists(spec):
        return spec
    if kind != "file" and names is not None and names.is_registered(os.fspath(spec), kind):
        return spec
    return os.path.abspath(spec)


# ------------------------------------------------------------------ the manifest's contents


def _json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, Decimals strings), so that
    an identity built now compares equal to one read from a manifest."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _ruleset_hash(ruleset: Any) -> Any:
    if isinstance(ruleset, Ruleset):
        return ruleset.content_hash
    if isinstance(ruleset, RulesetSeries):
        return [[v.id, v.content_hash] for v in ruleset.ordered()]
    return ruleset  # None (the policy's) or a spec for grouped input, which needs none


def _identity(
    ctx: SettleContext,
    parts: Sequence[Partition],
    row_groups_per_partition: int,
    given: Reduced | None,
) -> dict[str, Any]:
    """Everything that decides the output bytes and must be the same when a run resumes."""
    from .. import __version__

    res = ctx.resources()
    files = list(dict.fromkeys(p.path for p in parts))
    hospitals = None
    if res.hospitals is not None:
        text = json.dumps(
            sorted(
                (k, [lvl, None if c is None else str(c)]) for k, (lvl, c) in res.hospitals.items()
            )
        )
        hospitals = hashlib.sha256(text.encode()).hexdigest()
    return _json(
        {
            "drgkit_version": __version__,
            "pyarrow_version": pa.__version__,  # writes created_by into every part file
            "inputs": [input_fingerprint(f) for f in files],
            "partitions": [[p.row_groups, p.rows] for p in parts],
            "policy_hash": res.policy.content_hash,
            "ruleset_hash": _ruleset_hash(res.ruleset),
            "hospitals_hash": hospitals,
            "options": {
                "layout": ctx.layout,
                "columns": ctx.columns,
                "keep": ctx.keep,
                "check_duplicates": ctx.check_duplicates,
                "row_groups_per_partition": row_groups_per_partition,
                "given_point_values": None
                if given is None
                else {k: str(v) for k, v in given.point_values.items()},
            },
        }
    )


def _partial_json(p: Partial | None) -> Any:
    if p is None:
        return None
    return {
        "points": dict(sorted(p.points.items())),
        "by_item": dict(sorted(p.by_item.items())),
        "cases": p.cases,
        "discharges": p.discharges,
        "review": [list(c) for c in p.review],
    }


def _partial_of(doc: Any) -> Partial | None:
    if doc is None:
        return None
    return Partial(
        {str(k): int(v) for k, v in doc["points"].items()},
        {str(k): int(v) for k, v in doc["by_item"].items()},
        int(doc["cases"]),
        int(doc.get("discharges", 0)),
        tuple(tuple(c) for c in doc.get("review", ())),
    )


def _first_pass_json(reduction: Reduction) -> dict[str, Any]:
    """The reduction, exactly: Decimals as their strings, integers as JSON integers."""
    reduced = reduction.reduced
    return {
        "point_values": {k: str(v) for k, v in reduced.point_values.items()},
        "totals": _partial_json(reduced.totals),
        "approved": sorted(reduced.approved),
        "offsets": {
            str(k): {pool: list(v) for pool, v in sorted(o.items())}
            for k, o in sorted(reduced.offsets.items())
        },
        "duplicates": {
            str(k): {"start": d.start, "rows": d.rows.tolist(), "first": d.first.tolist()}
            for k, d in sorted(reduction.duplicates.items())
        },
        "corrections": {str(k): v.tolist() for k, v in sorted(reduction.corrections.items())},
    }


def _reduction_of(doc: Mapping[str, Any]) -> Reduction:
    reduced = Reduced(
        {str(k): Decimal(v) for k, v in doc["point_values"].items()},
        _partial_of(doc["totals"]),
        frozenset(doc.get("approved", ())),
        {
            int(k): {str(pool): (int(v[0]), int(v[1])) for pool, v in o.items()}
            for k, o in doc.get("offsets", {}).items()
        },
    )
    duplicates = {
        int(k): KnownDuplicates(
            int(d["start"]), np.asarray(d["rows"], np.int64), np.asarray(d["first"], np.int64)
        )
        for k, d in doc["duplicates"].items()
    }
    corrections = {int(k): np.asarray(v, np.int64) for k, v in doc["corrections"].items()}
    return Reduction(reduced, duplicates, corrections)


def _summary_json(s: SettleSummary) -> dict[str, Any]:
    return {
        "rows": s.rows,
        "settled": s.settled,
        "by_class": dict(s.by_class),
        "by_reason": dict(s.by_reason),
        "hospitals": {h: dict(v) for h, v in s.hospitals.items()},
        "foreign": dict(s.foreign),
        "foreign_not_covered": dict(s.foreign_not_covered),
        "shares_capped": s.shares_capped,
    }


def _summary_of(doc: Mapping[str, Any]) -> SettleSummary:
    return SettleSummary(
        int(doc["rows"]),
        int(doc["settled"]),
        Counter(doc["by_class"]),
        Counter(doc["by_reason"]),
        {h: Counter(v) for h, v in doc["hospitals"].items()},
        foreign=Counter(doc.get("foreign", {})),
        foreign_not_covered=Counter(doc.get("foreign_not_covered", {})),
        shares_capped=int(doc.get("shares_capped", 0)),
    )


def _resume_from(
    manifest: Manifest, identity: Mapping[str, Any], out: Path
) -> tuple[Reduction, set[int]]:
    """The stored reduction and the parts that are done, or an error naming what changed."""
    changed = manifest.differences(identity)
    if changed:
        raise ManifestError(
            "cannot resume: the run would not give the output the manifest "
            "describes (" + "; ".join(changed) + "). Settle again without "
            "resume, with overwrite=True",
            file=Manifest.path_in(out),
        )
    try:
        reduction = _reduction_of(manifest.first_pass)
        for record in manifest.parts.values():
            _summary_of(record.info)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise ManifestError(
            f"the manifest's first-pass results do not read back: {exc!r}",
            file=Manifest.path_in(out),
        ) from None
    _remove_leftovers(out)
    return reduction, manifest.verified_parts(out)


# ------------------------------------------------------------------ entry point


def settle_dataset(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    policy: Any,
    ruleset: Any = None,
    *,
    weights: Any = None,
    runner: Any = None,
    overrides: Mapping[str, Any] | None = None,
    hospitals: Any = None,
    layout: str | None = None,
    columns: Mapping[str, str] | None = None,
    keep: Sequence[str] | None = None,
    check_duplicates: bool = True,
    batch_rows: int | None = None,
    threads: int | None = None,
    row_groups_per_partition: int = 1,
    reduced: Reduced | None = None,
    overwrite: bool = False,
    resume: bool = False,
) -> DatasetResult:
    """Settle a partitioned Parquet dataset into ``out_dir/part-NNNNN.parquet``, one part
    file per partition, in two passes (see the module documentation).

    ``source``: a folder of Parquet files, a list of them, or one file (split by row groups,
    ``row_groups_per_partition`` each). ``runner``: :class:`LocalRunner` (default) or
    :class:`DaskRunner`. ``reduced``: point values decided elsewhere (pass 1 then only reads
    the case ids). ``resume``: finish an interrupted run in ``out_dir`` from its manifest
    (without one, a fresh run); a :class:`~drgkit._runners.ManifestError` says what differs
    when the inputs, policy, ruleset, hospitals, options or drgkit version changed since.
    ``overwrite``: a fresh run may replace the part files of an earlier one. The other options
    are those of :func:`~drgkit.settlement.settle`. The part files, concatenated in order,
    equal ``settle()`` of the whole dataset in one process; the output does not depend on the
    runner, the batch size, the number of threads or on being resumed.
    """
    ctx = SettleContext(
        _absolute(policy, "policy", RESOLVER),
        _absolute(ruleset, "ruleset", RESOLVER),
        _absolute(weights),
        overrides,
        _absolute(hospitals),
        layout,
        columns,
        keep,
        check_duplicates,
        batch_rows or DEFAULT_BATCH_ROWS,
        threads,
        names=RESOLVER,
    )
    parts = partitions_of(source, row_groups_per_partition=row_groups_per_partition)
    out = Path(out_dir).absolute()
    runner = runner if runner is not None else LocalRunner()
    ctx.resources()  # fail early, in the driver, on a bad policy or ruleset
    identity = _identity(ctx, parts, row_groups_per_partition, reduced)
    manifest = Manifest.read(out) if resume and out.is_dir() else None
    if manifest is not None:
        reduction, done = _resume_from(manifest, identity, out)
    else:
        _prepare_out_dir(out, overwrite)
        # the case-id fingerprints go to files, grouped by shard, so that the driver holds
        # one shard's ids at a time, not the whole dataset's (workers write them: they share
        # the output folder with the driver, as they write the part files there too)
        rows = sum(p.rows for p in parts)
        with spill_area(out, rows, ctx.check_duplicates) as spill:
            facts = runner.map(
                partial_of_partition,
                [ctx] * len(parts),
                parts,
                [None if reduced is None else False] * len(parts),
                [spill] * len(parts),
            )
            reduction = reduce_facts(ctx, parts, facts, runner, reduced=reduced)
        manifest = Manifest(identity, _first_pass_json(reduction))
        manifest.write(out)
        done = set()

    def record(o: PartitionOutput) -> None:
        manifest.parts[o.index] = PartRecord(
            Path(o.path).name, o.rows, o.sha256, _summary_json(o.summary)
        )
        manifest.write(out)

    todo = [p for p in parts if p.index not in done]
    runner.map(
        settle_partition,
        [ctx] * len(todo),
        todo,
        [reduction.reduced] * len(todo),
        [reduction.duplicates.get(p.index) for p in todo],
        [str(out)] * len(todo),
        done=record,
    )
    point_values_ = dict(reduction.reduced.point_values)
    summary = merge_summaries(
        (_summary_of(manifest.parts[p.index].info) for p in parts), point_values_
    )
    for message in summary.data_warnings(ctx.resources().policy):  # merged from every part
        warnings.warn(message, DataWarning, stacklevel=2)
    return DatasetResult(
        tuple(parts),
        summary.rows,
        point_values_,
        tuple(str(out / PART_NAME.format(p.index)) for p in parts),
        summary,
        reduction.reduced,
        reduction.duplicate_rows,
    )
