"""drgkit — DRG/DIP grouping and settlement for China's hospital payment reform.

Rules are data (a folder of CSV tables per ruleset version), compiled once to integer arrays
and evaluated by numba kernels over Arrow batches. Every input case comes out with a status
and, when it did not group, a reason; any case can be explained step by step.

>>> import drgkit
>>> result = drgkit.group("cases.csv", "demo")        # doctest: +SKIP
>>> result = drgkit.group("cases.csv", "dip:demo")    # DIP, the demo catalogue  # doctest: +SKIP
>>> drgkit.explain({"diagnoses": "K35.800x001", "sex": 1, "age": 30}, "demo_2024")  # doctest: +SKIP
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import _schemes
from ._calibrate import calibrate
from ._io import DataWarning, open_cases
from ._jit import get_threads, set_threads
from ._schemes import Scheme, SettleMethod, register_scheme
from .catalogue import Catalogue, CatalogueInfo, CatalogueSeries
from .errors import (
    CaseDataError,
    CatalogueError,
    DrgkitError,
    RegistryError,
    RulesetError,
    TableError,
)
from .grouping import GroupDatasetResult, GroupSummary, group_batches, group_dataset
from .grouping._dip import (
    DIP_REASONS,
    DIP_RESULT_SCHEMA,
    group_dip,
    group_dip_batches,
    group_dip_file,
)
from .grouping._dip_explain import Candidate, DipExplanation, candidates, explain_dip
from .grouping._explain import Explanation
from .grouping._status import REASONS, STATUSES
from .hookspecs import hookimpl
from .registry import Registry, default_registry, plugin_manager
from .ruleset._diff import Migration, RulesetDiff, diff_rulesets, migration_impact
from .ruleset._lint import Finding, lint_ruleset
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


def group(cases, target, **options):
    """Group cases with a DRG ruleset or a DIP catalogue; one Arrow table, every input row.

    ``target``: a ruleset or catalogue (object, registered id, region or folder; a folder is
    told apart by its ``meta.csv``), or ``"dip:REGION"`` / ``"drg:REGION"`` to name the scheme
    of a region that has both. Every result has ``scheme`` and ``group`` columns; the other
    columns are the scheme's own (:data:`GROUP_RESULT_SCHEMA`, :data:`DIP_RESULT_SCHEMA`).
    """
    scheme, resolved = _schemes.resolve_target(target)
    return scheme.group(cases, resolved, **options)


def group_file(cases, out, target, **options):
    """Stream cases to ``out`` (CSV or Parquet by extension) grouped with a DRG ruleset or a
    DIP catalogue (``target`` as :func:`group` takes it); returns the run's summary."""
    scheme, resolved = _schemes.resolve_target(target)
    return scheme.group_file(cases, out, resolved, **options)


def explain(case, target, **options):
    """Explain how one case groups: DRG (a ruleset) or DIP (a catalogue: every tier tried and
    why); ``target`` as :func:`group` takes it."""
    scheme, resolved = _schemes.resolve_target(target)
    return scheme.explain(case, resolved, **options)


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
    "Finding",
    "GroupDatasetResult",
    "GroupSummary",
    "Layout",
    "Migration",
    "Registry",
    "RegistryError",
    "Ruleset",
    "RulesetDiff",
    "RulesetError",
    "RulesetInfo",
    "RulesetSeries",
    "Scheme",
    "SettleMethod",
    "TableError",
    "__version__",
    "calibrate",
    "candidates",
    "default_registry",
    "diff_rulesets",
    "explain",
    "explain_dip",
    "get_threads",
    "group",
    "group_batches",
    "group_dataset",
    "group_dip",
    "group_dip_batches",
    "group_dip_file",
    "group_file",
    "hookimpl",
    "lint_ruleset",
    "load_catalogue",
    "load_ruleset",
    "migration_impact",
    "open_cases",
    "plugin_manager",
    "register_scheme",
    "set_threads",
]
