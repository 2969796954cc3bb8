"""``drgkit alliance``: split alliance packages among their members (in one process, by
partitions or on Dask); ``drgkit alliance models list``: the registered alliance models."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from .. import registry as _registry
from ._common import UserError, data_warnings, render_table
from ._options import batch_rows_option, case_input_options, ruleset_option


class _SplitOrModels(click.Command):
    """``drgkit alliance CASES …`` splits; ``drgkit alliance models …`` are the model
    commands (a group of their own, reached through this command)."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        if args and args[0] == "models":
            return models.make_context(f"{info_name} models", args[1:], parent=parent, **extra)
        return super().make_context(info_name, args, parent=parent, **extra)


@click.group("models")
def models() -> None:
    """The registered alliance models (shipped, or added by plugins)."""


@models.command("list")
def models_list() -> None:
    """Every registered alliance model: id, alliances, volume, who registered it, name."""
    from ..alliance._model import tomllib

    reg = _registry.default_registry()
    found = reg.alliance_models
    if not found:
        click.echo("No alliance models are registered. Give a model file with -a FILE.")
        return
    click.echo(f"{'id':<16} {'alliances':>9} {'volume':<7} {'registered by':<24} name")
    for model_id, path in found.items():
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            click.echo(f"{model_id:<16} {'?':>9} {'?':<7} cannot read {path}: {exc}")
            continue
        alliances = doc.get("alliances")
        by = reg.alliance_model_registered_by(model_id).split(" (")[0].removeprefix("plugin ")
        click.echo(
            f"{model_id:<16} {len(alliances) if isinstance(alliances, list) else '?':>9} "
            f"{doc.get('volume', 'cases')!s:<7} {by:<24} {doc.get('name', '')}"
        )


@click.command("alliance", cls=_SplitOrModels)
@click.argument("cases", type=click.Path(dir_okay=True, path_type=Path))
@click.option(
    "-a",
    "--alliances",
    "model",
    required=True,
    metavar="MODEL",
    help="An alliance model TOML file, or a registered model id (demo; see drgkit "
    "alliance models list).",
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
@batch_rows_option
@click.option(
    "--dask",
    "dask_address",
    metavar="ADDRESS|local",
    help="Split CASES (settled cases: a folder of Parquet files, or one file by row groups) "
    "as a partitioned dataset on a Dask cluster ('local' starts one). OUT then holds the "
    "small tables and cases/part-NNNNN.parquet, one per partition. Needs drgkit[dask].",
)
@click.option(
    "--partitions",
    "dataset_local",
    is_flag=True,
    help="Split CASES as a partitioned dataset in this process (OUT as with --dask).",
)
@click.option(
    "--row-groups-per-partition",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="With --dask/--partitions and a single Parquet file: row groups per part.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="With --dask/--partitions: keep the verified case parts of an interrupted run in "
    "OUT and write only the rest.",
)
def alliance(
    cases,
    model,
    policy,
    ruleset,
    weights,
    referral_column,
    out,
    fmt,
    layout,
    columns,
    encoding,
    batch_rows,
    dask_address,
    dataset_local,
    row_groups_per_partition,
    resume,
) -> None:
    """Split each medical alliance's package among its members (医联体/医共体打包付费).

    Per member: its own case payments, what referrals moved (an up-transfer is paid once and
    split with the referrer; a down-transfer's surplus is split with the sender), its share of
    shared costs, joint-service revenue, cost increases and the package surplus or over-spend.
    Every allocation adds up exactly (largest remainder, ties to the smaller hospital id).
    With --partitions or --dask the result is the same, byte for byte, for any partitioning.
    The registered models: `drgkit alliance models list`.
    """
    from .._io import open_cases
    from ..alliance import load_model, split
    from ..settlement import settle
    from ..settlement._settle import read_settled

    started = time.perf_counter()
    alliance_model = load_model(model)
    if resume and not (dask_address or dataset_local):
        raise click.UsageError("--resume needs --partitions or --dask (a partitioned run)")
    if dask_address or dataset_local:
        settle_options = dict(
            ruleset=ruleset, weights=weights, layout=layout, columns=columns, batch_rows=batch_rows
        )
        _split_partitioned(
            cases,
            alliance_model,
            policy,
            settle_options,
            referral_column,
            out,
            fmt,
            batch_rows,
            dask_address,
            row_groups_per_partition,
            resume,
            started,
        )
        return
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
    _report(result, table.num_rows, time.perf_counter() - started)
    click.echo(f"wrote {', '.join(p.name for p in paths)} to {out}")


def _split_partitioned(
    cases: Path,
    model: Any,
    policy: str | None,
    settle_options: dict[str, Any],
    referral_column: str,
    out: Path,
    fmt: str,
    batch_rows: int | None,
    dask_address: str | None,
    row_groups_per_partition: int,
    resume: bool,
    started: float,
) -> None:
    import pyarrow.parquet as pq

    from .._runners import DaskRunner, LocalRunner, partitions_of
    from ..alliance import split_dataset

    parts = partitions_of(cases, row_groups_per_partition=row_groups_per_partition)
    names = pq.ParquetFile(parts[0].path).schema_arrow.names
    settled = "settled" in names and "payment" in names
    if not settled and not policy:
        raise UserError(
            f"{cases} is not settled yet (no settled/payment columns): give the policy to "
            "settle it with -p POLICY (the settled parts go to OUT/settled)"
        )
    if settled and policy:
        click.echo(f"note: {cases} is settled already; -p {policy} is not used", err=True)
    if referral_column not in names:
        if referral_column != "referral_from":
            raise UserError(f"{cases} has no column {referral_column!r} (--referral-column)")
        click.echo(f"note: no {referral_column!r} column: no referrals are split", err=True)
    runner = (
        DaskRunner(None if dask_address == "local" else dask_address)
        if dask_address
        else LocalRunner()
    )
    with runner, data_warnings():
        source = cases
        if not settled:
            # settle the partitions first (OUT/settled/part-NNNNN.parquet), then split those
            from ..settlement import settle_dataset

            source = out / "settled"
            settle_dataset(
                cases,
                source,
                policy,
                runner=runner,
                keep=[referral_column] if referral_column in names else None,
                row_groups_per_partition=row_groups_per_partition,
                resume=resume,
                overwrite=not resume,
                **settle_options,
            )
            row_groups_per_partition = 1
        result = split_dataset(
            source,
            out,
            model,
            runner=runner,
            fmt=fmt,
            referral_column=referral_column,
            batch_rows=batch_rows,
            row_groups_per_partition=row_groups_per_partition,
            resume=resume,
        )
    _report(result, result.rows, time.perf_counter() - started)
    click.echo(
        f"wrote {', '.join(Path(p).name for p in result.files)} and {len(result.paths)} "
        f"case part files (cases/) to {out}"
    )


def _report(result: Any, rows: int, elapsed: float) -> None:
    click.echo(
        f"{rows:,} cases, {result.members.num_rows:,} members of "
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
