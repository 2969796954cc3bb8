"""Explain one case: the ordered decisions the grouper took, as data and as readable text.

The trail comes from the same kernel that groups in bulk, run on one case with tracing on,
so an explanation can never disagree with the group it explains.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
import pyarrow as pa

from .._cases import value_text
from .._resolve import RESOLVER
from ..errors import CaseDataError
from ..ruleset._model import Ruleset
from ..schema import FIELDS_BY_NAME, RULE_FIELDS, Layout
from . import _kernel as K
from ._group import GroupRun

__all__ = ["AtomTrace", "Explanation", "RuleTrace", "Secondary", "explain"]

#: Names of the 26 major diagnostic categories of CHS-DRG (national facts, used for display).
MDC_NAMES = {
    "MDCA": "先期分组疾病及相关操作",
    "MDCB": "神经系统疾病及功能障碍",
    "MDCC": "眼疾病及功能障碍",
    "MDCD": "头颈、耳、鼻、口、咽疾病及功能障碍",
    "MDCE": "呼吸系统疾病及功能障碍",
    "MDCF": "循环系统疾病及功能障碍",
    "MDCG": "消化系统疾病及功能障碍",
    "MDCH": "肝、胆、胰疾病及功能障碍",
    "MDCI": "肌肉、骨骼疾病及功能障碍",
    "MDCJ": "皮肤、皮下组织及乳腺疾病及功能障碍",
    "MDCK": "内分泌、营养、代谢疾病及功能障碍",
    "MDCL": "肾脏及泌尿系统疾病及功能障碍",
    "MDCM": "男性生殖系统疾病及功能障碍",
    "MDCN": "女性生殖系统疾病及功能障碍",
    "MDCO": "妊娠、分娩及产褥期",
    "MDCP": "新生儿及其他围产期新生儿疾病",
    "MDCQ": "血液、造血器官及免疫疾病和功能障碍",
    "MDCR": "骨髓增生疾病和功能障碍，低分化肿瘤",
    "MDCS": "感染及寄生虫病（全身性或不明确部位的）",
    "MDCT": "精神疾病及功能障碍",
    "MDCU": "酒精/药物使用及其引起的器质性精神功能障碍",
    "MDCV": "创伤、中毒及药物毒性反应",
    "MDCW": "烧伤",
    "MDCX": "影响健康因素及其他就医情况",
    "MDCY": "HIV感染疾病及相关操作",
    "MDCZ": "多发严重创伤",
}

_TABLE_TO_CASE = dict(RULE_FIELDS)
_OPS = {"==": "=", "!=": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥"}
_SEVERITY = re.compile(r"[，,](伴|不伴|无|合并)[^，,]*$")


@attrs.frozen(slots=True)
class AtomTrace:
    """One condition the grouper evaluated, and what it found."""

    rule_id: str
    seq: int
    template: str
    list_id: str
    field: str
    op: str
    value: str
    outcome: str  # "true" | "false" | "error"
    text: str  # why, in words, with the codes that decided it


@attrs.frozen(slots=True)
class RuleTrace:
    """One rule the grouper tried: an MDC entry, an ADRG entry or a DRG step."""

    level: str  # "mdc" | "adrg" | "drg" | "retry" (a new run with one secondary procedure)
    target: str  # MDC code, entry id or DRG code
    name: str
    rule_id: str
    outcome: str  # "held" | "failed" | "error"
    atoms: tuple[AtomTrace, ...]

    @property
    def held(self) -> bool:
        return self.outcome == "held"

    @property
    def why(self) -> str:
        """The deciding atom's text (the first false one, or the last true one)."""
        relevant = [a for a in self.atoms if a.template not in ("TRUE", "NOT_NONE")]
        if self.outcome == "held":
            return "; ".join(a.text for a in relevant) or "always holds"
        return self.atoms[-1].text if self.atoms else ""


