"""``drgkit group`` and ``drgkit explain``, for DRG rulesets and DIP catalogues alike (the
scheme is told from ``-r``, see :mod:`drgkit._schemes`)."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import click

from .._schemes import resolve_target
from ._common import (
    UserError,
    data_warnings,
    print_accounting,
    print_dip_summary,
    print_group_summary,
    progress_bar,
)
from ._options import (
    batch_rows_option,
    case_input_options,
    rejects_option,
    ruleset_option,
    silent_option,
    threads_option,
    value_checks_option,
)


@click.command("group")
@click.argument("cases", type=click.Path(dir_okay=True, path_type=Path))
@ruleset_option()
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
    "--translate",
    is_flag=True,
    help="Translate codes through the ruleset's dx_map/px_map first (translation mode).",
)
@click.option(
    "--keep",
    multiple=True,
    metavar="COLUMN",
    help="Copy an input column to the output (repeatable).",
)
@click.option("--keep-all", is_flag=True, help="Copy every input column to the output.")
@click.option(
    "--no-duplicate-check",
    is_flag=True,
    help="Do not flag repeated case ids (saves memory on huge inputs).",
)
@threads_option
@batch_rows_option
@click.option(
    "--dask",
    "dask_address",
    metavar="ADDRESS|local",
    help="Group CASES (a folder of Parquet files, or one file by row groups) as a "
    "partitioned dataset on a Dask cluster ('local' starts one); OUT is then a folder of "
    "part files, which hold what a single run gives. Needs drgkit[dask].",
)
@click.option(
    "--partitions",
    "dataset_local",
    is_flag=True,
    help="Group CASES as a partitioned dataset in this process (OUT is a folder).",
)
@click.option(
    "--row-groups-per-partition",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="With --dask/--partitions and a single Parquet file: row groups per part.",
)
@rejects_option
@value_checks_option
@silent_option
def group(
    cases,
    ruleset,
    out,
    layout,
    columns,
    encoding,
    translate,
    keep,
    keep_all,
    no_duplicate_check,
    threads,
    batch_rows,
    dask_address,
    dataset_local,
    row_groups_per_partition,
    rejects,
    value_checks,
    silent,
) -> None:
    """Group CASES (CSV or Parquet) with a DRG RULESET or a DIP CATALOGUE and write every
    case's result to OUT.

    Output columns (after any kept input columns): case_id, status (ok / ungroupable /
    ambiguous / invalid), reason, detail, scheme (drg / dip), group; then for DRG mdc, adrg,
    drg, ruleset; for DIP packet, packet_kind, tier, score, aux_subtype, aux_coefficient,
    catalogue.
    """
    started = time.perf_counter()
    scheme, target = resolve_target(ruleset)
    if scheme.name != "drg":
        _only_drg(scheme.name, translate=translate, value_checks=value_checks != "format")
        if rejects is not None:
            raise UserError(
                f"--rejects is not available for {scheme.name.upper()} grouping: "
                "rows that cannot be used come out in OUT as status invalid, "
                "with the reason and the line in detail"
            )
        # DIP's summary has no warnings list: each data warning is shown once on stderr
        with data_warnings(), progress_bar("grouping", silent) as progress:
            summary = scheme.group_file(
                cases,
                out,
                target,
                progress=progress,
                layout=layout,
                columns=columns,
                encoding=encoding,
                keep="all" if keep_all else (list(keep) or None),
                check_duplicates=not no_duplicate_check,
                threads=threads,
                batch_rows=batch_rows,
            )
        if not silent:
            print_dip_summary(summary, time.perf_counter() - started, top=8)
            click.echo(f"wrote {out}")
        return
    if dask_address or dataset_local:
        _group_dataset(
            cases,
            out,
            target,
            dask_address,
            rejects=rejects,
            row_groups_per_partition=row_groups_per_partition,
            layout=layout,
            columns=columns,
            translate=translate,
            keep=None if keep_all else (list(keep) or None),
            keep_all=keep_all,
            check_duplicates=not no_duplicate_check,
            threads=threads,
            batch_rows=batch_rows,
            value_checks=value_checks,
            silent=silent,
            started=started,
        )
        return
    from ..grouping import group_file

    # keywords of newer library features are passed only when asked for
    extra = {"rejects": rejects} if rejects is not None else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported in the summary instead
        with progress_bar("grouping", silent) as progress:
            summary = group_file(
                cases,
                out,
                target,
                progress=progress,
                layout=layout,
                columns=columns,
                encoding=encoding,
                translate=translate,
                keep="all" if keep_all else (list(keep) or None),
                check_duplicates=not no_duplicate_check,
                threads=threads,
                batch_rows=batch_rows,
                value_checks=value_checks,
                **extra,
            )
    if not silent:
        print_group_summary(summary, time.perf_counter() - started)
        print_accounting(summary)
        click.echo(f"wrote {out}")


def _group_dataset(
    cases, out, target, dask_address, *, rejects, keep_all, silent, started, **options
):
    """``drgkit group --partitions/--dask``: one part file per partition in the folder OUT."""
    from .._runners import DaskRunner, LocalRunner
    from ..grouping._stream import group_dataset

    if rejects is not None:
        raise UserError(
            "--rejects reads CSV lines; a partitioned run reads Parquet, which has none"
        )
    if keep_all:
        raise UserError("--keep-all is not available with --dask/--partitions: name --keep columns")
    runner = (
        LocalRunner()
        if not dask_address
        else DaskRunner(None if dask_address == "local" else dask_address)
    )
    with warnings.catch_warnings(), runner:
        warnings.simplefilter("ignore")  # reported in the summary instead
        result = group_dataset(cases, out, target, runner=runner, **options)
    if not silent:
        print_group_summary(result.summary, time.perf_counter() - started)
        click.echo(f"wrote {len(result.paths)} part files to {out}")


def _only_drg(scheme: str, **given: bool) -> None:
    """A DRG-only option given with another scheme's target is a usage error, not ignored."""
    for name, on in given.items():
        if on:
            raise UserError(
                f"--{name.replace('_', '-')} applies to DRG rulesets only, and "
                f"-r names a {scheme.upper()} catalogue"
            )


