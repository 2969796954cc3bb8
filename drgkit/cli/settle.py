"""``drgkit policies``, ``drgkit settle``, ``drgkit period`` and ``drgkit simulate``."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import click

from .. import registry as _registry
from ..errors import DrgkitError
from ._common import (
    UserError,
    data_warnings,
    print_accounting,
    print_settle_summary,
    progress_bar,
    render_table,
    write_table,
)
from ._options import (
    batch_rows_option,
    case_input_options,
    month_value,
    policy_options,
    rejects_option,
    ruleset_option,
    silent_option,
    threads_option,
)


@click.group()
def policies() -> None:
    """List, show and validate payment policies."""


@policies.command("list")
def policies_list() -> None:
    """Every registered payment policy: region, year, method, ruleset and table."""
    from ..settlement._policy import tomllib

    reg = _registry.default_registry()
    click.echo(
        f"{'id':<16} {'region':<10} {'year':<5} {'method':<7} {'ruleset':<15} {'weights':<20} name"
    )
    for pid, path in reg.policies.items():
        meta = tomllib.loads(path.read_text(encoding="utf-8"))
        p, w = meta.get("policy", {}), meta.get("weights", {})
        weights = (w.get("embedded") and "shipped") or w.get("file", "")
        click.echo(
            f"{pid:<16} {p.get('region', ''):<10} {p.get('version', ''):<5} "
            f"{p.get('method', ''):<7} {p.get('ruleset', ''):<15} {weights:<20} "
            f"{p.get('name', '')}"
        )


@policies.command("show")
@click.argument("policy")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path))
def policies_show(policy: str, weights: Path | None) -> None:
    """A policy's parameters and the prices it gives a few groups."""
    from ..settlement._price import PriceBook

    pol = _registry.default_registry().policy(policy, weights=weights)
    if pol.method == "dip":
        _show_dip(pol)
        return
    click.echo(f"{pol.id}: {pol.name}")
    click.echo(f"  method {pol.method}, region {pol.region or '-'}, ruleset {pol.ruleset or '-'}")
    click.echo(f"  file {pol.path}; weights {pol.weights.path} ({len(pol.weights.rows)} rows)")
    click.echo(f"  content hash {pol.content_hash}")
    for scheme, rates in (
        pol.base if pol.method == "rate" else {s: {"*": r} for s, r in pol.reference_rate.items()}
    ).items():
        click.echo(
            f"  {'base' if pol.method == 'rate' else 'reference'} rate {scheme}: "
            + ", ".join(f"{lv}: {r}" for lv, r in rates.items())
        )
    if pol.standard_from == "published":
        click.echo("  standards: the table's printed standards (rate.standard = published)")
    if pol.low:
        click.echo(
            f"  low outliers: cost < {' / '.join(str(b.ratio) for b in pol.low.bands)} × "
            f"standard → {pol.low.payment}"
        )
    if pol.high:
        click.echo(
            f"  high outliers: cost > {' / '.join(str(b.ratio) for b in pol.high.bands)}"
            f" × standard → {pol.high.payment} (share {pol.high.share})"
        )
    book = PriceBook(pol)
    click.echo("  examples (standard, yuan): group, level, scheme")
    for row in list(pol.weights.rows.values())[:3]:
        for lv in book.levels[:3]:
            std, _rw, why = book.standard(row, lv, book.schemes[0], Decimal(1))
            click.echo(
                f"    {row.code:<6} level {lv} {book.schemes[0]}: {std if std is not None else why}"
            )


