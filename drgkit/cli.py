"""The ``drgkit`` command line: thin commands over the library.

Each command parses its options, calls the library and prints. Library errors become one
``Error: …`` line and exit code 2 in one place (:class:`_Group.invoke`); a traceback means a bug.
"""

from __future__ import annotations

import functools
import json
import sys
import time
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from . import registry as _registry
from .errors import DrgkitError

EXIT_USAGE = 2


class UserError(click.ClickException):
    """A mistake the user can fix: one line, exit code 2."""

    exit_code = EXIT_USAGE


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DrgkitError as exc:
            raise UserError(str(exc)) from None
        except (LookupError, FileNotFoundError, ValueError) as exc:
            # library-level lookups and bad values surfaced by the library's own checks
            if isinstance(exc, (KeyError, IndexError)):
                raise
            raise UserError(str(exc)) from None


# ------------------------------------------------------------------ reusable option bundles


def case_input_options(func):
    """Options that say how to read a case file."""

    @click.option("--layout", metavar="NAME",
                  help="Column layout of the case file (drgkit, opendrg, settlement-list, zh, or a "
                       "plugin's); detected from the header when omitted.")
    @click.option("--map", "mapping", multiple=True, metavar="FIELD=COLUMN",
                  help="Map a case field to a column of the file, e.g. --map case_id=病案号. "
                       "Repeatable.")
    @click.option("--encoding", default="utf-8", show_default=True,
                  help="Text encoding of CSV input (e.g. gbk for many hospital exports).")
    @functools.wraps(func)
    def wrapper(*args, mapping=(), **kwargs):
        columns = {}
        for item in mapping:
            if "=" not in item:
                raise UserError(f"--map expects FIELD=COLUMN, got {item!r}")
            field, column = item.split("=", 1)
            columns[field.strip()] = column.strip()
        return func(*args, columns=columns or None, **kwargs)

    return wrapper


def ruleset_option(required: bool = True):
    return click.option(
        "-r", "--ruleset", "ruleset", required=required, metavar="RULESET",
        help="A registered ruleset id, a region (each case grouped by the version in force on "
             "its discharge date), or a ruleset folder.")


def silent_option(func):
    return click.option("--silent", is_flag=True, help="No progress bar or summary.")(func)


# ------------------------------------------------------------------ the group


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"],
                                           "max_content_width": 100})
@click.version_option(package_name="drgkit", message="drgkit %(version)s")
def cli() -> None:
    """drgkit — DRG/DIP grouping and settlement for China's payment reform.

    Start with `drgkit demo`, list rulesets with `drgkit rulesets list`, group a file with
    `drgkit group CASES -r RULESET -o OUT`, and ask why with `drgkit explain`.
    """


# ------------------------------------------------------------------ rulesets


@cli.group(cls=_Group)
def rulesets() -> None:
    """List, show and validate rulesets."""


@rulesets.command("list")
def rulesets_list() -> None:
    """Every registered ruleset version, grouped by region."""
    reg = _registry.default_registry()
    items = reg.rulesets
    if not items:
        click.echo("No rulesets are registered. Give a ruleset folder with -r PATH.")
        return
    periods = {v.id: (a, b) for series in reg.regions().values()
               for v, a, b in series.periods()}
    click.echo(f"{'id':<22} {'region':<12} {'version':<9} {'in force':<25} name")
    for rid_, rs in items.items():
        info = rs.info
        first, last = periods.get(rid_, (info.effective_from, info.effective_to))
        period = f"{first or '…'} – {last or '…'}"
        click.echo(f"{rid_:<22} {info.region or '-':<12} {info.version or '-':<9} "
                   f"{period:<25} {info.name}")
    regions = reg.regions()
    if regions:
        click.echo("")
        click.echo("Regions (group with -r REGION: each case uses the version in force on its "
                   "discharge date):")
        for region, series in regions.items():
            click.echo(f"  {region}: {', '.join(v.id for v in series.ordered())}")


