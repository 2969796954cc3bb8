"""The case and result tables: one source of truth for column names, types and meanings.

Column names follow the national settlement list (医疗保障基金结算清单, interface 4101/4101A)
closely but in plain English; :data:`CASE_FIELDS` records each one's settlement-list field and its
Chinese name. Real files come in many layouts, so a :class:`Layout` maps a file's own column
names onto these (built-in layouts: ``drgkit``, ``opendrg``, ``settlement-list``, ``zh``).

Grouping fields (sex, age, age in days, birth weight, department, length of stay, leaving type)
are kept *raw*: a value may be a number or a text, exactly as it arrived, because the grouping
rules distinguish the two (a text age fails the input check; a text weight compared with ``<``
is an error). Code lists are ``list<string>``; the first element is the principal one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import pyarrow as pa

__all__ = [
    "ALLIANCE_CASES_SCHEMA",
    "ALLIANCE_ITEMS_SCHEMA",
    "ALLIANCE_MEMBERS_SCHEMA",
    "ALLIANCE_SUMMARY_SCHEMA",
    "ALLIANCE_TRANSFERS_SCHEMA",
    "CARRIED_SCHEMA",
    "CASE_FIELDS",
    "CMI_TYPE",
    "DIP_COLUMNS",
    "DIP_RESULT_SCHEMA",
    "GROUP_RESULT_SCHEMA",
    "HOSPITAL_TOTALS_SCHEMA",
    "LAYOUTS",
    "MONEY",
    "PERIOD_SCHEMA",
    "PRESETTLE_SCHEMA",
    "QUALITY_SCHEMA",
    "RATE",
    "REQUIRED_FOR_GROUPING",
    "RW_DECIMALS",
    "RW_TYPE",
    "SIMULATE_CASE_SCHEMA",
    "SIMULATE_COMPONENTS",
    "SIMULATE_KEY_SCHEMA",
    "SIMULATE_SCENARIOS",
    "STATUSES",
    "CaseField",
    "Layout",
    "dip_settle_schema",
    "settle_schema",
]


@attrs.frozen(slots=True)
class CaseField:
    """One column of the case table."""

    name: str
    #: ``raw`` (number or text), ``string``, ``codes`` (list of strings), ``date``, ``money``
    #: (exact cents), ``number``, ``flag``.
    kind: str
    #: Field name in the national settlement list (4101/4101A), where there is one.
    national: str
    #: Chinese name as users and files know it.
    zh: str
    doc: str


CASE_FIELDS: tuple[CaseField, ...] = (
    CaseField(
        "case_id",
        "string",
        "setl_id",
        "病例编号/结算ID",
        "Unique id of the case (settlement id or medical record number).",
    ),
    CaseField(
        "hospital_id",
        "string",
        "fixmedins_code",
        "定点医疗机构编码",
        "Hospital (designated medical institution) code.",
    ),
    CaseField(
        "hospital_level",
        "raw",
        "hosp_lv",
        "医院等级",
        "Hospital level: 1, 2 or 3 (一级/二级/三级).",
    ),
    CaseField(
        "insurance_type",
        "string",
        "insutype",
        "险种类型",
        "Insurance scheme: 310 employees (职工), 390 residents (居民).",
    ),
    CaseField("sex", "raw", "gend", "性别", "1 male (男), 2 female (女)."),
    CaseField("age", "raw", "age", "年龄(岁)", "Age in whole years."),
    CaseField("age_days", "raw", "nwb_age", "年龄不足1周岁的年龄(天)", "Age in days, for infants."),
    CaseField(
        "birth_weight",
        "raw",
        "nwb_bir_wt",
        "新生儿出生体重(克)",
        "Birth weight in grams, for newborns.",
    ),
    CaseField(
        "admission_weight",
        "raw",
        "nwb_adm_wt",
        "新生儿入院体重(克)",
        "Admission weight in grams, for newborns.",
    ),
    CaseField("department", "raw", "dscg_caty", "出院科别", "Discharge department code."),
    CaseField("los", "raw", "act_ipt_days", "实际住院天数", "Length of stay in days."),
    CaseField(
        "leaving_type",
        "raw",
        "dscg_way",
        "离院方式",
        "1 on medical advice, 2 transferred to hospital, 3 to community/township centre, "
        "4 against advice, 5 died, 9 other.",
    ),
    CaseField(
        "icu_hours",
        "raw",
        "scs_cutd_sum_dura",
        "重症监护合计时长(小时)",
        "Hours in intensive care (optional; read by the rules of some regional rulesets).",
    ),
    CaseField(
        "diagnoses",
        "codes",
        "diag_code",
        "诊断代码",
        "Diagnosis codes (ICD-10 extension); the first is the principal diagnosis (主要诊断).",
    ),
    CaseField(
        "procedures",
        "codes",
        "oprn_oprt_code",
        "手术及操作代码",
        "Procedure codes (ICD-9-CM-3 extension); the first is the principal procedure (主要手术).",
    ),
    CaseField("admission_date", "date", "adm_time", "入院时间", "Admission date."),
    CaseField(
        "discharge_date",
        "date",
        "dscg_time",
        "出院时间",
        "Discharge date; selects the ruleset version in force.",
    ),
    CaseField(
        "ventilation_hours",
        "number",
        "vent_used_dura",
        "呼吸机使用时长(小时)",
        "Invasive ventilation hours.",
    ),
    CaseField(
        "readmitted_31d",
        "flag",
        "days_rinp_flag_31",
        "31天内再住院",
        "Readmitted within 31 days of a previous discharge.",
    ),
    CaseField(
        "total_cost", "money", "medfee_sumamt", "医疗费总额", "Total cost of the stay (yuan)."
    ),
    CaseField("drug_cost", "money", "drug_fee", "药品费", "Drug cost (yuan)."),
    CaseField("consumables_cost", "money", "mcs_fee", "耗材费", "Medical consumables cost (yuan)."),
    CaseField("fund_paid", "money", "hifp_pay", "统筹基金支付", "Paid by the pooled fund (yuan)."),
    CaseField("self_pay", "money", "psn_selfpay", "个人自付", "Patient co-payment (yuan)."),
    CaseField(
        "own_pay", "money", "psn_ownpay", "个人自费", "Patient out-of-scheme payment (yuan)."
    ),
    CaseField(
        "doctor",
        "string",
        "chfpdr_code",
        "主诊医师代码",
        "Attending doctor's code (主诊医师); carried into the settled table for monitoring.",
    ),
    CaseField(
        "referral_from",
        "string",
        "refl_setl_id",
        "转诊来源病例编号",
        "Case id of the stay this case was referred from, if any.",
    ),
)

FIELDS_BY_NAME: dict[str, CaseField] = {f.name: f for f in CASE_FIELDS}

#: Fields the grouper reads. Every other field passes through untouched.
GROUPING_FIELDS = (
    "case_id",
    "sex",
    "age",
    "age_days",
    "birth_weight",
    "department",
    "los",
    "leaving_type",
    "icu_hours",
    "diagnoses",
    "procedures",
    "discharge_date",
)

#: A case table must have these columns; every other grouping field may be absent (then it is
#: missing for every case, which the per-case status reports).
REQUIRED_FOR_GROUPING = ("diagnoses",)

#: Scalar fields the rules may compare, in kernel order, with the name the ruleset tables use.
RULE_FIELDS: tuple[tuple[str, str], ...] = (
    ("gender", "sex"),
    ("age", "age"),
    ("ageDay", "age_days"),
    ("weight", "birth_weight"),
    ("dept", "department"),
    ("los", "los"),
    ("leavingType", "leaving_type"),
    ("icuHours", "icu_hours"),
)

STATUSES = ("ok", "ungroupable", "ambiguous", "invalid")

GROUP_RESULT_SCHEMA = pa.schema(
    [
        pa.field("case_id", pa.string()),  # null when the input row has no id
        pa.field("status", pa.dictionary(pa.int8(), pa.string()), nullable=False),
        pa.field("reason", pa.dictionary(pa.int8(), pa.string())),
        pa.field("detail", pa.dictionary(pa.int32(), pa.string())),
        # common to every scheme's result (DIP's has them too), so one reader serves both
        pa.field("scheme", pa.dictionary(pa.int8(), pa.string()), nullable=False),
        pa.field("group", pa.string()),
        pa.field("mdc", pa.string(), nullable=False),
        pa.field("adrg", pa.string(), nullable=False),
        pa.field("drg", pa.string(), nullable=False),
        pa.field("ruleset", pa.dictionary(pa.int16(), pa.string())),
    ],
    metadata={
        b"case_id": "病例编号 case id (input's own id, or the 1-based row number if it has none)",
        b"status": "ok 分组成功 | ungroupable 无法入组 | ambiguous 歧义组 | invalid 信息校验不通过",
        b"reason": "machine-readable reason code for every status but ok",
        b"detail": "human-readable explanation of the reason",
        b"scheme": "drg (this table) | dip: the payment scheme that grouped the case",
        b"group": "the case's group in its scheme (the DRG; the DIP packet); null when none",
        b"mdc": "主要诊断大类, e.g. MDCG; 0000 when none",
        b"adrg": "核心疾病诊断相关组, e.g. GZ1; 00 when none, QY for ambiguity groups",
        b"drg": "DRG 细分组, e.g. GZ13; 0000 when none",
        b"ruleset": "id of the ruleset version that grouped the case",
        b"drgkit.scheme": "drg",
    },
)


@attrs.frozen(slots=True)
class Layout:
    """How one file layout names the case fields.

    ``columns`` maps a case field to the file's column; ``separators`` are the characters that
    split a code list held in one text column (``|`` and ``,`` by default).
    ``detect`` lists the columns whose presence identifies the layout.
    """

    name: str
    columns: Mapping[str, str] = attrs.field(converter=lambda m: dict(m))
    detect: tuple[str, ...] = attrs.field(converter=tuple, default=())
    separators: str = ",|"
    description: str = ""

    def __attrs_post_init__(self) -> None:
        unknown = set(self.columns) - set(FIELDS_BY_NAME)
        if unknown:
            raise ValueError(
                f"layout {self.name!r} maps unknown case fields {sorted(unknown)}; "
                f"case fields are {[f.name for f in CASE_FIELDS]}"
            )
        if not self.separators or any(ord(ch) > 127 for ch in self.separators):
            raise ValueError(
                f"layout {self.name!r}: separators must be ASCII characters, "
                f"got {self.separators!r}"
            )

    def source_for(self, field: str) -> str | None:
        return self.columns.get(field)

    def matches(self, names: Iterable[str]) -> bool:
        present = set(names)
        return bool(self.detect) and all(c in present for c in self.detect)

    def with_overrides(self, overrides: Mapping[str, str]) -> Layout:
        merged = dict(self.columns)
        merged.update(overrides)
        return attrs.evolve(self, columns=merged)


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "drgkit",
            {f.name: f.name for f in CASE_FIELDS},
            detect=("case_id", "diagnoses"),
            description="drgkit's own column names (this module).",
        ),
        Layout(
            "opendrg",
            {
                "case_id": "Index",
                "sex": "gender",
                "age": "age",
                "age_days": "ageDay",
                "birth_weight": "weight",
                "department": "dept",
                "los": "inHospitalTime",
                "leaving_type": "leavingType",
                "icu_hours": "icuHours",
                "diagnoses": "ICD10_DRGS",
                "procedures": "ICD9_DRGS",
            },
            detect=("ICD10_DRGS",),
            description="OpenDRG input.txt: Index,gender,age,ageDay,weight,dept,inHospitalTime,"
            "leavingType,ICD10_DRGS,ICD9_DRGS (the layout of ../shared/oracle), and the optional "
            "icuHours.",
        ),
        Layout(
            "settlement-list",
            {f.name: f.national for f in CASE_FIELDS},
            detect=("diag_code",),
            description="Field names of the national settlement list (医保结算清单 4101A).",
        ),
        Layout(
            "zh",
            {
                "case_id": "病例编号",
                "hospital_id": "医疗机构编码",
                "hospital_level": "医院等级",
                "insurance_type": "险种类型",
                "sex": "性别",
                "age": "年龄",
                "age_days": "新生儿天龄",
                "birth_weight": "新生儿出生体重",
                "admission_weight": "新生儿入院体重",
                "department": "出院科别",
                "los": "住院天数",
                "leaving_type": "离院方式",
                "icu_hours": "重症监护时长",
                "diagnoses": "诊断编码",
                "procedures": "手术操作编码",
                "admission_date": "入院日期",
                "discharge_date": "出院日期",
                "ventilation_hours": "呼吸机使用时长",
                "readmitted_31d": "31天内再住院",
                "total_cost": "总费用",
                "drug_cost": "药品费",
                "consumables_cost": "耗材费",
                "fund_paid": "统筹基金支付",
                "self_pay": "个人自付",
                "own_pay": "个人自费",
                "referral_from": "转诊来源病例编号",
                "doctor": "主诊医师代码",
            },
            detect=("诊断编码",),
            description="Chinese column headers, as exported by many hospital systems.",
        ),
    )
}


# ------------------------------------------------------------------------ settlement outputs

#: Arrow type of every money column drgkit writes: yuan with two decimals, exact.
MONEY = pa.decimal128(18, 2)
#: Arrow type of rate columns: a ratio rounded half up to 6 decimals (display only).
RATE = pa.decimal128(9, 6)


def _columns(*pairs: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, typ) for name, typ in pairs])


_MONEY_TOTALS = ("payment", "fund_payment", "patient_share", "total_cost", "gain_loss")

#: :func:`drgkit.settlement.hospital_totals`: per hospital, rows, settled rows and money sums.
HOSPITAL_TOTALS_SCHEMA = _columns(
    ("hospital_id", pa.string()),
    ("cases", pa.int64()),
    ("settled", pa.int64()),
    *((name, MONEY) for name in _MONEY_TOTALS),
)

#: :func:`drgkit.settlement.quality_deductions`: per hospital and group, the quality link.
QUALITY_SCHEMA = _columns(
    ("hospital_id", pa.string()),
    ("drg", pa.string()),
    ("cases", pa.int64()),
    ("readmitted", pa.int64()),
    ("rate", RATE),
    ("regional_rate", RATE),
    ("payment", MONEY),
    ("deduction", MONEY),
    ("known", pa.int64()),
    ("regional_known", pa.int64()),
    ("regional_readmitted", pa.int64()),
    ("exceeded", pa.bool_()),
    ("rule", pa.int32()),
)

#: :func:`drgkit.settlement.settle_period`: per hospital, the period settlement.
PERIOD_SCHEMA = _columns(
    ("hospital_id", pa.string()),
    ("cases", pa.int64()),
    ("settled", pa.int64()),
    ("payment", MONEY),
    ("fund_payment", MONEY),
    ("patient_share", MONEY),
    ("deduction", MONEY),
    ("due", MONEY),
    ("cost", MONEY),
    ("balance", MONEY),
    ("base_kind", pa.string()),
    ("base", MONEY),
    ("surplus", MONEY),
    ("kept", MONEY),
    ("returned", MONEY),
    ("overspend", MONEY),
    ("fund_overspend", MONEY),
    ("hospital_overspend", MONEY),
    ("hospital_result", MONEY),
    ("fund_due", MONEY),
    ("already_paid", MONEY),
    ("clearing", MONEY),
)

#: :func:`drgkit.settlement.presettle` and ``presettle_all``: per month and hospital.
PRESETTLE_SCHEMA = _columns(
    ("month", pa.string()),
    ("hospital_id", pa.string()),
    ("cases", pa.int64()),
    ("settled", pa.int64()),
    ("fund_payment", MONEY),
    ("prepayment", MONEY),
)


# ------------------------------------------------------------------------ alliance outputs

#: decimals of every RW drgkit reads or writes (published tables have up to 9)
RW_DECIMALS = 9
_COEF = pa.decimal128(9, 6)  # a member's coefficient, six decimals as in the model file
_VOLUME = pa.decimal128(38, RW_DECIMALS)  # a member's volume: a sum of RW (or of cases)
_ALLIANCE_COUNTS = (
    "members",
    "cases",
    "settled_cases",
    "paid_cases",
    "absorbed_cases",
    "up_links",
    "down_links",
)
_ALLIANCE_MONEY = (
    "budget",
    "claims",
    "surplus",
    "overspend",
    "kept",
    "returned",
    "fund_overspend",
    "alliance_overspend",
    "package_adjustment",
    "package",
    "shared_costs",
    "joint_revenue",
    "cost_increase_total",
    "cost_increase_members",
    "cost_increase_suppliers",
    "net",
)
_MEMBER_MONEY = (
    "own_payment",
    "referred_up",
    "up_received",
    "up_paid_out",
    "down_received",
    "down_paid_out",
    "claims",
    "package_adjustment",
    "shared_costs",
    "joint_revenue",
    "cost_increase",
    "net",
)

#: :func:`drgkit.alliance.split` ``summary``: one row per alliance.
ALLIANCE_SUMMARY_SCHEMA = _columns(
    ("alliance_id", pa.string()),
    ("basis", pa.string()),
    *((name, pa.int64()) for name in _ALLIANCE_COUNTS),
    *((name, MONEY) for name in _ALLIANCE_MONEY),
)

#: ``members``: one row per member hospital.
ALLIANCE_MEMBERS_SCHEMA = _columns(
    ("alliance_id", pa.string()),
    ("hospital_id", pa.string()),
    ("role", pa.string()),
    ("level", pa.int8()),
    ("coefficient", _COEF),
    ("cases", pa.int64()),
    ("settled_cases", pa.int64()),
    ("volume", _VOLUME),
    *((name, MONEY) for name in _MEMBER_MONEY),
)

#: ``items``: each allocated amount, with its weight.
ALLIANCE_ITEMS_SCHEMA = _columns(
    ("alliance_id", pa.string()),
    ("kind", pa.string()),
    ("item", pa.string()),
    ("hospital_id", pa.string()),
    ("weight", pa.string()),
    ("amount", MONEY),
)

#: ``cases``: every input case, with its referral link and claim.
ALLIANCE_CASES_SCHEMA = _columns(
    ("case_id", pa.string()),
    ("hospital_id", pa.string()),
    ("alliance_id", pa.string()),
    ("link", pa.dictionary(pa.int8(), pa.string())),
    ("parent_case_id", pa.string()),
    ("absorbed_into", pa.string()),
    ("paid", pa.bool_()),
    ("payment", MONEY),
    ("claim", MONEY),
    ("down_surplus", MONEY),
)

#: ``transfers``: each referral transfer between members.
ALLIANCE_TRANSFERS_SCHEMA = _columns(
    ("alliance_id", pa.string()),
    ("kind", pa.string()),
    ("case_id", pa.string()),
    ("child_case_id", pa.string()),
    ("parent_case_id", pa.string()),
    ("payer_hospital_id", pa.string()),
    ("payee_hospital_id", pa.string()),
    ("base", MONEY),
    ("amount", MONEY),
)


# ------------------------------------------------------------------------ DIP results

#: :func:`drgkit.group_dip`: every input row with its DIP packet, score and why.
DIP_RESULT_SCHEMA = pa.schema(
    [
        pa.field("case_id", pa.string()),
        pa.field("status", pa.dictionary(pa.int8(), pa.string()), nullable=False),
        pa.field("reason", pa.dictionary(pa.int8(), pa.string())),
        pa.field("detail", pa.dictionary(pa.int32(), pa.string())),
        pa.field("scheme", pa.dictionary(pa.int8(), pa.string()), nullable=False),
        # the group column every scheme's result has (the DRG in a DRG result): here the packet
        pa.field("group", pa.string()),
        pa.field("packet", pa.string()),
        pa.field("packet_kind", pa.dictionary(pa.int8(), pa.string())),
        pa.field("tier", pa.dictionary(pa.int8(), pa.string())),
        pa.field("score", pa.decimal128(18, 6)),
        pa.field("aux_subtype", pa.string()),
        pa.field("aux_coefficient", pa.decimal128(12, 6)),
        pa.field("catalogue", pa.dictionary(pa.int16(), pa.string())),
    ],
    metadata={b"drgkit.scheme": b"dip"},
)


# ------------------------------------------------------------------------ settled cases
# the settled-case tables depend on the policy: its method (points add a column, at the
# policy's point decimals), its id and content hash (in the metadata)

#: Arrow type of every RW column drgkit writes: exact at RW_DECIMALS
RW_TYPE = pa.decimal128(18, RW_DECIMALS)


#: columns a DRG settlement carries from its input into the settled table, after the others,
#: when the input has them (``mdc`` whenever the run groups or the input has it): what the
#: monitoring indicators need beyond payment (drgkit.monitoring). ``los`` is null when not a
#: whole number of days; a cost that is not an amount in whole cents is null (and warned of).
CARRIED_SCHEMA = pa.schema(
    [
        pa.field("mdc", pa.string()),
        pa.field("los", pa.int32()),
        pa.field("leaving_type", pa.string()),
        pa.field("drug_cost", MONEY),
        pa.field("consumables_cost", MONEY),
        pa.field("doctor", pa.string()),
    ]
)


def settle_schema(
    policy: Any, keep: pa.Schema | None = None, carried: Iterable[str] = ()
) -> pa.Schema:
    """The settled table of a DRG policy; ``carried``: names of :data:`CARRIED_SCHEMA` the
    input has, appended in that schema's order."""
    fields = list(keep) if keep is not None else []
    fields += [
        pa.field("case_id", pa.string()),
        pa.field("hospital_id", pa.string()),
        pa.field("department", pa.string()),
        pa.field("insurance_type", pa.string()),
        pa.field("hospital_level", pa.string()),
        pa.field("discharge_date", pa.date32()),
        pa.field("status", pa.dictionary(pa.int8(), pa.string())),
        pa.field("drg", pa.string()),
        # both schemes' tables name the scheme and the group (DRG code or DIP packet)
        pa.field("scheme", pa.dictionary(pa.int8(), pa.string())),
        pa.field("group", pa.string()),
        pa.field("rw", RW_TYPE),
        pa.field("payment_class", pa.dictionary(pa.int8(), pa.string())),
        pa.field("settled", pa.bool_()),
        pa.field("reason", pa.string()),
        pa.field("total_cost", MONEY),
        pa.field("standard", MONEY),
        pa.field("payment", MONEY),
        pa.field("fund_payment", MONEY),
        pa.field("patient_share", MONEY),
        pa.field("gain_loss", MONEY),
    ]
    if policy.method == "points":
        fields.append(pa.field("points", pa.decimal128(18, policy.point_decimals)))
    fields += [
        pa.field("readmitted_31d", pa.bool_()),
        pa.field("ruleset", pa.dictionary(pa.int16(), pa.string())),
        pa.field("ruleset_hash", pa.dictionary(pa.int16(), pa.string())),
        pa.field("policy", pa.dictionary(pa.int16(), pa.string())),
        pa.field("policy_hash", pa.dictionary(pa.int16(), pa.string())),
    ]
    wanted = set(carried)
    fields += [f for f in CARRIED_SCHEMA if f.name in wanted]
    return pa.schema(
        fields,
        metadata={
            b"money": "exact yuan (decimal128(18,2)); each case rounded once, half up, to 0.01",
            b"policy": policy.id,
            b"policy_hash": policy.content_hash,
        },
    )


