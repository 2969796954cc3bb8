"""``drgkit dip build|list|validate|candidates`` and ``drgkit catalogues list|show``: DIP
catalogues (病种目录) from the command line. Grouping and explaining use ``drgkit group`` and
``drgkit explain`` with ``-r CATALOGUE``, as for DRG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import click

from .. import registry as _registry
from ._common import UserError
from ._listing import echo_validation, echo_versions
from ._options import case_input_options
from .group import pay_options


@click.group()
def dip() -> None:
    """DIP catalogues: build one from history, list, validate, candidate packets.

    Group with `drgkit group CASES -r CATALOGUE -o OUT`; explain with `drgkit explain`.
    """


@click.group()
def catalogues() -> None:
    """List and show DIP catalogues."""


def _resolve(spec: str) -> Any:
    """A catalogue or series from an id, region (``dip:REGION`` or ``dip_REGION`` too) or
    folder."""
    from .._schemes import DIP, split_scheme

    named, rest = split_scheme(spec)
    if named is not None and named.name != "dip":
        raise UserError(f"{spec!r} names a {named.name.upper()} target, not a DIP catalogue")
    return DIP.resolve(rest)


def _versions(target: Any) -> list[Any]:
    from ..catalogue import CatalogueSeries

    if isinstance(target, CatalogueSeries):
        return [v for v, _a, _b in target.periods()]
    return [target]


def _list() -> None:
    reg = _registry.default_registry()
    echo_versions(
        reg.catalogues, reg.catalogue_regions(), noun="DIP catalogue", region_option="dip:REGION"
    )


@dip.command("list")
def dip_list() -> None:
    """Every registered DIP catalogue version, with its region."""
    _list()


@catalogues.command("list")
def catalogues_list() -> None:
    """Every registered DIP catalogue version, with its region."""
    _list()


@catalogues.command("show")
@click.argument("catalogue")
def catalogues_show(catalogue: str) -> None:
    """Details of one catalogue (id, region, or folder): packets by kind, tiers, sources."""
    reg = _registry.default_registry()
    for cat in _versions(_resolve(catalogue)):
        info, t = cat.info, cat.tables
        click.echo(f"{info.id}: {info.name}")
        click.echo(
            f"  region {info.region or '-'}, version {info.version or '-'}, in force "
            f"{info.effective_from or '…'} – {info.effective_to or '…'}"
        )
        click.echo(f"  folder {info.path}")
        source = reg._catalogue_map[info.id][1] if info.id in reg.catalogues else "given as a path"
        click.echo(f"  registered by {source}")
        click.echo(f"  content hash {t.content_hash}")
        kinds: dict[str, int] = {}
        for p in t.packets.values():
            kinds[p.kind] = kinds.get(p.kind, 0) + 1
        click.echo(
            f"  {len(t.packets)} packets: "
            + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
        )
        click.echo(
            f"  score scale {t.score_scale}; {len(t.core)} core rows, {len(t.rules)} "
            f"pregroup/merge/subdivide rows, {len(t.comprehensive)} comprehensive rows, "
            f"{len(t.aux)} auxiliary rows; {len(t.excluded_dx)} excluded diagnoses"
        )
        chain = t.meta.get("fallback_chain", "")
        if chain:
            click.echo(f"  fallback chain: {chain.replace('|', ' → ')}")
        if info.description:
            click.echo(f"  {info.description}")


@dip.command("validate")
@click.argument("folders", metavar="CATALOGUE...", nargs=-1, required=True)
def dip_validate(folders: tuple[str, ...]) -> None:
    """Check every table of each catalogue (folder, id or region); errors name the file, row
    and column."""
    echo_validation(
        (cat for spec in folders for cat in _versions(_resolve(spec))),
        "catalogue",
        lambda tables: (f": {len(tables.packets)} packets", ()),
    )


@dip.command("build")
@click.argument("history", type=click.Path(dir_okay=True, path_type=Path))
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--options",
    "options_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A TOML file whose [build] section holds the build options.",
)
@click.option(
    "--min-cases",
    type=click.IntRange(min=1),
    help="Case-count threshold: a (diagnosis, procedure) combination with at least "
    "this many cases is a core packet.",
)
@click.option(
    "--coverage",
    metavar="SHARE",
    help="Instead of --min-cases: the largest threshold at which core packets hold "
    "at least this share of the cases (e.g. 0.95 or 95%).",
)
@click.option(
    "--scale",
    type=click.Choice(["1", "100", "1000"]),
    help="Scores relative to the mean cost of all cases × this (default 1000).",
)
@click.option(
    "--catalogue",
    "catalogue_id",
    default="local",
    show_default=True,
    metavar="ID",
    help="Id written in meta.csv.",
)
@click.option("--region", default="", help="Region written in meta.csv.")
@click.option("--name", default="", help="Name written in meta.csv.")
@click.option("--version", "version_", default="", help="Version written in meta.csv.")
@click.option(
    "--effective-from",
    default="",
    metavar="YYYY-MM-DD",
    help="First day in force, written in meta.csv.",
)
@click.option(
    "--effective-to",
    default="",
    metavar="YYYY-MM-DD",
    help="Last day in force, written in meta.csv.",
)
def dip_build(
    history: Path,
    out: Path,
    options_file: Path | None,
    min_cases: int | None,
    coverage: str | None,
    scale: str | None,
    catalogue_id: str,
    region: str,
    name: str,
    version_: str,
    effective_from: str,
    effective_to: str,
) -> None:
    """Build a local DIP catalogue from HISTORY (settled cases of past years: CSV or Parquet)
    into the folder OUT, and print the build report (also in OUT/build/report.md)."""
    from ..catalogue._build import build_catalogue
    from ..catalogue._build_options import BuildOptions

    if min_cases is not None and coverage is not None:
        raise UserError("give --min-cases or --coverage, not both")
    options = BuildOptions.from_toml(options_file) if options_file else BuildOptions()
    changes: dict[str, Any] = {}
    if min_cases is not None:
        changes.update(min_cases=min_cases, coverage=None)
    if coverage is not None:
        changes["coverage"] = coverage
    if scale is not None:
        changes["scale"] = int(scale)
    try:
        options = attrs.evolve(options, **changes)
    except (TypeError, ValueError, ArithmeticError) as exc:
        flag = next(iter(changes), "option").replace("_", "-")
        raise UserError(f"--{flag}: {exc}") from None
    result = build_catalogue(history, options)
    folder = result.write(
        out,
        catalogue=catalogue_id,
        name=name,
        region=region,
        version=version_,
        effective_from=effective_from,
        effective_to=effective_to,
    )
    click.echo(result.report.text(), nl=False)
    click.echo(
        f"wrote {folder} (catalogue {catalogue_id}); check it with `drgkit dip validate {folder}`"
    )


@dip.command("candidates")
@click.argument("cases", required=False, type=click.Path(dir_okay=True, path_type=Path))
@click.option(
    "-r",
    "--catalogue",
    "catalogue",
    required=True,
    metavar="CATALOGUE",
    help="A DIP catalogue id, region or folder.",
)
@click.option("--case", "case_id", metavar="ID", help="Id of the case in CASES (default: first).")
@click.option("--dx", help="Diagnoses for an ad-hoc case, principal first, '|' or ',' separated.")
@click.option("--px", default="", help="Procedures for an ad-hoc case, principal first.")
@click.option("--age", default="", help="Ad-hoc case: age in years.")
@click.option(
    "--hospital-coefficient",
    default="1",
    show_default=True,
    metavar="X",
    help="The hospital's level coefficient in the points.",
)
@pay_options
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@case_input_options
def dip_candidates(
    cases,
    catalogue,
    case_id,
    dx,
    px,
    age,
    hospital_coefficient,
    policy,
    point_value,
    cost,
    insurance_type,
    level,
    as_json,
    layout,
    columns,
    encoding,
) -> None:
    """The packets one case could fall into, their points, and which change of a secondary
    diagnosis or procedure moves it there (as `drgkit explain --candidates`); with -p POLICY
    also what the case would be paid in each (payment and fund payment, yuan)."""
    from .group import explain_dip_case

    if (cases is None) == (dx is None):
        raise UserError("give a case file (and --case ID) or describe a case with --dx …")
    case = {
        "case_id": case_id or "ad-hoc",
        "diagnoses": dx,
        "procedures": px,
        "age": age,
        "total_cost": cost,
        "insurance_type": insurance_type,
        "hospital_level": level,
    }
    explain_dip_case(
        cases,
        case,
        _resolve(catalogue),
        case_id,
        layout,
        columns,
        encoding,
        as_json,
        True,
        hospital_coefficient,
        policy,
        point_value,
    )
