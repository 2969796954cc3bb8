"""``drgkit alliance``: split alliance packages among their members."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ._common import UserError, data_warnings, render_table
from ._options import case_input_options, ruleset_option


@click.command("alliance")
@click.argument("cases", type=click.Path(dir_okay=True, path_type=Path))
@click.option(
    "-a",
    "--alliances",
    "model",
    required=True,
    metavar="MODEL",
    help="An alliance model TOML file, or the name of a shipped one (demo).",
)
@click.option(
    "-p",
    "--policy",
    "policy",
    metavar="POLICY",
    help="Settle CASES under this policy first (not needed when CASES is the output "
    "of drgkit settle).",
)
@ruleset_option(required=False)
@click.option(
    "--weights",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The weights table the policy reads.",
)
@click.option(
    "--referral-column",
    default="referral_from",
    show_default=True,
    help="Column of CASES naming the case a case was referred from.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for members, alliances, transfers, items and cases tables.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet"]),
    default="csv",
    show_default=True,
    help="Format of the output tables.",
)
@case_input_options
def alliance(
    cases, model, policy, ruleset, weights, referral_column, out, fmt, layout, columns, encoding
) -> None:
    """Split each medical alliance's package among its members (医联体/医共体打包付费).

    Per member: its own case payments, what referrals moved (an up-transfer is paid once and
    split with the referrer; a down-transfer's surplus is split with the sender), its share of
    shared costs, joint-service revenue, cost increases and the package surplus or over-spend.
    Every allocation adds up exactly (largest remainder, ties to the smaller hospital id).
    """
    from .._io import open_cases
    from ..alliance import load_model, split
    from ..settlement import settle
    from ..settlement._settle import read_settled

    started = time.perf_counter()
    alliance_model = load_model(model)
    names = open_cases(cases, encoding=encoding).schema.names
    if referral_column != "referral_from" and referral_column not in names:
        raise UserError(f"{cases} has no column {referral_column!r} (--referral-column)")
    if "settled" in names and "payment" in names:
        if policy:
            click.echo(f"note: {cases} is settled already; -p {policy} is not used", err=True)
        table = read_settled(cases)
    else:
        if not policy:
            raise UserError(
                f"{cases} is not settled yet (no settled/payment columns): give "
                "the policy to settle it with -p POLICY"
            )
        keep = [referral_column] if referral_column in names else None
        with data_warnings():
            table = settle(
                cases,
                policy,
                ruleset,
                weights=weights,
                layout=layout,
                columns=columns,
                encoding=encoding,
                keep=keep,
            )
    if referral_column != "referral_from" and referral_column in table.column_names:
        table = table.drop_columns([c for c in ("referral_from",) if c in table.column_names])
        table = table.rename_columns(
            ["referral_from" if c == referral_column else c for c in table.column_names]
        )
    if "referral_from" not in table.column_names:
        click.echo(f"note: no {referral_column!r} column: no referrals are split", err=True)
    result = split(table, alliance_model)
    paths = result.write(out, fmt)
    elapsed = time.perf_counter() - started
    click.echo(
        f"{table.num_rows:,} cases, {result.members.num_rows:,} members of "
        f"{result.alliances.num_rows:,} alliances in {elapsed:.2f} s (model "
        f"{result.model_id}, {result.model_hash}); {result.outside_cases:,} cases of "
        "hospitals in no alliance"
    )
    click.echo(
        render_table(
            result.alliances.select(
                [
                    "alliance_id",
                    "basis",
                    "cases",
                    "up_links",
                    "down_links",
                    "budget",
                    "claims",
                    "package_adjustment",
                    "package",
                    "net",
                ]
            )
        )
    )
    click.echo("")
    click.echo(
        render_table(
            result.members.select(
                [
                    "alliance_id",
                    "hospital_id",
                    "own_payment",
                    "referred_up",
                    "up_received",
                    "up_paid_out",
                    "down_received",
                    "down_paid_out",
                    "package_adjustment",
                    "shared_costs",
                    "joint_revenue",
                    "cost_increase",
                    "net",
                ]
            ),
            limit=60,
        )
    )
    click.echo(f"wrote {', '.join(p.name for p in paths)} to {out}")
