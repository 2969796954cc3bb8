"""The demo's fixed facts: the case table's schema, the bad-row kinds, and the case mix and
clinical knowledge the generator samples from (see :mod:`drgkit._demo`)."""

from __future__ import annotations

from statistics import NormalDist
from typing import TypeVar

import pyarrow as pa

T = TypeVar("T")
_MONEY = pa.decimal128(14, 2)

#: Arrow schema of :func:`generate_cases` (canonical drgkit column names, see ``schema.py``).
DEMO_CASE_SCHEMA = pa.schema(
    [
        ("case_id", pa.string()),
        ("hospital_id", pa.string()),
        ("hospital_level", pa.int8()),
        ("insurance_type", pa.string()),
        ("sex", pa.string()),
        ("age", pa.string()),
        ("age_days", pa.string()),
        ("birth_weight", pa.string()),
        ("admission_weight", pa.string()),
        ("department", pa.string()),
        ("los", pa.string()),
        ("leaving_type", pa.string()),
        ("diagnoses", pa.list_(pa.string())),
        ("procedures", pa.list_(pa.string())),
        ("admission_date", pa.date32()),
        ("discharge_date", pa.date32()),
        ("ventilation_hours", pa.float64()),
        ("readmitted_31d", pa.bool_()),
        ("total_cost", _MONEY),
        ("drug_cost", _MONEY),
        ("consumables_cost", _MONEY),
        ("fund_paid", _MONEY),
        ("self_pay", _MONEY),
        ("own_pay", _MONEY),
        ("referral_from", pa.string()),
        ("doctor", pa.string()),  # treating doctor (主诊医师), "<hospital id>-<number>"
    ]
)

#: The kinds of deliberately bad rows, in the order they are drawn.
BAD_KINDS = (
    "unknown_diagnosis",  # principal truncated to its ICD-10 category: not a code of the version
    "empty_diagnoses",
    "missing_sex",
    "text_age",
    "infant_without_age_days",
    "text_birth_weight",  # '3,2kg' on a low-birth-weight newborn: the weight band cannot be read
    "duplicate_case_id",
    "foreign_or_procedure",  # an operating-room procedure of another MDC: QY where enabled
)

# ---------------------------------------------------------------------------------------------
# Case mix and clinical knowledge. Keyed by ADRG entry (national codes, stable across versions)
# or by MDC letter; anything missing falls back to a neutral default, so a changed ruleset
# still generates.
# ---------------------------------------------------------------------------------------------

# Relative admission volumes of a mid-sized city's hospitals.
VOLUME = {
    "AB1": 0.05,
    "AH1": 0.35,
    "PS1": 0.35,
    "PS2": 1.0,
    "PV1": 3.0,
    "ZC1": 0.5,
    "ZZ1": 0.5,
    "MB1": 1.0,
    "MZ1": 1.0,
    "NA1": 0.4,
    "NC1": 2.0,
    "NR1": 1.0,
    "BB1": 0.7,
    "BR1": 2.2,
    "BR2": 8.0,
    "BZ1": 4.0,
    "FM1": 4.0,
    "FR1": 2.2,
    "FR3": 6.0,
    "FU1": 1.0,
    "FU2": 2.5,
    "GB1": 0.7,
    "GB2": 0.8,
    "GD2": 2.5,
    "GK1": 3.0,
    "GR1": 2.5,
    "GZ1": 8.0,
    "IC2": 2.2,
    "IF3": 1.4,
    "IR2": 1.0,
    "OB1": 4.0,
    "OR1": 5.0,
}
# Share of a national case mix per MDC letter (percent of inpatient stays, rounded; drgkit's
# own estimate from published national statistics, for rulesets whose ADRGs VOLUME does not
# name). Within an MDC, medical ADRGs are more frequent than surgical ones and a fixed,
# per-code factor makes a few ADRGs dominate (see _demo_scenarios.national_volumes).
MDC_SHARE = {
    "A": 0.3,
    "B": 10.0,
    "C": 2.5,
    "D": 3.0,
    "E": 13.0,
    "F": 15.0,
    "G": 12.0,
    "H": 5.0,
    "I": 8.0,
    "J": 2.5,
    "K": 3.5,
    "L": 5.0,
    "M": 1.0,
    "N": 3.0,
    "O": 6.0,
    "P": 1.5,
    "Q": 1.0,
    "R": 4.0,
    "S": 1.0,
    "T": 0.5,
    "U": 0.2,
    "V": 1.0,
    "W": 0.1,
    "X": 1.5,
    "Y": 0.05,
    "Z": 0.2,
}
#: relative frequency of an ADRG by its second letter: A–J surgical, K–Q other procedures,
#: R–Z medical (CHS-DRG naming)
KIND_WEIGHT = {"surgical": 1.0, "procedure": 0.8, "medical": 1.8}
#: spread (sd of the log) of the per-ADRG factor: a few ADRGs take most of an MDC's cases
ADRG_SPREAD = 1.1

