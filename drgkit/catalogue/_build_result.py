"""What the DIP catalogue builder returns: Arrow tables, a report, and a writer for a folder.

:meth:`BuildResult.write` writes a catalogue folder in the DIP catalogue format
(``drgkit/catalogue/FORMAT.md``, version 1): ``meta.csv``, ``packets.csv`` (core packets as kind
``core`` or, when selected for primary care, ``primary``; comprehensive; blank), ``core.csv``
(dx key, principal procedure, related procedures as an all-of spec), ``px_attribute.csv`` (the
dictionary the build used), ``comprehensive.csv``, ``packet_stats.csv`` (per packet: levels 1–3
untrimmed and ``all`` = the packet's trimmed figures) and ``aux.csv``. The builder's own tables
go to ``build/`` beside them (the catalogue reader ignores that folder), one CSV per table of
:class:`BuildResult` (money in yuan with two decimals):

* ``packets.csv`` — core packets: code, dx, procedure, related, cases, cases_kept, mean_cost,
  score, cv, primary_care;
* ``comprehensive.csv`` — comprehensive packets and the blank packet;
* ``subtypes.csv`` — auxiliary sub-types with their CV before and after;
* ``levels.csv`` — hospital-level coefficients (not part of the catalogue format: they belong
  to the settlement policy);
* ``packet_stats.csv`` — as in the catalogue, with rows whose cases have no LOS kept;
* ``combinations.csv`` — every (dx, procedure, related) combination seen, where it went, why;
* ``excluded.csv`` — input rows not used (row = position in the input, 1 = first case);
* ``report.md``, ``report.json`` — the build report.
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

from .._money import scaled_decimal
from .._write import atomic_output
from ._build_options import BuildOptions

__all__ = ["BuildReport", "BuildResult"]


def _dec(units: int | None, places: int) -> Decimal | None:
    return None if units is None else scaled_decimal(units, places)


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
    return pa.Array.from_buffers(
        pa.decimal128(18, places), len(units), [validity, pa.py_buffer(words)], null_count=nulls
    )


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
            "# DIP catalogue build report",
            "",
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
        lines += [
            f"  - {code} by {dim}: CV {a:.4f} -> {b:.4f}" for code, dim, a, b in self.subtypes[:50]
        ]
        if len(self.subtypes) > 50:
            lines.append(f"  - … {len(self.subtypes) - 50} more in subtypes.csv")
        if self.unknown_procedures:
            shown = ", ".join(self.unknown_procedures[:20])
            more = "" if len(self.unknown_procedures) <= 20 else " …"
            lines.append(
                f"- principal procedures missing from the attribute dictionary "
                f"({len(self.unknown_procedures)}): {shown}{more}"
            )
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
    def from_columns(
        cls,
        packets: dict[str, Any],
        subtypes: dict[str, Any],
        levels: dict[str, Any],
        packet_stats: dict[str, Any],
        combinations: pa.Table,
        excluded: pa.Table,
        report: BuildReport,
        options: BuildOptions,
    ) -> BuildResult:
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

        core_t = pa.table(
            {
                "code": pick("code", core),
                "dx": pick("dx", core),
                "procedure": pick("procedure", core),
                "related": pick("related", core),
                "cases": pick("cases", core, pa.int64()),
                "cases_kept": pick("cases_kept", core, pa.int64()),
                "mean_cost": money("mean_cost", core),
                "score": decimal_array(np.asarray(packets["score"])[core], sd),
                "cv": decimal_array(np.asarray(packets["cv"])[core], 4),
                "primary_care": pick("primary_care", core, pa.bool_()),
            }
        )
        comp_t = pa.table(
            {
                "code": pick("code", comp),
                "kind": pick("kind", comp),
                "dx": pick("dx", comp),
                "attribute": pick("attribute", comp),
                "name": pick("name", comp),
                "cases": pick("cases", comp, pa.int64()),
                "cases_kept": pick("cases_kept", comp, pa.int64()),
                "mean_cost": money("mean_cost", comp),
                "score": decimal_array(np.asarray(packets["score"])[comp], sd),
                "cv": decimal_array(np.asarray(packets["cv"])[comp], 4),
            }
        )
        sub_t = pa.table(
            {
                "packet": pa.array(subtypes["packet"], pa.string()),
                "dimension": pa.array(subtypes["dimension"], pa.string()),
                "band": pa.array(subtypes["band"], pa.string()),
                "cases": pa.array(subtypes["cases"], pa.int64()),
                "mean_cost": decimal_array(subtypes["mean_cost"], 2),
                "coefficient": decimal_array(subtypes["coefficient"], cd),
                "cv_before": decimal_array(subtypes["cv_before"], 4),
                "cv_after": decimal_array(subtypes["cv_after"], 4),
            }
        )
        lev_t = pa.table(
            {
                "hospital_level": pa.array(levels["hospital_level"], pa.int8()),
                "cases": pa.array(levels["cases"], pa.int64()),
                "mean_cost": decimal_array(levels["mean_cost"], 2),
                "coefficient": decimal_array(levels["coefficient"], cd),
            }
        )
        los, has_los = packet_stats["mean_los"]
        stat_t = pa.table(
            {
                "packet": packet_stats["packet"],
                "hospital_level": pa.array(packet_stats["hospital_level"], pa.string()),
                "cases": pa.array(packet_stats["cases"], pa.int64()),
                "mean_cost": decimal_array(packet_stats["mean_cost"], 2),
                "mean_los": decimal_array(los, 2, valid=has_los),
                "cv": decimal_array(packet_stats["cv"], 4),
            }
        )
        return cls(core_t, comp_t, sub_t, lev_t, stat_t, combinations, excluded, report, options)

    def tables(self) -> dict[str, pa.Table]:
        return {
            "packets": self.packets,
            "comprehensive": self.comprehensive,
            "subtypes": self.subtypes,
            "levels": self.levels,
            "packet_stats": self.packet_stats,
            "combinations": self.combinations,
            "excluded": self.excluded,
        }

    def write(
        self,
        folder: str | os.PathLike[str],
        *,
        catalogue: str = "local",
        name: str = "",
        region: str = "",
        version: str = "",
        effective_from: str = "",
        effective_to: str = "",
    ) -> Path:
        """Write a catalogue folder in the DIP catalogue format (drgkit/catalogue/FORMAT.md:
        meta, packets, core, px_attribute, comprehensive, packet_stats, aux) plus the
        builder's own tables and report under ``build/`` (which the catalogue reader
        ignores). Every file is written atomically; returns the folder."""
        folder = Path(folder)
        (folder / "build").mkdir(parents=True, exist_ok=True)
        opt = self.options
        packets = self.packets.to_pylist()
        comp = self.comprehensive.to_pylist()
        blank = [c["code"] for c in comp if c["kind"] == "blank"]
        meta = [
            ("format", "1"),
            ("catalogue", catalogue),
            ("name", name),
            ("region", region),
            ("version", version),
            ("source", f"drgkit dip build from {self.report.source}"),
            ("effective_from", effective_from),
            ("effective_to", effective_to),
            ("score_scale", str(opt.scale)),
            ("dx_key_chars", "4"),
            (
                "conservative_attributes",
                "|".join(_ATTR_CN[a] for a in opt.conservative_attributes) or "内科诊疗",
            ),
            ("fallback_chain", "comprehensive|blank" if blank else "comprehensive"),
            ("blank_packet", blank[0] if blank else ""),
            ("base_year_weights", ":".join(map(str, self.report.weights))),
        ]
        _write_csv(folder / "meta.csv", ("key", "value"), [m for m in meta if m[1]])
        _write_csv(
            folder / "packets.csv",
            ("packet", "name", "kind", "score"),
            [
                (
                    p["code"],
                    p["code"],
                    "primary" if p["primary_care"] else "core",
                    f"{p['score']:f}",
                )
                for p in packets
            ]
            + [(c["code"], c["name"], c["kind"], f"{c['score']:f}") for c in comp],
        )
        _write_csv(
            folder / "core.csv",
            ("packet", "dx_key", "principal_px", "related_px"),
            [(p["code"], p["dx"], p["procedure"], p["related"]) for p in packets],
        )
        _write_csv(
            folder / "px_attribute.csv",
            ("code", "attribute"),
            sorted((code, _ATTR_CN[a]) for code, a in opt.procedure_attributes.items()),
        )
        _write_csv(
            folder / "comprehensive.csv",
            ("packet", "dx_category", "attribute"),
            [
                (c["code"], c["dx"], _ATTR_CN[c["attribute"]])
                for c in comp
                if c["kind"] == "comprehensive"
            ],
        )
        stats = self.packet_stats.to_pylist()
        no_los = [r for r in stats if r["mean_los"] is None]
        _write_csv(
            folder / "packet_stats.csv",
            ("packet", "hospital_level", "cases", "mean_cost", "mean_los", "cv"),
            [
                (
                    r["packet"],
                    r["hospital_level"],
                    r["cases"],
                    f"{r['mean_cost']:f}",
                    f"{r['mean_los']:f}",
                    f"{r['cv']:f}",
                )
                for r in stats
                if r["mean_los"] is not None
            ],
        )
        _write_csv(
            folder / "aux.csv",
            ("packet", "dimension", "band", "subtype", "coefficient"),
            [
                (
                    r["packet"],
                    _AUX_DIM[r["dimension"]],
                    _AUX_BAND[r["band"]],
                    f"{_AUX_DIM[r['dimension']]}:{_AUX_BAND[r['band']]}",
                    f"{r['coefficient']:f}",
                )
                for r in self.subtypes.to_pylist()
            ],
        )
        for table_name, table in self.tables().items():
            with atomic_output(folder / "build" / f"{table_name}.csv") as tmp:
                pacsv.write_csv(
                    table, tmp, write_options=pacsv.WriteOptions(quoting_style="needed")
                )
        text = self.report.text()
        if no_los:
            text += (
                f"- packet_stats.csv leaves out {len(no_los)} (packet, level) rows whose "
                "cases have no LOS (the format needs one); see build/packet_stats.csv\n"
            )
        with atomic_output(folder / "build" / "report.md") as tmp:
            tmp.write_text(text, encoding="utf-8")
        with atomic_output(folder / "build" / "report.json") as tmp:
            tmp.write_text(
                json.dumps(self.report.as_dict(), ensure_ascii=False, indent=1), encoding="utf-8"
            )
        return folder


_ATTR_CN = {
    "surgery": "相关手术",
    "therapeutic": "治疗性操作",
    "diagnostic": "诊断性操作",
    "medical": "内科诊疗",
}
_AUX_DIM = {"cci": "cci", "age": "age", "icu": "icu_days", "death": "death"}
_AUX_BAND = {
    "0": "0-0",
    "1-2": "1-2",
    "3-4": "3-4",
    ">=5": "5-",
    "0-28d": "0d-28d",
    "29d-1y": "29d-364d",
    "1-6": "1-6",
    "7-17": "7-17",
    ">65": "66-",
    "2-7": "2-7",
    "8-14": "8-14",
    "15-30": "15-30",
    ">=31": "31-",
    "death": "1",
}


def _write_csv(path: Path, header: tuple[str, ...], rows: list[tuple]) -> None:
    import csv

    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
