"""``drgkit rulesets list|show|validate`` and ``drgkit layouts``."""

from __future__ import annotations

import click

from .. import registry as _registry
from ._listing import echo_validation, echo_versions


@click.group()
def rulesets() -> None:
    """List, show and validate rulesets."""


def _versions(target):
    from ..ruleset._model import RulesetSeries

    return target.ordered() if isinstance(target, RulesetSeries) else [target]


@rulesets.command("list")
def rulesets_list() -> None:
    """Every registered ruleset version, grouped by region."""
    reg = _registry.default_registry()
    echo_versions(reg.rulesets, reg.regions(), noun="ruleset", region_option="REGION")


@rulesets.command("show")
@click.argument("ruleset")
def rulesets_show(ruleset: str) -> None:
    """Details of one ruleset (id, region or folder)."""
    reg = _registry.default_registry()
    for rs in _versions(reg.resolve(ruleset)):
        info, comp = rs.info, rs.compiled
        names = comp.names
        adrgs = {e[2] for e in names["entries"] if e[1] == "ADRG"}
        click.echo(f"{info.id}: {info.name}")
        click.echo(
            f"  region {info.region or '-'}, version {info.version or '-'}, in force "
            f"{info.effective_from or '…'} – {info.effective_to or '…'}"
        )
        click.echo(f"  folder {info.path}")
        source = reg.registered_by(info.id) if info.id in reg.rulesets else "given as a path"
        click.echo(f"  registered by {source}")
        click.echo(f"  content hash {comp.content_hash}")
        click.echo(
            f"  {len(names['mdcs'])} MDCs, {len(adrgs)} ADRGs, "
            f"{len({s[1] for s in names['steps']})} DRGs, {len(names['lists'])} code "
            f"lists, {len(names['codes'])} codes, {len(names['rules'])} rules"
        )
        click.echo(
            f"  translation maps: dx {'yes' if names['has_dx_map'] else 'no'}, "
            f"px {'yes' if names['has_px_map'] else 'no'}"
        )
        if info.description:
            click.echo(f"  {info.description}")


@rulesets.command("validate")
@click.argument("rulesets_", metavar="RULESET...", nargs=-1, required=True)
def rulesets_validate(rulesets_: tuple[str, ...]) -> None:
    """Check every table of each ruleset; errors name the file, row and column."""
    reg = _registry.default_registry()
    echo_validation(
        (rs for spec in rulesets_ for rs in _versions(reg.resolve(spec))),
        "ruleset",
        lambda notes: ("", notes),
    )


@click.command("layouts")
def layouts() -> None:
    """Case file layouts: how each names the case fields."""
    for name, layout in _registry.default_registry().layouts.items():
        click.echo(f"{name}: {layout.description}")
        mapped = ", ".join(f"{f}={c}" for f, c in layout.columns.items())
        click.echo(f"    {mapped}")
