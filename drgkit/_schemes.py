"""One pipeline, several payment schemes: the one table of schemes.

``drgkit.group(cases, X)``, ``drgkit.explain``, ``drgkit group -r X`` and settlement take a DRG
ruleset or a DIP catalogue, and a DRG or DIP policy, alike. A :class:`Scheme` says how to
recognise its grouping targets (an object, a registered id or region, a folder), how to group
and explain with them, and which settlement methods (a policy's ``method``) it provides, each a
:class:`SettleMethod` whose run class is made by a lazy factory (this foundation module does not
import settlement). The table lives in the registry: plugins add schemes through the
``drgkit_register_schemes`` hook (``registry.add_scheme``); drgkit's built-in plugin registers
:data:`DRG` and :data:`DIP` that way, in that order. :func:`register_scheme` adds one to the
process-wide registry from code. A third scheme is one more entry, not another ``if`` in every
caller.

A target may also name its scheme explicitly, ``dip:demo`` or ``drg:demo``: a region such as
``demo`` can have both rulesets and catalogues, and then the bare name means the first scheme
of the table that knows it (DRG, as it always did); ``dip_demo`` is the DIP side too.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from .errors import RegistryError

__all__ = [
    "DIP",
    "DRG",
    "Scheme",
    "SettleMethod",
    "register_scheme",
    "scheme_for",
    "schemes",
    "settle_method",
    "split_scheme",
]


@attrs.frozen(slots=True)
class SettleMethod:
    """A settlement method a scheme provides (a policy's ``method``).

    ``run``: a factory returning the run class (called on first use, so a scheme can be
    registered without importing its settlement code), or the class itself. A run class takes
    ``(policy, target, schema, source, **options)`` and has ``prepare``, ``partial``,
    ``finish``, ``summary``, ``schema``, ``rows_done``, ``group_run`` and ``warn_data`` (see
    :class:`drgkit.settlement.SettleRun`). ``two_pass``: the point values need a first pass."""

    run: Callable[[], Any]
    two_pass: bool = False

    def run_class(self) -> Any:
        return self.run if isinstance(self.run, type) else self.run()


@attrs.frozen(slots=True)
class Scheme:
    """How one payment scheme plugs into the pipeline: grouping and settlement."""

    #: the value of the result's ``scheme`` column, and the prefix that forces it (``dip:``)
    name: str
    #: a short label for listings ("DRG ruleset", "DIP catalogue")
    label: str
    #: True when the target (object, id, region or folder) is this scheme's
    recognises: Callable[[Any], bool]
    #: the target made ready to group (an object the group functions accept)
    resolve: Callable[[Any], Any]
    #: ``group(cases, target, **options) -> pa.Table``
    group: Callable[..., Any]
    #: ``group_file(cases, out, target, progress=…, **options) -> summary``
    group_file: Callable[..., Any]
    #: ``explain(case, target, **options)``
    explain: Callable[..., Any]
    #: policy method -> how a policy of that method is settled
    methods: Mapping[str, SettleMethod] = attrs.field(factory=dict)


def schemes() -> list[Scheme]:
    """The schemes of the process-wide registry, in registration order."""
    from .registry import default_registry

    return list(default_registry().schemes.values())


def register_scheme(scheme: Scheme) -> None:
    """Add a payment scheme to the process-wide registry (after the registered ones); a
    plugin does it in its ``drgkit_register_schemes`` hook instead."""
    from .registry import default_registry

    default_registry().add_scheme(scheme)


def settle_method(method: str) -> tuple[Scheme, SettleMethod] | None:
    """The scheme providing policy method ``method`` and the method, or None."""
    for scheme in schemes():
        if method in scheme.methods:
            return scheme, scheme.methods[method]
    return None


def _meta_keys(folder: Path) -> set[str]:
    """The keys of a folder's ``meta.csv`` (empty when there is none or it cannot be read)."""
    try:
        with open(folder / "meta.csv", encoding="utf-8-sig", newline="") as fh:
            return {row[0].strip() for row in csv.reader(fh) if row}
    except (OSError, UnicodeDecodeError, csv.Error):
        return set()


def _folder_has_key(spec: Any, key: str) -> bool:
    """True when ``spec`` is a folder whose meta.csv (or whose version folders' first
    meta.csv) has ``key``: how a catalogue folder is told from a ruleset folder."""
    if not isinstance(spec, (str, os.PathLike)):
        return False
    path = Path(os.fspath(spec))
    if not path.is_dir():
        return False
    if (path / "meta.csv").is_file():
        return key in _meta_keys(path)
    versions = sorted(p for p in path.iterdir() if (p / "meta.csv").is_file())
    return bool(versions) and key in _meta_keys(versions[0])


# ------------------------------------------------------------------------------ DRG


def _drg_recognises(spec: Any) -> bool:
    from .registry import default_registry
    from .ruleset._model import Ruleset, RulesetSeries

    if isinstance(spec, (Ruleset, RulesetSeries)):
        return True
    if isinstance(spec, str):
        reg = default_registry()
        if spec in reg.rulesets or spec in reg.regions():
            return True
    return _folder_has_key(spec, "ruleset")


def _drg_resolve(spec: Any) -> Any:
    from .registry import default_registry

    return default_registry().resolve(spec)


def _drg_group(cases: Any, target: Any, **options: Any) -> Any:
    from .grouping import group

    return group(cases, target, **options)


def _drg_group_file(cases: Any, out: Any, target: Any, **options: Any) -> Any:
    from .grouping import group_file

    return group_file(cases, out, target, **options)


def _drg_explain(case: Any, target: Any, **options: Any) -> Any:
    from .grouping._explain import explain

    return explain(case, target, **options)


# ------------------------------------------------------------------------------ DIP


def _dip_region_alias(spec: Any) -> str | None:
    """``demo`` for ``dip_demo`` when ``demo`` is a region with catalogues and ``dip_demo`` is
    not itself a catalogue id: the DIP side of a region that has rulesets too."""
    from .registry import default_registry

    if isinstance(spec, str) and spec.startswith("dip_"):
        reg = default_registry()
        if spec not in reg.catalogues and spec[4:] in reg.catalogue_regions():
            return spec[4:]
    return None


def _dip_recognises(spec: Any) -> bool:
    from .catalogue import Catalogue, CatalogueSeries
    from .registry import default_registry

    if isinstance(spec, (Catalogue, CatalogueSeries)):
        return True
    if isinstance(spec, str):
        reg = default_registry()
        if spec in reg.catalogues or spec in reg.catalogue_regions():
            return True
        if _dip_region_alias(spec) is not None:
            return True
    return _folder_has_key(spec, "catalogue")


def _dip_resolve(spec: Any) -> Any:
    from .registry import default_registry

    return default_registry().resolve_catalogue(_dip_region_alias(spec) or spec)


def _dip_group(cases: Any, target: Any, **options: Any) -> Any:
    from .grouping._dip import group_dip

    return group_dip(cases, target, **options)


def _dip_group_file(cases: Any, out: Any, target: Any, **options: Any) -> Any:
    from .grouping._dip import group_dip_file

    return group_dip_file(cases, out, target, **options)


def _dip_explain(case: Any, target: Any, **options: Any) -> Any:
    from .grouping._dip_explain import explain_dip

    return explain_dip(case, target, **options)


def _drg_run() -> Any:
    from .settlement._run import SettleRun

    return SettleRun


def _dip_run() -> Any:
    from .settlement._dip_run import DipSettleRun

    return DipSettleRun


#: DRG: rulesets; policies of method rate (费率法) and points (点数法, two passes)
DRG = Scheme(
    "drg",
    "DRG ruleset",
    _drg_recognises,
    _drg_resolve,
    _drg_group,
    _drg_group_file,
    _drg_explain,
    {"rate": SettleMethod(_drg_run, False), "points": SettleMethod(_drg_run, True)},
)
#: DIP: catalogues; policies of method dip (clearing point value: two passes)
DIP = Scheme(
    "dip",
    "DIP catalogue",
    _dip_recognises,
    _dip_resolve,
    _dip_group,
    _dip_group_file,
    _dip_explain,
    {"dip": SettleMethod(_dip_run, True)},
)


def split_scheme(spec: Any) -> tuple[Scheme | None, Any]:
    """``("dip", "demo")`` for ``"dip:demo"``; ``(None, spec)`` when no scheme is named."""
    if isinstance(spec, str) and ":" in spec:
        prefix, rest = spec.split(":", 1)
        for scheme in schemes():
            if scheme.name == prefix.strip().lower():
                return scheme, rest.strip()
    return None, spec


def scheme_for(spec: Any) -> tuple[Scheme, Any]:
    """The scheme of a grouping target and the target without any ``scheme:`` prefix.

    A target no scheme recognises goes to the first scheme (DRG), whose resolver reports it
    as unknown, naming what is registered.
    """
    named, rest = split_scheme(spec)
    if named is not None:
        return named, rest
    table = schemes()
    for scheme in table:
        if scheme.recognises(spec):
            return scheme, spec
    if not table:
        raise RegistryError(
            "no payment scheme is registered (is drgkit's built-in plugin "
            "blocked by DRGKIT_DISABLE_PLUGINS?)"
        )
    return table[0], spec


def resolve_target(spec: Any) -> tuple[Scheme, Any]:
    """The scheme of ``spec`` and its resolved target (ruleset, catalogue or series)."""
    scheme, rest = scheme_for(spec)
    try:
        return scheme, scheme.resolve(rest)
    except RegistryError as exc:
        if split_scheme(spec)[0] is not None or any(s.recognises(spec) for s in schemes()):
            raise
        # nothing knew the name: say what the other schemes have too, not only DRG's list
        from .registry import default_registry

        reg = default_registry()
        known = [*reg.catalogues, *(f"dip:{r}" for r in reg.catalogue_regions())]
        raise RegistryError(f"{exc} DIP catalogues: {', '.join(known) or 'none'}.") from None
