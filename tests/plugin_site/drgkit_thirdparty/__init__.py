"""A third-party drgkit plugin for tests/test_plugins.py: it implements every hook.

It is found the way an installed plugin is: ``tests/plugin_site`` holds it next to a
``drgkit_thirdparty-1.0.dist-info`` whose ``entry_points.txt`` declares it in the ``drgkit``
group, and the tests put that folder on ``sys.path``.
"""

from __future__ import annotations

from pathlib import Path

import click

import drgkit
from drgkit._builtin import shipped_policies_dir, shipped_rulesets_dir

#: a layout of this plugin's own: English column names and ';' between codes
LAYOUT = drgkit.Layout(
    "thirdparty",
    columns={
        "case_id": "MRN",
        "sex": "SEX",
        "age": "AGE",
        "diagnoses": "DX_CODES",
        "procedures": "PX_CODES",
        "discharge_date": "DISCHARGED",
        "total_cost": "COST",
    },
    detect=("MRN", "DX_CODES"),
    separators=";",
    description="The third-party test plugin's export format.",
)


@drgkit.hookimpl
def drgkit_register_rulesets(registry) -> None:
    registry.add_ruleset(
        shipped_rulesets_dir() / "demo" / "2024",
        id="thirdparty_2024",
        region="thirdparty",
        version="2024",
        effective_from="2024-01-01",
        name="third-party test ruleset (the demo 2024 tables)",
    )


@drgkit.hookimpl
def drgkit_register_policies(registry) -> None:
    registry.add_policy(shipped_policies_dir() / "demo.toml", id="thirdparty-demo")


@drgkit.hookimpl
def drgkit_register_alliance_models(registry) -> None:
    # the id comes from the file's own ``id`` key
    registry.add_alliance_model(Path(__file__).resolve().parent / "alliance.toml")


@drgkit.hookimpl
def drgkit_register_layouts(registry) -> None:
    registry.add_layout(LAYOUT)


@drgkit.hookimpl
def drgkit_register_commands(cli) -> None:
    @cli.command("thirdparty-count")
    @click.argument("cases", type=click.Path(exists=True, dir_okay=False))
    @click.option("-r", "--ruleset", default="thirdparty_2024", show_default=True)
    def thirdparty_count(cases: str, ruleset: str) -> None:
        """Group CASES and print the count of each status."""
        table = drgkit.group(cases, ruleset)
        counts: dict[str, int] = {}
        for status in table.column("status").to_pylist():
            counts[status] = counts.get(status, 0) + 1
        click.echo("; ".join(f"{k} {v}" for k, v in sorted(counts.items())))
