"""The DIP grouping kernel: one pass over cases, the national order of DIP.md §2.

Codes arrive as per-case ranges of *code ids*; what a code means for the catalogue (excluded?
dx key, category, fallback packet, treatment attribute, which patterns it matches) is looked up in
per-code fact arrays built once per distinct code (``drgkit/grouping/_dip.py``).
"""

from __future__ import annotations

import numpy as np

from .._jit import dual, jit, prange

# reason ids (index into _dip.DIP_REASONS)
R_OK, R_ID_MISSING, R_DUPLICATE, R_PDX_MISSING, R_EXCLUDED_PDX, R_NO_PACKET, R_MALFORMED = range(7)
# tier ids: where the packet came from
T_NONE, T_PREGROUP, T_MERGE, T_SUBDIVIDE, T_CORE, T_COMPREHENSIVE, T_PREFIX, T_BLANK = range(8)
MEDICAL = 3


@jit(inline="always")
def _has(lo, hi, codes, uptr, upat, p):
    """Does a code in ``codes[lo:hi]`` match pattern ``p``?"""
    for j in range(lo, hi):
        u = codes[j]
        for q in range(uptr[u], uptr[u + 1]):
            if upat[q] == p:
                return True
    return False


@jit(inline="always")
def _spec(s, lo, hi, codes, uptr, upat, spec_ptr, alt_ptr, items):
    """Size of the largest alternative of spec ``s`` fully present in ``codes[lo:hi]``;
    -1 when none is."""
    best = -1
    for a in range(spec_ptr[s], spec_ptr[s + 1]):
        ok = True
        for k in range(alt_ptr[a], alt_ptr[a + 1]):
            if not _has(lo, hi, codes, uptr, upat, items[k]):
                ok = False
                break
        if ok and alt_ptr[a + 1] - alt_ptr[a] > best:
            best = alt_ptr[a + 1] - alt_ptr[a]
    return best


@dual
def dip_kernel(
    dx_off,
    dx_u,
    px_off,
    px_u,
    udx_ptr,
    udx_pat,
    udx_empty,
    udx_excl,
    udx_key,
    udx_cat,
    udx_fb,
    upx_ptr,
    upx_pat,
    upx_empty,
    upx_excl,
    upx_attr,
    vent,
    weight,
    age_days,
    pre,
    spec_ptr,
    alt_ptr,
    items,
    r_tier,
    r_packet,
    r_pdx,
    r_sdx,
    r_ppx,
    r_px,
    r_vent,
    r_wmin,
    r_wmax,
    r_agemax,
    core_ptr,
    c_packet,
    c_ppx,
    c_rel,
    c_order,
    p_rank,
    tie,
    comp,
    cons,
    chain,
    blank,
    out_packet,
    out_tier,
    out_reason,
):
    n = len(pre)
    for i in prange(n):
        out_packet[i] = -1
        out_tier[i] = T_NONE
        if pre[i] != R_OK:
            out_reason[i] = pre[i]
            continue
        d0 = dx_off[i]
        d1 = dx_off[i + 1]
        if d0 == d1 or udx_empty[dx_u[d0]]:
            out_reason[i] = R_PDX_MISSING
            continue
        pdx = dx_u[d0]
        if udx_excl[pdx]:
            out_reason[i] = R_EXCLUDED_PDX
            continue
        p0 = px_off[i]
        p1 = px_off[i + 1]
        # the principal procedure: the first, unless empty or on the exclusion list
        has_pp = p0 < p1 and not upx_empty[px_u[p0]] and not upx_excl[px_u[p0]]
        pp_hi = p0 + 1 if has_pp else p0
        attr = MEDICAL
        if has_pp and upx_attr[px_u[p0]] >= 0:
            attr = upx_attr[px_u[p0]]
        packet = -1
        tier = T_NONE
        # national tiers: pre-grouping, merge rules, sub-division (first matching row)
        for r in range(len(r_tier)):
            if (
                r_pdx[r] >= 0
                and _spec(r_pdx[r], d0, d0 + 1, dx_u, udx_ptr, udx_pat, spec_ptr, alt_ptr, items)
                < 0
            ):
                continue
            if (
                r_sdx[r] >= 0
                and _spec(r_sdx[r], d0 + 1, d1, dx_u, udx_ptr, udx_pat, spec_ptr, alt_ptr, items)
                < 0
            ):
                continue
            if (
                r_ppx[r] >= 0
                and _spec(r_ppx[r], p0, pp_hi, px_u, upx_ptr, upx_pat, spec_ptr, alt_ptr, items) < 0
            ):
                continue
            if (
                r_px[r] >= 0
                and _spec(r_px[r], p0, p1, px_u, upx_ptr, upx_pat, spec_ptr, alt_ptr, items) < 0
            ):
                continue
            if not np.isnan(r_vent[r]) and not vent[i] >= r_vent[r]:
                continue
            if not np.isnan(r_wmin[r]) and not weight[i] >= r_wmin[r]:
                continue
            if not np.isnan(r_wmax[r]) and not weight[i] < r_wmax[r]:
                continue
            if r_agemax[r] >= 0 and not age_days[i] <= r_agemax[r]:
                continue
            packet = r_packet[r]
            tier = r_tier[r]
            break
        # basic rules with the partial-match preferences
        key = udx_key[pdx]
        if packet < 0 and key >= 0:
            conservative = (not has_pp) or (upx_attr[px_u[p0]] >= 0 and cons[upx_attr[px_u[p0]]])
            best = -1
            best_count = -1
            for c in range(core_ptr[key], core_ptr[key + 1]):
                if c_ppx[c] < 0:
                    if not conservative:
                        continue
                elif (
                    not has_pp
                    or _spec(c_ppx[c], p0, pp_hi, px_u, upx_ptr, upx_pat, spec_ptr, alt_ptr, items)
                    < 0
                ):
                    continue
                count = 0
                if c_rel[c] >= 0:
                    count = _spec(
                        c_rel[c], p0 + 1, p1, px_u, upx_ptr, upx_pat, spec_ptr, alt_ptr, items
                    )
                    if count < 0:
                        continue
                better = False
                if count > best_count:
                    better = True
                elif count == best_count:
                    a = p_rank[c_packet[c]]
                    b = p_rank[c_packet[best]]
                    if tie == 0 and a != b:
                        better = a > b
                    elif tie == 1 and a != b:
                        better = a < b
                    else:
                        better = c_order[c] < c_order[best]
                if better:
                    best = c
                    best_count = count
            if best >= 0:
                packet = c_packet[best]
                tier = T_CORE
        # the region's chain for what is left
        if packet < 0:
            for step in chain:
                if step == T_COMPREHENSIVE:
                    cat = udx_cat[pdx]
                    if cat >= 0:
                        for a in range(attr, MEDICAL + 1):
                            if comp[cat, a] >= 0:
                                packet = comp[cat, a]
                                break
                elif step == T_PREFIX:
                    packet = udx_fb[pdx]
                elif step == T_BLANK:
                    packet = blank[0]
                if packet >= 0:
                    tier = step
                    break
        if packet >= 0:
            out_packet[i] = packet
            out_tier[i] = tier
            out_reason[i] = R_OK
        else:
            out_reason[i] = R_NO_PACKET
