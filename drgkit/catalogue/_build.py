"""Build a local DIP catalogue (地方病种库) from 1–3 years of settled cases (DIP.md §3).

:func:`build_catalogue` reads the history once, then works on integer arrays: combinations
(4-character diagnosis × principal procedure × related-procedure set) are counted, related sets
split off or merged, small packets collapsed into comprehensive packets (diagnosis category ×
treatment attribute) and those, optionally, into the blank packet; scores, CVs, primary-care
flags, auxiliary sub-types and hospital-level coefficients follow. Group statistics are exact
(integer cents, year-weighted sums as Python integers, means as Fractions) and every figure is
rounded once, half up, at the end. The rules, stated exactly:

* weights: year weights (default 1:2:7, oldest -> newest) by the case's year; every mean is
  Σw·cost / Σw;
* trimming: in a group of n >= ``trim_min_cases`` cases, sort costs c(0) <= … <= c(n−1),
  k = floor(n × ``trim_share``), keep cases with c(k) <= cost <= c(n−1−k) (ties at a bound are
  kept); a combination's and packet's mean, and the packet's CV, are over kept cases;
* CV = sqrt(Σw(c−m)²/Σw) / m (weighted, population form);
* related split: a set R of secondary procedures of (dx, principal) is its own packet iff it
  has >= n cases, (dx, principal) has cases without related procedures (the base), and
  |m_R − m_base| >= ``related_split`` × m_base; otherwise its cases join (dx, principal);
* core: a packet with >= n cases; the others go to (dx's first 3 characters, attribute of the
  principal procedure); a comprehensive packet with < n cases goes to the blank packet when
  ``blank_packet`` is set;
* scores: round(m_i / M × scale, score_decimals); M is the weighted untrimmed mean of all valid
  cases (mean method), the reference packet's m (reference method) or ``fixed_mean``;
* primary care: core packets with CV <= ``primary_care_cv`` and a share of cases (counted) in
  level-1 hospitals >= ``primary_care_level1_share``;
* auxiliary sub-types (core packets with >= ``aux_min_cases`` cases; all their cases,
  untrimmed): per dimension, bands with >= ``aux_min_band_cases`` cases are sub-types (the other
  cases form the rest); a dimension is kept iff the pooled within-sub-type SD ÷ packet mean is
  <= (1 − ``aux_cv_cut``) × the packet's CV; coefficient = sub-type mean ÷ packet mean; a case in
  several sub-types takes the highest coefficient (applied by the grouper, not here);
* level coefficient = weighted mean cost of the level's cases ÷ that of all valid cases.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pyarrow as pa

from ._build_input import History, read_history
from ._build_options import ATTRIBUTES, BuildOptions
from ._build_result import BuildReport, BuildResult
from ._build_stats import GroupStats, cv_text, group_stats, round_half_up

__all__ = ["BuildOptions", "BuildResult", "build_catalogue"]

_ATTR_INDEX = {a[0]: i for i, a in enumerate(ATTRIBUTES)}


def _combined(a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
    """One int64 key ordering like the tuple (a, b, c) (all >= 0)."""
    nb = int(b.max()) + 1 if len(b) else 1
    key = a * nb + b
    if c is not None:
        nc = int(c.max()) + 1 if len(c) else 1
        if (int(a.max()) + 1 if len(a) else 1) * nb * nc >= 2**62:
            raise OverflowError("too many distinct codes to combine")
        key = key * nc + c
    return key


def _groups(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1).astype(np.int64)


def _pct(change: Fraction) -> Fraction:
    return round_half_up(change * 100, 2)


def _coverage_threshold(counts: np.ndarray, share: Fraction) -> int:
    """Largest n such that combinations with >= n cases hold >= share of all cases."""
    total = int(counts.sum())
    desc = np.sort(counts)[::-1]
    cum = np.cumsum(desc)
    # the first position where the cumulative count reaches the target: its count is n
    for i in range(len(desc)):
        if Fraction(int(cum[i])) >= share * total:
            return int(desc[i])
    return 1


@attrs.define(slots=True)
class _Packet:
    code: str
    kind: str  # core / comprehensive / blank
    dx: str
    procedure: str
    related: str
    attribute: str
    name: str


def build_catalogue(history: Any, options: BuildOptions | None = None) -> BuildResult:
    """Build a local catalogue's tables and report from historical cases (see module doc)."""
    opt = options or BuildOptions()
    h = read_history(history, weights=opt.year_weights, death_codes=opt.death_codes)
    return _build(h, opt)


