"""Lint a ruleset folder: defects the grouper accepts (or stops at one by one), all at once.

:func:`lint_ruleset` reads every table leniently (a bad row becomes a finding, not an
exception), then looks for what a table author wants to know before a version goes live:
entries no case can reach because an earlier one always catches it, DRG steps behind an
earlier step, rules that can never hold, references to nothing, duplicate or conflicting rows,
codes the dictionaries do not know, DRGs without a name (or, given a policy, without a weight),
CC/MCC exclusion tables nobody points at, empty tables.

Shadowing is *proven* or not reported: an entry B is shadowed by an earlier entry A when every
case that satisfies B's conditions (its MDC's and its own) provably satisfies A's conditions,
and A then provably returns a code. The proof works atom by atom on the templates of FORMAT §3
(list inclusion, numeric intervals, texts); a template it does not understand is compared only
for equality and reported once as ``not-analysed`` (info).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa

from ..errors import RulesetError
from . import _tables as T

__all__ = ["FINDING_SCHEMA", "SEVERITIES", "Finding", "findings_table", "lint_ruleset"]

SEVERITIES = ("error", "warning", "info")

FINDING_SCHEMA = pa.schema(
    [
        pa.field("severity", pa.string(), nullable=False),
        pa.field("code", pa.string(), nullable=False),
        pa.field("file", pa.string(), nullable=False),
        pa.field("row", pa.int64()),
        pa.field("field", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
    ]
)


@attrs.frozen(slots=True)
class Finding:
    """One lint finding: how bad, what kind (``code``), where (file, row, field) and why."""

    severity: str
    code: str
    file: str
    row: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f":{self.row}"
        if self.field:
            where += f" [{self.field}]"
        return f"{self.severity:<7} {self.code:<22} {where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def findings_table(findings: Iterable[Finding]) -> pa.Table:
    """The findings as an Arrow table (:data:`FINDING_SCHEMA`)."""
    rows = [f.as_dict() for f in findings]
    return pa.Table.from_pylist(rows, schema=FINDING_SCHEMA)


# templates, by what they look at (FORMAT §3)
_DX_TEMPLATES = frozenset(
    {"PDX_IN", "ANY_DX_IN", "SDX_IN", "NO_DX_IN", "NO_SDX_IN", "PDX_NOT_IN", "MULTI_REGION"}
)
_PX_TEMPLATES = frozenset(
    {"PPROC_IN", "ANY_PROC_IN", "NO_PROC_IN", "SPROC_IN", "PPROC_NOT_IN", "PROC_TAGS"}
)
#: templates whose meaning the prover knows (others: equality only)
_KNOWN = (
    _DX_TEMPLATES
    | _PX_TEMPLATES
    | {"TRUE", "FALSE", "RAISE", "NOT_NONE", "HAS_PROC", "HAS_MCC", "HAS_CC", "HAS_CC_OR_MCC"}
    | {"CMP", "CMP_INT", "CMP_STR", "TEXT_IN", "TRUTHY"}
)
#: file -> (its key columns, severity of two rows with one key and different values);
#: meta.csv repeats keys on purpose and is not checked
_KEYS: dict[str, tuple[tuple[str, ...], str]] = {
    "mdc.csv": (("mdc",), "error"),
    "adrg.csv": (("entry",), "error"),
    "adrg_drg.csv": (("entry", "seq"), "error"),
    "rules.csv": (("rule_id", "seq"), "error"),
    "lists.csv": (("list_id", "code"), "error"),
    "ss_valid.csv": (("code",), "warning"),
    "mcc.csv": (("code",), "error"),
    "cc.csv": (("code",), "error"),
    "pdx_excl.csv": (("code",), "error"),
    "dx_map.csv": (("code",), "error"),
    "px_map.csv": (("code",), "error"),
    "drg_names.csv": (("drg",), "warning"),
    "dx_dict.csv": (("code",), "warning"),
    "px_dict.csv": (("code",), "warning"),
}


# --------------------------------------------------------------------------- reading


@attrs.define
class _Raw:
    """The tables as read leniently: first row of each key wins, problems become findings."""

    rows: dict[str, list[tuple[int, dict[str, str]]]] = attrs.Factory(dict)
    first: dict[str, dict[tuple[str, ...], int]] = attrs.Factory(dict)

    def table(self, name: str) -> list[tuple[int, dict[str, str]]]:
        return self.rows.get(name, [])


#: files read row by row even when the grouper's validation passed (it does not keep them)
_RAW_WHEN_VALID = frozenset({"meta.csv", "drg_names.csv", "dx_dict.csv", "px_dict.csv"})


class _RowFinder:
    """The row of a key in a validated table, found in the file's text on demand.

    Findings about a code of a 100,000-row table are few: searching the text for each is much
    faster than reading every row again. A table with quotes is read with the CSV reader."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.texts: dict[str, str | None] = {}
        self.read: dict[str, dict[tuple[str, ...], int]] = {}

    def __call__(self, name: str, key: tuple[str, ...]) -> int | None:
        if name not in self.texts:
            data = (self.folder / name).read_bytes()
            simple = b'"' not in data and b"\r" not in data
            self.texts[name] = data.decode("utf-8-sig") if simple else None
        text = self.texts[name]
        if text is not None:
            pos = text.find("\n" + ",".join(key) + ",")
            # the newline that ends line n is the n-th: the key's line is the next one
            return None if pos < 0 else text.count("\n", 0, pos) + 2
        if name not in self.read:
            width = len(key)
            rows: dict[tuple[str, ...], int] = {}
            for row, values in T.iter_rows(self.folder, name):
                rows.setdefault(tuple(values.values())[:width], row)
            self.read[name] = rows
        return self.read[name].get(key)


