"""What ``drgkit rulesets list|validate`` and ``drgkit catalogues list`` / ``dip validate``
share: the table of registered versions, and the check of each version's tables."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import click

from ..errors import DrgkitError
from ._common import UserError


def echo_versions(
    items: Mapping[str, Any], regions: Mapping[str, Any], *, noun: str, region_option: str
) -> None:
    """One line per registered version (id, region, version, period in force, name), then the
    versions of each region oldest first.

    ``items`` maps id to a version (a ruleset or a catalogue); ``regions`` maps region to its
    series. The period shown is the one the series applies: a version ends the day before the
    next one starts even when its own ``effective_to`` is later or absent. ``noun`` names what
    is listed ("ruleset", "DIP catalogue"); ``region_option`` is how ``-r`` names a region.
    """
    if not items:
        folder = noun.split()[-1]
        click.echo(f"No {noun}s are registered. Give a {folder} folder with -r PATH.")
        return
    periods = {v.id: (a, b) for series in regions.values() for v, a, b in series.periods()}
    click.echo(f"{'id':<22} {'region':<12} {'version':<9} {'in force':<25} name")
    for vid, version in items.items():
        info = version.info
        first, last = periods.get(vid, (info.effective_from, info.effective_to))
        period = f"{first or '…'} – {last or '…'}"
        click.echo(
            f"{vid:<22} {info.region or '-':<12} {info.version or '-':<9} {period:<25} {info.name}"
        )
    if regions:
        click.echo("")
        click.echo(
            f"Regions (group with -r {region_option}: each case uses the version in "
            "force on its discharge date):"
        )
        for region, series in regions.items():
            click.echo(f"  {region}: {', '.join(v.id for v in series.ordered())}")


def echo_validation(
    versions: Iterable[Any], noun: str, describe: Callable[[Any], tuple[str, Sequence[str]]]
) -> None:
    """Validate each version: ``✓`` with its folder, or ``✗`` with the error (naming file, row
    and column); then fail with a count if any did not validate.

    ``describe`` turns what ``validate()`` returned into a text to follow the folder and notes
    to print below it.
    """
    failed = 0
    for version in versions:
        try:
            outcome = version.validate()
        except DrgkitError as exc:
            failed += 1
            click.echo(f"✗ {version.id}: {exc}")
            continue
        tail, notes = describe(outcome)
        click.echo(f"✓ {version.id} ({version.info.path}){tail}")
        for note in notes:
            click.echo(f"    note: {note}")
    if failed:
        raise UserError(f"{failed} {noun}(s) failed validation")
