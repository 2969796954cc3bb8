"""DIP catalogues (病种目录) as data: a folder of CSV tables per version (see ``FORMAT.md``),
validated with file/row/column errors, compiled to integer arrays and cached by content hash."""

from ._model import Catalogue, CatalogueInfo, CatalogueSeries

__all__ = ["Catalogue", "CatalogueInfo", "CatalogueSeries"]
