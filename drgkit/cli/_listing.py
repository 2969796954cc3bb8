"""The ``list`` table shared by ``drgkit rulesets list`` and ``drgkit catalogues list``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click


def echo_versions(items: Mapping[str, Any], regions: Mapping[str, Any], *, noun: str,
                  region_option: str) -> None:
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
        click.echo(f"{vid:<22} {info.region or '-':<12} {info.version or '-':<9} "
                   f"{period:<25} {info.name}")
    if regions:
        click.echo("")
        click.echo(f"Regions (group with -r {region_option}: each case uses the version in "
                   "force on its discharge date):")
        for region, series in regions.items():
            click.echo(f"  {region}: {', '.join(v.id for v in series.ordered())}")