class _Linter:
    def __init__(self, folder: Path, policy: Any = None) -> None:
        self.folder = folder
        self.policy = policy
        self.findings: list[Finding] = []
        self.raw = _Raw()

    def add(self, severity: str, code: str, file: str, row: int | None, field: str, msg: str):
        self.findings.append(Finding(severity, code, file, row, field, msg))

    # ---- reading -----------------------------------------------------------------------
    def read(self, validated: bool) -> None:
        """Read every file; ``validated``: the grouper's validation passed, so the files it
        checks for repeated keys have none (only the dictionaries are checked here)."""
        for name in T.FILES:
            path = self.folder / name
            if validated and name not in _RAW_WHEN_VALID:
                continue  # taken from the validated tables; rows found on demand
            if not path.is_file():
                if name not in T.OPTIONAL_FILES:
                    self.add("error", "missing-file", name, None, "", "required file is missing")
                elif name == "drg_names.csv":
                    self.add(
                        "info", "no-names", name, None, "", "no drg_names.csv: DRGs have no names"
                    )
                continue
            rows: list[tuple[int, dict[str, str]]] = []
            try:
                rows = _plain_rows(path, T.FILES[name])
                if rows is None:
                    rows = []
                    for row, values in T.iter_rows(self.folder, name):
                        rows.append((row, values))
            except RulesetError as exc:
                self.add("error", "unreadable", name, exc.row, exc.column or "", exc.message)
            self.raw.rows[name] = rows
            if not validated or name in ("dx_dict.csv", "px_dict.csv"):
                self._duplicates(name, rows)

    def _duplicates(self, name: str, rows: list[tuple[int, dict[str, str]]]) -> None:
        spec = _KEYS.get(name)
        if spec is None:
            return
        keys, severity = spec
        first: dict[tuple[str, ...], tuple[int, dict[str, str]]] = {}
        kept: dict[tuple[str, ...], int] = {}
        for row, values in rows:
            key = tuple(values[k] for k in keys)
            if key in first:
                row0, values0 = first[key]
                label = ", ".join(f"{k} {v!r}" for k, v in zip(keys, key, strict=True))
                if values0 == values:
                    self.add(
                        "warning",
                        "duplicate-row",
                        name,
                        row,
                        keys[-1],
                        f"{label} repeats row {row0} exactly",
                    )
                else:
                    diff = [c for c in values if values[c] != values0[c]]
                    self.add(
                        severity,
                        "conflicting-rows",
                        name,
                        row,
                        diff[0],
                        f"{label} is also on row {row0} with a different "
                        + ", ".join(
                            f"{c} ({values0[c]!r} there, {values[c]!r} here)" for c in diff
                        ),
                    )
                continue
            first[key] = (row, values)
            kept[key] = row
        self.raw.first[name] = kept

    def unique(self, name: str) -> list[tuple[int, dict[str, str]]]:
        """Rows of ``name`` whose key was seen first on that row (duplicates dropped)."""
        rows = self.raw.table(name)
        if name not in self.raw.first:
            return rows  # not checked: no key repeats (the grouper's validation passed)
        kept = set(self.raw.first[name].values())
        return [(r, v) for r, v in rows if r in kept]


def _plain_rows(path: Path, header: tuple[str, ...]) -> list[tuple[int, dict[str, str]]] | None:
    """The rows of a table without any quote or carriage return, read by splitting lines and
    commas (what the CSV reader gives for such a file, with the same row numbers, and much
    faster on the 100,000-row tables); None when the file is not that simple or not regular
    (wrong header, a row with the wrong number of fields, an over-long value, not UTF-8): the
    CSV reader then reads it and names the problem."""
    data = path.read_bytes()
    if b'"' in data or b"\r" in data:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    lines = text.split("\n")
    if tuple(lines[0].split(",")) != header or max(map(len, lines)) > T.MAX_VALUE_BYTES // 4:
        return None
    width = len(header)
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue  # a blank line, as the CSV reader skips it
        values = line.split(",")
        if len(values) != width:
            return None
        rows.append((number, dict(zip(header, values, strict=True))))
    return rows


