"""The grouping entry points: :func:`group_batches` streams results batch by batch,
:func:`group` collects them into one table, :func:`group_file` writes them to a file
atomically (with an optional rejects file). The work per batch is :class:`GroupRun`'s."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from .._io import CaseSource, check_batch_rows, open_cases
from .._jit import set_threads
from .._resolve import RESOLVER
from .._write import check_not_input, open_writer, write_rejects
from ..errors import CaseDataError
from ..schema import Layout
from ._group import MISTAKES, GroupRun, GroupSummary

__all__ = ["group", "group_batches", "group_file"]


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
) -> Iterator[pa.RecordBatch]:
    """Group cases batch by batch; yields one result batch per input batch, in order.

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
        value_checks=value_checks,
        layouts=RESOLVER.layouts,
    )
    if run_hook is not None:
        run_hook(run, src)
    previous = set_threads(threads) if threads else None
    summary = run.summary
    try:
        for batch in src.batches:
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

    with open_writer(out, out_format) as writer:
        for batch in group_batches(
            cases, ruleset, run_hook=hook, malformed_as_rows=rejects is None, **options
        ):
            writer.write(batch)
            if progress is not None:
                src = state["src"]
                if src.progress is not None:
                    fraction = src.progress()
                elif src.num_rows:
                    fraction = state["run"].rows_done / src.num_rows
                else:
                    fraction = 0.0
                progress(min(1.0, fraction), state["run"].rows_done)
        if rejects is not None:
            # written before the output is renamed into place: an output never appears
            # without its rejects file
            write_rejects(rejects, state["src"].malformed, state["src"].name)
        writer.close(state["run"].schema if "run" in state else None)
    return state["run"].summary