# Share of cases whose principal diagnosis lies outside the demo's MDCs (pneumonia, diabetes,
# gallbladder…): they are valid codes but cannot group, as in any partial scheme.
OUT_OF_SCOPE_SHARE = 0.08
#: the same for a national ruleset, which covers nearly every diagnosis
NATIONAL_OUT_OF_SCOPE_SHARE = 0.01
OUT_OF_SCOPE_PREFIXES = (
    "J18",
    "J15",
    "J44",
    "J45",
    "E10",
    "E11.1",
    "N17",
    "N39",
    "A41",
    "K74",
    "K81",
    "K85",
)

# Where the principal diagnosis of a surgical ADRG comes from: (list id or "dx_dict", code
# prefixes). Surgical ADRGs match on the procedure only, so without this an appendectomy could
# be drawn for a gastric cancer.
PDX_HINTS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "AB1": (("dx_dict", ("C22.0", "K72.1", "K74.6")),),
    "AH1": (("BR1.adrg_zd", ()), ("MDCZ.mdc_zd", ("S06",))),
    "ZC1": (("MDCZ.mdc_zd", ("S32", "S42", "S52", "S72", "S82")),),
    "MB1": (("MZ1.adrg_zd", ("N40",)),),
    "NC1": (("MDCN.mdc_zd", ("D25", "D27", "N80", "N83")),),
    "BB1": (("BR1.adrg_zd", ()),),
    "FM1": (("FR1.adrg_zd", ()), ("FR3.adrg_zd", ("I20", "I25.1"))),
    "GB1": (("GR1.adrg_zd", ("C15", "C16")),),
    "GB2": (("GR1.adrg_zd", ("C18", "C19", "C20")),),
    "GD2": (("GZ1.adrg_zd", ("K35", "K36")),),
    "GK1": (("GZ1.adrg_zd", ("K62.1", "K63.5", "D12.6")),),
    "IC2": (("MDCI.mdc_zd", ("M16", "M17", "M87", "S72.0")),),
    "IF3": (("IR2.adrg_zd", ()),),
    "OB1": (("OR1.adrg_zd", ("O14", "O32", "O34", "O42", "O68")),),
}

# Age in years: (mean, sd, min, max), by entry, else by MDC letter.
AGE_BY_ENTRY = {
    "GD2": (34, 15, 8, 85),
    "GK1": (56, 11, 30, 85),
    "MZ1": (52, 18, 16, 90),
    "NC1": (44, 8, 22, 70),
    "IR2": (78, 10, 35, 102),
    "IF3": (70, 16, 18, 100),
    "BZ1": (55, 18, 14, 95),
    "FU2": (64, 14, 18, 95),
}
AGE_BY_LETTER = {
    "A": (55, 13, 18, 80),
    "B": (66, 12, 20, 95),
    "F": (66, 11, 30, 95),
    "G": (54, 16, 16, 92),
    "I": (66, 14, 18, 98),
    "M": (68, 9, 40, 92),
    "N": (49, 11, 20, 85),
    "O": (30, 5, 19, 45),
    "Z": (45, 16, 16, 90),
}
AGE_DEFAULT = (62, 16, 18, 98)
MALE_SHARE = {"A": 0.66, "B": 0.55, "F": 0.62, "G": 0.55, "I": 0.42, "Z": 0.68, "P": 0.52}

# Length of stay in days: (median, minimum).
LOS = {
    "AB1": (30, 10),
    "AH1": (32, 8),
    "PS1": (42, 10),
    "PS2": (18, 4),
    "PV1": (6, 1),
    "ZC1": (22, 6),
    "ZZ1": (14, 2),
    "MB1": (7, 3),
    "MZ1": (6, 1),
    "NA1": (14, 6),
    "NC1": (7, 3),
    "NR1": (9, 1),
    "BB1": (20, 5),
    "BR1": (16, 2),
    "BR2": (11, 2),
    "BZ1": (7, 1),
    "FM1": (6, 2),
    "FR1": (9, 1),
    "FR3": (6, 1),
    "FU1": (9, 2),
    "FU2": (6, 1),
    "GB1": (17, 7),
    "GB2": (16, 7),
    "GD2": (5, 2),
    "GK1": (3, 0),
    "GR1": (10, 1),
    "GZ1": (6, 1),
    "IC2": (12, 5),
    "IF3": (13, 4),
    "IR2": (12, 2),
    "OB1": (5, 3),
    "OR1": (3, 1),
}