@rulesets.command("show")
@click.argument("ruleset")
def rulesets_show(ruleset: str) -> None:
    """Details of one ruleset (id, region or folder)."""
    from .ruleset._model import RulesetSeries

    reg = _registry.default_registry()
    target = reg.resolve(ruleset)
    versions = target.ordered() if isinstance(target, RulesetSeries) else [target]
    for rs in versions:
        info, comp = rs.info, rs.compiled
        names = comp.names
        adrgs = {e[2] for e in names["entries"] if e[1] == "ADRG"}
        click.echo(f"{info.id}: {info.name}")
        click.echo(f"  region {info.region or '-'}, version {info.version or '-'}, in force "
                   f"{info.effective_from or '…'} – {info.effective_to or '…'}")
        click.echo(f"  folder {info.path}")
        source = reg.registered_by(info.id) if info.id in reg.rulesets else "given as a path"
        click.echo(f"  registered by {source}")
        click.echo(f"  content hash {comp.content_hash}")
        click.echo(f"  {len(names['mdcs'])} MDCs, {len(adrgs)} ADRGs, "
                   f"{len({s[1] for s in names['steps']})} DRGs, {len(names['lists'])} code "
                   f"lists, {len(names['codes'])} codes, {len(names['rules'])} rules")
        click.echo(f"  translation maps: dx {'yes' if names['has_dx_map'] else 'no'}, "
                   f"px {'yes' if names['has_px_map'] else 'no'}")
        if info.description:
            click.echo(f"  {info.description}")


@rulesets.command("validate")
@click.argument("rulesets_", metavar="RULESET...", nargs=-1, required=True)
def rulesets_validate(rulesets_: tuple[str, ...]) -> None:
    """Check every table of each ruleset; errors name the file, row and column."""
    from .ruleset._model import RulesetSeries

    reg = _registry.default_registry()
    failed = 0
    for spec in rulesets_:
        target = reg.resolve(spec)
        versions = target.ordered() if isinstance(target, RulesetSeries) else [target]
        for rs in versions:
            try:
                notes = rs.validate()
            except DrgkitError as exc:
                failed += 1
                click.echo(f"✗ {rs.id}: {exc}")
                continue
            click.echo(f"✓ {rs.id} ({rs.info.path})")
            for note in notes:
                click.echo(f"    note: {note}")
    if failed:
        raise UserError(f"{failed} ruleset(s) failed validation")


@cli.command("layouts")
def layouts_cmd() -> None:
    """Case file layouts: how each names the case fields."""
    for name, layout in _registry.default_registry().layouts.items():
        click.echo(f"{name}: {layout.description}")
        mapped = ", ".join(f"{f}={c}" for f, c in layout.columns.items())
        click.echo(f"    {mapped}")


# ------------------------------------------------------------------ group


def _print_summary(summary, elapsed: float) -> None:
    from .grouping._status import REASONS

    total = summary.rows or 1
    rate = summary.rows / max(elapsed, 1e-9)
    click.echo(f"{summary.rows:,} cases in {elapsed:.2f} s ({rate:,.0f} cases/s); "
               f"{summary.layout}")
    for status in ("ok", "ungroupable", "ambiguous", "invalid"):
        n = summary.by_status.get(status, 0)
        click.echo(f"  {status:<12} {n:>10,}  {100 * n / total:6.2f}%")
    if summary.by_reason:
        click.echo("  reasons:")
        for code, n in summary.by_reason.most_common():
            click.echo(f"    {code:<28} {n:>10,}  {REASONS[code].zh}")
    if len(summary.by_ruleset) > 1 or "-" in summary.by_ruleset:
        click.echo("  by ruleset version: " + ", ".join(
            f"{k} {v:,}" for k, v in sorted(summary.by_ruleset.items())))
    for message in summary.warnings:
        click.echo(f"  warning: {message}")


@cli.command("group")
@click.argument("cases", type=click.Path(dir_okay=True, path_type=Path))
@ruleset_option()
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file: .parquet for Parquet, anything else for CSV.")
@case_input_options
@click.option("--translate", is_flag=True,
              help="Translate codes through the ruleset's dx_map/px_map first (translation mode).")
@click.option("--keep", multiple=True, metavar="COLUMN",
              help="Copy an input column to the output (repeatable).")
@click.option("--keep-all", is_flag=True, help="Copy every input column to the output.")
@click.option("--no-duplicate-check", is_flag=True,
              help="Do not flag repeated case ids (saves memory on huge inputs).")
@click.option("--threads", type=int, help="Threads for the kernels (default: all cores).")
@click.option("--batch-rows", type=int, help="Rows per batch (memory vs. speed).")
@click.option("--value-checks", type=click.Choice(["drgkit", "opendrg"]), default="drgkit",
              show_default=True, help="Input checks: drgkit adds plausibility bounds (age, "
              "age in days, birth weight, length of stay) to OpenDRG's checks.")
