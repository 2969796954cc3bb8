"""Settlement of cases under a policy: the entry points (:func:`settle`, :func:`settle_batches`,
:func:`settle_file`), per batch, exact, in two passes when points need it.

The parts live in their own modules: ``_run`` (:class:`SettleRun`, one run's state: prepare,
partial sums, finish), ``_sums`` (partial sums, point values, run totals), ``_output`` (the
settled-case schema and column assembly) and ``_inputs`` (hospitals table, policy and ruleset
lookup). Partial sums are integers, so results do not depend on how the cases are batched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from .._io import CaseSource, open_cases, prefetch, write_behind
from .._jit import set_threads
from .._resolve import RESOLVER
from .._write import check_not_input, open_writer, write_rejects
from ..errors import CaseDataError
from ..schema import Layout
from ._output import PAYMENT_CLASSES, read_settled, settle_schema
from ._run import SettleRun
from ._schemes import run_class, two_pass
from ._sums import Partial, Reduced, SettleSummary, point_values

__all__ = [
    "PAYMENT_CLASSES",
    "Partial",
    "Reduced",
    "SettleRun",
    "SettleSummary",
    "point_values",
    "read_settled",
    "settle",
    "settle_batches",
    "settle_file",
    "settle_schema",
]


def settle_batches(
    cases: Any,
    policy: Any,
    ruleset: Any = None,
    *,
    weights: Any = None,
    hospitals: Any = None,
    layout: str | Layout | None = None,
    columns: dict[str, str] | None = None,
    keep: Sequence[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    reduced: Reduced | None = None,
    batch_rows: int | None = None,
    threads: int | None = None,
    check_duplicates: bool = True,
    encoding: str = "utf-8",
    run_hook: Any = None,
    rejects_ok: bool = False,
    pipeline: bool = True,
) -> Iterator[pa.RecordBatch]:
    """Settle cases batch by batch. The points method reads the input twice (first pass:
    partial sums for the point values) unless ``reduced`` gives the point values.

    CSV lines that cannot be read as cases are an error unless ``rejects_ok`` (the caller
    then takes them from the source and writes a rejects file, see :func:`settle_file`).

    ``pipeline``: read (and decode) the next batch of a CSV or Parquet file in a background
    thread while the current one is grouped and settled (:func:`drgkit._io.prefetch`); the
    results are the same either way, in the same batches."""
    pol = RESOLVER.policy(policy, weights, overrides)
    rs = ruleset  # resolved by SettleRun through RESOLVER, only when the cases need grouping
    kwargs = {
        "encoding": encoding,
        **({"batch_rows": batch_rows} if batch_rows is not None else {}),
    }
    previous = set_threads(threads) if threads else None
    try:
        Run = run_class(pol)
        if two_pass(pol) and reduced is None:
            if not isinstance(cases, (str, os.PathLike, pa.Table, pa.RecordBatch, list)) and type(
                cases
            ).__module__.split(".")[0] not in ("pandas", "polars"):
                # a one-shot stream: keep it in memory to read it twice
                src = open_cases(cases, **kwargs)
                cases = pa.Table.from_batches(list(src.batches), schema=src.schema)
            src = open_cases(cases, **kwargs)
            first = Run(
                pol,
                rs,
                src.schema,
                src.name,
                layout=layout,
                columns=columns,
                hospitals=hospitals,
                keep=keep,
                check_duplicates=check_duplicates,
                names=RESOLVER,
            )
            total = Partial.zero()
            for batch in _read_ahead(src, cases, pipeline):
                total = total + first.partial(first.prepare(batch))
            reduced = point_values(pol, total)
        src = open_cases(cases, **kwargs)
        run = Run(
            pol,
            rs,
            src.schema,
            src.name,
            layout=layout,
            columns=columns,
            hospitals=hospitals,
            keep=keep,
            check_duplicates=check_duplicates,
            names=RESOLVER,
        )
        if reduced is not None:
            run.summary.point_values = dict(reduced.point_values)
        if run_hook is not None:
            run_hook(run, src)
        batches = _read_ahead(src, cases, pipeline)
        try:
            for batch in batches:
                yield run.finish(run.prepare(batch), reduced)
        finally:
            close = getattr(batches, "close", None)
            if close is not None and batches is not src.batches:
                close()  # stops the reading thread when the caller stops early
        run.warn_data()
        # grouped or not, an unreadable line is never dropped silently
        if src.malformed and not rejects_ok:
            raise CaseDataError(
                f"{len(src.malformed)} line(s) of the input could not be "
                f"read as cases (the first: {src.malformed[0].describe()}); "
                "give a rejects file or group the file first (drgkit group) "
                "to see them",
                file=src.name,
            )
        run.summary.rows_rejected = len(src.malformed)
        run.summary.rows_out = run.summary.rows
        run.summary.rows_in = src.counts.rows if src.counts is not None else run.summary.rows
    finally:
        if previous is not None:
            set_threads(previous)


def _read_ahead(src: CaseSource, cases: Any, pipeline: bool) -> Any:
    """The batches of ``src``, read ahead in a background thread when ``cases`` is a file (an
    in-memory table has nothing to decode; a caller's stream stays in the caller's thread)."""
    if pipeline and isinstance(cases, (str, os.PathLike)):
        return prefetch(src.batches, _PREFETCH_DEPTH)
    return src.batches


#: batches waiting between the stages (read ahead, written behind); each more holds another
#: batch in memory
_PREFETCH_DEPTH = 1


def settle(cases: Any, policy: Any, ruleset: Any = None, **options: Any) -> pa.Table:
    """Settle cases under ``policy`` (grouping them with ``ruleset`` first when they are not
    grouped yet) and return one Arrow table: every input row, in order."""
    holder: list[pa.Schema] = []
    batches = list(
        settle_batches(
            cases, policy, ruleset, run_hook=lambda run, _src: holder.append(run.schema), **options
        )
    )
    return pa.Table.from_batches(batches, schema=holder[0])


def settle_file(
    cases: Any,
    out: str | os.PathLike[str],
    policy: Any,
    ruleset: Any = None,
    *,
    out_format: str | None = None,
    progress: Any = None,
    rejects: str | os.PathLike[str] | None = None,
    **options: Any,
) -> SettleSummary:
    """Stream cases from ``cases`` to ``out`` (CSV or Parquet); returns the run's totals.

    ``rejects``: where CSV lines that cannot be read as cases go (see
    :func:`drgkit.group_file`); without it such lines are an error. ``out`` may not name
    the input."""
    check_not_input(out, cases)
    if rejects is not None:
        check_not_input(rejects, cases, out)
    writer = open_writer(out, out_format)
    state: dict[str, Any] = {}

    def hook(run: SettleRun, src: CaseSource) -> None:
        state["run"], state["src"] = run, src

    depth = _PREFETCH_DEPTH if options.get("pipeline", True) else 0
    try:
        # results are written behind by a background thread (Parquet encoding and compression
        # run without the GIL) while the next batch is settled
        with write_behind(writer, depth) as write:
            for batch in settle_batches(
                cases, policy, ruleset, run_hook=hook, rejects_ok=rejects is not None, **options
            ):
                write(batch)
                if progress is not None:
                    src = state["src"]
                    fraction = (
                        src.progress()
                        if src.progress
                        else (state["run"].rows_done / src.num_rows if src.num_rows else 0.0)
                    )
                    progress(min(1.0, fraction), state["run"].rows_done)
            write(None)  # every batch is written (or its error raised) before the file closes
        if rejects is not None:
            write_rejects(rejects, state["src"].malformed, state["src"].name)
    except BaseException:
        writer.abort()
        raise
    writer.close(state["run"].schema if "run" in state else None)
    return state["run"].summary
