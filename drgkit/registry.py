"""The registry plugins fill, and the plugin manager that fills it.

:func:`plugin_manager` builds a fresh :class:`pluggy.PluginManager` (built-ins first, then the
``drgkit`` entry points, minus anything named in ``DRGKIT_DISABLE_PLUGINS``).
:meth:`Registry.from_plugins` asks every plugin to register into a new :class:`Registry`.
:func:`default_registry` is a lazily built, process-wide registry for convenience; build your
own when you need control (tests, embedding).
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pluggy

from . import hookspecs
from .catalogue._model import Catalogue, CatalogueInfo, CatalogueSeries
from .errors import CatalogueError, DrgkitError, RegistryError, RulesetError
from .ruleset._model import Ruleset, RulesetInfo, RulesetSeries
from .schema import LAYOUTS, Layout

__all__ = [
    "PluginError",
    "Registry",
    "default_registry",
    "plugin_manager",
    "reset_default_registry",
]

BUILTIN_PLUGIN = "drgkit.builtin"
ENTRY_POINT_GROUP = "drgkit"
#: what a newcomer asking for chs_drg_11 (or any regional ruleset) needs to hear
REFDATA_HINT = (
    "drgkit ships only the demo rulesets; CHS-DRG 1.0/1.1 (chs_drg_10, chs_drg_11, "
    "region chs-drg) and the regional ones are registered by a plugin such as "
    "drgkit-refdata (pip install plugins/drgkit-refdata, then set DRGKIT_REFDATA to "
    "the folder holding rulesets/), or give a ruleset folder with -r PATH"
)


class PluginError(DrgkitError):
    """A third-party plugin failed to load or to register: names the plugin and how to block it."""

    def __init__(self, name: str, where: str, exc: BaseException, doing: str) -> None:
        self.plugin = name
        if name.isdigit():  # registered in code without a name: nothing to block by name
            head, fix = f"plugin {where}", "Fix it or do not register it"
        else:
            head = f"plugin {name!r} ({where})"
            fix = f"Fix or uninstall it, or skip it with DRGKIT_DISABLE_PLUGINS={name}"
        super().__init__(f"{head} failed {doing}: {type(exc).__name__}: {exc}. {fix}")


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register every plugin of the ``drgkit`` entry-point group, as pluggy's loader would.

    Done here rather than with ``load_setuptools_entrypoints`` so that a plugin failing on
    import is reported by its entry-point name and module (and how to disable it) instead of
    as a bare traceback from inside importlib.
    """
    seen: set[str] = set()
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or ep.name in seen:
                continue
            seen.add(ep.name)  # the first distribution on sys.path wins, as with imports
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(ep.name, f"entry point {ep.value}", exc, "to import") from exc
            pm.register(plugin, name=ep.name)


def plugin_manager(
    *, entry_points: bool = True, plugins: Iterable[Any] = (), builtin: bool = True
) -> pluggy.PluginManager:
    """A new plugin manager with drgkit's hooks, its built-in plugin and the installed ones.

    ``entry_points=False`` leaves out installed plugins, ``builtin=False`` drgkit's own
    (demo rulesets, shipped policies, standard layouts); ``plugins`` are registered last.
    """
    from . import _builtin

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in os.environ.get("DRGKIT_DISABLE_PLUGINS", "").split(","):
        if name.strip():
            pm.set_blocked(name.strip())
    if builtin and not pm.is_blocked(BUILTIN_PLUGIN):
        pm.register(_builtin, name=BUILTIN_PLUGIN)
    if entry_points:
        _load_entry_points(pm)
    for plugin in plugins:
        pm.register(plugin)
    pm.check_pending()  # a misspelled hook name fails here, loudly
    return pm


