"""The ``drgkit`` command line: thin commands over the library.

One module per command group (``rulesets``, ``dip``, ``group``, ``settle``, ``alliance``,
``demo``), the reusable option bundles in ``_options``. Exceptions are turned into what the
user sees in one place, :class:`_Group.invoke`: drgkit's own errors are one ``Error: …`` line
(exit 2), OS errors one line naming the path (exit 1), anything else a traceback asking for a
bug report (exit 1).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.metadata
import os
import sys
import traceback
from typing import Any

import click
import pluggy

from .. import registry as _registry
from .._io import without_pandas
from ..errors import DrgkitError
from ..registry import PluginError
from ._common import EXIT_RUNTIME, EXIT_USAGE, UserError
from .alliance import alliance
from .calibrate import calibrate_command
from .demo import demo, warmup
from .dip import catalogues, dip
from .group import explain, group
from .monitoring import indicators
from .report import report
from .rulesets import layouts, rulesets
from .settle import period, policies, settle, simulate

__all__ = ["EXIT_RUNTIME", "EXIT_USAGE", "UserError", "cli", "command_line", "main"]

#: why the plugins failed to load when ``main`` started; every command but help reports it
_PLUGIN_FAILURE: DrgkitError | None = None

#: where a bug report goes; printed under the traceback of an unexpected exception
BUG_REPORT = (
    "This is a bug in drgkit (or in a plugin), not a problem with your input: please "
    "report it to the drgkit maintainers with the command you ran and the traceback "
    "above."
)


class _Group(click.Group):
    """The root group: the one place where exceptions become what the user sees.

    * drgkit's own errors (:class:`~drgkit.errors.DrgkitError`: bad input, unknown ids, a broken
      ruleset) and click's usage errors: one ``Error:`` line, exit code 2;
    * operating-system errors (a missing or unreadable path, a full disk): one ``Error:`` line
      naming the path, exit code 1 — the input may be fine, the machine said no;
    * anything else is a bug: the traceback, a line asking to report it, exit code 1. A bare
      ``ValueError`` from Arrow or numpy is never passed off as the user's mistake.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            if _PLUGIN_FAILURE is not None and not _asks_for_help(ctx):
                raise _PLUGIN_FAILURE
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except PluginError as exc:
            raise _RuntimeError(str(exc)) from None
        except DrgkitError as exc:
            raise UserError(str(exc)) from None
        except OSError as exc:
            raise _RuntimeError(_os_error_line(exc)) from None
        except Exception:
            click.echo(traceback.format_exc(), err=True, nl=False)
            click.echo(f"drgkit {_version()}: {BUG_REPORT}", err=True)
            raise click.exceptions.Exit(EXIT_RUNTIME) from None


class _RuntimeError(click.ClickException):
    """The run failed for a reason outside the command line (the machine, a plugin): exit 1."""

    exit_code = EXIT_RUNTIME


def _os_error_line(exc: OSError) -> str:
    """``path: reason`` for an OS error about a path, else the error's own text."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        paths = [os.fsdecode(exc.filename)]
        if exc.filename2 is not None:
            paths.append(os.fsdecode(exc.filename2))
        return f"{' -> '.join(paths)}: {reason}"
    return reason


def _version() -> str:
    try:
        return importlib.metadata.version("drgkit")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        return "(not installed)"


def _asks_for_help(ctx: click.Context) -> bool:
    """True when the command line only asks for help, which needs no plugin."""
    # click 8.2+ keeps the sub-command in ``_protected_args`` (``protected_args`` is deprecated)
    protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args
    args = [*protected, *ctx.args]
    return any(a in ("-h", "--help") for a in args) or not args


@click.group(
    cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(package_name="drgkit", message="drgkit %(version)s")
def cli() -> None:
    """drgkit — DRG/DIP grouping and settlement for China's payment reform.

    Start with `drgkit demo`, list rulesets with `drgkit rulesets list` (DIP catalogues:
    `drgkit catalogues list`), group a file with `drgkit group CASES -r RULESET -o OUT` (or
    -r CATALOGUE for DIP), and ask why with `drgkit explain`.
    """


for _command in (
    rulesets,
    catalogues,
    dip,
    policies,
    group,
    settle,
    period,
    simulate,
    alliance,
    indicators,
    report,
    explain,
    demo,
    warmup,
    layouts,
    calibrate_command,
):
    cli.add_command(_command)


def command_line(registry: _registry.Registry | None = None) -> click.Group:
    """The ``drgkit`` group with the commands of ``registry``'s plugins added (a copy: the
    module's ``cli`` is left as it is). Built from the default registry when none is given.

    A plugin whose ``drgkit_register_commands`` raises, or that replaces a command another
    plugin or drgkit defines, is a :class:`~drgkit.registry.PluginError` naming it.
    """
    group = copy.copy(cli)
    group.commands = dict(cli.commands)
    reg = registry or _registry.default_registry()
    if reg.plugin_manager is None:
        return group
    for impl in reg.plugin_manager.hook.drgkit_register_commands.get_hookimpls():
        before = dict(group.commands)
        try:
            impl.function(cli=group)
        except Exception as exc:
            raise PluginError(
                impl.plugin_name,
                reg.plugin_location(impl.plugin_name),
                exc,
                "in drgkit_register_commands",
            ) from exc
        replaced = [n for n, c in before.items() if group.commands.get(n) is not c]
        if replaced:
            raise PluginError(
                impl.plugin_name,
                reg.plugin_location(impl.plugin_name),
                ValueError(f"it replaces the command {replaced[0]!r}"),
                "in drgkit_register_commands",
            )
    return group


def main(argv: list[str] | None = None) -> Any:
    """Console entry point; plugins may add commands through ``drgkit_register_commands``.

    A plugin that fails to load does not take ``--help`` and ``--version`` down with it: the
    failure is kept and reported, in one line naming the plugin, by any command that runs.
    """
    global _PLUGIN_FAILURE
    _PLUGIN_FAILURE = None
    group = cli
    try:
        group = command_line()
    except DrgkitError as exc:  # a plugin failing to load, two plugins claiming one id
        _PLUGIN_FAILURE = exc
    except pluggy.PluginValidationError as exc:  # a misspelled hook name
        plugin = exc.plugin
        _PLUGIN_FAILURE = PluginError(
            getattr(plugin, "__name__", None) or type(plugin).__qualname__,
            getattr(plugin, "__file__", None) or type(plugin).__module__,
            exc,
            "its hook check",
        )
    # drgkit's own commands read files and hand pyarrow no pandas object: spare them the
    # 0.3 s pandas import pyarrow makes to look for one (plugin commands may use pandas)
    args = sys.argv[1:] if argv is None else list(argv)
    own = (
        bool(args)
        and args[0] in cli.commands
        and group.commands.get(args[0]) is cli.commands[args[0]]
    )
    with without_pandas() if own else contextlib.nullcontext():
        return group.main(args=argv, prog_name="drgkit")
