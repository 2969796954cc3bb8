"""``drgkit calibrate``: relative weights per DRG from history (the rules:
:mod:`drgkit._calibrate`), written as a weights table a policy reads directly."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path

import click

from .._calibrate import TRIM_RULES, calibrate, summary_of, write_weights
from .._write import check_not_input
from ._common import UserError


def _history(items: tuple[str, ...]) -> list | dict:
    """``PATH`` or ``YEAR=PATH`` arguments: all of one kind."""
    dated = [i for i in items if "=" in i and i.split("=", 1)[0].strip().isdigit()]
    if not dated:
        return [Path(i) for i in items]
    if len(dated) != len(items):
        raise UserError("give every history file as YEAR=PATH, or none of them")
    out: dict[int, list[Path]] = {}
    for item in dated:
        year, path = item.split("=", 1)
        out.setdefault(int(year), []).append(Path(path))
    return out


def _years(text: str | None) -> list[int] | None:
    if text is None:
        return None
    parts = text.split(":")
    if not all(p.strip().isdigit() for p in parts):
        raise UserError(f"--years must be years such as 2021:2022:2023, got {text!r}")
    return [int(p) for p in parts]


def _budgets(items: tuple[str, ...]) -> dict[str | None, str]:
    out: dict[str | None, str] = {}
    for item in items:
        key, _, amount = item.rpartition("=")
        k = key.strip() or None
        if k in out:
            raise UserError(f"--budget {item}: a budget for {k or 'all cases'} is already given")
        out[k] = amount.strip()
    return out


@click.command("calibrate")
@click.argument("history", nargs=-1, required=True)
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The weights table to write (CSV, the policies' weights format plus statistics).",
)
@click.option(
    "-r", "--ruleset", default=None, help="Group raw cases with this ruleset first (id or path)."
)
@click.option(
    "--year-weights", default=None, metavar="W:W:W", help="Year weights, oldest first (1:2:7)."
)
@click.option(
    "--years",
    default=None,
    metavar="Y:Y:Y",
    help="The calibration years, oldest first; a case of another year is an error.",
)
@click.option(
    "--trim",
    type=click.Choice(TRIM_RULES),
    default="log-sd",
    show_default=True,
    help="How extreme costs are trimmed inside each DRG and year.",
)
@click.option("--sd", default="3", show_default=True, help="log-sd: trim beyond mean ± SD × this.")
@click.option(
    "--quantiles",
    default="2.5:97.5",
    show_default=True,
    metavar="LOW:HIGH",
    help="quantile: trim below/above these nearest-rank percentiles.",
)
@click.option(
    "--quantile-min-cases",
    type=click.IntRange(1),
    default=25,
    show_default=True,
    help="quantile: trim only DRG-years with at least this many cases.",
)
@click.option(
    "--min-cases",
    type=click.IntRange(1),
    default=10,
    show_default=True,
    help="Fewer kept cases than this: the DRG is unstable (or merged, --merge-small).",
)
@click.option("--merge-small", is_flag=True, help="Price small DRGs with their ADRG's pool.")
@click.option(
    "--budget",
    multiple=True,
    metavar="[SCHEME=]YUAN",
    help="Report the base rate this budget implies (all cases, or one scheme); repeatable.",
)
@click.option("--target-year", type=int, default=None, help="Year of the budget (default: last).")
@click.option(
    "--like",
    "template",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A weights table to copy names, basic-group flags and level coefficients from; its "
    "other columns are carried (published 支付标准 columns left empty: they price the old RW).",
)
@click.option("--cost-column", default="total_cost", show_default=True)
def calibrate_command(
    history,
    out,
    ruleset,
    year_weights,
    years,
    trim,
    sd,
    quantiles,
    quantile_min_cases,
    min_cases,
    merge_small,
    budget,
    target_year,
    template,
    cost_column,
) -> None:
    """Relative weights (RW) per DRG from 1–3 years of cases (HISTORY: files or folders of
    grouped cases, or raw cases with -r; YEAR=PATH gives a file's year, else discharge_date)."""
    if out.suffix.lower() in (".parquet", ".pq", ".arrow", ".feather", ".xlsx", ".json"):
        # the weights are CSV text whatever the name: a policy's [weights] file reads CSV
        raise UserError(
            f"{out}: the weights table is written as CSV (what a policy reads): use .csv"
        )
    sources = _history(history)
    paths = [p for v in sources.values() for p in v] if isinstance(sources, dict) else sources
    check_not_input(out, *paths)
    low, sep, high = quantiles.partition(":")
    if not sep:
        raise UserError(f"--quantiles must be LOW:HIGH in percent, got {quantiles!r}")
    try:
        qs = (_percent(low), _percent(high))
    except ValueError:
        raise UserError(f"--quantiles must be LOW:HIGH in percent, got {quantiles!r}") from None
    table = calibrate(
        sources,
        ruleset=ruleset,
        year_weights=year_weights,
        years=_years(years),
        trim=trim,
        sd=sd,
        quantiles=qs,
        quantile_min_cases=quantile_min_cases,
        min_cases=min_cases,
        merge_small=merge_small,
        budgets=_budgets(budget),
        target_year=target_year,
        template=template,
        cost_column=cost_column,
    )
    write_weights(table, out)
    s = summary_of(table)
    unstable = table.num_rows - sum(table.column("stable").to_pylist())
    excluded = ", ".join(f"{k} {v}" for k, v in s["excluded"].items()) or "none"
    click.echo(
        f"{s['rows_read']} rows read: {s['cases_used']} grouped cases used, excluded: {excluded}"
    )
    click.echo(
        f"years {', '.join(map(str, s['years']))} weighted {':'.join(s['year_weights'])}; "
        f"{s['trimmed']} cases trimmed ({s['trim']}); overall mean cost "
        f"{s['overall_mean_cost']}"
    )
    click.echo(f"{table.num_rows} DRGs ({unstable} unstable) -> {out}")
    for key, rate in s["base_rates"].items():
        click.echo(
            f"base rate ({key}, {s['target_year']}): {rate['budget']} / "
            f"{rate['expected_weight']} = {rate['base_rate']}"
        )


def _percent(text: str) -> str:
    """A percentage as an exact decimal fraction text (2.5 -> 0.025)."""
    try:
        return str(Decimal(text.strip()).scaleb(-2))
    except InvalidOperation:
        raise ValueError(text) from None