class Registry:
    """Rulesets, policies and layouts by id, each remembering the plugin that registered it.

    Hooks see it through the :class:`~drgkit.hookspecs.PluginRegistry` protocol.
    """

    def __init__(self) -> None:
        self._rulesets: dict[str, tuple[Ruleset, str]] = {}
        self._layouts: dict[str, tuple[Layout, str]] = {}
        self._policies: dict[str, tuple[Path, Path | None, str]] = {}
        self._current = "<direct>"
        self.plugin_manager: pluggy.PluginManager | None = None

    # ------------------------------------------------------------------ building
    @classmethod
    def from_plugins(cls, pm: pluggy.PluginManager | None = None) -> Registry:
        pm = pm or plugin_manager()
        registry = cls()
        registry.plugin_manager = pm
        for hook in (
            pm.hook.drgkit_register_schemes,
            pm.hook.drgkit_register_layouts,
            pm.hook.drgkit_register_rulesets,
            pm.hook.drgkit_register_policies,
            pm.hook.drgkit_register_catalogues,
            pm.hook.drgkit_register_alliance_models,
        ):
            # one call per plugin, in registration order, so the registry knows who is calling
            for impl in hook.get_hookimpls():
                registry._current = impl.plugin_name
                try:
                    impl.function(registry=registry)
                except DrgkitError:
                    raise  # already names the plugin (duplicate ids, a broken folder)
                except Exception as exc:
                    if impl.plugin_name == BUILTIN_PLUGIN:
                        raise  # drgkit's own bug: keep the traceback
                    raise PluginError(
                        impl.plugin_name,
                        registry.plugin_location(impl.plugin_name),
                        exc,
                        f"in {hook.name}",
                    ) from exc
                finally:
                    registry._current = "<direct>"
        return registry

    def plugin_location(self, plugin: str) -> str:
        """The module file or class of a registered plugin, for messages."""
        obj = self.plugin_manager.get_plugin(plugin) if self.plugin_manager else None
        where = getattr(obj, "__file__", None)
        if where:
            return str(where)
        if obj is not None:
            cls = type(obj)
            return f"{cls.__module__}.{cls.__qualname__}"
        return "registered directly"

    def _source(self, path: Path | None = None) -> str:
        """``plugin NAME (where)`` of the plugin registering right now, for messages."""
        plugin = self._current
        if self.plugin_manager is None or self.plugin_manager.get_plugin(plugin) is None:
            return f"plugin {plugin}"
        where = self.plugin_location(plugin)
        # a plugin registered in code without a name is called by its id(): show where instead
        return f"plugin {where}" if plugin.isdigit() else f"plugin {plugin} ({where})"

    def add_ruleset(
        self, path: str | os.PathLike[str], *, id: str | None = None, **info: Any
    ) -> RulesetInfo:
        """Register the ruleset folder at ``path`` (see the ``drgkit_register_rulesets`` hook)."""
        path = Path(path)
        if not (path / "meta.csv").is_file():
            raise RulesetError(
                f"{self._source()} registers a ruleset here, but the folder has no meta.csv",
                file=path,
            )
        ruleset_info = RulesetInfo.from_folder(path, source=self._current, id=id, **info)
        if ruleset_info.id in self._rulesets:
            other, by = self._rulesets[ruleset_info.id]
            raise RegistryError(
                f"ruleset id {ruleset_info.id!r} is registered twice: by {by} "
                f"({other.info.path}) and by {self._source()} ({path})"
            )
        ruleset = Ruleset(ruleset_info)
        self._rulesets[ruleset_info.id] = (ruleset, self._source())
        return ruleset_info

    def add_policy(
        self,
        path: str | os.PathLike[str],
        *,
        id: str | None = None,
        weights: str | os.PathLike[str] | None = None,
    ) -> str:
        """Register a policy file (see the ``drgkit_register_policies`` hook)."""
        path = Path(path)
        if id is None:
            try:  # not through drgkit.settlement: a grouping run should not import it
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib

            try:
                id = str(tomllib.loads(path.read_text(encoding="utf-8"))["policy"]["id"])
            except (OSError, KeyError, ValueError) as exc:
                raise RegistryError(
                    f"{self._source()} registers policy {path}, which has no "
                    f"readable policy.id ({exc})"
                ) from None
        if id in self._policies:
            other, _w, by = self._policies[id]
            raise RegistryError(
                f"policy id {id!r} is registered twice: by {by} ({other}) and "
                f"by {self._source()} ({path})"
            )
        self._policies[id] = (path, Path(weights) if weights else None, self._source())
        return id

    @property
    def policies(self) -> dict[str, Path]:
        return {k: v[0] for k, v in sorted(self._policies.items())}

    def policy_registered_by(self, policy_id: str) -> str:
        return self._policies[policy_id][2]

    def policy(self, spec: Any, *, weights: Any = None, overrides: Any = None):
        """A :class:`~drgkit.settlement.Policy` by registered id or TOML path."""
        from .settlement._policy import Policy

        if isinstance(spec, Policy):
            return spec
        text = os.fspath(spec)
        if text in self._policies:
            path, default_weights, _by = self._policies[text]
            return Policy.from_toml(path, weights=weights or default_weights, overrides=overrides)
        path = Path(text)
        if path.is_file():
            return Policy.from_toml(path, weights=weights, overrides=overrides)
        close = difflib.get_close_matches(text, list(self._policies), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise RegistryError(
            f"unknown policy {text!r}: not a registered id and not a file."
            f"{hint} Registered: {', '.join(self._policies) or 'none'}"
        )

    def add_layout(self, layout: Layout) -> None:
        """Register a case file layout (see the ``drgkit_register_layouts`` hook)."""
        if layout.name in self._layouts:
            _other, by = self._layouts[layout.name]
            raise RegistryError(
                f"layout {layout.name!r} is registered twice: by {by} and by {self._source()}"
            )
        self._layouts[layout.name] = (layout, self._source())

    # ------------------------------------------------------------------ queries
    @property
    def rulesets(self) -> dict[str, Ruleset]:
        return {k: v for k, (v, _by) in sorted(self._rulesets.items())}

    def registered_by(self, ruleset_id: str) -> str:
        return self._rulesets[ruleset_id][1]

    @property
    def layouts(self) -> dict[str, Layout]:
        return {k: v for k, (v, _by) in self._layouts.items()} or dict(LAYOUTS)

    def regions(self) -> dict[str, RulesetSeries]:
        by_region: dict[str, list[Ruleset]] = {}
        for ruleset in self.rulesets.values():
            if ruleset.info.region:
                by_region.setdefault(ruleset.info.region, []).append(ruleset)
        return {
            region: RulesetSeries(region, tuple(versions))
            for region, versions in sorted(by_region.items())
        }

    def ruleset(self, ruleset_id: str) -> Ruleset:
        try:
            return self._rulesets[ruleset_id][0]
        except KeyError:
            raise RegistryError(self._unknown(ruleset_id)) from None

    def resolve(
        self, spec: str | os.PathLike[str] | Ruleset | RulesetSeries
    ) -> Ruleset | RulesetSeries:
        """A registered id, a region (every version, by discharge date), or a folder path.

        A folder that holds version sub-folders (each with a ``meta.csv``) is a series too.
        """
        if isinstance(spec, (Ruleset, RulesetSeries)):
            return spec
        text = os.fspath(spec)
        if text in self._rulesets:
            return self._rulesets[text][0]
        regions = self.regions()
        if text in regions:
            return regions[text]
        path = Path(text)
        if path.is_dir():
            if (path / "meta.csv").is_file():
                return Ruleset.from_path(path)
            versions = [
                Ruleset.from_path(p) for p in sorted(path.iterdir()) if (p / "meta.csv").is_file()
            ]
            if versions:
                return RulesetSeries(path.name, tuple(versions))
            raise RulesetError(
                "neither a ruleset folder (no meta.csv) nor a folder of ruleset versions", file=path
            )
        raise RegistryError(self._unknown(text))

    def _unknown(self, text: str) -> str:
        known = list(self._rulesets) + list(self.regions())
        close = difflib.get_close_matches(text, known, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        return (
            f"unknown ruleset {text!r}: not a registered id or region, and not a folder.{hint}"
            f" Registered: {', '.join(known) or 'none'}. {REFDATA_HINT}"
        )

    def layout(self, name: str) -> Layout:
        try:
            return self.layouts[name]
        except KeyError:
            raise RegistryError(
                f"unknown layout {name!r}; known: {', '.join(self.layouts)}"
            ) from None

    # ------------------------------------------------------------------ payment schemes
    @property
    def _scheme_map(self) -> dict[str, tuple[Any, str]]:
        if "_schemes" not in self.__dict__:
            self.__dict__["_schemes"] = {}
        return self.__dict__["_schemes"]

    def add_scheme(self, scheme: Any) -> None:
        """Register a payment scheme (see the ``drgkit_register_schemes`` hook): its name
        and each of its policy methods must be new."""
        if scheme.name in self._scheme_map:
            raise RegistryError(
                f"payment scheme {scheme.name!r} is registered twice: by "
                f"{self._scheme_map[scheme.name][1]} and by {self._source()}"
            )
        for other, by in self._scheme_map.values():
            clash = sorted(set(other.methods) & set(scheme.methods))
            if clash:
                raise RegistryError(
                    f"policy method {clash[0]!r} is settled by scheme "
                    f"{other.name!r} ({by}) and by scheme {scheme.name!r} "
                    f"({self._source()})"
                )
        self._scheme_map[scheme.name] = (scheme, self._source())

    @property
    def schemes(self) -> dict[str, Any]:
        """Payment schemes by name, in registration order (the order targets are tried)."""
        return {k: v for k, (v, _by) in self._scheme_map.items()}

    # ------------------------------------------------------------------ DIP catalogues
    @property
    def _catalogue_map(self) -> dict[str, tuple[Catalogue, str]]:
        if "_catalogues" not in self.__dict__:
            self.__dict__["_catalogues"] = {}
        return self.__dict__["_catalogues"]

    def add_catalogue(
        self, path: str | os.PathLike[str], *, id: str | None = None, **info: Any
    ) -> CatalogueInfo:
        """Register the DIP catalogue folder at ``path`` (see ``drgkit_register_catalogues``)."""
        path = Path(path)
        if not (path / "meta.csv").is_file():
            raise CatalogueError(
                f"{self._source()} registers a DIP catalogue here, but the folder has no meta.csv",
                file=path,
            )
        cat_info = CatalogueInfo.from_folder(path, source=self._current, id=id, **info)
        if cat_info.id in self._catalogue_map:
            other, by = self._catalogue_map[cat_info.id]
            raise RegistryError(
                f"catalogue id {cat_info.id!r} is registered twice: by {by} "
                f"({other.info.path}) and by {self._source()} ({path})"
            )
        self._catalogue_map[cat_info.id] = (Catalogue(cat_info), self._source())
        return cat_info

    @property
    def catalogues(self) -> dict[str, Catalogue]:
        return {k: v for k, (v, _by) in sorted(self._catalogue_map.items())}

    def catalogue_regions(self) -> dict[str, CatalogueSeries]:
        by_region: dict[str, list[Catalogue]] = {}
        for cat in self.catalogues.values():
            if cat.info.region:
                by_region.setdefault(cat.info.region, []).append(cat)
        return {
            region: CatalogueSeries(region, tuple(versions))
            for region, versions in sorted(by_region.items())
        }

    def resolve_catalogue(
        self, spec: str | os.PathLike[str] | Catalogue | CatalogueSeries
    ) -> Catalogue | CatalogueSeries:
        """A registered catalogue id, a region (every version, by discharge date), a catalogue
        folder, or a folder of version folders."""
        if isinstance(spec, (Catalogue, CatalogueSeries)):
            return spec
        text = os.fspath(spec)
        if text in self._catalogue_map:
            return self._catalogue_map[text][0]
        regions = self.catalogue_regions()
        if text in regions:
            return regions[text]
        path = Path(text)
        if path.is_dir():
            if (path / "meta.csv").is_file():
                return Catalogue.from_path(path)
            versions = [
                Catalogue.from_path(p) for p in sorted(path.iterdir()) if (p / "meta.csv").is_file()
            ]
            if versions:
                return CatalogueSeries(path.name, tuple(versions))
            raise CatalogueError(
                "neither a catalogue folder (no meta.csv) nor a folder of catalogue versions",
                file=path,
            )
        close = difflib.get_close_matches(text, list(self._catalogue_map), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise RegistryError(
            f"unknown DIP catalogue {text!r}: not a registered id and not a "
            f"folder.{hint} Registered: {', '.join(self._catalogue_map) or 'none'}"
        )

    # ------------------------------------------------------------------ alliance models
    @property
    def _alliance_model_map(self) -> dict[str, tuple[Path, str]]:
        if "_alliance_models" not in self.__dict__:
            self.__dict__["_alliance_models"] = {}
        return self.__dict__["_alliance_models"]

    def add_alliance_model(self, path: str | os.PathLike[str], *, id: str | None = None) -> str:
        """Register an alliance model file (see ``drgkit_register_alliance_models``); it is
        read in full when first used."""
        path = Path(path)
        if id is None:
            from .settlement._policy import tomllib

            try:
                doc = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise RegistryError(
                    f"{self._source()} registers alliance model {path}, which cannot be "
                    f"read ({exc})"
                ) from None
            id = str(doc.get("id") or path.stem)
        if id in self._alliance_model_map:
            other, by = self._alliance_model_map[id]
            raise RegistryError(
                f"alliance model id {id!r} is registered twice: by {by} ({other}) and by "
                f"{self._source()} ({path})"
            )
        self._alliance_model_map[id] = (path, self._source())
        return id

    @property
    def alliance_models(self) -> dict[str, Path]:
        """Registered alliance models: id -> TOML file."""
        return {k: v[0] for k, v in sorted(self._alliance_model_map.items())}

    def alliance_model_registered_by(self, model_id: str) -> str:
        return self._alliance_model_map[model_id][1]

    def alliance_model(self, spec: Any) -> Any:
        """An :class:`~drgkit.alliance.AllianceModel` by registered id or TOML path (a
        registered id wins over a file or folder of that name)."""
        from .alliance._model import AllianceError, AllianceModel

        if isinstance(spec, AllianceModel):
            return spec
        text = os.fspath(spec)
        if text in self._alliance_model_map:
            return AllianceModel.load(self._alliance_model_map[text][0])
        path = Path(text)
        if path.is_file() or path.suffix == ".toml":
            return AllianceModel.load(path)
        known = list(self.alliance_models)
        shipped = [k for k in known if self._alliance_model_map[k][1].startswith(_BUILTIN_BY)]
        plugins = [k for k in known if k not in shipped]
        close = difflib.get_close_matches(text, known, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise AllianceError(
            f"no alliance model file {text!r}, and no shipped or registered model of that "
            f"name (shipped: {', '.join(shipped) or 'none'}; from plugins: "
            f"{', '.join(plugins) or 'none'}).{hint}"
        )


_BUILTIN_BY = f"plugin {BUILTIN_PLUGIN} "
_DEFAULT: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry, built from the installed plugins on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Registry.from_plugins()
    return _DEFAULT


def reset_default_registry() -> None:
    """Forget the process-wide registry (it is rebuilt on next use)."""
    global _DEFAULT
    _DEFAULT = None
