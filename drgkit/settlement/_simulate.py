"""What-if simulation (模拟测算): last period's cases under another ruleset and/or policy.

A hospital asks "what would we be paid for last year's cases under next year's ruleset and
policy, per hospital, department and group, and why does it change?". :func:`simulate`
settles the same cases three times:

========  ==============================  =============================================
scenario  ruleset, policy                 name in the output
========  ==============================  =============================================
AA        base ruleset, base policy       ``base`` (基线)
BA        alt ruleset, base policy        ``regrouped`` (重新分组: new groups, old prices)
BB        alt ruleset, alt policy         ``alt`` (方案)
========  ==============================  =============================================

BA is not run when the ruleset does not change (BA = AA); BB is not run when the policy does
not change (BB = BA), except under the points method, see below.

Decomposition (per case, then summed per key). With ``pay`` the case's payment (0 when the
case is not settled), ``S`` its standard and ``RW`` its weight (both 0 when the case has no
standard: paid by item, not covered, not settled) and ``u = S / RW`` the yuan per RW of the
case, every coefficient included:

- ``change      = pay_BB − pay_AA``
- ``regrouping  = pay_BA − pay_AA`` (分组变化: the alt ruleset at the base prices)
- ``casemix     = (RW_BB − RW_BA) × u_BA`` (病例组合: the weights changed, the price did not)
- ``price       = RW_BB × (u_BB − u_BA)`` (价格: the yuan per RW changed)
- ``outlier     = (pay_BB − S_BB) − (pay_BA − S_BA)`` (极值/特殊: what outlier, by-item and
  other special payments add to or take from the standard)

so that ``casemix + price = S_BB − S_BA`` and ``regrouping + casemix + price + outlier =
change`` exactly. Where ``u_BA`` is undefined (the case has no standard, or RW 0, in BA) it is
taken as ``u_BB``: a case that enters standard payment between BA and BB brings its whole
standard as case mix, one that leaves it takes its standard away as case mix (``RW_BB = 0``);
its payment beyond the standard (by item…) is in ``outlier``. ``price`` is computed as
``(S_BB − S_BA) − casemix``, which is the formula above wherever ``u_BA`` is defined.

``S`` is the case's standard as a normal case is paid, in cents: under the rate method the
``standard`` column of :func:`~drgkit.settlement.settle` (RW × base rate × level and hospital
coefficients, rounded once to the cent); under the points method what the case would be paid
as a normal case: its normal points (RW × points per RW × coefficients) × the scenario's
point value, rounded to the cent — for outlier cases found by settling them once more without
the outlier rules at the same point values. The ``standard`` column of a points settlement
(the money standard at the reference rate, used to find outliers) is not a payment.

Points method: "the same prices" in BA means the base run's point values, so BA is settled
with AA's point values; BB computes its own point values from its budget even when the policy
does not change (a regrouping that raises the points dilutes the point value: a price effect).

Exactness and rounding: regrouping, outlier and ``S_BB − S_BA`` are whole cents per case. The
case-mix part is a rational number per case; it is summed exactly per key (as
:class:`fractions.Fraction`) and rounded once, half up (away from zero), to the cent;
``price = (S_BB − S_BA) − casemix`` of the key. Every row of :attr:`Simulation.table` adds up
to its change to the cent, and the rows add up to :attr:`Simulation.total`. The per-case table
rounds each case's case mix the same way (its rows add up too), so the sum of per-case case-mix
(and price) amounts may differ from the key's by a few cents: the key table is authoritative.

Cases that are not settled (invalid, unknown scheme…) are never dropped: they count in
``cases``, pay 0 and have no standard in that scenario; one not settled in both scenarios
changes 0 → 0 and is counted in ``not_settled``.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any

import attrs
import numpy as np
import pyarrow as pa

from .._io import open_cases
from .._money import (
    OK,
    RW_DECIMALS,
    RW_SCALE,
    cents_array,
    group_sums,
    half_up,
    round_fraction,
    rw_units,
    scaled_array,
    to_cents,
    yuan,
)
from .._resolve import RESOLVER, Names
from ..errors import ArgumentError, CaseDataError
from ..ruleset._model import Ruleset, RulesetSeries
from ..schema import (
    CMI_TYPE,
    SIMULATE_CASE_SCHEMA,
    SIMULATE_COMPONENTS,
    SIMULATE_KEY_SCHEMA,
    SIMULATE_SCENARIOS,
)
from ._policy import Policy, PolicyError
from ._settle import Reduced, settle_batches, settle_schema

__all__ = ["COMPONENTS", "Simulation", "simulate"]

#: the parts of a change, in order; they add up to ``change``
COMPONENTS = SIMULATE_COMPONENTS
SCENARIOS = SIMULATE_SCENARIOS
#: columns of a grouped input that would stop settlement from regrouping it
_GROUP_OUTPUT = ("status", "reason", "detail", "mdc", "adrg", "drg", "ruleset")
_OUTLIER_CLASSES = ("low_outlier", "high_outlier")

HEADINGS = {
    "cases": ("cases", "病例数"),
    "settled_base": ("settled base", "结算数 基线"),
    "settled_regrouped": ("settled regrouped", "结算数 重新分组"),
    "settled_alt": ("settled alt", "结算数 方案"),
    "not_settled": ("not settled", "未结算"),
    "cmi_base": ("CMI base", "CMI 基线"),
    "cmi_regrouped": ("CMI regrouped", "CMI 重新分组"),
    "cmi_alt": ("CMI alt", "CMI 方案"),
    "payment_base": ("payment base", "支付 基线"),
    "payment_regrouped": ("regrouped", "重新分组"),
    "payment_alt": ("payment alt", "支付 方案"),
    "change": ("change", "差额"),
    "regrouping": ("regrouping", "分组变化"),
    "casemix": ("case mix", "病例组合"),
    "price": ("price", "价格"),
    "outlier": ("outlier/special", "极值/特殊"),
}
#: Chinese headings of the usual keys
KEY_HEADINGS = {
    "hospital_id": "医疗机构",
    "department": "科室",
    "drg": "病组 基线",
    "drg_base": "病组 基线",
    "drg_alt": "病组 方案",
    "hospital_level": "医院等级",
    "insurance_type": "险种",
}
DEFINITIONS = (
    "change 差额 = payment alt − payment base = regrouping + case mix + price + outlier",
    "regrouping 分组变化 = payment under the alt ruleset at base prices − payment base",
    "case mix 病例组合 = (RW alt − RW regrouped) × yuan per RW regrouped",
    "price 价格 = RW alt × change of yuan per RW",
    "outlier 极值/特殊 = change of (payment − standard): outliers, by-item, special cases",
)


# ------------------------------------------------------------------ result


@attrs.frozen(slots=True, eq=False, repr=False)
class Simulation:
    """Result of :func:`simulate`.

    Scenarios are named ``base`` (AA), ``regrouped`` (BA) and ``alt`` (BB).

    ``table``: one row per key of ``by`` (sorted, missing keys last): ``cases``,
    ``settled_<scenario>``, ``not_settled`` (settled in neither base nor alt: 0 → 0),
    ``cmi_<scenario>`` (Σ RW ÷ cases with an RW, 4 decimals, null without any),
    ``payment_<scenario>``, ``change`` and its parts ``regrouping``, ``casemix``, ``price``,
    ``outlier`` (exact yuan, decimal128(18,2)).
    ``cases``: one row per input case, in input order: ``case_id``, the ``by`` columns,
    ``drg_base``, ``drg_alt``, ``class_base``, ``class_alt`` (payment classes), then per
    scenario ``settled_*``, ``rw_*``, ``standard_*`` (the S of the decomposition) and
    ``payment_*`` (null when not settled), then ``change`` and its parts (case mix rounded
    per case, price the rest of the case's change of standard).
    ``total``: the sums of the table's rows (CMI over every case), money as Decimal yuan.
    ``settlements``: the settled tables of the three scenarios (one object twice when a run
    was skipped); ``runs``: the scenarios actually settled. ``labels``: ruleset and policy of
    the base and alt scenarios.
    """

    table: pa.Table
    cases: pa.Table
    total: Mapping[str, Any]
    by: tuple[str, ...]
    labels: Mapping[str, str]
    settlements: Mapping[str, pa.Table]
    runs: tuple[str, ...]

    def __repr__(self) -> str:
        return (
            f"<Simulation by={self.by!r} keys={self.table.num_rows} "
            f"cases={self.total['cases']} change={self.total['change']}>"
        )

    def render(self, max_rows: int | None = None) -> str:
        """A readable text table: one line per key and a total line, headings in English
        and Chinese, money with thousands separators."""
        lb = self.labels
        lines = [
            f"What-if simulation 模拟测算: {self.total['cases']} cases 病例, by "
            f"{', '.join(self.by) or '(all)'}",
            f"  base 基线: ruleset {lb['base_ruleset']}, policy {lb['base_policy']}",
            f"  alt  方案: ruleset {lb['alt_ruleset']}, policy {lb['alt_policy']}",
        ]
        columns = [
            "cases",
            "settled_base",
            "settled_alt",
            "not_settled",
            "cmi_base",
            "cmi_alt",
            "payment_base",
            "payment_alt",
            "change",
            *COMPONENTS,
        ]
        keys = list(self.by) or [""]  # without keys, one label column for the total
        heads = [(k, KEY_HEADINGS.get(k, k)) for k in keys] + [HEADINGS[c] for c in columns]
        rows = self.table.to_pylist() if self.by else []
        shown = rows if max_rows is None else rows[:max_rows]
        body = [[_text(r[k]) for k in keys] + [_text(r[c]) for c in columns] for r in shown]
        total = ["合计 total"] + [""] * (len(keys) - 1) + [_text(self.total[c]) for c in columns]
        widths = [
            max(_width(x) for x in col)
            for col in zip(
                *[[h[0] for h in heads], [h[1] for h in heads], *body, total], strict=True
            )
        ]
        numeric = [False] * len(keys) + [True] * len(columns)

        def line(cells: Sequence[str]) -> str:
            out = []
            for cell, w, num in zip(cells, widths, numeric, strict=True):
                pad = " " * (w - _width(cell))
                out.append(pad + cell if num else cell + pad)
            return "  ".join(out).rstrip()

        lines += [
            "",
            line([h[0] for h in heads]),
            line([h[1] for h in heads]),
            "  ".join("-" * w for w in widths),
        ]
        lines += [line(r) for r in body]
        if len(shown) < len(rows):
            lines.append(f"… {len(rows) - len(shown)} more rows 行")
        lines += ["  ".join("-" * w for w in widths), line(total), ""]
        lines += [f"  {d}" for d in DEFINITIONS]
        return "\n".join(lines)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return f"{value:,}" if value.as_tuple().exponent == -2 else str(value)
    return str(value)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# ------------------------------------------------------------------ scenarios


@attrs.frozen(slots=True, eq=False)
class _Scenario:
    """One settlement, as the decomposition reads it (cents; RW·RW_SCALE)."""

    table: pa.Table
    point_values: Mapping[str, Decimal]
    settled: np.ndarray
    pay: np.ndarray  # 0 when not settled
    has_std: np.ndarray
    std: np.ndarray  # S, 0 without a standard
    rw: np.ndarray  # 0 without a standard


def _settle(
    cases: pa.Table,
    policy: Policy,
    ruleset: Any,
    options: Mapping[str, Any],
    reduced: Reduced | None,
) -> tuple[pa.Table, dict[str, Decimal]]:
    holder: list[Any] = []
    batches = list(
        settle_batches(
            cases,
            policy,
            ruleset,
            reduced=reduced,
            run_hook=lambda run, _src: holder.append(run),
            **options,
        )
    )
    run = holder[0]
    return (pa.Table.from_batches(batches, schema=run.schema), dict(run.summary.point_values))


def _scenario(
    cases: pa.Table,
    policy: Policy,
    ruleset: Any,
    options: Mapping[str, Any],
    reduced: Reduced | None,
) -> _Scenario:
    table, values = _settle(cases, policy, ruleset, options, reduced)
    for pool, value in values.items():
        if value < 0:
            raise PolicyError(
                f"the point value of pool {pool!r} is negative ({value}): the "
                "budget does not cover what is paid by item; raise "
                "points.budget",
                file=policy.path,
            )
    n = table.num_rows
    settled = _bools(table.column("settled"))
    pay = _payments(table, settled)
    std, sflag = to_cents(table.column("standard"), n)
    has_std = (sflag == OK) & settled
    std = np.where(has_std, std, 0)
    rw_values, rw_flag = rw_units(table.column("rw"), n)
    bad = has_std & (rw_flag != OK)
    if bad.any():  # pragma: no cover - settle writes RW_TYPE
        raise AssertionError(
            f"{int(bad.sum())} settled case(s) have an RW that is not "
            f"exact at {RW_DECIMALS} decimals"
        )
    rw = np.where(has_std, rw_values, 0)
    if policy.method == "points":
        classes = np.array(_plain(table.column("payment_class")).to_pylist(), dtype=object)
        outliers = has_std & np.isin(classes, _OUTLIER_CLASSES)
        # a normal case is paid its standard: S is its payment ...
        std = np.where(has_std, pay, 0)
        if outliers.any():
            # ... and an outlier's S what it would be paid as a normal case, at the same
            # point values: settle once more without the outlier rules
            config = {k: v for k, v in policy.config.items() if k != "outliers"}
            normal = Policy.from_config(config, path=policy.path, weights=policy.weights.path)
            again, _ = _settle(cases, normal, ruleset, options, Reduced(values))
            if not (_bools(again.column("settled")) == settled).all():  # pragma: no cover
                raise AssertionError(
                    "settling without outlier rules changed which cases are settled"
                )
            npay = _payments(again, settled)
            std = np.where(outliers, npay, std)
    return _Scenario(
        table, values, settled, pay, has_std, std.astype(np.int64), rw.astype(np.int64)
    )


def _payments(table: pa.Table, settled: np.ndarray) -> np.ndarray:
    """Payment cents (0 when not settled); every settled case must have one."""
    pay, flag = to_cents(table.column("payment"), table.num_rows)
    if (settled & (flag != OK)).any():  # pragma: no cover - a settlement bug
        raise AssertionError(
            f"{int((settled & (flag != OK)).sum())} settled case(s) have no payment within range"
        )
    return np.where(settled, pay, 0)


def _bools(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=np.bool_)


def _plain(arr: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    return arr


# ------------------------------------------------------------------ inputs


def _policy(spec: Any, weights: Any, names: Names) -> Policy:
    if isinstance(spec, Policy):
        if weights is None:
            return spec
        return Policy.from_config(spec.config, path=spec.path, weights=weights)
    return names.policy(spec, weights)


def _same_policy(a: Policy, b: Policy) -> bool:
    # the content hash covers the policy file and the table, not overrides: compare the config
    return a is b or (
        a.content_hash == b.content_hash
        and a.config == b.config
        and a.weights.content_hash == b.weights.content_hash
    )


def _ruleset(spec: Any, names: Names) -> Ruleset | RulesetSeries | None:
    return None if spec is None else names.ruleset(spec)


def _ruleset_key(rs: Ruleset | RulesetSeries | None) -> Any:
    if rs is None:
        return None
    versions = rs.ordered() if isinstance(rs, RulesetSeries) else [rs]
    return tuple(
        (v.id, v.content_hash, v.info.effective_from, v.info.effective_to) for v in versions
    )


def _as_table(cases: Any, encoding: str) -> pa.Table:
    if isinstance(cases, pa.Table):
        return cases
    src = open_cases(cases, encoding=encoding)
    table = pa.Table.from_batches(list(src.batches), schema=src.schema)
    if src.malformed:
        first = src.malformed[0]
        raise CaseDataError(
            f"{len(src.malformed)} line(s) of the input could not be split "
            f"into columns (the first on line {first.row}); group the file "
            "first (drgkit group) to see them",
            file=src.name,
        )
    return table


# ------------------------------------------------------------------ simulate


def simulate(
    cases: Any,
    *,
    base_ruleset: Any,
    base_policy: Any,
    alt_ruleset: Any = None,
    alt_policy: Any = None,
    by: Sequence[str] | str = ("hospital_id",),
    weights: Any = None,
    alt_weights: Any = None,
    **settle_options: Any,
) -> Simulation:
    """Settle ``cases`` under the base and the alt ruleset/policy and explain the change per
    key of ``by`` (see the module documentation for the exact definitions).

    ``base_ruleset``/``alt_ruleset``: ruleset id, region (versions by discharge date), folder
    or object; ``None`` for the base means the grouping the cases carry (``status``/``drg``
    columns) or else the base policy's ruleset; an omitted alt ruleset is the base one. When a
    ruleset is given, cases that are already grouped are grouped again.
    ``base_policy``/``alt_policy``: policy id, TOML path or :class:`Policy`; an omitted alt
    policy is the base one. ``weights`` is the base policy's published table;
    ``alt_weights`` the alt policy's (omitted: the base policy's ``weights`` when the alt
    policy is omitted too, else the alt policy's own table). With ``alt_policy`` omitted,
    ``alt_weights`` alone simulates a new weights table under the same rules.
    ``by``: columns of the settlement (``hospital_id``, ``department``, ``hospital_level``,
    ``insurance_type``…; ``drg`` is the base group; ``drg_alt``, ``payment_class_alt`` … name
    the alt scenario's) or of the input (kept through settlement).
    ``settle_options`` go to every :func:`~drgkit.settlement.settle_batches` run
    (``hospitals``, ``layout``, ``columns``, ``reduced`` to fix point values, …).
    """
    if "overrides" in settle_options:
        raise TypeError(
            "simulate() applies no policy overrides: pass Policy objects "
            "(Policy.from_toml(path, overrides=...)) as base_policy / alt_policy"
        )
    options = dict(settle_options)
    encoding = options.get("encoding", "utf-8")
    user_reduced = options.pop("reduced", None)
    by = (by,) if isinstance(by, str) else tuple(by)
    if len(set(by)) != len(by):
        raise ArgumentError(f"by names a column twice: {by!r}")

    base_pol = _policy(base_policy, weights, RESOLVER)
    if alt_policy is None:
        alt_pol = base_pol if alt_weights is None else _policy(base_pol, alt_weights, RESOLVER)
    else:
        alt_pol = _policy(alt_policy, alt_weights, RESOLVER)
    policy_changes = not _same_policy(base_pol, alt_pol)

    # a file is read by each run (its name stays in messages); other inputs once
    if isinstance(cases, (str, os.PathLike)):
        source: Any = cases
        schema = open_cases(cases, encoding=encoding).schema
    else:
        source = _as_table(cases, encoding)
        schema = source.schema
    grouped = {"status", "drg"} <= set(schema.names)
    base_rs = _ruleset(base_ruleset, RESOLVER)
    if base_rs is None and not grouped:
        if not base_pol.ruleset:
            raise CaseDataError(
                "the cases are not grouped (no status/drg columns) and neither "
                "base_ruleset nor the base policy names a ruleset"
            )
        base_rs = _ruleset(base_pol.ruleset, RESOLVER)
    alt_rs = base_rs if alt_ruleset is None else _ruleset(alt_ruleset, RESOLVER)
    ruleset_changes = alt_rs is not base_rs and _ruleset_key(alt_rs) != _ruleset_key(base_rs)
    stripped: list[pa.Table] = []

    def input_for(rs: Any) -> Any:
        if rs is None or not grouped:
            return source
        if not stripped:  # grouped cases to group again: without their groups
            table = _as_table(source, encoding)
            stripped.append(
                table.drop_columns([c for c in _GROUP_OUTPUT if c in table.column_names])
            )
        return stripped[0]

    # where each key comes from: (scenario, column)
    names = {"base": set(settle_schema(base_pol).names), "alt": set(settle_schema(alt_pol).names)}
    sources: list[tuple[str, str]] = []
    extra_keep: list[str] = []
    for name in by:
        if name.endswith("_alt") and name[:-4] in names["alt"]:
            sources.append(("alt", name[:-4]))
        elif name.endswith("_base") and name[:-5] in names["base"]:
            sources.append(("base", name[:-5]))
        elif name in names["base"]:
            sources.append(("base", name))
        elif name in schema.names:
            sources.append(("base", name))
            extra_keep.append(name)
        else:
            raise CaseDataError(
                f"cannot group by {name!r}: it is neither a column of the "
                "settlement nor of the input",
                column=name,
            )
    user_keep = list(options.pop("keep", None) or [])
    base_options = {**options, "keep": user_keep + [k for k in extra_keep if k not in user_keep]}
    options["keep"] = user_keep

    aa = _scenario(input_for(base_rs), base_pol, base_rs, base_options, user_reduced)
    runs = ["base"]
    if ruleset_changes:
        fixed = user_reduced or (Reduced(aa.point_values) if base_pol.method == "points" else None)
        ba = _scenario(input_for(alt_rs), base_pol, alt_rs, options, fixed)
        runs.append("regrouped")
    else:
        ba = aa
    if policy_changes or (ruleset_changes and base_pol.method == "points" and user_reduced is None):
        bb = _scenario(input_for(alt_rs), alt_pol, alt_rs, options, user_reduced)
        runs.append("alt")
    else:
        bb = ba
    n = aa.table.num_rows
    if not (ba.table.num_rows == bb.table.num_rows == n):  # pragma: no cover
        raise AssertionError("the scenarios settled different numbers of cases")

    # ---- keys
    scen = {"base": aa, "alt": bb}
    key_arrays = [_plain(scen[s].table.column(c)) for s, c in sources]
    if by:
        tuples = list(zip(*(a.to_pylist() for a in key_arrays), strict=True))
        uniq = sorted(set(tuples), key=lambda t: tuple((v is None, v) for v in t))
        where = {t: k for k, t in enumerate(uniq)}
        idx = np.fromiter((where[t] for t in tuples), dtype=np.int64, count=n)
    else:
        uniq = [()]
        idx = np.zeros(n, dtype=np.int64)
    m = len(uniq)

    # ---- per case, exact
    change = bb.pay - aa.pay
    regrouping = ba.pay - aa.pay
    d_std = bb.std - ba.std
    outlier = (bb.pay - bb.std) - (ba.pay - ba.std)
    per_ba = ba.has_std & (ba.rw > 0)
    casemix = np.zeros(n, dtype=np.int64)
    casemix = np.where(per_ba & ~bb.has_std, -ba.std, casemix)  # leaves: RW_BB = 0
    casemix = np.where(~per_ba & bb.has_std, bb.std, casemix)  # enters: u_BA := u_BB
    rational = per_ba & bb.has_std & (bb.rw != ba.rw)
    exact: list[dict[int, int]] = [{} for _ in range(m)]  # key -> RW_BA -> Σ numerators
    for i in np.flatnonzero(rational).tolist():
        num = (int(bb.rw[i]) - int(ba.rw[i])) * int(ba.std[i])
        den = int(ba.rw[i])
        casemix[i] = half_up(Fraction(num, den))
        acc = exact[idx[i]]
        acc[den] = acc.get(den, 0) + num
    whole = np.where(rational, 0, casemix)
    price = d_std - casemix

    # ---- per key
    def ksum(values: np.ndarray) -> np.ndarray:
        return group_sums(idx, values.astype(np.int64), m)

    scenarios = dict(zip(SCENARIOS, (aa, ba, bb), strict=True))
    k_change, k_regroup, k_dstd, k_out = (
        ksum(change),
        ksum(regrouping),
        ksum(d_std),
        ksum(outlier),
    )
    k_whole = ksum(whole)
    k_casemix = np.zeros(m, dtype=np.int64)
    for k in range(m):
        q = Fraction(int(k_whole[k]))
        for den, num in exact[k].items():
            q += Fraction(num, den)
        k_casemix[k] = half_up(q)
    k_price = k_dstd - k_casemix
    if not (k_regroup + k_casemix + k_price + k_out == k_change).all():  # pragma: no cover
        raise AssertionError("the components do not add up to the change")

    counts = {"cases": ksum(np.ones(n, np.int64))}
    counts.update({f"settled_{s}": ksum(sc.settled) for s, sc in scenarios.items()})
    counts["not_settled"] = ksum(~aa.settled & ~bb.settled)
    amounts = {f"payment_{s}": ksum(sc.pay) for s, sc in scenarios.items()}
    amounts.update(
        {
            "change": k_change,
            "regrouping": k_regroup,
            "casemix": k_casemix,
            "price": k_price,
            "outlier": k_out,
        }
    )
    columns: dict[str, pa.Array] = {}
    for j, (name, arr) in enumerate(zip(by, key_arrays, strict=True)):
        columns[name] = pa.array([t[j] for t in uniq], arr.type)
    columns.update({name: pa.array(values) for name, values in counts.items()})
    columns.update(
        {f"cmi_{s}": pa.array(_cmi(idx, sc, m), CMI_TYPE) for s, sc in scenarios.items()}
    )
    columns.update({name: cents_array(values) for name, values in amounts.items()})
    labels = {
        "base_ruleset": _label(base_rs),
        "base_policy": base_pol.label,
        "alt_ruleset": _label(alt_rs),
        "alt_policy": alt_pol.label,
    }
    meta = {
        b"decomposition": "; ".join(DEFINITIONS),
        b"rounding": "per case exact; case mix summed exactly per key and rounded once "
        "half up to 0.01 yuan; price = Δstandard − case mix",
        **{k.encode(): v for k, v in labels.items()},
    }
    key_schema = pa.schema(
        [pa.field(name, columns[name].type) for name in by] + list(SIMULATE_KEY_SCHEMA),
        metadata=meta,
    )
    key_table = pa.Table.from_arrays([columns[f.name] for f in key_schema], schema=key_schema)

    # ---- per case
    fixed_names = {
        "case_id",
        "drg_base",
        "drg_alt",
        "class_base",
        "class_alt",
        *(f"{c}_{s}" for c in ("settled", "rw", "standard", "payment") for s in SCENARIOS),
        "change",
        *COMPONENTS,
    }
    case_cols: dict[str, pa.Array] = {"case_id": _plain(aa.table.column("case_id"))}
    for name, arr in zip(by, key_arrays, strict=True):
        if name not in fixed_names:
            case_cols[name] = arr
    case_cols.update(
        {
            "drg_base": _plain(aa.table.column("drg")),
            "drg_alt": _plain(bb.table.column("drg")),
            "class_base": _plain(aa.table.column("payment_class")),
            "class_alt": _plain(bb.table.column("payment_class")),
        }
    )
    case_cols.update({f"settled_{s}": pa.array(sc.settled) for s, sc in scenarios.items()})
    case_cols.update(
        {f"rw_{s}": scaled_array(sc.rw, RW_DECIMALS, sc.has_std) for s, sc in scenarios.items()}
    )
    case_cols.update(
        {f"standard_{s}": cents_array(sc.std, sc.has_std) for s, sc in scenarios.items()}
    )
    case_cols.update(
        {f"payment_{s}": cents_array(sc.pay, sc.settled) for s, sc in scenarios.items()}
    )
    case_cols.update(
        {
            "change": cents_array(change),
            "regrouping": cents_array(regrouping),
            "casemix": cents_array(casemix),
            "price": cents_array(price),
            "outlier": cents_array(outlier),
        }
    )
    case_schema = pa.schema(
        [
            pa.field(name, case_cols[name].type)
            for name in case_cols
            if name not in SIMULATE_CASE_SCHEMA.names
        ]
        + list(SIMULATE_CASE_SCHEMA),
        metadata=meta,
    )
    case_table = pa.Table.from_arrays([case_cols[f.name] for f in case_schema], schema=case_schema)

    everything = np.zeros(n, dtype=np.int64)
    total: dict[str, Any] = {name: sum(values.tolist()) for name, values in counts.items()}
    total.update({f"cmi_{s}": _cmi(everything, sc, 1)[0] for s, sc in scenarios.items()})
    total.update({name: yuan(sum(values.tolist())) for name, values in amounts.items()})
    return Simulation(
        key_table,
        case_table,
        MappingProxyType(total),
        by,
        MappingProxyType(labels),
        MappingProxyType({s: sc.table for s, sc in scenarios.items()}),
        tuple(runs),
    )


def _cmi(idx: np.ndarray, sc: _Scenario, m: int) -> list[Decimal | None]:
    """CMI per key: Σ RW ÷ cases with an RW, half up to 4 decimals (None without RW)."""
    has = sc.has_std
    total = group_sums(idx, np.where(has, sc.rw, 0), m)
    count = group_sums(idx, has.astype(np.int64), m)
    # Σ RW·RW_SCALE ÷ (count·RW_SCALE), rounded exactly
    return [
        None if c == 0 else round_fraction(Fraction(int(t), int(c) * RW_SCALE), 4)
        for t, c in zip(total.tolist(), count.tolist(), strict=True)
    ]


def _label(rs: Ruleset | RulesetSeries | None) -> str:
    if rs is None:
        return "the cases' own grouping"
    return rs.id
