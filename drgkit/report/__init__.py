"""Reports people read: one self-contained HTML page (inline SVG charts, opens offline) or an
Excel workbook, from a settled table and the indicators of :mod:`drgkit.monitoring`.

>>> report = build_report("settled.parquet", policy)        # doctest: +SKIP
>>> report.write("report.html")                              # doctest: +SKIP
>>> report.write("report.xlsx", lang="en")                   # doctest: +SKIP

``hospital=`` gives one hospital against the region, ``what_if=`` adds what changes per
department and DRG under next year's rules (``drgkit simulate``'s output).
"""

from __future__ import annotations

from ._data import Report, build_report, what_if_tables
from ._html import render_html
from ._labels import LABELS, LANGS, label
from ._xlsx import write_xlsx

__all__ = [
    "LABELS",
    "LANGS",
    "Report",
    "build_report",
    "label",
    "render_html",
    "what_if_tables",
    "write_xlsx",
]
