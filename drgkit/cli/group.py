"""``drgkit group`` and ``drgkit explain``."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import click

from ._common import UserError, print_accounting, print_group_summary, progress_bar
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
@threads_option
@batch_rows_option
@rejects_option
@value_checks_option
@silent_option
def group(cases, ruleset, out, layout, columns, encoding, translate, keep, keep_all,
          no_duplicate_check, threads, batch_rows, rejects, value_checks, silent) -> None:
    """Group CASES (CSV or Parquet) with RULESET and write every case's result to OUT.

    Output columns: case_id, status (ok / ungroupable / ambiguous / invalid), reason, detail,
    mdc, adrg, drg, ruleset, after any kept input columns.
    """
    from ..grouping import group_file

    started = time.perf_counter()
    # keywords of newer library features are passed only when asked for
    extra = {"rejects": rejects} if rejects is not None else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported in the summary instead
        with progress_bar("grouping", silent) as progress:
            summary = group_file(
                cases, out, ruleset, progress=progress, layout=layout, columns=columns,
                encoding=encoding, translate=translate,
                keep="all" if keep_all else (list(keep) or None),
                check_duplicates=not no_duplicate_check, threads=threads, batch_rows=batch_rows,
                value_checks=value_checks, **extra)
    if not silent:
        print_group_summary(summary, time.perf_counter() - started)
        print_accounting(summary)
        click.echo(f"wrote {out}")


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
@value_checks_option
def explain(cases, ruleset, case_id, dx, px, sex, age, age_days, weight, los, dept,
            leaving_type, discharge_date, layout, columns, encoding, translate,
            as_json, value_checks) -> None:
    """Explain, step by step, how RULESET groups one case.

    Either pick a case from CASES (--case ID), or describe one with --dx, --px, --sex, --age…
    """
    from ..grouping._explain import explain as _explain

    if cases is None and dx is None:
        raise UserError("give a case file (and --case ID) or describe a case with --dx …")
    if cases is not None and dx is not None:
        raise UserError("give either a case file or --dx, not both")
    if dx is not None:
        case = {"case_id": case_id or "ad-hoc", "diagnoses": dx, "procedures": px, "sex": sex,
                "age": age, "age_days": age_days, "birth_weight": weight, "los": los,
                "department": dept, "leaving_type": leaving_type,
                "discharge_date": discharge_date}
        result = _explain(case, ruleset, layout="drgkit", translate=translate,
                          value_checks=value_checks)
    else:
        from .._io import open_cases

        source = open_cases(cases, encoding=encoding)
        result = _explain(source, ruleset, case_id=case_id, layout=layout, columns=columns,
                          translate=translate, value_checks=value_checks)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(result.render())
