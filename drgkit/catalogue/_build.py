"""Build a local DIP catalogue (地方病种库) from 1–3 years of settled cases (DIP.md §3).

:func:`build_catalogue` reads the history once, then works on integer arrays: combinations
(4-character diagnosis × principal procedure × related-procedure set) are counted, related sets
split off or merged, small packets collapsed into comprehensive packets (diagnosis category ×
treatment attribute) and those, optionally, into the blank packet; scores, CVs, primary-care
flags, auxiliary sub-types and hospital-level coefficients follow. Group statistics are exact
(integer cents, year-weighted sums as Python integers, means as Fractions) and every figure is
rounded once, half up, at the end. The rules, stated exactly:

* conservative: a case whose principal procedure has an attribute in
  ``conservative_attributes`` (default medical, diagnostic) in the dictionary is keyed as
  having no procedure (its related procedures ignored), like the format's conservative rows;
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

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import CaseDataError
from ._build_input import History, read_history
from ._build_options import ATTRIBUTES, BuildOptions, BuildOptionsError
from ._build_result import BuildReport, BuildResult, decimal_array
from ._build_stats import GroupStats, div_round, group_stats, sqrt_round

__all__ = ["BuildOptions", "BuildResult", "build_catalogue"]

_ATTR_INDEX = {a[0]: i for i, a in enumerate(ATTRIBUTES)}


def _combined(a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
    """One int64 key ordering like the tuple (a, b, c) (all >= 0)."""
    nb = int(b.max()) + 1 if len(b) else 1
    key = a * nb + b
    if c is not None:
        nc = int(c.max()) + 1 if len(c) else 1
        if (int(a.max()) + 1 if len(a) else 1) * nb * nc >= 2**62:
            raise CaseDataError(
                "too many distinct diagnosis and procedure codes to combine into one 62-bit key"
            )
        key = key * nc + c
    return key


def _groups(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a row of each distinct key, in ascending key order; group id of every row) by hashing
    (faster than sorting 10M keys) and then ranking the few distinct keys."""
    enc = pc.dictionary_encode(pa.array(key, pa.int64()))
    uniq = enc.dictionary.to_numpy(zero_copy_only=False)
    order = np.argsort(uniq, kind="stable")
    rank = np.empty(len(uniq), np.int64)
    rank[order] = np.arange(len(uniq))
    gid = rank[enc.indices.to_numpy(zero_copy_only=False)]
    first = np.empty(len(uniq), np.int64)
    first[gid] = np.arange(len(gid))  # any row of the group will do: they share the key
    return first, gid


def _coverage_threshold(counts: np.ndarray, share: Fraction) -> int:
    """Largest n such that combinations with >= n cases hold >= share of all cases."""
    total = int(counts.sum())
    desc = np.sort(counts)[::-1]
    cum = np.cumsum(desc)
    # the first position where the cumulative count reaches the target: its count is n
    reached = np.flatnonzero(cum * share.denominator >= share.numerator * total)
    return int(desc[reached[0]]) if len(reached) else 1


def build_catalogue(history: Any, options: BuildOptions | None = None) -> BuildResult:
    """Build a local catalogue's tables and report from historical cases (see module doc)."""
    opt = options or BuildOptions()
    h = read_history(history, weights=opt.year_weights, death_codes=opt.death_codes)
    return _build(h, opt)


