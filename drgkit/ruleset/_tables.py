"""Read and validate a ruleset folder in the neutral CSV layout (format version 1).

The layout is defined in ``FORMAT.md`` of the reference data (and summarised in the README).
Everything here is about *tables*: parse each file, check every row, and cross-check the
references between files. A problem raises :class:`~drgkit.errors.RulesetError` naming the file,
the row (its line number, the header being row 1) and the column. Harmless oddities (an unused
list, a rule nobody references) are collected as warnings instead.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from .._versions import iter_csv, tables_hash
from ..errors import RulesetError

FORMAT_VERSION = "1"

#: file -> its exact header. Files marked optional may be absent.
FILES: dict[str, tuple[str, ...]] = {
    "meta.csv": ("key", "value"),
    "mdc.csv": ("seq", "mdc", "rule_id"),
    "adrg.csv": ("mdc", "seq", "entry", "kind", "code", "rule_id", "fallback"),
    "adrg_drg.csv": ("entry", "seq", "drg", "rule_id"),
    "rules.csv": ("rule_id", "seq", "template", "list_id", "field", "op", "value"),
    "lists.csv": ("list_id", "code", "tag"),
    "ss_valid.csv": ("code", "name"),
    "mcc.csv": ("code", "excl_table"),
    "cc.csv": ("code", "excl_table"),
    "pdx_excl.csv": ("code", "excl_table"),
    "drg_names.csv": ("drg", "name"),
    "dx_dict.csv": ("code", "name"),
    "px_dict.csv": ("code", "name"),
    "dx_map.csv": ("code", "target"),
    "px_map.csv": ("code", "target"),
}
#: the longest value a table may hold (UTF-8 bytes): codes are looked up by length in 16 bits
MAX_VALUE_BYTES = 0xFFFF

OPTIONAL_FILES = frozenset(
    {"drg_names.csv", "dx_dict.csv", "px_dict.csv", "dx_map.csv", "px_map.csv"}
)
#: Files that only inform (names): not needed to group, read lazily for explanations.
INFO_FILES = ("drg_names.csv", "dx_dict.csv", "px_dict.csv")

SS_VALID = "SS_VALID"

#: Rule fields, as the tables name them.
FIELDS = ("gender", "age", "ageDay", "weight", "dept", "los", "leavingType", "icuHours")
OPS = ("==", "!=", "<", "<=", ">", ">=")

# template -> (takes a list, list must be tagged, takes field, takes op/value)
TEMPLATES: dict[str, tuple[bool, bool, bool, bool]] = {
    "TRUE": (False, False, False, False),
    "FALSE": (False, False, False, False),
    "PDX_IN": (True, False, False, False),
    "ANY_DX_IN": (True, False, False, False),
    "SDX_IN": (True, False, False, False),
    "NO_DX_IN": (True, False, False, False),
    "NO_SDX_IN": (True, False, False, False),
    "HAS_PROC": (False, False, False, False),
    "PPROC_IN": (True, False, False, False),
    "ANY_PROC_IN": (True, False, False, False),
    "NO_PROC_IN": (True, False, False, False),
    "PROC_TAGS": (True, True, False, True),
    "MULTI_REGION": (True, True, False, True),
    "HAS_MCC": (False, False, False, False),
    "HAS_CC": (False, False, False, False),
    "HAS_CC_OR_MCC": (False, False, False, False),
    "CMP": (False, False, True, True),
    "CMP_INT": (False, False, True, True),
    "CMP_STR": (False, False, True, True),
    "TRUTHY": (False, False, True, False),
    "NOT_NONE": (False, False, True, False),
    # added by the later regional rulesets (kept after the first ones: ids are stable)
    "SPROC_IN": (True, False, False, False),
    "PDX_NOT_IN": (True, False, False, False),
    "PPROC_NOT_IN": (True, False, False, False),
    "TEXT_IN": (False, False, True, True),
    "RAISE": (False, False, False, True),
}

#: meta.csv keys that change behaviour (FORMAT §2, §4, §5) -> the values each may take
#: (None: any text). A ruleset without them behaves as the five original ones.
BEHAVIOUR_KEYS: dict[str, tuple[str, ...] | None] = {
    "text_fields": None,
    "check_gender": ("text",),
    "check_newborn_weight": ("required",),
    "check_failed_codes": None,
    "retry_secondary_procedures": ("each",),
    "fail_drg": None,
    "fail_mdc_drg": None,
}
#: the scalar fields ``text_fields`` may name
TEXT_FIELD_NAMES = FIELDS

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_TAG_EXPR = re.compile(r"[^+|]+(\+[^+|]+)*(\|[^+|]+(\+[^+|]+)*)*")

MAX_TAGS_PER_LIST = 63


def parse_number(text: str) -> int | float | None:
    """The number a field or value text denotes under FORMAT §2, or None if it is text."""
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return None


@attrs.frozen(slots=True)
class Atom:
    rule_id: str
    seq: int
    template: str
    list_id: str
    field: str
    op: str
    value: str
    row: int


@attrs.frozen(slots=True)
class MdcRow:
    seq: int
    mdc: str
    rule_id: str
    row: int


@attrs.frozen(slots=True)
class EntryRow:
    mdc: str
    seq: int
    entry: str
    kind: str
    code: str
    rule_id: str
    fallback: str
    row: int


@attrs.frozen(slots=True)
class StepRow:
    entry: str
    seq: int
    drg: str
    rule_id: str
    row: int


@attrs.frozen(slots=True)
class RulesetMeta:
    """What ``meta.csv`` says about the ruleset (provenance keys may repeat)."""

    entries: tuple[tuple[str, str], ...]

    def get(self, key: str, default: str = "") -> str:
        for k, v in self.entries:
            if k == key:
                return v
        return default

    def all(self, key: str) -> list[str]:
        return [v for k, v in self.entries if k == key]


@attrs.frozen(slots=True)
class Behaviour:
    """How a ruleset reads, checks and reports a case: the behaviour keys of ``meta.csv``.

    The defaults are the behaviour of the five original rulesets (none has any key).
    """

    #: fields that are always text (FORMAT §2), in FIELDS order
    text_fields: tuple[str, ...] = ()
    #: sex check: "" (numbers 1/2, texts 1/2/男/女) or "text" (only the texts 1/2)
    check_gender: str = ""
    #: "required": a newborn (age 0, at most 28 days) needs a birth weight
    check_newborn_weight: str = ""
    #: mdc, adrg, drg reported for CHECK_FAILED (and the translation statuses)
    check_failed_codes: tuple[str, str, str] = ("0000", "00", "0000")
    #: "each": a failed case is grouped again with each secondary procedure alone (FORMAT §4)
    retry_secondary_procedures: str = ""
    #: the drg reported for a FAIL result ``0000`` and for an MDC-level ``X00`` result
    fail_drg: str = "0000"
    fail_mdc_drg: str = "0000"

    @classmethod
    def from_meta(cls, meta: RulesetMeta, path: Path) -> Behaviour:
        """Read and check the behaviour keys; a bad value names meta.csv and its row."""
        values: dict[str, object] = {}
        for row, (key, value) in enumerate(meta.entries, start=2):
            allowed = BEHAVIOUR_KEYS.get(key, ())
            if allowed == ():
                continue  # an information-only key
            if key in values:
                raise RulesetError(
                    f"behaviour key {key} is given twice", file=path, row=row, column="key"
                )
            if allowed is not None and value not in allowed:
                raise RulesetError(
                    f"{key} must be {' or '.join(allowed)}, got {value!r}",
                    file=path,
                    row=row,
                    column="value",
                )
            if key == "text_fields":
                names = value.split()
                unknown = [n for n in names if n not in TEXT_FIELD_NAMES]
                if unknown or not names:
                    raise RulesetError(
                        f"text_fields must name fields among {', '.join(TEXT_FIELD_NAMES)} "
                        f"separated by spaces, got {value!r}",
                        file=path,
                        row=row,
                        column="value",
                    )
                values[key] = tuple(f for f in FIELDS if f in names)
            elif key == "check_failed_codes":
                parts = value.split("/")
                if len(parts) != 3:
                    raise RulesetError(
                        f"check_failed_codes must be mdc/adrg/drg (three parts separated by "
                        f"'/', e.g. '//' for three empty ones), got {value!r}",
                        file=path,
                        row=row,
                        column="value",
                    )
                values[key] = tuple(parts)
            elif key in ("fail_drg", "fail_mdc_drg"):
                if not value:
                    raise RulesetError(
                        f"{key} must not be empty", file=path, row=row, column="value"
                    )
                values[key] = value
            else:
                values[key] = value
        return cls(**values)

    def is_text(self, field: str) -> bool:
        return field in self.text_fields


@attrs.frozen(slots=True, eq=False)
class RulesetTables:
    """A ruleset folder, parsed and validated. Plain Python structures, not yet compiled."""

    folder: Path
    content_hash: str
    meta: RulesetMeta
    behaviour: Behaviour
    mdcs: tuple[MdcRow, ...]
    entries: tuple[EntryRow, ...]
    steps: tuple[StepRow, ...]
    rules: dict[str, tuple[Atom, ...]]
    #: list id -> {code: tag}; tag is '' in untagged lists. Includes ``SS_VALID``.
    lists: dict[str, dict[str, str]]
    mcc: dict[str, str]
    cc: dict[str, str]
    pdx_excl: dict[str, str]
    dx_map: dict[str, str] | None
    px_map: dict[str, str] | None
    warnings: tuple[str, ...]


# --------------------------------------------------------------------------- reading


def content_hash(folder: Path) -> str:
    """SHA-256 over the names and bytes of every table file of the ruleset, in name order."""
    return tables_hash(folder, f"drgkit-ruleset-format-{FORMAT_VERSION}", FILES)


def _exact_header(expected: tuple[str, ...], path: Path) -> Callable[[list[str]], tuple[str, ...]]:
    """A header check: the columns must be exactly ``expected``, in that order."""

    def check(header: list[str]) -> tuple[str, ...]:
        if tuple(header) != expected:
            missing = [c for c in expected if c not in header]
            extra = [c for c in header if c not in expected]
            what = []
            if missing:
                what.append(f"missing {missing}")
            if extra:
                what.append(f"unexpected {extra}")
            if not what:
                what.append("columns out of order")
            raise RulesetError(
                f"header must be {','.join(expected)}; found {','.join(header)} "
                f"({'; '.join(what)})",
                file=path,
                row=1,
                column=(missing or extra or [None])[0],
            )
        return expected

    return check


def iter_rows(folder: Path, name: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(row number, {column: value})`` for each data row of one file, checking shape."""
    path = folder / name
    for row, values in iter_csv(path, RulesetError, _exact_header(FILES[name], path)):
        for column, value in values.items():
            # a text of at most MAX_VALUE_BYTES // 4 characters fits (≤ 4 bytes each)
            if len(value) > MAX_VALUE_BYTES // 4 and len(value.encode()) > MAX_VALUE_BYTES:
                raise RulesetError(
                    f"a value longer than {MAX_VALUE_BYTES} bytes (the code tables' limit)",
                    file=path,
                    row=row,
                    column=column,
                )
        yield row, values


