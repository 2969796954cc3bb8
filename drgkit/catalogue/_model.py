"""DIP catalogues as users see them: identity, validity dates, score scale and compiled tables.

A :class:`Catalogue` is one version of one pooling region's DIP catalogue (地方病种库), including
the national tiers it carries. It is read from a folder in the format of ``FORMAT.md``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
from functools import cached_property
from pathlib import Path

import attrs

from ..errors import CatalogueError
from . import _tables as T
from ._compile import CompiledCatalogue, load_compiled

__all__ = ["Catalogue", "CatalogueInfo", "CatalogueSeries"]


def _date(value: str | dt.date | None) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


@attrs.frozen(slots=True)
class CatalogueInfo:
    """Identity and provenance of one catalogue version."""

    id: str
    path: Path = attrs.field(converter=Path)
    name: str = ""
    region: str = ""
    version: str = ""
    effective_from: dt.date | None = attrs.field(default=None, converter=_date)
    effective_to: dt.date | None = attrs.field(default=None, converter=_date)
    score_scale: int = 1000
    description: str = ""
    #: who registered it: a plugin name, or "path" for an ad-hoc folder
    source: str = "path"

    def __attrs_post_init__(self) -> None:
        if (self.effective_from and self.effective_to
                and self.effective_to < self.effective_from):
            raise CatalogueError(f"catalogue {self.id}: effective_to {self.effective_to} is "
                                 f"before effective_from {self.effective_from}",
                                 file=self.path / "meta.csv")

    @classmethod
    def from_folder(cls, path: str | os.PathLike[str], source: str = "path",
                    **overrides) -> CatalogueInfo:
        """Identity from the folder's ``meta.csv``; keyword arguments take precedence."""
        path = Path(path)
        meta: dict[str, str] = {}
        if (path / "meta.csv").is_file():
            for _row, values in T.iter_rows(path, "meta.csv"):
                meta.setdefault(values["key"], values["value"])
        fields = {
            "id": meta.get("catalogue") or path.name,
            "name": meta.get("name", ""),
            "region": meta.get("region", ""),
            "version": meta.get("version", ""),
            "effective_from": meta.get("effective_from") or None,
            "effective_to": meta.get("effective_to") or None,
            "score_scale": int(meta["score_scale"]) if meta.get("score_scale", "").isdigit()
            else 1000,
            "description": meta.get("description", ""),
        }
        fields.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(path=path, source=source, **fields)
        except ValueError as exc:
            if isinstance(exc, CatalogueError):
                raise
            raise CatalogueError(str(exc), file=path / "meta.csv") from None

    @property
    def label(self) -> str:
        return f"{self.id} ({self.name})" if self.name else self.id

    def in_force(self, day: dt.date) -> bool:
        return ((self.effective_from is None or self.effective_from <= day)
                and (self.effective_to is None or day <= self.effective_to))


class Catalogue:
    """One catalogue version: its info and, loaded on first use, its compiled tables."""

    scheme = "dip"

    def __init__(self, info: CatalogueInfo, compiled: CompiledCatalogue | None = None) -> None:
        self.info = info
        self._compiled = compiled

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], **overrides) -> Catalogue:
        """An ad-hoc catalogue from a folder in the DIP catalogue format."""
        path = Path(path)
        if not path.is_dir():
            raise CatalogueError("not a catalogue folder (no such directory)", file=path)
        return cls(CatalogueInfo.from_folder(path, **overrides))

    def __repr__(self) -> str:
        return f"<Catalogue {self.info.id} at {self.info.path}>"

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def compiled(self) -> CompiledCatalogue:
        if self._compiled is None:
            self._compiled = load_compiled(self.info.path)
        return self._compiled

    def load(self) -> Catalogue:
        """Compile now (or read the cache) rather than on first use; returns self."""
        _ = self.compiled
        return self

    @property
    def content_hash(self) -> str:
        return self.compiled.content_hash

    def validate(self) -> T.CatalogueTables:
        """Re-read and check every table; raise on the first error."""
        return T.read_tables(self.info.path)

    @cached_property
    def tables(self) -> T.CatalogueTables:
        """The validated tables (for explanations and reports; grouping uses ``compiled``)."""
        return T.read_tables(self.info.path)

    def score(self, packet: str) -> decimal.Decimal:
        """The exact score of a packet."""
        names = self.compiled.names
        try:
            return decimal.Decimal(names["scores"][names["packets"].index(packet)])
        except ValueError:
            raise KeyError(packet) from None


@attrs.frozen(slots=True)
class CatalogueSeries:
    """The catalogue versions of one region, each in force from its ``effective_from`` until
    the day before the next version's (or its own ``effective_to`` if earlier); cases pick
    their version by discharge date (按出院日期)."""

    region: str
    versions: tuple[Catalogue, ...]
    scheme = "dip"

    def __attrs_post_init__(self) -> None:
        if not self.versions:
            raise CatalogueError(f"region {self.region!r} has no catalogue versions")
        seen: dict[dt.date | None, str] = {}
        for v in self.versions:
            start = v.info.effective_from
            if start is None and len(self.versions) > 1:
                raise CatalogueError(f"region {self.region!r} has several catalogue versions "
                                     f"but {v.id} has no effective_from date",
                                     file=v.info.path / "meta.csv")
            if start in seen:
                raise CatalogueError(f"region {self.region!r}: {seen[start]} and {v.id} both "
                                     f"take effect on {start}", file=v.info.path / "meta.csv")
            seen[start] = v.id

    @property
    def id(self) -> str:
        return self.region

    def periods(self) -> list[tuple[Catalogue, dt.date | None, dt.date | None]]:
        """(version, first day, last day) of each version, oldest first."""
        ordered = sorted(self.versions, key=lambda v: v.info.effective_from or dt.date.min)
        out = []
        for k, v in enumerate(ordered):
            end = v.info.effective_to
            if k + 1 < len(ordered):
                nxt = ordered[k + 1].info.effective_from - dt.timedelta(days=1)
                end = nxt if end is None or nxt < end else end
            out.append((v, v.info.effective_from, end))
        return out

    def select(self, days):
        """Index into :meth:`periods` of the version in force on each day (days since
        1970-01-01), -1 where none is."""
        import numpy as np

        epoch = dt.date(1970, 1, 1)
        choice = np.full(len(days), -1, dtype=np.int32)
        for k, (_v, first, last) in enumerate(self.periods()):
            lo = (first - epoch).days if first else np.iinfo(np.int32).min
            hi = (last - epoch).days if last else np.iinfo(np.int32).max
            choice[(days >= lo) & (days <= hi)] = k
        return choice
