"""Period settlement: hospital totals, quality deductions, retention and over-spend sharing
(结余留用、合理超支分担), monthly pre-settlement (月度预结算) and annual clearing (年度清算).

Every function here is a pure function over the table of settled cases that
:func:`drgkit.settlement.settle` returns (the columns of ``settle_schema``); nothing is read from
or written to disk. The period rules come from the ``[period]`` section of a policy
(:meth:`PeriodRules.from_policy`)::

    retention = [{ up_to = "0.10", keep = "1" }, { keep = "0.5" }]
    overspend = [{ up_to = "0.10", fund_share = "0.5" }, { fund_share = "0" }]
    [[period.quality]]
    metric = "readmitted_31d"
    above_average_by = "0.20"
    deduct = "0.10"
    [period.presettlement]
    ratio = "0.90"

Money and rounding (the project's one rule)
-------------------------------------------
Money is exact integer cents (分) throughout; ratios are exact decimals (computed with
:class:`fractions.Fraction`, never floats). Each amount is computed exactly and rounded
**once**, half up (away from zero), to 0.01 yuan **at the level where it is defined**:

* a quality deduction per (rule, hospital, DRG);
* the kept surplus and the fund's share of an over-spend per hospital;
* a monthly pre-payment per (month, hospital).

Every other amount is a sum or a difference of rounded amounts (totals are sums of rounded
amounts, never re-rounded), so every identity below holds to the cent. Arrow output columns of
money are ``MONEY`` (``decimal128(18, 2)``); counts are ``int64``; rates are
``decimal128(9, 6)``, rounded half up to 6 decimals for display only (comparisons use the exact
fractions).

Which cases count
-----------------
Only settled cases (``settled`` true) contribute money, costs and readmission flags. A case that
is not settled still counts in ``cases`` and makes its hospital appear. Rows whose
``hospital_id`` is null form one group of their own (hospital ``None``, listed last), so that
nothing is silently dropped and Σ over hospitals = Σ over cases always holds.

Formulas of :func:`settle_period` (per hospital ``h``, all in cents)
--------------------------------------------------------------------
::

    payment        P = Σ payment of h's settled cases
    fund_payment   F = Σ fund_payment          patient_share = Σ patient_share  (P = F + share)
    deduction      D = Σ quality deductions of h (each already rounded, see quality_deductions)
    due              = P − D
    cost           C = Σ total_cost of h's settled cases
    balance          = due − C
    surplus        S = max(balance, 0)        overspend  O = max(−balance, 0)
    base           B = budgets[h] when given, else due;   b = max(B, 0)

Bands ``[(u_1, s_1), (u_2, s_2), …, (None, s_n)]`` (``up_to`` ratios strictly increasing, the
last band open) split an amount ``x ≥ 0`` into parts: band ``k`` holds the part of ``x`` between
``u_{k−1}·b`` and ``u_k·b`` (``u_0 = 0``, ``u_n = ∞``); each part is weighted by its share::

    kept               = half_up( Σ_k keep_k       · part_k(S) )
    returned           = S − kept
    fund_overspend     = half_up( Σ_k fund_share_k · part_k(O) )
    hospital_overspend = O − fund_overspend
    hospital_result    = kept − hospital_overspend   (= balance − returned + fund_overspend)
    fund_due           = F − D − returned + fund_overspend
    already_paid       = already_paid[h] (0 when not given)
    clearing           = fund_due − already_paid    (> 0: the fund pays; < 0: the hospital repays)

Both the retention and the over-spend bands use the same base: ``due`` (the payment after quality
deductions) unless a budget is given for the hospital, then the budget (总额预算). A base that is
zero or negative (no payment, or a deduction larger than the payment) makes every bounded band
empty: the whole surplus or over-spend falls in the last, open band. The surplus itself is always
``due − cost``; the budget only scales the bands.

The hospital's money identity: patients pay it ``patient_share``, the fund pays ``fund_due``,
so its revenue is ``due − returned + fund_overspend`` and its result after cost is
``hospital_result``.

Quality deductions (:func:`quality_deductions`)
-----------------------------------------------
For each rule with ``metric = "readmitted_31d"``, per (hospital, DRG) among settled cases **that
have a group** (grouping status ``ok``):
``rate = readmitted ÷ known`` (``known``: cases whose ``readmitted_31d`` flag is not null),
``regional_rate`` = the same over every hospital's settled cases of that DRG. The group is
``exceeded`` when ``rate > regional_rate × (1 + above_average_by)`` (strictly: a rate exactly on
the threshold is not deducted), compared exactly. Then
``deduction = half_up(payment × deduct)``, where ``payment`` is Σ payment of **all** the group's
settled cases (including those with an unknown flag: the rule takes a share of "its payment
there"). Several rules add up, each as its own rows.

Edge cases, decided:

* **no known flag** in a group (``known = 0``): its rate is unknown (null) and nothing is
  deducted — a quality penalty needs evidence, and a missing flag is not a readmission;
* **regional rate 0**: the regional rate includes the hospital's own cases, so a regional rate
  of 0 means the hospital's rate is 0 too and nothing exceeds it. (Were the hospital excluded,
  "any readmission exceeds 0" would make a single readmission cost 10% of a group's payment;
  including the hospital, as the policies word it — "the regional average" — avoids that);
* a hospital that alone treats a DRG has ``rate = regional_rate`` and is never above it (for
  ``above_average_by ≥ 0``);
* there is no minimum number of cases: policies that need one must filter the table first;
* **cases without a group are not compared**: an ``ungroupable`` case (drg ``0000``) has no
  group, and an ``ambiguous`` case (a QY code, 歧义组) only a marker of inconsistent coding
  whose cases share no clinical content; neither has a readmission rate that means anything
  against a regional one, and they are already paid outside DRG rates (by item or a fixed
  row). A rule may opt in with ``statuses = ["ok", "ungroupable", "ambiguous"]`` (any subset
  containing at least one; default ``["ok"]``) for a region whose rules say otherwise.

Pay for outcome (:func:`outcome_details`; DOMAIN.md §3.1, §3.6)
----------------------------------------------------------------
Optional; a policy without these sections gets exactly the period table above::

    [period.cost_coefficient]       # 医院费用差异系数, regional average = 1
    min = "0.8"
    max = "1.2"
    apply = "payment"               # or "report": shown, not paid
    [[period.outcome]]              # 按疗效付费
    id = "bp_control"
    indicator = "bp_control_rate"   # a drgkit.monitoring indicator, or (source = "table") a
    source = "table"                # column of a per-hospital values table (settle_period's
    target = "0.80"                 # values=); or regional_margin = "0.2" (fixed rules only)
    better = "higher"               # or "lower"
    scale = "proportional"          # or "fixed"
    deduct = "1"                    # share per unit of shortfall ÷ target (fixed: the share)
    deduct_cap = "0.05"
    reward = "0.5"
    reward_cap = "0.02"

* **cost coefficient** ``c`` = clamp(cost per weight of h ÷ cost per weight of the region,
  min, max) — monitoring's ``cost_per_weight`` (weighted cost ÷ Σ RW), exact fractions, the
  region being every hospital of the table; a hospital without weighted cases keeps ``c = 1``.
  The standard payment is RW × base rate × hospital coefficient (§3.1), so the coefficient
  re-prices the payment priced by a weight (settled cases with status ``ok`` and an RW):
  ``coefficient_adjustment = half_up(priced × (c − 1))``, signed;
* **outcome rule**: value ``v`` against target ``T`` (``better = "higher"``: v < T missed,
  v > T surpassed; v = T neither). Proportional: ``gap = |v − T| ÷ T``, deduction share
  ``min(deduct × gap, deduct_cap)``, reward share ``min(reward × gap, reward_cap)``; fixed:
  ``deduct`` or ``reward``. ``amount = half_up(P × share)`` per (rule, hospital), P = the
  hospital's payment. A value that is missing (not computable, not supplied, hospital not in
  the table) deducts and rewards nothing and says so. The readmission rule of
  ``[[period.quality]]`` is the instance :meth:`OutcomeRule.of_quality` of this rule, per
  (hospital, DRG): lower is better, T = regional rate × (1 + above_average_by), fixed deduct.

Each amount is computed on the payment ``P`` (never on another adjustment) and rounded once;
``due = P − D − outcome_deduction + outcome_reward + coefficient_adjustment`` and the fund pays
the difference (``fund_due`` moves by the same amount; the patients' share does not).

Monthly pre-settlement (:func:`presettle`)
------------------------------------------
Per (month of ``discharge_date``, hospital): ``fund_payment`` = Σ fund_payment of the settled
cases discharged that month, ``prepayment = half_up(ratio × fund_payment)``. Cases without a
discharge date are in no month (they are settled at the annual clearing only).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._money import LIMIT_CENTS, MONEY, OK, cents_array, round_fraction, to_cents
from .._money import group_sums as _sum
from .._money import half_up as _half_up
from ..errors import ArgumentError, CaseDataError
from ..schema import (
    HOSPITAL_TOTALS_SCHEMA,
    PERIOD_SCHEMA,
    PRESETTLE_SCHEMA,
    QUALITY_SCHEMA,
    RATE,
)
from ._policy import Policy, PolicyError, policy_decimal
from ._quality import QUALITY_METRICS, QUALITY_STATUSES, QualityRule

__all__ = [
    "OUTCOME_SCHEMA",
    "CostCoefficient",
    "OutcomeRule",
    "OverspendBand",
    "PeriodRules",
    "QualityRule",
    "RetentionBand",
    "cost_coefficient_rule",
    "hospital_totals",
    "outcome_details",
    "outcome_rules",
    "period_bands",
    "period_ratio",
    "presettle",
    "presettle_all",
    "quality_deductions",
    "quality_rules",
    "settle_period",
]

#: The most decimals a period ratio may have (as for the policy's other coefficients).
MAX_DECIMALS = 6

_MONEY_NOTE = (
    "exact yuan (decimal128(18,2)); each amount rounded once, half up, to 0.01 where "
    "it is defined; totals are sums of rounded amounts"
)
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_PERIOD_KEYS = (
    "retention",
    "overspend",
    "quality",
    "presettlement",
    "cost_coefficient",
    "outcome",
)


# --------------------------------------------------------------------------- rules


@attrs.frozen(slots=True)
class RetentionBand:
    """Part of a surplus up to ``up_to`` × base (None: no limit), of which ``keep`` is kept."""

    up_to: Decimal | None
    keep: Decimal


@attrs.frozen(slots=True)
class OverspendBand:
    """Part of an over-spend up to ``up_to`` × base (None: no limit), of which the fund bears
    ``fund_share``."""

    up_to: Decimal | None
    fund_share: Decimal


@attrs.frozen(slots=True)
class CostCoefficient:
    """``[period.cost_coefficient]``: the hospital cost difference coefficient (医院费用差异系数)
    against the regional average (= 1), kept inside ``[min, max]``.

    ``raw`` = the hospital's cost per weight ÷ the region's (drgkit.monitoring's
    ``cost_per_weight``, exact); ``coefficient`` = raw clamped into the band; with ``apply =
    "payment"`` the hospital's DRG-priced payment is re-priced by it (see :meth:`adjustment`);
    with ``"report"`` it is only shown."""

    min: Decimal
    max: Decimal
    apply: str = "payment"

    def clamp(self, raw: Fraction) -> Fraction:
        return min(max(raw, Fraction(self.min)), Fraction(self.max))

    def adjustment(self, priced_cents: int, coefficient: Fraction) -> int:
        """half_up(priced × (coefficient − 1)): the standard payment is RW × base rate ×
        hospital coefficient (DOMAIN.md §3.1), so multiplying the coefficient by ``c`` adds
        ``(c − 1)`` of the payment priced with it; 0 with ``apply = "report"``."""
        if self.apply != "payment":
            return 0
        return _half_up(priced_cents * (coefficient - 1))


@attrs.frozen(slots=True)
class OutcomeRule:
    """A pay-for-outcome rule (按疗效付费): an indicator against a target.

    ``better = "higher"``: a value below ``target`` is *missed*, above it *surpassed*
    (``"lower"``: the reverse); a value equal to the target is neither. The target is
    ``target`` (absolute) or, when ``regional_margin`` is set, the regional value × (1 +
    regional_margin). Shares of the payment:

    * ``scale = "proportional"``: missed → ``min(deduct × gap, deduct_cap)``, surpassed →
      ``min(reward × gap, reward_cap)``, where ``gap = |value − target| ÷ target`` (how far,
      as a share of the target, the value is from it);
    * ``scale = "fixed"``: missed → ``deduct``, surpassed → ``reward``.

    The amount is ``half_up(payment × share)``, rounded once. The readmission rule of
    ``[[period.quality]]`` is the instance :meth:`of_quality` (lower is better, target =
    regional rate × (1 + above_average_by), fixed ``deduct``, no reward)."""

    id: str
    indicator: str
    better: str = "higher"
    target: Decimal | None = None
    regional_margin: Decimal | None = None
    scale: str = "proportional"
    deduct: Decimal = Decimal(0)
    reward: Decimal = Decimal(0)
    deduct_cap: Decimal = Decimal(1)
    reward_cap: Decimal = Decimal(1)
    #: "monitoring": the indicator of drgkit.monitoring; "table": a per-hospital values table
    source: str = "monitoring"

    @classmethod
    def of_quality(cls, rule: QualityRule, index: int = 0) -> OutcomeRule:
        """The ``[[period.quality]]`` readmission rule as a general outcome rule."""
        return cls(
            id=f"quality[{index}]",
            indicator="readmission_rate",
            better="lower",
            regional_margin=rule.above_average_by,
            scale="fixed",
            deduct=rule.deduct,
        )

    def target_of(self, regional: Fraction | None) -> Fraction | None:
        """The target: absolute, or the regional value × (1 + margin) (None without one)."""
        if self.regional_margin is None:
            return None if self.target is None else Fraction(self.target)
        if regional is None:
            return None
        return regional * (1 + Fraction(self.regional_margin))

    def assess(self, value: Fraction | None, target: Fraction | None) -> tuple[str, Fraction]:
        """(result, share of the payment): result is ``missed``, ``surpassed``, ``met`` (the
        value equals the target) or ``no value``; the share is signed (a deduction < 0)."""
        if value is None or target is None:
            return "no value", Fraction(0)
        low = value < target
        if value == target:
            return "met", Fraction(0)
        missed = low if self.better == "higher" else not low
        if self.scale == "fixed":
            return (
                ("missed", -Fraction(self.deduct))
                if missed
                else (
                    "surpassed",
                    Fraction(self.reward),
                )
            )
        gap = abs(value - target) / target
        if missed:
            return "missed", -min(Fraction(self.deduct) * gap, Fraction(self.deduct_cap))
        return "surpassed", min(Fraction(self.reward) * gap, Fraction(self.reward_cap))

    def amount(self, payment_cents: int, share: Fraction) -> int:
        """``half_up(payment × share)`` cents (negative: a deduction)."""
        return _half_up(payment_cents * share)


@attrs.frozen(slots=True)
class PeriodRules:
    """The ``[period]`` section of a policy, validated, with exact decimal ratios."""

    retention: tuple[RetentionBand, ...]
    overspend: tuple[OverspendBand, ...]
    quality: tuple[QualityRule, ...] = ()
    #: share of a month's fund payments paid in advance; None: the policy has no
    #: ``[period.presettlement]``
    presettlement_ratio: Decimal | None = None
    policy_id: str | None = None
    policy_hash: str | None = None
    #: ``[period.cost_coefficient]`` (None: no cost difference coefficient)
    cost_coefficient: CostCoefficient | None = None
    #: ``[[period.outcome]]``: pay-for-outcome rules against targets
    outcomes: tuple[OutcomeRule, ...] = ()

    @property
    def pays_for_outcome(self) -> bool:
        """True when the period table carries the outcome columns (a cost coefficient or an
        outcome rule is set); without them it is exactly the table of earlier versions."""
        return self.cost_coefficient is not None or bool(self.outcomes)

    @classmethod
    def from_policy(cls, policy: Policy) -> PeriodRules:
        """The period rules of ``policy`` (``policy.config["period"]``); a malformed section
        raises :class:`PolicyError` naming the key and the policy file."""
        rules = cls.from_config(policy.config.get("period"), path=policy.path)
        return attrs.evolve(rules, policy_id=policy.id, policy_hash=policy.content_hash)

    @classmethod
    def from_config(cls, period: Any, *, path: Any = None) -> PeriodRules:
        """Validate a ``[period]`` table (as read from TOML).

        ``retention`` and ``overspend`` are required; ``quality`` is optional (none: no quality
        link); ``presettlement`` is optional (none: :func:`presettle` refuses to run)."""
        if period is None:
            raise PolicyError(
                "the policy has no [period] section (retention, overspend, quality, presettlement)",
                file=path,
            )
        if not isinstance(period, Mapping):
            raise PolicyError("[period] must be a table", file=path)
        _no_other_keys(period, _PERIOD_KEYS, "[period]", path)
        retention = tuple(
            RetentionBand(u, s)
            for u, s in period_bands(period.get("retention"), "keep", "period.retention", path)
        )
        overspend = tuple(
            OverspendBand(u, s)
            for u, s in period_bands(
                period.get("overspend"), "fund_share", "period.overspend", path
            )
        )
        quality = quality_rules(period.get("quality"), path)
        ratio = None
        pre = period.get("presettlement")
        if pre is not None:
            if not isinstance(pre, Mapping):
                raise PolicyError("[period.presettlement] must be a table", file=path)
            _no_other_keys(pre, ("ratio",), "[period.presettlement]", path)
            if "ratio" not in pre:
                raise PolicyError("period.presettlement.ratio is required", file=path)
            ratio = period_ratio(pre["ratio"], "period.presettlement.ratio", path, limit=Decimal(1))
        return cls(
            retention,
            overspend,
            quality,
            ratio,
            cost_coefficient=cost_coefficient_rule(period.get("cost_coefficient"), path),
            outcomes=outcome_rules(period.get("outcome"), path),
        )

    def retain(self, surplus: int, base: int) -> tuple[int, int]:
        """(kept, returned) cents of a surplus ≥ 0 under the retention bands scaled by
        ``base`` cents; kept is rounded once, half up; kept + returned = surplus."""
        if surplus < 0:
            raise ValueError(f"a surplus is not negative, got {surplus}")
        kept = _half_up(_banded(surplus, base, [(b.up_to, b.keep) for b in self.retention]))
        return kept, surplus - kept

    def share_overspend(self, overspend: int, base: int) -> tuple[int, int]:
        """(fund's share, hospital's share) cents of an over-spend ≥ 0 under the over-spend
        bands scaled by ``base`` cents; the fund's share is rounded once, half up."""
        if overspend < 0:
            raise ValueError(f"an over-spend is not negative, got {overspend}")
        fund = _half_up(_banded(overspend, base, [(b.up_to, b.fund_share) for b in self.overspend]))
        return fund, overspend - fund


