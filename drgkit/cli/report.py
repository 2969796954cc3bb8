"""``drgkit report``: a settled year as an HTML page or an Excel workbook people read."""

from __future__ import annotations

from pathlib import Path

import click

from .. import registry as _registry
from ._common import UserError, data_warnings
from ._options import policy_options, silent_option


@click.command("report")
@click.argument("settled", type=click.Path(dir_okay=True, path_type=Path))
@policy_options
@click.option(
    "-o",
    "--out",
    "outs",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="report.html (one self-contained page) or report.xlsx (a workbook). Repeatable.",
)
@click.option(
    "--lang",
    type=click.Choice(["zh", "en"]),
    default="zh",
    show_default=True,
    help="Language of the labels.",
)
@click.option("--hospital", metavar="HOSPITAL_ID", help="One hospital against the region.")
@click.option(
    "--what-if",
    "what_if",
    type=click.Path(dir_okay=False, path_type=Path),
    help="drgkit simulate's output (--cases-out, or -o by department/drg): what changes "
    "per department and DRG under next year's rules.",
)
@click.option(
    "--previous",
    type=click.Path(dir_okay=True, path_type=Path),
    help="The previous period's settled cases, for growth.",
)
@click.option(
    "--cases",
    "cases",
    type=click.Path(dir_okay=True, path_type=Path),
    help="The case input SETTLED came from, for columns it lacks (los, mdc, drug_cost…).",
)
@click.option(
    "--year",
    type=click.IntRange(min=1900, max=2999),
    help="Only the cases discharged in YEAR, with growth against the year before from the "
    "same file (unless --previous is given).",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=15,
    show_default=True,
    help="DRGs in the gain/loss chart and tables.",
)
@silent_option
def report(
    settled,
    policy,
    weights,
    overrides,
    outs,
    lang,
    hospital,
    what_if,
    previous,
    cases,
    year,
    top,
    silent,
) -> None:
    """Write the report of SETTLED (drgkit settle's output) under POLICY: CMI by hospital, the
    cost × time index quadrant, gain/loss by DRG, the monthly trend, case mix by MDC, the
    warnings with their lights and the indicator tables."""
    from ..report import build_report

    for out in outs:
        if out.suffix.lower() not in (".html", ".htm", ".xlsx"):
            raise UserError(f"{out}: write the report as .html or .xlsx")
    pol = _registry.default_registry().policy(policy, weights=weights, overrides=overrides)
    shown = {"any": False}

    def progress(by: tuple[str, ...], rows: int) -> None:
        # one line rewritten after each batch: a long run shows which table it is reading
        shown["any"] = True
        line = f"report: {', '.join(by) or 'region'}: {rows:,} rows read"
        click.echo(f"\r{line:<60}", err=True, nl=False)

    try:
        with data_warnings():
            result = build_report(
                settled,
                pol,
                hospital=hospital,
                what_if=what_if,
                previous=previous,
                cases=cases,
                year=year,
                top=top,
                progress=None if silent else progress,
            )
    finally:
        # end the progress line, also before an error (else "…rows readError: …")
        if shown["any"]:
            click.echo("", err=True)
    for out in outs:
        result.write(out, lang=lang)
        click.echo(f"wrote {out}")


def demo_report(out_dir: Path) -> Path:
    """The last step of ``drgkit demo``: the report of its last settled year (growth against
    the year before), as a page."""
    import warnings

    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from ..report import build_report

    settled, path = out_dir / "settled.csv", out_dir / "report.html"
    dates = pacsv.read_csv(
        settled,
        convert_options=pacsv.ConvertOptions(
            include_columns=["discharge_date"], column_types={"discharge_date": "date32"}
        ),
    )["discharge_date"]
    year = pc.max(pc.year(dates)).as_py()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the demo's deliberately bad cases were reported above
        result = build_report(settled, _registry.default_registry().policy("demo"), year=year)
    result.write(path)
    click.echo(
        f"9. the report of {year} against {year - 1}, for a hospital director (drgkit report "
        f"{settled} -p demo --year {year} -o {path}; -o report.xlsx for Excel, --lang en for "
        f"English) → {path}"
    )
    return path