def lint_ruleset(ruleset: Any, policy: Any = None, *, as_table: bool = False):
    """Lint a ruleset: a registered id, a folder path or a :class:`~drgkit.Ruleset`.

    ``policy`` (a policy id, TOML path or :class:`~drgkit.settlement.Policy`) adds the check
    that every DRG the ruleset can return has a row in the policy's weights table.
    Returns the findings (errors first, then by file and row), or with ``as_table`` an Arrow
    table of them (:data:`FINDING_SCHEMA`).
    """
    from .._resolve import RESOLVER

    if isinstance(ruleset, (str, os.PathLike)) and Path(ruleset).is_dir():
        folder = Path(ruleset)  # linted even when its meta.csv would not load
    else:
        folder = _folder(RESOLVER.ruleset(ruleset), ruleset)
    pol = None if policy is None else RESOLVER.policy(policy)
    linter = _Linter(folder, pol)
    refused: RulesetError | None = None
    try:
        tables = T.read_tables(folder)
    except RulesetError as exc:
        refused = exc
    linter.read(validated=refused is None)
    model = _model_of_rows(linter) if refused is not None else _model_of_tables(tables, folder)
    _check(linter, model)
    if refused is not None:
        # the grouper's own validation stops at the first problem; say so unless a finding
        # above already names that place
        name = Path(refused.file).name if refused.file else ""
        if not any(
            f.severity == "error" and f.file == name and f.row == refused.row
            for f in linter.findings
        ):
            linter.add(
                "error",
                "load-error",
                name,
                refused.row,
                refused.column or "",
                f"drgkit refuses to load the ruleset: {refused.message}",
            )
    order = {s: k for k, s in enumerate(SEVERITIES)}
    findings = sorted(
        linter.findings,
        key=lambda f: (order[f.severity], f.file, f.row if f.row is not None else -1, f.code),
    )
    return findings_table(findings) if as_table else findings


def _folder(target: Any, spec: Any) -> Path:
    from ..errors import RegistryError
    from ._model import Ruleset

    if not isinstance(target, Ruleset):
        versions = ", ".join(v.id for v in target.ordered())
        raise RegistryError(f"{spec!s} is a region: name one version to lint ({versions})")
    return Path(target.info.path)


# --------------------------------------------------------------------------- checks


@attrs.define
class _Model:
    """The tables as the checks see them, from the raw rows or from the validated tables."""

    rules: dict[str, list[T.Atom]]
    #: list id -> {code: tag}, with SS_VALID
    lists: dict[str, dict[str, str]]
    #: mcc, cc, pdx_excl, dx_map, px_map: code -> excl_table or target
    tables: dict[str, dict[str, str]]
    mdcs: list[tuple[float, str, str, int]]  # (seq, mdc, rule id, row), by seq
    entries: list[T.EntryRow]
    steps: dict[str, list[T.StepRow]]
    #: (file, key columns' values) -> the row, or None
    row_of: Callable[[str, tuple[str, ...]], int | None]


def _model_of_tables(tables: T.RulesetTables, folder: Path) -> _Model:
    steps: dict[str, list[T.StepRow]] = {}
    for step in tables.steps:
        steps.setdefault(step.entry, []).append(step)
    return _Model(
        rules={rid: list(atoms) for rid, atoms in tables.rules.items()},
        lists=tables.lists,
        tables={
            "mcc.csv": tables.mcc,
            "cc.csv": tables.cc,
            "pdx_excl.csv": tables.pdx_excl,
            "dx_map.csv": tables.dx_map or {},
            "px_map.csv": tables.px_map or {},
        },
        mdcs=[(m.seq, m.mdc, m.rule_id, m.row) for m in tables.mdcs],
        entries=list(tables.entries),
        steps=steps,
        row_of=_RowFinder(folder),
    )


def _model_of_rows(lt: _Linter) -> _Model:
    u = lt.unique
    rules: dict[str, list[T.Atom]] = {}
    for row, v in u("rules.csv"):
        if not v["rule_id"] or not v["template"] or not v["seq"].isdigit():
            bad = next(c for c in ("rule_id", "seq", "template") if not _ok_rule_cell(c, v[c]))
            lt.add("error", "bad-value", "rules.csv", row, bad, f"{bad} {v[bad]!r} is not valid")
            continue
        rules.setdefault(v["rule_id"], []).append(
            T.Atom(
                v["rule_id"],
                int(v["seq"]),
                v["template"],
                v["list_id"],
                v["field"],
                v["op"],
                v["value"],
                row,
            )
        )
    for atoms in rules.values():
        atoms.sort(key=lambda a: a.seq)
    lists: dict[str, dict[str, str]] = {}
    for _row, v in u("lists.csv"):
        lists.setdefault(v["list_id"], {})[v["code"]] = v["tag"]
    lists[T.SS_VALID] = {v["code"]: "" for _row, v in u("ss_valid.csv")}
    tables = {
        name: {v["code"]: v[T.FILES[name][1]] for _row, v in u(name)}
        for name in ("mcc.csv", "cc.csv", "pdx_excl.csv", "dx_map.csv", "px_map.csv")
    }
    mdcs = sorted(
        ((int(v["seq"]) if v["seq"].isdigit() else math.inf, v["mdc"], v["rule_id"], row))
        for row, v in u("mdc.csv")
    )
    entries = [
        T.EntryRow(
            v["mdc"],
            int(v["seq"]) if v["seq"].isdigit() else 10**9,
            v["entry"],
            v["kind"],
            v["code"],
            v["rule_id"],
            v["fallback"],
            row,
        )
        for row, v in u("adrg.csv")
    ]
    steps: dict[str, list[T.StepRow]] = {}
    for row, v in u("adrg_drg.csv"):
        seq = int(v["seq"]) if v["seq"].isdigit() else 10**9
        steps.setdefault(v["entry"], []).append(
            T.StepRow(v["entry"], seq, v["drg"], v["rule_id"], row)
        )
    for s in steps.values():
        s.sort(key=lambda x: x.seq)
    first = lt.raw.first
    return _Model(
        rules,
        lists,
        tables,
        mdcs,
        entries,
        steps,
        lambda name, key: first.get(name, {}).get(key),
    )