@silent_option
def group_cmd(cases, ruleset, out, layout, columns, encoding, translate, keep, keep_all,
              no_duplicate_check, threads, batch_rows, value_checks, silent) -> None:
    """Group CASES (CSV or Parquet) with RULESET and write every case's result to OUT.

    Output columns: case_id, status (ok / ungroupable / ambiguous / invalid), reason, detail,
    mdc, adrg, drg, ruleset, after any kept input columns.
    """
    from .grouping import group_file

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported in the summary instead
        if silent:
            summary = _run_group(group_file, cases, out, ruleset, None, layout, columns,
                                 encoding, translate, keep, keep_all, no_duplicate_check,
                                 threads, batch_rows, value_checks)
        else:
            with click.progressbar(length=1000, label="grouping", file=sys.stderr,
                                   show_eta=True) as bar:
                state = {"done": 0}

                def progress(fraction: float, rows: int) -> None:
                    step = int(fraction * 1000) - state["done"]
                    if step > 0:
                        bar.update(step)
                        state["done"] += step

                summary = _run_group(group_file, cases, out, ruleset, progress, layout,
                                     columns, encoding, translate, keep, keep_all,
                                     no_duplicate_check, threads, batch_rows, value_checks)
                bar.update(1000 - state["done"])
    if not silent:
        _print_summary(summary, time.perf_counter() - started)
        click.echo(f"wrote {out}")


def _run_group(group_file, cases, out, ruleset, progress, layout, columns, encoding, translate,
               keep, keep_all, no_duplicate_check, threads, batch_rows, value_checks="drgkit"):
    return group_file(
        cases, out, ruleset, progress=progress, layout=layout, columns=columns,
        encoding=encoding, translate=translate,
        keep="all" if keep_all else (list(keep) or None),
        check_duplicates=not no_duplicate_check, threads=threads, batch_rows=batch_rows,
        value_checks=value_checks)


# ------------------------------------------------------------------ policies and settle


def policy_options(func):
    """Options that choose and complete a payment policy."""

    @click.option("-p", "--policy", "policy", required=True, metavar="POLICY",
                  help="A registered policy id (drgkit policies list) or a policy TOML file.")
    @click.option("--weights", type=click.Path(dir_okay=False, path_type=Path),
                  help="The region's published weights table the policy reads (or put the "
                       "folder of tables in DRGKIT_PAYMENT_TABLES).")
    @click.option("--budget", "budgets", multiple=True, metavar="POOL=YUAN",
                  help="Points method: the budget of a pool (a scheme, or 'all'). Repeatable.")
    @functools.wraps(func)
    def wrapper(*args, budgets=(), **kwargs):
        overrides = {}
        for item in budgets:
            if "=" not in item:
                raise UserError(f"--budget expects POOL=YUAN, got {item!r}")
            pool, amount = item.split("=", 1)
            overrides[f"points.budget.{pool.strip()}"] = amount.strip()
        return func(*args, overrides=overrides or None, **kwargs)

    return wrapper


@cli.group(cls=_Group)
def policies() -> None:
    """List, show and validate payment policies."""


@policies.command("list")
def policies_list() -> None:
    """Every registered payment policy."""
    from .settlement._policy import tomllib

    reg = _registry.default_registry()
    click.echo(f"{'id':<16} {'method':<7} {'region':<9} {'ruleset':<14} {'weights':<18} name")
    for pid, path in reg.policies.items():
        meta = tomllib.loads(path.read_text(encoding="utf-8"))
        p, w = meta.get("policy", {}), meta.get("weights", {})
        weights = (w.get("embedded") and "shipped") or w.get("file", "")
        click.echo(f"{pid:<16} {p.get('method', ''):<7} {p.get('region', ''):<9} "
                   f"{p.get('ruleset', ''):<14} {weights:<18} {p.get('name', '')}")


