"""What every command module shares: the user-error type and the plain-text renderings."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import click

#: a mistake on the command line or in the input (drgkit errors, click usage errors)
EXIT_USAGE = 2
#: the run failed for another reason: the machine (OS errors), a plugin, or a bug
EXIT_RUNTIME = 1


class UserError(click.ClickException):
    """A mistake the user can fix: one line, exit code 2."""

    exit_code = EXIT_USAGE


def print_group_summary(summary: Any, elapsed: float) -> None:
    """The summary of a grouping run: counts by status and reason, and the data warnings."""
    from ..grouping._status import REASONS

    total = summary.rows or 1
    rate = summary.rows / max(elapsed, 1e-9)
    click.echo(f"{summary.rows:,} cases in {elapsed:.2f} s ({rate:,.0f} cases/s); {summary.layout}")
    for status in ("ok", "ungroupable", "ambiguous", "invalid"):
        n = summary.by_status.get(status, 0)
        click.echo(f"  {status:<12} {n:>10,}  {100 * n / total:6.2f}%")
    if summary.by_reason:
        click.echo("  reasons:")
        for code, n in summary.by_reason.most_common():
            click.echo(f"    {code:<28} {n:>10,}  {REASONS[code].zh}")
    if len(summary.by_ruleset) > 1 or "-" in summary.by_ruleset:
        click.echo(
            "  by ruleset version: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(summary.by_ruleset.items()))
        )
    for message in summary.warnings:
        click.echo(f"  warning: {message}")


def print_dip_summary(summary: Any, elapsed: float, top: int = 0) -> None:
    """The summary of a DIP grouping run: counts by status, reason, packet kind and tier (and
    the ``top`` most frequent packets)."""
    from ..grouping._dip import DIP_REASONS

    total = summary.cases or 1
    rate = summary.cases / max(elapsed, 1e-9)
    click.echo(f"{summary.cases:,} cases in {elapsed:.2f} s ({rate:,.0f} cases/s); DIP")
    for status in ("ok", "ungroupable", "invalid"):
        n = summary.by_status.get(status, 0)
        click.echo(f"  {status:<15} {n:>10,}  {100 * n / total:6.2f}%")
    reasons = {k: v for k, v in summary.by_reason.items() if k != "none"}
    if reasons:
        click.echo("  reasons:")
        for code, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            click.echo(f"    {code:<28} {n:>10,}  {DIP_REASONS[code].zh}")
    for title, counts in (("packet kinds", summary.by_packet_kind), ("tiers", summary.by_tier)):
        shown = {k: v for k, v in counts.items() if k != "none"}
        if shown:
            click.echo(f"  {title}:")
            for name, n in sorted(shown.items(), key=lambda kv: -kv[1]):
                click.echo(f"    {name:<15} {n:>10,}  {100 * n / total:6.2f}%")
    packets = sorted(
        ((k, v) for k, v in summary.by_packet.items() if k != "none"),
        key=lambda kv: (-kv[1], kv[0]),
    )
    if top and packets:
        click.echo("  most frequent packets: " + ", ".join(f"{k} {v:,}" for k, v in packets[:top]))


def money(cents: int) -> str:
    """Cents as ``1,234.56`` yuan."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100:,}.{cents % 100:02d}"


def print_settle_summary(summary: Any, elapsed: float) -> None:
    """The summary of a settlement run: classes, reasons, point values and per-hospital sums."""
    click.echo(f"{summary.rows:,} cases in {elapsed:.2f} s; settled {summary.settled:,}")
    for name, count in summary.by_class.most_common():
        click.echo(f"  {name:<15} {count:>10,}")
    if summary.by_reason:
        click.echo(
            "  not settled: " + ", ".join(f"{k} {v:,}" for k, v in summary.by_reason.most_common())
        )
    for pool, value in summary.point_values.items():
        click.echo(f"  point value ({pool}): {value} yuan per point")
    click.echo(
        f"  {'hospital':<14} {'cases':>8} {'payment':>18} {'fund':>18} {'cost':>18} "
        f"{'gain/loss':>16}"
    )
    for hosp, sums in sorted(summary.hospitals.items()):
        click.echo(
            f"  {hosp or '-':<14} {sums['cases']:>8,} {money(sums['payment']):>18} "
            f"{money(sums['fund_payment']):>18} {money(sums['total_cost']):>18} "
            f"{money(sums['payment'] - sums['total_cost']):>16}"
        )
    total = {k: summary.total(k) for k in ("cases", "payment", "fund_payment", "total_cost")}
    click.echo(
        f"  {'total':<14} {total['cases']:>8,} {money(total['payment']):>18} "
        f"{money(total['fund_payment']):>18} {money(total['total_cost']):>18} "
        f"{money(total['payment'] - total['total_cost']):>16}"
    )


def print_accounting(summary: Any) -> None:
    """``rows: N in = N out + N rejected`` when the library accounts for the rows it read."""
    counts = [getattr(summary, name, None) for name in ("rows_in", "rows_out", "rows_rejected")]
    if None not in counts:
        rows_in, rows_out, rejected = counts
        click.echo(f"rows: {rows_in:,} in = {rows_out:,} out + {rejected:,} rejected")


def render_table(table: Any, limit: int = 30) -> str:
    """A plain text rendering of a small Arrow table."""
    names = table.column_names
    rows = [
        ["" if v is None else str(v) for v in row.values()]
        for row in table.slice(0, limit).to_pylist()
    ]
    widths = [max([len(n), *(len(r[k]) for r in rows)]) for k, n in enumerate(names)]
    lines = ["  ".join(n.rjust(w) for n, w in zip(names, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    if table.num_rows > limit:
        lines.append(f"… {table.num_rows - limit} more rows")
    return "\n".join(lines)


def indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def write_table(target: Any, data: Any) -> None:
    """Write an Arrow table to CSV or Parquet (by suffix) through drgkit's atomic writer."""
    from .._write import open_writer

    with open_writer(target) as writer:
        for batch in data.to_batches():
            writer.write(batch)
        writer.close(data.schema)


@contextlib.contextmanager
def progress_bar(label: str, silent: bool) -> Iterator[Callable[[float, int], None] | None]:
    """A progress callback ``(fraction, rows)`` drawing a bar on stderr; ``None`` when silent."""
    if silent:
        yield None
        return
    with click.progressbar(length=1000, label=label, file=sys.stderr, show_eta=True) as bar:
        state = {"done": 0}

        def progress(fraction: float, rows: int) -> None:
            step = int(fraction * 1000) - state["done"]
            if step > 0:
                bar.update(step)
                state["done"] += step

        yield progress
        bar.update(1000 - state["done"])


@contextlib.contextmanager
def data_warnings() -> Iterator[list[str]]:
    """Collect the library's data warnings during a run; on the way out, show each distinct one
    once on stderr (``warning: …``), in the order they first came.

    A warning such as "no column for sex" is the only sign that every case will come out
    unsettled for a reason the user can fix; it must not be swallowed.
    """
    from .._io import DataWarning

    seen: list[str] = []
    others: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DataWarning)
            try:
                yield seen
            finally:
                for item in caught:
                    if not issubclass(item.category, DataWarning):
                        others.append(item)  # not ours to judge: re-issued below
                    elif str(item.message) not in seen:
                        seen.append(str(item.message))
    finally:
        for item in others:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
        for text in seen:
            click.echo(f"warning: {text}", err=True)
