"""Grouping over Arrow: prepare each batch, run the kernel, assemble results with reasons.

:class:`GroupRun` carries what a stream needs across batches (the column plan, the running row
number, the duplicate-id tracker, the summary). :func:`group`, :func:`group_batches` and
:func:`group_file` are the public entry points built on it.
"""

from __future__ import annotations

import datetime as dt
import functools
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _cases
from .._codes import IdTracker, as_numpy
from .._io import DataWarning, MalformedRow
from ..errors import CaseDataError
from ..ruleset._compile import CompiledRuleset
from ..ruleset._model import Ruleset, RulesetSeries
from ..ruleset._tables import Behaviour
from ..schema import FIELDS_BY_NAME, GROUP_RESULT_SCHEMA, RULE_FIELDS, Layout
from . import _kernel as K
from ._status import INVALID, REASON_CODES, REASON_STATUS, REASONS, STATUSES, UNGROUPABLE, rid

__all__ = ["MISTAKES", "GroupRun", "GroupSummary", "Outcome"]

_TABLE_FIELD = dict(RULE_FIELDS)  # ruleset field name -> case field
_CASE_FIELD_LABEL = {case: table for table, case in RULE_FIELDS}


@functools.cache
def _dictionaries() -> tuple[pa.Array, pa.Array]:
    """Status and reason dictionaries, built on first use: building any Arrow array makes
    pyarrow probe for pandas, which should not cost every ``import drgkit`` 0.3 s."""
    # index 0 of the reasons (ok) is always masked
    return pa.array(STATUSES, pa.string()), pa.array(list(REASON_CODES), pa.string())


def _text(value: str) -> pa.Scalar:
    """A string scalar of a stated type: a bare ``"..."`` makes pyarrow infer the type, and
    inferring imports pandas (see drgkit._io.without_pandas)."""
    return pa.scalar(value, pa.string())


def _scheme_columns(drg: pa.Array, no_group: np.ndarray | None = None) -> list[pa.Array]:
    """The ``scheme`` and ``group`` columns every scheme's result shares: "drg", and the DRG
    (null where the case has none: ``0000``, or ``no_group``, the cases neither grouped nor
    ambiguous, whose drg column may carry a ruleset's own failure code such as ``0000A``)."""
    n = len(drg)
    scheme = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, np.int8)), pa.array(["drg"], pa.string())
    )
    none = pc.equal(drg, _text("0000"))
    if no_group is not None:
        none = pc.or_(none, pa.array(no_group))
    group = pc.if_else(none, pa.scalar(None, pa.string()), drg)
    return [scheme, group]


_REASON_STATUS = np.array(REASON_STATUS, dtype=np.int8)
#: how the five original rulesets read and check cases (no behaviour keys in meta.csv)
_ORIGINAL = Behaviour()
#: reasons reported with a ruleset's ``check_failed_codes`` (OpenDRG's input-check statuses)
_CHECK_FAILED_IDS = np.array(
    [
        rid(c)
        for c in REASON_CODES
        if REASONS[c].opendrg in ("CHECK_FAILED", "ZD_NOT_MAPPING", "SS_NOT_MAPPING")
    ],
    dtype=np.int8,
)
_REASON_TEXTS = [REASONS[code].text for code in REASON_CODES]
#: each reason's text -> its index in the detail dictionary (a case's own text may equal one)
_REASON_INDEX = {text: k for k, text in reversed(list(enumerate(_REASON_TEXTS)))}
_NONE = (0, "0000", "00", "0000")  # ungroupable / invalid: status ignored, mdc, adrg, drg
MISTAKES = {
    "semicolon": "';' between codes",
    "slash": "'/' between codes",
    "whitespace": "a space or tab between codes",
    "lower_case": "lower-case codes",
}


@attrs.define(slots=True)
class GroupSummary:
    """Counts of one grouping run, for the CLI's closing table and for callers."""

    rows: int = 0
    by_status: Counter = attrs.field(factory=Counter)
    by_reason: Counter = attrs.field(factory=Counter)
    by_ruleset: Counter = attrs.field(factory=Counter)
    by_drg: Counter = attrs.field(factory=Counter)
    warnings: list[str] = attrs.field(factory=list)
    layout: str = ""
    #: rows read from the input (CSV: physical non-blank lines after the header)
    rows_in: int = 0
    #: rows written to the output (every grouped case, plus ``invalid``/``malformed_row``
    #: rows for unreadable lines when no rejects file is given)
    rows_out: int = 0
    #: unreadable lines written to the rejects file instead of the output
    rows_rejected: int = 0
    #: blank lines skipped (CSV); not rows
    blank_lines: int = 0

    def add(
        self,
        status: np.ndarray,
        reason: np.ndarray,
        pick: np.ndarray,
        drg_codes: pa.Array,
        ruleset_ids: list[str],
        ruleset_index: np.ndarray,
    ) -> None:
        """Count one batch; ``pick`` indexes each case's code in ``drg_codes``."""
        self.rows += len(status)
        for k, c in enumerate(np.bincount(status, minlength=len(STATUSES))):
            if c:
                self.by_status[STATUSES[k]] += int(c)
        for k, c in enumerate(np.bincount(reason, minlength=len(REASON_CODES))):
            if c and k:
                self.by_reason[REASON_CODES[k]] += int(c)
        for k, c in enumerate(np.bincount(ruleset_index + 1, minlength=len(ruleset_ids) + 1)):
            if c:
                self.by_ruleset[ruleset_ids[k - 1] if k else "-"] += int(c)
        counts = np.bincount(pick[status == 0], minlength=len(drg_codes))
        for k in np.flatnonzero(counts):
            self.by_drg[drg_codes[int(k)].as_py()] += int(counts[k])


