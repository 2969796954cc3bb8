"""drgkit — DRG/DIP grouping and settlement for China's hospital payment reform.

Rules are data (a folder of CSV tables per ruleset version), compiled once to integer arrays
and evaluated by numba kernels over Arrow batches. Every input case comes out with a status
and, when it did not group, a reason; any case can be explained step by step.

>>> import drgkit
>>> result = drgkit.group("cases.csv", "demo")        # doctest: +SKIP
>>> drgkit.explain({"diagnoses": "K35.800x001", "sex": 1, "age": 30}, "demo_2024")  # doctest: +SKIP
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._io import DataWarning, open_cases
from ._jit import get_threads, set_threads
from .catalogue import Catalogue, CatalogueInfo, CatalogueSeries
from .errors import (
    CaseDataError,
    CatalogueError,
    DrgkitError,
    RegistryError,
    RulesetError,
    TableError,
)
from .grouping import GroupSummary, group_batches, group_file
from .grouping import group as _group_drg
from .grouping._dip import (
    DIP_REASONS,
    DIP_RESULT_SCHEMA,
    group_dip,
    group_dip_batches,
    group_dip_file,
)
from .grouping._dip_explain import Candidate, DipExplanation, candidates, explain_dip
from .grouping._explain import Explanation
from .grouping._explain import explain as _explain_drg
from .grouping._status import REASONS, STATUSES
from .hookspecs import hookimpl
from .registry import Registry, default_registry, plugin_manager
from .ruleset._model import Ruleset, RulesetInfo, RulesetSeries
from .schema import CASE_FIELDS, GROUP_RESULT_SCHEMA, LAYOUTS, Layout

try:
    __version__ = version("drgkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"


def load_ruleset(spec) -> Ruleset | RulesetSeries:
    """A ruleset by registered id, region (all versions, chosen per case by discharge date)
    or folder path, compiled (or read from the cache) and ready to group."""
    target = default_registry().resolve(spec)
    for ruleset in target.versions if isinstance(target, RulesetSeries) else (target,):
        ruleset.load()
    return target


def load_catalogue(spec) -> Catalogue | CatalogueSeries:
    """A DIP catalogue by registered id, region (all versions, chosen per case by discharge
    date) or folder path, compiled (or read from the cache) and ready to group."""
    target = default_registry().resolve_catalogue(spec)
    for cat in target.versions if isinstance(target, CatalogueSeries) else (target,):
        cat.load()
    return target


def _is_catalogue(target) -> bool:
    if isinstance(target, (Catalogue, CatalogueSeries)):
        return True
    if isinstance(target, str):
        return target in default_registry().catalogues
    return False


def group(cases, target, **options):
    """Group cases with a DRG ruleset or a DIP catalogue; one Arrow table, every input row.

    ``target``: a :class:`Catalogue` or a registered DIP catalogue id groups by DIP
    (:func:`group_dip`); anything else is a DRG ruleset as :func:`drgkit.grouping.group` takes.
    """
    if _is_catalogue(target):
        return group_dip(cases, target, **options)
    return _group_drg(cases, target, **options)


def explain(case, target, **options):
    """Explain how one case groups: DRG (a ruleset) or DIP (a :class:`Catalogue` or a registered
    catalogue id, every tier tried and why)."""
    if _is_catalogue(target):
        return explain_dip(case, target, **options)
    return _explain_drg(case, target, **options)


__all__ = [
    "CASE_FIELDS",
    "DIP_REASONS",
    "DIP_RESULT_SCHEMA",
    "GROUP_RESULT_SCHEMA",
    "LAYOUTS",
    "REASONS",
    "STATUSES",
    "Candidate",
    "CaseDataError",
    "Catalogue",
    "CatalogueError",
    "CatalogueInfo",
    "CatalogueSeries",
    "DataWarning",
    "DipExplanation",
    "DrgkitError",
    "Explanation",
    "GroupSummary",
    "Layout",
    "Registry",
    "RegistryError",
    "Ruleset",
    "RulesetError",
    "RulesetInfo",
    "RulesetSeries",
    "TableError",
    "__version__",
    "candidates",
    "default_registry",
    "explain",
    "explain_dip",
    "get_threads",
    "group",
    "group_batches",
    "group_dip",
    "group_dip_batches",
    "group_dip_file",
    "group_file",
    "hookimpl",
    "load_catalogue",
    "load_ruleset",
    "open_cases",
    "plugin_manager",
    "set_threads",
]
