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
    help="Folder for members, alliances, transfers, items and cases tables (and cooperation "
    "when the model has [cooperation] or [synergy_fund]).",
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
@click.option(
    "--shared-results",
    "shared_results",
    metavar="H1,H2,…|FILE",
    help="The members that share results (互认), for a model whose [cooperation] has "
    "shared_results = true: hospital ids separated by commas, or a CSV file with a "
    "hospital_id column (and optionally a shared_results column: true/false).",
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
    shared_results,
) -> None:
    """Split each medical alliance's package among its members (医联体/医共体打包付费).

    Per member: its own case payments, what referrals moved (an up-transfer is paid once and
    split with the referrer; a down-transfer's surplus is split with the sender), its share of
    shared costs, joint-service revenue, cost increases and the package surplus or over-spend.
    Every allocation adds up exactly (largest remainder, ties to the smaller hospital id).
    With --partitions or --dask the result is the same, byte for byte, for any partitioning.
    When the model has [cooperation] and/or [synergy_fund], the cooperation table (referral
    rate, coefficient uplift, synergy fund per member) is written too.
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
    sharing = _shared_results(alliance_model, shared_results)
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
            sharing,
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
    cooperation = None
    if _pays_for_cooperation(alliance_model):
        from ..alliance import cooperation_outcome
        from ..alliance._split import write_table_file

        # the same writer as split_dataset's, so that both runs give the same bytes
        cooperation = cooperation_outcome(alliance_model, result, shared_results=sharing)
        paths.append(out / f"cooperation.{fmt}")
        write_table_file(paths[-1], cooperation, fmt)
    _report(result, table.num_rows, time.perf_counter() - started, cooperation)
    click.echo(f"wrote {', '.join(p.name for p in paths)} to {out}")


def _pays_for_cooperation(model: Any) -> bool:
    return model.rules.cooperation is not None or model.rules.synergy_fund is not None


_TRUE = ("true", "1", "yes", "y", "是")
_FALSE = ("false", "0", "no", "n", "否")


def _shared_results(model: Any, spec: str | None) -> set[str] | None:
    """The members that share results, from ``--shared-results`` (ids separated by commas,
    or a CSV file); every id must be a member of the model. Checked before anything runs."""
    coop = model.rules.cooperation
    if spec is None:
        if coop is not None and coop.shared_results:
            raise UserError(
                f"model {model.id}: [cooperation] shared_results = true: give --shared-results "
                "H1,H2,… (or a CSV file with hospital_id) naming the members that share results"
            )
        return None
    if not _pays_for_cooperation(model):
        click.echo(
            f"note: model {model.id} has no [cooperation] or [synergy_fund]: --shared-results "
            "is not used",
            err=True,
        )
        return None
    path = Path(spec)
    ids = _shared_file(path) if path.is_file() else _shared_list(spec)
    members = {m.hospital_id for a in model.alliances for m in a.members}
    unknown = sorted(ids - members)
    if unknown:
        raise UserError(
            f"--shared-results names {', '.join(unknown)}: not a member of any alliance of "
            f"model {model.id}"
        )
    return ids


def _shared_list(spec: str) -> set[str]:
    ids = [h.strip() for h in spec.split(",")]
    if spec.strip() and any(not h for h in ids):
        raise UserError(f"--shared-results has an empty hospital id: {spec!r}")
    return {h for h in ids if h}


def _shared_file(path: Path) -> set[str]:
    """hospital_id (and shared_results true/false) from a CSV file; errors name the file,
    the row (header = row 1) and the column."""
    import csv

    from ..errors import TableError

    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            lines = list(csv.reader(fh))
    except UnicodeDecodeError:
        raise TableError("not UTF-8 text; save the file as UTF-8", file=path) from None
    head = [c.strip() for c in lines[0]] if lines else []
    if "hospital_id" not in head:
        raise TableError(
            f"the shared results file needs a hospital_id column (found: "
            f"{', '.join(head) or 'no header'})",
            file=path,
            row=1,
        )
    at = head.index("hospital_id")
    flag = head.index("shared_results") if "shared_results" in head else None
    out: set[str] = set()
    seen: set[str] = set()
    for k, line in enumerate(lines[1:], start=2):
        if not any(c.strip() for c in line):
            continue  # a blank line names nobody
        if len(line) != len(head):
            raise TableError(f"{len(line)} fields, the header has {len(head)}", file=path, row=k)
        hosp = line[at].strip()
        if not hosp:
            raise TableError("no hospital id", file=path, row=k, column="hospital_id")
        if hosp in seen:
            raise TableError(
                f"hospital {hosp!r} is listed twice", file=path, row=k, column="hospital_id"
            )
        seen.add(hosp)
        if flag is None:
            out.add(hosp)
            continue
        value = line[flag].strip().lower()
        if value not in _TRUE + _FALSE:
            raise TableError(
                f"{line[flag]!r} is not true or false", file=path, row=k, column="shared_results"
            )
        if value in _TRUE:
            out.add(hosp)
    return out


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
    sharing: set[str] | None = None,
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
            shared_results=sharing,
        )
    _report(result, result.rows, time.perf_counter() - started, result.cooperation)
    click.echo(
        f"wrote {', '.join(Path(p).name for p in result.files)} and {len(result.paths)} "
        f"case part files (cases/) to {out}"
    )


def _report(result: Any, rows: int, elapsed: float, cooperation: Any = None) -> None:
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
    if cooperation is not None:
        _report_cooperation(cooperation)


def _report_cooperation(table: Any) -> None:
    """The cooperation table in short: who met the targets, the uplift and the synergy fund."""
    from decimal import Decimal

    rows = table.to_pylist()
    met = sum(1 for r in rows if r["cooperation_met"])
    judged = sum(1 for r in rows if r["cooperation_met"] is not None)
    uplift = sum((r["uplift"] for r in rows), Decimal("0.00"))
    fund = sum((r["synergy_part"] for r in rows), Decimal("0.00"))
    click.echo("")
    click.echo(
        f"cooperation: {met} of {judged} members meet the targets (uplift {uplift} paid by "
        f"the fund); synergy fund {fund} set aside and paid out"
        if judged
        else f"cooperation: synergy fund {fund} set aside and paid out"
    )
    click.echo(
        render_table(
            table.select(
                [
                    "alliance_id",
                    "hospital_id",
                    "cases",
                    "referred_cases",
                    "referral_rate",
                    "shared_results",
                    "cooperation_met",
                    "uplift",
                    "synergy_set_aside",
                    "synergy_part",
                ]
            ),
            limit=60,
        )
    )