@attrs.frozen(slots=True)
class _ResultCodes:
    """Per result code of a compiled ruleset: reason id, mdc, adrg, drg (FORMAT §4 table).

    Three rows follow the result codes: a case without a result (``none``), a FAIL without a
    result code (``fail``: the ruleset's ``fail_drg``) and a failed input check (``check``:
    its ``check_failed_codes``). ``special`` is set when the last two differ from ``none``.
    """

    reason: np.ndarray
    mdc: pa.Array
    adrg: pa.Array
    drg: pa.Array
    none: int
    fail: int
    check: int
    special: bool

    @classmethod
    def of(cls, compiled: CompiledRuleset) -> _ResultCodes:
        b = compiled.behaviour
        reasons, mdcs, adrgs, drgs = [], [], [], []
        for code in compiled.names["results"]:
            if code == "0000":
                r, m, a, d = rid("no_mdc"), "0000", "00", b.fail_drg
            elif code[1:3] == "00":
                r, m, a, d = rid("no_adrg"), "MDC" + code[0], "00", b.fail_mdc_drg
            elif code[1:3] == "QY":
                r, m, a, d = rid("ambiguity_group"), "MDC" + code[0], "QY", code
            else:
                r, m, a, d = 0, "MDC" + code[0], code[:3], code
            reasons.append(r)
            mdcs.append(m)
            adrgs.append(a)
            drgs.append(d)
        n = len(reasons)
        # the rows for cases without a result: none, fail, check
        for m, a, d in (("0000", "00", "0000"), ("0000", "00", b.fail_drg), b.check_failed_codes):
            reasons.append(0)
            mdcs.append(m)
            adrgs.append(a)
            drgs.append(d)
        special = b.fail_drg != "0000" or tuple(b.check_failed_codes) != ("0000", "00", "0000")
        return cls(
            np.array(reasons, dtype=np.int8),
            pa.array(mdcs, pa.string()),
            pa.array(adrgs, pa.string()),
            pa.array(drgs, pa.string()),
            n,
            n + 1,
            n + 2,
            special,
        )

    def place(
        self, pick: np.ndarray, reason: np.ndarray, result: np.ndarray, mine: Any, base: int = 0
    ) -> None:
        """Point the cases of this ruleset (``mine``: a mask, or True) without a result at
        the ruleset's own FAIL and input-check rows; ``base``: this table's offset in ``pick``."""
        if not self.special:
            return
        status = _REASON_STATUS[reason]
        failed = mine & (result < 0) & (status == UNGROUPABLE)
        pick[failed] = base + self.fail
        checked = mine & np.isin(reason, _CHECK_FAILED_IDS)
        pick[checked] = base + self.check


def _result_codes(compiled: CompiledRuleset) -> _ResultCodes:
    codes = compiled.derived.get("result_codes")
    if codes is None:
        codes = compiled.derived["result_codes"] = _ResultCodes.of(compiled)
    return codes


@attrs.define(slots=True, eq=False)
class Outcome:
    """Kernel results for one batch, in row order, before they become Arrow columns."""

    reason: np.ndarray  # int8 reason id per case
    result: np.ndarray  # int32 result index (-1: none) per case
    version: np.ndarray  # int32 index of the ruleset version used (-1: none)
    detail: dict[int, str]  # row -> detail text, for rows that need one


@attrs.define(slots=True, eq=False)
class _Front:
    n: int
    cols: dict[str, pa.Array]
    ids: pa.Array
    pre: np.ndarray
    detail: dict[int, str]
    version: np.ndarray
    checks: np.ndarray
    field: Callable[[str], _cases.ParsedField]


