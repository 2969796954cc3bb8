"""``drgkit indicators``: monitoring indicators per key of a settled table, with the lights of
the policy's ``[monitoring]`` rules (a thin layer over :mod:`drgkit.monitoring`)."""

from __future__ import annotations

from pathlib import Path

import click

from .. import registry as _registry
from ._common import data_warnings, render_table, write_table
from ._options import silent_option


def _keys(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    from ..monitoring import KEYS

    keys = tuple(k.strip() for k in value.split(",") if k.strip())
    unknown = [k for k in keys if k not in KEYS]
    if unknown:
        raise click.BadParameter(
            f"unknown key {unknown[0]!r}; keys are {', '.join(KEYS)}", ctx, param
        )
    return keys


@click.command("indicators")
@click.argument("settled", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-p",
    "--policy",
    metavar="POLICY",
    help="A policy (id or TOML file) whose [monitoring] rules and [[period.quality]] "
    "readmission rule light the rows (light and rule columns).",
)
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), hidden=True)
@click.option(
    "--rules",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A TOML file with a [monitoring] section (instead of the policy's).",
)
@click.option(
    "--by",
    default="hospital_id",
    show_default=True,
    callback=_keys,
    help="Comma-separated keys: hospital_id, department, doctor, mdc, drg, month, scheme, "
    "insurance_type, hospital_level; '' for the whole region.",
)
@click.option(
    "--previous",
    type=click.Path(exists=True, path_type=Path),
    help="The previous period's settled table (cost growth).",
)
@click.option(
    "--reference",
    type=click.Path(exists=True, path_type=Path),
    help="The region's per-DRG reference (mean cost, mean LOS, risk level); default: from "
    "SETTLED itself.",
)
@click.option(
    "--cases",
    type=click.Path(exists=True, path_type=Path),
    help="The case file SETTLED came from, row for row, for columns SETTLED lacks (LOS, "
    "leaving type, drug and consumable costs, doctor).",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the table (.parquet or .csv); without it a summary is printed.",
)
@silent_option
def indicators(
    settled: Path,
    policy: str | None,
    weights: Path | None,
    rules: Path | None,
    by: tuple[str, ...],
    previous: Path | None,
    reference: Path | None,
    cases: Path | None,
    out: Path | None,
    silent: bool,
) -> None:
    """Indicators of SETTLED (drgkit settle's output) per key: cases, grouping rate, CMI,
    cost and time indices, outliers, drug and consumable shares, low-risk mortality,
    readmissions, money and growth; lit red/yellow/green by the rules of -p or --rules."""
    from .. import monitoring
    from .._write import check_not_input

    if out is not None:
        check_not_input(out, settled, *(p for p in (previous, reference, cases) if p))
    the_rules = None
    pol = None
    if rules is not None:
        the_rules = monitoring.MonitoringRules.from_toml(rules)
    elif policy is not None:
        pol = _registry.default_registry().policy(policy, weights=weights)
        the_rules = monitoring.MonitoringRules.from_policy(pol)
    rows = {"n": 0}

    def progress(n: int) -> None:
        rows["n"] = n
        if not silent:  # one line, rewritten after each batch (a long run shows it moves)
            click.echo(f"\rindicators: {n:,} rows read", err=True, nl=False)

    try:
        with data_warnings():
            table = monitoring.indicators(
                settled,
                by=by,
                reference=reference,
                previous=previous,
                cases=cases,
                policy=pol,
                risk=None if the_rules is None else the_rules.risk,
                progress=progress,
            )
    finally:
        # end the progress line, also before an error (else "…rows readError: …")
        if not silent and rows["n"]:
            click.echo("", err=True)
    if the_rules is not None:
        table = monitoring.warnings(table, the_rules)
    if out is not None:
        write_table(out, table)
    if silent:
        return
    click.echo(
        f"{rows['n']:,} settled cases, {table.num_rows:,} rows by {', '.join(by) or 'region'}"
    )
    shown = [*by, "cases", "grouping_rate", "cmi", "cost_index", "time_index", "total_cost"]
    if "light" in table.column_names:
        shown += ["light", "rule"]
        counts = {}
        for light in table.column("light").to_pylist():
            counts[light or "none"] = counts.get(light or "none", 0) + 1
        click.echo("lights: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if out is None:
        import pyarrow as pa

        from ..report._format import column_kind, display

        view = table.select(shown).slice(0, 20)
        # one rounding, for display only, the report's (half up, shares as percentages): the
        # terminal and the report show the same text for the same number
        view = pa.table(
            {
                name: pa.array(
                    [display(v, column_kind(name, col.type)) for v in col.to_pylist()],
                    pa.string(),
                )
                for name, col in zip(view.column_names, view.columns, strict=True)
            }
        )
        click.echo(render_table(view, limit=20))
        if table.num_rows > 20:
            click.echo(f"… {table.num_rows - 20} more rows")
    else:
        click.echo(f"written to {out}")