def _seq(value: str, path: Path, row: int, column: str = "seq") -> int:
    if not re.fullmatch(r"[0-9]+", value):
        raise RulesetError(
            f"must be a whole number, got {value!r}", file=path, row=row, column=column
        )
    return int(value)


def _required(values: dict[str, str], columns: tuple[str, ...], path: Path, row: int) -> None:
    for column in columns:
        if values[column] == "":
            raise RulesetError("must not be empty", file=path, row=row, column=column)


def _code_table(folder: Path, name: str, value_column: str) -> dict[str, str]:
    path = folder / name
    table: dict[str, str] = {}
    first_row: dict[str, int] = {}
    for row, values in iter_rows(folder, name):
        _required(values, ("code", value_column), path, row)
        code = values["code"]
        if code in table:
            raise RulesetError(
                f"code {code!r} is listed twice (first on row {first_row[code]})",
                file=path,
                row=row,
                column="code",
            )
        table[code] = values[value_column]
        first_row[code] = row
    return table


def read_name_table(folder: Path, name: str) -> dict[str, str]:
    """Read one of the information-only name tables; a repeated key keeps its last name."""
    path = folder / name
    if not path.is_file():
        return {}
    key = FILES[name][0]
    names: dict[str, str] = {}
    for _row, values in iter_rows(folder, name):
        names[values[key]] = values["name"]
    return names


