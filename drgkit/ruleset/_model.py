"""Rulesets as users see them: identity, provenance, validity dates, and the compiled tables.

A :class:`Ruleset` is one version of one grouping scheme (e.g. CHS-DRG 1.1, or Suzhou 2023).
A :class:`RulesetSeries` is every registered version of one region; it groups each case with the
version in force on its discharge date (按出院日期).
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import attrs

from .._versions import SeriesBase, VersionBase, VersionInfoBase, read_info
from ..errors import RulesetError
from . import _tables as T
from ._compile import load_compiled

__all__ = ["Ruleset", "RulesetInfo", "RulesetSeries"]


@attrs.frozen(slots=True)
class RulesetInfo(VersionInfoBase):
    """Identity and provenance of one ruleset version."""

    _error = RulesetError
    _noun = "ruleset"

    description: str = ""
    #: who registered it: a plugin name, or "path" for an ad-hoc folder
    source: str = "path"

    @classmethod
    def from_folder(
        cls, path: str | os.PathLike[str], source: str = "path", **overrides
    ) -> RulesetInfo:
        """Read identity from the folder's ``meta.csv``; keyword arguments take precedence."""
        return read_info(
            cls, Path(path), source, overrides, id_key="ruleset", read_rows=T.iter_rows
        )


class Ruleset(VersionBase):
    """One ruleset version: its info and, loaded on first use, its compiled tables."""

    _info_cls = RulesetInfo
    _error = RulesetError
    _noun = "ruleset"
    info: RulesetInfo
    _load_compiled = staticmethod(load_compiled)

    def validate(self) -> tuple[str, ...]:
        """Re-read and check every table; raise on the first error, return the warnings."""
        return T.read_tables(self.info.path).warnings

    # names for explanations (information-only tables, read on demand)
    @cached_property
    def dx_names(self) -> dict[str, str]:
        return T.read_name_table(self.info.path, "dx_dict.csv")

    @cached_property
    def px_names(self) -> dict[str, str]:
        names = T.read_name_table(self.info.path, "px_dict.csv")
        for code, name in T.read_name_table(self.info.path, "ss_valid.csv").items():
            names.setdefault(code, name)
        return names

    @cached_property
    def drg_names(self) -> dict[str, str]:
        return T.read_name_table(self.info.path, "drg_names.csv")


@attrs.frozen(slots=True)
class RulesetSeries(SeriesBase):
    """The versions of one region, each in force from its ``effective_from``.

    A version is in force from its own ``effective_from`` until the day before the next
    version's, or until its ``effective_to`` if that comes earlier.
    """

    _error = RulesetError
    _noun = "ruleset"

    region: str
    versions: tuple[Ruleset, ...]

    def __attrs_post_init__(self) -> None:
        self._check_versions()