@policies.command("show")
@click.argument("policy")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path))
def policies_show(policy: str, weights: Path | None) -> None:
    """A policy's parameters and the prices it gives a few groups."""
    from .settlement._price import PriceBook

    pol = _registry.default_registry().policy(policy, weights=weights)
    click.echo(f"{pol.id}: {pol.name}")
    click.echo(f"  method {pol.method}, region {pol.region or '-'}, ruleset {pol.ruleset or '-'}")
    click.echo(f"  file {pol.path}; weights {pol.weights.path} ({len(pol.weights.rows)} rows)")
    click.echo(f"  content hash {pol.content_hash}")
    for scheme, rates in (pol.base if pol.method == "rate" else
                          {s: {"*": r} for s, r in pol.reference_rate.items()}).items():
        click.echo(f"  {'base' if pol.method == 'rate' else 'reference'} rate {scheme}: " +
                   ", ".join(f"{lv}: {r}" for lv, r in rates.items()))
    if pol.low:
        click.echo(f"  low outliers: cost < {' / '.join(str(b.ratio) for b in pol.low.bands)} × "
                   f"standard → {pol.low.payment}")
    if pol.high:
        click.echo(f"  high outliers: cost > {' / '.join(str(b.ratio) for b in pol.high.bands)}"
                   f" × standard → {pol.high.payment} (share {pol.high.share})")
    book = PriceBook(pol)
    click.echo("  examples (standard, yuan): group, level, scheme")
    for row in list(pol.weights.rows.values())[:3]:
        for lv in book.levels[:3]:
            std, _rw, why = book.standard(row, lv, book.schemes[0], Decimal(1))
            click.echo(f"    {row.code:<6} level {lv} {book.schemes[0]}: "
                       f"{std if std is not None else why}")


@policies.command("validate")
@click.argument("policies_", metavar="POLICY...", nargs=-1, required=True)
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path))
def policies_validate(policies_: tuple[str, ...], weights: Path | None) -> None:
    """Load each policy and its weights table; check computed against published standards."""
    from .settlement._check import check_published

    reg = _registry.default_registry()
    failed = 0
    for spec in policies_:
        try:
            pol = reg.policy(spec, weights=weights)
        except DrgkitError as exc:
            failed += 1
            click.echo(f"✗ {spec}: {exc}")
            continue
        report = check_published(pol)
        mark = "✓" if not report.mismatches else "✗"
        failed += bool(report.mismatches)
        click.echo(f"{mark} {pol.id}: {len(pol.weights.rows)} groups; {report.checked} published "
                   f"standards checked to the cent, {len(report.mismatches)} differ")
        for line in report.mismatches[:10]:
            click.echo(f"    {line}")
    if failed:
        raise UserError(f"{failed} polic{'y' if failed == 1 else 'ies'} failed validation")


@cli.command("settle")
@click.argument("cases", type=click.Path(dir_okay=True, path_type=Path))
@ruleset_option(required=False)
@policy_options
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="Output file: .parquet for Parquet, anything else for CSV (a folder with "
                   "--dask/--partitions).")
@case_input_options
@click.option("--hospitals", type=click.Path(dir_okay=False, path_type=Path),
              help="Hospitals table: hospital_id, hospital_level and/or coefficient.")
@click.option("--keep", multiple=True, metavar="COLUMN", help="Copy an input column (repeatable).")
@click.option("--threads", type=int, help="Threads for the kernels (default: all cores).")
@click.option("--batch-rows", type=int, help="Rows per batch.")
@click.option("--dask", "dask_address", metavar="ADDRESS|local",
              help="Settle CASES (a folder of Parquet files, or one file by row groups) as a "
                   "partitioned dataset on a Dask cluster ('local' starts one); OUT is then a "
                   "folder of part files. Needs drgkit[dask].")
@click.option("--partitions", "dataset_local", is_flag=True,
              help="Settle CASES as a partitioned dataset in this process (OUT is a folder).")
@click.option("--row-groups-per-partition", type=int, default=1, show_default=True,
              help="With --dask/--partitions and a single Parquet file: row groups per part.")
@silent_option
def settle_cmd(cases, ruleset, policy, weights, overrides, out, layout, columns, encoding,
               hospitals, keep, threads, batch_rows, dask_address, dataset_local,
               row_groups_per_partition, silent) -> None:
    """Settle CASES under POLICY and write every case's payment to OUT.

    Cases that are not grouped yet are grouped first (with -r RULESET, or the ruleset the
    policy names). The points method reads the input twice: the first pass finds the point
    value from the budget. Amounts are exact: each case is rounded once, half up, to 0.01.
    """
    from .settlement import settle_file

    started = time.perf_counter()
    if dask_address or dataset_local:
        from .settlement import DaskRunner, LocalRunner, settle_dataset

        runner = LocalRunner() if dataset_local else DaskRunner(
            None if dask_address == "local" else dask_address)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = settle_dataset(cases, out, policy, ruleset, weights=weights,
                                    overrides=overrides, runner=runner, hospitals=hospitals,
                                    layout=layout, columns=columns, keep=list(keep) or None,
                                    batch_rows=batch_rows, threads=threads,
                                    row_groups_per_partition=row_groups_per_partition)
        if not silent:
            _print_settle_summary(result.summary, time.perf_counter() - started)
            click.echo(f"wrote {len(result.paths)} part files to {out}")
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = settle_file(cases, out, policy, ruleset, weights=weights, overrides=overrides,
                              layout=layout, columns=columns, encoding=encoding,
                              hospitals=hospitals, keep=list(keep) or None, threads=threads,
                              batch_rows=batch_rows)
    if not silent:
        _print_settle_summary(summary, time.perf_counter() - started)
        click.echo(f"wrote {out}")


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100:,}.{cents % 100:02d}"