class GroupRun:
    """State of one grouping run over a stream of batches."""

    def __init__(
        self,
        target: Ruleset | RulesetSeries,
        schema: pa.Schema,
        source: str = "<cases>",
        *,
        layout: str | Layout | None = None,
        columns: dict[str, str] | None = None,
        translate: bool = False,
        keep: Sequence[str] | str | None = None,
        check_duplicates: bool = True,
        tracker: Any = None,
        row_offset: int = 0,
        value_checks: str = "format",
        layouts: Mapping[str, Layout] | None = None,
    ) -> None:
        """``layouts``: the layouts ``layout`` names or detection tries (the public functions
        pass the registry's, plugins' included; default the built-in ones). ``tracker``:
        anything with ``check(ids, row0) -> first rows`` (default: an
        :class:`~drgkit._codes.IdTracker` when ``check_duplicates``); ``row_offset``: rows
        before this input's first row (a partition of a larger dataset); ``value_checks``:
        ``format`` (the default: exactly the checks of FORMAT.md §5, as the reference grouper;
        a value outside the plausibility bounds of :data:`drgkit._cases.PLAUSIBLE` is grouped
        as the format says, with a note in the case's detail and one DataWarning per kind) or
        ``strict`` (such a case is ``invalid`` with an ``*_implausible`` reason)."""
        if value_checks not in _cases.VALUE_CHECKS:
            raise CaseDataError(
                f"unknown value_checks {value_checks!r}; choose one of "
                f"{', '.join(_cases.VALUE_CHECKS)}",
                file=source,
            )
        self.value_checks = value_checks
        #: per row of the current batch: a hint about a mistyped code (see _code_hints)
        self.hints: dict[int, str] = {}
        self._row0 = 0
        self._mistakes: dict[str, list] = {}
        self._implausible: dict[str, list] = {}
        self._batch_ids: pa.Array | None = None
        self.source = source
        self.versions: list[Ruleset] = (
            target.ordered() if isinstance(target, RulesetSeries) else [target]
        )
        self.series = target if isinstance(target, RulesetSeries) else None
        self.translate = translate
        if translate:
            for v in self.versions:
                missing = [
                    f
                    for f, has in (
                        ("dx_map.csv", v.compiled.names["has_dx_map"]),
                        ("px_map.csv", v.compiled.names["has_px_map"]),
                    )
                    if not has
                ]
                if missing:
                    raise CaseDataError(
                        f"translation mode needs {' and '.join(missing)}, which ruleset "
                        f"{v.id} does not have",
                        file=v.info.path / missing[0],
                    )
        self.plan = _cases.plan_columns(
            schema, source, layout=layout, columns=columns, layouts=layouts
        )
        self.keep = self._keep_columns(schema, keep)
        self.tracker = (
            tracker if tracker is not None else (IdTracker() if check_duplicates else None)
        )
        self.rows_done = row_offset
        self.summary = GroupSummary(layout=self.plan.describe())
        self.ruleset_ids = [v.id for v in self.versions]
        self._ruleset_dict = pa.array(self.ruleset_ids, pa.string())
        self.schema = self._output_schema(schema)
        # warn about absent columns that change results: checked or read by a rule
        relevant = {"sex", "age", "age_days", "procedures"}
        for v in self.versions:
            relevant.update(_TABLE_FIELD[f] for f in v.compiled.rule_fields)
        if self.series is not None:
            relevant.add("discharge_date")
        messages = []
        if "case_id" in self.plan.missing:
            messages.append(
                f"{source}: no case id column; cases are numbered by their row (1 = first data row)"
            )
        absent = [f for f in self.plan.missing if f in relevant]
        if absent:
            names = ", ".join(
                f"{f} ({FIELDS_BY_NAME[f].zh}"
                + (
                    f", column {self.plan.layout.source_for(f)!r}"
                    if self.plan.layout.source_for(f) not in (None, f)
                    else ""
                )
                + ")"
                for f in absent
            )
            messages.append(f"{source}: no column for {names}; treated as missing for every case")
        for message in messages:
            self.summary.warnings.append(message)
            warnings.warn(message, DataWarning, stacklevel=3)

    # ---------------------------------------------------------------- setup helpers
    def _keep_columns(self, schema: pa.Schema, keep: Sequence[str] | str | None) -> list[str]:
        if keep is None:
            return []
        if keep == "all":
            # every input column, except those the result itself provides (case_id…)
            return [n for n in schema.names if n not in GROUP_RESULT_SCHEMA.names]
        names = list(keep)
        for name in names:
            if name not in schema.names:
                raise CaseDataError(
                    f"column {name!r} to keep is not in the input; columns "
                    f"found: {', '.join(schema.names)}",
                    file=self.source,
                    column=name,
                )
        clash = [n for n in names if n in GROUP_RESULT_SCHEMA.names]
        if clash:
            raise CaseDataError(
                f"kept input column(s) {clash} would collide with result "
                "columns of the same name; rename them or keep fewer columns",
                file=self.source,
                column=clash[0],
            )
        return names

    def _output_schema(self, schema: pa.Schema) -> pa.Schema:
        fields = [schema.field(n) for n in self.keep] + list(GROUP_RESULT_SCHEMA)
        return pa.schema(fields, metadata=GROUP_RESULT_SCHEMA.metadata)

    # ---------------------------------------------------------------- per batch
    def front(self, batch: pa.RecordBatch) -> _Front:
        """Everything before the kernel that does not depend on the ruleset version:
        case ids, duplicates, version choice, input checks."""
        n = batch.num_rows
        row0 = self.rows_done
        self.rows_done += n
        self.hints = {}
        self._row0 = row0
        cols = {f: self.plan.column(batch, f) for f in self.plan.source}
        ids = self._case_ids(cols.get("case_id"), n, row0)
        self._batch_ids = ids  # for messages that name a case
        pre = np.zeros(n, dtype=np.int8)
        detail: dict[int, str] = {}

        # 1. case ids: missing and repeated
        if ids.null_count:
            for i in np.flatnonzero(~as_numpy(ids.is_valid())):
                pre[i] = rid("case_id_missing")
                detail[int(i)] = f"row {row0 + i + 1} has no case id"
        if self.tracker is not None:
            first = self.tracker.check(ids, row0)
            for i in np.flatnonzero(first >= 0):
                if pre[i] == 0:
                    pre[i] = rid("duplicate_case_id")
                    detail[int(i)] = (
                        f"case id {ids[int(i)].as_py()!r} was already used on row "
                        f"{first[i] + 1}; this row (row {row0 + i + 1}) is not "
                        "grouped"
                    )

        # 2. which ruleset version applies
        version = np.zeros(n, dtype=np.int32)
        if self.series is not None:
            days, flag = _cases.parse_dates(cols.get("discharge_date"), n)
            version = self.series.select(days)
            self._version_reasons(pre, detail, version, days, flag, cols.get("discharge_date"))

        # 3. input checks (FORMAT §5), the same for every version
        parsed: dict[str, _cases.ParsedField] = {}

        def field(name: str) -> _cases.ParsedField:
            if name not in parsed:
                parsed[name] = _cases.parse_scalar(cols.get(name), n)
            return parsed[name]

        behaviours = [v.compiled.behaviour for v in self.versions]
        if len(set(behaviours)) == 1:
            checks = self._checks(field, detail, behaviours[0])
        else:
            # versions that read or check cases differently (meta.csv keys): each case is
            # checked as the version chosen for it checks
            checks = np.zeros(n, dtype=np.int8)
            for b in dict.fromkeys(behaviours):
                mine = np.isin(version, [k for k, x in enumerate(behaviours) if x == b])
                own: dict[int, str] = {}
                found = self._checks(field, own, b)
                checks[mine] = found[mine]
                for i, text in own.items():
                    if mine[i]:
                        detail.setdefault(i, text)
        self._plausible(field, detail, checks)

        return _Front(n, cols, ids, pre, detail, version, checks, field)

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        f = self.front(batch)
        n, cols, pre, detail, version, checks, field = (
            f.n,
            f.cols,
            f.pre,
            f.detail,
            f.version,
            f.checks,
            f.field,
        )
        # 4. group each version's cases
        reason = np.zeros(n, dtype=np.int8)
        result = np.full(n, -1, dtype=np.int32)
        if len(self.versions) == 1:
            self._group_version(0, None, cols, n, pre, checks, field, reason, result, detail)
        else:
            for k in range(len(self.versions)):
                idx = np.flatnonzero(version == k)
                if len(idx):
                    self._group_version(k, idx, cols, n, pre, checks, field, reason, result, detail)
        not_grouped = version < 0
        reason[not_grouped] = pre[not_grouped]
        return self._assemble(batch, f.ids, Outcome(reason, result, version, detail))

    def case_ids(self, arr: pa.Array | None, n: int, row0: int) -> pa.Array:
        """The case ids of a batch as grouping reports them: text, empty -> null, and the
        1-based row number when the input has no id column."""
        return self._case_ids(arr, n, row0)

    def _case_ids(self, arr: pa.Array | None, n: int, row0: int) -> pa.Array:
        if arr is None:
            return pa.array([str(row0 + i + 1) for i in range(n)], pa.string())
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(arr.type.value_type)
        if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
            # bytes that are not UTF-8 must not stop the run: shown with U+FFFD
            arr = pa.array(
                [None if v is None else v.decode("utf-8", "replace") for v in arr.to_pylist()],
                pa.string(),
            )
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = arr.cast(pa.string())
        if pa.types.is_large_string(arr.type):
            arr = arr.cast(pa.string())
        # an empty id is no id
        empty = pc.equal(arr, _text(""))
        if pc.any(empty).as_py():
            arr = pc.if_else(empty, pa.scalar(None, pa.string()), arr)
        return arr

    def _version_reasons(self, pre, detail, version, days, flag, raw) -> None:
        epoch = dt.date(1970, 1, 1)
        for i in np.flatnonzero(version < 0):
            if pre[i]:
                continue
            if flag[i] == 1:
                pre[i] = rid("discharge_date_missing")
                detail[int(i)] = (
                    f"no discharge date: cannot choose among the versions of {self.series.region}"
                )
            elif flag[i] == 2:
                pre[i] = rid("discharge_date_invalid")
                detail[int(i)] = f"discharge date {raw[int(i)].as_py()!r} is not a date"
            else:
                day = epoch + dt.timedelta(days=int(days[i]))
                periods = "; ".join(
                    f"{v.id} {a or '…'} to {b or '…'}" for v, a, b in self.series.periods()
                )
                pre[i] = rid("no_ruleset_in_force")
                detail[int(i)] = (
                    f"discharge date {day} is outside every version of "
                    f"{self.series.region} ({periods})"
                )

    def _checks(
        self,
        field: Callable[[str], _cases.ParsedField],
        detail: dict[int, str],
        behaviour: Behaviour = _ORIGINAL,
    ) -> np.ndarray:
        """Reason id of the input check each case fails (0: passes), FORMAT §5, as the
        ruleset's ``behaviour`` reads (``text_fields``) and checks the case."""

        def read(case_field: str) -> _cases.ParsedField:
            p = field(case_field)
            return _cases.as_text(p) if behaviour.is_text(_CASE_FIELD_LABEL[case_field]) else p

        sex, age, days = read("sex"), read("age"), read("age_days")
        text_sex = behaviour.check_gender == "text"
        if text_sex or behaviour.is_text("gender"):
            accepted = ("1", "2") if text_sex else ("1", "2", "男", "女")
            sex_ok = sex.per_case(lambda v: _cases.value_text(v) in accepted, np.bool_)
        else:
            # numbers 1 and 2 are decided by the numbers; only other values need their text
            sex_ok = ((sex.kind & K.F_NUMBER) != 0) & ((sex.num == 1.0) | (sex.num == 2.0))
            others = np.flatnonzero(~sex_ok & ~sex.missing)
            if len(others) and sex.raw is not None:
                values = sex.raw.take(pa.array(others))
                uniques, index = _cases.encode_values(values)
                table = np.array([_sex_ok(v) for v in uniques], dtype=np.bool_)
                sex_ok[others] = table[index]
        age_ok = (age.kind & K.F_INT_OK) != 0
        days_ok = (days.kind & K.F_INT_OK) != 0
        checks = np.zeros(len(sex_ok), dtype=np.int8)
        # later checks come first in FORMAT §5: each assignment below overrides the earlier
        if behaviour.check_newborn_weight == "required":
            weight = read("birth_weight")
            no_weight = age_ok & (age.intv == 0) & days_ok & (days.intv <= 28) & weight.missing
            checks[no_weight] = rid("birth_weight_missing")
        bad_days = age_ok & (age.intv == 0) & ~days_ok
        checks[bad_days] = np.where(
            days.missing[bad_days], rid("age_days_missing"), rid("age_days_not_integer")
        )
        checks[~age_ok] = np.where(age.missing[~age_ok], rid("age_missing"), rid("age_not_integer"))
        checks[~sex_ok] = np.where(
            sex.missing[~sex_ok],
            rid("sex_missing"),
            rid("sex_not_text_1_2" if text_sex else "sex_invalid"),
        )
        for i in np.flatnonzero(checks):
            code = REASON_CODES[checks[i]]
            if code.startswith("sex"):
                accepted_text = "the text 1 or 2" if text_sex else "1, 2, 男 or 女"
                detail.setdefault(int(i), f"sex {sex.text(i)!r} is not {accepted_text}")
            elif code == "birth_weight_missing":
                detail.setdefault(
                    int(i),
                    f"a newborn (age 0, {days.text(i)} days) has no birth weight, which this "
                    "ruleset requires",
                )
            elif code.startswith("age_days"):
                detail.setdefault(
                    int(i), f"age is 0 and age in days {days.text(i)!r} is not a whole number"
                )
            else:
                detail.setdefault(int(i), f"age {age.text(i)!r} is not a whole number")
        return checks

    def _plausible(
        self, field: Callable[[str], _cases.ParsedField], detail: dict[int, str], checks: np.ndarray
    ) -> None:
        """drgkit's plausibility bounds (not FORMAT's): a note, or invalid when strict."""
        parsed = {name: field(name) for name in _cases.PLAUSIBLE}
        strict = self.value_checks == "strict"
        for code, bad, allowed in _cases.implausible(parsed):
            hit = np.flatnonzero(bad & (checks == 0))
            if not len(hit):
                continue
            label = code.removesuffix("_implausible")
            if strict:
                checks[hit] = rid(code)
            for i in hit:
                text = f"{label} {parsed[label].text(i)!r} is not plausible: it must be {allowed}"
                detail.setdefault(
                    int(i),
                    text
                    if strict
                    else f"{text} (grouped as the ruleset format prescribes; "
                    "value_checks='strict' makes such a case invalid)",
                )
            if strict:
                continue
            # the format (FORMAT.md §5) groups such a case: say so once per kind and run, and
            # count them for the summary
            first = int(hit[0])
            seen = self._implausible.setdefault(label, [0, ""])
            seen[0] += len(hit)
            if not seen[1]:
                seen[1] = (
                    f"{self._case_name(first)}: {parsed[label].text(first)!r} "
                    f"(it must be {allowed})"
                )
                warnings.warn(
                    f"{self.source}: implausible {label} values, e.g. {seen[1]}; such cases "
                    "are grouped as the ruleset format prescribes, each with a note in its "
                    "detail; value_checks='strict' (--value-checks strict) makes them invalid",
                    DataWarning,
                    stacklevel=5,
                )

    def prepare(
        self, k, idx, cols, n, pre, checks, field, detail
    ) -> tuple[K.CaseArrays, dict[str, _cases.ParsedField]]:
        """Kernel arrays of version ``k`` for the rows ``idx`` (None: all rows)."""
        ruleset = self.versions[k]
        comp = ruleset.compiled
        if idx is None:
            sub_cols, m = cols, n
            sub_pre, sub_checks = pre, checks
        else:
            take = pa.array(idx)
            sub_cols = {f: a.take(take) for f, a in cols.items()}
            m = len(idx)
            sub_pre, sub_checks = pre[idx], checks[idx]
        seps = self.plan.layout.separators
        dx_off, dx, dx_flags = _cases.code_lists(
            sub_cols.get("diagnoses"),
            m,
            comp.codes,
            separators=seps,
            empty_is_one=True,
            field="diagnoses",
            source=self.source,
        )
        px_off, px, px_flags = _cases.code_lists(
            sub_cols.get("procedures"),
            m,
            comp.codes,
            separators=seps,
            empty_is_one=False,
            field="procedures",
            source=self.source,
        )
        for name, flags in (("diagnoses", dx_flags), ("procedures", px_flags)):
            self._code_hints(name, flags, sub_cols.get(name), comp, idx)
        case_pre = sub_pre.copy()
        if self.translate:
            dx_off, dx, px_off, px, flag = K.translate_all(
                m,
                dx_off,
                dx,
                px_off,
                px,
                comp.dxmap_tab,
                comp.pxmap_tab,
                np.int32(comp.codes.id("")),
                np.int32(comp.codes.id("-")),
            )
            for code, value in (
                ("diagnosis_not_mapped", 1),
                ("procedure_not_mapped", 2),
                ("no_diagnosis_after_mapping", 3),
            ):
                hit = np.flatnonzero((case_pre == 0) & (flag == value))
                case_pre[hit] = rid(code)
                for j in hit:
                    detail[int(j if idx is None else idx[j])] = REASONS[code].text
        free = case_pre == 0
        case_pre[free] = sub_checks[free]

        # scalar fields the atoms read, in kernel slot order
        behaviour = comp.behaviour
        slots = comp.rule_fields
        fkind = np.zeros((max(1, len(slots)), m), dtype=np.uint8)
        fnum = np.zeros((max(1, len(slots)), m), dtype=np.float64)
        fint = np.zeros((max(1, len(slots)), m), dtype=np.int64)
        sub_parsed: dict[str, _cases.ParsedField] = {}
        for s, name in enumerate(slots):
            case_field = _TABLE_FIELD[name]
            if idx is None:
                p = field(case_field)
            else:
                p = _cases.parse_scalar(sub_cols.get(case_field), m)
            if behaviour.is_text(name):
                p = _cases.as_text(p)  # FORMAT §2: always text in this ruleset
            sub_parsed[case_field] = p
            fkind[s], fnum[s], fint[s] = p.kind, p.num, p.intv
        # CMP_STR and TEXT_IN: true only for a text (a number never equals a text)
        streq = np.zeros((max(1, len(comp.text_tests)), m), dtype=np.bool_)
        for s, (name, op, value) in enumerate(comp.text_tests):
            p = sub_parsed[_TABLE_FIELD[name]]
            accepted = frozenset(value.split("|")) if op == "in" else frozenset((value,))
            is_text = (p.kind & K.F_NUMBER) == 0
            streq[s] = is_text & p.per_case(
                lambda v, accepted=accepted: _cases.value_text(v) in accepted, np.bool_
            )

        return K.CaseArrays(dx_off, dx, px_off, px, fkind, fnum, fint, streq, case_pre), sub_parsed

    def _code_hints(
        self,
        name: str,
        flags: np.ndarray,
        column: pa.Array | None,
        comp: CompiledRuleset,
        idx: np.ndarray | None,
    ) -> None:
        """Hints for the rows whose unknown codes look like a common mistake (another
        separator, lower case): kept per row for the detail column and counted per mistake
        for one DataWarning each (see drgkit._codes)."""
        rows = np.flatnonzero(flags)
        if not len(rows) or column is None:
            return
        hints = _cases.code_hints(
            column.take(pa.array(rows)), comp.codes, self.plan.layout.separators
        )
        what = "diagnosis" if name == "diagnoses" else "procedure"
        for j, hint in zip(rows, hints, strict=True):
            if hint is None:
                continue
            row = int(j if idx is None else idx[j])
            self.hints.setdefault(row, hint.text(what))
            count = self._mistakes.setdefault(hint.kind, [0, ""])
            count[0] += 1
            if not count[1]:
                count[1] = f"{self._case_name(row)}: {hint.text(what)}"
                message = (
                    f"{self.source}: codes that look mistyped ({MISTAKES[hint.kind]}),"
                    f" e.g. {count[1]}; such cases may not group: fix the file (each "
                    "case's detail says which code)"
                )
                warnings.warn(message, DataWarning, stacklevel=5)

    def _case_name(self, row: int) -> str:
        """A case of the current batch as messages name it: its id (input line numbers are
        not row numbers once unreadable lines have been set aside)."""
        case_id = self._batch_ids[row].as_py() if self._batch_ids is not None else None
        return f"case {case_id}" if case_id else f"case at row {self._row0 + row + 1}"

    def implausible(self) -> dict[str, tuple[int, str]]:
        """Per field with values outside the plausibility bounds (format checks only): (cases,
        first example)."""
        return {k: (v[0], v[1]) for k, v in self._implausible.items()}

    def mistakes(self) -> dict[str, tuple[int, str]]:
        """Per mistake kind seen so far: (cases, first example)."""
        return {k: (v[0], v[1]) for k, v in self._mistakes.items()}

    def _group_version(self, k, idx, cols, n, pre, checks, field, reason, result, detail) -> None:
        comp = self.versions[k].compiled
        C, sub_parsed = self.prepare(k, idx, cols, n, pre, checks, field, detail)
        case_pre = C.pre
        outcome, res, err, _mdc = K.group_all(len(C.pre), C, K.ruleset_arrays(comp))

        codes = _result_codes(comp)
        sub_reason = np.where(outcome == K.OUT_GROUPED, codes.reason[np.maximum(res, 0)], 0).astype(
            np.int8
        )
        sub_reason[outcome == K.OUT_NO_MDC] = rid("no_mdc")
        sub_reason[outcome == K.OUT_NO_ADRG] = rid("no_adrg")
        skipped = outcome == K.OUT_SKIPPED
        sub_reason[skipped] = case_pre[skipped]
        sub_res = np.where(outcome == K.OUT_GROUPED, res, -1).astype(np.int32)
        for j in np.flatnonzero(outcome == K.OUT_ERROR):
            code, text = _error_detail(comp, int(err[j]), sub_parsed, j)
            sub_reason[j] = rid(code)
            detail[int(j if idx is None else idx[j])] = text
        # hints are few: visit them, not every case that did not group
        for row, hint in self.hints.items():
            j = row if idx is None else int(np.searchsorted(idx, row))
            if idx is not None and (j >= len(idx) or idx[j] != row):
                continue  # another version's case
            if sub_reason[j]:
                base = detail.get(row, REASONS[REASON_CODES[sub_reason[j]]].text)
                if hint not in base:
                    detail[row] = f"{base}; hint: {hint}"
        if idx is None:
            reason[:] = sub_reason
            result[:] = sub_res
        else:
            reason[idx] = sub_reason
            result[idx] = sub_res

    # ---------------------------------------------------------------- results
    def _assemble(self, batch: pa.RecordBatch, ids: pa.Array, out: Outcome) -> pa.RecordBatch:
        n = len(out.reason)
        status = _REASON_STATUS[out.reason]
        mdc_parts, adrg_parts, drg_parts = [], [], []
        if len(self.versions) == 1:
            codes = _result_codes(self.versions[0].compiled)
            pick = np.where(out.result >= 0, out.result, codes.none)
            codes.place(pick, out.reason, out.result, out.version >= 0)
            mdc, adrg, drg = codes.mdc.take(pick), codes.adrg.take(pick), codes.drg.take(pick)
            drg_codes = codes.drg
        else:
            # concatenate every version's code strings; offset each case's index into it
            base = 0
            pick = np.full(n, -1, dtype=np.int64)
            for k, v in enumerate(self.versions):
                codes = _result_codes(v.compiled)
                sel = (out.version == k) & (out.result >= 0)
                pick[sel] = out.result[sel] + base
                mine = out.version == k
                pick[mine & (out.result < 0)] = base + codes.none
                codes.place(pick, out.reason, out.result, mine, base)
                mdc_parts.append(codes.mdc)
                adrg_parts.append(codes.adrg)
                drg_parts.append(codes.drg)
                base += len(codes.reason)
            pick[pick < 0] = base - 3  # no version: the last version's "no result" row
            drg_codes = pa.concat_arrays(drg_parts)
            mdc = pa.concat_arrays(mdc_parts).take(pick)
            adrg = pa.concat_arrays(adrg_parts).take(pick)
            drg = drg_codes.take(pick)
        # detail: the reason's own text, or a case's specific text (few), as a dictionary; a
        # grouped case has none unless it carries a note (an implausible value, FORMAT mode)
        detail_idx = out.reason.astype(np.int32)
        no_detail = status == 0
        # each distinct text once: a dictionary with repeated values made the Parquet writer's
        # bytes differ from run to run (same values, another encoding of the detail column)
        index = dict(_REASON_INDEX)
        texts = list(_REASON_TEXTS)
        for i, text in out.detail.items():
            k = index.get(text)
            if k is None:
                k = index[text] = len(texts)
                texts.append(text)
            detail_idx[i] = k
            no_detail[i] = False
        detail = pa.DictionaryArray.from_arrays(
            pa.array(detail_idx, pa.int32(), mask=no_detail), pa.array(texts, pa.string())
        )
        version = out.version
        columns = [batch.column(name) for name in self.keep] + [
            ids,
            pa.DictionaryArray.from_arrays(pa.array(status, pa.int8()), _dictionaries()[0]),
            pa.DictionaryArray.from_arrays(
                pa.array(out.reason, pa.int8(), mask=out.reason == 0), _dictionaries()[1]
            ),
            detail,
            *_scheme_columns(drg, (status == UNGROUPABLE) | (status == INVALID)),
            mdc,
            adrg,
            drg,
            pa.DictionaryArray.from_arrays(
                pa.array(version.astype(np.int16), pa.int16(), mask=version < 0), self._ruleset_dict
            ),
        ]
        self.summary.add(
            status.astype(np.int64),
            out.reason.astype(np.int64),
            pick,
            drg_codes,
            self.ruleset_ids,
            version.astype(np.int64),
        )
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)

    def malformed_rows(
        self, rows: list[MalformedRow], header: Sequence[str] | None = None
    ) -> pa.RecordBatch | None:
        """Invalid-case rows for CSV lines that could not be read as cases. The case id is
        taken from the line's id column when the line could be split (``header``: the
        file's column names)."""
        if not rows:
            return None
        n = len(rows)
        id_column = self.plan.source.get("case_id")
        at = list(header).index(id_column) if header and id_column in header else None
        ids: list[str | None] = []
        details = []
        for r in rows:
            value = r.fields[at] if at is not None and r.fields and at < len(r.fields) else ""
            ids.append(value or None)
            details.append(r.describe())
        reason = np.full(n, rid("malformed_row"), dtype=np.int8)
        columns = [pa.nulls(n, self.schema.field(name).type) for name in self.keep] + [
            pa.array(ids, pa.string()),
            pa.DictionaryArray.from_arrays(pa.array(np.full(n, 3, np.int8)), _dictionaries()[0]),
            pa.DictionaryArray.from_arrays(pa.array(reason), _dictionaries()[1]),
            pa.DictionaryArray.from_arrays(
                pa.array(np.arange(n, dtype=np.int32)), pa.array(details, pa.string())
            ),
            *_scheme_columns(pa.array(["0000"] * n)),
            pa.array(["0000"] * n),
            pa.array(["00"] * n),
            pa.array(["0000"] * n),
            pa.DictionaryArray.from_arrays(pa.nulls(n, pa.int16()), self._ruleset_dict),
        ]
        self.rows_done += n
        self.summary.add(
            np.full(n, 3, np.int64),
            reason.astype(np.int64),
            np.zeros(n, np.int64),
            pa.array(["0000"]),
            self.ruleset_ids,
            np.full(n, -1, np.int64),
        )
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)


