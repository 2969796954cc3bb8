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
    7, 8, 9, 10, 11, 12)
T_HAS_MCC, T_HAS_CC, T_HAS_CC_OR_MCC, T_CMP, T_CMP_INT, T_CMP_STR, T_TRUTHY, T_NOT_NONE = (
    13, 14, 15, 16, 17, 18, 19, 20)

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
LVL_MDC, LVL_ENTRY, LVL_STEP = 0, 1, 2
NO_WITNESS = -(2**62)

RulesetArrays = namedtuple(
    "RulesetArrays",
    "mem_ptr mem_list mem_tag mcc_tab cc_tab pdx_tab rule_ptr a_tmpl a_list a_slot a_op a_num "
    "a_aux0 a_aux1 alt_mask mdc_rule mdc_entry_ptr e_rule e_kind e_result e_fallback "
    "e_step_ptr s_rule s_result empty_id",
)

CaseArrays = namedtuple("CaseArrays", "dx_off dx px_off px fkind fnum fint streq pre")


def ruleset_arrays(compiled) -> RulesetArrays:
    a = compiled.arrays
    fields = [f for f in RulesetArrays._fields if f != "empty_id"]
    return RulesetArrays(*(a[f] for f in fields), np.int32(compiled.codes.id("")))


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
def _principal_dx(C, i, R):
    d0 = C.dx_off[i]
    if C.dx_off[i + 1] > d0:
        return C.dx[d0]
    return R.empty_id


@jit
def _complication(C, i, R, tab):
    """Position (in ``dx``) of the first secondary that is a CC/MCC of ``tab`` and not
    excluded by the principal's exclusion table; -1 when there is none."""
    d0 = C.dx_off[i]
    d1 = C.dx_off[i + 1]
    pdx = _principal_dx(C, i, R)
    excl = R.pdx_tab[pdx] if pdx >= 0 else -1
    for j in range(d0 + 1, d1):
        s = C.dx[j]
        if s >= 0:
            t = tab[s]
            if t >= 0 and not (excl >= 0 and excl == t):
                return j - d0
    return -1


@jit
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


@jit
def _atom(k, C, i, R):
    """Evaluate atom ``k`` on case ``i``: (outcome, witness).

    The witness says why: the position of the matching code, the value compared, the tag
    mask found, the number of regions… (whatever the explanation needs).
    """
    t = R.a_tmpl[k]
    if t == T_TRUE:
        return A_TRUE, NO_WITNESS
    if t == T_FALSE:
        return A_FALSE, NO_WITNESS
    lst = R.a_list[k]
    d0 = C.dx_off[i]
    d1 = C.dx_off[i + 1]
    p0 = C.px_off[i]
    p1 = C.px_off[i + 1]
    if t == T_PDX_IN:
        return (A_TRUE if _member(_principal_dx(C, i, R), lst, R.mem_ptr, R.mem_list) >= 0
                else A_FALSE), 0
    if t == T_ANY_DX_IN or t == T_NO_DX_IN or t == T_SDX_IN or t == T_NO_SDX_IN:
        start = d0 + 1 if (t == T_SDX_IN or t == T_NO_SDX_IN) else d0
        found = -1
        # an empty diagnosis list is one empty principal
        if d1 == d0 and start == d0 and _member(R.empty_id, lst, R.mem_ptr, R.mem_list) >= 0:
            found = 0
        for j in range(start, d1):
            if _member(C.dx[j], lst, R.mem_ptr, R.mem_list) >= 0:
                found = j - d0
                break
        if t == T_ANY_DX_IN or t == T_SDX_IN:
            return (A_TRUE if found >= 0 else A_FALSE), found
        return (A_TRUE if found < 0 else A_FALSE), found
    if t == T_HAS_PROC:
        return (A_TRUE if p1 > p0 else A_FALSE), p1 - p0
    if t == T_PPROC_IN:
        if p1 == p0:
            return A_ERROR, NO_WITNESS
        return (A_TRUE if _member(C.px[p0], lst, R.mem_ptr, R.mem_list) >= 0 else A_FALSE), 0
    if t == T_ANY_PROC_IN or t == T_NO_PROC_IN:
        found = -1
        for j in range(p0, p1):
            if _member(C.px[j], lst, R.mem_ptr, R.mem_list) >= 0:
                found = j - p0
                break
        if t == T_ANY_PROC_IN:
            return (A_TRUE if found >= 0 else A_FALSE), found
        return (A_TRUE if found < 0 else A_FALSE), found
    if t == T_PROC_TAGS:
        have = np.uint64(0)
        for j in range(p0, p1):
            slot = _member(C.px[j], lst, R.mem_ptr, R.mem_list)
            if slot >= 0 and R.mem_tag[slot] >= 0:
                have |= np.uint64(1) << np.uint64(R.mem_tag[slot])
        for a in range(R.a_aux0[k], R.a_aux1[k]):
            need = R.alt_mask[a]
            if (need & have) == need:
                return A_TRUE, np.int64(have)
        return A_FALSE, np.int64(have)
    if t == T_MULTI_REGION:
        have = np.uint64(0)
        if d1 == d0:
            slot = _member(R.empty_id, lst, R.mem_ptr, R.mem_list)
            if slot >= 0 and R.mem_tag[slot] >= 0:
                have |= np.uint64(1) << np.uint64(R.mem_tag[slot])
        for j in range(d0, d1):
            slot = _member(C.dx[j], lst, R.mem_ptr, R.mem_list)
            if slot >= 0 and R.mem_tag[slot] >= 0:
                have |= np.uint64(1) << np.uint64(R.mem_tag[slot])
        count = 0
        bits = have
        while bits:
            bits &= bits - np.uint64(1)
            count += 1
        return (A_TRUE if count >= R.a_num[k] else A_FALSE), np.int64(have)
    if t == T_HAS_MCC:
        pos = _complication(C, i, R, R.mcc_tab)
        return (A_TRUE if pos >= 0 else A_FALSE), pos
    if t == T_HAS_CC:
        pos = _complication(C, i, R, R.cc_tab)
        return (A_TRUE if pos >= 0 else A_FALSE), pos
    if t == T_HAS_CC_OR_MCC:
        pos = _complication(C, i, R, R.mcc_tab)
        if pos >= 0:
            return A_TRUE, pos
        pos = _complication(C, i, R, R.cc_tab)
        return (A_TRUE if pos >= 0 else A_FALSE), pos
    slot = R.a_slot[k]
    kind = C.fkind[slot, i]
    if t == T_CMP:
        if kind & F_NUMBER:
            return (A_TRUE if _compare(C.fnum[slot, i], R.a_op[k], R.a_num[k]) else A_FALSE), 0
        op = R.a_op[k]
        if op == OP_EQ:
            return A_FALSE, 1
        if op == OP_NE:
            return A_TRUE, 1
        return A_ERROR, 1
    if t == T_CMP_INT:
        if kind & F_INT_OK:
            x = np.float64(C.fint[slot, i])
            return (A_TRUE if _compare(x, R.a_op[k], R.a_num[k]) else A_FALSE), 0
        return A_ERROR, 1
    if t == T_CMP_STR:
        same = C.streq[R.a_aux0[k], i]
        if R.a_op[k] == OP_EQ:
            return (A_TRUE if same else A_FALSE), 0
        return (A_FALSE if same else A_TRUE), 0
    if t == T_TRUTHY:
        return (A_TRUE if kind & F_TRUTHY else A_FALSE), 0
    # T_NOT_NONE: every field is present (a missing value is the empty text)
    return A_TRUE, 0