#: columns of the DIP settled table beyond the money columns both schemes share
DIP_COLUMNS = ("points", "score", "packet_kind", "deviation", "factor", "reference_cost")


def dip_settle_schema(policy: Any, keep: pa.Schema | None = None) -> pa.Schema:
    """The settled table of a DIP policy: the shared columns (ids, status, ``scheme``,
    ``group``, payment class, the money columns of the DRG table) and the DIP ones (points,
    score, packet kind, deviation class, factor, reference cost)."""
    fields = list(keep) if keep is not None else []
    fields += [
        pa.field("case_id", pa.string()),
        pa.field("hospital_id", pa.string()),
        pa.field("department", pa.string()),
        pa.field("insurance_type", pa.string()),
        pa.field("hospital_level", pa.string()),
        pa.field("discharge_date", pa.date32()),
        pa.field("status", pa.dictionary(pa.int8(), pa.string())),
        pa.field("scheme", pa.dictionary(pa.int8(), pa.string())),
        pa.field("group", pa.string()),
        pa.field("payment_class", pa.dictionary(pa.int8(), pa.string())),
        pa.field("settled", pa.bool_()),
        pa.field("reason", pa.string()),
        pa.field("total_cost", MONEY),
        pa.field("standard", MONEY),
        pa.field("payment", MONEY),
        pa.field("fund_payment", MONEY),
        pa.field("patient_share", MONEY),
        pa.field("gain_loss", MONEY),
        pa.field("points", pa.decimal128(18, policy.point_decimals)),
        pa.field("score", pa.decimal128(18, 6)),
        pa.field("packet_kind", pa.string()),
        pa.field("deviation", pa.dictionary(pa.int8(), pa.string())),
        pa.field("factor", pa.decimal128(18, 6)),
        pa.field("reference_cost", MONEY),
        pa.field("readmitted_31d", pa.bool_()),
        pa.field("catalogue", pa.dictionary(pa.int16(), pa.string())),
        pa.field("policy", pa.dictionary(pa.int16(), pa.string())),
        pa.field("policy_hash", pa.dictionary(pa.int16(), pa.string())),
    ]
    return pa.schema(
        fields,
        metadata={
            b"money": "exact yuan (decimal128(18,2)); each case rounded once, half up, to 0.01",
            b"drgkit.scheme": b"dip",
            b"policy": policy.id,
            b"policy_hash": policy.content_hash,
        },
    )


