"""What the DIP catalogue builder returns: Arrow tables, a report, and a writer for a folder.

Layout written by :meth:`BuildResult.write` (one CSV per table, UTF-8, header row; money in
yuan with two decimals; every file written atomically):

* ``packets.csv`` — core packets: code, dx, procedure, related, cases, cases_kept, mean_cost,
  score, cv, primary_care;
* ``comprehensive.csv`` — comprehensive packets and the blank packet: code, kind, dx,
  attribute, name, cases, cases_kept, mean_cost, score, cv;
* ``subtypes.csv`` — auxiliary sub-types: packet, dimension, band, cases, mean_cost,
  coefficient, cv_before, cv_after;
* ``levels.csv`` — hospital-level coefficients: hospital_level, cases, mean_cost, coefficient;
* ``packet_stats.csv`` — per packet and hospital level: cases, mean_cost, mean_los;
* ``combinations.csv`` — every (dx, procedure, related) combination seen, where it went, why;
* ``excluded.csv`` — input rows not used (row = position in the input, 1 = first case);
* ``report.md`` — the build report in words.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from .._io import atomic_output
from ._build_options import BuildOptions

__all__ = ["BuildReport", "BuildResult"]


def _dec(units: int | None, places: int) -> Decimal | None:
    return None if units is None else Decimal(int(units)).scaleb(-places)


def decimal_array(units: Any, places: int, valid: Any = None) -> pa.Array:
    """Exact ``decimal128(18, places)`` from int64 units of 10^-places (no float)."""
    units = np.ascontiguousarray(np.asarray(units, dtype=np.int64))
    words = np.empty((len(units), 2), dtype=np.int64)
    words[:, 0] = units
    words[:, 1] = np.where(units < 0, -1, 0)  # two's-complement sign extension
    validity, nulls = None, 0
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if not valid.all():
            validity = pa.py_buffer(np.packbits(valid.astype(np.uint8), bitorder="little"))
            nulls = int((~valid).sum())
    return pa.Array.from_buffers(pa.decimal128(18, places), len(units),
                                 [validity, pa.py_buffer(words)], null_count=nulls)


@attrs.frozen(slots=True)
class BuildReport:
    """Counts and decisions of one build (see :meth:`text`)."""

    source: str
    rows: int
    valid: int
    excluded: int
    years: tuple[int, ...]
    weights: tuple[int, ...]
    threshold: int
    threshold_rule: str
    core_packets: int
    core_cases: int
    comprehensive_packets: int
    comprehensive_cases: int
    blank_cases: int
    overall_mean: int  # cents
    score_base: int  # cents (M of the score formula), rounded
    splits: tuple[tuple[str, str, str, int], ...]  # change in 0.01 %
    merges: int
    subtypes: tuple[tuple[str, str, float, float], ...]
    unknown_procedures: tuple[str, ...]
    excluded_reasons: Mapping[str, int]

    @property
    def coverage(self) -> Fraction:
        """Share of valid cases in core packets."""
        return Fraction(self.core_cases, self.valid)

    def as_dict(self) -> dict[str, Any]:
        out = attrs.asdict(self, recurse=False)
        out["overall_mean"] = str(_dec(self.overall_mean, 2))
        out["score_base"] = str(_dec(self.score_base, 2))
        out["coverage"] = f"{float(self.coverage):.6f}"
        out["splits"] = [[d, p, r, str(_dec(c, 2))] for d, p, r, c in self.splits]
        out["excluded_reasons"] = dict(self.excluded_reasons)
        return out

    def text(self) -> str:
        lines = [
            "# DIP catalogue build report", "",
            f"- source: {self.source}",
            f"- rows read: {self.rows}; valid cases: {self.valid}; excluded: {self.excluded}",
        ]
        lines += [f"  - {reason}: {n}" for reason, n in self.excluded_reasons.items()]
        lines += [
            f"- years {', '.join(map(str, self.years))} weighted "
            f"{':'.join(map(str, self.weights))}",
            f"- case-count threshold n = {self.threshold} ({self.threshold_rule})",
            f"- core packets: {self.core_packets} holding {self.core_cases} cases "
            f"({float(self.coverage) * 100:.2f}% of valid cases)",
            f"- comprehensive packets: {self.comprehensive_packets} holding "
            f"{self.comprehensive_cases} cases; blank packet: {self.blank_cases} cases",
            f"- weighted mean cost of all cases: {_dec(self.overall_mean, 2)} yuan; "
            f"score base M: {_dec(self.score_base, 2)} yuan",
            f"- related procedure sets split off: {len(self.splits)}; merged: {self.merges}",
        ]
        lines += [f"  - {d}:{p}+{r}: {_dec(c, 2)}%" for d, p, r, c in self.splits[:50]]
        if len(self.splits) > 50:
            lines.append(f"  - … {len(self.splits) - 50} more in combinations.csv")
        lines.append(f"- auxiliary sub-typings kept: {len(self.subtypes)}")
        lines += [f"  - {code} by {dim}: CV {a:.4f} -> {b:.4f}" for code, dim, a, b in
                  self.subtypes[:50]]
        if len(self.subtypes) > 50:
            lines.append(f"  - … {len(self.subtypes) - 50} more in subtypes.csv")
        if self.unknown_procedures:
            shown = ", ".join(self.unknown_procedures[:20])
            more = "" if len(self.unknown_procedures) <= 20 else " …"
            lines.append(f"- principal procedures missing from the attribute dictionary "
                         f"({len(self.unknown_procedures)}): {shown}{more}")
        return "\n".join(lines) + "\n"


@attrs.frozen(slots=True)
class BuildResult:
    """The built catalogue's tables, the rows left out, and the report."""

    packets: pa.Table
    comprehensive: pa.Table
    subtypes: pa.Table
    levels: pa.Table
    packet_stats: pa.Table
    combinations: pa.Table
    excluded: pa.Table
    report: BuildReport
    options: BuildOptions

    @classmethod
    def from_columns(cls, packets: dict[str, Any], subtypes: dict[str, Any],
                     levels: dict[str, Any], packet_stats: dict[str, Any],
                     combinations: pa.Table, excluded: pa.Table, report: BuildReport,
                     options: BuildOptions) -> BuildResult:
        """Assemble the tables; money and decimal columns arrive as int64 units."""
        sd, cd = options.score_decimals, options.coefficient_decimals
        kind = np.array(packets["kind"])
        core = np.flatnonzero(kind == "core")
        comp = np.flatnonzero(kind != "core")

        def pick(key: str, rows: np.ndarray, typ: pa.DataType | None = None) -> pa.Array:
            values = packets[key]
            if isinstance(values, list):
                return pa.array(values, typ or pa.string()).take(pa.array(rows, pa.int64()))
            return pa.array(np.asarray(values)[rows], typ)

        def money(key: str, rows: np.ndarray) -> pa.Array:
            return decimal_array(np.asarray(packets[key])[rows], 2)

        core_t = pa.table({
            "code": pick("code", core), "dx": pick("dx", core),
            "procedure": pick("procedure", core), "related": pick("related", core),
            "cases": pick("cases", core, pa.int64()),
            "cases_kept": pick("cases_kept", core, pa.int64()),
            "mean_cost": money("mean_cost", core),
            "score": decimal_array(np.asarray(packets["score"])[core], sd),
            "cv": decimal_array(np.asarray(packets["cv"])[core], 4),
            "primary_care": pick("primary_care", core, pa.bool_()),
        })
        comp_t = pa.table({
            "code": pick("code", comp), "kind": pick("kind", comp), "dx": pick("dx", comp),
            "attribute": pick("attribute", comp), "name": pick("name", comp),
            "cases": pick("cases", comp, pa.int64()),
            "cases_kept": pick("cases_kept", comp, pa.int64()),
            "mean_cost": money("mean_cost", comp),
            "score": decimal_array(np.asarray(packets["score"])[comp], sd),
            "cv": decimal_array(np.asarray(packets["cv"])[comp], 4),
        })
        sub_t = pa.table({
            "packet": pa.array(subtypes["packet"], pa.string()),
            "dimension": pa.array(subtypes["dimension"], pa.string()),
            "band": pa.array(subtypes["band"], pa.string()),
            "cases": pa.array(subtypes["cases"], pa.int64()),
            "mean_cost": decimal_array(subtypes["mean_cost"], 2),
            "coefficient": decimal_array(subtypes["coefficient"], cd),
            "cv_before": decimal_array(subtypes["cv_before"], 4),
            "cv_after": decimal_array(subtypes["cv_after"], 4),
        })
        lev_t = pa.table({
            "hospital_level": pa.array(levels["hospital_level"], pa.int8()),
            "cases": pa.array(levels["cases"], pa.int64()),
            "mean_cost": decimal_array(levels["mean_cost"], 2),
            "coefficient": decimal_array(levels["coefficient"], cd),
        })
        los, has_los = packet_stats["mean_los"]
        stat_t = pa.table({
            "packet": packet_stats["packet"],
            "hospital_level": pa.array(packet_stats["hospital_level"], pa.string()),
            "cases": pa.array(packet_stats["cases"], pa.int64()),
            "mean_cost": decimal_array(packet_stats["mean_cost"], 2),
            "mean_los": decimal_array(los, 2, valid=has_los),
            "cv": decimal_array(packet_stats["cv"], 4),
        })
        return cls(core_t, comp_t, sub_t, lev_t, stat_t, combinations, excluded, report,
                   options)

    def tables(self) -> dict[str, pa.Table]:
        return {"packets": self.packets, "comprehensive": self.comprehensive,
                "subtypes": self.subtypes, "levels": self.levels,
                "packet_stats": self.packet_stats, "combinations": self.combinations,
                "excluded": self.excluded}

    def write(self, folder: str | os.PathLike[str]) -> Path:
        """Write the catalogue folder (layout in the module docstring); returns its path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, table in self.tables().items():
            with atomic_output(folder / f"{name}.csv") as tmp:
                pacsv.write_csv(table, tmp, write_options=pacsv.WriteOptions(
                    quoting_style="needed"))
        with atomic_output(folder / "report.md") as tmp:
            tmp.write_text(self.report.text(), encoding="utf-8")
        with atomic_output(folder / "report.json") as tmp:
            tmp.write_text(json.dumps(self.report.as_dict(), ensure_ascii=False, indent=1),
                           encoding="utf-8")
        return folder
