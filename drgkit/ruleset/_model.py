"""Rulesets as users see them: identity, provenance, validity dates, and the compiled tables.

A :class:`Ruleset` is one version of one grouping scheme (e.g. CHS-DRG 1.1, or Suzhou 2023).
A :class:`RulesetSeries` is every registered version of one region; it groups each case with the
version in force on its discharge date (按出院日期).
"""

from __future__ import annotations

import datetime as dt
import os
from functools import cached_property
from pathlib import Path

import attrs
import numpy as np

from ..errors import RulesetError
from . import _tables as T
from ._compile import CompiledRuleset, load_compiled

__all__ = ["Ruleset", "RulesetInfo", "RulesetSeries"]


def _date(value: str | dt.date | None) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


@attrs.frozen(slots=True)
class RulesetInfo:
    """Identity and provenance of one ruleset version."""

    id: str
    path: Path = attrs.field(converter=Path)
    name: str = ""
    region: str = ""
    version: str = ""
    effective_from: dt.date | None = attrs.field(default=None, converter=_date)
    effective_to: dt.date | None = attrs.field(default=None, converter=_date)
    description: str = ""
    #: who registered it: a plugin name, or "path" for an ad-hoc folder
    source: str = "path"

    def __attrs_post_init__(self) -> None:
        if (self.effective_from and self.effective_to
                and self.effective_to < self.effective_from):
            raise RulesetError(f"ruleset {self.id}: effective_to {self.effective_to} is before "
                               f"effective_from {self.effective_from}", file=self.path)

    @classmethod
    def from_folder(cls, path: str | os.PathLike[str], source: str = "path",
                    **overrides) -> RulesetInfo:
        """Read identity from the folder's ``meta.csv``; keyword arguments take precedence."""
        path = Path(path)
        meta: dict[str, str] = {}
        if (path / "meta.csv").is_file():
            for _row, values in T.iter_rows(path, "meta.csv"):
                meta.setdefault(values["key"], values["value"])
        fields = {
            "id": meta.get("ruleset") or path.name,
            "name": meta.get("name", ""),
            "region": meta.get("region", ""),
            "version": meta.get("version", ""),
            "effective_from": meta.get("effective_from") or None,
            "effective_to": meta.get("effective_to") or None,
            "description": meta.get("description", ""),
        }
        fields.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(path=path, source=source, **fields)
        except ValueError as exc:
            raise RulesetError(str(exc), file=path / "meta.csv") from None

    @property
    def label(self) -> str:
        return f"{self.id} ({self.name})" if self.name else self.id

    def in_force(self, day: dt.date) -> bool:
        return ((self.effective_from is None or self.effective_from <= day)
                and (self.effective_to is None or day <= self.effective_to))


class Ruleset:
    """One ruleset version: its info and, loaded on first use, its compiled tables."""

    def __init__(self, info: RulesetInfo, compiled: CompiledRuleset | None = None) -> None:
        self.info = info
        self._compiled = compiled

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], **overrides) -> Ruleset:
        """An ad-hoc ruleset from a folder in the neutral table layout."""
        path = Path(path)
        if not path.is_dir():
            raise RulesetError("not a ruleset folder (no such directory)", file=path)
        return cls(RulesetInfo.from_folder(path, **overrides))

    def __repr__(self) -> str:
        return f"<Ruleset {self.info.id} at {self.info.path}>"

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def compiled(self) -> CompiledRuleset:
        if self._compiled is None:
            self._compiled = load_compiled(self.info.path)
        return self._compiled

    def load(self) -> Ruleset:
        """Compile now (or read the cache) rather than on first use; returns self."""
        _ = self.compiled
        return self

    @property
    def content_hash(self) -> str:
        return self.compiled.content_hash

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
class RulesetSeries:
    """The versions of one region, each in force from its ``effective_from``.

    A version is in force from its own ``effective_from`` until the day before the next
    version's, or until its ``effective_to`` if that comes earlier.
    """

    region: str
    versions: tuple[Ruleset, ...]

    def __attrs_post_init__(self) -> None:
        if not self.versions:
            raise RulesetError(f"region {self.region!r} has no ruleset versions")
        starts = [v.info.effective_from for v in self.versions]
        if any(s is None for s in starts) and len(self.versions) > 1:
            undated = [v.id for v in self.versions if v.info.effective_from is None]
            raise RulesetError(f"region {self.region!r} has several versions but "
                               f"{', '.join(undated)} has no effective_from date")
        seen: dict[dt.date | None, str] = {}
        for v in self.versions:
            if v.info.effective_from in seen:
                raise RulesetError(
                    f"region {self.region!r}: {seen[v.info.effective_from]} and {v.id} both take"
                    f" effect on {v.info.effective_from}")
            seen[v.info.effective_from] = v.id

    @property
    def id(self) -> str:
        return self.region

    def ordered(self) -> list[Ruleset]:
        return sorted(self.versions, key=lambda v: v.info.effective_from or dt.date.min)

    def periods(self) -> list[tuple[Ruleset, dt.date | None, dt.date | None]]:
        """(version, first day, last day) of each version's period in force."""
        out = []
        ordered = self.ordered()
        for k, v in enumerate(ordered):
            end = v.info.effective_to
            if k + 1 < len(ordered):
                nxt = ordered[k + 1].info.effective_from - dt.timedelta(days=1)
                end = nxt if end is None or nxt < end else end
            out.append((v, v.info.effective_from, end))
        return out

    def select(self, days: np.ndarray) -> np.ndarray:
        """Index into :meth:`ordered` of the version in force on each day (days since
        1970-01-01), or -1 where none is."""
        epoch = dt.date(1970, 1, 1)
        choice = np.full(len(days), -1, dtype=np.int32)
        for k, (_v, first, last) in enumerate(self.periods()):
            lo = (first - epoch).days if first else np.iinfo(np.int32).min
            hi = (last - epoch).days if last else np.iinfo(np.int32).max
            choice[(days >= lo) & (days <= hi)] = k
        return choice

    def for_date(self, day: dt.date) -> Ruleset | None:
        k = int(self.select(np.array([(day - dt.date(1970, 1, 1)).days]))[0])
        return self.ordered()[k] if k >= 0 else None