def _show_dip(pol) -> None:
    d = pol.dip
    v = d.deviation
    click.echo(f"{pol.id}: {pol.name}{' (example parameters)' if d.example else ''}")
    click.echo(f"  method dip, region {pol.region or '-'}, catalogue {d.catalogue}")
    click.echo(f"  file {pol.path}; content hash {pol.content_hash}")
    click.echo(
        "  hospital coefficients: "
        + (", ".join(f"level {k}: {c}" for k, c in d.level_coefficients.items()) or "none")
        + f"; auxiliary {'on' if d.auxiliary else 'off'}; primary-care packets "
        f"{'with' if d.primary_hospital_coefficient else 'without'} hospital coefficient"
    )
    ref = "packet mean cost at the level" if v.reference == "mean" else "payment standard"
    click.echo(
        f"  deviation: r = cost ÷ {ref}; "
        f"low r {'≤' if v.low_inclusive else '<'} {v.low_ratio} → factor r; high r > "
        f"{v.high_ratio} → r − {v.high_ratio} + {'1' if v.high_add == 'one' else 'h'}; "
        f"extreme r > {v.extreme_ratio} → {v.extreme}"
    )
    click.echo(
        f"  coefficients again on low / high cases: {v.coefficients_on_low} / "
        f"{v.coefficients_on_high}; special review cap {d.review_cap} of discharges"
    )
    ung = f"by item × {d.ungroupable_factor}" if d.ungroupable_factor else "not settled"
    click.echo(
        f"  blank packet: {d.blank.method} (factor {d.blank.factor}, k {d.blank.k}, "
        f"m {d.blank.m}); ungroupable: {ung}"
    )
    click.echo(
        "  fund: "
        + ", ".join(f"{k} {v}" for k, v in d.fund.items())
        + "; fund ratio: "
        + ", ".join(f"{k} {v}" for k, v in pol.fund_ratio.items())
    )
    if d.start_point_value:
        click.echo(
            "  start-of-year point value: "
            + ", ".join(f"{k} {v}" for k, v in d.start_point_value.items())
        )


@policies.command("validate")
@click.argument("policies_", metavar="[POLICY...]", nargs=-1)
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--tables",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Folder of published tables: each policy reads its [weights] file from there.",
)
@click.option("--all", "all_", is_flag=True, help="Every registered policy with a published table.")
def policies_validate(
    policies_: tuple[str, ...], weights: Path | None, tables: Path | None, all_: bool
) -> None:
    """Load each policy and its table; reproduce every figure the table publishes (standards,
    outlier thresholds, rates, derived RW) to the cent and report cells checked and matched."""
    from ..settlement._check import KINDS, check_published
    from ..settlement._policy import tomllib

    reg = _registry.default_registry()

    def table_file(pid: str) -> str:
        path = reg.policies.get(pid)
        if path is None:
            return ""
        return str(
            tomllib.loads(path.read_text(encoding="utf-8")).get("weights", {}).get("file", "")
        )

    if all_:
        # the policies read from a region's table (not a shipped demo table, not DIP)
        policies_ = tuple(pid for pid in reg.policies if table_file(pid))
    if not policies_:
        raise UserError("name the policies to validate, or give --all")
    failed = 0
    total = [0, 0, 0]
    for spec in policies_:
        table = weights
        if table is None and tables is not None and table_file(spec):
            found = tables / table_file(spec)
            table = found if found.is_file() else None
        try:
            pol = reg.policy(spec, weights=table)
        except DrgkitError as exc:
            failed += 1
            click.echo(f"✗ {spec}: {exc}")
            continue
        if pol.method == "dip":
            from ..settlement._dip_run import check_dip_policy

            try:
                click.echo(f"✓ {pol.id}: {check_dip_policy(pol)}")
            except DrgkitError as exc:
                failed += 1
                click.echo(f"✗ {spec}: {exc}")
            continue
        report = check_published(pol)
        mark = "✓" if not report.mismatches else "✗"
        failed += bool(report.mismatches)
        kinds = ", ".join(
            f"{kind} {report.kinds[kind][1]}/{report.kinds[kind][0]}"
            for kind in KINDS
            if kind in report.kinds
        )
        click.echo(
            f"{mark} {pol.id}: {len(pol.weights.rows)} groups; {report.checked} published "
            f"standards checked to the cent, {len(report.mismatches)} differ; cells checked "
            f"{report.cells_checked}, matched {report.cells_matched}"
            f"{f' ({kinds})' if kinds else ''}; {report.cells_read} table cells read"
        )
        total[0] += report.cells_checked
        total[1] += report.cells_matched
        total[2] += 1
        for line in report.notes:
            click.echo(f"    {line}")
        for line in report.mismatches[:10]:
            click.echo(f"    {line}")
    if total[2] > 1:
        click.echo(f"{total[2]} tables: cells checked {total[0]}, matched {total[1]}")
    if failed:
        raise UserError(f"{failed} polic{'y' if failed == 1 else 'ies'} failed validation")


