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
import pyarrow as pa
import pyarrow.csv as pacsv

from .._io import atomic_output
from .._money import cents_array
from ._build_options import BuildOptions

__all__ = ["BuildReport", "BuildResult"]


def _dec(value: Fraction | None, places: int) -> Decimal | None:
    """An already-rounded Fraction as the exact Decimal with ``places`` places."""
    if value is None:
        return None
    scaled = value * 10**places
    if scaled.denominator != 1:
        raise ValueError(f"{value} is not rounded to {places} places")
    return Decimal(scaled.numerator).scaleb(-places)


def _money(values: list[Fraction]) -> pa.Array:
    import numpy as np

    return cents_array(np.array([int(v) for v in values], dtype=np.int64))


def _decimals(values: list[Fraction | None], places: int, precision: int = 18) -> pa.Array:
    return pa.array([_dec(v, places) for v in values], pa.decimal128(precision, places))


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
    overall_mean: Fraction  # cents
    score_base: Fraction  # cents (M of the score formula)
    splits: tuple[tuple[str, str, str, Fraction | None], ...]
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
        out["overall_mean"] = str(_dec(self.overall_mean / 100, 2))
        out["score_base"] = str(_dec(self.score_base / 100, 2))
        out["coverage"] = f"{float(self.coverage):.6f}"
        out["splits"] = [[d, p, r, None if c is None else str(_dec(c, 2))]
                         for d, p, r, c in self.splits]
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
            f"- weighted mean cost of all cases: {_dec(self.overall_mean / 100, 2)} yuan; "
            f"score base M: {_dec(self.score_base / 100, 2)} yuan",
            f"- related procedure sets split off: {len(self.splits)}; merged: {self.merges}",
        ]
        lines += [f"  - {d}:{p}+{r}: {_dec(c, 2)}%" for d, p, r, c in self.splits]
        lines.append(f"- auxiliary sub-typings kept: {len(self.subtypes)}")
        lines += [f"  - {code} by {dim}: CV {a:.4f} -> {b:.4f}" for code, dim, a, b in
                  self.subtypes]
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
    def from_rows(cls, packets: list[dict], subtypes: list[dict], levels: list[dict],
                  packet_levels: list[dict], combinations: list[dict], excluded: pa.Table,
                  report: BuildReport, options: BuildOptions) -> BuildResult:
        sd, cd = options.score_decimals, options.coefficient_decimals
        core = [p for p in packets if p["kind"] == "core"]
        comp = [p for p in packets if p["kind"] != "core"]

        def col(rows: list[dict], key: str) -> list[Any]:
            return [r[key] for r in rows]

        core_t = pa.table({
            "code": pa.array(col(core, "code"), pa.string()),
            "dx": pa.array(col(core, "dx"), pa.string()),
            "procedure": pa.array(col(core, "procedure"), pa.string()),
            "related": pa.array(col(core, "related"), pa.string()),
            "cases": pa.array(col(core, "cases"), pa.int64()),
            "cases_kept": pa.array(col(core, "cases_kept"), pa.int64()),
            "mean_cost": _money(col(core, "mean_cost")),
            "score": _decimals(col(core, "score"), sd),
            "cv": _decimals(col(core, "cv"), 4),
            "primary_care": pa.array(col(core, "primary_care"), pa.bool_()),
        })
        comp_t = pa.table({
            "code": pa.array(col(comp, "code"), pa.string()),
            "kind": pa.array(col(comp, "kind"), pa.string()),
            "dx": pa.array(col(comp, "dx"), pa.string()),
            "attribute": pa.array(col(comp, "attribute"), pa.string()),
            "name": pa.array(col(comp, "name"), pa.string()),
            "cases": pa.array(col(comp, "cases"), pa.int64()),
            "cases_kept": pa.array(col(comp, "cases_kept"), pa.int64()),
            "mean_cost": _money(col(comp, "mean_cost")),
            "score": _decimals(col(comp, "score"), sd),
            "cv": _decimals(col(comp, "cv"), 4),
        })
        sub_t = pa.table({
            "packet": pa.array(col(subtypes, "packet"), pa.string()),
            "dimension": pa.array(col(subtypes, "dimension"), pa.string()),
            "band": pa.array(col(subtypes, "band"), pa.string()),
            "cases": pa.array(col(subtypes, "cases"), pa.int64()),
            "mean_cost": _money(col(subtypes, "mean_cost")),
            "coefficient": _decimals(col(subtypes, "coefficient"), cd),
            "cv_before": _decimals(col(subtypes, "cv_before"), 4),
            "cv_after": _decimals(col(subtypes, "cv_after"), 4),
        })
        lev_t = pa.table({
            "hospital_level": pa.array(col(levels, "hospital_level"), pa.int8()),
            "cases": pa.array(col(levels, "cases"), pa.int64()),
            "mean_cost": _money(col(levels, "mean_cost")),
            "coefficient": _decimals(col(levels, "coefficient"), cd),
        })
        codes = [p["code"] for p in packets]
        stat_t = pa.table({
            "packet": pa.array([codes[r["packet_index"]] for r in packet_levels], pa.string()),
            "hospital_level": pa.array(col(packet_levels, "hospital_level"), pa.int8()),
            "cases": pa.array(col(packet_levels, "cases"), pa.int64()),
            "mean_cost": _money(col(packet_levels, "mean_cost")),
            "mean_los": _decimals(col(packet_levels, "mean_los"), 2),
        })
        comb_t = pa.table({
            "dx": pa.array(col(combinations, "dx"), pa.string()),
            "procedure": pa.array(col(combinations, "procedure"), pa.string()),
            "related": pa.array(col(combinations, "related"), pa.string()),
            "cases": pa.array(col(combinations, "cases"), pa.int64()),
            "mean_cost": _money(col(combinations, "mean_cost")),
            "change_pct": _decimals(col(combinations, "change_pct"), 2, 38),
            "related_decision": pa.array(col(combinations, "related_decision"), pa.string()),
            "packet": pa.array(col(combinations, "packet"), pa.string()),
            "kind": pa.array(col(combinations, "kind"), pa.string()),
            "reason": pa.array(col(combinations, "reason"), pa.string()),
        })
        return cls(core_t, comp_t, sub_t, lev_t, stat_t, comb_t, excluded, report, options)

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