def _check(lt: _Linter, model: _Model) -> None:
    rules, lists, tables = model.rules, model.lists, model.tables
    mdcs, entries, steps = model.mdcs, model.entries, model.steps
    mdc_rule = {m: (rid, row) for _s, m, rid, row in mdcs}
    entry_names = {e.entry for e in entries}

    # references to nothing
    def need_rule(rule_id: str, file: str, row: int) -> None:
        if rule_id not in rules:
            lt.add(
                "error",
                "unknown-rule",
                file,
                row,
                "rule_id",
                f"rule {rule_id!r} has no atoms in rules.csv",
            )

    for _s, _m, rid, row in mdcs:
        need_rule(rid, "mdc.csv", row)
    for e in entries:
        need_rule(e.rule_id, "adrg.csv", e.row)
        if e.mdc not in mdc_rule:
            lt.add(
                "error", "unknown-mdc", "adrg.csv", e.row, "mdc", f"MDC {e.mdc!r} is not in mdc.csv"
            )
        if e.kind == "ADRG" and not steps.get(e.entry) and not e.fallback:
            lt.add(
                "warning",
                "entry-returns-nothing",
                "adrg.csv",
                e.row,
                "entry",
                f"entry {e.entry} has no DRG step and no fallback: it never returns a code",
            )
    for entry, ss in steps.items():
        for s in ss:
            need_rule(s.rule_id, "adrg_drg.csv", s.row)
            if entry not in entry_names:
                lt.add(
                    "error",
                    "unknown-entry",
                    "adrg_drg.csv",
                    s.row,
                    "entry",
                    f"entry {entry!r} is not in adrg.csv",
                )
    for atoms in rules.values():
        for a in atoms:
            if a.list_id and a.list_id not in lists:
                # well defined (the atom matches nothing) but surely not what the author meant
                lt.add(
                    "warning",
                    "empty-list",
                    "rules.csv",
                    a.row,
                    "list_id",
                    f"list {a.list_id!r} has no codes in lists.csv: {a.template} over it "
                    "matches nothing",
                )
    contents = {"ss_valid.csv": lists.get(T.SS_VALID)}
    contents.update((n, tables[n]) for n in ("mcc.csv", "cc.csv", "pdx_excl.csv"))
    for name, members in contents.items():
        if (lt.folder / name).is_file() and not members:
            lt.add("warning", "empty-table", name, None, "", f"{name} has no rows")
    used_mdcs = {e.mdc for e in entries}
    for _s, m, _rid, row in mdcs:
        if m not in used_mdcs:
            lt.add(
                "warning",
                "mdc-without-entries",
                "mdc.csv",
                row,
                "mdc",
                f"MDC {m} has no entry in adrg.csv: its cases fall through to the next MDC",
            )
    used_lists = {a.list_id for atoms in rules.values() for a in atoms if a.list_id}
    for lid in sorted(set(lists) - used_lists - {T.SS_VALID}):
        lt.add(
            "info",
            "unused-list",
            "lists.csv",
            model.row_of("lists.csv", (lid, next(iter(lists[lid])))),
            "list_id",
            f"list {lid} is used by no rule",
        )
    referenced = (
        {rid for _s, _m, rid, _r in mdcs}
        | {e.rule_id for e in entries}
        | {s.rule_id for ss in steps.values() for s in ss}
    )
    for rid in sorted(set(rules) - referenced):
        lt.add(
            "info",
            "unused-rule",
            "rules.csv",
            rules[rid][0].row,
            "rule_id",
            f"rule {rid} is referenced by no MDC, entry or step",
        )

    _check_codes(lt, model)
    _check_names(lt, entries, steps)
    _check_reach(lt, rules, lists, mdcs, entries, steps)


def _ok_rule_cell(column: str, value: str) -> bool:
    return value.isdigit() if column == "seq" else bool(value)


def _dictionary(lt: _Linter, name: str) -> set[str] | None:
    if name not in lt.raw.rows:
        return None
    return {v["code"] for _r, v in lt.raw.rows[name]}


