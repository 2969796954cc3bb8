"""numba kernels: evaluate a compiled ruleset over cases held as integer arrays.

One evaluator serves both bulk grouping and explanation: with an empty trace buffer it only
computes results; with a buffer it also records every rule and atom it evaluates, in order,
which :mod:`drgkit.grouping._explain` turns into a readable trail.

Semantics follow the ruleset format (FORMAT.md §3-§6): first match wins at MDC, entry and DRG
step level; atoms of a rule are a short-circuit conjunction; an atom that cannot be evaluated
(text compared with an ordering operator, a non-integer text given to ``int()``, the principal
procedure of an empty procedure list) ends the case with an error.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from .._jit import dual, jit, prange

# template ids (order of drgkit.ruleset._tables.TEMPLATES)
T_TRUE, T_FALSE, T_PDX_IN, T_ANY_DX_IN, T_SDX_IN, T_NO_DX_IN, T_NO_SDX_IN = 0, 1, 2, 3, 4, 5, 6
T_HAS_PROC, T_PPROC_IN, T_ANY_PROC_IN, T_NO_PROC_IN, T_PROC_TAGS, T_MULTI_REGION = (
    7,
    8,
    9,
    10,
    11,
    12,
)
T_HAS_MCC, T_HAS_CC, T_HAS_CC_OR_MCC, T_CMP, T_CMP_INT, T_CMP_STR, T_TRUTHY, T_NOT_NONE = (
    13,
    14,
    15,
    16,
    17,
    18,
    19,
    20,
)
# the templates the later regional rulesets added
T_SPROC_IN, T_PDX_NOT_IN, T_PPROC_NOT_IN, T_TEXT_IN, T_RAISE = 21, 22, 23, 24, 25

# op ids (order of drgkit.ruleset._tables.OPS)
OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE = 0, 1, 2, 3, 4, 5

# field kind bits
F_NUMBER, F_INT_OK, F_TRUTHY = 1, 2, 4

# per-case outcome
OUT_GROUPED, OUT_NO_MDC, OUT_NO_ADRG, OUT_ERROR, OUT_SKIPPED = 0, 1, 2, 3, 4

# atom outcome
A_FALSE, A_TRUE, A_ERROR = 0, 1, 2

# trace records: (kind, a, b, c, d)
TR_RULE, TR_ATOM, TR_END = 1, 2, 3
#: a retry with one secondary procedure (FORMAT §4): (TR_RETRY, its position in px, -, -)
TR_RETRY = 4
LVL_MDC, LVL_ENTRY, LVL_STEP = 0, 1, 2
NO_WITNESS = -(2**62)

RulesetArrays = namedtuple(
    "RulesetArrays",
    "mem_bits mem_ptr mem_list mem_tag mcc_tab cc_tab pdx_tab rule_ptr a_tmpl a_list a_slot "
    "a_op a_num a_aux0 a_aux1 alt_mask mdc_rule mdc_entry_ptr e_rule e_kind e_result e_fallback "
    "e_step_ptr s_rule s_result empty_id retry",
)

CaseArrays = namedtuple("CaseArrays", "dx_off dx px_off px fkind fnum fint streq pre")


def ruleset_arrays(compiled) -> RulesetArrays:
    a = compiled.arrays
    fields = [f for f in RulesetArrays._fields if f not in ("empty_id", "retry")]
    return RulesetArrays(
        *(a[f] for f in fields), np.int32(compiled.codes.id("")), bool(a["retry"][0])
    )


@jit(inline="always")
def _member(code, lst, mem_ptr, mem_list):
    """Slot of list ``lst`` in the membership row of ``code``, or -1."""
    if code < 0 or lst < 0:
        return -1
    lo = mem_ptr[code]
    hi = mem_ptr[code + 1]
    while lo < hi:
        mid = (lo + hi) >> 1
        v = mem_list[mid]
        if v < lst:
            lo = mid + 1
        elif v > lst:
            hi = mid
        else:
            return mid
    return -1


@jit(inline="always")
def _in(code, lst, mem_bits):
    """Is ``code`` in list ``lst``? One bit of the code's row of the membership bitset."""
    if code < 0 or lst < 0:
        return False
    return (mem_bits[code, lst >> 6] >> np.uint64(lst & 63)) & np.uint64(1) != 0


