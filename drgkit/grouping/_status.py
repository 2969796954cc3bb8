"""Per-case statuses and reason codes of grouping.

Every case comes out with one of four statuses and, unless it is ``ok``, a reason code that a
program can filter on, plus a ``detail`` text a person can read. The codes are stable API.
"""

from __future__ import annotations

import attrs

STATUSES = ("ok", "ungroupable", "ambiguous", "invalid")
OK, UNGROUPABLE, AMBIGUOUS, INVALID = range(4)


@attrs.frozen(slots=True)
class Reason:
    code: str
    status: int
    #: OpenDRG's status for the same outcome (the reference grouper's vocabulary)
    opendrg: str
    text: str
    zh: str


# The input reasons every scheme (DRG and DIP) shares; each scheme places them in its own
# reason table, whose positions are the ids its kernel uses.
CASE_ID_REASONS = (
    Reason("case_id_missing", INVALID, "", "the case has no id", "病例编号缺失"),
    Reason(
        "duplicate_case_id", INVALID, "", "the case id occurs earlier in the input", "病例编号重复"
    ),
)
MALFORMED_ROW = Reason(
    "malformed_row", INVALID, "", "the input row could not be split into its columns", "行格式错误"
)


def version_reasons(noun: str, noun_zh: str) -> tuple[Reason, Reason, Reason]:
    """The reasons a case gets when no version of the ``noun`` (ruleset, catalogue; Chinese
    ``noun_zh``) can be chosen by its discharge date: date missing, not a date, none in force."""
    return (
        Reason(
            "discharge_date_missing",
            INVALID,
            "",
            f"no discharge date: the {noun} version in force cannot be chosen",
            "出院日期缺失",
        ),
        Reason(
            "discharge_date_invalid",
            INVALID,
            "",
            "the discharge date is not a date",
            "出院日期格式错误",
        ),
        Reason(
            f"no_{noun}_in_force",
            INVALID,
            "",
            f"no version of the {noun} was in force on the discharge date",
            f"出院日期无适用的{noun_zh}版本",
        ),
    )


_REASONS = (
    Reason("", OK, "SUCCESS", "grouped", "分组成功"),
    Reason(
        "no_mdc",
        UNGROUPABLE,
        "FAIL",
        "no MDC entry rule holds for the principal diagnosis",
        "主要诊断无法进入任何MDC",
    ),
    Reason(
        "no_adrg",
        UNGROUPABLE,
        "FAIL",
        "an MDC was entered but no ADRG of it matched",
        "进入MDC但无法进入任何ADRG",
    ),
    Reason(
        "ambiguity_group",
        AMBIGUOUS,
        "QY",
        "a QY check held: a procedure that does not fit the MDC of the principal diagnosis",
        "歧义病案：手术操作与主要诊断不匹配",
    ),
    Reason("sex_missing", INVALID, "CHECK_FAILED", "sex is missing", "性别缺失"),
    Reason("sex_invalid", INVALID, "CHECK_FAILED", "sex is not 1, 2, 男 or 女", "性别不合规"),
    Reason("age_missing", INVALID, "CHECK_FAILED", "age is missing", "年龄缺失"),
    Reason("age_not_integer", INVALID, "CHECK_FAILED", "age is not a whole number", "年龄不是整数"),
    Reason(
        "age_days_missing",
        INVALID,
        "CHECK_FAILED",
        "age is 0 and age in days is missing",
        "年龄为0且新生儿天龄缺失",
    ),
    Reason(
        "age_days_not_integer",
        INVALID,
        "CHECK_FAILED",
        "age is 0 and age in days is not a whole number",
        "年龄为0且新生儿天龄不是整数",
    ),
    Reason(
        "diagnosis_not_mapped",
        INVALID,
        "ZD_NOT_MAPPING",
        "a diagnosis code has no translation to the grouper's code version",
        "诊断不能转换为分组器支持的编码",
    ),
    Reason(
        "procedure_not_mapped",
        INVALID,
        "SS_NOT_MAPPING",
        "a procedure code has no translation to the grouper's code version",
        "手术操作不能转换为分组器支持的编码",
    ),
    Reason(
        "no_diagnosis_after_mapping",
        INVALID,
        "CHECK_FAILED",
        "no diagnosis is left after translation",
        "编码转换后无诊断",
    ),
    Reason(
        "text_compared",
        INVALID,
        "ERROR",
        "a rule compares a field holding text with < <= > or >=",
        "数值字段含文本",
    ),
    Reason(
        "not_integer",
        INVALID,
        "ERROR",
        "a rule needs a field as a whole number but it is text",
        "字段不是整数",
    ),
    Reason(
        "no_principal_procedure",
        INVALID,
        "ERROR",
        "a rule reads the principal procedure but there is none",
        "缺少主要手术",
    ),
    *CASE_ID_REASONS,
    MALFORMED_ROW,
    *version_reasons("ruleset", "分组方案"),
    # drgkit's plausibility checks (drgkit._cases.PLAUSIBLE); the reference grouper has none,
    # so these have no OpenDRG status (only value_checks="strict" produces them)
    Reason(
        "age_implausible",
        INVALID,
        "",
        "age is not a whole number of years from 0 to 150",
        "年龄不合理（须为0至150的整数）",
    ),
    Reason(
        "age_days_implausible",
        INVALID,
        "",
        "age in days is negative or not whole, or over 366 while age is 0",
        "天龄不合理（负数、非整数，或年龄为0时超过366天）",
    ),
    Reason(
        "birth_weight_implausible",
        INVALID,
        "",
        "birth weight is not from 0 to 10,000 grams",
        "新生儿出生体重不合理（须为0至10000克）",
    ),
    Reason(
        "los_implausible",
        INVALID,
        "",
        "length of stay is not from 0 to 36,600 days",
        "住院天数不合理（须为0至36600天）",
    ),
    # added with the regional rulesets (appended: reason ids are positions)
    Reason(
        "icu_hours_implausible",
        INVALID,
        "",
        "ICU hours are not from 0 to 878,400",
        "重症监护时长不合理（须为0至878400小时）",
    ),
    Reason(
        "sex_not_text_1_2",
        INVALID,
        "CHECK_FAILED",
        "sex is not the text 1 or 2 (this ruleset's sex check: check_gender text)",
        "性别不是1或2",
    ),
    Reason(
        "birth_weight_missing",
        INVALID,
        "CHECK_FAILED",
        "a newborn (age 0, at most 28 days) has no birth weight (check_newborn_weight)",
        "新生儿（28天内）出生体重缺失",
    ),
    Reason(
        "rule_cannot_be_evaluated",
        INVALID,
        "ERROR",
        "a rule of the ruleset cannot be evaluated (the reference grouper raises an error)",
        "分组规则无法执行",
    ),
)

REASONS: dict[str, Reason] = {r.code: r for r in _REASONS}
REASON_CODES: tuple[str, ...] = tuple(r.code for r in _REASONS)
REASON_ID: dict[str, int] = {code: i for i, code in enumerate(REASON_CODES)}
#: status of each reason id, for vectorised lookups
REASON_STATUS = tuple(r.status for r in _REASONS)


def rid(code: str) -> int:
    return REASON_ID[code]