def pay_options(f):
    """``-p/--policy`` and ``--point-value`` (and the ad-hoc case's cost, scheme and level):
    what each DIP candidate would be paid."""
    for option in reversed(
        [
            click.option(
                "-p",
                "--policy",
                metavar="POLICY",
                help="DIP --candidates: price each candidate under this DIP policy "
                "(deviation rule for the case's cost, payment, fund payment).",
            ),
            click.option(
                "--point-value",
                metavar="YUAN",
                help="Yuan per point (default: the policy's start-of-year point value "
                "for the case's insurance scheme).",
            ),
            click.option(
                "--cost",
                default="",
                metavar="YUAN",
                help="Ad-hoc case: total cost (decides low/high deviation).",
            ),
            click.option(
                "--insurance-type",
                default="",
                metavar="CODE",
                help="Ad-hoc case: insurance type or scheme (e.g. 310, resident).",
            ),
            click.option(
                "--level",
                default="",
                metavar="LEVEL",
                help="Ad-hoc case: the hospital's level (its coefficient in the policy).",
            ),
        ]
    ):
        f = option(f)
    return f


@click.command("explain")
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
@click.option(
    "--candidates",
    "show_candidates",
    is_flag=True,
    help="DIP: also list the packets the case could fall into, their points, and "
    "which change of a secondary diagnosis or procedure moves it there.",
)
@click.option(
    "--hospital-coefficient",
    default="1",
    show_default=True,
    metavar="X",
    help="DIP --candidates: the hospital's level coefficient in the points.",
)
@pay_options
@value_checks_option
def explain(
    cases,
    ruleset,
    case_id,
    dx,
    px,
    sex,
    age,
    age_days,
    weight,
    los,
    dept,
    leaving_type,
    discharge_date,
    layout,
    columns,
    encoding,
    translate,
    as_json,
    show_candidates,
    hospital_coefficient,
    policy,
    point_value,
    cost,
    insurance_type,
    level,
    value_checks,
) -> None:
    """Explain, step by step, how a DRG RULESET or a DIP CATALOGUE groups one case.

    Either pick a case from CASES (--case ID), or describe one with --dx, --px, --sex, --age…
    For DIP every tier is shown as tried, and --candidates lists the packets within reach
    (with -p POLICY: what the case would be paid in each).
    """
    from ..grouping._explain import explain as _explain

    if cases is None and dx is None:
        raise UserError("give a case file (and --case ID) or describe a case with --dx …")
    if cases is not None and dx is not None:
        raise UserError("give either a case file or --dx, not both")
    scheme, target = resolve_target(ruleset)
    if scheme.name == "dip":
        _only_drg("dip", translate=translate, value_checks=value_checks != "format")
        case = {
            "case_id": case_id or "ad-hoc",
            "diagnoses": dx,
            "procedures": px,
            "age": age,
            "age_days": age_days,
            "birth_weight": weight,
            "leaving_type": leaving_type,
            "discharge_date": discharge_date,
            "total_cost": cost,
            "insurance_type": insurance_type,
            "hospital_level": level,
        }
        if not show_candidates and (policy or point_value):
            raise UserError("-p/--policy and --point-value price the candidates: add --candidates")
        explain_dip_case(
            cases if dx is None else None,
            case,
            target,
            case_id,
            layout,
            columns,
            encoding,
            as_json,
            show_candidates,
            hospital_coefficient,
            policy,
            point_value,
        )
        return
    if show_candidates or policy or point_value:
        raise UserError(
            f"{'--candidates' if show_candidates else '-p/--policy, --point-value'}"
            " applies to DIP catalogues only, and -r names a DRG ruleset"
        )
    if dx is not None:
        case = {
            "case_id": case_id or "ad-hoc",
            "diagnoses": dx,
            "procedures": px,
            "sex": sex,
            "age": age,
            "age_days": age_days,
            "birth_weight": weight,
            "los": los,
            "department": dept,
            "leaving_type": leaving_type,
            "discharge_date": discharge_date,
        }
        result = _explain(
            case, target, layout="drgkit", translate=translate, value_checks=value_checks
        )
    else:
        from .._io import open_cases

        source = open_cases(cases, encoding=encoding)
        result = _explain(
            source,
            target,
            case_id=case_id,
            layout=layout,
            columns=columns,
            translate=translate,
            value_checks=value_checks,
        )
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(result.render())