def _check_codes(lt: _Linter, model: _Model) -> None:
    """Codes in lists, CC/MCC tables and maps that the dictionaries do not know."""
    rules, lists, tables, row_of = model.rules, model.lists, model.tables, model.row_of
    dx = _dictionary(lt, "dx_dict.csv")
    px = _dictionary(lt, "px_dict.csv")
    kinds: dict[str, set[str]] = {}
    for atoms in rules.values():
        for a in atoms:
            if a.list_id and a.template in _DX_TEMPLATES:
                kinds.setdefault(a.list_id, set()).add("dx")
            elif a.list_id and a.template in _PX_TEMPLATES:
                kinds.setdefault(a.list_id, set()).add("px")
    for lid, members in lists.items():
        kind = kinds.get(lid, set()) if lid != T.SS_VALID else set()
        for code in members:
            _unknown_list_code(lt, lid, code, kind, dx, px, row_of)
    if px is not None:
        for code in lists.get(T.SS_VALID, ()):
            if code not in px:
                lt.add(
                    "warning",
                    "unknown-code",
                    "ss_valid.csv",
                    row_of("ss_valid.csv", (code,)),
                    "code",
                    f"procedure {code!r} is not in px_dict.csv",
                )
    _check_tables(lt, tables, dx, px, row_of)


def _unknown_list_code(
    lt: _Linter,
    lid: str,
    code: str,
    kind: set[str],
    dx: set[str] | None,
    px: set[str] | None,
    row_of,
) -> None:
    if kind == {"dx"} and dx is not None and code not in dx:
        what = f"diagnosis {code!r} of list {lid} is not in dx_dict.csv"
    elif kind == {"px"} and px is not None and code not in px:
        what = f"procedure {code!r} of list {lid} is not in px_dict.csv"
    else:
        return
    lt.add("warning", "unknown-code", "lists.csv", row_of("lists.csv", (lid, code)), "code", what)


def _check_tables(
    lt: _Linter,
    tables: dict[str, dict[str, str]],
    dx: set[str] | None,
    px: set[str] | None,
    row_of,
) -> None:
    """CC/MCC/exclusion codes and map targets the dictionaries do not know; exclusion tables
    named on one side only."""
    for name in ("mcc.csv", "cc.csv", "pdx_excl.csv"):
        if dx is None:
            break
        for code in tables[name]:
            if code not in dx:
                lt.add(
                    "warning",
                    "unknown-code",
                    name,
                    row_of(name, (code,)),
                    "code",
                    f"diagnosis {code!r} is not in dx_dict.csv",
                )
    for name, dictionary, what in (
        ("dx_map.csv", dx, "dx_dict.csv"),
        ("px_map.csv", px, "px_dict.csv"),
    ):
        if dictionary is None:
            continue
        for code, target in tables[name].items():
            if target not in dictionary and target not in ("", "-"):
                lt.add(
                    "warning",
                    "map-target-unknown",
                    name,
                    row_of(name, (code,)),
                    "target",
                    f"{code!r} maps to {target!r}, which is not in {what}",
                )
    used = set(tables["pdx_excl.csv"].values())
    for name in ("mcc.csv", "cc.csv"):
        never: dict[str, str] = {}  # table id -> its first code
        for code, t in tables[name].items():
            if t not in used:
                never.setdefault(t, code)
        for t, code in never.items():
            lt.add(
                "info",
                "exclusion-unused",
                name,
                row_of(name, (code,)),
                "excl_table",
                f"no principal diagnosis in pdx_excl.csv points at exclusion table {t!r}: "
                f"its {name[:-4].upper()}s are never excluded",
            )
    known = set(tables["mcc.csv"].values()) | set(tables["cc.csv"].values())
    orphan: dict[str, str] = {}
    for code, t in tables["pdx_excl.csv"].items():
        if t not in known:
            orphan.setdefault(t, code)
    for t, code in orphan.items():
        lt.add(
            "warning",
            "exclusion-unknown",
            "pdx_excl.csv",
            row_of("pdx_excl.csv", (code,)),
            "excl_table",
            f"exclusion table {t!r} is not used by any row of mcc.csv or cc.csv: "
            "principal diagnoses pointing at it exclude nothing",
        )


def _check_names(lt: _Linter, entries: list[T.EntryRow], steps: dict[str, list[T.StepRow]]):
    """DRGs without a name, names without a DRG, DRGs without a weight (with a policy)."""
    drgs: dict[str, int] = {}
    for ss in steps.values():
        for s in ss:
            drgs.setdefault(s.drg, s.row)
    if "drg_names.csv" in lt.raw.rows:
        named = {v["drg"] for _r, v in lt.raw.rows["drg_names.csv"] if v["name"].strip()}
        for drg, row in sorted(drgs.items(), key=lambda kv: kv[1]):
            if drg not in named:
                lt.add(
                    "warning",
                    "drg-without-name",
                    "adrg_drg.csv",
                    row,
                    "drg",
                    f"DRG {drg} has no name in drg_names.csv",
                )
        results = set(drgs) | {e.code for e in entries} | {e.fallback for e in entries}
        for row, v in lt.unique("drg_names.csv"):
            if v["drg"] not in results:
                lt.add(
                    "info",
                    "name-without-drg",
                    "drg_names.csv",
                    row,
                    "drg",
                    f"{v['drg']} is named but no entry or step returns it",
                )
    if lt.policy is not None:
        weights = lt.policy.weights.rows
        label = lt.policy.label
        for drg, row in sorted(drgs.items(), key=lambda kv: kv[1]):
            got = weights.get(drg)
            if got is None:
                lt.add(
                    "error",
                    "drg-without-weight",
                    "adrg_drg.csv",
                    row,
                    "drg",
                    f"DRG {drg} has no row in the weights table of policy {label}",
                )
            elif got.rw is None and got.points is None:
                lt.add(
                    "warning",
                    "drg-without-weight",
                    "adrg_drg.csv",
                    row,
                    "drg",
                    f"DRG {drg} has a row but no weight in policy {label} "
                    f"(weights table row {got.row})",
                )