def _no_other_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str, path: Any) -> None:
    for key in table:
        if key not in allowed:
            raise PolicyError(
                f"{where} has an unknown key {key!r} (expected {', '.join(allowed)})", file=path
            )


def period_ratio(
    value: Any, where: str, path: Any, *, limit: Decimal, positive: bool = False
) -> Decimal:
    """An exact decimal in [0, limit] (or (0, limit]) with at most 6 decimals."""
    number = policy_decimal(value, where, path, positive=positive)
    if number > limit:
        raise PolicyError(f"{where} must be at most {limit}, got {value!r}", file=path)
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMALS:
        raise PolicyError(
            f"{where} may have at most {MAX_DECIMALS} decimals, got {value!r}", file=path
        )
    return number


def period_bands(
    spec: Any, share: str, where: str, path: Any
) -> list[tuple[Decimal | None, Decimal]]:
    """Validated (up_to, share) bands: a non-empty list, up_to strictly increasing, the last
    band without up_to (open), every other band with one."""
    if spec is None:
        raise PolicyError(
            f"{where} is required: a list of {{ up_to, {share} }} bands ending "
            f"with an open band {{ {share} }}",
            file=path,
        )
    if not isinstance(spec, list) or not spec:
        raise PolicyError(f"{where} must be a non-empty list of bands", file=path)
    out: list[tuple[Decimal | None, Decimal]] = []
    previous = Decimal(0)
    for k, band in enumerate(spec):
        here = f"{where}[{k}]"
        if not isinstance(band, Mapping):
            raise PolicyError(f"{here} must be a table {{ up_to, {share} }}", file=path)
        _no_other_keys(band, ("up_to", share), here, path)
        if share not in band:
            raise PolicyError(f"{here}.{share} is required", file=path)
        value = period_ratio(band[share], f"{here}.{share}", path, limit=Decimal(1))
        last = k == len(spec) - 1
        if "up_to" not in band:
            if not last:
                raise PolicyError(
                    f"{here} has no up_to, but only the last band may be open", file=path
                )
            out.append((None, value))
            continue
        if last:
            raise PolicyError(
                f"{where} must end with an open band (no up_to); {here} has "
                f"up_to = {band['up_to']!r}",
                file=path,
            )
        up_to = period_ratio(
            band["up_to"], f"{here}.up_to", path, limit=Decimal(100), positive=True
        )
        if up_to <= previous:
            raise PolicyError(
                f"{where} must be ordered: {here}.up_to ({up_to}) must be above "
                f"the previous band's ({previous})",
                file=path,
            )
        previous = up_to
        out.append((up_to, value))
    return out


