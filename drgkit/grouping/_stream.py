"""The grouping entry points: :func:`group_batches` streams results batch by batch,
:func:`group` collects them into one table, :func:`group_file` writes them to a file
atomically (with an optional rejects file). The work per batch is :class:`GroupRun`'s."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pyarrow as pa

from .._codes import IdTracker, fingerprints
from .._duplicates import (
    KnownDuplicates,
    PartitionIds,
    SpillTo,
    partition_ids,
    resolve_duplicates,
    spill_area,
)
from .._io import (
    DEFAULT_BATCH_ROWS,
    CaseSource,
    DataWarning,
    check_batch_rows,
    open_cases,
    prefetch,
    write_behind,
)
from .._jit import set_threads
from .._jit import threads as thread_limit
from .._resolve import RESOLVER, Names
from .._runners import PART_NAME, LocalRunner, Partition, PartWriter, partitions_of
from .._write import check_not_input, open_writer, write_rejects
from ..errors import CaseDataError
from ..ruleset._model import Ruleset
from ..schema import Layout
from ._group import MISTAKES, GroupRun, GroupSummary

__all__ = ["GroupDatasetResult", "group", "group_batches", "group_dataset", "group_file"]

#: batches waiting between the stages when pipelining (read ahead, and results waiting to be
#: written): one keeps reading, grouping and writing busy at once; each more holds another
#: batch (about 35 MB at the default 262,144 rows) in memory
_PREFETCH_DEPTH = 1


def group_batches(
    cases: Any,
    ruleset: Any,
    *,
    layout: str | Layout | None = None,
    columns: dict[str, str] | None = None,
    translate: bool = False,
    keep: Sequence[str] | str | None = None,
    check_duplicates: bool = True,
    batch_rows: int | None = None,
    encoding: str = "utf-8",
    threads: int | None = None,
    run_hook: Callable[[GroupRun, CaseSource], None] | None = None,
    value_checks: str = "format",
    malformed_as_rows: bool = True,
    pipeline: bool = True,
) -> Iterator[pa.RecordBatch]:
    """Group cases batch by batch; yields one result batch per input batch, in order.

    ``pipeline``: read (and decode) the next batches of a CSV or Parquet file in a background
    thread while the current one is grouped (:func:`drgkit._io.prefetch`); the results are
    the same either way, in the same batches.

    CSV lines that cannot be read as cases (see :class:`~drgkit._io.MalformedRow`) come
    last, as ``invalid``/``malformed_row`` rows naming line and reason, unless
    ``malformed_as_rows`` is false: then the caller takes them from the source
    (``run_hook``) and accounts for them itself (:func:`group_file` writes a rejects file).
    ``value_checks``: see :class:`GroupRun`.
    """
    if batch_rows is not None:
        check_batch_rows(batch_rows)
    target = RESOLVER.ruleset(ruleset)
    src = open_cases(
        cases, encoding=encoding, **({"batch_rows": batch_rows} if batch_rows is not None else {})
    )
    run = GroupRun(
        target,
        src.schema,
        src.name,
        layout=layout,
        columns=columns,
        translate=translate,
        keep=keep,
        check_duplicates=check_duplicates,
        # sized for the whole input when its size is known: growing the table rehashes it
        tracker=IdTracker.for_rows(src.num_rows) if check_duplicates and src.num_rows else None,
        value_checks=value_checks,
        layouts=RESOLVER.layouts,
    )
    if run_hook is not None:
        run_hook(run, src)
    previous = set_threads(threads) if threads else None
    summary = run.summary
    batches = src.batches
    if pipeline and isinstance(cases, (str, os.PathLike)):
        batches = prefetch(batches, _PREFETCH_DEPTH)
    try:
        for batch in batches:
            yield run.process(batch)
        if malformed_as_rows:
            tail = run.malformed_rows(src.malformed, src.schema.names)
            if tail is not None:
                yield tail
        else:
            summary.rows_rejected = len(src.malformed)
        for kind, (count, example) in run.mistakes().items():
            run.summary.warnings.append(
                f"{run.source}: {count:,} case(s) with {MISTAKES[kind]}, e.g. {example}"
            )
        for label, (count, example) in run.implausible().items():
            run.summary.warnings.append(
                f"{run.source}: {count:,} case(s) with an implausible {label}, e.g. {example}; "
                "grouped as the ruleset format prescribes (--value-checks strict: invalid)"
            )
        counts = src.counts
        summary.rows_in = counts.rows if counts is not None else summary.rows
        summary.blank_lines = counts.blank_lines if counts is not None else 0
        summary.rows_out = summary.rows
        if summary.rows_in != summary.rows_out + summary.rows_rejected:  # a bug, never data
            raise AssertionError(
                f"{src.name}: {summary.rows_in} rows read but "
                f"{summary.rows_out} written and {summary.rows_rejected} "
                "rejected"
            )
    finally:
        close = getattr(batches, "close", None)
        if close is not None and batches is not src.batches:
            close()  # stops the reading thread when the caller stops early
        if previous is not None:
            set_threads(previous)


def group(cases: Any, ruleset: Any, **options: Any) -> pa.Table:
    """Group cases and return one Arrow table: every input row, in order, with its result.

    ``cases``: a CSV/Parquet path, Arrow table/batches/reader, pandas or polars frame.
    ``ruleset``: a :class:`Ruleset`, a :class:`RulesetSeries`, a registered id or region, or a
    folder path. See :func:`group_batches` for the options.
    """
    schema_holder: list[pa.Schema] = []

    def hook(run: GroupRun, _src: CaseSource) -> None:
        schema_holder.append(run.schema)

    batches = list(group_batches(cases, ruleset, run_hook=hook, **options))
    return pa.Table.from_batches(batches, schema=schema_holder[0])


def group_file(
    cases: Any,
    out: str | os.PathLike[str],
    ruleset: Any,
    *,
    out_format: str | None = None,
    progress: Callable[[float, int], None] | None = None,
    rejects: str | os.PathLike[str] | None = None,
    **options: Any,
) -> GroupSummary:
    """Stream cases from ``cases`` to ``out`` (CSV or Parquet by extension), batch by batch.

    ``progress(fraction, rows)`` is called after each batch when given.

    Rows accounted: every input row ends up in exactly one place. CSV lines that cannot be
    read as cases go to the ``rejects`` file when one is given (file, line, column, reason,
    raw text; written atomically, header only when there are none) and are then *not* in
    the output; without ``rejects`` they stay in the output as ``invalid``/``malformed_row``
    rows. Either way ``summary.rows_in == summary.rows_out + summary.rows_rejected``. Blank
    lines are not rows (``summary.blank_lines``). ``out`` (and ``rejects``) may not name the
    input file.
    """
    check_not_input(out, cases)
    if rejects is not None:
        check_not_input(rejects, cases)
        if Path(rejects).resolve() == Path(out).resolve():
            raise CaseDataError("the rejects file and the output are the same file", file=rejects)
    if "batch_rows" in options and options["batch_rows"] is not None:
        check_batch_rows(options["batch_rows"])
    state: dict[str, Any] = {}

    def hook(run: GroupRun, src: CaseSource) -> None:
        state["run"], state["src"] = run, src

    pipeline = options.get("pipeline", True)
    with (
        open_writer(out, out_format) as writer,
        write_behind(writer, _PREFETCH_DEPTH if pipeline else 0) as write,
    ):
        for batch in group_batches(
            cases, ruleset, run_hook=hook, malformed_as_rows=rejects is None, **options
        ):
            write(batch)
            if progress is not None:
                src = state["src"]
                if src.progress is not None:
                    fraction = src.progress()
                elif src.num_rows:
                    fraction = state["run"].rows_done / src.num_rows
                else:
                    fraction = 0.0
                progress(min(1.0, fraction), state["run"].rows_done)
        write(None)  # every batch is written (or its error raised) before the file closes
        if rejects is not None:
            # written before the output is renamed into place: an output never appears
            # without its rejects file
            write_rejects(rejects, state["src"].malformed, state["src"].name)
        writer.close(state["run"].schema if "run" in state else None)
    return state["run"].summary


# ------------------------------------------------------------------ partitioned datasets


@attrs.frozen(slots=True)
class GroupDatasetResult:
    """The outcome of :func:`group_dataset`: the part files in partition order and the
    summary of the whole run (every part's counts added up)."""

    paths: tuple[str, ...]
    rows: int
    summary: GroupSummary


@attrs.frozen(slots=True)
class _GroupTask:
    """What every partition's task needs, small and picklable (a ruleset by its spec, which
    each worker resolves and loads from the drgkit cache)."""

    ruleset: Any
    options: tuple[tuple[str, Any], ...]
    batch_rows: int
    threads: int | None
    #: the names a worker resolves the ruleset with (group_dataset passes drgkit's resolver)
    names: Names

    def run(self, part: Partition, tracker: Any) -> GroupRun:
        options = dict(self.options)
        return GroupRun(
            self.names.ruleset(self.ruleset),
            part.schema(),
            part.name,
            tracker=tracker,
            row_offset=part.start,
            layouts=self.names.layouts,
            **options,
        )


def _id_fingerprints(task: _GroupTask, part: Partition, spill: SpillTo | None) -> PartitionIds:
    """Pass 1 of one partition: the fingerprints of its case ids, as grouping reads them,
    spilled to a file in ``spill.folder`` (grouped by shard) so that the driver never holds
    every partition's (see :mod:`drgkit._duplicates`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # the driver warns once
        run = task.run(part, tracker=None)
    chunks = [np.zeros((0, 2), dtype=np.uint64)]
    row0 = part.start
    for batch in part.batches(task.batch_rows):
        column = run.plan.column(batch, "case_id")
        chunks.append(fingerprints(run.case_ids(column, batch.num_rows, row0)))
        row0 += batch.num_rows
    return partition_ids(part, np.concatenate(chunks), spill)


def _group_partition(
    task: _GroupTask, part: Partition, repeats: KnownDuplicates | None, out_dir: str
) -> tuple[str, GroupSummary]:
    """Pass 2 of one partition: group it into its part file."""
    path = Path(out_dir) / PART_NAME.format(part.index)
    with thread_limit(task.threads), warnings.catch_warnings():
        # the driver warns once for the whole dataset (pass 1 saw every partition's columns)
        warnings.simplefilter("ignore", DataWarning)
        run = task.run(part, tracker=repeats)
        with PartWriter(path, run.schema) as writer:
            for batch in part.batches(task.batch_rows):
                writer.write(run.process(batch))
    summary = run.summary
    summary.rows_in = summary.rows_out = summary.rows
    return str(path), summary


def group_dataset(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    ruleset: Any,
    *,
    runner: Any = None,
    row_groups_per_partition: int = 1,
    overwrite: bool = False,
    layout: str | None = None,
    columns: dict[str, str] | None = None,
    translate: bool = False,
    keep: Sequence[str] | None = None,
    check_duplicates: bool = True,
    batch_rows: int | None = None,
    threads: int | None = None,
    value_checks: str = "format",
) -> GroupDatasetResult:
    """Group a partitioned Parquet dataset into ``out_dir/part-NNNNN.parquet``, one part file
    per partition, on a runner (:class:`~drgkit._runners.LocalRunner`, the default, or
    :class:`~drgkit._runners.DaskRunner`).

    ``source``: a folder of Parquet files, a list of them, or one file (split by row groups,
    ``row_groups_per_partition`` each). The part files, read in order, hold exactly the rows
    and values :func:`group` gives for the whole dataset in one process, whatever the runner,
    batch size or threads: rows are numbered over the whole dataset, and a case id repeated
    in another partition is found (pass 1 spills every partition's id fingerprints to
    ``out_dir/.duplicate-ids.tmp``, removed after it; the driver resolves the repeats in
    dataset order one shard at a time, so its memory does not grow with the number of cases:
    :mod:`drgkit._duplicates`, shared with ``settle_dataset``). Each part's row groups are
    cut and dictionary-encoded the same way whatever the batches, so the bytes do not depend
    on them either.
    ``overwrite``: replace the part files of an earlier run in ``out_dir``.
    """
    if batch_rows is not None:
        check_batch_rows(batch_rows)
    spec = ruleset
    if isinstance(spec, (str, os.PathLike)) and os.path.exists(spec):
        spec = os.path.abspath(spec)  # workers may run in another folder
    target = RESOLVER.ruleset(spec)  # fails early, in the driver, on a bad ruleset
    if isinstance(target, Ruleset):  # workers load it by its folder (from the drgkit cache)
        spec = os.path.abspath(target.info.path)
    elif not isinstance(spec, str):
        spec = target.region  # a series: by its region, which the workers' registry knows
    parts = partitions_of(source, row_groups_per_partition=row_groups_per_partition)
    options = dict(
        layout=layout,
        columns=columns,
        translate=translate,
        keep=list(keep) if keep else None,
        check_duplicates=False,  # repeats come from pass 1 (the driver's tracker)
        value_checks=value_checks,
    )
    task = _GroupTask(
        spec, tuple(sorted(options.items())), batch_rows or DEFAULT_BATCH_ROWS, threads, RESOLVER
    )
    # the input's problems are reported once, here, and not by every worker
    GroupRun(target, parts[0].schema(), str(source), layouts=RESOLVER.layouts, **options)
    out = Path(out_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    stale = sorted(out.glob("part-*.parquet"))
    if stale and not overwrite:
        raise CaseDataError(
            f"the output folder already holds {len(stale)} part file(s); choose an empty "
            "folder or pass overwrite=True",
            file=out,
        )
    for path in stale:
        path.unlink()
    runner = runner if runner is not None else LocalRunner()
    repeats: list[KnownDuplicates | None] = [None] * len(parts)
    if check_duplicates:
        # the ids go to files in out_dir, grouped by shard, and are resolved one shard at a
        # time: the driver's memory does not grow with the number of cases
        with spill_area(out, sum(p.rows for p in parts)) as spill:
            ids = runner.map(_id_fingerprints, [task] * len(parts), parts, [spill] * len(parts))
            found, _counted = resolve_duplicates(parts, ids)
        repeats = [found.get(p.index) for p in parts]
    done = runner.map(
        _group_partition, [task] * len(parts), parts, repeats, [str(out)] * len(parts)
    )
    summary = GroupSummary(layout=done[0][1].layout if done else "")
    for _path, s in done:
        summary.rows += s.rows
        summary.rows_in += s.rows_in
        summary.rows_out += s.rows_out
        for name in ("by_status", "by_reason", "by_ruleset", "by_drg"):
            getattr(summary, name).update(getattr(s, name))
    return GroupDatasetResult(tuple(p for p, _s in done), summary.rows, summary)