# --------------------------------------------------------------------------- reachability


@attrs.define
class _Interval:
    lo: float = -math.inf
    lo_in: bool = False
    hi: float = math.inf
    hi_in: bool = False

    def meet(self, op: str, v: float) -> None:
        if op in (">", ">=", "=="):
            inc = op != ">"
            if v > self.lo or (v == self.lo and not inc):
                self.lo, self.lo_in = v, inc
        if op in ("<", "<=", "=="):
            inc = op != "<"
            if v < self.hi or (v == self.hi and not inc):
                self.hi, self.hi_in = v, inc

    @property
    def empty(self) -> bool:
        return self.lo > self.hi or (self.lo == self.hi and not (self.lo_in and self.hi_in))

    def contains(self, v: float) -> bool:
        above = v > self.lo or (v == self.lo and self.lo_in)
        below = v < self.hi or (v == self.hi and self.hi_in)
        return above and below

    def implies(self, op: str, v: float) -> bool:
        if op == "==":
            return self.lo == self.hi == v and self.lo_in and self.hi_in
        if op == "!=":
            return not self.contains(v)
        if op == "<":
            return self.hi < v or (self.hi == v and not self.hi_in)
        if op == "<=":
            return self.hi <= v
        if op == ">":
            return self.lo > v or (self.lo == v and not self.lo_in)
        if op == ">=":
            return self.lo >= v
        return False


def _key(a: T.Atom) -> tuple[str, ...]:
    return (a.template, a.list_id, a.field, a.op, a.value)