def quality_rules(spec: Any, path: Any) -> tuple[QualityRule, ...]:
    """The ``[[period.quality]]`` rules (the list as read from TOML), validated; the rule
    itself and its decision live in :mod:`drgkit.settlement._quality`."""
    if spec is None:
        return ()
    if not isinstance(spec, list):
        raise PolicyError(
            "period.quality must be an array of tables ([[period.quality]])", file=path
        )
    rules = []
    keys = ("metric", "above_average_by", "deduct")
    for k, rule in enumerate(spec):
        here = f"period.quality[{k}]"
        if not isinstance(rule, Mapping):
            raise PolicyError(f"{here} must be a table", file=path)
        _no_other_keys(rule, (*keys, "statuses"), here, path)
        statuses = rule.get("statuses", ["ok"])
        if (
            not isinstance(statuses, list)
            or not statuses
            or any(x not in QUALITY_STATUSES for x in statuses)
            or len(set(statuses)) < len(statuses)
        ):
            raise PolicyError(
                f"{here}.statuses must be a list of distinct statuses among "
                f"{', '.join(QUALITY_STATUSES)}, got {statuses!r}",
                file=path,
            )
        for key in keys:
            if key not in rule:
                raise PolicyError(f"{here}.{key} is required", file=path)
        metric = rule["metric"]
        if metric not in QUALITY_METRICS:
            raise PolicyError(
                f"{here}.metric must be one of {', '.join(QUALITY_METRICS)}, got {metric!r}",
                file=path,
            )
        rules.append(
            QualityRule(
                str(metric),
                period_ratio(
                    rule["above_average_by"], f"{here}.above_average_by", path, limit=Decimal(100)
                ),
                period_ratio(rule["deduct"], f"{here}.deduct", path, limit=Decimal(1)),
                tuple(str(x) for x in statuses),
            )
        )
    return tuple(rules)