def _build(h: History, opt: BuildOptions) -> BuildResult:
    n_cases = len(h.cost)
    if n_cases == 0:
        from ..errors import CaseDataError

        raise CaseDataError("no valid case to build a catalogue from", file=h.source)
    cost, w = h.cost, h.weight
    by_cost = np.argsort(cost, kind="stable")
    trim = {"by_cost": by_cost, "trim_min": opt.trim_min_cases, "share": opt.trim_share}

    # (dx, principal) combinations and the threshold
    base_first, base_id = _groups(_combined(h.dx, h.proc))
    base_count = np.bincount(base_id)
    if opt.coverage is not None:
        n_min = _coverage_threshold(base_count, opt.coverage)
        how = f"coverage: the largest n at which core (dx, principal) combinations hold >= " \
              f"{float(opt.coverage * 100):g}% of cases"
    else:
        n_min = opt.min_cases
        how = "fixed"

    # full combinations (dx, principal, related set)
    full_first, full_id = _groups(_combined(h.dx, h.proc, h.rel))
    full = group_stats(full_id, len(full_first), cost, w, **trim)
    f_dx, f_proc, f_rel = h.dx[full_first], h.proc[full_first], h.rel[full_first]
    f_base = base_id[full_first]
    # the base of each (dx, principal): its combination without related procedures
    plain_of_base = np.full(len(base_first), -1, np.int64)
    plain = np.flatnonzero(f_rel == 0)
    plain_of_base[f_base[plain]] = plain

    nf = len(full_first)
    split = np.zeros(nf, bool)
    change: list[Fraction | None] = [None] * nf
    rel_reason: list[str] = [""] * nf
    for f in range(nf):
        if f_rel[f] == 0:
            continue
        b = plain_of_base[f_base[f]]
        if b < 0:
            rel_reason[f] = "merged: no case of the diagnosis + principal alone to compare"
            continue
        mb = full.mean(b)
        mf = full.mean(f)
        change[f] = (mf - mb) / mb
        pct = float(_pct(change[f]))
        if full.n_all[f] < n_min:
            rel_reason[f] = f"merged: {full.n_all[f]} cases < {n_min} (change {pct:+.2f}%)"
        elif abs(mf - mb) >= opt.related_split * mb:
            split[f] = True
            rel_reason[f] = f"split: change {pct:+.2f}% >= {float(opt.related_split * 100):g}%"
        else:
            rel_reason[f] = f"merged: change {pct:+.2f}% < {float(opt.related_split * 100):g}%"

    # candidate packet per combination: own (split) or its (dx, principal); ids: split
    # combinations take nb + f so that both live in one id space
    nb = len(base_first)
    cand_of_full = np.where(split, nb + np.arange(nf), f_base)
    cand = cand_of_full[full_id]
    cand_count = np.bincount(cand, minlength=nb + nf)
    is_core_cand = cand_count >= n_min

    # comprehensive key of every case not in a core candidate
    attr_of_proc = np.array(
        [_ATTR_INDEX["medical"]] + [_ATTR_INDEX[opt.procedure_attributes.get(
            c, opt.unknown_attribute)] for c in h.proc_codes[1:]], np.int64)
    unknown_procs = {h.proc_codes[p] for p in np.unique(h.proc).tolist()
                     if p and h.proc_codes[p] not in opt.procedure_attributes}
    dx3_codes = sorted({c[:3] for c in h.dx_codes})
    dx3_of_dx = np.array([dx3_codes.index(c[:3]) for c in h.dx_codes], np.int64) \
        if h.dx_codes else np.zeros(0, np.int64)
    in_core = is_core_cand[cand]
    comp_key = np.where(in_core, -1, dx3_of_dx[h.dx] * len(ATTRIBUTES) + attr_of_proc[h.proc])
    comp_codes_key = np.unique(comp_key[comp_key >= 0])
    comp_id = np.where(in_core, -1, np.searchsorted(comp_codes_key, comp_key))
    comp_count = np.bincount(comp_id[comp_id >= 0], minlength=len(comp_codes_key))
    comp_blank = (comp_count < n_min) & opt.blank_packet

    # final packets, in order: core (by dx, principal, related), comprehensive, blank
    packets: list[_Packet] = []
    core_cands = np.flatnonzero(is_core_cand)
    core_sort = []
    for c in core_cands:
        if c < nb:
            f = plain_of_base[c] if plain_of_base[c] >= 0 else np.flatnonzero(f_base == c)[0]
            key = (int(h.dx[base_first[c]]), int(h.proc[base_first[c]]), 0)
        else:
            f = c - nb
            key = (int(f_dx[f]), int(f_proc[f]), int(f_rel[f]))
        core_sort.append((key, int(c)))
    core_sort.sort()
    packet_of_cand = np.full(nb + nf, -1, np.int64)
    for (d, p, r), c in core_sort:
        dx, proc, rel = h.dx_codes[d], h.proc_codes[p], h.rel_codes[r]
        code = dx + (":" + proc if proc else "") + ("+" + rel if rel else "")
        packet_of_cand[c] = len(packets)
        packets.append(_Packet(code, "core", dx, proc, rel, "", ""))
    packet_of_comp = np.full(len(comp_codes_key), -1, np.int64)
    for i, k in enumerate(comp_codes_key.tolist()):
        if comp_blank[i]:
            continue
        dx3, (attr, suffix, name) = dx3_codes[k // len(ATTRIBUTES)], ATTRIBUTES[
            k % len(ATTRIBUTES)]
        packet_of_comp[i] = len(packets)
        packets.append(_Packet(f"{dx3}:{suffix}", "comprehensive", dx3, "", "", attr,
                               f"{dx3} {name}"))
    blank_id = -1
    if comp_blank.any():
        blank_id = len(packets)
        packets.append(_Packet(opt.blank_code, "blank", "", "", "", "", "空白病种"))
        packet_of_comp[comp_blank] = blank_id
    comp_lookup = np.append(packet_of_comp, -1)  # index -1: not comprehensive
    packet = np.where(in_core, packet_of_cand[cand], comp_lookup[comp_id])
    npk = len(packets)

    kept = group_stats(packet, npk, cost, w, **trim)
    allc = group_stats(packet, npk, cost, w)
    overall = group_stats(np.zeros(n_cases, np.int64), 1, cost, w)
    mean_all = overall.mean(0)
    if opt.score_method == "mean":
        big_m = mean_all
    elif opt.score_method == "fixed":
        big_m = opt.fixed_mean * 100
    else:
        codes = [p.code for p in packets]
        if opt.reference_packet not in codes:
            from ._build_options import BuildOptionsError

            raise BuildOptionsError(f"reference packet {opt.reference_packet!r} was not built "
                                    "(no core packet with that code)",
                                    column="build.reference_packet")
        big_m = kept.mean(codes.index(opt.reference_packet))

    level1 = np.bincount(packet[h.level == 1], minlength=npk)
    rows = []
    for i, p in enumerate(packets):
        m = kept.mean(i)
        var = kept.var_num(i)
        primary = p.kind == "core" and var <= opt.primary_care_cv ** 2 * m * m * kept.sw[i] \
            and Fraction(int(level1[i]), int(kept.n_all[i])) >= opt.primary_care_level1_share
        rows.append({
            "code": p.code, "kind": p.kind, "dx": p.dx, "procedure": p.procedure,
            "related": p.related, "attribute": p.attribute, "name": p.name,
            "cases": int(kept.n_all[i]), "cases_kept": int(kept.n[i]),
            "mean_cost": round_half_up(m, 0), "score": round_half_up(m / big_m * opt.scale,
                                                                     opt.score_decimals),
            "cv": cv_text(var, kept.sw[i], m), "primary_care": bool(primary),
        })

    subtypes, sub_log = _subtypes(h, opt, packet, packets, allc)
    levels = _levels(h, opt, mean_all)
    packet_levels = _packet_levels(h, packet, npk)

    # why each combination went where
    comb = []
    for f in range(nf):
        c = int(cand_of_full[f])
        i_full = full_first[f]
        pk = int(packet[i_full])
        kind = packets[pk].kind
        if kind == "core":
            where = f"core: packet has {int(cand_count[c])} cases >= {n_min}"
        else:
            ci = int(comp_id[i_full])
            cand_code = h.dx_codes[f_dx[f]] + (":" + h.proc_codes[f_proc[f]]
                                               if f_proc[f] else "")
            where = f"{cand_code} has {int(cand_count[c])} cases < {n_min}"
            if kind == "blank":
                where += f"; comprehensive group has {int(comp_count[ci])} cases < {n_min}: blank"
            else:
                where += ": comprehensive"
        comb.append({
            "dx": h.dx_codes[f_dx[f]], "procedure": h.proc_codes[f_proc[f]],
            "related": h.rel_codes[f_rel[f]], "cases": int(full.n_all[f]),
            "mean_cost": round_half_up(full.mean(f), 0),
            "change_pct": None if change[f] is None else _pct(change[f]),
            "related_decision": ("split" if split[f] else "merged") if f_rel[f] else None,
            "packet": packets[pk].code, "kind": kind,
            "reason": "; ".join(x for x in (rel_reason[f], where) if x),
        })

    n_core = sum(1 for p in packets if p.kind == "core")
    core_cases = sum(r["cases"] for r in rows if r["kind"] == "core")
    report = BuildReport(
        source=h.source, rows=h.rows, valid=n_cases, excluded=h.excluded.num_rows,
        years=tuple(h.years), weights=tuple(opt.year_weights[len(opt.year_weights)
                                                             - len(h.years):]),
        threshold=n_min, threshold_rule=how, core_packets=n_core, core_cases=core_cases,
        comprehensive_packets=sum(1 for p in packets if p.kind == "comprehensive"),
        comprehensive_cases=sum(r["cases"] for r in rows if r["kind"] == "comprehensive"),
        blank_cases=sum(r["cases"] for r in rows if r["kind"] == "blank"),
        overall_mean=round_half_up(mean_all, 0), score_base=round_half_up(big_m, 0),
        splits=tuple((r["dx"], r["procedure"], r["related"], r["change_pct"])
                     for r in comb if r["related_decision"] == "split"),
        merges=sum(1 for r in comb if r["related_decision"] == "merged"),
        subtypes=tuple(sub_log), unknown_procedures=tuple(sorted(unknown_procs)),
        excluded_reasons=_reason_counts(h.excluded),
    )
    return BuildResult.from_rows(rows, subtypes, levels, packet_levels, comb, h.excluded,
                                 report, opt)