# ------------------------------------------------------------------------ simulation

#: the scenarios of a simulation: base rules; base policy on the alt groups; alt rules
SIMULATE_SCENARIOS = ("base", "regrouped", "alt")
#: the parts a payment change is decomposed into (they add up to it)
SIMULATE_COMPONENTS = ("regrouping", "casemix", "price", "outlier")
#: Arrow type of a case-mix index (CMI) column: mean RW, four decimals
CMI_TYPE = pa.decimal128(18, 4)

#: :func:`drgkit.settlement.simulate` ``by_key``: after the ``by`` key columns, per key.
SIMULATE_KEY_SCHEMA = _columns(
    ("cases", pa.int64()),
    *((f"settled_{s}", pa.int64()) for s in SIMULATE_SCENARIOS),
    ("not_settled", pa.int64()),
    *((f"cmi_{s}", CMI_TYPE) for s in SIMULATE_SCENARIOS),
    *((f"payment_{s}", MONEY) for s in SIMULATE_SCENARIOS),
    ("change", MONEY),
    *((c, MONEY) for c in SIMULATE_COMPONENTS),
)

#: :func:`drgkit.settlement.simulate` ``cases``: after ``case_id`` and the ``by`` key columns
#: (those that are not one of these), per case.
SIMULATE_CASE_SCHEMA = _columns(
    ("drg_base", pa.string()),
    ("drg_alt", pa.string()),
    ("class_base", pa.string()),
    ("class_alt", pa.string()),
    *((f"settled_{s}", pa.bool_()) for s in SIMULATE_SCENARIOS),
    *((f"rw_{s}", RW_TYPE) for s in SIMULATE_SCENARIOS),
    *((f"standard_{s}", MONEY) for s in SIMULATE_SCENARIOS),
    *((f"payment_{s}", MONEY) for s in SIMULATE_SCENARIOS),
    ("change", MONEY),
    *((c, MONEY) for c in SIMULATE_COMPONENTS),
)