@jit
def _rule(r, C, i, R, trace, tn, level, obj):
    """Evaluate rule ``r``: (outcome, atom index that decided it)."""
    tracing = trace.shape[0] > 0
    if tracing and tn[0] < trace.shape[0]:
        trace[tn[0], 0] = TR_RULE
        trace[tn[0], 1] = level
        trace[tn[0], 2] = obj
        trace[tn[0], 3] = r
        tn[0] += 1
    result = A_TRUE
    last = -1
    for k in range(R.rule_ptr[r], R.rule_ptr[r + 1]):
        outcome, witness = _atom(k, C, i, R)
        last = k
        if tracing and tn[0] < trace.shape[0]:
            trace[tn[0], 0] = TR_ATOM
            trace[tn[0], 1] = k
            trace[tn[0], 2] = outcome
            trace[tn[0], 3] = witness
            tn[0] += 1
        if outcome != A_TRUE:
            result = outcome
            break
    if tracing and tn[0] < trace.shape[0]:
        trace[tn[0], 0] = TR_END
        trace[tn[0], 1] = level
        trace[tn[0], 2] = obj
        trace[tn[0], 3] = result
        tn[0] += 1
    return result, last


@jit
def group_one(i, C, R, trace, tn):
    """Group case ``i``: (outcome, result index, error atom, MDC row)."""
    if C.pre[i] != 0:
        return OUT_SKIPPED, -1, -1, -1
    any_mdc = -1
    for m in range(len(R.mdc_rule)):
        held, last = _rule(R.mdc_rule[m], C, i, R, trace, tn, LVL_MDC, m)
        if held == A_ERROR:
            return OUT_ERROR, -1, last, m
        if held != A_TRUE:
            continue
        any_mdc = m
        for e in range(R.mdc_entry_ptr[m], R.mdc_entry_ptr[m + 1]):
            held, last = _rule(R.e_rule[e], C, i, R, trace, tn, LVL_ENTRY, e)
            if held == A_ERROR:
                return OUT_ERROR, -1, last, m
            if held != A_TRUE:
                continue
            if R.e_kind[e] == 1:
                return OUT_GROUPED, R.e_result[e], -1, m
            for s in range(R.e_step_ptr[e], R.e_step_ptr[e + 1]):
                held, last = _rule(R.s_rule[s], C, i, R, trace, tn, LVL_STEP, s)
                if held == A_ERROR:
                    return OUT_ERROR, -1, last, m
                if held == A_TRUE:
                    return OUT_GROUPED, R.s_result[s], -1, m
            if R.e_fallback[e] >= 0:
                return OUT_GROUPED, R.e_fallback[e], -1, m
        # nothing in this MDC returned a code: the next MDC is tried
    if any_mdc >= 0:
        return OUT_NO_ADRG, 0, -1, any_mdc
    return OUT_NO_MDC, 0, -1, -1


@dual
def group_all(C, R):
    """Group every case; parallel over cases."""
    n = len(C.pre)
    outcome = np.empty(n, dtype=np.int8)
    result = np.empty(n, dtype=np.int32)
    err = np.empty(n, dtype=np.int32)
    mdc = np.empty(n, dtype=np.int16)
    no_trace = np.zeros((0, 4), dtype=np.int64)
    for i in prange(n):
        tn = np.zeros(1, dtype=np.int64)
        o, r, e, m = group_one(i, C, R, no_trace, tn)
        outcome[i] = o
        result[i] = r
        err[i] = e
        mdc[i] = m
    return outcome, result, err, mdc


@jit
def trace_one(i, C, R, capacity):
    trace = np.zeros((capacity, 4), dtype=np.int64)
    tn = np.zeros(1, dtype=np.int64)
    o, r, e, m = group_one(i, C, R, trace, tn)
    return o, r, e, m, trace[: tn[0]], tn[0] >= capacity


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
