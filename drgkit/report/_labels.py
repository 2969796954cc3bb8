"""Every word a report shows, in Chinese (the default) and English: one dictionary, so that the
HTML page and the Excel workbook cannot name a thing two ways."""

from __future__ import annotations

import re

__all__ = ["LABELS", "LANGS", "Labeller", "label"]

#: the languages a report is written in; the first is the default
LANGS = ("zh", "en")

#: key -> (Chinese, English)
LABELS: dict[str, tuple[str, str]] = {
    # titles and sections
    "title": ("DRG 运行监测报告", "DRG monitoring report"),
    "title@dip": ("DIP 运行监测报告", "DIP monitoring report"),
    "title_hospital@dip": (
        "DIP 运行监测报告 · 医院 {hospital}（对比全区域）",
        "DIP monitoring report · hospital {hospital} (against the region)",
    ),
    "gain_loss_by_drg@dip": (
        "病种盈亏（前 {n} 位，按绝对值）",
        "Gain/loss by DIP packet (top {n} by size)",
    ),
    "indicators_drg@dip": ("病种指标", "Indicators by DIP packet"),
    "drg@dip": ("病种", "DIP packet"),
    "drg_base@dip": ("病种（本年）", "DIP packet (this year)"),
    "drg_count@dip": ("病种数", "Packet count"),
    "sheet_drgs@dip": ("病种", "Packets"),
    "sheet_what_if_drgs@dip": ("模拟-病种", "What-if packets"),
    "no_marks": ("本数据无法计算{what}。", "{what} cannot be computed from this data."),
    "title_hospital": (
        "DRG 运行监测报告 · 医院 {hospital}（对比全区域）",
        "DRG monitoring report · hospital {hospital} (against the region)",
    ),
    "subtitle": (
        "政策 {policy} · {cases} 例 · {first} 至 {last}",
        "Policy {policy} · {cases} cases · {first} to {last}",
    ),
    "generated_by": (
        "由 drgkit {version} 生成；离线可读，无外部资源。",
        "Written by drgkit {version}; reads offline, no external resources.",
    ),
    "summary": ("概览", "Summary"),
    "region": ("全区域", "Region"),
    "this_hospital": ("本院", "This hospital"),
    "cmi_by_unit": ("各医院 CMI", "CMI by hospital"),
    "cmi_by_department": ("各科室 CMI", "CMI by department"),
    "quadrant": ("费用消耗指数 × 时间消耗指数", "Cost index × time index"),
    "quadrant_note": (
        "右上：费用高、住院长；左下：费用低、住院短；虚线 = 1（区域水平）",
        "Top right: costlier and longer than the region; bottom left: cheaper and shorter; "
        "dashed lines = 1 (the region)",
    ),
    "gain_loss_by_drg": ("DRG 盈亏（前 {n} 位，按绝对值）", "Gain/loss by DRG (top {n} by size)"),
    "monthly_trend": ("月度趋势：总费用与支付", "Monthly trend: cost and payment"),
    "case_mix_by_mdc": ("MDC 病例构成", "Case mix by MDC"),
    "warnings": ("预警（红黄绿灯）", "Warnings (red/yellow/green)"),
    "no_warnings": ("无红灯或黄灯。", "No red or yellow light."),
    "targets": ("目标达成", "Targets met or missed"),
    "sheet_targets": ("目标", "Targets"),
    "target": ("目标", "Target"),
    "scope": ("范围", "Scope"),
    "scope_id": ("对象", "Unit"),
    "min": ("下限", "At least"),
    "max": ("上限", "At most"),
    "met": ("达成", "Met"),
    "detail": ("说明", "Detail"),
    "met_true": ("达成", "met"),
    "met_false": ("未达成", "missed"),
    "alliance": ("医联体", "Alliance"),
    "referral_rate": ("医联体内转诊率", "Referral rate"),
    "hospital": ("医院", "Hospital"),
    # the seeds' target ids (their bounds are policy data: the min and max columns)
    "total_cost_growth": ("医疗总费用增长", "Total cost growth"),
    "cost_per_case_down": ("次均住院费用下降", "Cost per case down"),
    "alliance_referral_rate": ("医联体内转诊率", "Referral rate in an alliance"),
    "cost_difference_coefficient": ("费用差异系数", "Cost difference coefficient"),
    "indicators_unit": ("医院指标", "Indicators by hospital"),
    "indicators_department": ("科室指标", "Indicators by department"),
    "indicators_drg": ("DRG 指标", "Indicators by DRG"),
    "indicators_month": ("月度指标", "Indicators by month"),
    "indicators_mdc": ("MDC 指标", "Indicators by MDC"),
    "what_if": ("政策模拟：明年规则下的变化", "What-if: changes under next year's rules"),
    "what_if_department": ("按科室", "By department"),
    "what_if_drg": ("按 DRG（前 {n} 位，按变化绝对值）", "By DRG (top {n} by size of change)"),
    "change_by_department": ("各科室支付变化", "Payment change by department"),
    "shown_of": ("显示 {shown} / {total} 项", "showing {shown} of {total}"),
    "not_available": (
        "数据中无 {column} 列，本节从略。",
        "The data has no {column} column; section left out.",
    ),
    "legend_cost": ("总费用", "Total cost"),
    "legend_payment": ("支付", "Payment"),
    "money_note": ("金额单位：元，精确到分。", "Amounts in yuan, exact to the cent."),
    # lights
    "light": ("灯", "Light"),
    "rule": ("规则", "Rule"),
    "red": ("红", "red"),
    "yellow": ("黄", "yellow"),
    "green": ("绿", "green"),
    "indicator": ("指标", "Indicator"),
    "value": ("数值", "Value"),
    "action": ("处置", "Action"),
    "regional": ("区域值", "Regional"),
    # key columns
    "hospital_id": ("医院", "Hospital"),
    "department": ("科室", "Department"),
    "doctor": ("医生", "Doctor"),
    "mdc": ("MDC", "MDC"),
    "drg": ("DRG", "DRG"),
    "drg_base": ("DRG（本年）", "DRG (this year)"),
    "month": ("月份", "Month"),
    "scheme": ("险种类别", "Scheme"),
    "insurance_type": ("险种", "Insurance type"),
    "hospital_level": ("医院等级", "Hospital level"),
    # indicator columns (the monitoring contract)
    "cases": ("病例数", "Cases"),
    "grouped": ("入组病例", "Grouped"),
    "grouping_rate": ("入组率", "Grouping rate"),
    "drg_count": ("DRG 组数", "DRG count"),
    "total_weight": ("总权重", "Total weight"),
    "cmi": ("CMI", "CMI"),
    "cost_index": ("费用消耗指数", "Cost index"),
    "time_index": ("时间消耗指数", "Time index"),
    "total_cost": ("总费用", "Total cost"),
    "mean_cost": ("次均费用", "Mean cost"),
    "total_los": ("总住院日", "Total LOS"),
    "mean_los": ("平均住院日", "Mean LOS"),
    "cost_per_weight": ("每权重费用", "Cost per weight"),
    "high_outliers": ("高倍率病例", "High outliers"),
    "high_outlier_share": ("高倍率占比", "High outlier share"),
    "low_outliers": ("低倍率病例", "Low outliers"),
    "low_outlier_share": ("低倍率占比", "Low outlier share"),
    "drug_cost": ("药品费", "Drug cost"),
    "drug_share": ("药占比", "Drug share"),
    "consumable_cost": ("耗材费", "Consumable cost"),
    "consumable_share": ("耗占比", "Consumable share"),
    "deaths": ("死亡", "Deaths"),
    "low_risk_cases": ("低风险病例", "Low-risk cases"),
    "low_risk_deaths": ("低风险死亡", "Low-risk deaths"),
    "low_risk_mortality": ("低风险死亡率", "Low-risk mortality"),
    "readmissions_31d": ("31 天再入院", "31-day readmissions"),
    "readmission_rate": ("再入院率", "Readmission rate"),
    "payment": ("支付", "Payment"),
    "fund_payment": ("基金支付", "Fund payment"),
    "gain_loss": ("盈亏", "Gain/loss"),
    "previous_total_cost": ("上期总费用", "Previous total cost"),
    "cost_growth": ("费用增长", "Cost growth"),
    "previous_cost_per_case": ("上期次均费用", "Previous cost per case"),
    "cost_per_case_growth": ("次均费用增长", "Cost per case growth"),
    "status_ok": ("状态：入组", "Status: grouped"),
    "status_ungroupable": ("状态：无法入组", "Status: ungroupable"),
    "status_ambiguous": ("状态：歧义", "Status: ambiguous"),
    "status_invalid": ("状态：无效", "Status: invalid"),
    # the exact numerators and denominators behind the ratios
    "settled": ("已结算病例", "Settled cases"),
    "weighted_cases": ("有权重病例", "Cases with a weight"),
    "weighted_cost": ("有权重病例费用", "Cost of cases with a weight"),
    "indexed_cost": ("指数病例费用", "Cost in the cost index"),
    "expected_cost": ("按区域均值的预期费用", "Expected cost at regional means"),
    "indexed_los": ("指数病例住院日", "LOS in the time index"),
    "expected_los": ("按区域均值的预期住院日", "Expected LOS at regional means"),
    "los_cases": ("有住院日病例", "Cases with a LOS"),
    "mortality_cases": ("有离院方式病例", "Cases with a leaving type"),
    "readmission_known": ("再入院已知病例", "Cases with a readmission flag"),
    "previous_settled": ("上期已结算病例", "Previous settled cases"),
    # what-if columns (drgkit simulate)
    "moved": ("改变分组病例", "Cases changing DRG"),
    "payment_base": ("支付（本年）", "Payment (this year)"),
    "payment_alt": ("支付（明年规则）", "Payment (next year's rules)"),
    "change": ("变化", "Change"),
    "regrouping": ("分组变化", "Regrouping"),
    "casemix": ("病例组合", "Case mix"),
    "price": ("价格", "Price"),
    "outlier": ("极值", "Outlier"),
    # sheet names (Excel: at most 31 characters)
    "sheet_summary": ("概览", "Summary"),
    "sheet_units": ("医院", "Hospitals"),
    "sheet_departments": ("科室", "Departments"),
    "sheet_drgs": ("DRG", "DRGs"),
    "sheet_months": ("月份", "Months"),
    "sheet_mdcs": ("MDC", "MDCs"),
    "sheet_warnings": ("预警", "Warnings"),
    "sheet_warning_details": ("预警明细", "Warning details"),
    "sheet_what_if_departments": ("模拟-科室", "What-if departments"),
    "sheet_what_if_drgs": ("模拟-DRG", "What-if DRGs"),
}