class _Facts:
    """What is known about a case once a set of atoms all held (conservative: may know less)."""

    def __init__(self, sets: dict[str, frozenset[str]], text_fields: frozenset[str]) -> None:
        self.sets = sets
        self.text_fields = text_fields
        self.atoms: set[tuple[str, ...]] = set()
        self.false = False  # a FALSE atom: the conjunction never holds
        self.raises = ""  # a RAISE atom (its value): never holds, errors when reached
        self.contradiction = ""  # why the atoms can never hold together
        self.pdx: frozenset[str] | None = None
        self.pproc: frozenset[str] | None = None
        self.lists: dict[str, list[frozenset[str]]] = {}
        self.flags: set[str] = set()
        self.num: dict[tuple[str, str], _Interval] = {}
        self.text: dict[str, frozenset[str]] = {}
        self.truthy: set[str] = set()
        self.regions: dict[str, int] = {}

    def copy(self) -> _Facts:
        new = _Facts(self.sets, self.text_fields)
        new.atoms = set(self.atoms)
        new.false, new.contradiction, new.raises = self.false, self.contradiction, self.raises
        new.pdx, new.pproc = self.pdx, self.pproc
        new.lists = {k: list(v) for k, v in self.lists.items()}
        new.flags = set(self.flags)
        new.num = {k: attrs.evolve(v) for k, v in self.num.items()}
        new.text = dict(self.text)
        new.truthy = set(self.truthy)
        new.regions = dict(self.regions)
        return new

    def set_of(self, a: T.Atom) -> frozenset[str]:
        return self.sets.get(a.list_id, frozenset())

    def add_all(self, atoms: Iterable[T.Atom]) -> _Facts:
        for a in atoms:
            self.add(a)
        return self

    def add(self, a: T.Atom) -> None:
        self.atoms.add(_key(a))
        t = a.template
        if t == "FALSE":
            self.false = True
        elif t == "RAISE":
            self.raises = self.raises or a.value or "RAISE"
        elif t == "PDX_IN":
            s = self.set_of(a)
            self.pdx = s if self.pdx is None else self.pdx & s
            if not self.pdx:
                self.contradiction = "no principal diagnosis is in all of its lists"
        elif t == "PPROC_IN":
            s = self.set_of(a)
            self.pproc = s if self.pproc is None else self.pproc & s
            self.flags.add("HAS_PROC")
            if not self.pproc:
                self.contradiction = "no principal procedure is in all of its lists"
        elif t in ("ANY_DX_IN", "SDX_IN", "ANY_PROC_IN", "SPROC_IN", "NO_PROC_IN", "NO_DX_IN"):
            self.lists.setdefault(t, []).append(self.set_of(a))
            if t in ("ANY_PROC_IN", "SPROC_IN"):
                self.flags.add("HAS_PROC")
        elif t == "NO_SDX_IN":
            self.lists.setdefault(t, []).append(self.set_of(a))
        elif t in ("PDX_NOT_IN", "PPROC_NOT_IN"):
            self.lists.setdefault(t, []).append(self.set_of(a))
            if t == "PDX_NOT_IN" and self.pdx is not None:
                self.pdx = self.pdx - self.set_of(a)
                if not self.pdx:
                    self.contradiction = "every principal diagnosis allowed is also excluded"
        elif t in ("HAS_PROC", "HAS_MCC", "HAS_CC", "HAS_CC_OR_MCC"):
            self.flags.add(t)
        elif t in ("CMP", "CMP_INT"):
            value = T.parse_number(a.value)
            if value is not None and a.field not in self.text_fields and a.op != "!=":
                iv = self.num.setdefault((t, a.field), _Interval())
                iv.meet(a.op, value)
                if iv.empty:
                    self.contradiction = f"{a.field} cannot satisfy all its comparisons"
        elif t in ("CMP_STR", "TEXT_IN"):
            if t == "CMP_STR" and a.op == "==":
                allowed = frozenset({a.value})
            elif t == "TEXT_IN":
                allowed = frozenset(a.value.split("|"))
            else:
                return
            old = self.text.get(a.field)
            self.text[a.field] = allowed if old is None else old & allowed
            if not self.text[a.field]:
                self.contradiction = f"{a.field} cannot equal all its texts"
        elif t == "TRUTHY":
            self.truthy.add(a.field)
        elif t == "MULTI_REGION" and a.value.isdigit():
            self.regions[a.list_id] = max(self.regions.get(a.list_id, 0), int(a.value))

    # ---- does every case with these facts satisfy atom a? ------------------------------
    def implies(self, a: T.Atom) -> bool:
        if self.false or self.contradiction or self.raises:
            return True  # vacuous: nothing satisfies the facts
        if _key(a) in self.atoms:
            return True
        t = a.template
        s = self.set_of(a)
        subset = lambda k: any(x <= s for x in self.lists.get(k, ()))  # noqa: E731
        superset = lambda k: any(s <= x for x in self.lists.get(k, ()))  # noqa: E731
        if t in ("TRUE", "NOT_NONE"):
            return True
        if t == "PDX_IN":
            return self.pdx is not None and self.pdx <= s
        if t == "PDX_NOT_IN":
            return (self.pdx is not None and not (self.pdx & s)) or superset("PDX_NOT_IN")
        if t == "ANY_DX_IN":
            return (
                (self.pdx is not None and self.pdx <= s) or subset("ANY_DX_IN") or subset("SDX_IN")
            )
        if t == "SDX_IN":
            return subset("SDX_IN")
        if t == "NO_DX_IN":
            return superset("NO_DX_IN")
        if t == "NO_SDX_IN":
            return superset("NO_SDX_IN") or superset("NO_DX_IN")
        if t == "HAS_PROC":
            return "HAS_PROC" in self.flags
        if t == "PPROC_IN":
            return self.pproc is not None and self.pproc <= s
        if t == "PPROC_NOT_IN":
            return (
                (self.pproc is not None and not (self.pproc & s))
                or superset("PPROC_NOT_IN")
                or superset("NO_PROC_IN")
            )
        if t == "ANY_PROC_IN":
            return (
                (self.pproc is not None and self.pproc <= s)
                or subset("ANY_PROC_IN")
                or subset("SPROC_IN")
            )
        if t == "SPROC_IN":
            return subset("SPROC_IN")
        if t == "NO_PROC_IN":
            return superset("NO_PROC_IN")
        if t in ("HAS_MCC", "HAS_CC"):
            return t in self.flags
        if t == "HAS_CC_OR_MCC":
            return bool({"HAS_MCC", "HAS_CC", "HAS_CC_OR_MCC"} & self.flags)
        if t == "MULTI_REGION":
            return a.value.isdigit() and self.regions.get(a.list_id, -1) >= int(a.value)
        if t in ("CMP", "CMP_INT"):
            value = T.parse_number(a.value)
            iv = self.num.get((t, a.field))
            if value is None or iv is None or a.field in self.text_fields:
                return False
            return iv.implies(a.op, value)
        if t == "CMP_STR":
            allowed = self.text.get(a.field)
            if allowed is None:
                return False
            return allowed == {a.value} if a.op == "==" else a.op == "!=" and a.value not in allowed
        if t == "TEXT_IN":
            allowed = self.text.get(a.field)
            return allowed is not None and allowed <= set(a.value.split("|"))
        if t == "TRUTHY":
            if a.field in self.truthy:
                return True
            allowed = self.text.get(a.field)
            if allowed is not None and "" not in allowed:
                return True
            for kind in ("CMP", "CMP_INT"):
                iv = self.num.get((kind, a.field))
                if iv is not None and a.field not in self.text_fields and not iv.contains(0):
                    return True
            return False
        return False  # FALSE, RAISE, templates the prover does not know

    def implies_all(self, atoms: Iterable[T.Atom]) -> bool:
        return all(self.implies(a) for a in atoms)


#: an atom nothing satisfies: facts imply it only when they can never hold
_NEVER = T.Atom("", 0, "FALSE", "", "", "", "", 0)