def _build(h: History, opt: BuildOptions) -> BuildResult:
    n_cases = len(h.cost)
    if n_cases == 0:
        raise CaseDataError("no valid case to build a catalogue from", file=h.source)
    cost, w = h.cost, h.weight
    # conservative cases: principal procedure with a conservative attribute in the dictionary
    conservative_proc = np.array(
        [False]
        + [
            opt.procedure_attributes.get(c) in opt.conservative_attributes for c in h.proc_codes[1:]
        ],
        bool,
    )
    if conservative_proc.any():
        cons = conservative_proc[h.proc]
        h = attrs.evolve(h, proc=np.where(cons, 0, h.proc), rel=np.where(cons, 0, h.rel))
    by_cost = np.argsort(cost, kind="stable")
    trim = {"by_cost": by_cost, "trim_min": opt.trim_min_cases, "share": opt.trim_share}

    # (dx, principal) combinations and the threshold
    base_first, base_id = _groups(_combined(h.dx, h.proc))
    base_count = np.bincount(base_id)
    if opt.coverage is not None:
        n_min = _coverage_threshold(base_count, opt.coverage)
        how = (
            f"coverage: the largest n at which (dx, principal) combinations with >= n "
            f"cases hold >= {float(opt.coverage * 100):g}% of cases"
        )
    else:
        n_min = opt.min_cases
        how = "fixed"

    # full combinations (dx, principal, related set), in (dx, principal, related) text order
    full_first, full_id = _groups(_combined(h.dx, h.proc, h.rel))
    nf = len(full_first)
    full = group_stats(full_id, nf, cost, w, **trim)
    f_dx, f_proc, f_rel = h.dx[full_first], h.proc[full_first], h.rel[full_first]
    f_base = base_id[full_first]
    # the base of each (dx, principal): its combination without related procedures
    plain_of_base = np.full(len(base_first), -1, np.int64)
    plain = np.flatnonzero(f_rel == 0)
    plain_of_base[f_base[plain]] = plain

    # related split, exactly: change = (m_f − m_b)/m_b = num/den with
    # num = Σwc_f·Σw_b − Σwc_b·Σw_f and den = Σwc_b·Σw_f (> 0)
    b_of_f = plain_of_base[f_base]
    comparable = (f_rel > 0) & (b_of_f >= 0)
    bb = np.maximum(b_of_f, 0)
    num = full.swc * full.sw[bb] - full.swc[bb] * full.sw
    den = full.swc[bb] * full.sw
    t = opt.related_split
    big_change = np.abs(num) * t.denominator >= den * t.numerator
    enough = full.n_all >= n_min
    split = comparable & enough & big_change.astype(bool)
    pct = np.where(
        comparable, div_round(np.where(comparable, num * 10000, 0), np.where(comparable, den, 1)), 0
    )

    # candidate packet per case: own (split) or its (dx, principal); split combinations take
    # ids nb + f so that both live in one id space
    nb = len(base_first)
    cand_of_full = np.where(split, nb + np.arange(nf), f_base)
    cand = cand_of_full[full_id]
    cand_count = np.bincount(cand, minlength=nb + nf)
    is_core_cand = cand_count >= n_min

    # comprehensive key of every case not in a core candidate
    attr_of_proc = np.array(
        [_ATTR_INDEX["medical"]]
        + [
            _ATTR_INDEX[opt.procedure_attributes.get(c, opt.unknown_attribute)]
            for c in h.proc_codes[1:]
        ],
        np.int64,
    )
    unknown_procs = {
        h.proc_codes[p]
        for p in np.unique(h.proc).tolist()
        if p and h.proc_codes[p] not in opt.procedure_attributes
    }
    dx3_codes = sorted({c[:3] for c in h.dx_codes})
    dx3_pos = {c: i for i, c in enumerate(dx3_codes)}
    dx3_of_dx = np.array([dx3_pos[c[:3]] for c in h.dx_codes] or [0], np.int64)
    in_core = is_core_cand[cand]
    n_attr = len(ATTRIBUTES)
    comp_key = np.where(in_core, -1, dx3_of_dx[h.dx] * n_attr + attr_of_proc[h.proc])
    comp_keys = np.unique(comp_key[comp_key >= 0])
    comp_id = np.where(in_core, -1, np.searchsorted(comp_keys, comp_key))
    comp_count = np.bincount(comp_id[comp_id >= 0], minlength=len(comp_keys))
    comp_blank = (comp_count < n_min) & opt.blank_packet

    # final packets, in order: core (by dx, principal, related), comprehensive (by dx
    # category, attribute), blank
    core_cands = np.flatnonzero(is_core_cand)
    own = core_cands >= nb
    rep = np.where(
        own, full_first[np.where(own, core_cands - nb, 0)], base_first[np.where(own, 0, core_cands)]
    )
    c_dx, c_proc = h.dx[rep], h.proc[rep]
    c_rel = np.where(own, h.rel[rep], 0)
    order = np.lexsort((c_rel, c_proc, c_dx))
    core_cands, c_dx, c_proc, c_rel = (core_cands[order], c_dx[order], c_proc[order], c_rel[order])
    codes: list[str] = []
    kinds: list[str] = []
    p_dx: list[str] = []
    p_proc: list[str] = []
    p_rel: list[str] = []
    p_attr: list[str] = []
    p_name: list[str] = []
    for d, p, r in zip(c_dx.tolist(), c_proc.tolist(), c_rel.tolist(), strict=True):
        dx, proc, rel = h.dx_codes[d], h.proc_codes[p], h.rel_codes[r]
        # packet codes may not hold + | , or spaces (FORMAT.md): related codes joined by &
        codes.append(
            dx + (":" + proc if proc else "") + ("&" + rel.replace("+", "&") if rel else "")
        )
        p_dx.append(dx)
        p_proc.append(proc)
        p_rel.append(rel)
    n_core = len(codes)
    kinds += ["core"] * n_core
    p_attr += [""] * n_core
    p_name += [""] * n_core
    packet_of_cand = np.full(nb + nf, -1, np.int64)
    packet_of_cand[core_cands] = np.arange(n_core)
    packet_of_comp = np.full(len(comp_keys) + 1, -1, np.int64)  # last: not comprehensive
    for i, k in enumerate(comp_keys.tolist()):
        if comp_blank[i]:
            continue
        dx3, (attr, suffix, name) = dx3_codes[k // n_attr], ATTRIBUTES[k % n_attr]
        packet_of_comp[i] = len(codes)
        codes.append(f"{dx3}:{suffix}")
        kinds.append("comprehensive")
        p_dx.append(dx3)
        p_proc.append("")
        p_rel.append("")
        p_attr.append(attr)
        p_name.append(f"{dx3} {name}")
    if comp_blank.any():
        packet_of_comp[:-1][comp_blank] = len(codes)
        codes.append(opt.blank_code)
        kinds.append("blank")
        p_dx.append("")
        p_proc.append("")
        p_rel.append("")
        p_attr.append("")
        p_name.append("空白病种")
    packet = np.where(in_core, packet_of_cand[cand], packet_of_comp[comp_id])
    npk = len(codes)

    kept = group_stats(packet, npk, cost, w, **trim)
    allc = group_stats(packet, npk, cost, w)
    overall = group_stats(np.zeros(n_cases, np.int64), 1, cost, w)
    mean_all = overall.mean(0)
    if opt.score_method == "mean":
        big_m = mean_all
    elif opt.score_method == "fixed":
        big_m = opt.fixed_mean * 100
    else:
        if opt.reference_packet not in codes[:n_core]:
            raise BuildOptionsError(
                f"reference packet {opt.reference_packet!r} was not built "
                "(no core packet with that code)",
                column="build.reference_packet",
            )
        big_m = kept.mean(codes.index(opt.reference_packet))

    # score = round(m / M × scale) = round(Σwc · M_den · scale · 10^d / (Σw · M_num))
    sd = opt.score_decimals
    score = div_round(
        kept.swc * (big_m.denominator * opt.scale * 10**sd), kept.sw * big_m.numerator
    )
    disp_a, disp_b = kept.dispersion()
    cv = sqrt_round(disp_a, disp_b)
    pc_cv = opt.primary_care_cv
    low_cv = disp_a * pc_cv.denominator**2 <= disp_b * pc_cv.numerator**2
    level1 = np.bincount(packet[h.level == 1], minlength=npk)
    share = opt.primary_care_level1_share
    primary = (
        (np.array(kinds) == "core")
        & low_cv.astype(bool)
        & (level1 * share.denominator >= kept.n_all * share.numerator)
    )

    packet_cols = {
        "code": codes,
        "kind": kinds,
        "dx": p_dx,
        "procedure": p_proc,
        "related": p_rel,
        "attribute": p_attr,
        "name": p_name,
        "cases": kept.n_all,
        "cases_kept": kept.n,
        "mean_cost": kept.mean_cents(),
        "score": score,
        "cv": cv,
        "primary_care": primary,
    }
    subtypes, sub_log = _subtypes(h, opt, packet, codes, n_core, allc)
    levels = _levels(h, opt, mean_all)
    packet_stats = _packet_levels(h, packet, codes, kept, cv)

    # why each combination went where
    packet_of_full = packet[full_first]
    comp_of_full = comp_id[full_first]
    kinds_arr = np.array(kinds)
    comb_kind = kinds_arr[packet_of_full]
    t_pct = f"{float(t * 100):g}%"
    reasons = []
    for f in range(nf):
        pct_text = f"{pct[f] / 100:+.2f}%"
        if f_rel[f] == 0:
            why = ""
        elif not comparable[f]:
            why = "merged: no case of the diagnosis + principal alone to compare"
        elif not enough[f]:
            why = f"merged: {full.n_all[f]} cases < {n_min} (change {pct_text})"
        elif split[f]:
            why = f"split: change {pct_text} >= {t_pct}"
        else:
            why = f"merged: change {pct_text} < {t_pct}"
        c = cand_of_full[f]
        if comb_kind[f] == "core":
            where = f"core: packet has {cand_count[c]} cases >= {n_min}"
        else:
            base = h.dx_codes[f_dx[f]] + (":" + h.proc_codes[f_proc[f]] if f_proc[f] else "")
            where = f"{base} has {cand_count[c]} cases < {n_min}"
            if comb_kind[f] == "blank":
                where += (
                    f"; comprehensive group has {comp_count[comp_of_full[f]]} cases "
                    f"< {n_min}: blank"
                )
            else:
                where += ": comprehensive"
        reasons.append(f"{why}; {where}" if why else where)
    decision = np.where(f_rel > 0, np.where(split, "split", "merged"), None)
    comb = pa.table(
        {
            "dx": pa.array([h.dx_codes[i] for i in f_dx.tolist()], pa.string()),
            "procedure": pa.array([h.proc_codes[i] for i in f_proc.tolist()], pa.string()),
            "related": pa.array([h.rel_codes[i] for i in f_rel.tolist()], pa.string()),
            "cases": pa.array(full.n_all, pa.int64()),
            "mean_cost": decimal_array(full.mean_cents(), 2),
            "change_pct": decimal_array(pct, 2, valid=comparable),
            "related_decision": pa.array(decision.tolist(), pa.string()),
            "packet": pa.array(codes, pa.string()).take(pa.array(packet_of_full)),
            "kind": pa.array(comb_kind.tolist(), pa.string()),
            "reason": pa.array(reasons, pa.string()),
        }
    )

    is_core = kinds_arr == "core"
    split_rows = np.flatnonzero(split)
    report = BuildReport(
        source=h.source,
        rows=h.rows,
        valid=n_cases,
        excluded=h.excluded.num_rows,
        years=tuple(h.years),
        weights=tuple(opt.year_weights[len(opt.year_weights) - len(h.years) :]),
        threshold=n_min,
        threshold_rule=how,
        core_packets=n_core,
        core_cases=int(kept.n_all[is_core].sum()),
        comprehensive_packets=int((kinds_arr == "comprehensive").sum()),
        comprehensive_cases=int(kept.n_all[kinds_arr == "comprehensive"].sum()),
        blank_cases=int(kept.n_all[kinds_arr == "blank"].sum()),
        overall_mean=int(overall.mean_cents()[0]),
        score_base=int(
            div_round(np.array([big_m.numerator], object), np.array([big_m.denominator], object))[0]
        ),
        splits=tuple(
            (h.dx_codes[f_dx[f]], h.proc_codes[f_proc[f]], h.rel_codes[f_rel[f]], int(pct[f]))
            for f in split_rows.tolist()
        ),
        merges=int(((f_rel > 0) & ~split).sum()),
        subtypes=tuple(sub_log),
        unknown_procedures=tuple(sorted(unknown_procs)),
        excluded_reasons=_reason_counts(h.excluded),
    )
    return BuildResult.from_columns(
        packet_cols, subtypes, levels, packet_stats, comb, h.excluded, report, opt
    )


def _reason_counts(excluded: pa.Table) -> Mapping[str, int]:
    out: dict[str, int] = {}
    for r in excluded.column("reason").to_pylist():
        out[r] = out.get(r, 0) + 1
    return dict(sorted(out.items()))


def _bands(h: History, dim: str) -> np.ndarray:
    """Band index of every case in one auxiliary dimension (0 = no band; names in
    _BAND_NAMES)."""
    if dim == "cci":
        c = h.cci
        return np.select(
            [c == 0, (c >= 1) & (c <= 2), (c >= 3) & (c <= 4), c >= 5], [1, 2, 3, 4], 0
        )
    if dim == "age":
        days, age = h.age_days, h.age
        infant = (days >= 0) & (days < 365)
        return np.select(
            [
                infant & (days <= 28),
                infant,
                (age >= 1) & (age <= 6),
                (age >= 7) & (age <= 17),
                age > 65,
            ],
            [1, 2, 3, 4, 5],
            0,
        )
    if dim == "icu":
        d = h.icu_days
        return np.select(
            [(d >= 2) & (d <= 7), (d >= 8) & (d <= 14), (d >= 15) & (d <= 30), d >= 31],
            [1, 2, 3, 4],
            0,
        )
    return h.death.astype(np.int64)


def _subtypes(
    h: History,
    opt: BuildOptions,
    packet: np.ndarray,
    codes: list[str],
    n_core: int,
    allc: GroupStats,
) -> tuple[dict[str, Any], list[tuple]]:
    """Auxiliary sub-types. Per dimension, the pooled within-sub-type sum of squares W and the
    packet's T are compared exactly (W <= (1 − cut)² T); a float screen with a wide margin
    decides the clear cases and only packets near the boundary use Fractions."""
    npk = len(codes)
    eligible = np.zeros(npk, bool)
    eligible[:n_core] = allc.n_all[:n_core] >= opt.aux_min_cases
    cut2 = (1 - opt.aux_cv_cut) ** 2
    total = allc.swc2 - allc.swc * allc.swc // np.where(allc.n > 0, allc.sw, 1)  # ~T, floor
    found: list[tuple[int, int, int, np.ndarray, GroupStats, np.ndarray]] = []
    for di, dim in enumerate(opt.aux_dimensions):
        band = _bands(h, dim)
        nbands = len(_BAND_NAMES[dim])
        gid = packet * nbands + band
        count = np.bincount(gid, minlength=npk * nbands).reshape(npk, nbands)
        effective = count >= opt.aux_min_band_cases
        effective[:, 0] = False
        effective &= eligible[:, None]
        band_eff = np.where(effective.reshape(-1)[gid], band, 0)
        st = group_stats(packet * nbands + band_eff, npk * nbands, h.cost, h.weight)
        sw = np.where(st.n > 0, st.sw, 1)
        ssq = (st.swc2 - st.swc * st.swc // sw).reshape(npk, nbands)  # floors: screen only
        within = ssq.sum(axis=1)
        cand = np.flatnonzero(effective.any(axis=1))
        tot_f = total[cand].astype(float)
        within_f = within[cand].astype(float)
        margin = 1e-6 * allc.swc2[cand].astype(float) + 1e-6 * allc.sw[cand].astype(float)
        clear_no = (within_f > float(cut2) * tot_f + margin) | (tot_f <= 0)
        for i in cand[~clear_no].tolist():
            t_exact = allc.var_num(i)
            w_exact = sum(
                (st.var_num(i * nbands + b) for b in range(nbands) if st.n[i * nbands + b]),
                Fraction(0),
            )
            if t_exact <= 0 or w_exact > cut2 * t_exact:
                continue
            found.append(
                (
                    i,
                    di,
                    nbands,
                    np.flatnonzero(effective[i]),
                    st,
                    np.array([w_exact.numerator, w_exact.denominator], object),
                )
            )
    found.sort(key=lambda x: (x[0], x[1]))
    cols: dict[str, list] = {
        k: []
        for k in (
            "packet",
            "dimension",
            "band",
            "cases",
            "mean_cost",
            "coefficient",
            "cv_before",
            "cv_after",
        )
    }
    log = []
    disp_a, disp_b = allc.dispersion()
    cd = opt.coefficient_decimals
    for i, di, nbands, subs, st, wnd in found:
        dim = opt.aux_dimensions[di]
        names = _BAND_NAMES[dim]
        before = int(sqrt_round(disp_a[i : i + 1], disp_b[i : i + 1])[0])
        # CV after² = (W/Σw)/m² = W·Σw / (Σwc)², W = wn/wd
        after = int(
            sqrt_round(
                np.array([int(wnd[0]) * int(allc.sw[i])], object),
                np.array([int(wnd[1]) * int(allc.swc[i]) ** 2], object),
            )[0]
        )
        log.append((codes[i], dim, before / 10**4, after / 10**4))
        for b in subs.tolist():
            g = i * nbands + b
            cols["packet"].append(codes[i])
            cols["dimension"].append(dim)
            cols["band"].append(names[b])
            cols["cases"].append(int(st.n[g]))
            cols["mean_cost"].append(int(div_round(st.swc[g : g + 1], st.sw[g : g + 1])[0]))
            coef = div_round(
                np.array([int(st.swc[g]) * int(allc.sw[i]) * 10**cd], object),
                np.array([int(st.sw[g]) * int(allc.swc[i])], object),
            )
            cols["coefficient"].append(int(coef[0]))
            cols["cv_before"].append(before)
            cols["cv_after"].append(after)
    return cols, log


_BAND_NAMES = {
    "cci": ("", "0", "1-2", "3-4", ">=5"),
    "age": ("", "0-28d", "29d-1y", "1-6", "7-17", ">65"),
    "icu": ("", "2-7", "8-14", "15-30", ">=31"),
    "death": ("", "death"),
}


def _levels(h: History, opt: BuildOptions, mean_all: Fraction) -> dict[str, Any]:
    st = group_stats(h.level - 1, 3, h.cost, h.weight)
    present = np.flatnonzero(st.n)
    cd = opt.coefficient_decimals
    coef = div_round(
        st.swc[present] * (mean_all.denominator * 10**cd), st.sw[present] * mean_all.numerator
    )
    return {
        "hospital_level": present + 1,
        "cases": st.n[present],
        "mean_cost": st.mean_cents()[present],
        "coefficient": coef,
    }


def _packet_levels(
    h: History, packet: np.ndarray, codes: list[str], kept: GroupStats, cv: np.ndarray
) -> dict[str, Any]:
    """Per packet: one row per hospital level present (all cases, untrimmed: weighted mean
    cost, weighted mean LOS over cases with a LOS, CV) and an ``all`` row (cases, the packet's
    trimmed mean and CV as in the packet table, mean LOS over all its cases)."""
    npk = len(codes)
    gid = packet * 4 + h.level  # slot 0: the packet as a whole
    st = group_stats(gid, npk * 4, h.cost, h.weight)
    # the same exact accumulator, with the stay in days as the "cost"
    has = h.los >= 0
    los = group_stats(np.where(has, gid, -1), npk * 4, np.maximum(h.los, 0), h.weight)
    los_all = group_stats(np.where(has, packet, -1), npk, np.maximum(h.los, 0), h.weight)
    los_sw = los.sw.copy()
    los_swc = los.swc.copy()
    los_n = los.n.copy()
    los_sw[0::4], los_swc[0::4], los_n[0::4] = los_all.sw, los_all.swc, los_all.n
    n = st.n.copy()
    n[0::4] = kept.n_all
    mean = st.mean_cents()
    mean[0::4] = kept.mean_cents()
    disp_a, disp_b = st.dispersion()
    cvs = sqrt_round(disp_a, disp_b)
    cvs[0::4] = cv
    rows = np.flatnonzero(n)
    has_los = los_n[rows] > 0
    mean_los = div_round(los_swc[rows] * 100, np.where(has_los, los_sw[rows], 1))
    level_names = np.array(["all", "1", "2", "3"])
    return {
        "packet": pa.array(codes, pa.string()).take(pa.array(rows // 4)),
        "hospital_level": level_names[rows % 4].tolist(),
        "cases": n[rows],
        "mean_cost": mean[rows],
        "mean_los": (mean_los, has_los),
        "cv": cvs[rows],
    }