def cost_coefficient_rule(spec: Any, path: Any) -> CostCoefficient | None:
    """``[period.cost_coefficient]`` (``min``, ``max``, optional ``apply``), validated."""
    if spec is None:
        return None
    where = "period.cost_coefficient"
    if not isinstance(spec, Mapping):
        raise PolicyError(f"[{where}] must be a table", file=path)
    _no_other_keys(spec, ("min", "max", "apply"), f"[{where}]", path)
    for key in ("min", "max"):
        if key not in spec:
            raise PolicyError(f"{where}.{key} is required", file=path)
    low = period_ratio(spec["min"], f"{where}.min", path, limit=Decimal(100), positive=True)
    high = period_ratio(spec["max"], f"{where}.max", path, limit=Decimal(100), positive=True)
    if low > high:
        raise PolicyError(f"{where}.min ({low}) is above {where}.max ({high})", file=path)
    apply = spec.get("apply", "payment")
    if apply not in ("payment", "report"):
        raise PolicyError(f"{where}.apply must be 'payment' or 'report', got {apply!r}", file=path)
    return CostCoefficient(low, high, str(apply))


_OUTCOME_KEYS = (
    "id",
    "indicator",
    "source",
    "better",
    "target",
    "regional_margin",
    "scale",
    "deduct",
    "reward",
    "deduct_cap",
    "reward_cap",
)


def outcome_rules(spec: Any, path: Any) -> tuple[OutcomeRule, ...]:
    """The ``[[period.outcome]]`` rules (the list as read from TOML), validated. A rule with
    ``source = "monitoring"`` (the default) names an indicator column of drgkit.monitoring; one
    with ``source = "table"`` names a column of the per-hospital values table given to
    :func:`settle_period` (``values=``)."""
    if spec is None:
        return ()
    if not isinstance(spec, list):
        raise PolicyError(
            "period.outcome must be an array of tables ([[period.outcome]])", file=path
        )
    from ..monitoring import INDICATOR_COLUMNS  # here: monitoring imports the settlement

    known = {name for name, _t in INDICATOR_COLUMNS}
    rules: list[OutcomeRule] = []
    for k, rule in enumerate(spec):
        here = f"period.outcome[{k}]"
        if not isinstance(rule, Mapping):
            raise PolicyError(f"{here} must be a table", file=path)
        _no_other_keys(rule, _OUTCOME_KEYS, here, path)
        rid = rule.get("id")
        if not isinstance(rid, str) or not rid or any(r.id == rid for r in rules):
            raise PolicyError(f"{here}.id must be a text, unique, got {rid!r}", file=path)
        source = rule.get("source", "monitoring")
        if source not in ("monitoring", "table"):
            raise PolicyError(
                f"{here}.source must be 'monitoring' or 'table', got {source!r}", file=path
            )
        indicator = rule.get("indicator")
        if not isinstance(indicator, str) or not indicator or indicator == "hospital_id":
            raise PolicyError(
                f"{here}.indicator must be a column name, got {indicator!r}", file=path
            )
        if source == "monitoring" and indicator not in known:
            raise PolicyError(
                f"{here}.indicator {indicator!r} is not an indicator of drgkit.monitoring "
                '(use source = "table" for values supplied per hospital)',
                file=path,
            )
        better = rule.get("better", "higher")
        if better not in ("higher", "lower"):
            raise PolicyError(
                f"{here}.better must be 'higher' or 'lower', got {better!r}", file=path
            )
        scale = rule.get("scale", "proportional")
        if scale not in ("proportional", "fixed"):
            raise PolicyError(
                f"{here}.scale must be 'proportional' or 'fixed', got {scale!r}", file=path
            )
        if ("target" in rule) == ("regional_margin" in rule):
            raise PolicyError(f"{here} needs exactly one of target and regional_margin", file=path)
        target = margin = None
        if "target" in rule:
            target = policy_decimal(rule["target"], f"{here}.target", path, positive=True)
        else:
            if scale != "fixed":
                # a regional value of 0 would leave a proportional gap undefined
                raise PolicyError(f'{here}: regional_margin needs scale = "fixed"', file=path)
            margin = period_ratio(
                rule["regional_margin"], f"{here}.regional_margin", path, limit=Decimal(100)
            )
        share_limit = Decimal(1) if scale == "fixed" else Decimal(100)

        def ratio(
            key: str, limit: Decimal, default: str, here: str = here, rule: Any = rule
        ) -> Decimal:
            if key not in rule:
                return Decimal(default)
            return period_ratio(rule[key], f"{here}.{key}", path, limit=limit)

        deduct = ratio("deduct", share_limit, "0")
        reward = ratio("reward", share_limit, "0")
        if scale == "fixed" and ("deduct_cap" in rule or "reward_cap" in rule):
            raise PolicyError(f'{here}: caps apply to scale = "proportional" only', file=path)
        if deduct == 0 and reward == 0:
            raise PolicyError(f"{here} needs a deduct or a reward above 0", file=path)
        rules.append(
            OutcomeRule(
                id=rid,
                indicator=indicator,
                better=str(better),
                target=target,
                regional_margin=margin,
                scale=str(scale),
                deduct=deduct,
                reward=reward,
                deduct_cap=ratio("deduct_cap", Decimal(1), "1"),
                reward_cap=ratio("reward_cap", Decimal(1), "1"),
                source=str(source),
            )
        )
    return tuple(rules)


def _rules_of(policy: Policy | PeriodRules) -> PeriodRules:
    if isinstance(policy, PeriodRules):
        return policy
    if isinstance(policy, Policy):
        return PeriodRules.from_policy(policy)
    raise TypeError(f"expected a Policy or PeriodRules, got {type(policy).__name__}")


# --------------------------------------------------------------------------- exact arithmetic


def _banded(amount: int, base: int, bands: Sequence[tuple[Decimal | None, Decimal]]) -> Fraction:
    """Σ_k share_k × (part of ``amount`` between u_{k−1}·b and u_k·b), b = max(base, 0),
    exactly (not rounded)."""
    b = max(base, 0)
    total = Fraction(0)
    lower = Fraction(0)
    for up_to, share in bands:
        upper = None if up_to is None else Fraction(up_to) * b
        if upper is None or amount <= upper:
            total += Fraction(share) * (amount - lower)
            break
        total += Fraction(share) * (upper - lower)
        lower = upper
    return total


def _rate(num: int, den: int) -> Decimal | None:
    """num ÷ den rounded half up to 6 decimals (for display), None when den is 0."""
    if den == 0:
        return None
    return round_fraction(Fraction(num, den), 6)


# --------------------------------------------------------------------------- reading the table


@attrs.define(slots=True)
class _Cases:
    """The settled-case table as numpy arrays: hospital codes (sorted order, None last)."""

    table: pa.Table
    n: int
    hospital: np.ndarray  # int64 code per row
    hospitals: list[str | None]
    settled: np.ndarray  # bool per row
    money: dict[str, np.ndarray]  # cents per row, 0 where not settled


