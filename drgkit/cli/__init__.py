"""The ``drgkit`` command line: thin commands over the library.

One module per command group (``rulesets``, ``group``, ``settle``, ``alliance``, ``demo``), the
reusable option bundles in ``_options``. Errors become one ``Error: …`` line in one place,
:class:`_Group.invoke`; a traceback means a bug.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .. import registry as _registry
from ..errors import DrgkitError
from ._common import EXIT_USAGE, UserError
from .alliance import alliance
from .demo import demo, warmup
from .group import explain, group
from .rulesets import layouts, rulesets
from .settle import period, policies, settle, simulate

__all__ = ["EXIT_USAGE", "UserError", "cli", "main"]


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


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"],
                                           "max_content_width": 100})
@click.version_option(package_name="drgkit", message="drgkit %(version)s")
def cli() -> None:
    """drgkit — DRG/DIP grouping and settlement for China's payment reform.

    Start with `drgkit demo`, list rulesets with `drgkit rulesets list`, group a file with
    `drgkit group CASES -r RULESET -o OUT`, and ask why with `drgkit explain`.
    """


for _command in (rulesets, policies, group, settle, period, simulate, alliance, explain, demo,
                 warmup, layouts):
    cli.add_command(_command)


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