def _print_settle_summary(summary, elapsed: float) -> None:
    click.echo(f"{summary.rows:,} cases in {elapsed:.2f} s; settled {summary.settled:,}")
    for name, count in summary.by_class.most_common():
        click.echo(f"  {name:<15} {count:>10,}")
    if summary.by_reason:
        click.echo("  not settled: " + ", ".join(f"{k} {v:,}" for k, v in
                                                  summary.by_reason.most_common()))
    for pool, value in summary.point_values.items():
        click.echo(f"  point value ({pool}): {value} yuan per point")
    click.echo(f"  {'hospital':<14} {'cases':>8} {'payment':>18} {'fund':>18} {'cost':>18} "
               f"{'gain/loss':>16}")
    for hosp, sums in sorted(summary.hospitals.items()):
        click.echo(f"  {hosp or '-':<14} {sums['cases']:>8,} {_money(sums['payment']):>18} "
                   f"{_money(sums['fund_payment']):>18} {_money(sums['total_cost']):>18} "
                   f"{_money(sums['payment'] - sums['total_cost']):>16}")
    total = {k: summary.total(k) for k in ("cases", "payment", "fund_payment", "total_cost")}
    click.echo(f"  {'total':<14} {total['cases']:>8,} {_money(total['payment']):>18} "
               f"{_money(total['fund_payment']):>18} {_money(total['total_cost']):>18} "
               f"{_money(total['payment'] - total['total_cost']):>16}")


def _amounts(path: Path | None, what: str) -> dict[str, int] | None:
    """hospital_id -> cents from a CSV with hospital_id and amount (yuan) columns."""
    if path is None:
        return None
    import csv as _csv

    from ._money import round_cents

    out: dict[str, int] = {}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = _csv.DictReader(fh)
        if not reader.fieldnames or not {"hospital_id", "amount"} <= set(reader.fieldnames):
            raise UserError(f"{path}: the {what} file needs hospital_id and amount columns")
        for k, row in enumerate(reader, start=2):
            try:
                value = Decimal(row["amount"].strip())
            except Exception:
                raise UserError(f"{path}, row {k}, column 'amount': not an amount: "
                                f"{row['amount']!r}") from None
            if value != value.quantize(Decimal("0.01")):
                raise UserError(f"{path}, row {k}, column 'amount': fractions of a cent")
            out[row["hospital_id"]] = round_cents(value)
    return out


@cli.command("period")
@click.argument("settled", type=click.Path(dir_okay=True, path_type=Path))
@policy_options
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Per-hospital period settlement (CSV or .parquet).")
@click.option("--month", metavar="YYYY-MM",
              help="Monthly pre-settlement (月度预结算) of this discharge month instead.")
@click.option("--all-months", is_flag=True, help="Pre-settlement of every month present.")
@click.option("--hospital-budgets", "hospital_budgets",
              type=click.Path(dir_okay=False, path_type=Path),
              help="CSV hospital_id,amount: budgets the bands are measured against.")
