"""DIP catalogues as users see them: identity, validity dates, score scale and compiled tables.

A :class:`Catalogue` is one version of one pooling region's DIP catalogue (地方病种库), including
the national tiers it carries. It is read from a folder in the format of ``FORMAT.md``.
"""

from __future__ import annotations

import decimal
import os
from functools import cached_property
from pathlib import Path

import attrs

from .._versions import SeriesBase, VersionBase, VersionInfoBase, read_info
from ..errors import CatalogueError
from . import _tables as T
from ._compile import load_compiled

__all__ = ["Catalogue", "CatalogueInfo", "CatalogueSeries"]


def _score_scale(meta: dict[str, str]) -> dict[str, int]:
    text = meta.get("score_scale", "")
    return {"score_scale": int(text) if text.isdigit() else 1000}


@attrs.frozen(slots=True)
class CatalogueInfo(VersionInfoBase):
    """Identity and provenance of one catalogue version."""

    _error = CatalogueError
    _noun = "catalogue"

    score_scale: int = 1000
    description: str = ""
    #: who registered it: a plugin name, or "path" for an ad-hoc folder
    source: str = "path"

    @classmethod
    def from_folder(
        cls, path: str | os.PathLike[str], source: str = "path", **overrides
    ) -> CatalogueInfo:
        """Identity from the folder's ``meta.csv``; keyword arguments take precedence."""
        return read_info(
            cls,
            Path(path),
            source,
            overrides,
            id_key="catalogue",
            read_rows=T.iter_rows,
            extra=_score_scale,
        )


class Catalogue(VersionBase):
    """One catalogue version: its info and, loaded on first use, its compiled tables."""

    scheme = "dip"
    _info_cls = CatalogueInfo
    _error = CatalogueError
    _noun = "catalogue"
    info: CatalogueInfo
    _load_compiled = staticmethod(load_compiled)

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
class CatalogueSeries(SeriesBase):
    """The catalogue versions of one region, each in force from its ``effective_from`` until
    the day before the next version's (or its own ``effective_to`` if earlier); cases pick
    their version by discharge date (按出院日期)."""

    region: str
    versions: tuple[Catalogue, ...]
    scheme = "dip"
    _error = CatalogueError
    _noun = "catalogue"

    def __attrs_post_init__(self) -> None:
        self._check_versions()