@jit(inline="always")
def _complication(dx, d0, d1, excl, tab):
    """Position (in the case's dx) of the first secondary that is a CC/MCC of ``tab`` and not
    excluded by the principal's exclusion table ``excl``; -1 when there is none."""
    for j in range(d0 + 1, d1):
        s = dx[j]
        if s >= 0:
            t = tab[s]
            if t >= 0 and not (excl >= 0 and excl == t):
                return j - d0
    return -1


@jit(inline="always")
def _compare(x, op, v):
    if op == OP_EQ:
        return x == v
    if op == OP_NE:
        return x != v
    if op == OP_LT:
        return x < v
    if op == OP_LE:
        return x <= v
    if op == OP_GT:
        return x > v
    return x >= v


@jit(inline="always")
def _tag_mask(codes, a, b, lst, mem_ptr, mem_list, mem_tag):
    """Bit mask of the tags (in tagged list ``lst``) of ``codes[a:b]``."""
    have = np.uint64(0)
    for j in range(a, b):
        slot = _member(codes[j], lst, mem_ptr, mem_list)
        if slot >= 0 and mem_tag[slot] >= 0:
            have |= np.uint64(1) << np.uint64(mem_tag[slot])
    return have


@jit(inline="always")
def _popcount(bits):
    count = 0
    while bits:
        bits &= bits - np.uint64(1)
        count += 1
    return count


@jit(inline="always")
def _record(trace, tn, kind, a, b, c):
    if tn[0] < trace.shape[0]:
        trace[tn[0], 0] = kind
        trace[tn[0], 1] = a
        trace[tn[0], 2] = b
        trace[tn[0], 3] = c
        tn[0] += 1