@click.option("--already-paid", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV hospital_id,amount: already paid this period (年度清算 subtracts it).")
@click.option("--deductions", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the quality deductions per hospital and group here.")
def period_cmd(settled, policy, weights, overrides, out, month, all_months, hospital_budgets,
               already_paid, deductions) -> None:
    """Period settlement of SETTLED (the output of drgkit settle) per hospital.

    Totals, quality deductions, surplus retention and over-spend sharing by the policy's
    bands, and clearing against what was already paid; or, with --month, the monthly
    pre-settlement.
    """
    from ._io import open_writer
    from .settlement import presettle, presettle_all, quality_deductions, settle_period
    from .settlement._settle import read_settled

    pol = _registry.default_registry().policy(policy, weights=weights, overrides=overrides)
    table = read_settled(settled)
    if month:
        result = presettle(table, pol, month=month)
    elif all_months:
        result = presettle_all(table, pol)
    else:
        result = settle_period(table, pol, budgets=_amounts(hospital_budgets, "budgets"),
                               already_paid=_amounts(already_paid, "already-paid"))
    for target, data in ((out, result),
                         (deductions, quality_deductions(table, pol) if deductions else None)):
        if target is None:
            continue
        with open_writer(target) as writer:
            for batch in data.to_batches():
                writer.write(batch)
            writer.close(data.schema)
    click.echo(_render_table(result))
    click.echo(f"wrote {out}")


def _render_table(table, limit: int = 30) -> str:
    """A plain text rendering of a small Arrow table."""
    names = table.column_names
    rows = [["" if v is None else str(v) for v in row.values()]
            for row in table.slice(0, limit).to_pylist()]
    widths = [max([len(n), *(len(r[k]) for r in rows)]) for k, n in enumerate(names)]
    lines = ["  ".join(n.rjust(w) for n, w in zip(names, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    if table.num_rows > limit:
        lines.append(f"… {table.num_rows - limit} more rows")
    return "\n".join(lines)


@cli.command("alliance")
@click.argument("cases", type=click.Path(dir_okay=True, path_type=Path))
@click.option("-a", "--alliances", "model", required=True, metavar="MODEL",
              help="An alliance model TOML file, or the name of a shipped one (demo).")
@click.option("-p", "--policy", "policy", metavar="POLICY",
              help="Settle CASES under this policy first (not needed when CASES is the output "
                   "of drgkit settle).")
@ruleset_option(required=False)
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path),
              help="The weights table the policy reads.")
@click.option("--referral-column", default="referral_from", show_default=True,
              help="Column of CASES naming the case a case was referred from.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for members, alliances, transfers, items and cases tables.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv",
              show_default=True, help="Format of the output tables.")
@case_input_options
def alliance_cmd(cases, model, policy, ruleset, weights, referral_column, out, fmt, layout,
                 columns, encoding) -> None:
    """Split each medical alliance's package among its members (医联体/医共体打包付费).

    Per member: its own case payments, what referrals moved (an up-transfer is paid once and
    split with the referrer; a down-transfer's surplus is split with the sender), its share of
    shared costs, joint-service revenue, cost increases and the package surplus or over-spend.
    Every allocation adds up exactly (largest remainder, ties to the smaller hospital id).
    """
    from ._io import open_cases
    from .alliance import load_model, split
    from .settlement import settle
    from .settlement._settle import read_settled

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
            raise UserError(f"{cases} is not settled yet (no settled/payment columns): give "
                            "the policy to settle it with -p POLICY")
        keep = [referral_column] if referral_column in names else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = settle(cases, policy, ruleset, weights=weights, layout=layout,
                           columns=columns, encoding=encoding, keep=keep)
    if referral_column != "referral_from" and referral_column in table.column_names:
        table = table.drop_columns([c for c in ("referral_from",) if c in table.column_names])
        table = table.rename_columns(["referral_from" if c == referral_column else c
                                      for c in table.column_names])
    if "referral_from" not in table.column_names:
        click.echo(f"note: no {referral_column!r} column: no referrals are split", err=True)
    result = split(table, alliance_model)
    paths = result.write(out, fmt)
    elapsed = time.perf_counter() - started
    click.echo(f"{table.num_rows:,} cases, {result.members.num_rows:,} members of "
               f"{result.alliances.num_rows:,} alliances in {elapsed:.2f} s (model "
               f"{result.model_id}, {result.model_hash}); {result.outside_cases:,} cases of "
               "hospitals in no alliance")
    click.echo(_render_table(result.alliances.select(
        ["alliance_id", "basis", "cases", "up_links", "down_links", "budget", "claims",
         "package_adjustment", "package", "net"])))
    click.echo("")
    click.echo(_render_table(result.members.select(
        ["alliance_id", "hospital_id", "own_payment", "referred_up", "up_received",
         "up_paid_out", "down_received", "down_paid_out", "package_adjustment",
         "shared_costs", "joint_revenue", "cost_increase", "net"]), limit=60))
    click.echo(f"wrote {', '.join(p.name for p in paths)} to {out}")


@cli.command("simulate")
@click.argument("cases", type=click.Path(dir_okay=True, path_type=Path))
@click.option("--base-ruleset", metavar="RULESET", help="Grouping of the base (default: the "
              "cases' own groups, else the base policy's ruleset).")
@click.option("--base-policy", required=True, metavar="POLICY", help="Policy of the base.")
@click.option("--alt-ruleset", metavar="RULESET", help="Grouping of the alternative.")
@click.option("--alt-policy", metavar="POLICY", help="Policy of the alternative.")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path),
              help="Weights table of the base policy.")
@click.option("--alt-weights", type=click.Path(dir_okay=False, path_type=Path),
              help="Weights table of the alternative policy.")
@click.option("--by", default="hospital_id", show_default=True,
              help="Comma-separated keys, e.g. hospital_id,department,drg.")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the per-key table (CSV or .parquet).")
@click.option("--cases-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the per-case table too.")
@click.option("--rows", default=40, show_default=True, help="Rows to print.")
def simulate_cmd(cases, base_ruleset, base_policy, alt_ruleset, alt_policy, weights,
                 alt_weights, by, out, cases_out, rows) -> None:
    """What-if: the same CASES under another ruleset and/or policy, and why payments change.

    The change per key is split into regrouping (分组变化), case mix (病例组合), price (价格) and
    outlier (极值) effects that add up to the cent.
    """
    from ._io import open_writer
    from .settlement import simulate

    if alt_ruleset is None and alt_policy is None and alt_weights is None:
        raise UserError("give --alt-ruleset, --alt-policy or --alt-weights: what changes?")
    keys = tuple(k.strip() for k in by.split(",") if k.strip())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = simulate(cases, base_ruleset=base_ruleset, base_policy=base_policy,
                       alt_ruleset=alt_ruleset, alt_policy=alt_policy, by=keys,
                       weights=weights, alt_weights=alt_weights)
    click.echo(sim.render(max_rows=rows))
    for target, data in ((out, sim.table), (cases_out, sim.cases)):
        if target is not None:
            with open_writer(target) as writer:
                for batch in data.to_batches():
                    writer.write(batch)
                writer.close(data.schema)
            click.echo(f"wrote {target}")


# ------------------------------------------------------------------ explain


@cli.command("explain")
@click.argument("cases", required=False, type=click.Path(dir_okay=True, path_type=Path))
@ruleset_option()
@click.option("--case", "case_id", metavar="ID", help="Id of the case in CASES (default: first).")
@click.option("--dx", help="Diagnoses for an ad-hoc case, principal first, '|' or ',' separated.")
@click.option("--px", default="", help="Procedures for an ad-hoc case, principal first.")
@click.option("--sex", default="", help="Ad-hoc case: 1 male, 2 female.")
@click.option("--age", default="", help="Ad-hoc case: age in years.")
@click.option("--age-days", default="", help="Ad-hoc case: age in days (infants).")
@click.option("--weight", default="", help="Ad-hoc case: birth weight in grams.")
@click.option("--los", default="", help="Ad-hoc case: length of stay in days.")
@click.option("--dept", default="", help="Ad-hoc case: department code.")
@click.option("--leaving-type", default="", help="Ad-hoc case: leaving type (1, 2, 3, 4, 5, 9).")
@click.option("--discharge-date", default="", help="Ad-hoc case: discharge date YYYY-MM-DD.")
@case_input_options
@click.option("--translate", is_flag=True, help="Translation mode (dx_map/px_map first).")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
def explain_cmd(cases, ruleset, case_id, dx, px, sex, age, age_days, weight, los, dept,
                leaving_type, discharge_date, layout, columns, encoding, translate,
                as_json) -> None:
    """Explain, step by step, how RULESET groups one case.

    Either pick a case from CASES (--case ID), or describe one with --dx, --px, --sex, --age…
    """
    from .grouping._explain import explain

    if cases is None and dx is None:
        raise UserError("give a case file (and --case ID) or describe a case with --dx …")
    if cases is not None and dx is not None:
        raise UserError("give either a case file or --dx, not both")
    if dx is not None:
        case = {"case_id": case_id or "ad-hoc", "diagnoses": dx, "procedures": px, "sex": sex,
                "age": age, "age_days": age_days, "birth_weight": weight, "los": los,
                "department": dept, "leaving_type": leaving_type,
                "discharge_date": discharge_date}
        result = explain(case, ruleset, layout="drgkit", translate=translate)
    else:
        from ._io import open_cases

        source = open_cases(cases, encoding=encoding)
        result = explain(source, ruleset, case_id=case_id, layout=layout, columns=columns,
                         translate=translate)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(result.render())


# ------------------------------------------------------------------ demo and warm-up


@cli.command("demo")
@click.option("--cases", "n", default=5000, show_default=True, help="How many demo cases.")
@click.option("--out", "out_dir", default="drgkit-demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for the demo files.")
@click.option("--seed", default=20231, show_default=True, help="Random seed of the generator.")
def demo_cmd(n: int, out_dir: Path, seed: int) -> None:
    """Run drgkit end to end on generated cases and the shipped demo rulesets."""
    import pyarrow.parquet as pq

    from . import _demo
    from .grouping import group_file
    from .grouping._explain import explain

    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    cases = _demo.generate_cases(n, seed=seed)
    cases_path = out_dir / "cases.parquet"
    pq.write_table(cases, cases_path)
    click.echo(f"1. generated {cases.num_rows:,} demo cases (about 2% deliberately bad) → "
               f"{cases_path}")
    reg = _registry.default_registry()
    series = reg.resolve("demo")
    click.echo(f"2. ruleset region 'demo': {', '.join(v.id for v in series.ordered())} — each "
               "case is grouped by the version in force on its discharge date")
    grouped_path = out_dir / "grouped.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = group_file(cases_path, grouped_path, series, keep=["hospital_id",
                                                                     "discharge_date"])
    click.echo(f"3. grouped → {grouped_path}")
    _print_summary(summary, time.perf_counter() - started)
    click.echo("   most frequent DRGs: " + ", ".join(
        f"{drg} {count:,}" for drg, count in summary.by_drg.most_common(8)))
    from .settlement import settle_file as _settle_file

    settled_path = out_dir / "settled.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        settle_summary = _settle_file(cases_path, settled_path, "demo", series,
                                      keep=["referral_from"])
    click.echo(f"   settled under policy 'demo' (rate method) → {settled_path}")
    _print_settle_summary(settle_summary, time.perf_counter() - started)
    from .alliance import load_model, split
    from .settlement._settle import read_settled

    alliance_dir = out_dir / "alliance"
    result = split(read_settled(settled_path), load_model("demo"))
    result.write(alliance_dir)
    click.echo(f"   split the packages of the demo alliances (model 'demo': up-transfers paid "
               f"once and split 30/70, down-transfer surplus 50/50, shared costs by "
               f"coefficient × volume) → {alliance_dir}/")
    click.echo(_indent(_render_table(result.members.select(
        ["alliance_id", "hospital_id", "claims", "package_adjustment", "shared_costs",
         "joint_revenue", "cost_increase", "net"])), "   "))
    # explain a case with a complication, as a coder would look at it
    import pyarrow.csv as pacsv

    grouped = pacsv.read_csv(grouped_path, convert_options=pacsv.ConvertOptions(
        column_types={"drg": "string", "case_id": "string"}))
    pick = None
    for case_id, drg, status in zip(grouped["case_id"].to_pylist(), grouped["drg"].to_pylist(),
                                    grouped["status"].to_pylist(), strict=True):
        if status == "ok" and drg.endswith("3"):
            pick = case_id
            break
    if pick is not None:
        click.echo(f"4. why did case {pick} group to its DRG?  (drgkit explain "
                   f"{cases_path} -r demo --case {pick})")
        click.echo("")
        explanation = explain(cases_path, series, case_id=pick)
        click.echo(_indent(explanation.render(), "   "))


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