def explain_dip_case(
    cases,
    case,
    target,
    case_id,
    layout,
    columns,
    encoding,
    as_json,
    show_candidates,
    hospital_coefficient,
    policy=None,
    point_value=None,
) -> None:
    """``drgkit explain`` (and ``drgkit dip candidates``) for a DIP catalogue."""
    import decimal

    from .._resolve import RESOLVER
    from ..grouping._dip_explain import PAY_FIELDS, candidates, case_from_input, explain_dip

    if cases is not None:
        from .._io import open_cases

        case, _separators = case_from_input(
            open_cases(cases, encoding=encoding),
            case_id,
            layout,
            columns,
            RESOLVER.layouts,
            PAY_FIELDS if policy else (),
        )
    from ..catalogue import CatalogueSeries

    case = {k: v for k, v in case.items() if v not in (None, "")}
    if isinstance(target, CatalogueSeries) and "discharge_date" not in case:
        # a described case without a date is one coded today: the newest version decides
        target = target.periods()[-1][0]
        if not as_json:
            click.echo(f"(no discharge date: explained with the newest version, {target.id})")
    result = explain_dip(case, target)
    try:
        coefficient = decimal.Decimal(hospital_coefficient)
    except decimal.InvalidOperation:
        raise UserError(
            f"--hospital-coefficient expects a number, got {hospital_coefficient!r}"
        ) from None
    if point_value is not None and not policy:
        raise UserError("--point-value prices the candidates under a policy: give -p POLICY")
    found = (
        candidates(
            case,
            target,
            hospital_coefficient=coefficient,
            policy=policy or None,
            point_value=point_value,
        )
        if show_candidates
        else None
    )
    if as_json:
        data = result.to_dict()
        if found is not None:
            data["candidates"] = [
                {
                    "packet": c.packet,
                    "name": c.name,
                    "kind": c.kind,
                    "tier": c.tier,
                    "score": str(c.score),
                    "aux_coefficient": None
                    if c.aux_coefficient is None
                    else str(c.aux_coefficient),
                    "points": str(c.points),
                    "change": c.change,
                    **(_pay_json(c) if policy else {}),
                }
                for c in found
            ]
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        return
    click.echo(str(result))
    if found is not None:
        if policy and found:
            c = found[0]
            click.echo(f"priced under {policy}: point value {c.point_value or '-'}")
        click.echo(render_candidates(found, priced=bool(policy)))


def _pay_json(c) -> dict:
    """A priced candidate's payment fields for --json (amounts as exact text)."""

    def text(v):
        return None if v is None else str(v)

    return {
        "deviation": c.deviation,
        "pay_points": text(c.pay_points),
        "point_value": text(c.point_value),
        "payment": text(c.payment),
        "fund_payment": text(c.fund_payment),
        "note": c.note,
    }


def render_candidates(found, priced: bool = False) -> str:
    """The candidate packets as a plain table: the case as coded first; ``priced``: with the
    deviation class, points after it, payment and fund payment under the policy."""

    def num(v) -> str:
        return "-" if v is None else _plain(v)

    def money(v) -> str:
        return "-" if v is None else format(v, "f")

    rows = [
        (c.packet, c.kind, c.tier, _plain(c.score), _plain(c.points))
        + (
            (c.deviation or "-", num(c.pay_points), money(c.payment), money(c.fund_payment))
            if priced
            else ()
        )
        + (c.change + (f" [{c.note}]" if priced and c.note else ""),)
        for c in found
    ]
    head = (
        ("packet", "kind", "tier", "score", "points")
        + (("deviation", "paid points", "payment", "fund") if priced else ())
        + ("change",)
    )
    widths = [max(len(r[k]) for r in [head, *rows]) for k in range(len(head) - 1)]

    def line(r: tuple[str, ...]) -> str:
        cells = []
        for k, (v, w) in enumerate(zip(r[:-1], widths, strict=True)):
            # text columns left, numbers right (deviation is text, after the points)
            cells.append(v.ljust(w) if k < 3 or (priced and k == 5) else v.rjust(w))
        return "  " + "  ".join(cells) + f"  {r[-1]}"

    title = "candidates (points = score × auxiliary × hospital coefficient"
    title += (
        "; paid points, payment and fund (yuan) under the policy for this case's cost):"
        if priced
        else "):"
    )
    return "\n".join([title, line(head), *(line(r) for r in rows)])


def _plain(value) -> str:
    """A decimal without trailing zeros and never in exponent form (420, not 4.2E+2)."""
    return format(value.normalize(), "f")