@click.command("settle")
@click.argument("cases", type=click.Path(dir_okay=True, path_type=Path))
@ruleset_option(required=False)
@policy_options
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Output file: .parquet for Parquet, anything else for CSV (a folder with "
    "--dask/--partitions).",
)
@case_input_options
@click.option(
    "--hospitals",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Hospitals table: hospital_id, hospital_level and/or coefficient.",
)
@click.option("--keep", multiple=True, metavar="COLUMN", help="Copy an input column (repeatable).")
@threads_option
@batch_rows_option
@click.option(
    "--dask",
    "dask_address",
    metavar="ADDRESS|local",
    help="Settle CASES (a folder of Parquet files, or one file by row groups) as a "
    "partitioned dataset on a Dask cluster ('local' starts one); OUT is then a "
    "folder of part files. Needs drgkit[dask].",
)
@click.option(
    "--partitions",
    "dataset_local",
    is_flag=True,
    help="Settle CASES as a partitioned dataset in this process (OUT is a folder).",
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
    help="With --dask/--partitions: keep the verified parts of an interrupted run in "
    "OUT and settle only the rest.",
)
@rejects_option
@silent_option
def settle(
    cases,
    ruleset,
    policy,
    weights,
    overrides,
    out,
    layout,
    columns,
    encoding,
    hospitals,
    keep,
    threads,
    batch_rows,
    dask_address,
    dataset_local,
    row_groups_per_partition,
    resume,
    rejects,
    silent,
) -> None:
    """Settle CASES under POLICY and write every case's payment to OUT.

    Cases that are not grouped yet are grouped first (with -r RULESET, or the ruleset the
    policy names). The points method reads the input twice: the first pass finds the point
    value from the budget. Amounts are exact: each case is rounded once, half up, to 0.01.
    """
    from ..settlement import settle_file

    started = time.perf_counter()
    # keywords of newer library features are passed only when asked for
    extra = {"rejects": rejects} if rejects is not None else {}
    if resume and not (dask_address or dataset_local):
        raise click.UsageError("--resume needs --partitions or --dask (a partitioned run)")
    # what every settlement run takes, partitioned or not
    common = dict(
        weights=weights,
        overrides=overrides,
        hospitals=hospitals,
        layout=layout,
        columns=columns,
        keep=list(keep) or None,
        batch_rows=batch_rows,
        threads=threads,
        **extra,
    )
    if dask_address or dataset_local:
        from ..settlement import DaskRunner, LocalRunner, settle_dataset

        if resume:
            common["resume"] = True
        runner = (
            LocalRunner()
            if dataset_local
            else DaskRunner(None if dask_address == "local" else dask_address)
        )
        with data_warnings():
            result = settle_dataset(
                cases,
                out,
                policy,
                ruleset,
                runner=runner,
                row_groups_per_partition=row_groups_per_partition,
                **common,
            )
        if not silent:
            print_settle_summary(result.summary, time.perf_counter() - started)
            print_accounting(result.summary)
            click.echo(f"wrote {len(result.paths)} part files to {out}")
        return
    with data_warnings(), progress_bar("settling", silent) as progress:
        summary = settle_file(
            cases, out, policy, ruleset, encoding=encoding, progress=progress, **common
        )
    if not silent:
        print_settle_summary(summary, time.perf_counter() - started)
        print_accounting(summary)
        click.echo(f"wrote {out}")


def _amounts(path: Path | None, what: str) -> dict[str, int] | None:
    from ..settlement._amounts import read_amounts

    return None if path is None else read_amounts(path, what)


