"""Explain one DIP case: every tier tried and why, and the candidate packets a hospital asks for.

:func:`explain_dip` walks the national order of DIP.md §2 over the validated tables and records
each step; the packet it ends with is checked against the kernel's. :func:`candidates` lists the
packets one case could fall into, with their scores and points, and which change of a secondary
diagnosis or procedure would move it there (each variant is re-grouped by the kernel, so the
answer is what grouping would really do).
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from typing import Any

import attrs
import pyarrow as pa

from .. import _cases
from .._io import open_cases
from .._resolve import RESOLVER
from ..catalogue import _tables as T
from ..catalogue._model import CatalogueSeries
from ..errors import ArgumentError, CaseNotFoundError
from ._dip import DIP_FIELDS, group_dip

__all__ = ["Candidate", "DipExplanation", "candidates", "case_from_input", "explain_dip"]


@attrs.frozen(slots=True)
class DipExplanation:
    case_id: str | None
    status: str
    reason: str | None
    packet: str | None
    packet_name: str
    tier: str | None
    score: decimal.Decimal | None
    catalogue: str
    #: (tier, what happened) in the order tried
    steps: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        head = (
            f"case {self.case_id}: {self.packet} {self.packet_name} (score {self.score}, "
            f"{self.tier})"
            if self.packet
            else f"case {self.case_id}: {self.status} ({self.reason})"
        )
        return "\n".join(
            [head, f"catalogue {self.catalogue}"]
            + [f"  {tier:<13} {text}" for tier, text in self.steps]
        )

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(
            self, value_serializer=lambda _i, _a, v: str(v) if isinstance(v, decimal.Decimal) else v
        )


@attrs.frozen(slots=True)
class Candidate:
    packet: str
    name: str
    kind: str
    tier: str
    score: decimal.Decimal
    aux_coefficient: decimal.Decimal | None
    #: score × auxiliary coefficient × hospital coefficient (none for primary-care packets)
    points: decimal.Decimal
    #: "as coded", or the change that moves the case here
    change: str
    #: with a policy: the deviation class for this case's cost, the points after that rule
    #: (as settlement rounds them), the point value used, the payment and fund payment (yuan)
    deviation: str | None = None
    pay_points: decimal.Decimal | None = None
    point_value: decimal.Decimal | None = None
    payment: decimal.Decimal | None = None
    fund_payment: decimal.Decimal | None = None
    #: why there is no payment, or what the payment assumes (no cost, special review)
    note: str = ""


def _row(case: Mapping[str, Any], separators: str = ",|") -> dict[str, Any]:
    def codes(v: Any) -> list[str]:
        if v is None:
            return []
        if isinstance(v, str):
            for sep in separators[1:]:
                v = v.replace(sep, separators[0])
            return v.split(separators[0]) if v else []
        return [str(c) for c in v]

    row = dict(case)
    row["diagnoses"] = codes(case.get("diagnoses"))
    row["procedures"] = codes(case.get("procedures"))
    return row


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    names: list[str] = []
    for r in rows:
        names.extend(k for k in r if k not in names)
    cols = {}
    for name in names:
        values = [r.get(name) for r in rows]
        if name in ("diagnoses", "procedures"):
            cols[name] = pa.array(values, pa.list_(pa.string()))
        elif name == "case_id":
            cols[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
        else:
            try:
                cols[name] = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                cols[name] = pa.array([None if v is None else str(v) for v in values])
    return pa.table(cols)


def _matches(code: str, pattern: str) -> bool:
    c = T.normalise(code)
    return c != "" and c.startswith(pattern)


def _spec_text(spec: T.Spec) -> str:
    return "|".join("+".join(_display(i) for i in alt) for alt in spec)


def _list_text(items: tuple[str, ...]) -> str:
    return "|".join(_display(i) for i in items)


def _spec_best(spec: T.Spec, codes: list[str]) -> int:
    best = -1
    for alt in spec:
        if all(any(_matches(c, item) for c in codes) for item in alt):
            best = max(best, len(alt))
    return best


#: case fields the payment of a candidate needs besides the grouping fields
PAY_FIELDS = ("total_cost", "insurance_type", "hospital_level", "hospital_id")


def case_from_input(
    cases: Any,
    case_id: str | None,
    layout: Any,
    columns: Any,
    known_layouts: Any = None,
    extra_fields: tuple[str, ...] = (),
) -> tuple[dict[str, Any], str]:
    """One case of a file or table (the first, or the one with ``case_id``) as case fields
    (``extra_fields``: more fields to read when the input has them, e.g. :data:`PAY_FIELDS`)."""
    src = open_cases(cases)
    plan = _cases.plan_columns(
        src.schema,
        src.name,
        layout=layout,
        columns=columns,
        fields=(*DIP_FIELDS, "discharge_date", *extra_fields),
        layouts=known_layouts,
    )
    id_col = plan.source.get("case_id")
    for batch in src.batches:
        row = None
        if case_id is None:
            row = 0 if batch.num_rows else None
        elif id_col is not None:
            ids = batch.column(id_col).cast(pa.string()).to_pylist()
            row = ids.index(case_id) if case_id in ids else None
        if row is not None:
            return (
                {field: batch.column(col)[row].as_py() for field, col in plan.source.items()},
                plan.layout.separators,
            )
    raise CaseNotFoundError(
        f"case {case_id!r} is not in the input" + ("" if id_col else " (it has no case id column)"),
        file=src.name,
    )


def explain_dip(
    case: Any,
    catalogue: Any,
    *,
    case_id: str | None = None,
    layout: Any = None,
    columns: Any = None,
) -> DipExplanation:
    """How ``catalogue`` groups one case, step by step.

    ``case`` is a mapping of case fields (code lists as lists or ``|``-joined text), or any case
    input (file, table, frame) with ``case_id`` picking the case (the first row when None).
    """
    target = RESOLVER.catalogue(catalogue)
    separators = ",|"
    if not isinstance(case, Mapping):
        case, separators = case_from_input(case, case_id, layout, columns, RESOLVER.layouts)
    row = _row(case, separators)
    row.setdefault("case_id", "1")
    result = group_dip(_table([row]), target, check_duplicates=False).to_pylist()[0]
    cat = target
    if isinstance(target, CatalogueSeries):
        cat = next((v for v in target.versions if v.id == result["catalogue"]), None)
    steps: list[tuple[str, str]] = []
    dxs, pxs = row["diagnoses"], row["procedures"]
    add = steps.append
    if cat is None:
        add(("checks", result["detail"]))
        return DipExplanation(
            result["case_id"],
            result["status"],
            result["reason"],
            None,
            "",
            None,
            None,
            target.id,
            tuple(steps),
        )
    t = cat.tables
    if result["reason"] in ("case_id_missing", "principal_dx_missing"):
        add(("checks", result["detail"]))
    elif result["reason"] == "excluded_principal_dx":
        add(("checks", f"principal diagnosis {dxs[0]} is on the exclusion list: not grouped"))
    elif result["reason"] is None or result["reason"] == "no_packet":
        pdx = dxs[0]
        add(
            (
                "checks",
                f"principal diagnosis {pdx}; {len(dxs) - 1} secondary; {len(pxs)} procedure(s)",
            )
        )
        principal = pxs[0] if pxs and T.normalise(pxs[0]) else None
        if principal and any(_matches(principal, p) for p in t.excluded_px):
            add(
                (
                    "checks",
                    f"principal procedure {principal} is on the procedure exclusion "
                    "list: treated as no procedure",
                )
            )
            principal = None
        _trace_tiers(t, steps, result)
        if result["tier"] not in ("pregroup", "merge", "subdivide"):
            _trace_core(t, steps, pdx, principal, pxs[1:] if principal else [])
            if result["tier"] != "core":
                _trace_chain(t, steps, pdx, principal, result)
    return DipExplanation(
        result["case_id"],
        result["status"],
        result["reason"],
        result["packet"],
        t.packets[result["packet"]].name if result["packet"] else "",
        result["tier"],
        result["score"],
        cat.id,
        tuple(steps),
    )


def _trace_tiers(t: T.CatalogueTables, steps: list, result: dict) -> None:
    names = {"pregroup.csv": "pregroup", "merge.csv": "merge", "subdivide.csv": "subdivide"}
    tried = {name: 0 for name in names}
    for r in t.rules:
        tried[r.tier] += 1
    for name, tier in names.items():
        if result["tier"] == tier:
            hit = next(r for r in t.rules if r.tier == name and r.packet == result["packet"])
            steps.append((tier, f"{name} row {hit.row} holds -> {hit.packet}"))
            return
        steps.append((tier, f"none of {tried[name]} row(s) of {name} holds"))


def _attribute(t: T.CatalogueTables, code: str | None) -> int | None:
    if not code:
        return None
    norm = T.normalise(code)
    for n in range(len(norm), 0, -1):
        if norm[:n] in t.px_attribute:
            return t.px_attribute[norm[:n]]
    return None


def _trace_core(
    t: T.CatalogueTables, steps: list, pdx: str, principal: str | None, related: list[str]
) -> None:
    key = T.normalise(pdx)[: t.dx_key_chars]
    rows = [r for r in t.core if r.dx_key == key]
    if len(key) < t.dx_key_chars or not rows:
        steps.append(("core", f"no core packet for diagnosis key {T.key_text(key)}"))
        return
    attr = _attribute(t, principal)
    conservative = principal is None or (attr is not None and attr in t.conservative_attributes)
    for r in rows:
        if not r.principal_px:
            ok = conservative
            why = (
                "conservative row: the case counts as conservative"
                if ok
                else f"conservative row, but principal procedure {principal} is not conservative"
            )
        elif principal is None:
            ok, why = False, f"needs principal procedure {_list_text(r.principal_px)}"
        else:
            ok = any(_matches(principal, p) for p in r.principal_px)
            why = (
                f"principal {principal} {'matches' if ok else 'does not match'} "
                f"{_list_text(r.principal_px)}"
            )
        if ok and r.related_px:
            count = _spec_best(r.related_px, related)
            ok = count >= 0
            why += (
                f"; {count} related procedure(s) of {_spec_text(r.related_px)} present"
                if ok
                else f"; related {_spec_text(r.related_px)} not all present"
            )
        steps.append(
            ("core", f"core.csv row {r.row} {r.packet}: {'candidate' if ok else 'no'} — {why}")
        )
    steps.append(
        (
            "core",
            "the candidate with the most related procedures wins; then "
            f"tie rule {t.tie_rule}, then row order",
        )
    )


def _trace_chain(
    t: T.CatalogueTables, steps: list, pdx: str, principal: str | None, result: dict
) -> None:
    norm = T.normalise(pdx)
    for step in t.chain:
        if step == "comprehensive":
            attr = _attribute(t, principal)
            own = attr if attr is not None else T.MEDICAL
            shown = T.ATTRIBUTES[own] + (
                ""
                if principal is None or attr is not None
                else f" ({principal} not in px_attribute.csv)"
            )
            text = f"category {norm[:3]}, attribute {shown}"
            if result["tier"] == "comprehensive":
                steps.append((step, f"{text} -> {result['packet']}"))
                return
            steps.append((step, f"{text}: no comprehensive packet at or below it"))
        elif step == "prefix":
            if result["tier"] == "prefix":
                steps.append((step, f"fallback by diagnosis prefix -> {result['packet']}"))
                return
            steps.append((step, f"no fallback prefix or range takes {norm[:3]}"))
        elif step == "blank":
            if result["tier"] == "blank":
                steps.append((step, f"blank packet {result['packet']}"))
                return
            steps.append((step, "the catalogue has no blank packet"))


def candidates(
    case: Mapping[str, Any],
    catalogue: Any,
    *,
    hospital_coefficient: decimal.Decimal | str | int = 1,
    policy: Any = None,
    point_value: decimal.Decimal | str | int | None = None,
) -> list[Candidate]:
    """The packets one case could fall into and what each would pay in points.

    The first entry is the case as coded. Each further entry is a distinct packet reached by
    one change the catalogue makes meaningful: adding a procedure or secondary diagnosis a
    packet rule names, using a named procedure as the principal one, or removing one coded
    procedure or secondary diagnosis. Every variant is grouped by the kernel.

    With a DIP ``policy`` (id, path or :class:`~drgkit.settlement.Policy`) each candidate also
    gets what the case would be paid there: the settlement's own pricing
    (:func:`drgkit.settlement._dip_run.case_points`) applies the deviation rule to the case's
    ``total_cost`` (none: normal points, said in ``note``) with the level coefficient of its
    ``hospital_level``; payment = points × ``point_value`` (default: the policy's start-of-year
    point value of the case's scheme, from ``insurance_type``) and fund payment = payment ×
    the scheme's fund payment ratio, each half up to the cent as settlement rounds a lone case
    (in a whole run, exact fund rounding spreads cents cumulatively: ±1 cent).
    """
    cat = RESOLVER.catalogue(catalogue)
    if isinstance(cat, CatalogueSeries):  # the newest version: what a case coded today gets
        cat = cat.periods()[-1][0]
    t = cat.tables
    hosp = decimal.Decimal(str(hospital_coefficient))
    base = _row(case)
    base["case_id"] = "0"
    dxs, pxs = base["diagnoses"], base["procedures"]
    variants: list[tuple[str, dict]] = [("as coded", base)]

    def variant(change: str, dx: list[str] | None = None, px: list[str] | None = None) -> None:
        v = dict(
            base,
            diagnoses=dx if dx is not None else dxs,
            procedures=px if px is not None else pxs,
            case_id=str(len(variants)),
        )
        variants.append((change, v))

    key = T.normalise(dxs[0])[: t.dx_key_chars] if dxs else ""
    px_items: list[str] = []
    dx_items: list[str] = []
    for r in t.core:
        if r.dx_key == key:
            px_items.extend(r.principal_px)
            px_items.extend(i for alt in r.related_px for i in alt)
    for r in t.rules:
        # only rules about this principal diagnosis: a transplant is no coding suggestion
        if dxs and r.principal_dx and any(_matches(dxs[0], p) for p in r.principal_dx):
            dx_items.extend(i for alt in r.secondary_dx for i in alt)
            px_items.extend(r.principal_px)
            px_items.extend(i for alt in r.procedures for i in alt)
    for item in dict.fromkeys(px_items):
        code = _display(item)
        if not any(_matches(p, item) for p in pxs):
            variant(f"add procedure {code}", px=[*pxs, code] if pxs else [code])
            if pxs:
                variant(f"code {code} as the principal procedure", px=[code, *pxs])
    for item in dict.fromkeys(dx_items):
        code = _display(item)
        if dxs and not any(_matches(d, item) for d in dxs[1:]):
            variant(f"add secondary diagnosis {code}", dx=[*dxs, code])
    for k, p in enumerate(pxs):
        variant(f"remove procedure {p}", px=pxs[:k] + pxs[k + 1 :])
    for k, d in enumerate(dxs[1:], start=1):
        variant(f"remove secondary diagnosis {d}", dx=dxs[:k] + dxs[k + 1 :])
    out = group_dip(_table([v for _c, v in variants]), cat, check_duplicates=False).to_pylist()
    seen: set[str | None] = set()
    result: list[Candidate] = []
    for (change, _v), r in zip(variants, out, strict=True):
        if r["packet"] is None or r["packet"] in seen:
            continue
        seen.add(r["packet"])
        p = t.packets[r["packet"]]
        coef = r["aux_coefficient"]
        points = p.score * (coef if coef is not None else 1)
        if p.kind != "primary":  # primary-care packets pay the same everywhere
            points *= hosp
        result.append(Candidate(p.packet, p.name, p.kind, r["tier"], p.score, coef, points, change))
    if policy is not None:
        kept = [r for r in out if r["packet"] is not None]
        kept = [r for k, r in enumerate(kept) if r["packet"] not in {x["packet"] for x in kept[:k]}]
        result = _with_payments(
            result, kept, case, cat, RESOLVER.policy(policy), point_value, names=RESOLVER
        )
    return result


def _with_payments(
    found: list[Candidate],
    grouped: list[dict[str, Any]],
    case: Mapping[str, Any],
    cat: Any,
    pol: Any,
    point_value: decimal.Decimal | str | int | None,
    *,
    names: Any = None,
) -> list[Candidate]:
    """``found`` with each candidate's payment under the resolved policy ``pol`` (see
    :func:`candidates`)."""
    from fractions import Fraction

    from .._money import half_up
    from ..settlement._dip_run import case_points
    from ..settlement._policy import PolicyError

    if pol.dip is None:
        raise PolicyError(
            f"policy {pol.id} is not a DIP policy: candidates are priced by a [dip] policy",
            file=pol.path,
        )
    if point_value is not None:
        try:
            given = decimal.Decimal(str(point_value))
        except decimal.InvalidOperation:
            raise ArgumentError(f"point value must be a number, got {point_value!r}") from None
        if not given.is_finite() or given <= 0:
            raise ArgumentError(f"point value must be above 0, got {point_value!r}")
    rows = []
    for r in grouped:
        row = {
            k: r[k]
            for k in (
                "case_id",
                "status",
                "packet",
                "packet_kind",
                "score",
                "aux_coefficient",
                "catalogue",
            )
        }
        for name in PAY_FIELDS:
            value = case.get(name)
            row[name] = None if value in (None, "") else str(value)
        rows.append(row)
    table = (
        pa.table(
            {
                k: pa.array([x[k] for x in rows], pa.string() if k in PAY_FIELDS else None)
                for k in rows[0]
            }
        )
        if rows
        else None
    )
    priced = case_points(pol, table, cat, names=names) if table is not None else []
    no_cost = case.get("total_cost") in (None, "")
    out = []
    for c, pr in zip(found, priced, strict=True):
        extra: dict[str, Any] = {"deviation": pr.deviation, "pay_points": pr.points}
        if pr.points is None:
            why = {
                "scheme_unknown": f"the policy has no scheme for insurance type "
                f"{case.get('insurance_type')!r} (give insurance_type)",
                "level_unknown": f"the policy has no coefficient for hospital level "
                f"{case.get('hospital_level')!r}",
            }.get(pr.reason or "", "")
            extra["note"] = f"not payable by points: {pr.reason}" + (f", {why}" if why else "")
            out.append(attrs.evolve(c, **extra))
            continue
        value = (
            given
            if point_value is not None
            else pol.dip.start_point_value.get(
                pr.scheme or "", pol.dip.start_point_value.get("all")
            )
        )
        if value is None:
            raise PolicyError(
                f"policy {pol.id} has no start-of-year point value for scheme "
                f"{pr.scheme}: give the point value (--point-value YUAN)",
                file=pol.path,
            )
        exact = Fraction(pr.points) * Fraction(value) * 100  # cents
        pay = half_up(exact)
        notes = []
        if no_cost:
            notes.append("no cost given: normal points, no deviation rule")
        if pr.review_candidate:
            notes.append(
                "above the extreme threshold: special review candidate (paid by item if accepted)"
            )
        ratio = pol.fund_ratio.get(pr.scheme or "", pol.fund_ratio.get("all"))
        fund = None
        if pol.share_method != "ratio":
            notes.append("no fund payment: the policy takes the patient's share from the claim")
        elif ratio is None:
            notes.append(f"no fund payment: no fund payment ratio for scheme {pr.scheme}")
        elif pol.dip.fund_rounding == "exact":  # fund = ratio × exact amount, rounded once
            fund = half_up(exact * Fraction(ratio))
        else:  # per_case: fund = ratio × the rounded payment
            fund = half_up(pay * Fraction(ratio))
        out.append(
            attrs.evolve(
                c,
                **extra,
                point_value=value,
                payment=decimal.Decimal(pay).scaleb(-2),
                fund_payment=None if fund is None else decimal.Decimal(fund).scaleb(-2),
                note="; ".join(notes),
            )
        )
    return out


def _display(pattern: str) -> str:
    """A pattern written the usual way (a dot after 3 characters for diagnoses-like codes,
    after 2 for procedures): only for messages and the added code, which still matches."""
    if pattern[:1].isalpha():
        return T.key_text(pattern)
    return pattern if len(pattern) <= 2 else f"{pattern[:2]}.{pattern[2:]}"
