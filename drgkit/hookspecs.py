"""The plugin contract of drgkit: every hook a plugin may implement.

A plugin is any module or object with functions marked ``@drgkit.hookimpl`` whose names are
the hooks below. drgkit's own rulesets and layouts are registered by an ordinary plugin
(``drgkit._builtin``) through these same hooks. Third-party plugins are found through the
``drgkit`` entry-point group::

    # pyproject.toml of a plugin distribution
    [project.entry-points.drgkit]
    suzhou = "drgkit_suzhou.plugin"

    # drgkit_suzhou/plugin.py
    import drgkit

    @drgkit.hookimpl
    def drgkit_register_rulesets(registry):
        registry.add_ruleset(HERE / "2023", region="suzhou", version="2023",
                             effective_from="2023-01-01")

Hooks receive a registry object and call its ``add_*`` methods; the registry rejects a second
registration of the same id and names both plugins. Set ``DRGKIT_DISABLE_PLUGINS`` to a
comma-separated list of plugin names to block them (e.g. a broken third-party plugin).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import click

    from .registry import Registry

__all__ = ["hookimpl", "hookspec"]

PROJECT = "drgkit"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Mark a plugin function as the implementation of a drgkit hook.
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def drgkit_register_rulesets(registry: Registry) -> None:
    """Register ruleset versions.

    Call ``registry.add_ruleset(path, id=..., name=..., region=..., version=...,
    effective_from=..., effective_to=..., description=...)`` once per version. ``path`` is a
    folder in the neutral table layout; every keyword is optional and overrides what the
    folder's ``meta.csv`` says (``ruleset``, ``name``, ``region``, ``version``,
    ``effective_from``, ``effective_to``, ``description``).

    Versions that share a ``region`` form a series: grouping with ``-r <region>`` picks, for
    each case, the version in force on its discharge date. Their ``effective_from`` dates must
    differ.

    Registering an id that another plugin already registered raises
    :class:`~drgkit.errors.RegistryError` naming both plugins. Return nothing; all results go
    through the registry.
    """


@hookspec
def drgkit_register_policies(registry: Registry) -> None:
    """Register payment policies.

    Call ``registry.add_policy(path, id=None, weights=None)`` once per policy. ``path`` is a
    policy TOML file (see ``drgkit/policies/*.toml`` for the shipped ones and the README for
    every key); ``id`` defaults to the file's ``policy.id``; ``weights`` is the published
    weights table the policy reads, when the plugin ships one (a region's official table is
    usually given at run time with ``--weights`` or found in ``DRGKIT_PAYMENT_TABLES``).
    Registering an id that another plugin already registered raises
    :class:`~drgkit.errors.RegistryError` naming both plugins.
    """


@hookspec
def drgkit_register_catalogues(registry: Registry) -> None:
    """Register DIP catalogue versions (按病种分值付费 病种目录).

    Call ``registry.add_catalogue(path, id=..., name=..., region=..., version=...,
    effective_from=..., effective_to=..., description=...)`` once per version. ``path`` is a
    folder in the DIP catalogue format (``drgkit/catalogue/FORMAT.md``); every keyword is
    optional and overrides what the folder's ``meta.csv`` says (``catalogue``, ``name``,
    ``region``, ``version``, ``effective_from``, ``effective_to``, ``description``).
    Registering an id that another plugin already registered raises
    :class:`~drgkit.errors.RegistryError` naming both plugins. Return nothing.
    """


@hookspec
def drgkit_register_layouts(registry: Registry) -> None:
    """Register case file layouts (how a file names the case fields).

    Call ``registry.add_layout(drgkit.Layout(name, columns={case_field: file_column, ...},
    detect=(columns that identify the layout,), separators=",|"))``. A layout whose
    ``detect`` columns are all present in an input is chosen automatically when the user names
    none. Names must be unique across plugins.
    """


@hookspec
def drgkit_register_commands(cli: click.Group) -> None:
    """Add commands to the ``drgkit`` command line.

    ``cli`` is the top-level click group; decorate new commands with ``@cli.command()``.
    Keep commands thin: parse options, call the library, print.
    """