def _plain(arr: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    return arr


def _column(table: pa.Table, name: str) -> pa.Array:
    if name not in table.column_names:
        raise CaseDataError(
            f"the settled table has no {name!r} column (expected the output of "
            "drgkit.settlement.settle)",
            column=name,
        )
    return _plain(table.column(name))


def _encode(arr: pa.Array) -> tuple[np.ndarray, list[Any]]:
    """(code per row, keys): codes follow the sorted keys, a null key last."""
    if len(arr) == 0:
        return np.zeros(0, np.int64), []
    enc = pc.dictionary_encode(arr, null_encoding="encode")
    idx = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    names = enc.dictionary.to_pylist()
    order = sorted(range(len(names)), key=lambda k: (names[k] is None, names[k] or ""))
    rank = np.empty(len(names), np.int64)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(len(names), dtype=np.int64)
    return rank[idx], [names[k] for k in order]


def _read(settled: pa.Table | pa.RecordBatch, money: Sequence[str]) -> _Cases:
    table = pa.Table.from_batches([settled]) if isinstance(settled, pa.RecordBatch) else settled
    if not isinstance(table, pa.Table):
        raise TypeError(f"expected the Arrow table of settled cases, got {type(settled).__name__}")
    n = table.num_rows
    hospital = _column(table, "hospital_id")
    if not pa.types.is_string(hospital.type):
        hospital = hospital.cast(pa.string())
    codes, hospitals = _encode(hospital)
    flag = _column(table, "settled")
    if not pa.types.is_boolean(flag.type):
        raise CaseDataError(f"column 'settled' must be boolean, got {flag.type}", column="settled")
    is_settled = flag.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
    amounts: dict[str, np.ndarray] = {}
    for name in money:
        cents, bad = to_cents(_column(table, name), n)
        wrong = np.flatnonzero(is_settled & (bad != OK))
        if len(wrong):
            k = int(wrong[0])
            ids = table.column("case_id") if "case_id" in table.column_names else None
            who = f"case {ids[k].as_py()!r} (row {k + 1})" if ids is not None else f"row {k + 1}"
            raise CaseDataError(
                f"settled {who} has no amount in whole cents in {name!r} "
                f"({len(wrong)} such row(s))",
                column=name,
            )
        amounts[name] = np.where(is_settled, cents, 0)
    return _Cases(table, n, codes, hospitals, is_settled, amounts)


def _metadata(rules: PeriodRules | None, **extra: str) -> dict[bytes, bytes]:
    meta = {b"money": _MONEY_NOTE.encode()}
    if rules is not None and rules.policy_id is not None:
        meta[b"policy"] = rules.policy_id.encode()
        meta[b"policy_hash"] = (rules.policy_hash or "").encode()
    for key, value in extra.items():
        meta[key.encode()] = value.encode()
    return meta


def _table(
    columns: Sequence[tuple[str, pa.DataType, Any]], metadata: Mapping[bytes, bytes]
) -> pa.Table:
    arrays, fields = [], []
    for name, typ, values in columns:
        if typ == MONEY:
            arr = cents_array(np.asarray(values, dtype=np.int64).reshape(-1))
        else:
            arr = pa.array(values, typ)
        arrays.append(arr)
        fields.append(pa.field(name, typ))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))


# --------------------------------------------------------------------------- hospital totals

_TOTAL_MONEY = tuple(f.name for f in HOSPITAL_TOTALS_SCHEMA if f.type == MONEY)


def hospital_totals(settled: pa.Table) -> pa.Table:
    """Per ``hospital_id`` (every hospital with any row, sorted by id, a null id last):

    ``cases`` (rows), ``settled`` (settled rows), and over the settled cases Σ ``payment``,
    ``fund_payment``, ``patient_share``, ``total_cost`` and ``gain_loss`` (MONEY). Each column's
    sum over hospitals equals its sum over the settled cases, to the cent."""
    data = _read(settled, _TOTAL_MONEY)
    size = len(data.hospitals)
    values: dict[str, Any] = {
        "hospital_id": data.hospitals,
        "cases": np.bincount(data.hospital, minlength=size).astype(np.int64),
        "settled": _sum(data.hospital, data.settled, size),
        **{name: _sum(data.hospital, data.money[name], size) for name in _TOTAL_MONEY},
    }
    return _table(
        [(f.name, f.type, values[f.name]) for f in HOSPITAL_TOTALS_SCHEMA], _metadata(None)
    )


# --------------------------------------------------------------------------- quality


_QUALITY_SCHEMA = tuple((f.name, f.type) for f in QUALITY_SCHEMA)


def _quality_rows(data: _Cases, rules: PeriodRules) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {name: [] for name, _t in _QUALITY_SCHEMA}
    if not rules.quality:
        return out
    flag_arr = _column(data.table, "readmitted_31d")
    if not pa.types.is_boolean(flag_arr.type):
        raise CaseDataError(
            f"column 'readmitted_31d' must be boolean, got {flag_arr.type}", column="readmitted_31d"
        )
    # the group of either scheme: a DRG code, or a DIP packet (column "group")
    drg_arr = _column(data.table, "drg" if "drg" in data.table.column_names else "group")
    if not pa.types.is_string(drg_arr.type):
        drg_arr = drg_arr.cast(pa.string())
    status = _column(data.table, "status")
    if not pa.types.is_string(status.type):
        status = status.cast(pa.string())
    for index, rule in enumerate(rules.quality):
        general = OutcomeRule.of_quality(rule, index)
        # only cases with a group count (by default status ok: a DRG); an ungroupable or
        # ambiguous case has no group whose readmission rate could be compared
        eligible = data.settled & pc.fill_null(
            pc.is_in(status, pa.array(rule.statuses)), False
        ).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(eligible)
        take = pa.array(rows, pa.int64())
        known = ~flag_arr.is_null().to_numpy(zero_copy_only=False)[rows]
        yes = flag_arr.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)[rows]
        drg, drgs = _encode(drg_arr.take(take))
        hosp = data.hospital[rows]
        nd = max(len(drgs), 1)
        pairs, group = np.unique(hosp * nd + drg, return_inverse=True)
        group = group.reshape(-1)
        m = len(pairs)
        cases = np.bincount(group, minlength=m)
        n_known = np.bincount(group[known], minlength=m)
        n_yes = np.bincount(group[yes & known], minlength=m)
        payment = _sum(group, data.money["payment"][rows], m)
        r_known = np.bincount(drg[known], minlength=len(drgs))
        r_yes = np.bincount(drg[yes & known], minlength=len(drgs))
        for g in range(m):
            h, d = divmod(int(pairs[g]), nd)
            k, r, kk, rr = int(n_known[g]), int(n_yes[g]), int(r_known[d]), int(r_yes[d])
            # the readmission rule is one instance of the general outcome rule
            result, share = general.assess(
                Fraction(r, k) if k else None,
                general.target_of(Fraction(rr, kk) if kk else None),
            )
            exceeded = result == "missed"
            pay = int(payment[g])
            out["hospital_id"].append(data.hospitals[h])
            out["drg"].append(drgs[d])
            out["cases"].append(int(cases[g]))
            out["readmitted"].append(r)
            out["rate"].append(_rate(r, k))
            out["regional_rate"].append(_rate(rr, kk))
            out["payment"].append(pay)
            out["deduction"].append(-general.amount(pay, share) if exceeded else 0)
            out["known"].append(k)
            out["regional_known"].append(kk)
            out["regional_readmitted"].append(rr)
            out["exceeded"].append(exceeded)
            out["rule"].append(index)
    return out


def quality_deductions(settled: pa.Table, rules: PeriodRules | Policy) -> pa.Table:
    """Quality deductions (质量扣减) of every ``[[period.quality]]`` rule.

    One row per (rule, hospital, DRG) among settled cases whose grouping status is one of the
    rule's ``statuses`` (default ``ok``: cases without a group are not compared), ordered by
    rule, hospital and DRG
    (a null key last), with every group listed (``deduction`` 0 when not ``exceeded``):

    * ``hospital_id``, ``drg``: the group; ``cases``: its settled cases;
    * ``readmitted``: cases flagged readmitted within 31 days; ``known``: cases whose flag is
      not null; ``rate`` = readmitted ÷ known (null when known = 0);
    * ``regional_readmitted``, ``regional_known``, ``regional_rate``: the same over every
      hospital's settled cases of the DRG (the hospital's own included);
    * ``exceeded``: rate > regional_rate × (1 + above_average_by), compared exactly; false when
      known = 0;
    * ``payment``: Σ payment of the group's settled cases (all of them, flag known or not);
    * ``deduction`` = half_up(payment × deduct) when exceeded, else 0 — rounded here, once;
    * ``rule``: index of the rule in ``period.quality`` (0-based).

    ``rate`` and ``regional_rate`` are rounded to 6 decimals for display; the decision uses the
    exact fractions. See the module docstring for the edge cases (no known flag, a regional
    rate of 0)."""
    the_rules = _rules_of(rules)
    data = _read(settled, ("payment",))
    out = _quality_rows(data, the_rules)
    return _table([(name, typ, out[name]) for name, typ in _QUALITY_SCHEMA], _metadata(the_rules))