@click.command("period")
@click.argument("settled", type=click.Path(dir_okay=True, path_type=Path))
@policy_options
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Per-hospital period settlement (CSV or .parquet).",
)
@click.option(
    "--month",
    metavar="YYYY-MM",
    callback=month_value,
    help="Monthly pre-settlement (月度预结算) of this discharge month instead.",
)
@click.option("--all-months", is_flag=True, help="Pre-settlement of every month present.")
@click.option(
    "--hospital-budgets",
    "hospital_budgets",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV hospital_id,amount: budgets the bands are measured against.",
)
@click.option(
    "--already-paid",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV hospital_id,amount: already paid this period (年度清算 subtracts it).",
)
@click.option(
    "--deductions",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the quality deductions per hospital and group here.",
)
@click.option(
    "--outcome-values",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV or .parquet: hospital_id and one column per indicator of the policy's "
    '[[period.outcome]] rules with source = "table" (values the insurer supplies).',
)
@click.option(
    "--outcome-details",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the pay-for-outcome explanation here: one row per rule and hospital "
    "(cost coefficient, outcome rules; value, target, share, amount).",
)
def period(
    settled,
    policy,
    weights,
    overrides,
    out,
    month,
    all_months,
    hospital_budgets,
    already_paid,
    deductions,
    outcome_values,
    outcome_details,
) -> None:
    """Period settlement of SETTLED (the output of drgkit settle) per hospital.

    Totals, quality deductions, pay for outcome ([period.cost_coefficient],
    [[period.outcome]]), surplus retention and over-spend sharing by the policy's bands, and
    clearing against what was already paid; or, with --month, the monthly pre-settlement.
    """
    import pyarrow.compute as pc

    from ..settlement import presettle, presettle_all, quality_deductions, settle_period
    from ..settlement._period import PeriodRules
    from ..settlement._period import outcome_details as _outcome_details
    from ..settlement._settle import read_settled

    pol = _registry.default_registry().policy(policy, weights=weights, overrides=overrides)
    outcome_asked = outcome_values is not None or outcome_details is not None
    if outcome_asked and (month or all_months):
        raise click.UsageError(
            "--outcome-values and --outcome-details belong to the period settlement, not to "
            "the monthly pre-settlement (--month, --all-months)"
        )
    rules = None if month or all_months else PeriodRules.from_policy(pol)
    table_rules = [r.id for r in rules.outcomes if r.source == "table"] if rules else []
    if table_rules and outcome_values is None:
        columns = sorted({r.indicator for r in rules.outcomes if r.source == "table"})
        raise UserError(
            f"policy {pol.id}: outcome rule(s) {', '.join(table_rules)} take their values from "
            f"a per-hospital table: give --outcome-values FILE (CSV or .parquet with "
            f"hospital_id, {', '.join(columns)})"
        )
    if outcome_details is not None and not rules.pays_for_outcome:
        raise UserError(
            f"policy {pol.id} has no [period.cost_coefficient] or [[period.outcome]]: "
            "there are no outcome details to write (--outcome-details)"
        )
    if outcome_values is not None and not table_rules:
        click.echo(
            f'note: policy {pol.id} has no [[period.outcome]] rule with source = "table": '
            f"{outcome_values} is not used",
            err=True,
        )
        outcome_values = None
    table = read_settled(settled)
    if pol.method == "dip" and (month or all_months):
        from ..settlement._dip_period import dip_prepayments

        # DIP: points × start-of-year point value, with the quality deposit withheld
        result = dip_prepayments(table, pol)
        if month:
            result = result.filter(pc.equal(result.column("month"), month))
    elif month:
        result = presettle(table, pol, month=month)
    elif all_months:
        result = presettle_all(table, pol)
    else:
        result = settle_period(
            table,
            pol,
            budgets=_amounts(hospital_budgets, "budgets"),
            already_paid=_amounts(already_paid, "already-paid"),
            values=outcome_values,
        )
    details = (
        _outcome_details(table, pol, values=outcome_values) if outcome_details is not None else None
    )
    write_table(out, result)
    if deductions:
        write_table(deductions, quality_deductions(table, pol))
    if details is not None:
        write_table(outcome_details, details)
    _print_period(result, outcome_details)
    click.echo(f"wrote {out}" + (f" and {outcome_details}" if details is not None else ""))