@attrs.frozen(slots=True)
class Secondary:
    """A secondary diagnosis and its complication status."""

    position: int
    code: str
    name: str
    severity: str  # "MCC" | "CC" | ""
    table: str  # its exclusion table ("" when neither MCC nor CC)
    excluded: bool  # excluded by the principal diagnosis's table


@attrs.frozen(slots=True)
class Explanation:
    case_id: str
    ruleset: str
    ruleset_hash: str
    status: str
    reason: str
    detail: str
    mdc: str
    adrg: str
    drg: str
    drg_name: str
    principal: tuple[str, str]
    secondaries: tuple[Secondary, ...]
    procedures: tuple[tuple[str, str, bool], ...]  # code, name, operating-room procedure
    fields: Mapping[str, str]
    trail: tuple[RuleTrace, ...]
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=True)

    def render(self) -> str:
        return render(self)


# ----------------------------------------------------------------------------- building


def explain(
    case: Any,
    ruleset: Any,
    *,
    case_id: str | None = None,
    layout: str | Layout | None = None,
    columns: dict[str, str] | None = None,
    translate: bool = False,
    value_checks: str = "format",
) -> Explanation:
    """Explain how ``ruleset`` groups one case.

    ``case`` is a mapping of fields (drgkit names, or a layout's names; code lists as lists or
    ``|``-joined text), or any case input (file, table, frame) together with ``case_id`` to pick
    the case (or the first row when ``case_id`` is None). ``value_checks`` as in
    :func:`~drgkit.grouping.group_batches`.
    """
    from .._io import open_cases

    target = RESOLVER.ruleset(ruleset)
    known_layouts = RESOLVER.layouts
    if isinstance(case, Mapping):
        row = {
            k: (v if not isinstance(v, (list, tuple)) else "|".join(map(str, v)))
            for k, v in case.items()
        }
        batch = pa.RecordBatch.from_pylist([row]) if row else None
        if batch is None:
            raise CaseDataError("the case is empty (no fields)", file="<case>")
        schema = batch.schema
        batch = pa.RecordBatch.from_arrays(
            [c if not pa.types.is_null(c.type) else c.cast(pa.string()) for c in batch.columns],
            names=schema.names,
        )
        source_name = "<case>"
    else:
        src = open_cases(case)
        batch = None
        run_probe = GroupRun(
            target,
            src.schema,
            src.name,
            layout=layout,
            columns=columns,
            check_duplicates=False,
            layouts=known_layouts,
        )
        id_col = run_probe.plan.source.get("case_id")
        for b in src.batches:
            if case_id is None:
                batch = b.slice(0, 1)
                break
            if id_col is None:
                continue
            ids = b.column(id_col).cast(pa.string())
            hits = np.flatnonzero(np.asarray(ids.to_numpy(zero_copy_only=False)) == case_id)
            if len(hits):
                batch = b.slice(int(hits[0]), 1)
                break
        if batch is None:
            from ..errors import CaseNotFoundError

            raise CaseNotFoundError(
                f"case {case_id!r} is not in {src.name}"
                + ("" if id_col else " (it has no case id column)")
            )
        source_name = src.name
    run = GroupRun(
        target,
        batch.schema,
        source_name,
        layout=layout,
        columns=columns,
        translate=translate,
        check_duplicates=False,
        value_checks=value_checks,
        layouts=known_layouts,
    )
    f = run.front(batch)
    k = int(f.version[0])
    out = run._assemble(batch, f.ids, _one_outcome(run, f))
    result = {name: out.column(name)[0].as_py() for name in out.schema.names}
    ruleset_obj = run.versions[k] if k >= 0 else None
    if ruleset_obj is None:
        return _without_trail(result, run, f, target)
    C, parsed = run.prepare(k, None, f.cols, 1, f.pre, f.checks, f.field, f.detail)
    comp = ruleset_obj.compiled
    _o, _res, _err, _m, trace, truncated = K.trace_one(0, C, K.ruleset_arrays(comp), 20000)
    return _build(result, ruleset_obj, C, parsed, f, trace, bool(truncated), run)