# Typical total cost of a stay at a level-2 hospital, yuan.
BASE_COST = {
    "AB1": 320000,
    "AH1": 160000,
    "PS1": 90000,
    "PS2": 32000,
    "PV1": 6500,
    "ZC1": 90000,
    "ZZ1": 38000,
    "MB1": 18000,
    "MZ1": 6500,
    "NA1": 52000,
    "NC1": 21000,
    "NR1": 13000,
    "BB1": 72000,
    "BR1": 28000,
    "BR2": 13500,
    "BZ1": 8500,
    "FM1": 48000,
    "FR1": 21000,
    "FR3": 9000,
    "FU1": 14000,
    "FU2": 10000,
    "GB1": 62000,
    "GB2": 58000,
    "GD2": 12500,
    "GK1": 6000,
    "GR1": 14000,
    "GZ1": 7000,
    "IC2": 60000,
    "IF3": 45000,
    "IR2": 12000,
    "OB1": 10500,
    "OR1": 5500,
}
# Consumables share of the cost for surgical stays (stents and implants dominate).
CONSUMABLES = {
    "FM1": 0.55,
    "IC2": 0.5,
    "IF3": 0.42,
    "ZC1": 0.4,
    "BB1": 0.3,
    "GB1": 0.3,
    "GB2": 0.32,
    "NA1": 0.28,
    "AB1": 0.25,
    "AH1": 0.2,
    "GD2": 0.22,
    "GK1": 0.25,
    "MB1": 0.3,
    "NC1": 0.22,
    "OB1": 0.15,
}

# Discharge department (出院科别): (surgical, medical) by MDC letter.
DEPT_BY_LETTER = {
    "A": ("0401", "2800"),
    "P": ("0701", "0701"),
    "Z": ("0403", "0403"),
    "M": ("0404", "0404"),
    "N": ("0501", "0501"),
    "O": ("0502", "0502"),
    "B": ("0402", "0303"),
    "F": ("0304", "0304"),
    "G": ("0401", "0302"),
    "I": ("0403", "0403"),
}
DEPT_BY_ENTRY = {"AH1": "2800", "GK1": "0302"}
DEPT_OUT_OF_SCOPE = {"J": "0301", "A": "0301", "E": "0307", "N": "0306", "K": "0302"}

# Non-operating-room procedures that often accompany a stay, by MDC letter ("-": no MDC).
# Only codes outside SS_VALID and outside every ADRG procedure list are used, so they never
# change the group.
NON_OR = {
    "A": ("96.0400", "38.9300", "99.1500", "99.0400"),
    "P": ("93.9000", "99.8300", "99.1500", "96.7100"),
    "Z": ("34.0400", "99.0400", "87.0300", "87.4100"),
    "M": ("57.9400",),
    "N": ("68.1600", "99.2500"),
    "B": ("87.0300", "88.9100", "88.4100", "99.1000", "93.3900"),
    "F": ("88.5700", "88.7200", "89.5200", "99.6200"),
    "G": ("45.1300", "45.2300", "44.4300", "99.0400", "96.0800x005", "99.2500"),
    "I": ("93.3900", "99.0400"),
    "O": ("73.5900", "73.6x00", "75.6900"),
    "-": ("87.4100", "93.9600", "89.5200"),
}
NON_OR_RATE = {"OR1": 0.75, "PV1": 0.35}
VENT_LONG, VENT_SHORT = "96.7200", "96.7100"  # ICD-9-CM-3 invasive ventilation ≥96 h / <96 h

# Weight-specific newborn codes: only drawn when the birth weight fits.
BIRTH_WEIGHT_CODES = {"P07.000": (0, 999), "P07.100": (1000, 2499)}

# Comorbidities that are neither CC nor MCC (hypertension, diabetes, …), for adults.
COMORBIDITY_PREFIXES = (
    "I10",
    "E11.9",
    "E78",
    "I25.1",
    "I25.2",
    "K76",
    "M81",
    "E03",
    "K29.7",
    "I67.2",
    "K21",
)

# Hospitals of one demo city: id, level (1/2/3), relative volume. Level is fixed per hospital.
HOSPITALS = (
    ("H320500001", 3, 1.0),
    ("H320500002", 3, 0.9),
    ("H320500003", 3, 0.7),
    ("H320500004", 2, 0.6),
    ("H320500005", 2, 0.5),
    ("H320500006", 2, 0.4),
    ("H320500007", 1, 0.25),
    ("H320500008", 1, 0.2),
)
# How often each level takes a stay of a given complexity tier (3 = transplant-class).
# tier -> {hospital level: share}
LEVEL_SHARE = {
    3: {3: 1.0, 2: 0.08, 1: 0.0},
    2: {3: 1.0, 2: 0.6, 1: 0.0},
    1: {3: 1.0, 2: 0.8, 1: 0.6},
}
LEVEL_COST = {1: 0.72, 2: 0.9, 3: 1.12}

N_QUANTILES = 2048
NORMAL_QUANTILES = tuple(NormalDist().inv_cdf((k + 0.5) / N_QUANTILES) for k in range(N_QUANTILES))

FIRST_DAY = 19358  # 2023-01-01, days since 1970-01-01
LAST_DAY = 20088  # 2024-12-31
FIRST_2024 = 19723  # 2024-01-01