def _check_reach(lt, rules, lists, mdcs, entries, steps) -> None:
    """Disabled, never-true, shadowed entries and unreachable DRG steps (proven only)."""
    meta = {v["key"]: v["value"] for _r, v in lt.raw.table("meta.csv")}
    text_fields = frozenset(meta.get("text_fields", "").split())
    sets = {lid: frozenset(members) for lid, members in lists.items()}

    unknown: dict[str, list[int]] = {}
    for atoms in rules.values():
        for a in atoms:
            if a.template not in _KNOWN:
                unknown.setdefault(a.template, []).append(a.row)
    for template, rows in sorted(unknown.items()):
        lt.add(
            "info",
            "not-analysed",
            "rules.csv",
            min(rows),
            "template",
            f"template {template} ({len(rows)} atom(s)) is not understood by lint: rules using "
            "it are compared only atom by atom when proving shadowing",
        )

    def atoms_of(rule_id: str) -> list[T.Atom]:
        return rules.get(rule_id, [])

    def holds(f: _Facts, rule_id: str) -> bool:
        # a rule with no atoms is an unknown-rule error, not a rule that always holds
        return rule_id in rules and f.implies_all(rules[rule_id])

    def facts(*rule_ids: str) -> _Facts:
        f = _Facts(sets, text_fields)
        for rid in rule_ids:
            f.add_all(atoms_of(rid))
        return f

    mdc_order = {m: k for k, (_s, m, _rid, _row) in enumerate(mdcs)}
    mdc_rule = {m: rid for _s, m, rid, _row in mdcs}
    for _s, m, rid, row in mdcs:
        f = facts(rid)
        if f.false:
            lt.add(
                "info",
                "disabled",
                "mdc.csv",
                row,
                "rule_id",
                f"MDC {m}'s rule {rid} contains FALSE: no case enters it",
            )
        elif f.contradiction or f.raises:
            why = f.contradiction or f"its rule raises an error when reached ({f.raises})"
            lt.add(
                "warning",
                "never-true",
                "mdc.csv",
                row,
                "rule_id",
                f"MDC {m} can never be entered: {why}",
            )
    ordered = sorted(
        (e for e in entries if e.mdc in mdc_order), key=lambda e: (mdc_order[e.mdc], e.seq)
    )
    context = {e.entry: facts(mdc_rule[e.mdc], e.rule_id) for e in ordered}
    mdc_facts_dead = {m for m in mdc_rule if facts(mdc_rule[m]).implies(_NEVER)}

    def returns(a: T.EntryRow, f: _Facts) -> bool:
        """Does entry ``a`` return a code for every case with facts ``f`` (its rule held)?"""
        if a.kind == "QY" or a.fallback:
            return True
        g = f.copy().add_all(atoms_of(a.rule_id))
        return any(holds(g, s.rule_id) for s in steps.get(a.entry, ()))

    for k, b in enumerate(ordered):
        f = context[b.entry]
        if b.mdc in mdc_facts_dead or b.rule_id not in rules or mdc_rule[b.mdc] not in rules:
            continue
        if f.false:
            lt.add(
                "info",
                "disabled",
                "adrg.csv",
                b.row,
                "rule_id",
                f"entry {b.entry}: rule {b.rule_id} contains FALSE, so the entry is never taken",
            )
            continue
        if f.contradiction or f.raises:
            why = f.contradiction or f"its rule raises an error when reached ({f.raises})"
            lt.add(
                "warning",
                "never-true",
                "adrg.csv",
                b.row,
                "rule_id",
                f"entry {b.entry} can never be taken: {why}",
            )
            continue
        enters: dict[str, bool] = {}  # MDC -> do b's cases satisfy its rule?
        for a in ordered[:k]:
            if a.mdc != b.mdc:
                if a.mdc not in enters:
                    enters[a.mdc] = holds(f, mdc_rule[a.mdc])
                if not enters[a.mdc]:
                    continue
            if holds(f, a.rule_id) and returns(a, f):
                where = "" if a.mdc == b.mdc else f" in MDC {a.mdc}"
                lt.add(
                    "warning",
                    "shadowed-entry",
                    "adrg.csv",
                    b.row,
                    "entry",
                    f"entry {b.entry} ({b.mdc} seq {b.seq}) is never reached: every case that "
                    f"satisfies its conditions is caught first by {a.entry}{where} "
                    f"(adrg.csv row {a.row})",
                )
                break
        # DRG steps of b: a step whose conditions imply an earlier step's never returns
        ss = steps.get(b.entry, [])
        for j, t in enumerate(ss):
            if t.rule_id not in rules:
                continue
            g = f.copy().add_all(atoms_of(t.rule_id))
            if g.false:
                lt.add(
                    "info",
                    "disabled",
                    "adrg_drg.csv",
                    t.row,
                    "rule_id",
                    f"step {t.drg} of {b.entry}: rule {t.rule_id} contains FALSE",
                )
                continue
            if g.contradiction or g.raises:
                why = g.contradiction or f"its rule raises an error when reached ({g.raises})"
                lt.add(
                    "warning",
                    "never-true",
                    "adrg_drg.csv",
                    t.row,
                    "rule_id",
                    f"step {t.drg} of {b.entry} can never be taken: {why}",
                )
                continue
            for s in ss[:j]:
                if holds(g, s.rule_id):
                    lt.add(
                        "warning",
                        "unreachable-step",
                        "adrg_drg.csv",
                        t.row,
                        "drg",
                        f"DRG {t.drg} of {b.entry} is never returned: every case that "
                        f"satisfies its conditions gets {s.drg} first (adrg_drg.csv row {s.row})",
                    )
                    break
