"""Names to objects, at the API edge: ruleset, policy and catalogue ids, regions and paths.

The public functions (``drgkit.group``, ``drgkit.settlement.settle_batches``, the CLI, …)
resolve what the caller named here, through the default registry, and hand objects down. The
layers below (runs, kernels, passes) never import the registry: what they must still look up
while they run (a ruleset id found in grouped input, a policy or ruleset a Dask worker rebuilds
in its own process) they ask of the :class:`Resolver` object they were given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .errors import DrgkitError

if TYPE_CHECKING:
    from .catalogue import Catalogue, CatalogueSeries
    from .ruleset._model import Ruleset, RulesetSeries
    from .schema import Layout
    from .settlement._policy import Policy

__all__ = [
    "RESOLVER",
    "Names",
    "Resolver",
    "layouts",
    "resolve_catalogue",
    "resolve_policy",
    "resolve_ruleset",
    "try_ruleset",
]


class Names(Protocol):
    """What a lower layer may ask while it runs; :class:`Resolver` is the implementation."""

    @property
    def layouts(self) -> Mapping[str, Layout]: ...

    def ruleset(
        self, spec: Any, policy: Policy | None = None
    ) -> Ruleset | RulesetSeries | None: ...

    def try_ruleset(self, spec: Any) -> Ruleset | RulesetSeries | None: ...

    def registered_ruleset(self, ruleset_id: str) -> Ruleset | None: ...

    def policy(
        self, spec: Any, weights: Any = None, overrides: Mapping[str, Any] | None = None
    ) -> Policy: ...

    def catalogue(self, spec: Any) -> Catalogue | CatalogueSeries: ...

    def is_registered(self, text: str, kind: str) -> bool: ...

    def alliance_model(self, spec: Any) -> Any: ...


class Resolver:
    """Names resolved through :func:`drgkit.default_registry` of the process it runs in.

    It has no state, so it pickles to a Dask worker and resolves there with the worker's own
    registry (the same plugins are installed on every worker)."""

    @property
    def layouts(self) -> Mapping[str, Layout]:
        """Every case file layout: the built-in ones and the plugins'."""
        return _registry().layouts

    def ruleset(self, spec: Any, policy: Policy | None = None) -> Ruleset | RulesetSeries | None:
        """A ruleset or region's series from itself, a registered id or region, or a folder;
        with a ``policy``, ``spec`` None takes the ruleset it names (None when it names none).
        """
        from .ruleset._model import Ruleset, RulesetSeries

        if spec is None and policy is not None:
            if not policy.ruleset:
                return None
            spec = policy.ruleset
        if spec is None:
            raise TypeError("a ruleset is required: a registered id, a region or a folder")
        if isinstance(spec, (Ruleset, RulesetSeries)):
            return spec
        return _registry().resolve(spec)

    def try_ruleset(self, spec: Any) -> Ruleset | RulesetSeries | None:
        """The ruleset when it can be found (to name its hash), else None: grouped input does
        not need it."""
        if spec is None:
            return None
        try:
            return self.ruleset(spec)
        except DrgkitError:
            return None

    def registered_ruleset(self, ruleset_id: str) -> Ruleset | None:
        """The registered ruleset version of this id, else None."""
        try:
            return _registry().ruleset(ruleset_id)
        except DrgkitError:
            return None

    def policy(
        self, spec: Any, weights: Any = None, overrides: Mapping[str, Any] | None = None
    ) -> Policy:
        """A policy from itself (as it is), a registered id or a TOML path."""
        from .settlement._policy import Policy

        if isinstance(spec, Policy):
            return spec
        return _registry().policy(spec, weights=weights, overrides=overrides)

    def catalogue(self, spec: Any) -> Catalogue | CatalogueSeries:
        """A DIP catalogue or region's series from itself, a registered id or region, or a
        folder."""
        from .catalogue import Catalogue, CatalogueSeries

        if isinstance(spec, (Catalogue, CatalogueSeries)):
            return spec
        return _registry().resolve_catalogue(spec)

    def alliance_model(self, spec: Any) -> Any:
        """An alliance model: a registered id (shipped or from a plugin) or a TOML file."""
        return _registry().alliance_model(spec)

    def is_registered(self, text: str, kind: str) -> bool:
        """Whether ``text`` is a registered policy id (``kind`` "policy") or ruleset id or
        region (any other kind)."""
        reg = _registry()
        known = reg.policies if kind == "policy" else {**reg.rulesets, **reg.regions()}
        return os.fspath(text) in known

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Resolver)

    def __hash__(self) -> int:
        return hash(Resolver)

    def __repr__(self) -> str:
        return "Resolver()"


def _registry() -> Any:
    # imported here: the registry imports the rulesets, catalogues and policies it serves
    from .registry import default_registry

    return default_registry()


#: the resolver of the API edge
RESOLVER = Resolver()


def resolve_ruleset(spec: Any, policy: Policy | None = None) -> Ruleset | RulesetSeries | None:
    return RESOLVER.ruleset(spec, policy)


def try_ruleset(spec: Any) -> Ruleset | RulesetSeries | None:
    return RESOLVER.try_ruleset(spec)


def resolve_policy(
    spec: Any, weights: Any = None, overrides: Mapping[str, Any] | None = None
) -> Policy:
    return RESOLVER.policy(spec, weights, overrides)


def resolve_catalogue(spec: Any) -> Catalogue | CatalogueSeries:
    return RESOLVER.catalogue(spec)


def layouts() -> Mapping[str, Layout]:
    return RESOLVER.layouts