def _one_outcome(run: GroupRun, f):
    from ._group import Outcome

    reason = np.zeros(1, dtype=np.int8)
    result = np.full(1, -1, dtype=np.int32)
    if f.version[0] >= 0:
        run._group_version(
            int(f.version[0]), None, f.cols, 1, f.pre, f.checks, f.field, reason, result, f.detail
        )
    else:
        reason[0] = f.pre[0]
    return Outcome(reason, result, f.version, f.detail)


def _field_texts(f) -> dict[str, str]:
    out = {}
    for name in (
        "sex",
        "age",
        "age_days",
        "birth_weight",
        "department",
        "los",
        "leaving_type",
        "icu_hours",
        "discharge_date",
    ):
        arr = f.cols.get(name)
        if arr is not None:
            out[name] = value_text(arr[0].as_py())
    return out


def _without_trail(result, run, f, target) -> Explanation:
    return Explanation(
        case_id=result["case_id"] or "",
        ruleset=target.id,
        ruleset_hash="",
        status=result["status"],
        reason=result["reason"] or "",
        detail=result["detail"] or "",
        mdc=result["mdc"],
        adrg=result["adrg"],
        drg=result["drg"],
        drg_name="",
        principal=("", ""),
        secondaries=(),
        procedures=(),
        fields=_field_texts(f),
        trail=(),
    )


