"""pytest fixtures for drgkit plugin authors (and drgkit's own tests).

Installed with drgkit as a pytest plugin (the ``pytest11`` entry point ``drgkit.testing``), so
a plugin's test suite can use the fixtures without any import::

    import my_plugin

    def test_my_ruleset_is_registered(drgkit_registry):
        reg = drgkit_registry(my_plugin)
        assert "xian_2024" in reg.rulesets

    def test_my_command(drgkit_registry, drgkit_cli):
        drgkit_registry(my_plugin)
        result = drgkit_cli("xian-report", "--year", "2024")
        assert result.exit_code == 0, result.output

``drgkit_registry(*plugins, builtin=True, entry_points=False)`` builds a registry from only the
given plugins (plus drgkit's built-in one unless ``builtin=False``; installed plugins only with
``entry_points=True``) and makes it the process-wide default for the rest of the test, so every
library call and command sees exactly those plugins. ``drgkit_cli(*args)`` runs the ``drgkit``
command line in-process, with the commands the current default registry's plugins add, and
returns click's :class:`~click.testing.Result` (``exit_code``, ``output`` with stdout and stderr).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result

from . import registry as _registry

__all__ = ["drgkit_cli", "drgkit_registry"]


@pytest.fixture
def drgkit_registry(monkeypatch: pytest.MonkeyPatch) -> Callable[..., _registry.Registry]:
    """A factory of isolated registries: ``drgkit_registry(plugin, ...) -> Registry``.

    The registry built last is the process-wide default until the test ends; the previous
    default comes back afterwards. ``DRGKIT_DISABLE_PLUGINS`` still applies.
    """

    def build(
        *plugins: Any, builtin: bool = True, entry_points: bool = False
    ) -> _registry.Registry:
        pm = _registry.plugin_manager(entry_points=entry_points, plugins=plugins, builtin=builtin)
        reg = _registry.Registry.from_plugins(pm)
        monkeypatch.setattr(_registry, "_DEFAULT", reg)
        return reg

    return build


@pytest.fixture
def drgkit_cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run ``drgkit ARGS...`` in-process: ``drgkit_cli("group", "cases.csv", ...) -> Result``.

    Arguments may be paths or numbers (they are turned into strings); ``env`` sets
    environment variables for the run and ``input`` feeds stdin. Exceptions are not raised:
    a bug shows as ``exit_code == 1`` with the traceback in ``output``, as on a terminal.
    """
    from .cli import command_line

    def run(*args: Any, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        group = command_line()
        return CliRunner().invoke(
            group,
            [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in args],
            input=input,
            prog_name="drgkit",
        )

    return run