@jit
def _group_range(lo, hi, C, R, outcome, result, err, mdc, trace, tn):
    """Group cases ``lo .. hi-1``: per case (outcome, result index, error atom, MDC row).

    One loop walks MDC entry rules, ADRG entries and DRG steps as a state machine, so the
    atoms are evaluated in exactly one place: first match wins at every level; an MDC whose
    entries all fail passes the case on to the next MDC. The arrays are unpacked once per
    range, not per case: passing dozens of arrays costs more than grouping a case.
    """
    dx_off, dx, px_off, px, fkind, fnum, fint, streq, pre = C
    (
        mem_bits,
        mem_ptr,
        mem_list,
        mem_tag,
        mcc_tab,
        cc_tab,
        pdx_tab,
        rule_ptr,
        a_tmpl,
        a_list,
        a_slot,
        a_op,
        a_num,
        a_aux0,
        a_aux1,
        alt_mask,
        mdc_rule,
        mdc_entry_ptr,
        e_rule,
        e_kind,
        e_result,
        e_fallback,
        e_step_ptr,
        s_rule,
        s_result,
        empty_id,
        retry,
    ) = R
    tracing = trace.shape[0] > 0
    for i in range(lo, hi):
        o, res, erra, mrow = OUT_SKIPPED, -1, -1, -1
        if pre[i] != 0:
            outcome[i], result[i], err[i], mdc[i] = o, res, erra, mrow
            continue
        d0 = dx_off[i]
        d1 = dx_off[i + 1]
        p0 = px_off[i]
        p1 = px_off[i + 1]
        # retry (FORMAT §4): when every MDC has been tried without a code, run a = 1, 2, …
        # groups the case again with px = [px[a]] alone; run 0 is the case as given
        runs = p1 - p0 if retry and p1 - p0 > 1 else 1
        run = 0
        q0 = p0
        first_mdc = -1
        pdx = dx[d0] if d1 > d0 else empty_id
        excl = pdx_tab[pdx] if pdx >= 0 else -1
        mcc_pos = -2  # computed on first use
        cc_pos = -2
        nmdc = len(mdc_rule)
        any_mdc = -1
        level = LVL_MDC
        m = 0
        e = 0
        e_end = 0
        s = 0
        s_end = 0
        while True:
            # ---- which rule is next
            if level == LVL_MDC:
                if m >= nmdc:
                    if run + 1 < runs:
                        if run == 0:
                            first_mdc = any_mdc
                        run += 1
                        p0 = q0 + run
                        p1 = p0 + 1
                        if tracing:
                            _record(trace, tn, TR_RETRY, run, 0, 0)
                        m = 0
                        any_mdc = -1
                        continue
                    if runs > 1:
                        any_mdc = first_mdc  # every run failed: report the case as given
                    if any_mdc >= 0:
                        o, res, erra, mrow = OUT_NO_ADRG, 0, -1, any_mdc
                        break
                    o, res, erra, mrow = OUT_NO_MDC, 0, -1, -1
                    break
                r = mdc_rule[m]
                obj = m
            elif level == LVL_ENTRY:
                if e >= e_end:  # no entry of this MDC returned a code: the next MDC is tried
                    level = LVL_MDC
                    m += 1
                    continue
                r = e_rule[e]
                obj = e
            else:
                if s >= s_end:  # no step held: the fallback, or the next entry
                    if e_fallback[e] >= 0:
                        o, res, erra, mrow = OUT_GROUPED, e_fallback[e], -1, m
                        break
                    level = LVL_ENTRY
                    e += 1
                    continue
                r = s_rule[s]
                obj = s
            if tracing:
                _record(trace, tn, TR_RULE, level, obj, r)

            # ---- evaluate rule r: a short-circuit conjunction of its atoms
            held = A_TRUE
            last = -1
            for k in range(rule_ptr[r], rule_ptr[r + 1]):
                t = a_tmpl[k]
                lst = a_list[k]
                aout = A_FALSE
                witness = np.int64(0)
                if t == T_TRUE:
                    aout = A_TRUE
                elif t == T_FALSE:
                    aout = A_FALSE
                elif t == T_PDX_IN:
                    if _in(pdx, lst, mem_bits):
                        aout = A_TRUE
                elif t == T_ANY_DX_IN or t == T_SDX_IN or t == T_NO_DX_IN or t == T_NO_SDX_IN:
                    start = d0 + 1 if (t == T_SDX_IN or t == T_NO_SDX_IN) else d0
                    found = -1
                    # an empty diagnosis list is one empty principal
                    if d1 == d0 and start == d0 and _in(empty_id, lst, mem_bits):
                        found = 0
                    for j in range(start, d1):
                        if _in(dx[j], lst, mem_bits):
                            found = j - d0
                            break
                    witness = found
                    if t == T_ANY_DX_IN or t == T_SDX_IN:
                        aout = A_TRUE if found >= 0 else A_FALSE
                    else:
                        aout = A_TRUE if found < 0 else A_FALSE
                elif t == T_HAS_PROC:
                    witness = p1 - p0
                    aout = A_TRUE if p1 > p0 else A_FALSE
                elif t == T_PPROC_IN:
                    if p1 == p0:
                        aout = A_ERROR
                    elif _in(px[p0], lst, mem_bits):
                        aout = A_TRUE
                elif t == T_ANY_PROC_IN or t == T_NO_PROC_IN:
                    found = -1
                    for j in range(p0, p1):
                        if _in(px[j], lst, mem_bits):
                            found = j - p0
                            break
                    witness = found
                    if t == T_ANY_PROC_IN:
                        aout = A_TRUE if found >= 0 else A_FALSE
                    else:
                        aout = A_TRUE if found < 0 else A_FALSE
                elif t == T_PROC_TAGS:
                    have = _tag_mask(px, p0, p1, lst, mem_ptr, mem_list, mem_tag)
                    witness = np.int64(have)
                    for a in range(a_aux0[k], a_aux1[k]):
                        need = alt_mask[a]
                        if (need & have) == need:
                            aout = A_TRUE
                            break
                elif t == T_MULTI_REGION:
                    if d1 == d0:
                        have = _tag_mask(dx[:0], 0, 0, lst, mem_ptr, mem_list, mem_tag)
                        slot = _member(empty_id, lst, mem_ptr, mem_list)
                        if slot >= 0 and mem_tag[slot] >= 0:
                            have |= np.uint64(1) << np.uint64(mem_tag[slot])
                    else:
                        have = _tag_mask(dx, d0, d1, lst, mem_ptr, mem_list, mem_tag)
                    witness = np.int64(have)
                    aout = A_TRUE if _popcount(have) >= a_num[k] else A_FALSE
                elif t == T_HAS_MCC or t == T_HAS_CC or t == T_HAS_CC_OR_MCC:
                    if t != T_HAS_CC:
                        if mcc_pos == -2:
                            mcc_pos = _complication(dx, d0, d1, excl, mcc_tab)
                        witness = mcc_pos
                    if t == T_HAS_CC or (t == T_HAS_CC_OR_MCC and mcc_pos < 0):
                        if cc_pos == -2:
                            cc_pos = _complication(dx, d0, d1, excl, cc_tab)
                        witness = cc_pos
                    aout = A_TRUE if witness >= 0 else A_FALSE
                elif t >= T_SPROC_IN and t != T_TEXT_IN:
                    # the later regional templates (after the original ones: ids are stable)
                    if t == T_PDX_NOT_IN:
                        if not _in(pdx, lst, mem_bits):
                            aout = A_TRUE
                    elif t == T_PPROC_NOT_IN:
                        # never an error: an empty px has no principal in L
                        witness = p1 - p0
                        if p1 == p0 or not _in(px[p0], lst, mem_bits):
                            aout = A_TRUE
                    elif t == T_SPROC_IN:
                        found = -1
                        for j in range(p0 + 1, p1):
                            if _in(px[j], lst, mem_bits):
                                found = j - p0
                                break
                        witness = found
                        aout = A_TRUE if found >= 0 else A_FALSE
                    else:  # T_RAISE: a predicate the source cannot evaluate
                        aout = A_ERROR
                else:
                    slot = a_slot[k]
                    kind = fkind[slot, i]
                    if t == T_CMP:
                        if kind & F_NUMBER:
                            if _compare(fnum[slot, i], a_op[k], a_num[k]):
                                aout = A_TRUE
                        else:
                            witness = 1
                            op = a_op[k]
                            if op == OP_NE:
                                aout = A_TRUE
                            elif op != OP_EQ:
                                aout = A_ERROR
                    elif t == T_CMP_INT:
                        if kind & F_INT_OK:
                            if _compare(np.float64(fint[slot, i]), a_op[k], a_num[k]):
                                aout = A_TRUE
                        else:
                            witness = 1
                            aout = A_ERROR
                    elif t == T_CMP_STR:
                        same = streq[a_aux0[k], i]
                        if same == (a_op[k] == OP_EQ):
                            aout = A_TRUE
                    elif t == T_TEXT_IN:
                        if streq[a_aux0[k], i]:
                            aout = A_TRUE
                    elif t == T_TRUTHY:
                        if kind & F_TRUTHY:
                            aout = A_TRUE
                    else:  # T_NOT_NONE: every field is present (missing is the empty text)
                        aout = A_TRUE
                last = k
                if tracing:
                    _record(trace, tn, TR_ATOM, k, aout, witness)
                if aout != A_TRUE:
                    held = aout
                    break
            if tracing:
                _record(trace, tn, TR_END, level, obj, held)
            if held == A_ERROR:
                o, res, erra, mrow = OUT_ERROR, -1, last, m
                break

            # ---- where to go next
            if level == LVL_MDC:
                if held == A_TRUE:
                    any_mdc = m
                    level = LVL_ENTRY
                    e = mdc_entry_ptr[m]
                    e_end = mdc_entry_ptr[m + 1]
                else:
                    m += 1
            elif level == LVL_ENTRY:
                if held == A_TRUE:
                    if e_kind[e] == 1:
                        o, res, erra, mrow = OUT_GROUPED, e_result[e], -1, m
                        break
                    level = LVL_STEP
                    s = e_step_ptr[e]
                    s_end = e_step_ptr[e + 1]
                else:
                    e += 1
            else:
                if held == A_TRUE:
                    o, res, erra, mrow = OUT_GROUPED, s_result[s], -1, m
                    break
                s += 1
        outcome[i] = o
        result[i] = res
        err[i] = erra
        mdc[i] = mrow


