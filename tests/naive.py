"""Naive reference implementation of DRG grouping (ruleset format version 1).

Written only from ``shared/rulesets/FORMAT.md``; it shares no code with ``drgkit``.
Its purpose is to be *obviously correct*, not fast: every step mirrors a sentence of
the specification, and the comments cite the section (``§n``) they implement.
The test suite uses it to cross-check the compiled kernels, and the benchmarks use it
as the pure-Python baseline.

Public API::

    rs = NaiveRuleset.load("shared/rulesets/chs_drg_11")
    rs.group(record)                  # -> (status, mdc, adrg, drg)
    rs.group(record, translate=True)  # translation mode (§6)
    rs.group(record, checks="strict")   # plus drgkit's plausibility checks
    rs.explain_path(record)           # -> [(level, id, held), ...]

``record`` maps the OpenDRG input keys (``gender, age, ageDay, weight, dept,
inHospitalTime, leavingType, ICD10_DRGS, ICD9_DRGS``) to raw CSV text. Python ``int``
and ``float`` values are taken as numbers; ``None`` and missing keys are the text ``''``.

Only the standard library is used.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Union

__all__ = [
    "STATUSES",
    "FieldValue",
    "NaiveGroupingError",
    "NaiveRuleset",
    "parse_field",
    "split_codes",
]

# --------------------------------------------------------------------------------------
# Statuses and fixed output rows (§4 result mapping, §5)
# --------------------------------------------------------------------------------------

SUCCESS = "SUCCESS"
FAIL = "FAIL"
QY = "QY"
CHECK_FAILED = "CHECK_FAILED"
ERROR = "ERROR"
ZD_NOT_MAPPING = "ZD_NOT_MAPPING"
SS_NOT_MAPPING = "SS_NOT_MAPPING"
# Not in FORMAT.md: drgkit's own plausibility checks (drgkit._cases.PLAUSIBLE), which run
# after §5 when checks="strict" (opt-in in drgkit, as here).
# Restated here from their documentation, not imported.
IMPLAUSIBLE = "IMPLAUSIBLE"
STATUSES = (SUCCESS, FAIL, QY, CHECK_FAILED, ERROR, ZD_NOT_MAPPING, SS_NOT_MAPPING, IMPLAUSIBLE)

# field (rule name) -> lowest, highest, whole numbers only; ageDay is at most 366 when age is 0
_SPACE = " \t\n\r\x0b\x0c"
_BOUNDS = {
    "age": (0, 150, True),
    "ageDay": (0, None, True),
    "weight": (0, 10000, False),
    "los": (0, 36600, False),
    "icuHours": (0, 878400, False),
}

# A case on which the reference grouper raised an exception has no group at all; the
# oracle's expected files carry empty mdc/adrg/drg columns on ERROR rows.
_ERROR_ROW = (ERROR, "", "", "")

# Scalar fields as they are called in rules -> key of the input record (§2).
FIELD_TO_KEY = {
    "gender": "gender",
    "age": "age",
    "ageDay": "ageDay",
    "weight": "weight",
    "dept": "dept",
    "los": "inHospitalTime",
    "leavingType": "leavingType",
    "icuHours": "icuHours",  # §2: optional; '' when the input has no such column
}

Number = Union[int, float]


class NaiveGroupingError(Exception):
    """An atom raised an error (§3 "Evaluation order and errors"): status ERROR."""


# --------------------------------------------------------------------------------------
# The case (§2)
# --------------------------------------------------------------------------------------

# §2: a number is `[+-]?digits` (an integer) or
# `[+-]?(digits.digits*|.digits)([eE][+-]?digits)?` (a float). Anything else is text.
# Note that the float form needs a dot: '1e5' is text, '1.' and '.5' are floats.
_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class FieldValue:
    """One scalar field: its original text and, when it is a number, its value."""

    text: str
    number: Number | None  # None when the field is text

    @property
    def is_number(self) -> bool:
        return self.number is not None


def parse_field(raw: object) -> FieldValue:
    """§2: classify a raw value as a number or as text.

    ``None`` (and a missing key) is the text ``''``. Python ints and floats are numbers
    already (bool is an int in Python and is treated as one).
    """
    if raw is None:
        return FieldValue("", None)
    if isinstance(raw, (int, float)):
        return FieldValue(str(raw), raw)
    text = raw if isinstance(raw, str) else str(raw)
    if _INT_RE.fullmatch(text):
        return FieldValue(text, int(text))
    if _FLOAT_RE.fullmatch(text):
        return FieldValue(text, float(text))
    return FieldValue(text, None)


def python_int(value: FieldValue) -> int:
    """``int(field)`` as the reference grouper computes it (§3 CMP_INT, §5).

    A number: ``int()`` of the number (an int is itself, a float is truncated towards
    zero; an infinite float raises OverflowError). Text: Python's ``int()`` of the text
    itself (so e.g. ``' 12'`` converts, ``'abc'`` and ``''`` raise ValueError).
    """
    if value.is_number:
        return int(value.number)  # may raise OverflowError for inf
    return int(value.text)  # may raise ValueError


def split_codes(raw: object) -> list[str]:
    """§2: split a code field on ',' and '|'. An empty field gives ``['']``."""
    text = "" if raw is None else str(raw)
    return re.split(r"[,|]", text)


_OPS: dict[str, Callable[[object, object], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@dataclass
class _Case:
    fields: dict[str, FieldValue]  # keyed by the rule field name (gender, los, ...)
    dx: list[str]
    px: list[str]


# --------------------------------------------------------------------------------------
# Ruleset tables (§1)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Atom:
    rule_id: str
    seq: int
    template: str
    list_id: str
    field: str
    op: str
    value: str


@dataclass(frozen=True)
class Entry:
    mdc: str
    seq: int
    entry: str
    kind: str  # 'ADRG' or 'QY'
    code: str
    rule_id: str
    fallback: str


@dataclass(frozen=True)
class DrgStep:
    entry: str
    seq: int
    drg: str
    rule_id: str


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _parse_number_constant(text: str, where: str) -> Number:
    """The ``value`` of a numeric comparison, read with the §2 number rule."""
    parsed = parse_field(text)
    if not parsed.is_number:
        raise ValueError(f"{where}: value {text!r} is not a number")
    return parsed.number


# Templates and whether they need a list (§3).
_LIST_TEMPLATES = {
    "PDX_IN",
    "PDX_NOT_IN",
    "SPROC_IN",
    "PPROC_NOT_IN",
    "ANY_DX_IN",
    "SDX_IN",
    "PPROC_IN",
    "ANY_PROC_IN",
    "NO_PROC_IN",
    "PROC_TAGS",
    "MULTI_REGION",
    "NO_DX_IN",
    "NO_SDX_IN",
}
_FIELD_TEMPLATES = {"CMP", "CMP_INT", "CMP_STR", "TEXT_IN", "TRUTHY", "NOT_NONE"}
_OTHER_TEMPLATES = {"TRUE", "FALSE", "HAS_PROC", "HAS_MCC", "HAS_CC", "HAS_CC_OR_MCC", "RAISE"}
TEMPLATES = _LIST_TEMPLATES | _FIELD_TEMPLATES | _OTHER_TEMPLATES


class NaiveRuleset:
    """One ruleset folder, read into plain dicts and lists."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.mdcs: list[tuple[str, str]] = []  # (mdc, rule_id) in seq order
        self.entries: dict[str, list[Entry]] = {}  # mdc -> entries in seq order
        self.steps: dict[str, list[DrgStep]] = {}  # entry -> DRG steps in seq order
        self.rules: dict[str, list[Atom]] = {}  # rule_id -> atoms in seq order
        self.lists: dict[str, set[str]] = {}  # list_id -> codes
        self.tags: dict[str, dict[str, str]] = {}  # list_id -> code -> tag
        self.mcc: dict[str, str] = {}  # code -> excl_table
        self.cc: dict[str, str] = {}
        self.pdx_excl: dict[str, str] = {}
        self.dx_map: dict[str, str] | None = None  # None when dx_map.csv is absent
        self.px_map: dict[str, str] | None = None
        # the behaviour keys of meta.csv (§1); absent keys: the five original rulesets
        self.text_fields: set[str] = set()  # §2
        self.check_gender = ""  # §5: 'text'
        self.check_newborn_weight = ""  # §5: 'required'
        self.check_failed_codes = ("0000", "00", "0000")  # §5
        self.retry_secondary_procedures = ""  # §4: 'each'
        self.fail_drg = "0000"  # §4
        self.fail_mdc_drg = "0000"  # §4

    # ---------------------------------------------------------------- loading (§1)
    @classmethod
    def load(cls, folder: str | os.PathLike) -> NaiveRuleset:
        rs = cls()
        folder = Path(folder)
        rs.folder = folder

        # meta.csv: only the behaviour keys matter (§1)
        meta = _read_csv(folder / "meta.csv") if (folder / "meta.csv").exists() else []
        for r in meta:
            key, value = r["key"], r["value"]
            if key == "text_fields":
                rs.text_fields = set(value.split())
            elif key == "check_gender":
                rs.check_gender = value
            elif key == "check_newborn_weight":
                rs.check_newborn_weight = value
            elif key == "check_failed_codes":
                mdc, adrg, drg = value.split("/")
                rs.check_failed_codes = (mdc, adrg, drg)
            elif key == "retry_secondary_procedures":
                rs.retry_secondary_procedures = value
            elif key == "fail_drg":
                rs.fail_drg = value
            elif key == "fail_mdc_drg":
                rs.fail_mdc_drg = value

        # mdc.csv: MDCs tried in seq order.
        mdc_rows = sorted(_read_csv(folder / "mdc.csv"), key=lambda r: int(r["seq"]))
        rs.mdcs = [(r["mdc"], r["rule_id"]) for r in mdc_rows]

        # adrg.csv: entries of each MDC in seq order.
        for r in _read_csv(folder / "adrg.csv"):
            e = Entry(
                r["mdc"],
                int(r["seq"]),
                r["entry"],
                r["kind"],
                r["code"],
                r["rule_id"],
                r["fallback"],
            )
            if e.kind not in ("ADRG", "QY"):
                raise ValueError(f"adrg.csv: unknown kind {e.kind!r} in entry {e.entry}")
            rs.entries.setdefault(e.mdc, []).append(e)
        for lst in rs.entries.values():
            lst.sort(key=lambda e: e.seq)

        # adrg_drg.csv: DRG steps of each entry in seq order.
        for r in _read_csv(folder / "adrg_drg.csv"):
            s = DrgStep(r["entry"], int(r["seq"]), r["drg"], r["rule_id"])
            rs.steps.setdefault(s.entry, []).append(s)
        for lst in rs.steps.values():
            lst.sort(key=lambda s: s.seq)

        # rules.csv: atoms of each rule in seq order.
        for r in _read_csv(folder / "rules.csv"):
            a = Atom(
                r["rule_id"],
                int(r["seq"]),
                r["template"],
                r["list_id"],
                r["field"],
                r["op"],
                r["value"],
            )
            rs.rules.setdefault(a.rule_id, []).append(a)
        for lst in rs.rules.values():
            lst.sort(key=lambda a: a.seq)

        # lists.csv: membership, plus the tag of tagged lists (§3 "Tagged lists":
        # the tables already hold the effective code -> tag map).
        for r in _read_csv(folder / "lists.csv"):
            rs.lists.setdefault(r["list_id"], set()).add(r["code"])
            if r["tag"] != "":
                rs.tags.setdefault(r["list_id"], {})[r["code"]] = r["tag"]

        # ss_valid.csv is the list with the reserved id SS_VALID.
        rs.lists["SS_VALID"] = {r["code"] for r in _read_csv(folder / "ss_valid.csv")}

        rs.mcc = {r["code"]: r["excl_table"] for r in _read_csv(folder / "mcc.csv")}
        rs.cc = {r["code"]: r["excl_table"] for r in _read_csv(folder / "cc.csv")}
        rs.pdx_excl = {r["code"]: r["excl_table"] for r in _read_csv(folder / "pdx_excl.csv")}

        # dx_map.csv / px_map.csv are optional (§1, §6).
        if (folder / "dx_map.csv").exists():
            rs.dx_map = {r["code"]: r["target"] for r in _read_csv(folder / "dx_map.csv")}
        if (folder / "px_map.csv").exists():
            rs.px_map = {r["code"]: r["target"] for r in _read_csv(folder / "px_map.csv")}

        rs._validate()
        return rs

    def _validate(self) -> None:
        """Fail loudly on tables this implementation would misread."""
        used = [rid for _, rid in self.mdcs]
        for lst in self.entries.values():
            used += [e.rule_id for e in lst]
        for lst in self.steps.values():
            used += [s.rule_id for s in lst]
        for rid in used:
            if not self.rules.get(rid):
                raise ValueError(f"rule {rid!r} is referenced but has no atom")
        for atoms in self.rules.values():
            for a in atoms:
                where = f"rules.csv {a.rule_id} seq {a.seq}"
                if a.template not in TEMPLATES:
                    raise ValueError(f"{where}: unknown template {a.template!r}")
                if a.template in _FIELD_TEMPLATES:
                    if a.field not in FIELD_TO_KEY:
                        raise ValueError(f"{where}: unknown field {a.field!r}")
                if a.template in ("CMP", "CMP_INT", "CMP_STR", "MULTI_REGION"):
                    if a.op not in _OPS:
                        raise ValueError(f"{where}: unknown op {a.op!r}")
                if a.template in ("CMP", "CMP_INT", "MULTI_REGION"):
                    _parse_number_constant(a.value, where)

    # ---------------------------------------------------------------- list helpers
    def _list(self, list_id: str) -> set[str]:
        # A list with no row in lists.csv is empty.
        return self.lists.get(list_id, set())

    def _tag_map(self, list_id: str) -> dict[str, str]:
        return self.tags.get(list_id, {})

    # ---------------------------------------------------------------- atoms (§3)
    def _has_complication(self, table: dict[str, str], case: _Case) -> bool:
        """§3 HAS_MCC / HAS_CC: a secondary s in the table that is not excluded.

        s is excluded when dx[0] has a row in pdx_excl.csv and that row's excl_table
        equals the table's excl_table of s.
        """
        principal = case.dx[0]
        for s in case.dx[1:]:
            if s not in table:
                continue
            excluded = principal in self.pdx_excl and self.pdx_excl[principal] == table[s]
            if not excluded:
                return True
        return False

    def _eval_atom(self, atom: Atom, case: _Case) -> bool:
        t = atom.template
        dx, px = case.dx, case.px

        if t == "TRUE":
            return True
        if t == "FALSE":
            return False
        if t == "PDX_IN":
            return dx[0] in self._list(atom.list_id)
        if t == "PDX_NOT_IN":
            return dx[0] not in self._list(atom.list_id)
        if t == "ANY_DX_IN":
            return any(d in self._list(atom.list_id) for d in dx)
        if t == "SDX_IN":
            return any(d in self._list(atom.list_id) for d in dx[1:])
        if t == "NO_DX_IN":
            return not any(d in self._list(atom.list_id) for d in dx)
        if t == "NO_SDX_IN":
            return not any(d in self._list(atom.list_id) for d in dx[1:])
        if t == "HAS_PROC":
            return len(px) > 0
        if t == "PPROC_IN":
            if len(px) == 0:
                raise NaiveGroupingError(f"{atom.rule_id}: PPROC_IN on an empty px")
            return px[0] in self._list(atom.list_id)
        if t == "PPROC_NOT_IN":
            # px empty, or px[0] not in L: never an error
            return len(px) == 0 or px[0] not in self._list(atom.list_id)
        if t == "SPROC_IN":
            # a secondary procedure in L; false when len(px) < 2
            return any(p in self._list(atom.list_id) for p in px[1:])
        if t == "RAISE":
            raise NaiveGroupingError(f"{atom.rule_id}: RAISE ({atom.value})")
        if t == "ANY_PROC_IN":
            return any(p in self._list(atom.list_id) for p in px)
        if t == "NO_PROC_IN":
            return not any(p in self._list(atom.list_id) for p in px)
        if t == "PROC_TAGS":
            # T = { tag(p) : p in px, p in L }; value 'a+b|c+d+e' = (a and b) or (c, d, e).
            members = self._list(atom.list_id)
            tag_of = self._tag_map(atom.list_id)
            present = {tag_of.get(p, "") for p in px if p in members}
            for alternative in atom.value.split("|"):
                if all(tag in present for tag in alternative.split("+")):
                    return True
            return False
        if t == "MULTI_REGION":
            # the diagnoses set(dx) that are in L fall into >= n distinct tags.
            members = self._list(atom.list_id)
            region_of = self._tag_map(atom.list_id)
            regions = {region_of.get(d, "") for d in set(dx) if d in members}
            n = _parse_number_constant(atom.value, atom.rule_id)
            return _OPS[atom.op](len(regions), n)
        if t == "HAS_MCC":
            return self._has_complication(self.mcc, case)
        if t == "HAS_CC":
            return self._has_complication(self.cc, case)
        if t == "HAS_CC_OR_MCC":
            return self._has_complication(self.mcc, case) or self._has_complication(self.cc, case)

        value = case.fields[atom.field]
        if t == "CMP":
            n = _parse_number_constant(atom.value, atom.rule_id)
            if value.is_number:
                return _OPS[atom.op](value.number, n)
            # text: '==' is false, '!=' is true, ordering is an error.
            if atom.op == "==":
                return False
            if atom.op == "!=":
                return True
            raise NaiveGroupingError(
                f"{atom.rule_id}: {atom.field} {atom.op} {atom.value} on text {value.text!r}"
            )
        if t == "CMP_INT":
            n = _parse_number_constant(atom.value, atom.rule_id)
            try:
                as_int = python_int(value)
            except (ValueError, OverflowError) as exc:
                raise NaiveGroupingError(
                    f"{atom.rule_id}: int({value.text!r}) failed: {exc}"
                ) from exc
            return _OPS[atom.op](as_int, n)
        if t == "CMP_STR":
            # a number is never equal to a text
            equal = not value.is_number and value.text == atom.value
            if atom.op == "==":
                return equal
            if atom.op == "!=":
                return not equal
            raise NaiveGroupingError(f"{atom.rule_id}: CMP_STR with op {atom.op!r}")
        if t == "TEXT_IN":
            # the field is text and one of the '|'-separated texts; a number never matches
            return not value.is_number and value.text in atom.value.split("|")
        if t == "TRUTHY":
            # a non-zero number or a non-empty text
            if value.is_number:
                return value.number != 0
            return value.text != ""
        if t == "NOT_NONE":
            # every field is present (missing values are the text '')
            return True
        raise ValueError(f"unknown template {t!r}")  # excluded by _validate

    def _eval_rule(self, rule_id: str, case: _Case) -> bool:
        """§3: conjunction of the atoms in seq order; the first false atom stops."""
        for atom in self.rules[rule_id]:
            if not self._eval_atom(atom, case):  # FALSE stops here too
                return False
        return True

    # ---------------------------------------------------------------- grouping (§4)
    def _result_code(self, case: _Case, trace: list) -> str:
        for mdc, mdc_rule in self.mdcs:
            held = self._eval_rule(mdc_rule, case)
            trace.append(("mdc", mdc, held))
            if not held:
                continue
            for entry in self.entries.get(mdc, []):
                held = self._eval_rule(entry.rule_id, case)
                trace.append(("entry", entry.entry, held))
                if not held:
                    continue
                if entry.kind == "QY":
                    return entry.code
                for step in self.steps.get(entry.entry, []):
                    held = self._eval_rule(step.rule_id, case)
                    trace.append(("drg", step.drg, held))
                    if held:
                        return step.drg
                if entry.fallback != "":
                    trace.append(("fallback", entry.fallback, True))
                    return entry.fallback
                # else: fall through to the next entry
            # no entry returned a code: fall through to the next MDC
        return "0000"

    def _map_result(self, code: str) -> tuple[str, str, str, str]:
        """§4 "Mapping the result code to the output" (meta fail_drg, fail_mdc_drg)."""
        if code == "0000":
            return (FAIL, "0000", "00", self.fail_drg)
        if code[1:3] == "00":
            return (FAIL, "MDC" + code[0], "00", self.fail_mdc_drg)
        if code[1:3] == "QY":
            return (QY, "MDC" + code[0], "QY", code)
        return (SUCCESS, "MDC" + code[0], code[:3], code)

    # ---------------------------------------------------------------- translation (§6)
    @staticmethod
    def _translate_codes(codes: list[str], mapping: dict[str, str]) -> tuple[list[str], bool]:
        """§6: returns (translated list L, unmapped flag) before removing ''/'-'."""
        L = list(codes)
        unmapped = False
        for i in range(len(L)):
            x = L[i]  # read at this moment
            if x in mapping:
                target = mapping[x]
                if target != x:
                    L[L.index(x)] = target  # the FIRST position holding x
            else:
                L[L.index(x)] = ""
                unmapped = True
        if L[0] == "-":
            unmapped = True
        return L, unmapped

    # ---------------------------------------------------------------- input checks (§5)
    def _check_failed(self, fields: dict[str, FieldValue]) -> bool:
        gender = fields["gender"]
        if self.check_gender == "text":
            # only the texts 1 and 2 pass
            gender_ok = not gender.is_number and gender.text in ("1", "2")
        elif gender.is_number:
            gender_ok = gender.number in (1, 2)
        else:
            gender_ok = gender.text in ("1", "2", "男", "女")
        if not gender_ok:
            return True
        try:
            age = python_int(fields["age"])
        except (ValueError, OverflowError):
            return True
        if age == 0:
            try:
                days = python_int(fields["ageDay"])
            except (ValueError, OverflowError):
                return True
            # check 4 (check_newborn_weight required): a newborn needs a birth weight
            weight = fields["weight"]
            if (
                self.check_newborn_weight == "required"
                and days <= 28
                and not weight.is_number
                and weight.text == ""
            ):
                return True
        return False

    @staticmethod
    def _implausible(fields: dict[str, FieldValue]) -> str | None:
        """drgkit's plausibility checks: the first field out of its bounds, or None.

        Only a number, or a text that Python's ``int()`` accepts, is checked."""
        values: dict[str, Number | None] = {}
        for name in _BOUNDS:
            value = fields[name]
            if value.is_number:
                values[name] = value.number
            else:
                try:
                    values[name] = int(value.text)
                except ValueError:
                    values[name] = None
        for name, (low, high, whole) in _BOUNDS.items():
            x = values[name]
            if x is None:
                continue
            if x < low or (high is not None and x > high):
                return name
            if whole and x != int(x):
                return name
            if name == "ageDay" and values["age"] == 0 and x > 366:
                return name
        return None

    # ---------------------------------------------------------------- public API
    def _run(
        self, record: Mapping[str, object], translate: bool, trace: list, checks: str = "format"
    ) -> tuple[str, str, str, str]:
        fields = {name: parse_field(record.get(key)) for name, key in FIELD_TO_KEY.items()}
        for name in self.text_fields:
            # §2: always text, even when it looks like a number
            raw = record.get(FIELD_TO_KEY[name])
            fields[name] = FieldValue("" if raw is None else str(raw), None)
        raw_dx = record.get("ICD10_DRGS")
        raw_px = record.get("ICD9_DRGS")
        raw_dx = "" if raw_dx is None else str(raw_dx)
        raw_px = "" if raw_px is None else str(raw_px)
        # drgkit, in both modes: ASCII whitespace around a code is not part of it (no ruleset
        # code has any; FORMAT.md would keep it and match nothing)
        raw_dx, raw_px = raw_dx.strip(_SPACE), raw_px.strip(_SPACE)

        def split(raw: object) -> list[str]:
            return [c.strip(_SPACE) for c in split_codes(raw)]

        if translate:
            # §6 runs before the checks of §5.
            if self.dx_map is None or self.px_map is None:
                raise FileNotFoundError(
                    f"translation mode needs dx_map.csv and px_map.csv in {self.folder}"
                )
            L, unmapped = self._translate_codes(split(raw_dx), self.dx_map)
            trace.append(("translate_dx", "|".join(L), not unmapped))
            if unmapped:
                return (ZD_NOT_MAPPING, *self.check_failed_codes)
            dx = [c for c in L if c not in ("", "-")]
            if raw_px == "":
                px: list[str] = []
            else:
                L, unmapped = self._translate_codes(split(raw_px), self.px_map)
                trace.append(("translate_px", "|".join(L), not unmapped))
                if unmapped:
                    return (SS_NOT_MAPPING, *self.check_failed_codes)
                px = [c for c in L if c not in ("", "-")]
            if len(dx) == 0:
                trace.append(("check", "empty dx", False))
                return (CHECK_FAILED, *self.check_failed_codes)
        else:
            # §2: an empty dx field gives [''], an empty px field gives [].
            dx = split(raw_dx)
            px = [] if raw_px == "" else split(raw_px)

        # §5 input checks.
        if self._check_failed(fields):
            trace.append(("check", "input", False))
            return (CHECK_FAILED, *self.check_failed_codes)
        if checks == "strict":
            bad = self._implausible(fields)
            if bad is not None:
                trace.append(("check", f"implausible {bad}", False))
                return (IMPLAUSIBLE, "0000", "00", "0000")

        case = _Case(fields, dx, px)
        try:
            code = self._result_code(case, trace)
            if code == "0000" and self.retry_secondary_procedures == "each" and len(px) > 1:
                # §4 retry: once per secondary procedure p, with px = [p]
                for p in px[1:]:
                    trace.append(("retry", p, True))
                    code = self._result_code(_Case(fields, dx, [p]), trace)
                    if code != "0000":
                        break
        except NaiveGroupingError as exc:
            trace.append(("error", str(exc), False))
            return _ERROR_ROW
        trace.append(("result", code, True))
        return self._map_result(code)

    def group(
        self, record: Mapping[str, object], translate: bool = False, checks: str = "format"
    ) -> tuple[str, str, str, str]:
        """Group one case: ``(status, mdc, adrg, drg)`` as in FORMAT §4/§5 (``checks``:
        ``opendrg`` is FORMAT alone; ``drgkit`` also drops whitespace around codes and adds
        the plausibility checks)."""
        return self._run(record, translate, [], checks)

    def explain_path(
        self, record: Mapping[str, object], translate: bool = False, checks: str = "format"
    ) -> list[tuple]:
        """The ordered decisions: ``(level, id, held)`` with level one of
        ``mdc, entry, drg, fallback, result`` (plus ``translate_dx, translate_px,
        check, error`` when those end or shape the grouping)."""
        trace: list[tuple] = []
        self._run(record, translate, trace, checks)
        return trace