def label(key: str, lang: str, scheme: str = "drg", **values: object) -> str:
    """The label of ``key`` in ``lang`` with ``values`` filled in; under ``scheme="dip"`` the
    ``key@dip`` variant where there is one (the ``drg`` column holds a DIP packet). An unknown
    column name is shown as it is (a status breakdown column such as ``status_ok``, a plugin's
    key)."""
    pair = LABELS.get(f"{key}@{scheme}") or LABELS.get(key)
    if pair is None:
        if key.startswith("status_"):
            return ("状态：" if lang == "zh" else "Status: ") + key[len("status_") :]
        return key
    text = pair[LANGS.index(lang)]
    return text.format(**values) if values else text


class Labeller:
    """:func:`label` bound to a language and a scheme: what one report writes with."""

    __slots__ = ("lang", "scheme")

    def __init__(self, lang: str, scheme: str = "drg") -> None:
        if lang not in LANGS:
            raise ValueError(f"lang must be one of {LANGS}, not {lang!r}")
        self.lang, self.scheme = lang, scheme

    def __call__(self, key: str, **values: object) -> str:
        return label(key, self.lang, self.scheme, **values)

    def rule(self, text: str | None) -> str | None:
        """A warning rule's text (:meth:`drgkit.monitoring.WarningRule.describe`) in this
        language: its indicator column, its ``yellow``/``red`` and ``× regional`` by their
        labels. The action after them is the policy's own text and stays as written."""
        if text is None:
            return None
        head = _RULE_HEAD.match(text)
        if head is not None and head.group(1) in LABELS:
            text = self(head.group(1)) + text[head.end() :]
        text = _RULE_LIGHT.sub(lambda m: self(m.group(1)), text)
        return text.replace(" × regional", f" × {self('regional')}", 1)


#: the indicator a rule's text begins with, and the lights named before a threshold
_RULE_HEAD = re.compile(r"^([a-z][a-z0-9_]*)(?=[ :])")
_RULE_LIGHT = re.compile(r"(?<=[:,] )(yellow|red)(?= [<>])")