CHUNK = 512


@dual
def group_all(C, R):
    """Group every case; parallel over chunks of cases."""
    n = len(C.pre)
    outcome = np.empty(n, dtype=np.int8)
    result = np.empty(n, dtype=np.int32)
    err = np.empty(n, dtype=np.int32)
    mdc = np.empty(n, dtype=np.int16)
    nchunks = (n + CHUNK - 1) // CHUNK
    for c in prange(nchunks):
        no_trace = np.zeros((0, 4), dtype=np.int64)
        tn = np.zeros(1, dtype=np.int64)
        _group_range(
            c * CHUNK, min(n, (c + 1) * CHUNK), C, R, outcome, result, err, mdc, no_trace, tn
        )
    return outcome, result, err, mdc


@jit
def trace_one(i, C, R, capacity):
    """Group case ``i`` recording every rule and atom evaluated, in order."""
    trace = np.zeros((capacity, 4), dtype=np.int64)
    tn = np.zeros(1, dtype=np.int64)
    n = len(C.pre)
    outcome = np.empty(n, dtype=np.int8)
    result = np.empty(n, dtype=np.int32)
    err = np.empty(n, dtype=np.int32)
    mdc = np.empty(n, dtype=np.int16)
    _group_range(i, i + 1, C, R, outcome, result, err, mdc, trace, tn)
    return outcome[i], result[i], err[i], mdc[i], trace[: tn[0]], tn[0] >= capacity