def _reason_counts(excluded: pa.Table) -> Mapping[str, int]:
    out: dict[str, int] = {}
    for r in excluded.column("reason").to_pylist():
        out[r] = out.get(r, 0) + 1
    return dict(sorted(out.items()))


def _bands(h: History, dim: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Band index of every case in one auxiliary dimension (0 = no band) and band names."""
    if dim == "cci":
        c = h.cci
        band = np.select([c == 0, (c >= 1) & (c <= 2), (c >= 3) & (c <= 4), c >= 5],
                         [1, 2, 3, 4], 0)
        return band, ("", "0", "1-2", "3-4", ">=5")
    if dim == "age":
        days, age = h.age_days, h.age
        infant = (days >= 0) & (days < 365)
        band = np.select([infant & (days <= 28), infant, (age >= 1) & (age <= 6),
                          (age >= 7) & (age <= 17), age > 65], [1, 2, 3, 4, 5], 0)
        return band, ("", "0-28d", "29d-1y", "1-6", "7-17", ">65")
    if dim == "icu":
        d = h.icu_days
        band = np.select([(d >= 2) & (d <= 7), (d >= 8) & (d <= 14), (d >= 15) & (d <= 30),
                          d >= 31], [1, 2, 3, 4], 0)
        return band, ("", "2-7", "8-14", "15-30", ">=31")
    return h.death.astype(np.int64), ("", "death")


def _subtypes(h: History, opt: BuildOptions, packet: np.ndarray, packets: list[_Packet],
              allc: GroupStats) -> tuple[list[dict], list[tuple]]:
    npk = len(packets)
    eligible = np.array([p.kind == "core" and allc.n_all[i] >= opt.aux_min_cases
                         for i, p in enumerate(packets)], bool)
    rows: list[dict] = []
    log: list[tuple] = []
    cut2 = (1 - opt.aux_cv_cut) ** 2
    for dim in opt.aux_dimensions:
        band, names = _bands(h, dim)
        nbands = len(names)
        gid = packet * nbands + band
        count = np.bincount(gid, minlength=npk * nbands)
        effective = (count >= opt.aux_min_band_cases)
        effective[::nbands] = False
        band_eff = np.where(effective[gid], band, 0)
        st = group_stats(packet * nbands + band_eff, npk * nbands, h.cost, h.weight)
        for i in np.flatnonzero(eligible):
            subs = [b for b in range(1, nbands) if effective[i * nbands + b]]
            if not subs:
                continue
            total = allc.var_num(i)
            within = sum((st.var_num(i * nbands + b) for b in range(nbands)
                          if st.sw[i * nbands + b]), Fraction(0))
            if total <= 0 or within > cut2 * total:
                continue
            m = allc.mean(i)
            before = cv_text(total, allc.sw[i], m)
            after = cv_text(within, allc.sw[i], m)
            log.append((packets[i].code, dim, float(before), float(after)))
            for b in subs:
                g = i * nbands + b
                rows.append({"index": int(i), "packet": packets[i].code, "dimension": dim,
                             "band": names[b],
                             "cases": int(st.n[g]), "mean_cost": round_half_up(st.mean(g), 0),
                             "coefficient": round_half_up(st.mean(g) / m,
                                                          opt.coefficient_decimals),
                             "cv_before": before, "cv_after": after})
    # packet order, then dimension order (stable: bands stay in band order)
    rows.sort(key=lambda r: (r["index"], opt.aux_dimensions.index(r["dimension"])))
    return rows, log


def _levels(h: History, opt: BuildOptions, mean_all: Fraction) -> list[dict]:
    st = group_stats(h.level - 1, 3, h.cost, h.weight)
    return [{"hospital_level": lv + 1, "cases": int(st.n[lv]),
             "mean_cost": round_half_up(st.mean(lv), 0),
             "coefficient": round_half_up(st.mean(lv) / mean_all, opt.coefficient_decimals)}
            for lv in range(3) if st.n[lv]]


def _packet_levels(h: History, packet: np.ndarray, npk: int) -> list[dict]:
    gid = packet * 3 + (h.level - 1)
    st = group_stats(gid, npk * 3, h.cost, h.weight)
    # the same exact accumulator, with the stay in days as the "cost"
    los = group_stats(np.where(h.los >= 0, gid, -1), npk * 3, np.maximum(h.los, 0), h.weight)
    sw_los, swl = los.sw, los.swc
    out = []
    for g in np.flatnonzero(st.n):
        out.append({"packet_index": int(g // 3), "hospital_level": int(g % 3) + 1,
                    "cases": int(st.n[g]), "mean_cost": round_half_up(st.mean(int(g)), 0),
                    "mean_los": round_half_up(Fraction(int(swl[g]), int(sw_los[g])), 2)
                    if sw_los[g] else None})
    return out


def write_catalogue(result: BuildResult, folder: str | os.PathLike[str]) -> Path:
    return result.write(folder)