#: the columns settle_period appends when the policy pays for outcomes
_OUTCOME_SUMMARY = (
    "cost_coefficient",
    "coefficient_adjustment",
    "outcome_deduction",
    "outcome_reward",
)


def _print_period(result, details_path: Path | None) -> None:
    """The period table; when the policy pays for outcomes, the outcome columns apart, one
    line per hospital (the long explanations go to --outcome-details or the output file)."""
    if "explanation" not in result.column_names:
        click.echo(render_table(result))
        return
    click.echo(render_table(result.drop_columns([*_OUTCOME_SUMMARY, "explanation"])))
    click.echo("")
    click.echo("pay for outcome (cost difference coefficient, outcome rules) per hospital:")
    click.echo(render_table(result.select(["hospital_id", *_OUTCOME_SUMMARY, "due", "fund_due"])))
    if details_path is None:
        click.echo("(why: the explanation column of the output, or --outcome-details FILE)")


@click.command("simulate")
@click.argument("cases", type=click.Path(dir_okay=True, path_type=Path))
@click.option(
    "--base-ruleset",
    metavar="RULESET",
    help="Grouping of the base (default: the cases' own groups, else the base policy's ruleset).",
)
@click.option("--base-policy", required=True, metavar="POLICY", help="Policy of the base.")
@click.option("--alt-ruleset", metavar="RULESET", help="Grouping of the alternative.")
@click.option("--alt-policy", metavar="POLICY", help="Policy of the alternative.")
@click.option(
    "--weights",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Weights table of the base policy.",
)
@click.option(
    "--alt-weights",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Weights table of the alternative policy.",
)
@click.option(
    "--by",
    default="hospital_id",
    show_default=True,
    help="Comma-separated keys, e.g. hospital_id,department,drg.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the per-key table (CSV or .parquet).",
)
@click.option(
    "--cases-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the per-case table too.",
)
@click.option(
    "--rows", type=click.IntRange(min=0), default=40, show_default=True, help="Rows to print."
)
def simulate(
    cases,
    base_ruleset,
    base_policy,
    alt_ruleset,
    alt_policy,
    weights,
    alt_weights,
    by,
    out,
    cases_out,
    rows,
) -> None:
    """What-if: the same CASES under another ruleset and/or policy, and why payments change.

    The change per key is split into regrouping (分组变化), case mix (病例组合), price (价格) and
    outlier (极值) effects that add up to the cent.
    """
    from ..settlement import simulate as _simulate

    if alt_ruleset is None and alt_policy is None and alt_weights is None:
        raise UserError("give --alt-ruleset, --alt-policy or --alt-weights: what changes?")
    keys = tuple(k.strip() for k in by.split(",") if k.strip())
    if len(set(keys)) != len(keys):
        raise UserError(f"--by names a key twice: {by!r}")
    reg = _registry.default_registry()
    pols = [
        reg.policy(p, weights=w) if p else None
        for p, w in ((base_policy, weights), (alt_policy, alt_weights))
    ]
    if any(p is not None and p.method == "dip" for p in pols):
        # across schemes (DRG ↔ DIP): each side grouped by its own ruleset or catalogue
        from ..settlement._scheme_simulate import compare_schemes

        with data_warnings():
            table = compare_schemes(
                cases,
                pols[0],
                pols[1] or pols[0],
                base_grouper=base_ruleset,
                alt_grouper=alt_ruleset,
                by=keys,
            )
        click.echo(render_table(table, rows))
        if out is not None:
            write_table(out, table)
            click.echo(f"wrote {out}")
        if cases_out is not None:
            raise UserError(
                "--cases-out is not available across schemes: settle each side with drgkit settle"
            )
        return
    with data_warnings():
        sim = _simulate(
            cases,
            base_ruleset=base_ruleset,
            base_policy=base_policy,
            alt_ruleset=alt_ruleset,
            alt_policy=alt_policy,
            by=keys,
            weights=weights,
            alt_weights=alt_weights,
        )
    click.echo(sim.render(max_rows=rows))
    for target, data in ((out, sim.table), (cases_out, sim.cases)):
        if target is not None:
            write_table(target, data)
            click.echo(f"wrote {target}")