# ---------------------------------------------------------------- translation mode (FORMAT §6)


@jit
def _translate_list(ids, start, end, tab, out, w, empty_id, dash_id):
    """Translate one case's code list in place semantics of FORMAT §6.

    Returns (number written to ``out`` from ``w``, unmapped flag)."""
    n = end - start
    work = ids[start:end].copy()
    unmapped = False
    for k in range(n):
        x = work[k]
        target = tab[x] if x >= 0 else -2
        if target == -2:
            unmapped = True
            target = empty_id
        elif target == x:
            continue
        # the *first* position currently holding x takes the new value
        for q in range(n):
            if work[q] == x:
                work[q] = target
                break
    if n > 0 and work[0] == dash_id:
        unmapped = True
    m = 0
    for k in range(n):
        v = work[k]
        if v != empty_id and v != dash_id:
            out[w + m] = v
            m += 1
    return m, unmapped


@dual
def translate_all(dx_off, dx, px_off, px, dxtab, pxtab, empty_id, dash_id):
    """Translation mode: map every case's diagnoses and procedures through the code maps.

    Returns new (dx_off, dx, px_off, px) and a per-case flag: 0 fine, 1 a diagnosis has no
    mapping, 2 a procedure has no mapping, 3 no diagnosis is left."""
    n = len(dx_off) - 1
    dx_out = np.empty(len(dx), dtype=np.int32)
    px_out = np.empty(len(px), dtype=np.int32)
    dx_len = np.zeros(n, dtype=np.int64)
    px_len = np.zeros(n, dtype=np.int64)
    flag = np.zeros(n, dtype=np.int8)
    for i in prange(n):
        a = dx_off[i]
        b = dx_off[i + 1]
        if a == b:
            # an empty diagnosis field is the single empty code, which has no mapping
            flag[i] = 1
        else:
            m, bad = _translate_list(dx, a, b, dxtab, dx_out, a, empty_id, dash_id)
            dx_len[i] = m
            if bad:
                flag[i] = 1
        c = px_off[i]
        d = px_off[i + 1]
        if d > c:
            m, bad = _translate_list(px, c, d, pxtab, px_out, c, empty_id, dash_id)
            px_len[i] = m
            if bad and flag[i] == 0:
                flag[i] = 2
        if flag[i] == 0 and dx_len[i] == 0:
            flag[i] = 3
    new_dx_off = np.zeros(n + 1, dtype=np.int64)
    new_px_off = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        new_dx_off[i + 1] = new_dx_off[i] + dx_len[i]
        new_px_off[i + 1] = new_px_off[i] + px_len[i]
    new_dx = np.empty(new_dx_off[n], dtype=np.int32)
    new_px = np.empty(new_px_off[n], dtype=np.int32)
    for i in prange(n):
        for k in range(dx_len[i]):
            new_dx[new_dx_off[i] + k] = dx_out[dx_off[i] + k]
        for k in range(px_len[i]):
            new_px[new_px_off[i] + k] = px_out[px_off[i] + k]
    return new_dx_off, new_dx, new_px_off, new_px, flag