def _build(result, ruleset: Ruleset, C, parsed, f, trace, truncated, run) -> Explanation:
    comp = ruleset.compiled
    names = comp.names
    codes = names["codes"]
    dx_names, px_names, drg_names = ruleset.dx_names, ruleset.px_names, ruleset.drg_names

    dx = [int(x) for x in C.dx[C.dx_off[0] : C.dx_off[1]]]
    px = [int(x) for x in C.px[C.px_off[0] : C.px_off[1]]]
    raw_dx = _raw_codes(f.cols.get("diagnoses"), run.plan.layout.separators)
    raw_px = _raw_codes(f.cols.get("procedures"), run.plan.layout.separators)

    def dx_code(pos: int) -> str:
        if run.translate:
            return codes[dx[pos]] if 0 <= pos < len(dx) and dx[pos] >= 0 else ""
        return raw_dx[pos] if pos < len(raw_dx) else ""

    def px_code(pos: int) -> str:
        if run.translate:
            return codes[px[pos]] if 0 <= pos < len(px) and px[pos] >= 0 else ""
        return raw_px[pos] if pos < len(raw_px) else ""

    def dx_label(pos: int) -> str:
        code = dx_code(pos)
        name = dx_names.get(code, "")
        return f"{code} {name}".strip() if code else "(empty)"

    def px_label(pos: int) -> str:
        code = px_code(pos)
        name = px_names.get(code, "")
        return f"{code} {name}".strip() if code else "(empty)"

    ss_valid = names["lists"].index("SS_VALID")
    mem_ptr, mem_list = comp.mem_ptr, comp.mem_list

    def in_list(code_id: int, lst: int) -> bool:
        if code_id < 0:
            return False
        row = mem_list[mem_ptr[code_id] : mem_ptr[code_id + 1]]
        return bool(np.any(row == lst))

    # secondaries and their CC/MCC status
    principal_id = dx[0] if dx else comp.codes.id("")
    excl = int(comp.pdx_tab[principal_id]) if principal_id >= 0 else -1
    secondaries = []
    for pos in range(1, len(dx)):
        s = dx[pos]
        severity, table, excluded = "", "", False
        for label, tab in (("MCC", comp.mcc_tab), ("CC", comp.cc_tab)):
            t = int(tab[s]) if s >= 0 else -1
            if t >= 0:
                severity, table = label, names["excl_tables"][t]
                excluded = excl >= 0 and excl == t
                break
        secondaries.append(
            Secondary(pos, dx_code(pos), dx_names.get(dx_code(pos), ""), severity, table, excluded)
        )
    procedures = tuple(
        (px_code(p), px_names.get(px_code(p), ""), in_list(px[p], ss_valid)) for p in range(len(px))
    )

    # the trail
    trail: list[RuleTrace] = []
    atoms: list[AtomTrace] = []
    current: tuple[int, int, int] | None = None
    entries, steps, mdcs = names["entries"], names["steps"], names["mdcs"]
    # a retry (FORMAT §4) reads px = [px[offset]]: procedure positions are relative to it
    offset = 0

    def run_px_label(pos: int) -> str:
        return px_label(pos + offset)

    for kind, a, b, c in trace.tolist():
        if kind == K.TR_RETRY:
            offset = a
            trail.append(
                RuleTrace("retry", px_code(a), px_names.get(px_code(a), ""), "", "held", ())
            )
        elif kind == K.TR_RULE:
            current = (a, b, c)
            atoms = []
        elif kind == K.TR_ATOM:
            atoms.append(
                _atom_trace(
                    comp, a, b, c, dx_label, run_px_label, dx, px, f, parsed, secondaries, excl
                )
            )
        elif kind == K.TR_END and current is not None:
            level, obj, rule = current
            outcome = {K.A_TRUE: "held", K.A_FALSE: "failed"}.get(c, "error")
            if level == K.LVL_MDC:
                target, name, lvl = mdcs[obj], MDC_NAMES.get(mdcs[obj], ""), "mdc"
            elif level == K.LVL_ENTRY:
                entry = entries[obj]
                target, lvl = entry[0], "adrg"
                name = _adrg_name(entry[2], drg_names) if entry[1] == "ADRG" else "歧义组"
            else:
                target, lvl = steps[obj][1], "drg"
                name = drg_names.get(steps[obj][1], "")
            trail.append(RuleTrace(lvl, target, name, names["rules"][rule], outcome, tuple(atoms)))
            current = None
    return Explanation(
        case_id=result["case_id"] or "",
        ruleset=ruleset.id,
        ruleset_hash=comp.content_hash,
        status=result["status"],
        reason=result["reason"] or "",
        detail=result["detail"] or "",
        mdc=result["mdc"],
        adrg=result["adrg"],
        drg=result["drg"],
        drg_name=drg_names.get(result["drg"], "")
        or (_adrg_name(result["drg"], drg_names) if len(result["drg"]) == 3 else ""),
        principal=(dx_code(0), dx_names.get(dx_code(0), "")),
        secondaries=tuple(secondaries),
        procedures=procedures,
        fields=_field_texts(f),
        trail=tuple(trail),
        truncated=truncated,
    )


def _raw_codes(arr: pa.Array | None, separators: str) -> list[str]:
    if arr is None:
        return []
    value = arr[0].as_py()
    if value is None:
        return []
    # as the grouper reads them: ASCII whitespace around a code is not part of it
    if isinstance(value, list):
        return ["" if v is None else str(v).strip(_SPACE) for v in value]
    text = str(value).strip(_SPACE)
    if text == "":
        return []
    return [c.strip(_SPACE) for c in re.split("[" + re.escape(separators) + "]", text)]


_SPACE = " \t\n\r\x0b\x0c"


def _adrg_name(adrg: str, drg_names: Mapping[str, str]) -> str:
    """An ADRG's name: its DRGs' common name without the severity suffix."""
    for drg, name in drg_names.items():
        if drg.startswith(adrg) and len(drg) >= len(adrg):
            return _SEVERITY.sub("", name)
    return ""


def _list_label(list_id: str) -> str:
    if list_id == "SS_VALID":
        return "the operating-room procedure list (SS_VALID)"
    return list_id


