"""Charlson comorbidity index (CCI) from secondary diagnoses, for the builder's CCI sub-types
when the history has no ``cci`` column.

The conditions and weights are Charlson's, with the ICD-10 coding of Quan et al. (Med Care
2005;43:1130–9). A condition counts once; when both the mild and the moderate/severe form of
liver disease, diabetes without and with complications, or any malignancy and a metastatic
solid tumour are present, only the heavier one counts. Codes match by prefix after removing
dots (``I21`` matches ``I21.0x001``); only secondary diagnoses (positions 2..n) count.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CONDITIONS", "cci_of_codes", "cci_per_case"]


def _range(letter: str, lo: int, hi: int) -> tuple[str, ...]:
    return tuple(f"{letter}{i:02d}" for i in range(lo, hi + 1))


def _subs(stem: str, digits: str) -> tuple[str, ...]:
    return tuple(stem + d for d in digits)


_DIAB_PLAIN = tuple(f"E1{k}{d}" for k in "01234" for d in "01689")
_DIAB_COMPL = tuple(f"E1{k}{d}" for k in "01234" for d in "23457")

#: (name, weight, code prefixes without dots)
CONDITIONS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("myocardial_infarction", 1, ("I21", "I22", "I252")),
    (
        "heart_failure",
        1,
        (
            "I099",
            "I110",
            "I130",
            "I132",
            "I255",
            "I420",
            "I425",
            "I426",
            "I427",
            "I428",
            "I429",
            "I43",
            "I50",
            "P290",
        ),
    ),
    (
        "peripheral_vascular",
        1,
        (
            "I70",
            "I71",
            "I731",
            "I738",
            "I739",
            "I771",
            "I790",
            "I792",
            "K551",
            "K558",
            "K559",
            "Z958",
            "Z959",
        ),
    ),
    ("cerebrovascular", 1, ("G45", "G46", "H340", *_range("I", 60, 69))),
    ("dementia", 1, ("F00", "F01", "F02", "F03", "F051", "G30", "G311")),
    (
        "chronic_pulmonary",
        1,
        ("I278", "I279", *_range("J", 40, 47), *_range("J", 60, 67), "J684", "J701", "J703"),
    ),
    ("rheumatic", 1, ("M05", "M06", "M315", "M32", "M33", "M34", "M351", "M353", "M360")),
    ("peptic_ulcer", 1, ("K25", "K26", "K27", "K28")),
    (
        "mild_liver",
        1,
        (
            "B18",
            "K700",
            "K701",
            "K702",
            "K703",
            "K709",
            "K713",
            "K714",
            "K715",
            "K717",
            "K73",
            "K74",
            "K760",
            "K762",
            "K763",
            "K764",
            "K768",
            "K769",
            "Z944",
        ),
    ),
    ("diabetes", 1, _DIAB_PLAIN),
    ("diabetes_complicated", 2, _DIAB_COMPL),
    ("hemiplegia", 2, ("G041", "G114", "G801", "G802", "G81", "G82", *_subs("G83", "012349"))),
    (
        "renal",
        2,
        (
            "I120",
            "I131",
            *_subs("N03", "234567"),
            *_subs("N05", "234567"),
            "N18",
            "N19",
            "N250",
            "Z490",
            "Z491",
            "Z492",
            "Z940",
            "Z992",
        ),
    ),
    (
        "malignancy",
        2,
        (
            *_range("C", 0, 26),
            *_range("C", 30, 34),
            *_range("C", 37, 41),
            "C43",
            *_range("C", 45, 58),
            *_range("C", 60, 76),
            *_range("C", 81, 85),
            "C88",
            *_range("C", 90, 97),
        ),
    ),
    (
        "severe_liver",
        3,
        ("I850", "I859", "I864", "I982", "K704", "K711", "K721", "K729", "K765", "K766", "K767"),
    ),
    ("metastatic_tumour", 6, ("C77", "C78", "C79", "C80")),
    ("aids", 6, ("B20", "B21", "B22", "B24")),
)
_BIT = {name: 1 << i for i, (name, _w, _p) in enumerate(CONDITIONS)}
#: (lighter, heavier): the lighter does not count when the heavier is present
HIERARCHY = (
    ("mild_liver", "severe_liver"),
    ("diabetes", "diabetes_complicated"),
    ("malignancy", "metastatic_tumour"),
)


def cci_of_codes(codes: list[str]) -> np.ndarray:
    """Condition bit mask of each (normalised) code."""
    out = np.zeros(len(codes), np.int64)
    for i, code in enumerate(codes):
        plain = code.replace(".", "").strip().upper()
        for name, _w, prefixes in CONDITIONS:
            if plain.startswith(prefixes):
                out[i] |= _BIT[name]
    return out


def cci_per_case(offsets: np.ndarray, ids: np.ndarray, codes: list[str]) -> np.ndarray:
    """CCI of each case from its diagnoses (offsets/ids as read; position 0 = principal)."""
    n = len(offsets) - 1
    mask_of_code = cci_of_codes(codes)
    lengths = np.diff(offsets)
    nonempty = lengths > 0
    values = mask_of_code[ids] if len(ids) else np.zeros(0, np.int64)
    values[offsets[:-1][nonempty]] = 0  # the principal diagnosis does not count
    mask = np.zeros(n, np.int64)
    if nonempty.any():
        # lists are contiguous: each non-empty list runs from its start to the next one's
        mask[nonempty] = np.bitwise_or.reduceat(values, offsets[:-1][nonempty])
    for light, heavy in HIERARCHY:
        mask = np.where(mask & _BIT[heavy], mask & ~_BIT[light], mask)
    score = np.zeros(n, np.int64)
    for name, weight, _p in CONDITIONS:
        score += weight * ((mask & _BIT[name]) != 0)
    return score
