"""Compile validated ruleset tables into flat integer arrays for the grouping kernels.

Layout of the compiled form (all numpy arrays; ids are dense ints):

* codes: every code string the ruleset mentions, plus ``''`` and ``'-'``, in a
  :class:`~drgkit._codes.CodeTable`.
* list membership, per code: ``mem_bits[c]`` is a bitset over list ids (the fast test), and
  (CSR, for tags) ``mem_ptr[c] .. mem_ptr[c+1]`` index ``mem_list`` (sorted
  list ids) and ``mem_tag`` (tag number within the list, -1 when untagged).
* ``mcc_tab``, ``cc_tab``, ``pdx_tab``: exclusion-table id per code, -1 when absent.
* atoms: parallel arrays ``a_tmpl, a_list, a_slot, a_op, a_num, a_aux0, a_aux1``; rule ``r``
  owns atoms ``rule_ptr[r] .. rule_ptr[r+1]``.
* MDCs in order (``mdc_rule``, ``mdc_entry_ptr``), entries (``e_rule, e_kind, e_result,
  e_fallback, e_step_ptr``), steps (``s_rule, s_result``); results are indices into
  ``results`` (result code strings; index 0 is ``0000``).
* translation maps ``dxmap_tab``/``pxmap_tab``: target id per code, -2 when the code has no row.

The compiled form is cached on disk as one ``.npz`` per content hash, so loading a national
ruleset after the first time reads a few megabytes and builds nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import attrs
import numpy as np

from .._codes import CodeTable
from .._versions import CompiledTables, load_cached
from .._versions import cache_dir as cache_dir  # re-exported: its public home before
from . import _tables as T

#: Bump when the compiled layout or its semantics change: old cache entries are then ignored.
COMPILER_VERSION = 6

TEMPLATE_IDS = {name: i for i, name in enumerate(T.TEMPLATES)}
OP_IDS = {op: i for i, op in enumerate(T.OPS)}
KIND_ADRG, KIND_QY = 0, 1
NO_MAP = -2


@attrs.define(slots=True, eq=False)
class CompiledRuleset(CompiledTables):
    """Arrays for the kernels plus the names needed to explain and report.

    ``names`` holds strings: codes, lists, tags, rules, atoms, mdcs, entries, results, fields,
    meta, warnings.
    """

    compiler: ClassVar[int] = COMPILER_VERSION

    codes: CodeTable = attrs.field(init=False)
    #: derived per-ruleset lookups that callers build once and keep with the ruleset
    derived: dict = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        self.codes = CodeTable(self.names["codes"], slots=self.arrays["code_slots"])

    @property
    def rule_fields(self) -> list[str]:
        """Fields the atoms read, in kernel slot order."""
        return self.names["slots"]

    @property
    def text_tests(self) -> list[tuple[str, str, str]]:
        """(field, op, value) of each text test column the kernel reads: ``==`` for CMP_STR
        (equal to ``value``), ``in`` for TEXT_IN (equal to one of the ``|``-separated texts)."""
        return [tuple(x) for x in self.names["text_tests"]]

    @property
    def behaviour(self) -> T.Behaviour:
        """The behaviour keys of meta.csv (how cases are read, checked and reported)."""
        cached = self.derived.get("behaviour")
        if cached is not None:
            return cached
        b = self.names["behaviour"]
        cached = self.derived["behaviour"] = T.Behaviour(
            text_fields=tuple(b["text_fields"]),
            check_gender=b["check_gender"],
            check_newborn_weight=b["check_newborn_weight"],
            check_failed_codes=tuple(b["check_failed_codes"]),
            retry_secondary_procedures=b["retry_secondary_procedures"],
            fail_drg=b["fail_drg"],
            fail_mdc_drg=b["fail_mdc_drg"],
        )
        return cached


def compile_tables(tables: T.RulesetTables) -> CompiledRuleset:
    """Turn validated tables into the kernel arrays."""
    # ---- codes
    code_set: set[str] = {"", "-"}
    for members in tables.lists.values():
        code_set.update(members)
    code_set.update(tables.mcc, tables.cc, tables.pdx_excl)
    for mapping in (tables.dx_map, tables.px_map):
        if mapping:
            code_set.update(mapping)
            code_set.update(mapping.values())
    codes = sorted(code_set)
    table = CodeTable(codes)
    cid = table.index
    ncodes = len(codes)

    # ---- lists and tags
    list_names = sorted(tables.lists)
    list_id = {name: i for i, name in enumerate(list_names)}
    tag_names: list[list[str]] = []
    for name in list_names:
        tags = sorted({t for t in tables.lists[name].values() if t != ""})
        tag_names.append(tags)
    # membership pairs (code, list, tag), flat; each code is in a list at most once
    m_code: list[int] = []
    m_list: list[int] = []
    m_tag: list[int] = []
    for name in list_names:
        lid = list_id[name]
        tag_index = {t: k for k, t in enumerate(tag_names[lid])}
        members = tables.lists[name]
        m_code.extend(cid[code] for code in members)
        m_list.extend([lid] * len(members))
        m_tag.extend(tag_index.get(tag, -1) for tag in members.values())
    pc = np.array(m_code, dtype=np.int64)
    pl = np.array(m_list, dtype=np.int64)
    pt = np.array(m_tag, dtype=np.int8)
    # the same membership as a bitset: row per code, one bit per list (one load per test)
    mem_bits = np.zeros((ncodes, (len(list_names) + 63) // 64), dtype=np.uint64)
    np.bitwise_or.at(
        mem_bits, (pc, pl >> 6), np.left_shift(np.uint64(1), (pl & 63).astype(np.uint64))
    )
    # CSR by code, list ids ascending within a code (binary search in the kernel)
    order = np.lexsort((pl, pc))
    mem_ptr = np.zeros(ncodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(pc, minlength=ncodes), out=mem_ptr[1:])
    mem_list = pl[order].astype(np.int32)
    mem_tag = pt[order]

    # ---- CC / MCC / exclusion tables
    excl_names = sorted(
        set(tables.mcc.values()) | set(tables.cc.values()) | set(tables.pdx_excl.values())
    )
    excl_id = {name: i for i, name in enumerate(excl_names)}

    def code_tab(mapping: dict[str, str]) -> np.ndarray:
        tab = np.full(ncodes, -1, dtype=np.int32)
        for code, excl in mapping.items():
            tab[cid[code]] = excl_id[excl]
        return tab

    def map_tab(mapping: dict[str, str] | None) -> np.ndarray:
        tab = np.full(ncodes, NO_MAP, dtype=np.int32)
        for code, target in (mapping or {}).items():
            tab[cid[code]] = cid[target]
        return tab

    # ---- rules and atoms
    rule_names = sorted(tables.rules)
    rule_id = {name: i for i, name in enumerate(rule_names)}
    slots: list[str] = []
    text_tests: list[tuple[str, str, str]] = []
    alt_masks: list[int] = []
    atoms_flat: list[T.Atom] = []
    rule_ptr = np.zeros(len(rule_names) + 1, dtype=np.int32)
    for r, name in enumerate(rule_names):
        atoms_flat.extend(tables.rules[name])
        rule_ptr[r + 1] = len(atoms_flat)
    natoms = len(atoms_flat)
    a_tmpl = np.zeros(natoms, dtype=np.int8)
    a_list = np.full(natoms, -1, dtype=np.int32)
    a_slot = np.full(natoms, -1, dtype=np.int8)
    a_op = np.full(natoms, -1, dtype=np.int8)
    a_num = np.zeros(natoms, dtype=np.float64)
    a_aux0 = np.zeros(natoms, dtype=np.int32)
    a_aux1 = np.zeros(natoms, dtype=np.int32)
    for k, atom in enumerate(atoms_flat):
        a_tmpl[k] = TEMPLATE_IDS[atom.template]
        if atom.list_id:
            a_list[k] = list_id.get(atom.list_id, -1)
        if atom.op in OP_IDS:
            a_op[k] = OP_IDS[atom.op]
        if atom.field:
            if atom.template in ("CMP_STR", "TEXT_IN"):
                # one precomputed boolean row per distinct test: the kernel reads one byte
                key = (atom.field, "in" if atom.template == "TEXT_IN" else "==", atom.value)
                if key not in text_tests:
                    text_tests.append(key)
                a_aux0[k] = text_tests.index(key)
            if atom.field not in slots:
                slots.append(atom.field)
            a_slot[k] = slots.index(atom.field)
        if atom.template in ("CMP", "CMP_INT"):
            a_num[k] = float(T.parse_number(atom.value))
        elif atom.template == "MULTI_REGION":
            a_num[k] = float(int(atom.value))
        elif atom.template == "PROC_TAGS":
            tags = tag_names[list_id[atom.list_id]]
            a_aux0[k] = len(alt_masks)
            for alternative in atom.value.split("|"):
                mask = 0
                for tag in alternative.split("+"):
                    mask |= 1 << tags.index(tag)
                alt_masks.append(mask)
            a_aux1[k] = len(alt_masks)

    # ---- MDCs, entries, steps, results
    results = ["0000"]
    result_id = {"0000": 0}

    def res(code: str) -> int:
        if code not in result_id:
            result_id[code] = len(results)
            results.append(code)
        return result_id[code]

    entries_by_mdc: dict[str, list[T.EntryRow]] = {}
    for e in tables.entries:
        entries_by_mdc.setdefault(e.mdc, []).append(e)
    steps_by_entry: dict[str, list[T.StepRow]] = {}
    for s in tables.steps:
        steps_by_entry.setdefault(s.entry, []).append(s)

    mdc_rule = np.array([rule_id[m.rule_id] for m in tables.mdcs], dtype=np.int32)
    ordered_entries: list[T.EntryRow] = []
    mdc_entry_ptr = np.zeros(len(tables.mdcs) + 1, dtype=np.int32)
    for i, m in enumerate(tables.mdcs):
        ordered_entries.extend(sorted(entries_by_mdc.get(m.mdc, []), key=lambda e: e.seq))
        mdc_entry_ptr[i + 1] = len(ordered_entries)
    ordered_steps: list[T.StepRow] = []
    e_step_ptr = np.zeros(len(ordered_entries) + 1, dtype=np.int32)
    for j, e in enumerate(ordered_entries):
        ordered_steps.extend(sorted(steps_by_entry.get(e.entry, []), key=lambda s: s.seq))
        e_step_ptr[j + 1] = len(ordered_steps)
    e_rule = np.array([rule_id[e.rule_id] for e in ordered_entries], dtype=np.int32)
    e_kind = np.array(
        [KIND_QY if e.kind == "QY" else KIND_ADRG for e in ordered_entries], dtype=np.int8
    )
    e_result = np.array([res(e.code) for e in ordered_entries], dtype=np.int32)
    e_fallback = np.array(
        [res(e.fallback) if e.fallback else -1 for e in ordered_entries], dtype=np.int32
    )
    s_rule = np.array([rule_id[s.rule_id] for s in ordered_steps], dtype=np.int32)
    s_result = np.array([res(s.drg) for s in ordered_steps], dtype=np.int32)

    arrays = {
        "code_slots": table.slots,
        "mem_bits": mem_bits,
        "mem_ptr": mem_ptr,
        "mem_list": mem_list,
        "mem_tag": mem_tag,
        "mcc_tab": code_tab(tables.mcc),
        "cc_tab": code_tab(tables.cc),
        "pdx_tab": code_tab(tables.pdx_excl),
        "dxmap_tab": map_tab(tables.dx_map),
        "pxmap_tab": map_tab(tables.px_map),
        "rule_ptr": rule_ptr,
        "a_tmpl": a_tmpl,
        "a_list": a_list,
        "a_slot": a_slot,
        "a_op": a_op,
        "a_num": a_num,
        "a_aux0": a_aux0,
        "a_aux1": a_aux1,
        "alt_mask": np.array(alt_masks or [0], dtype=np.uint64),
        "retry": np.array([tables.behaviour.retry_secondary_procedures == "each"], np.bool_),
        "mdc_rule": mdc_rule,
        "mdc_entry_ptr": mdc_entry_ptr,
        "e_rule": e_rule,
        "e_kind": e_kind,
        "e_result": e_result,
        "e_fallback": e_fallback,
        "e_step_ptr": e_step_ptr,
        "s_rule": s_rule,
        "s_result": s_result,
    }
    names = {
        "compiler": COMPILER_VERSION,
        "content_hash": tables.content_hash,
        "codes": codes,
        "lists": list_names,
        "tags": tag_names,
        "excl_tables": excl_names,
        "rules": rule_names,
        "atoms": [
            [a.rule_id, a.seq, a.template, a.list_id, a.field, a.op, a.value] for a in atoms_flat
        ],
        "mdcs": [m.mdc for m in tables.mdcs],
        "entries": [[e.entry, e.kind, e.code, e.fallback, e.mdc] for e in ordered_entries],
        "steps": [[s.entry, s.drg] for s in ordered_steps],
        "results": results,
        "slots": slots,
        "text_tests": [list(x) for x in text_tests],
        # JSON-able as stored in the cache (lists, not tuples)
        "behaviour": {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in attrs.asdict(tables.behaviour).items()
        },
        "has_dx_map": tables.dx_map is not None,
        "has_px_map": tables.px_map is not None,
        "meta": [list(x) for x in tables.meta.entries],
        "warnings": list(tables.warnings),
    }
    return CompiledRuleset(tables.content_hash, arrays, names)


def load_compiled(folder: Path, *, use_cache: bool = True) -> CompiledRuleset:
    """Compiled form of a ruleset folder, from the cache when its content hash is there."""
    # compile_tables is looked up at call time (tests count the compilations)
    return load_cached(
        folder,
        CompiledRuleset,
        "ruleset",
        T.content_hash(folder),
        lambda f: compile_tables(T.read_tables(f)),
        use_cache=use_cache,
    )