def _atom_trace(
    comp, k, outcome, witness, dx_label, px_label, dx, px, f, parsed, secondaries, excl
) -> AtomTrace:
    rule_id, seq, template, list_id, field, op, value = comp.names["atoms"][k]
    out = {K.A_TRUE: "true", K.A_FALSE: "false"}.get(outcome, "error")
    yes = outcome == K.A_TRUE
    L = _list_label(list_id)
    text = ""
    if template == "TRUE":
        text = "always holds"
    elif template == "FALSE":
        text = "disabled (FALSE): this check never holds"
    elif template == "PDX_IN":
        text = f"principal diagnosis {dx_label(0)} is {'' if yes else 'not '}in {L}"
    elif template == "PDX_NOT_IN":
        text = f"principal diagnosis {dx_label(0)} is {'not ' if yes else ''}in {L}"
    elif template == "PPROC_NOT_IN":
        if witness == 0:
            text = f"there is no principal procedure, so none is in {L}"
        else:
            text = f"principal procedure {px_label(0)} is {'not ' if yes else ''}in {L}"
    elif template == "SPROC_IN":
        text = (
            f"secondary procedure {px_label(witness)} is in {L}"
            if witness >= 1
            else f"no secondary procedure is in {L}"
        )
    elif template == "RAISE":
        text = f"this rule cannot be evaluated{': ' + value if value else ''} (error)"
    elif template in ("ANY_DX_IN", "SDX_IN", "NO_DX_IN", "NO_SDX_IN"):
        which = "secondary diagnosis" if "SDX" in template else "diagnosis"
        if witness >= 0:
            text = f"{which} {dx_label(witness)} is in {L}"
        else:
            text = f"no {which} is in {L}"
    elif template == "HAS_PROC":
        text = f"the case has {witness} procedure(s)" if yes else "the case has no procedure"
    elif template == "PPROC_IN":
        if out == "error":
            text = "there is no principal procedure to look up (error)"
        else:
            text = f"principal procedure {px_label(0)} is {'' if yes else 'not '}in {L}"
    elif template in ("ANY_PROC_IN", "NO_PROC_IN"):
        text = (
            f"procedure {px_label(witness)} is in {L}"
            if witness >= 0
            else f"no procedure is in {L}"
        )
    elif template == "PROC_TAGS":
        tags = comp.names["tags"][comp.names["lists"].index(list_id)]
        found = [tags[b] for b in range(len(tags)) if witness >> b & 1]
        text = (
            f"procedure tags found in {L}: {', '.join(found) or 'none'}; "
            f"needs {value.replace('|', ' or ')}"
        )
    elif template == "MULTI_REGION":
        tags = comp.names["tags"][comp.names["lists"].index(list_id)]
        found = [tags[b] for b in range(len(tags)) if witness >> b & 1]
        text = (
            f"diagnoses fall in {len(found)} region(s) of {L}"
            f"{': ' + '、'.join(found) if found else ''}; needs {op} {value}"
        )
    elif template in ("HAS_MCC", "HAS_CC", "HAS_CC_OR_MCC"):
        what = {"HAS_MCC": "MCC", "HAS_CC": "CC", "HAS_CC_OR_MCC": "CC or MCC"}[template]
        if witness > 0:
            s = secondaries[witness - 1]
            article = "an" if s.severity == "MCC" else "a"
            text = (
                f"secondary diagnosis {dx_label(witness)} is {article} {s.severity} "
                f"(exclusion table {s.table}), not excluded by the principal diagnosis"
            )
        else:
            excluded = [s for s in secondaries if s.excluded and (s.severity in what.split(" or "))]
            text = f"no secondary diagnosis is a{'n' if what == 'MCC' else ''} {what}"
            if excluded:
                text += "; excluded by the principal diagnosis's table: " + ", ".join(
                    f"{s.code} ({s.severity}, table {s.table})" for s in excluded
                )
    elif template in ("CMP", "CMP_INT", "CMP_STR", "TEXT_IN", "TRUTHY", "NOT_NONE"):
        case_field = _TABLE_TO_CASE.get(field, field)
        arr = f.cols.get(case_field)
        raw = value_text(arr[0].as_py()) if arr is not None else ""
        shown = repr(raw) if raw else "(missing)"
        label = f"{case_field} ({FIELDS_BY_NAME[case_field].zh})"
        if template == "CMP":
            if out == "error":
                text = f"{label} {shown} is text and cannot be compared {op} {value} (error)"
            else:
                text = f"{label} {shown} {_OPS[op]} {value}: {'yes' if yes else 'no'}"
        elif template == "CMP_INT":
            if out == "error":
                text = f"{label} {shown} is not a whole number (error)"
            else:
                text = f"int({label}) {shown} {_OPS[op]} {value}: {'yes' if yes else 'no'}"
        elif template == "CMP_STR":
            text = f"{label} {shown} {_OPS[op]} {value!r}: {'yes' if yes else 'no'}"
            if case_field in parsed and parsed[case_field].kind[0] & K.F_NUMBER:
                text += " (a number never equals a text)"
        elif template == "TEXT_IN":
            texts = ", ".join(repr(v) for v in value.split("|"))
            text = f"{label} {shown} is {'' if yes else 'not '}one of the texts {texts}"
            if case_field in parsed and parsed[case_field].kind[0] & K.F_NUMBER:
                text += " (it is a number, which never matches a text)"
        elif template == "TRUTHY":
            text = f"{label} {shown} is {'given' if yes else 'empty or zero'}"
        else:
            text = f"{label} is present"
    return AtomTrace(rule_id, int(seq), template, list_id, field, op, value, out, text)


