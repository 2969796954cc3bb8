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

Hooks receive a registry object (typed by the :class:`PluginRegistry` protocol) and call its
``add_*`` methods; the registry rejects a second registration of the same id and names both
plugins. A plugin that fails to import or raises in a hook is reported by name, with how to
block it. Set ``DRGKIT_DISABLE_PLUGINS`` to a
comma-separated list of plugin names to block them (e.g. a broken third-party plugin).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import click

    from ._schemes import Scheme
    from .catalogue._model import CatalogueInfo
    from .ruleset._model import RulesetInfo
    from .schema import Layout

__all__ = ["AllianceModelRegistry", "PluginRegistry", "hookimpl", "hookspec"]


@runtime_checkable
class PluginRegistry(Protocol):
    """What a registration hook receives: the methods a plugin may call, and nothing else.

    :class:`drgkit.registry.Registry` is the implementation; hooks are typed against this
    protocol so that the contract does not import the registry (which imports this module)
    and a plugin's tests may pass any object with these methods.
    """

    def add_ruleset(
        self, path: str | os.PathLike[str], *, id: str | None = None, **info: Any
    ) -> RulesetInfo:
        """Register the ruleset folder at ``path``; see :func:`drgkit_register_rulesets`."""
        ...

    def add_policy(
        self,
        path: str | os.PathLike[str],
        *,
        id: str | None = None,
        weights: str | os.PathLike[str] | None = None,
    ) -> str:
        """Register a policy TOML file; see :func:`drgkit_register_policies`."""
        ...

    def add_catalogue(
        self, path: str | os.PathLike[str], *, id: str | None = None, **info: Any
    ) -> CatalogueInfo:
        """Register a DIP catalogue folder; see :func:`drgkit_register_catalogues`."""
        ...

    def add_layout(self, layout: Layout) -> None:
        """Register a case file layout; see :func:`drgkit_register_layouts`."""
        ...

    def add_scheme(self, scheme: Scheme) -> None:
        """Register a payment scheme; see :func:`drgkit_register_schemes`."""
        ...


@runtime_checkable
class AllianceModelRegistry(Protocol):
    """What :func:`drgkit_register_alliance_models` receives (a protocol of its own, so that
    objects written against :class:`PluginRegistry` keep satisfying it)."""

    def add_alliance_model(self, path: str | os.PathLike[str], *, id: str | None = None) -> str:
        """Register an alliance model TOML file; see :func:`drgkit_register_alliance_models`."""
        ...


PROJECT = "drgkit"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Mark a plugin function as the implementation of a drgkit hook.
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def drgkit_register_schemes(registry: PluginRegistry) -> None:
    """Register payment schemes (DRG and DIP are drgkit's, registered by its built-in plugin
    through this hook; a plugin may add a third).

    Call ``registry.add_scheme(drgkit.Scheme(name, label, recognises, resolve, group,
    group_file, explain, methods={policy_method: drgkit.SettleMethod(run_factory,
    two_pass)}))`` once per scheme:

    * ``name``: the value of the results' ``scheme`` column and the ``name:`` prefix that
      forces the scheme for a grouping target (``-r name:TARGET``);
    * ``recognises(target) -> bool``: whether a target (object, id, region, folder) is this
      scheme's; schemes are tried in registration order (DRG, DIP, then plugins' ones);
    * ``resolve(target)``: the target made ready to group; ``group(cases, target, **opts)``
      returns an Arrow table with ``scheme`` and ``group`` columns and every input row;
      ``group_file(cases, out, target, **opts)`` streams to a file and returns a summary;
      ``explain(case, target, **opts)`` explains one case;
    * ``methods``: the policy ``method`` values the scheme settles (``[policy] method`` in a
      policy TOML). ``run_factory()`` returns the run class (called on first use: keep the
      import inside it); ``two_pass`` says whether a first pass computes point values. The
      run class has the interface of :class:`drgkit.settlement.SettleRun` (``prepare``,
      ``partial``, ``finish``, ``summary``, ``schema``, ``rows_done``, ``group_run``,
      ``warn_data``), so settle, partitions and Dask runners work unchanged.

    A scheme name or a policy method that another plugin already registered raises
    :class:`~drgkit.errors.RegistryError` naming both plugins. Return nothing.
    """


@hookspec
def drgkit_register_rulesets(registry: PluginRegistry) -> None:
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
def drgkit_register_policies(registry: PluginRegistry) -> None:
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
def drgkit_register_catalogues(registry: PluginRegistry) -> None:
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
def drgkit_register_layouts(registry: PluginRegistry) -> None:
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
    Keep commands thin: parse options, call the library, print; raise
    :class:`~drgkit.errors.DrgkitError` for the user's mistakes (one ``Error:`` line, exit 2).
    Adding a command whose name drgkit or another plugin already uses is refused with a
    :class:`~drgkit.registry.PluginError` naming the plugin, as is an exception raised here.
    Commands reach rulesets and policies through ``drgkit.default_registry()``.
    """


@hookspec
def drgkit_register_alliance_models(registry: AllianceModelRegistry) -> None:
    """Register medical-alliance models (医联体 / 医共体: members, referral shares, package
    bands, shared costs; the format is in ``drgkit/alliance/_model.py``).

    Call ``registry.add_alliance_model(path, id=None)`` once per model. ``path`` is a model
    TOML file (its ``members_file``, if any, is read relative to it); ``id`` defaults to the
    file's ``id`` key, else its name without ``.toml``. The file is read and checked when the
    model is first used (``drgkit alliance -a ID``, :func:`drgkit.alliance.load_model`), so a
    mistake in it is reported then, naming the file. Registering an id that another plugin
    already registered raises :class:`~drgkit.errors.RegistryError` naming both plugins.
    Return nothing.
    """
