"""Compare two rulesets (two versions, or two regions) and what the change does to real cases.

:func:`diff_rulesets` reads both rulesets' tables and lists every difference a hospital's coder
or finance office asks about when a new version lands: diagnoses and procedures whose ADRG (or
MDC) changed, ADRGs and DRGs added, removed, recoded or renamed, entry and DRG rules that
changed, CC/MCC lists and their exclusions.

A code "belongs" to an ADRG (MDC) when it is in a list that the ADRG's (MDC's) own rule uses
positively: ``PDX_IN``/``ANY_DX_IN`` for diagnoses, ``PPROC_IN``/``ANY_PROC_IN``/``SPROC_IN``/
``PROC_TAGS`` for procedures. ``SS_VALID`` (every operating-room procedure) says nothing about
an ADRG and is left out. A code in several ADRGs' lists belongs to all of them (space-joined,
sorted); a code that moved is one whose set changed.

:func:`migration_impact` groups a case file under both rulesets (how many cases change DRG,
the from→to matrix) and, given policies, settles them through
:func:`drgkit.settlement.simulate` per hospital, department and DRG: the payment change and its
decomposition (regrouping, case mix, price, outlier) exactly as ``drgkit simulate`` reports it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa

from .._resolve import RESOLVER
from ..errors import RegistryError
from . import _tables as T
from ._model import Ruleset

__all__ = [
    "CHANGE_KINDS",
    "DIFF_SCHEMA",
    "MATRIX_SCHEMA",
    "Change",
    "Migration",
    "RulesetDiff",
    "diff_rulesets",
    "migration_impact",
]

#: kind -> what it means (before/after columns)
CHANGE_KINDS: dict[str, str] = {
    "dx-mdc": "diagnosis whose MDC changed (MDCs before / after)",
    "dx-adrg": "diagnosis whose ADRG changed (ADRGs before / after)",
    "px-adrg": "procedure whose ADRG changed (ADRGs before / after)",
    "adrg-added": "ADRG only in B (its MDC)",
    "adrg-removed": "ADRG only in A (its MDC)",
    "adrg-mdc": "ADRG in another MDC",
    "entry-rule": "entry whose rule changed (its atoms before / after)",
    "drg-added": "DRG only in B (its name)",
    "drg-removed": "DRG only in A (its name)",
    "drg-recoded": "DRG code replaced by another in the same step with the same rule",
    "drg-renamed": "DRG whose name changed",
    "drg-rule": "DRG whose step rule changed (atoms before / after)",
    "mcc-added": "diagnosis that became an MCC (exclusion table)",
    "mcc-removed": "diagnosis that is no longer an MCC (exclusion table)",
    "cc-added": "diagnosis that became a CC (exclusion table)",
    "cc-removed": "diagnosis that is no longer a CC (exclusion table)",
    "cc-to-mcc": "CC that became an MCC",
    "mcc-to-cc": "MCC that became a CC",
    "mcc-exclusion": "MCC whose exclusion table changed",
    "cc-exclusion": "CC whose exclusion table changed",
    "pdx-exclusion": "principal diagnosis whose exclusion table changed (empty: none)",
}

DIFF_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),
        pa.field("code", pa.string(), nullable=False),
        pa.field("before", pa.string(), nullable=False),
        pa.field("after", pa.string(), nullable=False),
    ]
)

_DX_POSITIVE = frozenset({"PDX_IN", "ANY_DX_IN"})
_PX_POSITIVE = frozenset({"PPROC_IN", "ANY_PROC_IN", "SPROC_IN", "PROC_TAGS"})


@attrs.frozen(slots=True)
class Change:
    """One difference: its kind (:data:`CHANGE_KINDS`), the code it is about, before, after."""

    kind: str
    code: str
    before: str
    after: str


@attrs.frozen(slots=True, eq=False)
class RulesetDiff:
    """What changed from ruleset ``a`` to ``b``: one :class:`Change` per row, by kind and code."""

    a: str
    b: str
    changes: tuple[Change, ...]

    @property
    def table(self) -> pa.Table:
        return pa.Table.from_pylist([attrs.asdict(c) for c in self.changes], schema=DIFF_SCHEMA)

    def counts(self) -> dict[str, int]:
        """Changes per kind, in the order of :data:`CHANGE_KINDS` (kinds without any left out)."""
        got = Counter(c.kind for c in self.changes)
        return {k: got[k] for k in CHANGE_KINDS if got[k]}

    def of(self, kind: str) -> dict[str, tuple[str, str]]:
        """The changes of one kind: code -> (before, after)."""
        return {c.code: (c.before, c.after) for c in self.changes if c.kind == kind}

    def render(self, max_rows: int = 20) -> str:
        lines = [f"ruleset diff {self.a} → {self.b}: {len(self.changes)} change(s)"]
        for kind, n in self.counts().items():
            lines.append(f"  {kind:<14} {n:>7,}  {CHANGE_KINDS[kind]}")
        for kind in self.counts():
            rows = [c for c in self.changes if c.kind == kind]
            lines.append(f"{kind}:")
            for c in rows[:max_rows]:
                lines.append(f"  {c.code:<16} {c.before or '-'}  →  {c.after or '-'}")
            if len(rows) > max_rows:
                lines.append(f"  … {len(rows) - max_rows} more")
        return "\n".join(lines)


def _version(target: Any, spec: Any) -> Ruleset:
    if not isinstance(target, Ruleset):
        versions = ", ".join(v.id for v in target.ordered())
        raise RegistryError(f"{spec!s} is a region: name one version ({versions})")
    return target


def _atoms_text(atoms: Iterable[T.Atom]) -> str:
    parts = []
    for a in atoms:
        words = [a.template, a.list_id, a.field, a.op, a.value]
        parts.append(" ".join(w for w in words if w))
    return "; ".join(parts)


def _members(
    tables: T.RulesetTables, rule_ids: Mapping[str, list[str]], templates: frozenset[str]
) -> dict[str, str]:
    """code -> the space-joined owners (ADRGs or MDCs) whose rules list it positively."""
    owners: dict[str, set[str]] = {}
    for owner, rids in rule_ids.items():
        for rid in rids:
            for a in tables.rules.get(rid, ()):
                if a.template in templates and a.list_id and a.list_id != T.SS_VALID:
                    for code in tables.lists.get(a.list_id, ()):
                        owners.setdefault(code, set()).add(owner)
    return {code: " ".join(sorted(o)) for code, o in owners.items()}


def _moved(kind: str, before: dict[str, str], after: dict[str, str]) -> list[Change]:
    return [
        Change(kind, code, before.get(code, ""), after.get(code, ""))
        for code in sorted(set(before) | set(after))
        if before.get(code, "") != after.get(code, "")
    ]


def diff_rulesets(a: Any, b: Any) -> RulesetDiff:
    """Every difference from ruleset ``a`` to ``b`` (ids, folders or :class:`Ruleset` objects;
    both are read and validated as the grouper reads them)."""
    ra, rb = (_version(RESOLVER.ruleset(x), x) for x in (a, b))
    ta, tb = T.read_tables(ra.info.path), T.read_tables(rb.info.path)
    names = [T.read_name_table(Path(r.info.path), "drg_names.csv") for r in (ra, rb)]
    changes: list[Change] = []

    def adrg_rules(t: T.RulesetTables) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for e in t.entries:
            if e.kind == "ADRG":
                out.setdefault(e.code, []).append(e.rule_id)
        return out

    mdc_rules = [{m.mdc: [m.rule_id] for m in t.mdcs} for t in (ta, tb)]
    adrgs = [adrg_rules(t) for t in (ta, tb)]
    changes += _moved(
        "dx-mdc", *(_members(t, r, _DX_POSITIVE) for t, r in zip((ta, tb), mdc_rules, strict=True))
    )
    changes += _moved(
        "dx-adrg", *(_members(t, r, _DX_POSITIVE) for t, r in zip((ta, tb), adrgs, strict=True))
    )
    changes += _moved(
        "px-adrg", *(_members(t, r, _PX_POSITIVE) for t, r in zip((ta, tb), adrgs, strict=True))
    )

    # ADRGs and their entries
    mdc_of = [{e.code: e.mdc for e in t.entries if e.kind == "ADRG"} for t in (ta, tb)]
    for code in sorted(set(mdc_of[0]) | set(mdc_of[1])):
        before, after = mdc_of[0].get(code), mdc_of[1].get(code)
        if before is None:
            changes.append(Change("adrg-added", code, "", after or ""))
        elif after is None:
            changes.append(Change("adrg-removed", code, before, ""))
        elif before != after:
            changes.append(Change("adrg-mdc", code, before, after))
    entries = [{e.entry: e for e in t.entries} for t in (ta, tb)]
    for entry in sorted(set(entries[0]) & set(entries[1])):
        before = _atoms_text(ta.rules[entries[0][entry].rule_id])
        after = _atoms_text(tb.rules[entries[1][entry].rule_id])
        if before != after:
            changes.append(Change("entry-rule", entry, before, after))

    # DRGs: by step (entry, seq) so that a code replaced under the same rule is a recoding
    steps = [{s.drg: s for s in t.steps} for t in (ta, tb)]
    at = [{(s.entry, s.seq): s for s in t.steps} for t in (ta, tb)]
    removed = sorted(set(steps[0]) - set(steps[1]))
    added = sorted(set(steps[1]) - set(steps[0]))
    recoded: dict[str, str] = {}
    for drg in removed:
        s = steps[0][drg]
        other = at[1].get((s.entry, s.seq))
        if (
            other is not None
            and other.drg in added
            and other.drg not in recoded.values()
            and _atoms_text(ta.rules[s.rule_id]) == _atoms_text(tb.rules[other.rule_id])
        ):
            recoded[drg] = other.drg
    for drg in removed:
        if drg in recoded:
            changes.append(Change("drg-recoded", drg, drg, recoded[drg]))
        else:
            changes.append(Change("drg-removed", drg, names[0].get(drg, ""), ""))
    for drg in added:
        if drg not in recoded.values():
            changes.append(Change("drg-added", drg, "", names[1].get(drg, "")))
    for drg in sorted(set(steps[0]) & set(steps[1])):
        na, nb = names[0].get(drg, ""), names[1].get(drg, "")
        if na != nb:
            changes.append(Change("drg-renamed", drg, na, nb))
        before = _atoms_text(ta.rules[steps[0][drg].rule_id])
        after = _atoms_text(tb.rules[steps[1][drg].rule_id])
        if before != after:
            changes.append(Change("drg-rule", drg, before, after))

    # CC / MCC and exclusions
    for code in sorted(set(ta.mcc) | set(tb.mcc) | set(ta.cc) | set(tb.cc)):
        was = "mcc" if code in ta.mcc else "cc" if code in ta.cc else ""
        now = "mcc" if code in tb.mcc else "cc" if code in tb.cc else ""
        table_a = ta.mcc.get(code, ta.cc.get(code, ""))
        table_b = tb.mcc.get(code, tb.cc.get(code, ""))
        if was and now and was != now:
            changes.append(Change(f"{was}-to-{now}", code, table_a, table_b))
        elif was and not now:
            changes.append(Change(f"{was}-removed", code, table_a, ""))
        elif now and not was:
            changes.append(Change(f"{now}-added", code, "", table_b))
        elif table_a != table_b:
            changes.append(Change(f"{was}-exclusion", code, table_a, table_b))
    changes += _moved("pdx-exclusion", ta.pdx_excl, tb.pdx_excl)

    order = {k: n for n, k in enumerate(CHANGE_KINDS)}
    changes.sort(key=lambda c: (order[c.kind], c.code))
    return RulesetDiff(ra.id, rb.id, tuple(changes))


# --------------------------------------------------------------------------- migration


@attrs.frozen(slots=True, eq=False)
class Migration:
    """What a ruleset change does to a set of cases.

    ``cases``: cases read; ``changed``: cases whose DRG differs (``status_changed``: whose
    status differs); ``matrix``: ``drg_a, drg_b, cases`` for the ``top`` most frequent moves
    (by cases, then codes); ``moves``: how many distinct from→to pairs there are in all;
    ``simulations``: key -> :class:`~drgkit.settlement.Simulation` by that key (empty without
    policies).
    """

    a: str
    b: str
    cases: int
    changed: int
    status_changed: int
    moves: int
    matrix: pa.Table
    simulations: Mapping[str, Any]

    def render(self, max_rows: int = 20) -> str:
        share = 100 * self.changed / self.cases if self.cases else 0.0
        lines = [
            f"migration {self.a} → {self.b}: {self.cases:,} cases, {self.changed:,} change DRG "
            f"({share:.2f}%), {self.status_changed:,} change status, {self.moves:,} distinct "
            "moves",
        ]
        if self.matrix.num_rows:
            lines.append(f"most frequent moves (top {self.matrix.num_rows}):")
            for row in self.matrix.slice(0, max_rows).to_pylist():
                lines.append(f"  {row['drg_a']:<8} → {row['drg_b']:<8} {row['cases']:>8,}")
        for key, sim in self.simulations.items():
            lines.append(f"payment change by {key}:")
            lines.append(sim.render(max_rows=max_rows))
        return "\n".join(lines)


MATRIX_SCHEMA = pa.schema(
    [
        pa.field("drg_a", pa.string(), nullable=False),
        pa.field("drg_b", pa.string(), nullable=False),
        pa.field("cases", pa.int64(), nullable=False),
    ]
)


def migration_impact(
    cases: Any,
    a: Any,
    b: Any,
    *,
    policy_a: Any = None,
    policy_b: Any = None,
    by: Sequence[str] = ("hospital_id", "department", "drg"),
    top: int = 20,
    weights: Any = None,
    alt_weights: Any = None,
    **options: Any,
) -> Migration:
    """Group ``cases`` under rulesets ``a`` and ``b`` and count the moves; with ``policy_a``
    (and optionally ``policy_b``, default the same), settle them through
    :func:`~drgkit.settlement.simulate` once per key of ``by`` (``drg`` is the DRG under ``a``).

    ``options`` go to grouping and simulation alike (``layout``, ``columns``, ``encoding``…).
    """
    from .. import group
    from ..settlement._simulate import simulate

    ra, rb = (_version(RESOLVER.ruleset(x), x) for x in (a, b))
    ga = group(cases, ra, **options)
    gb = group(cases, rb, **options)
    drg_a = ga.column("drg").to_pylist()
    drg_b = gb.column("drg").to_pylist()
    status_a = [str(s) for s in ga.column("status").to_pylist()]
    status_b = [str(s) for s in gb.column("status").to_pylist()]
    moves = Counter((x, y) for x, y in zip(drg_a, drg_b, strict=True) if x != y)
    ranked = sorted(moves.items(), key=lambda kv: (-kv[1], kv[0]))[: max(top, 0)]
    matrix = pa.Table.from_pylist(
        [{"drg_a": x, "drg_b": y, "cases": n} for (x, y), n in ranked], schema=MATRIX_SCHEMA
    )
    sims: dict[str, Any] = {}
    if policy_a is not None:
        for key in by:
            sims[key] = simulate(
                cases,
                base_ruleset=ra,
                base_policy=policy_a,
                alt_ruleset=rb,
                alt_policy=policy_b,
                by=(key,),
                weights=weights,
                alt_weights=alt_weights,
                **options,
            )
    elif policy_b is not None:
        raise TypeError("policy_b needs policy_a (the policy of the cases under ruleset a)")
    return Migration(
        ra.id,
        rb.id,
        len(drg_a),
        sum(moves.values()),
        sum(x != y for x, y in zip(status_a, status_b, strict=True)),
        len(moves),
        matrix,
        sims,
    )