# ----------------------------------------------------------------------------- rendering


def render(e: Explanation) -> str:
    lines = [f"Case {e.case_id} — ruleset {e.ruleset}"]
    lines.append("")
    if e.principal[0] or e.principal[1]:
        lines.append(f"Principal diagnosis  {e.principal[0]} {e.principal[1]}".rstrip())
    for s in e.secondaries:
        tag = ""
        if s.severity:
            excluded = ", excluded by principal" if s.excluded else ""
            tag = f"  [{s.severity}, table {s.table}{excluded}]"
        lines.append(f"Secondary diagnosis  {s.code} {s.name}{tag}".rstrip())
    for k, (code, name, is_or) in enumerate(e.procedures):
        head = "Principal procedure" if k == 0 else "Procedure          "
        lines.append(f"{head}  {code} {name}{'  [OR procedure]' if is_or else ''}".rstrip())
    if e.fields:
        lines.append(
            "Fields               "
            + ", ".join(f"{k}={v!r}" for k, v in e.fields.items() if v != "")
        )
    lines.append("")
    if not e.trail:
        lines.append(f"Not grouped: {e.reason} — {e.detail}")
    level_titles = {
        "mdc": "MDC (major diagnostic category)",
        "adrg": "ADRG (adjacent DRG)",
        "drg": "DRG (severity split)",
    }
    last_level = None
    entered = None
    for step in e.trail:
        if step.level == "retry":
            lines.append(
                "Retry: no group with the procedures as given; grouping again with secondary "
                f"procedure {step.target}{' ' + step.name if step.name else ''} alone"
            )
            last_level = entered = None
            continue
        if step.level == "mdc" and last_level in ("adrg", "drg") and entered:
            lines.append(f"  … no entry of {entered} returned a group: the next MDC is tried")
        if step.level != last_level:
            lines.append(level_titles[step.level])
            last_level = step.level
        if step.level == "mdc" and step.held:
            entered = step.target
        mark = {"held": "✓", "failed": "✗", "error": "!"}[step.outcome]
        name = f" {step.name}" if step.name else ""
        lines.append(f"  {mark} {step.target}{name}")
        lines.append(f"      {step.why}")
    if e.truncated:
        lines.append("  … (trail truncated)")
    lines.append("")
    if e.status == "ok":
        lines.append(f"Result: {e.drg} {e.drg_name}  (status ok)".rstrip())
    else:
        lines.append(f"Result: {e.status} — {e.reason}: {e.detail}")
    return "\n".join(lines)