# --------------------------------------------------------------------------- validation


def read_tables(folder: str | Path) -> RulesetTables:
    """Parse and validate the ruleset folder; raise :class:`RulesetError` on the first problem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RulesetError("not a ruleset folder (no such directory)", file=folder)
    for name in FILES:
        if name not in OPTIONAL_FILES and not (folder / name).is_file():
            raise RulesetError(
                f"file is missing; a ruleset folder needs "
                f"{', '.join(n for n in FILES if n not in OPTIONAL_FILES)}",
                file=folder / name,
            )
    warnings: list[str] = []

    # meta.csv
    meta_path = folder / "meta.csv"
    meta_entries = []
    for row, values in iter_rows(folder, "meta.csv"):
        _required(values, ("key",), meta_path, row)
        meta_entries.append((values["key"], values["value"]))
    meta = RulesetMeta(tuple(meta_entries))
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise RulesetError(
            f"format_version must be {FORMAT_VERSION}, found {version or 'none'}",
            file=meta_path,
            column="value",
        )
    for key in ("effective_from", "effective_to"):
        text = meta.get(key)
        if text:
            try:
                dt.date.fromisoformat(text)
            except ValueError:
                raise RulesetError(
                    f"{key} must be a date YYYY-MM-DD, got {text!r}", file=meta_path, column="value"
                ) from None
    behaviour = Behaviour.from_meta(meta, meta_path)

    # lists.csv and ss_valid.csv
    lists_path = folder / "lists.csv"
    lists: dict[str, dict[str, str]] = {}
    list_rows: dict[tuple[str, str], int] = {}
    for row, values in iter_rows(folder, "lists.csv"):
        _required(values, ("list_id", "code"), lists_path, row)
        list_id, code = values["list_id"], values["code"]
        if list_id == SS_VALID:
            raise RulesetError(
                f"list id {SS_VALID} is reserved for ss_valid.csv",
                file=lists_path,
                row=row,
                column="list_id",
            )
        members = lists.setdefault(list_id, {})
        if code in members:
            raise RulesetError(
                f"code {code!r} appears twice in list {list_id} "
                f"(first on row {list_rows[list_id, code]})",
                file=lists_path,
                row=row,
                column="code",
            )
        members[code] = values["tag"]
        list_rows[list_id, code] = row
    for list_id, members in lists.items():
        tags = {t for t in members.values()}
        if "" in tags and len(tags) > 1:
            row = next(list_rows[list_id, c] for c, t in members.items() if t == "")
            raise RulesetError(
                f"list {list_id} is tagged, but this code has no tag",
                file=lists_path,
                row=row,
                column="tag",
            )
        if len(tags - {""}) > MAX_TAGS_PER_LIST:
            raise RulesetError(
                f"list {list_id} has {len(tags)} distinct tags; at most {MAX_TAGS_PER_LIST} "
                "are supported",
                file=lists_path,
                column="tag",
            )
    lists[SS_VALID] = {code: "" for code in _code_table(folder, "ss_valid.csv", "name")}

    mcc = _code_table(folder, "mcc.csv", "excl_table")
    cc = _code_table(folder, "cc.csv", "excl_table")
    pdx_excl = _code_table(folder, "pdx_excl.csv", "excl_table")
    dx_map = (
        _code_table(folder, "dx_map.csv", "target") if (folder / "dx_map.csv").is_file() else None
    )
    px_map = (
        _code_table(folder, "px_map.csv", "target") if (folder / "px_map.csv").is_file() else None
    )

    # rules.csv
    rules_path = folder / "rules.csv"
    rules: dict[str, list[Atom]] = {}
    atom_rows: dict[tuple[str, int], int] = {}
    #: lists a rule names that have no row in lists.csv: empty lists (list id -> first row)
    empty_lists: dict[str, int] = {}
    for row, values in iter_rows(folder, "rules.csv"):
        _required(values, ("rule_id", "seq", "template"), rules_path, row)
        seq = _seq(values["seq"], rules_path, row)
        atom = Atom(
            values["rule_id"],
            seq,
            values["template"],
            values["list_id"],
            values["field"],
            values["op"],
            values["value"],
            row,
        )
        if (atom.rule_id, seq) in atom_rows:
            raise RulesetError(
                f"rule {atom.rule_id} has two atoms with seq {seq} "
                f"(first on row {atom_rows[atom.rule_id, seq]})",
                file=rules_path,
                row=row,
                column="seq",
            )
        atom_rows[atom.rule_id, seq] = row
        _check_atom(atom, lists, rules_path, empty_lists)
        rules.setdefault(atom.rule_id, []).append(atom)
    sorted_rules = {rid: tuple(sorted(atoms, key=lambda a: a.seq)) for rid, atoms in rules.items()}
    for list_id in empty_lists:
        # a list with no members is written as no rows; its tests then never match
        lists[list_id] = {}
    if empty_lists:
        named = sorted(empty_lists)
        warnings.append(
            f"{len(named)} list(s) named in rules.csv have no codes in lists.csv and are "
            f"empty: {', '.join(named[:8])}{' …' if len(named) > 8 else ''} "
            f"(first on row {min(empty_lists.values())})"
        )

    def need_rule(rule_id: str, path: Path, row: int) -> None:
        if rule_id not in sorted_rules:
            raise RulesetError(
                f"rule {rule_id!r} has no atoms in rules.csv", file=path, row=row, column="rule_id"
            )

    # mdc.csv
    mdc_path = folder / "mdc.csv"
    mdcs: list[MdcRow] = []
    seen_mdc: dict[str, int] = {}
    seen_seq: dict[int, int] = {}
    for row, values in iter_rows(folder, "mdc.csv"):
        _required(values, ("seq", "mdc", "rule_id"), mdc_path, row)
        seq = _seq(values["seq"], mdc_path, row)
        if values["mdc"] in seen_mdc:
            raise RulesetError(
                f"MDC {values['mdc']} is listed twice (first on row {seen_mdc[values['mdc']]})",
                file=mdc_path,
                row=row,
                column="mdc",
            )
        if seq in seen_seq:
            raise RulesetError(
                f"seq {seq} is used twice (first on row {seen_seq[seq]})",
                file=mdc_path,
                row=row,
                column="seq",
            )
        need_rule(values["rule_id"], mdc_path, row)
        seen_mdc[values["mdc"]] = row
        seen_seq[seq] = row
        mdcs.append(MdcRow(seq, values["mdc"], values["rule_id"], row))
    if not mdcs:
        raise RulesetError("no MDC is defined", file=mdc_path)
    mdcs.sort(key=lambda m: m.seq)

    # adrg.csv
    adrg_path = folder / "adrg.csv"
    entries: list[EntryRow] = []
    seen_entry: dict[str, int] = {}
    seen_entry_seq: dict[tuple[str, int], int] = {}
    for row, values in iter_rows(folder, "adrg.csv"):
        _required(values, ("mdc", "seq", "entry", "kind", "code", "rule_id"), adrg_path, row)
        seq = _seq(values["seq"], adrg_path, row)
        entry = EntryRow(
            values["mdc"],
            seq,
            values["entry"],
            values["kind"],
            values["code"],
            values["rule_id"],
            values["fallback"],
            row,
        )
        if entry.mdc not in seen_mdc:
            raise RulesetError(
                f"MDC {entry.mdc!r} is not in mdc.csv", file=adrg_path, row=row, column="mdc"
            )
        if entry.kind not in ("ADRG", "QY"):
            raise RulesetError(
                f"kind must be ADRG or QY, got {entry.kind!r}",
                file=adrg_path,
                row=row,
                column="kind",
            )
        if entry.entry in seen_entry:
            raise RulesetError(
                f"entry {entry.entry!r} is defined twice (first on row {seen_entry[entry.entry]})",
                file=adrg_path,
                row=row,
                column="entry",
            )
        if (entry.mdc, seq) in seen_entry_seq:
            raise RulesetError(
                f"{entry.mdc} has two entries with seq {seq} (first on row "
                f"{seen_entry_seq[entry.mdc, seq]})",
                file=adrg_path,
                row=row,
                column="seq",
            )
        if entry.kind == "QY" and entry.fallback:
            raise RulesetError(
                "a QY entry returns its code; it takes no fallback",
                file=adrg_path,
                row=row,
                column="fallback",
            )
        need_rule(entry.rule_id, adrg_path, row)
        seen_entry[entry.entry] = row
        seen_entry_seq[entry.mdc, seq] = row
        entries.append(entry)

    # adrg_drg.csv
    steps_path = folder / "adrg_drg.csv"
    steps: list[StepRow] = []
    seen_step: dict[tuple[str, int], int] = {}
    kinds = {e.entry: e.kind for e in entries}
    adrg_of = {e.entry: e.code for e in entries}
    # a DRG code belongs to one ADRG: the alternative entries of that ADRG (AH1_1, AH1_2) may
    # each return it, but no entry twice and no other ADRG (settlement prices by the code)
    seen_drg: dict[str, tuple[str, str, int]] = {}  # drg -> (entry, ADRG code, row)
    for row, values in iter_rows(folder, "adrg_drg.csv"):
        _required(values, ("entry", "seq", "drg", "rule_id"), steps_path, row)
        seq = _seq(values["seq"], steps_path, row)
        step = StepRow(values["entry"], seq, values["drg"], values["rule_id"], row)
        if step.entry not in kinds:
            raise RulesetError(
                f"entry {step.entry!r} is not in adrg.csv", file=steps_path, row=row, column="entry"
            )
        if kinds[step.entry] == "QY":
            raise RulesetError(
                f"entry {step.entry!r} is a QY entry; it has no DRG steps",
                file=steps_path,
                row=row,
                column="entry",
            )
        if (step.entry, seq) in seen_step:
            raise RulesetError(
                f"entry {step.entry} has two steps with seq {seq} (first on row "
                f"{seen_step[step.entry, seq]})",
                file=steps_path,
                row=row,
                column="seq",
            )
        first = seen_drg.get(step.drg)
        if first is not None and (first[0] == step.entry or first[1] != adrg_of[step.entry]):
            where = f"entry {first[0]}" if first[0] == step.entry else f"ADRG {first[1]}"
            raise RulesetError(
                f"DRG {step.drg} is listed twice (first on row {first[2]}, {where})",
                file=steps_path,
                row=row,
                column="drg",
            )
        need_rule(step.rule_id, steps_path, row)
        seen_step[step.entry, seq] = row
        seen_drg.setdefault(step.drg, (step.entry, adrg_of[step.entry], row))
        steps.append(step)
    if (folder / "drg_names.csv").is_file():
        named: dict[str, int] = {}
        for row, values in iter_rows(folder, "drg_names.csv"):
            if values["drg"] in named:
                raise RulesetError(
                    f"DRG {values['drg']} is listed twice (first on row {named[values['drg']]})",
                    file=folder / "drg_names.csv",
                    row=row,
                    column="drg",
                )
            named[values["drg"]] = row

    # notes that do not stop anything
    used_lists = {a.list_id for atoms in sorted_rules.values() for a in atoms if a.list_id}
    unused = sorted(set(lists) - used_lists - {SS_VALID})
    if unused:
        warnings.append(
            f"{len(unused)} list(s) in lists.csv are used by no rule: "
            f"{', '.join(unused[:8])}{' …' if len(unused) > 8 else ''}"
        )
    referenced = (
        {m.rule_id for m in mdcs} | {e.rule_id for e in entries} | {s.rule_id for s in steps}
    )
    orphans = sorted(set(sorted_rules) - referenced)
    if orphans:
        warnings.append(
            f"{len(orphans)} rule(s) in rules.csv are referenced by no MDC, entry "
            f"or step: {', '.join(orphans[:8])}{' …' if len(orphans) > 8 else ''}"
        )
    entry_mdcs = {e.mdc for e in entries}
    for m in mdcs:
        if m.mdc not in entry_mdcs:
            warnings.append(
                f"MDC {m.mdc} has no entry in adrg.csv: its cases fall through to the next MDC"
            )
    for table_name, table in (("mcc.csv", mcc), ("cc.csv", cc)):
        tables_used = set(pdx_excl.values())
        never = sorted(set(table.values()) - tables_used)
        if never and len(never) == len(set(table.values())):
            warnings.append(
                f"no principal diagnosis in pdx_excl.csv points at any exclusion "
                f"table of {table_name}: nothing is ever excluded"
            )

    return RulesetTables(
        folder=folder,
        content_hash=content_hash(folder),
        meta=meta,
        behaviour=behaviour,
        mdcs=tuple(mdcs),
        entries=tuple(sorted(entries, key=lambda e: (e.mdc, e.seq))),
        steps=tuple(sorted(steps, key=lambda s: (s.entry, s.seq))),
        rules=sorted_rules,
        lists=lists,
        mcc=mcc,
        cc=cc,
        pdx_excl=pdx_excl,
        dx_map=dx_map,
        px_map=px_map,
        warnings=tuple(warnings),
    )


def _check_atom(
    atom: Atom, lists: dict[str, dict[str, str]], path: Path, empty_lists: dict[str, int]
) -> None:
    row = atom.row
    spec = TEMPLATES.get(atom.template)
    if spec is None:
        raise RulesetError(
            f"unknown template {atom.template!r}; known: {', '.join(TEMPLATES)}",
            file=path,
            row=row,
            column="template",
        )
    takes_list, tagged, takes_field, takes_value = spec
    if takes_list:
        if not atom.list_id:
            raise RulesetError(
                f"{atom.template} needs a list_id", file=path, row=row, column="list_id"
            )
        if atom.list_id != SS_VALID and atom.list_id not in lists:
            if tagged:
                raise RulesetError(
                    f"list {atom.list_id!r} is not in lists.csv",
                    file=path,
                    row=row,
                    column="list_id",
                )
            empty_lists.setdefault(atom.list_id, row)
        if tagged:
            members = lists.get(atom.list_id, {})
            if not members or any(t == "" for t in members.values()):
                raise RulesetError(
                    f"{atom.template} needs a tagged list; {atom.list_id} has no tags",
                    file=path,
                    row=row,
                    column="list_id",
                )
    elif atom.list_id:
        raise RulesetError(
            f"{atom.template} takes no list_id", file=path, row=row, column="list_id"
        )
    if takes_field:
        if atom.field not in FIELDS:
            raise RulesetError(
                f"field must be one of {', '.join(FIELDS)}, got {atom.field!r}",
                file=path,
                row=row,
                column="field",
            )
    elif atom.field:
        raise RulesetError(f"{atom.template} takes no field", file=path, row=row, column="field")

    template = atom.template
    if template in ("CMP", "CMP_INT"):
        if atom.op not in OPS:
            raise RulesetError(
                f"op must be one of {' '.join(OPS)}, got {atom.op!r}",
                file=path,
                row=row,
                column="op",
            )
        if parse_number(atom.value) is None:
            raise RulesetError(
                f"{template} compares with a number; got {atom.value!r}",
                file=path,
                row=row,
                column="value",
            )
    elif template == "CMP_STR":
        if atom.op not in ("==", "!="):
            raise RulesetError(
                f"CMP_STR compares text with == or != only, got {atom.op!r}",
                file=path,
                row=row,
                column="op",
            )
    elif template == "TEXT_IN":
        if atom.op != "in":
            raise RulesetError(
                f"TEXT_IN takes op in, got {atom.op!r}", file=path, row=row, column="op"
            )
        if atom.value == "":
            raise RulesetError(
                "TEXT_IN needs the texts to match, separated by '|'",
                file=path,
                row=row,
                column="value",
            )
    elif template == "RAISE":
        if atom.op:
            raise RulesetError("RAISE takes no op", file=path, row=row, column="op")
    elif template == "MULTI_REGION":
        if atom.op != ">=":
            raise RulesetError(
                f"MULTI_REGION takes op >=, got {atom.op!r}", file=path, row=row, column="op"
            )
        if not re.fullmatch(r"[0-9]+", atom.value):
            raise RulesetError(
                f"MULTI_REGION needs a whole number of regions, got {atom.value!r}",
                file=path,
                row=row,
                column="value",
            )
    elif template == "PROC_TAGS":
        if atom.op:
            raise RulesetError("PROC_TAGS takes no op", file=path, row=row, column="op")
        if not _TAG_EXPR.fullmatch(atom.value):
            raise RulesetError(
                f"PROC_TAGS value must look like 'a+b|c', got {atom.value!r}",
                file=path,
                row=row,
                column="value",
            )
        known = set(lists[atom.list_id].values())
        for alternative in atom.value.split("|"):
            for tag in alternative.split("+"):
                if tag not in known:
                    raise RulesetError(
                        f"tag {tag!r} does not occur in list {atom.list_id}",
                        file=path,
                        row=row,
                        column="value",
                    )
    elif not takes_value and (atom.op or atom.value):
        raise RulesetError(
            f"{template} takes no op or value",
            file=path,
            row=row,
            column="op" if atom.op else "value",
        )