def _sex_ok(value: Any) -> bool:
    kind, num, _iv, _missing = _cases.parse_value(value)
    if kind & K.F_NUMBER:
        return num in (1.0, 2.0)
    return _cases.value_text(value) in ("1", "2", "男", "女")


def _error_detail(
    comp: CompiledRuleset, atom: int, parsed: dict[str, _cases.ParsedField], row: int
) -> tuple[str, str]:
    rule_id, _seq, template, _list, fname, op, value = comp.names["atoms"][atom]
    if template == "RAISE":
        return "rule_cannot_be_evaluated", (
            f"rule {rule_id} cannot be evaluated"
            + (f" ({value})" if value else "")
            + "; the reference grouper raises an error here"
        )
    if template == "PPROC_IN":
        return "no_principal_procedure", (
            f"rule {rule_id} reads the principal procedure, but the case has no procedure"
        )
    case_field = _TABLE_FIELD.get(fname, fname)
    text = parsed[case_field].text(row) if case_field in parsed else ""
    if template == "CMP_INT":
        return "not_integer", (
            f"{case_field} {text!r} is not a whole number, but rule {rule_id}"
            f" compares int({fname}) {op} {value}"
        )
    return "text_compared", (
        f"{case_field} {text!r} is text, but rule {rule_id} compares {fname} {op} {value}"
    )