# --------------------------------------------------------------------------- pay for outcome

#: :func:`outcome_details`: one row per (rule, hospital)
OUTCOME_SCHEMA = pa.schema(
    [
        pa.field("rule", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("hospital_id", pa.string()),
        pa.field("indicator", pa.string()),
        pa.field("value", pa.string()),
        pa.field("target", pa.string()),
        pa.field("result", pa.string()),
        pa.field("base", MONEY),
        pa.field("share", pa.string()),
        pa.field("amount", MONEY),
        pa.field("explanation", pa.string()),
    ]
)
_OUTCOME_FIELDS = tuple((f.name, f.type) for f in OUTCOME_SCHEMA)


def _shown(value: Fraction | None) -> str | None:
    """An exact value for people: rounded half up to 6 decimals, trailing zeros kept."""
    return None if value is None else str(round_fraction(value, 6))


def _yuan(cents: int) -> str:
    return f"{'-' if cents < 0 else ''}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _decimal_text(raw: Any) -> Fraction | None:
    """A supplied indicator value as an exact fraction; None when empty; ValueError when it is
    not a finite number ≥ 0."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool):
        raise ValueError(raw)
    text = repr(raw) if isinstance(raw, float) else str(raw).strip()
    try:
        number = Decimal(text)
    except ArithmeticError:
        raise ValueError(raw) from None
    if not number.is_finite() or number < 0:
        raise ValueError(raw)
    return Fraction(number)


def _supplied_values(
    values: Any, columns: Sequence[str]
) -> dict[str | None, dict[str, Fraction | None]]:
    """hospital id -> column -> exact value, from the per-hospital values table (an Arrow
    table, or a CSV or Parquet file). Errors name the file, the row (header = row 1) and the
    column."""
    name: str | None = None
    if isinstance(values, pa.Table):
        table = values
    else:
        import os

        name = os.fspath(values)
        if name.lower().endswith(".parquet"):
            import pyarrow.parquet as pq

            table = pq.read_table(name)
        else:
            import csv

            try:
                with open(name, encoding="utf-8-sig", newline="") as fh:
                    lines = list(csv.reader(fh))
            except (OSError, UnicodeDecodeError) as exc:
                raise CaseDataError(f"cannot read the outcome values: {exc}", file=name) from None
            head = [c.strip() for c in lines[0]] if lines else []
            body = lines[1:]
            for k, line in enumerate(body):
                if len(line) != len(head):
                    raise CaseDataError(
                        f"{len(line)} fields, the header has {len(head)}", file=name, row=k + 2
                    )
            table = pa.table(
                {c: pa.array([line[j] for line in body], pa.string()) for j, c in enumerate(head)}
            )
    for col in ("hospital_id", *columns):
        if col not in table.column_names:
            raise CaseDataError(
                "the outcome values table has no column for this rule's indicator",
                file=name,
                column=col,
            )
    ids = table.column("hospital_id").to_pylist()
    out: dict[str | None, dict[str, Fraction | None]] = {}
    data = {c: table.column(c).to_pylist() for c in columns}
    for k, hosp in enumerate(ids):
        row = k + 2 if name is not None else k + 1  # a file's header is its row 1
        if hosp is None or not str(hosp).strip():
            raise CaseDataError("hospital_id is empty", file=name, row=row, column="hospital_id")
        hosp = str(hosp).strip()
        if hosp in out:
            raise CaseDataError(
                f"hospital {hosp!r} is listed twice", file=name, row=row, column="hospital_id"
            )
        parsed: dict[str, Fraction | None] = {}
        for col in columns:
            try:
                parsed[col] = _decimal_text(data[col][k])
            except ValueError:
                raise CaseDataError(
                    f"{data[col][k]!r} is not a number ≥ 0", file=name, row=row, column=col
                ) from None
        out[hosp] = parsed
    return out


@attrs.define(slots=True)
class _Outcome:
    """Per hospital: the coefficient, the signed adjustments and the explanation lines."""

    coefficient: dict[str | None, Fraction] = attrs.field(factory=dict)
    adjustment: dict[str | None, int] = attrs.field(factory=dict)
    deduction: dict[str | None, int] = attrs.field(factory=dict)
    reward: dict[str | None, int] = attrs.field(factory=dict)
    lines: dict[str | None, list[str]] = attrs.field(factory=dict)
    rows: dict[str, list[Any]] = attrs.field(factory=lambda: {n: [] for n, _t in _OUTCOME_FIELDS})


def _outcomes(
    data: _Cases, rules: PeriodRules, values: Any, hospitals: Sequence[str | None]
) -> _Outcome:
    """Evaluate the cost coefficient and every outcome rule for each hospital of ``hospitals``
    (those with cases, and those named in budgets or payments: they get "no value")."""
    from ..monitoring import exact_value, indicators

    out = _Outcome()
    if not rules.pays_for_outcome:
        return out
    per_h = {r["hospital_id"]: r for r in indicators(data.table, by=("hospital_id",)).to_pylist()}
    region_rows = indicators(data.table, by=()).to_pylist()
    region = region_rows[0] if region_rows else {}
    pay = _sum(data.hospital, data.money["payment"], len(data.hospitals))
    index = {h: k for k, h in enumerate(data.hospitals)}
    # the payment the coefficient re-prices: settled cases priced by a DRG weight
    status = _column(data.table, "status")
    if not pa.types.is_string(status.type):
        status = status.cast(pa.string())
    ok = pc.fill_null(pc.equal(status, "ok"), False).to_numpy(zero_copy_only=False)
    rw = _column(data.table, "rw") if "rw" in data.table.column_names else None
    has_rw = np.zeros(data.n, bool) if rw is None else ~rw.is_null().to_numpy(zero_copy_only=False)
    priced_cents = _sum(
        data.hospital, np.where(ok & has_rw, data.money["payment"], 0), len(data.hospitals)
    )
    table_cols = sorted({r.indicator for r in rules.outcomes if r.source == "table"})
    supplied: dict[str | None, dict[str, Fraction | None]] = {}
    if table_cols:
        if values is None:
            ids = ", ".join(r.id for r in rules.outcomes if r.source == "table")
            raise ArgumentError(
                f"outcome rule(s) {ids} take their values from a per-hospital table: pass "
                "values= (a table or a CSV/Parquet file with hospital_id and "
                f"{', '.join(table_cols)})"
            )
        supplied = _supplied_values(values, table_cols)

    def add(rule: str, kind: str, hosp: str | None, **cols: Any) -> None:
        row = {"rule": rule, "kind": kind, "hospital_id": hosp, **cols}
        for name, _t in _OUTCOME_FIELDS:
            out.rows[name].append(row[name])
        out.lines.setdefault(hosp, []).append(row["explanation"])

    cc = rules.cost_coefficient
    if cc is not None:
        regional = exact_value(region, "cost_per_weight") if region else None
        for hosp in hospitals:
            k = index.get(hosp)
            priced = int(priced_cents[k]) if k is not None else 0
            own = exact_value(per_h[hosp], "cost_per_weight") if hosp in per_h else None
            band = f"band {cc.min}–{cc.max}"
            if own is None or not regional:
                coef, raw, result = Fraction(1), None, "no value"
                why = "no cost per weight (no weighted case): coefficient 1"
            else:
                raw = own / regional
                coef = cc.clamp(raw)
                result = "clamped" if coef != raw else "in band"
                why = (
                    f"cost per weight {_shown(own)} ÷ region {_shown(regional)} = "
                    f"{_shown(raw)} → {_shown(coef)} ({band})"
                )
            amount = cc.adjustment(priced, coef)
            out.coefficient[hosp] = coef
            out.adjustment[hosp] = out.adjustment.get(hosp, 0) + amount
            add(
                "cost_coefficient",
                "cost_coefficient",
                hosp,
                indicator="cost_difference_coefficient",
                value=_shown(raw),
                target=f"{cc.min}–{cc.max}",
                result=result,
                base=priced,
                share=_shown(coef - 1) if cc.apply == "payment" else "0",
                amount=amount,
                explanation=(
                    f"cost_coefficient: {why}; "
                    + (
                        f"{_yuan(amount)} on {_yuan(priced)} priced by weight"
                        if cc.apply == "payment"
                        else "reported only"
                    )
                ),
            )
    for rule in rules.outcomes:
        if rule.source == "monitoring":
            regional_value = exact_value(region, rule.indicator) if region else None
        else:
            regional_value = None
        target = rule.target_of(regional_value)
        for hosp in hospitals:
            k = index.get(hosp)
            base = int(pay[k]) if k is not None else 0
            if rule.source == "monitoring":
                value = exact_value(per_h[hosp], rule.indicator) if hosp in per_h else None
                missing = f"{rule.indicator} is not computable"
            else:
                got = supplied.get(hosp)
                value = None if got is None else got[rule.indicator]
                missing = (
                    "the hospital is not in the values table"
                    if got is None
                    else f"no {rule.indicator} value supplied"
                )
            result, share = rule.assess(value, target)
            amount = rule.amount(base, share)
            if amount < 0:
                out.deduction[hosp] = out.deduction.get(hosp, 0) - amount
            else:
                out.reward[hosp] = out.reward.get(hosp, 0) + amount
            if result == "no value":
                why = f"{missing}: nothing deducted or rewarded"
            else:
                where = {"missed": "misses", "surpassed": "beats", "met": "meets"}[result]
                why = (
                    f"{rule.indicator} {_shown(value)} {where} target {_shown(target)} "
                    f"({rule.better} is better) → {_shown(share)} × {_yuan(base)} = "
                    f"{_yuan(amount)}"
                )
            add(
                rule.id,
                "outcome",
                hosp,
                indicator=rule.indicator,
                value=_shown(value),
                target=_shown(target),
                result=result,
                base=base,
                share=_shown(share),
                amount=amount,
                explanation=f"{rule.id}: {why}",
            )
    return out


def outcome_details(
    settled: pa.Table,
    rules: PeriodRules | Policy,
    *,
    values: Any = None,
) -> pa.Table:
    """The explanation behind the outcome columns of :func:`settle_period`: one row per
    (rule, hospital), the cost coefficient first (rule ``cost_coefficient``), then each
    ``[[period.outcome]]`` rule in order, hospitals sorted (a null id last) (schema
    :data:`OUTCOME_SCHEMA`): the indicator, its exact ``value`` and the ``target`` (6
    decimals, for display), ``result`` (missed, surpassed, met, no value; in band, clamped),
    the ``base`` payment, the ``share`` applied and the signed ``amount`` (a deduction < 0),
    rounded once, with a sentence saying all of it. ``values``: the per-hospital values of
    the rules with ``source = "table"``."""
    the_rules = _rules_of(rules)
    data = _read(settled, ("payment",))
    out = _outcomes(data, the_rules, values, data.hospitals)
    return _table([(n, t, out.rows[n]) for n, t in _OUTCOME_FIELDS], _metadata(the_rules))


# --------------------------------------------------------------------------- period settlement


def _cents_mapping(
    values: Mapping[Any, Any] | None, what: str, *, negative_ok: bool
) -> dict[str | None, int]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise TypeError(
            f"{what} must be a mapping hospital_id -> cents, got {type(values).__name__}"
        )
    out: dict[str | None, int] = {}
    for key, value in values.items():
        if key is not None and not isinstance(key, str):
            raise TypeError(f"{what}: hospital ids are strings, got {key!r}")
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{what}[{key!r}] must be whole cents (int), got {value!r}")
        if not negative_ok and value < 0:
            raise ArgumentError(f"{what}[{key!r}] must not be negative, got {value}")
        if abs(value) > LIMIT_CENTS:  # the one bound on every amount drgkit reads
            raise ArgumentError(
                f"{what}[{key!r}] is above the limit of {LIMIT_CENTS} cents, got {value}"
            )
        out[key] = int(value)
    return out


_PERIOD_SCHEMA = tuple((f.name, f.type) for f in PERIOD_SCHEMA)
#: appended to the period table when the rules pay for outcomes
_OUTCOME_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("cost_coefficient", RATE),
    ("coefficient_adjustment", MONEY),
    ("outcome_deduction", MONEY),
    ("outcome_reward", MONEY),
    ("explanation", pa.string()),
)


def settle_period(
    settled: pa.Table,
    policy: Policy | PeriodRules,
    *,
    budgets: Mapping[str, int] | None = None,
    already_paid: Mapping[str, int] | None = None,
    values: Any = None,
) -> pa.Table:
    """Settle a period per hospital: quality deductions, surplus retention, over-spend
    sharing, what the fund owes and the annual clearing (年度清算).

    ``budgets`` (hospital_id → cents) makes the hospital's budget the base of its bands instead
    of ``due``; ``already_paid`` (hospital_id → cents, e.g. the monthly pre-payments) gives
    ``clearing = fund_due − already_paid`` (a hospital missing from it has been paid 0). A
    hospital named in either mapping but without cases gets a row of zeros (so that no paid
    amount is forgotten). One row per hospital, sorted by id (a null id last); columns:

    * ``hospital_id``; ``cases`` (rows); ``settled`` (settled rows);
    * ``payment``, ``fund_payment``, ``patient_share``: Σ over the settled cases;
    * ``deduction``: Σ of the hospital's quality deductions (:func:`quality_deductions`);
    * ``due`` = payment − deduction; ``cost`` = Σ total_cost of the settled cases;
    * ``balance`` = due − cost; ``surplus`` = max(balance, 0); ``overspend`` = max(−balance, 0);
    * ``base_kind``: ``"due"`` or ``"budget"``; ``base``: the amount the bands' ``up_to``
      ratios multiply (due, or the budget when given);
    * ``kept`` = half_up(Σ keep × surplus part in each retention band); ``returned`` =
      surplus − kept (back to the fund);
    * ``fund_overspend`` = half_up(Σ fund_share × over-spend part in each band);
      ``hospital_overspend`` = overspend − fund_overspend;
    * ``hospital_result`` = kept − hospital_overspend (the hospital's final gain or loss);
    * ``fund_due`` = fund_payment − deduction − returned + fund_overspend (what the fund owes
      the hospital for the period);
    * ``already_paid``; ``clearing`` = fund_due − already_paid (> 0 the fund pays the
      hospital, < 0 the hospital pays back).

    When the rules pay for outcomes (``[period.cost_coefficient]`` or ``[[period.outcome]]``),
    five columns follow: ``cost_coefficient`` (the clamped coefficient, 6 decimals; null
    without the rule), ``coefficient_adjustment`` (signed), ``outcome_deduction`` and
    ``outcome_reward`` (≥ 0, Σ over the rules) and ``explanation`` (one sentence per rule,
    joined by " | "; the rows of :func:`outcome_details`); then ``due`` = payment − deduction
    − outcome_deduction + outcome_reward + coefficient_adjustment and ``fund_due`` = fund_payment
    − deduction − outcome_deduction + outcome_reward + coefficient_adjustment − returned +
    fund_overspend (the fund pays what outcomes add or take; the patients' share is not
    changed). ``values``: the per-hospital values table of the rules with ``source =
    "table"`` (an Arrow table, or a CSV or Parquet file: ``hospital_id`` and one column per
    indicator).

    Every money column is MONEY; see the module docstring for the rounding rule."""
    rules = _rules_of(policy)
    budget = _cents_mapping(budgets, "budgets", negative_ok=False)
    paid = _cents_mapping(already_paid, "already_paid", negative_ok=True)
    data = _read(settled, ("payment", "fund_payment", "patient_share", "total_cost"))
    size = len(data.hospitals)
    cases = np.bincount(data.hospital, minlength=size)
    n_settled = _sum(data.hospital, data.settled, size)
    sums = {
        name: _sum(data.hospital, data.money[name], size)
        for name in ("payment", "fund_payment", "patient_share", "total_cost")
    }
    deductions: dict[str | None, int] = {}
    quality = _quality_rows(data, rules)
    for hosp, cents in zip(quality["hospital_id"], quality["deduction"], strict=True):
        deductions[hosp] = deductions.get(hosp, 0) + cents
    index = {h: k for k, h in enumerate(data.hospitals)}
    everyone = sorted({*data.hospitals, *budget, *paid}, key=lambda h: (h is None, h or ""))
    outcome = _outcomes(data, rules, values, everyone)
    if rules.pays_for_outcome:
        groups: dict[tuple[str | None, int], list[int]] = {}
        for hosp, idx, cut, hit in zip(
            quality["hospital_id"],
            quality["rule"],
            quality["deduction"],
            quality["exceeded"],
            strict=True,
        ):
            acc = groups.setdefault((hosp, idx), [0, 0])
            acc[0] += int(hit)
            acc[1] += cut
        first: dict[str | None, list[str]] = {}
        for (hosp, idx), (hits, cut) in sorted(groups.items(), key=lambda kv: kv[0][1]):
            q = rules.quality[idx]
            first.setdefault(hosp, []).append(
                f"quality[{idx}]: {q.metric} above the regional rate × (1 + "
                f"{q.above_average_by}) in {hits} group(s) → −{q.deduct} of their payment = "
                f"{_yuan(-cut)}"
            )
        for hosp, lines in first.items():  # the readmission deductions come first
            outcome.lines[hosp] = lines + outcome.lines.get(hosp, [])
    fields = _PERIOD_SCHEMA + (_OUTCOME_COLUMNS if rules.pays_for_outcome else ())
    out: dict[str, list[Any]] = {name: [] for name, _t in fields}
    for hosp in everyone:
        k = index.get(hosp)

        def total(name: str, k: int | None = k) -> int:
            return int(sums[name][k]) if k is not None else 0

        pay, fund, share, cost = (
            total("payment"),
            total("fund_payment"),
            total("patient_share"),
            total("total_cost"),
        )
        deduction = deductions.get(hosp, 0)
        adjust = outcome.adjustment.get(hosp, 0)
        minus, plus = outcome.deduction.get(hosp, 0), outcome.reward.get(hosp, 0)
        # outcome amounts are each computed on the payment, never on one another
        due = pay - deduction - minus + plus + adjust
        balance = due - cost
        base = budget.get(hosp, due)
        surplus, overspend = max(balance, 0), max(-balance, 0)
        kept, returned = rules.retain(surplus, base)
        fund_over, hosp_over = rules.share_overspend(overspend, base)
        fund_due = fund - deduction - minus + plus + adjust - returned + fund_over
        prepaid = paid.get(hosp, 0)
        row = {
            "hospital_id": hosp,
            "cases": int(cases[k]) if k is not None else 0,
            "settled": int(n_settled[k]) if k is not None else 0,
            "payment": pay,
            "fund_payment": fund,
            "patient_share": share,
            "deduction": deduction,
            "due": due,
            "cost": cost,
            "balance": balance,
            "base_kind": "budget" if hosp in budget else "due",
            "base": base,
            "surplus": surplus,
            "kept": kept,
            "returned": returned,
            "overspend": overspend,
            "fund_overspend": fund_over,
            "hospital_overspend": hosp_over,
            "hospital_result": kept - hosp_over,
            "fund_due": fund_due,
            "already_paid": prepaid,
            "clearing": fund_due - prepaid,
        }
        if rules.pays_for_outcome:
            coef = outcome.coefficient.get(hosp)
            row.update(
                cost_coefficient=None if coef is None else round_fraction(coef, 6),
                coefficient_adjustment=adjust,
                outcome_deduction=minus,
                outcome_reward=plus,
                explanation=" | ".join(outcome.lines.get(hosp, [])),
            )
        for name, value in row.items():
            out[name].append(value)
    return _table([(name, typ, out[name]) for name, typ in fields], _metadata(rules))


# --------------------------------------------------------------------------- pre-settlement

_PRESETTLE_SCHEMA = tuple((f.name, f.type) for f in PRESETTLE_SCHEMA)


def _presettle(settled: pa.Table, policy: Policy | PeriodRules, month: str | None) -> pa.Table:
    rules = _rules_of(policy)
    if rules.presettlement_ratio is None:
        who = f"policy {rules.policy_id}" if rules.policy_id else "the period rules"
        raise PolicyError(f"{who} has no period.presettlement.ratio: it does not pre-settle")
    ratio = Fraction(rules.presettlement_ratio)
    data = _read(settled, ("fund_payment",))
    dates = _column(data.table, "discharge_date")
    if (
        pa.types.is_timestamp(dates.type)
        or pa.types.is_string(dates.type)
        or pa.types.is_large_string(dates.type)
        or pa.types.is_date64(dates.type)
    ):
        try:
            dates = dates.cast(pa.date32())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise CaseDataError(
                "column 'discharge_date' is not a date (YYYY-MM-DD)", column="discharge_date"
            ) from None
    if not pa.types.is_date32(dates.type):
        raise CaseDataError(
            f"column 'discharge_date' must be a date, got {dates.type}", column="discharge_date"
        )
    has_date = ~dates.is_null().to_numpy(zero_copy_only=False)
    days = dates.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False)
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    keep = has_date
    if month is not None:
        wanted = np.datetime64(month, "M").astype(np.int64)
        keep = keep & (months == wanted)
    rows = np.flatnonzero(keep)
    size = len(data.hospitals)
    key = months[rows] * max(size, 1) + data.hospital[rows]
    groups, inverse = np.unique(key, return_inverse=True)
    inverse = inverse.reshape(-1)
    m = len(groups)
    cases = np.bincount(inverse, minlength=m)
    n_settled = _sum(inverse, data.settled[rows], m)
    fund = _sum(inverse, data.money["fund_payment"][rows], m)
    month_of, hosp_of = np.divmod(groups, max(size, 1))
    labels = np.datetime_as_string(month_of.astype("datetime64[M]"), unit="M").tolist()
    prepayment = [_half_up(ratio * int(f)) for f in fund.tolist()]
    values = {
        "month": labels,
        "hospital_id": [data.hospitals[int(h)] for h in hosp_of],
        "cases": cases.astype(np.int64),
        "settled": n_settled,
        "fund_payment": fund,
        "prepayment": np.asarray(prepayment, dtype=np.int64),
    }
    columns = [(name, typ, values[name]) for name, typ in _PRESETTLE_SCHEMA]
    return _table(columns, _metadata(rules, presettlement_ratio=str(rules.presettlement_ratio)))


def presettle(settled: pa.Table, policy: Policy | PeriodRules, *, month: str) -> pa.Table:
    """Monthly pre-settlement (月度预结算) of the cases discharged in ``month`` ("YYYY-MM").

    One row per hospital with any case discharged that month, sorted by id (a null id last):
    ``month``; ``hospital_id``; ``cases`` (rows discharged that month); ``settled`` (settled
    ones); ``fund_payment`` = Σ fund_payment of the settled ones; ``prepayment`` =
    half_up(``period.presettlement.ratio`` × fund_payment), rounded here, once. The ratio is in
    the table's metadata (``presettlement_ratio``)."""
    if not isinstance(month, str) or not _MONTH.match(month):
        raise ArgumentError(f"month must be 'YYYY-MM', got {month!r}")
    return _presettle(settled, policy, month)


def presettle_all(settled: pa.Table, policy: Policy | PeriodRules) -> pa.Table:
    """:func:`presettle` of every month in which some case was discharged, in one table sorted
    by month then hospital (the same rows as calling :func:`presettle` month by month)."""
    return _presettle(settled, policy, None)
