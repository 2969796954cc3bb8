"""Red, yellow and green lights (红黄绿灯) on an indicator table, from rules that are policy data.

The rules live in a ``[monitoring]`` section of the policy TOML, or in a TOML file of their own
with the same section::

    [[monitoring.rules]]
    indicator = "cost_growth"     # a column of the indicator table
    direction = "higher"          # higher is worse ("lower": lower is worse)
    yellow = "0.08"               # worse than this: yellow (strictly: 0.08 itself is green)
    red = "0.10"                  # worse than this: red
    min_cases = 30                # a row with fewer cases gets no light from it (null)
    action = "费用增长预警: review the hospital's cost growth"

    [monitoring.risk]             # risk levels of DRGs for low-risk mortality (RiskCutoffs)
    low = -1.0
    medium = 0.0
    high = 1.0
    zero_deaths = "low"

A rule ``relative = true`` compares a row with the regional value of the same indicator
instead of a fixed threshold: the row is worse when its value exceeds the regional value × (1 +
threshold) (``lower``: is below the regional value × (1 − threshold)). The regional value sums
the numerator and the denominator over the rows that share the row's keys other than
``hospital_id``, ``department`` and ``doctor`` (the units being compared): per DRG in a table
by hospital and DRG, the whole table in one by hospital. Only ratios with integer numerator and
denominator columns may be relative. The 31-day readmission rule of
the seeds (a DRG more than 20% above the regional rate loses 10% of its payment) is such a rule,
and it is *the same* rule as the period settlement's quality deduction: a policy's
``[[period.quality]]`` rules become warning rules (:meth:`MonitoringRules.from_policy`), and
both decide through :meth:`drgkit.settlement._quality.QualityRule.exceeds`.

Comparisons are exact: a ratio whose numerator and denominator are integer columns of the
indicator table is compared as a fraction (cost growth of exactly 8% is green), never through
its float.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa
import tomllib

from ..settlement._policy import PolicyError
from ..settlement._quality import QualityRule
from ._indicators import INDICATOR_COLUMNS, RiskCutoffs

__all__ = [
    "DEFAULT_RULES",
    "LIGHTS",
    "MonitoringError",
    "MonitoringRules",
    "WarningRule",
    "exact_value",
    "warning_details",
    "warnings",
]

#: the lights, best first
LIGHTS = ("green", "yellow", "red")
_INDICATORS = tuple(n for n, _t in INDICATOR_COLUMNS)
#: units compared by a relative rule; the other keys define its region
_UNITS = ("hospital_id", "department", "doctor")

#: ratios with exact numerator and denominator columns (compared as fractions, never floats)
_RATIOS = {
    "grouping_rate": ("grouped", "cases"),
    "cmi": ("total_weight", "weighted_cases"),
    "mean_cost": ("total_cost", "settled"),
    "mean_los": ("total_los", "los_cases"),
    "cost_per_weight": ("weighted_cost", "total_weight"),
    "high_outlier_share": ("high_outliers", "settled"),
    "low_outlier_share": ("low_outliers", "settled"),
    "drug_share": ("drug_cost", "total_cost"),
    "consumable_share": ("consumable_cost", "total_cost"),
    "low_risk_mortality": ("low_risk_deaths", "low_risk_cases"),
    "readmission_rate": ("readmissions_31d", "readmission_known"),
}


class MonitoringError(PolicyError):
    """A malformed ``[monitoring]`` section (names the key and the file): a policy error."""


def _exact(value: Any) -> Fraction | None:
    if value is None:
        return None
    if isinstance(value, float):
        return Fraction(value)
    return Fraction(value)


def exact_value(row: Mapping[str, Any], indicator: str) -> Fraction | None:
    """An indicator of one row of an indicator table, exactly: ratios from their integer (or
    exact decimal) numerator and denominator, growth from the totals; a column without exact
    parts (an index) is its float64 value, exactly as stored. None when not computable."""
    if indicator in _RATIOS:
        num, den = (_exact(row.get(c)) for c in _RATIOS[indicator])
        return None if num is None or not den else num / den
    if indicator == "cost_growth":
        now, before = _exact(row.get("total_cost")), _exact(row.get("previous_total_cost"))
        return (
            None
            if now is None or not before or row.get("cost_growth") is None
            else now / before - 1
        )
    if indicator == "cost_per_case_growth":
        if row.get("cost_per_case_growth") is None:
            return None
        now = _exact(row["total_cost"]) / row["settled"]
        before = _exact(row["previous_total_cost"]) / row["previous_settled"]
        return now / before - 1
    return _exact(row.get(indicator))


@attrs.frozen(slots=True)
class WarningRule:
    """One indicator's thresholds: worse than ``yellow`` is yellow, worse than ``red`` is red
    ("worse" is above for ``direction = "higher"``, below for ``"lower"``; either threshold may
    be None). ``relative``: thresholds are margins over the regional value. Rows with fewer than
    ``min_cases`` cases get no light from this rule. ``quality``: the period settlement's rule
    this one shows (it then decides red, with :meth:`QualityRule.exceeds`)."""

    indicator: str
    direction: str = "higher"
    yellow: Decimal | None = None
    red: Decimal | None = None
    min_cases: int = 0
    action: str = ""
    relative: bool = False
    quality: QualityRule | None = None

    def describe(self, light: str | None = None) -> str:
        """The rule as one line of text (the ``rule`` column): the threshold crossed when
        ``light`` is yellow or red, else both thresholds."""
        op = ">" if self.direction == "higher" else "<"
        where = " × regional" if self.relative else ""

        def bound(t: Decimal) -> str:
            if self.relative:
                return f"(1 {'+' if self.direction == 'higher' else '−'} {t})"
            return str(t)

        if light in ("yellow", "red"):
            t = self.yellow if light == "yellow" else self.red
            text = f"{self.indicator} {op} {bound(t)}{where}"
        else:
            parts = [
                f"{name} {op} {bound(t)}{where}"
                for name, t in (("yellow", self.yellow), ("red", self.red))
                if t is not None
            ]
            text = f"{self.indicator}: " + ", ".join(parts)
        return f"{text}: {self.action}" if self.action and light in ("yellow", "red") else text

    def light(
        self, value: Fraction | None, regional: Fraction | None, parts: Any = None
    ) -> str | None:
        """The light of one value (None: not computable)."""
        if value is None:
            return None
        if self.relative and regional is None:
            return None
        if self.quality is not None and parts is not None:
            return "red" if self.quality.exceeds(*parts) else "green"

        def worse(t: Decimal | None) -> bool:
            if t is None:
                return False
            if self.relative:
                bound = regional * (
                    1 + Fraction(t) if self.direction == "higher" else 1 - Fraction(t)
                )
            else:
                bound = Fraction(t)
            return value > bound if self.direction == "higher" else value < bound

        if worse(self.red):
            return "red"
        if worse(self.yellow):
            return "yellow"
        return "green"


def rule_decimal(value: Any, where: str, path: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise MonitoringError(f"{where} must be a number, got {value!r}", file=path)
    try:
        number = (
            Decimal(str(value).strip()) if not isinstance(value, float) else Decimal(repr(value))
        )
    except InvalidOperation:
        raise MonitoringError(f"{where} must be a number, got {value!r}", file=path) from None
    if not number.is_finite():
        raise MonitoringError(f"{where} must be a finite number, got {value!r}", file=path)
    return number


def no_other_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str, path: Any) -> None:
    for key in table:
        if key not in allowed:
            raise MonitoringError(
                f"{where} has an unknown key {key!r} (expected {', '.join(allowed)})", file=path
            )


def _rule(spec: Any, where: str, path: Any) -> WarningRule:
    if not isinstance(spec, Mapping):
        raise MonitoringError(f"{where} must be a table", file=path)
    no_other_keys(
        spec,
        ("indicator", "direction", "yellow", "red", "min_cases", "action", "relative"),
        where,
        path,
    )
    indicator = spec.get("indicator")
    if indicator not in _INDICATORS:
        raise MonitoringError(
            f"{where}.indicator must be an indicator column, got {indicator!r}", file=path
        )
    direction = spec.get("direction", "higher")
    if direction not in ("higher", "lower"):
        raise MonitoringError(
            f"{where}.direction must be 'higher' or 'lower' (which way is worse), got "
            f"{direction!r}",
            file=path,
        )
    yellow = None if "yellow" not in spec else rule_decimal(spec["yellow"], f"{where}.yellow", path)
    red = None if "red" not in spec else rule_decimal(spec["red"], f"{where}.red", path)
    if yellow is None and red is None:
        raise MonitoringError(f"{where} needs a yellow or a red threshold", file=path)
    if (
        yellow is not None
        and red is not None
        and ((direction == "higher" and red < yellow) or (direction == "lower" and red > yellow))
    ):
        raise MonitoringError(
            f"{where}: the red threshold ({red}) must be worse than the yellow one "
            f"({yellow}) for direction {direction!r}",
            file=path,
        )
    min_cases = spec.get("min_cases", 0)
    if isinstance(min_cases, bool) or not isinstance(min_cases, int) or min_cases < 0:
        raise MonitoringError(
            f"{where}.min_cases must be a whole number ≥ 0, got {min_cases!r}", file=path
        )
    action = spec.get("action", "")
    if not isinstance(action, str):
        raise MonitoringError(f"{where}.action must be a text, got {action!r}", file=path)
    relative = spec.get("relative", False)
    if not isinstance(relative, bool):
        raise MonitoringError(f"{where}.relative must be true or false", file=path)
    if relative and indicator not in _RATIOS:
        raise MonitoringError(
            f"{where}: a relative rule needs a ratio with exact parts "
            f"({', '.join(_RATIOS)}), got {indicator!r}",
            file=path,
        )
    return WarningRule(indicator, direction, yellow, red, min_cases, action, relative)


def _risk(spec: Any, path: Any) -> RiskCutoffs:
    if spec is None:
        return RiskCutoffs()
    if not isinstance(spec, Mapping):
        raise MonitoringError("[monitoring.risk] must be a table", file=path)
    no_other_keys(
        spec, ("low", "medium", "high", "zero_deaths", "min_cases"), "[monitoring.risk]", path
    )
    cut = {
        k: float(rule_decimal(spec[k], f"monitoring.risk.{k}", path))
        for k in ("low", "medium", "high")
        if k in spec
    }
    values = RiskCutoffs(**cut)
    if not values.low <= values.medium <= values.high:
        raise MonitoringError("monitoring.risk: low ≤ medium ≤ high is required", file=path)
    zero = spec.get("zero_deaths", "low")
    if zero not in ("low", "none"):
        raise MonitoringError(
            f"monitoring.risk.zero_deaths must be 'low' or 'none', got {zero!r}", file=path
        )
    n = spec.get("min_cases", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise MonitoringError("monitoring.risk.min_cases must be a whole number ≥ 1", file=path)
    return attrs.evolve(values, zero_deaths=zero, min_cases=n)


@attrs.frozen(slots=True)
class MonitoringRules:
    """The ``[monitoring]`` section: warning rules, the regional targets
    (:mod:`drgkit.monitoring._targets`) and the risk cut-offs."""

    rules: tuple[WarningRule, ...] = ()
    targets: tuple[Any, ...] = ()
    risk: RiskCutoffs = attrs.field(factory=RiskCutoffs)
    source: str | None = None

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None, *, path: Any = None) -> MonitoringRules:
        """Validate a ``[monitoring]`` table (as read from TOML); errors name the key and file.
        A section without ``rules`` keeps the default rules; without ``targets``, the default
        targets."""
        from ._targets import default_targets, parse_targets

        if section is None:
            # no section: the default rules *and* the default targets, as for an empty one
            return attrs.evolve(
                DEFAULT_RULES,
                targets=default_targets(),
                source=None if path is None else str(path),
            )
        if not isinstance(section, Mapping):
            raise MonitoringError("[monitoring] must be a table", file=path)
        no_other_keys(section, ("rules", "targets", "risk"), "[monitoring]", path)
        spec = section.get("rules")
        if spec is None:
            rules = DEFAULT_RULES.rules
        else:
            if not isinstance(spec, list):
                raise MonitoringError(
                    "monitoring.rules must be an array of tables ([[monitoring.rules]])", file=path
                )
            rules = tuple(_rule(r, f"monitoring.rules[{k}]", path) for k, r in enumerate(spec))
        targets = (
            default_targets()
            if section.get("targets") is None
            else parse_targets(section["targets"], path)
        )
        return cls(
            rules, targets, _risk(section.get("risk"), path), None if path is None else str(path)
        )

    @classmethod
    def from_toml(cls, path: Any) -> MonitoringRules:
        """The ``[monitoring]`` section of a TOML file (a policy or a file of its own)."""
        path = Path(path)
        try:
            config = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise MonitoringError(f"not valid TOML: {exc}", file=path) from None
        return cls.from_config(config.get("monitoring", {}), path=path)

    @classmethod
    def from_policy(cls, policy: Any) -> MonitoringRules:
        """A policy's ``[monitoring]`` section, or the defaults when it has none; its
        ``[[period.quality]]`` rules are added as relative readmission rules that go red
        exactly when the period settlement deducts."""
        from ..settlement._period import quality_rules

        rules = cls.from_config(policy.config.get("monitoring"), path=policy.path)
        period = policy.config.get("period")
        quality = (
            quality_rules(period.get("quality"), policy.path) if isinstance(period, Mapping) else ()
        )
        for k, q in enumerate(quality):
            if q.statuses != ("ok",):
                raise MonitoringError(
                    f"period.quality[{k}] looks at statuses {list(q.statuses)}; the readmission "
                    "indicator counts grouped cases (status ok) only, so its light could not "
                    "match the deduction",
                    file=policy.path,
                )
        extra = tuple(
            WarningRule(
                "readmission_rate",
                "higher",
                None,
                q.above_average_by,
                0,
                f"质量扣减 (period.quality[{k}]): a DRG more than {_percent(q.above_average_by)} "
                f"above the regional rate loses {_percent(q.deduct)} of its payment",
                True,
                q,
            )
            for k, q in enumerate(quality)
            if q.metric == "readmitted_31d"
        )
        return attrs.evolve(rules, rules=rules.rules + extra)


def _percent(x: Decimal) -> str:
    return f"{(x * 100).normalize():f}%"


#: the seeds' defaults: cost growth above 8% yellow, above 10% red
DEFAULT_RULES = MonitoringRules(
    (
        WarningRule(
            "cost_growth",
            "higher",
            Decimal("0.08"),
            Decimal("0.10"),
            0,
            "费用增长预警: review the cost growth",
        ),
    )
)


def _rules_of(rules: Any) -> tuple[WarningRule, ...]:
    if isinstance(rules, MonitoringRules):
        return rules.rules
    if isinstance(rules, WarningRule):
        return (rules,)
    if isinstance(rules, (str, Path)):
        return MonitoringRules.from_toml(rules).rules
    if hasattr(rules, "config") and hasattr(rules, "path"):  # a Policy
        return MonitoringRules.from_policy(rules).rules
    if rules is None:
        return DEFAULT_RULES.rules
    return tuple(rules)


def _evaluate(
    table: pa.Table, rules: Sequence[WarningRule]
) -> list[list[tuple[str | None, Fraction | None, Fraction | None]]]:
    """Per row, per rule: (light, value, regional value)."""
    rows = table.to_pylist()
    keys = [n for n in table.column_names if n not in {c for c, _t in INDICATOR_COLUMNS}]
    from ._indicators import DENOMINATOR_COLUMNS

    keys = [k for k in keys if k not in {c for c, _t in DENOMINATOR_COLUMNS}]
    region_keys = [k for k in keys if k not in _UNITS]
    out: list[list[tuple[str | None, Fraction | None, Fraction | None]]] = [[] for _ in rows]
    for rule in rules:
        if rule.indicator not in table.column_names:
            raise MonitoringError(f"the indicator table has no {rule.indicator!r} column")
        sums: dict[tuple, list[Fraction]] = {}
        if rule.relative:
            num_col, den_col = _RATIOS[rule.indicator]
            for r in rows:
                if r[num_col] is None or r[den_col] is None:
                    continue
                acc = sums.setdefault(tuple(r[k] for k in region_keys), [Fraction(0), Fraction(0)])
                acc[0] += Fraction(r[num_col])
                acc[1] += Fraction(r[den_col])
        for k, r in enumerate(rows):
            if r.get("cases", 0) < rule.min_cases:
                out[k].append((None, None, None))
                continue
            value = exact_value(r, rule.indicator)
            regional = parts = None
            if rule.relative:
                num_col, den_col = _RATIOS[rule.indicator]
                acc = sums.get(tuple(r[c] for c in region_keys))
                regional = acc[0] / acc[1] if acc is not None and acc[1] else None
                if acc is not None and r[num_col] is not None and r[den_col] is not None:
                    parts = (int(r[num_col]), int(r[den_col]), int(acc[0]), int(acc[1]))
            out[k].append((rule.light(value, regional, parts), value, regional))
    return out


def warnings(
    table: pa.Table, rules: MonitoringRules | Sequence[WarningRule] | Any = None
) -> pa.Table:
    """``table`` (an indicator table) with two columns added: ``light`` ('red', 'yellow',
    'green', or null when no rule applies to the row: every rule below its minimum cases or its
    value not computable) and ``rule`` (the rule that set a yellow or red light, as text; the
    worst rule wins, the first listed among equals; null when green). ``rules``:
    :class:`MonitoringRules`, a sequence of :class:`WarningRule`, a policy, or a TOML path
    (None: :data:`DEFAULT_RULES`)."""
    the_rules = _rules_of(rules)
    results = _evaluate(table, the_rules)
    lights, texts = [], []
    for per_rule in results:
        best: tuple[int, int] | None = None
        for j, (light, _v, _r) in enumerate(per_rule):
            if light is None:
                continue
            rank = LIGHTS.index(light)
            if best is None or rank > best[0]:
                best = (rank, j)
        if best is None:
            lights.append(None)
            texts.append(None)
        else:
            light = LIGHTS[best[0]]
            lights.append(light)
            texts.append(the_rules[best[1]].describe(light) if light != "green" else None)
    return table.append_column("light", pa.array(lights, pa.string())).append_column(
        "rule", pa.array(texts, pa.string())
    )


def warning_details(
    table: pa.Table, rules: MonitoringRules | Sequence[WarningRule] | Any = None
) -> pa.Table:
    """One row per (key, rule): the keys, ``indicator``, ``value`` (float64, display),
    ``regional`` (relative rules), ``light``, ``rule`` and ``action``."""
    from ._indicators import DENOMINATOR_COLUMNS

    the_rules = _rules_of(rules)
    results = _evaluate(table, the_rules)
    skip = {c for c, _t in (*INDICATOR_COLUMNS, *DENOMINATOR_COLUMNS)}
    keys = [n for n in table.column_names if n not in skip and n not in ("light", "rule")]
    key_rows = table.select(keys).to_pylist()
    out: dict[str, list[Any]] = {
        k: [] for k in (*keys, "indicator", "value", "regional", "light", "rule", "action")
    }
    for key_row, per_rule in zip(key_rows, results, strict=True):
        for rule, (light, value, regional) in zip(the_rules, per_rule, strict=True):
            for k in keys:
                out[k].append(key_row[k])
            out["indicator"].append(rule.indicator)
            out["value"].append(None if value is None else float(value))
            out["regional"].append(None if regional is None else float(regional))
            out["light"].append(light)
            out["rule"].append(rule.describe(light))
            out["action"].append(rule.action or None)
    schema = pa.schema(
        [table.schema.field(k) for k in keys]
        + [
            pa.field("indicator", pa.string()),
            pa.field("value", pa.float64()),
            pa.field("regional", pa.float64()),
            pa.field("light", pa.string()),
            pa.field("rule", pa.string()),
            pa.field("action", pa.string()),
        ]
    )
    return pa.table(out, schema=schema)