@cli.command("warmup")
@click.option("-r", "--ruleset", "rulesets_", multiple=True, metavar="RULESET",
              help="Also compile (and cache) these rulesets.")
def warmup_cmd(rulesets_: tuple[str, ...]) -> None:
    """Compile the numba kernels (and rulesets) ahead of time, so first runs start fast."""
    import pyarrow as pa

    from .grouping import group

    started = time.perf_counter()
    reg = _registry.default_registry()
    targets = list(rulesets_) or [next(iter(reg.rulesets), None)]
    for spec in targets:
        if spec is None:
            continue
        case = pa.table({"case_id": ["w"], "diagnoses": ["A00.000"], "procedures": [""],
                         "sex": ["1"], "age": ["30"]})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a one-case probe lacks optional columns
            group(case, spec)
        click.echo(f"ready: {spec}")
    click.echo(f"kernels compiled and cached in {time.perf_counter() - started:.1f} s")


# ------------------------------------------------------------------ entry point


def main(argv: list[str] | None = None) -> Any:
    """Console entry point; plugins may add commands through ``drgkit_register_commands``."""
    try:
        reg = _registry.default_registry()
        if reg.plugin_manager is not None:
            reg.plugin_manager.hook.drgkit_register_commands(cli=cli)
    except DrgkitError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    return cli.main(args=argv, prog_name="drgkit")


if __name__ == "__main__":  # pragma: no cover
    main()
