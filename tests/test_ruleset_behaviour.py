"""Hand-made tiny rulesets for what the later regional rulesets added to the format.

Each test writes a ruleset of a few rows, groups hand-made cases with drgkit and with the naive
reference (tests/naive.py), and checks both against the expectation derived by hand from
FORMAT.md: the templates ``SPROC_IN``, ``PDX_NOT_IN``, ``PPROC_NOT_IN``, ``TEXT_IN``, ``RAISE``,
the field ``icuHours``, lists with no rows, and the ``meta.csv`` keys ``text_fields``,
``check_gender``, ``check_newborn_weight``, ``check_failed_codes``,
``retry_secondary_procedures``, ``fail_drg`` and ``fail_mdc_drg``.
"""

from __future__ import annotations

import contextlib
import csv
import warnings
from pathlib import Path

import pyarrow as pa
import pytest
from test_naive import TRUE, one_rule_ruleset, rec, write_ruleset

import drgkit
from drgkit.errors import RulesetError
from drgkit.grouping._status import REASONS
from drgkit.ruleset._tables import read_tables

# fast with and without numba: CI also runs these with NUMBA_DISABLE_JIT=1 (pytest -m kernel)
pytestmark = pytest.mark.kernel

HOLDS = ("SUCCESS", "MDCA", "AA1", "AA11")
FAILS = ("FAIL", "0000", "00", "0000")
CHECK = ("CHECK_FAILED", "0000", "00", "0000")
ERROR = ("ERROR", "", "", "")


def _meta(folder: Path, **keys: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "meta.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["key", "value"])
        w.writerow(["format_version", "1"])
        w.writerow(["ruleset", folder.name])
        for key, value in keys.items():
            w.writerow([key, value])


def one_rule(folder: Path, atoms, meta: dict[str, str] | None = None, **tables):
    """MDCA -> AA1 (the rule under test) -> AA11: holds or FAIL; a ``meta.csv`` with ``meta``."""
    _meta(folder, **(meta or {}))
    return one_rule_ruleset(folder, atoms, **tables)


def _drgkit(folder: Path, cases: list[dict], **options) -> list[dict]:
    cases = [{**c, "Index": str(k)} for k, c in enumerate(cases)]
    columns = list(dict.fromkeys(k for c in cases for k in c))
    table = pa.table({k: pa.array([c.get(k) for c in cases], pa.string()) for k in columns})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return drgkit.group(table, folder, **options).to_pylist()


def _as_reference(row: dict) -> tuple[str, str, str, str]:
    """A drgkit row in the reference's terms (OpenDRG status; no codes on an error)."""
    status = REASONS[row["reason"]].opendrg if row["reason"] else "SUCCESS"
    if status == "ERROR":
        return ERROR
    return (status, row["mdc"], row["adrg"], row["drg"])


def check(folder: Path, naive, cases: list[dict], expected: list[tuple]) -> list[dict]:
    """drgkit and the naive reference both give ``expected`` for ``cases``; drgkit's rows."""
    rows = _drgkit(folder, cases)
    for case, row, want in zip(cases, rows, expected, strict=True):
        assert naive.group(case) == want, (case, "naive")
        assert _as_reference(row) == want, (case, row)
    return rows


# --------------------------------------------------------------------------- templates


def test_sproc_in_reads_secondary_procedures_only(tmp_path: Path) -> None:
    naive = one_rule(
        tmp_path / "rs",
        [("HAS_PROC", "", "", "", ""), ("SPROC_IN", "AA1.ss", "", "", "")],
        lists=[("AA1.ss", "P2", "")],
    )
    cases = [rec(px="P2"), rec(px="P1|P2"), rec(px="P2|P1"), rec(px="")]
    check(tmp_path / "rs", naive, cases, [FAILS, HOLDS, FAILS, FAILS])


def test_pdx_not_in(tmp_path: Path) -> None:
    naive = one_rule(
        tmp_path / "rs", [("PDX_NOT_IN", "AA1.zd", "", "", "")], lists=[("AA1.zd", "A00", "")]
    )
    # an empty diagnosis field is one empty principal, which is in no list
    cases = [rec(dx="A00"), rec(dx="B00|A00"), rec(dx="")]
    check(tmp_path / "rs", naive, cases, [FAILS, HOLDS, HOLDS])


def test_pproc_not_in_is_never_an_error(tmp_path: Path) -> None:
    naive = one_rule(
        tmp_path / "rs", [("PPROC_NOT_IN", "AA1.ss", "", "", "")], lists=[("AA1.ss", "P1", "")]
    )
    cases = [rec(px=""), rec(px="P1"), rec(px="P2|P1")]
    check(tmp_path / "rs", naive, cases, [HOLDS, FAILS, HOLDS])


def test_text_in_matches_texts_only(tmp_path: Path) -> None:
    atoms = [("TEXT_IN", "", "leavingType", "in", "2|5")]
    naive = one_rule(tmp_path / "num", atoms)
    # without text_fields, '2' is the number 2: never one of the texts
    cases = [rec(leavingType="2"), rec(leavingType="X"), rec(leavingType="")]
    check(tmp_path / "num", naive, cases, [FAILS, FAILS, FAILS])
    naive = one_rule(tmp_path / "text", atoms, {"text_fields": "gender dept leavingType"})
    cases = [rec(leavingType=v) for v in ("2", "5", "2.0", " 2", "1", "")]
    check(tmp_path / "text", naive, cases, [HOLDS, HOLDS, FAILS, FAILS, FAILS, FAILS])


def test_cmp_str_a_number_never_equals_a_text(tmp_path: Path) -> None:
    atoms = [("CMP_STR", "", "dept", "==", "1")]
    naive = one_rule(tmp_path / "num", atoms)
    check(tmp_path / "num", naive, [rec(dept="1"), rec(dept="01")], [FAILS, FAILS])
    naive = one_rule(tmp_path / "text", atoms, {"text_fields": "dept"})
    check(tmp_path / "text", naive, [rec(dept="1"), rec(dept="01")], [HOLDS, FAILS])
    naive = one_rule(tmp_path / "icu", [("CMP_STR", "", "dept", "==", "ICU")])
    check(tmp_path / "icu", naive, [rec(dept="ICU"), rec(dept="icu")], [HOLDS, FAILS])


def test_raise_is_an_error_only_when_reached(tmp_path: Path) -> None:
    naive = one_rule(
        tmp_path / "rs",
        [("PDX_IN", "AA1.zd", "", "", ""), ("RAISE", "", "", "", "NameError: IB1X")],
        lists=[("AA1.zd", "A00", "")],
    )
    rows = check(tmp_path / "rs", naive, [rec(dx="A00"), rec(dx="B00")], [ERROR, FAILS])
    assert rows[0]["reason"] == "rule_cannot_be_evaluated"
    assert "ADRG:AA1" in rows[0]["detail"] and "NameError: IB1X" in rows[0]["detail"]
    trail = drgkit.explain(rec(dx="A00"), tmp_path / "rs").render()
    assert "cannot be evaluated: NameError: IB1X (error)" in trail


def test_icu_hours_field(tmp_path: Path) -> None:
    naive = one_rule(tmp_path / "rs", [("CMP", "", "icuHours", ">", "120")])

    def icu(value):
        case = rec()
        if value is not None:
            case["icuHours"] = value
        return case

    cases = [icu("121"), icu("120"), icu("120.5"), icu("abc"), icu("")]
    rows = check(tmp_path / "rs", naive, cases, [HOLDS, FAILS, HOLDS, ERROR, ERROR])
    assert rows[3]["reason"] == "text_compared" and "icu_hours 'abc'" in rows[3]["detail"]
    # no icuHours column at all: the text '' for every case (and a warning naming the column)
    with pytest.warns(drgkit.DataWarning, match="icu_hours"):
        drgkit.group(pa.Table.from_pylist([rec()]), tmp_path / "rs")
    assert naive.group(rec()) == ERROR


def test_icu_hours_read_from_csv_and_checked_for_plausibility(tmp_path: Path) -> None:
    one_rule(tmp_path / "rs", [("CMP", "", "icuHours", ">=", "0")])
    path = tmp_path / "cases.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([*rec(), "icuHours"])
        for k, hours in enumerate(["5", "-3", "900000"]):
            w.writerow([*{**rec(), "Index": str(k)}.values(), hours])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fmt = drgkit.group(path, tmp_path / "rs").to_pylist()
        strict = drgkit.group(path, tmp_path / "rs", value_checks="strict").to_pylist()
    # format checks group -3 as the format says (it fails >= 0), with a note
    assert [r["drg"] for r in fmt] == ["AA11", "0000", "AA11"]
    assert "icu_hours '-3' is not plausible" in fmt[1]["detail"]
    assert [r["reason"] for r in strict] == [
        None,
        "icu_hours_implausible",
        "icu_hours_implausible",
    ]


def test_a_list_with_no_rows_is_empty(tmp_path: Path) -> None:
    naive = one_rule(tmp_path / "rs", [("PDX_IN", "AA1.nothing", "", "", "")])
    check(tmp_path / "rs", naive, [rec(dx="A00"), rec(dx="")], [FAILS, FAILS])
    warnings_ = read_tables(tmp_path / "rs").warnings
    assert any("AA1.nothing" in w and "empty" in w for w in warnings_), warnings_


@pytest.mark.parametrize(
    ("atoms", "lists", "case", "text"),
    [
        (
            [("SPROC_IN", "AA1.ss", "", "", "")],
            [("AA1.ss", "P2", "")],
            rec(px="P1|P2"),
            "secondary procedure P2 is in AA1.ss",
        ),
        (
            [("SPROC_IN", "AA1.ss", "", "", "")],
            [("AA1.ss", "P2", "")],
            rec(px="P2"),
            "no secondary procedure is in AA1.ss",
        ),
        (
            [("PDX_NOT_IN", "AA1.zd", "", "", "")],
            [("AA1.zd", "A00", "")],
            rec(dx="A00"),
            "principal diagnosis A00 is in AA1.zd",
        ),
        (
            [("PPROC_NOT_IN", "AA1.ss", "", "", "")],
            [("AA1.ss", "P1", "")],
            rec(px=""),
            "there is no principal procedure, so none is in AA1.ss",
        ),
        (
            [("PPROC_NOT_IN", "AA1.ss", "", "", "")],
            [("AA1.ss", "P1", "")],
            rec(px="P2"),
            "principal procedure P2 is not in AA1.ss",
        ),
        (
            [("TEXT_IN", "", "leavingType", "in", "2|5")],
            [],
            rec(leavingType="2"),
            "is not one of the texts '2', '5' (it is a number, which never matches a text)",
        ),
    ],
)
def test_the_trail_says_what_each_new_template_found(
    tmp_path: Path, atoms, lists, case, text
) -> None:
    one_rule(tmp_path / "rs", atoms, lists=lists)
    trail = drgkit.explain(case, tmp_path / "rs")
    adrg = [t for t in trail.trail if t.level == "adrg"]
    assert adrg and adrg[0].atoms[-1].text.endswith(text), adrg[0].atoms[-1].text
    assert text in trail.render()


# --------------------------------------------------------------------------- meta keys


def test_check_gender_text(tmp_path: Path) -> None:
    meta = {"text_fields": "gender dept leavingType", "check_gender": "text"}
    naive = one_rule(tmp_path / "text", TRUE, meta)
    sexes = ["1", "2", "男", "1.0", " 1", "", "3"]
    cases = [rec(gender=g) for g in sexes]
    rows = check(tmp_path / "text", naive, cases, [HOLDS, HOLDS, CHECK, CHECK, CHECK, CHECK, CHECK])
    assert [r["reason"] for r in rows[2:]] == ["sex_not_text_1_2"] * 3 + [
        "sex_missing",
        "sex_not_text_1_2",
    ]
    assert "is not the text 1 or 2" in rows[2]["detail"]
    # the original check: numbers 1/2 and the texts 1/2/男/女
    naive = one_rule(tmp_path / "orig", TRUE)
    check(tmp_path / "orig", naive, cases, [HOLDS, HOLDS, HOLDS, HOLDS, CHECK, CHECK, CHECK])
    # a typed column: the number 1 is the text '1' in a text field
    table = pa.Table.from_pylist([{**rec(), "gender": 1}, {**rec(), "gender": 3}])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = drgkit.group(table, tmp_path / "text").column("status").to_pylist()
    assert got == ["ok", "invalid"]


def test_check_newborn_weight_required(tmp_path: Path) -> None:
    naive = one_rule(tmp_path / "req", TRUE, {"check_newborn_weight": "required"})

    def newborn(days: str, weight: str, age: str = "0") -> dict:
        return rec(age=age, ageDay=days, weight=weight)

    cases = [
        newborn("28", ""),  # a newborn without a birth weight
        newborn("0", ""),
        newborn("29", ""),  # older than 28 days
        newborn("28", "3000"),
        newborn("28", "", age="1"),  # not age 0
        newborn("", ""),  # check 3 fails first
    ]
    want = [CHECK, CHECK, HOLDS, HOLDS, HOLDS, CHECK]
    rows = check(tmp_path / "req", naive, cases, want)
    assert [r["reason"] for r in rows] == [
        "birth_weight_missing",
        "birth_weight_missing",
        None,
        None,
        None,
        "age_days_missing",
    ]
    naive = one_rule(tmp_path / "orig", TRUE)
    check(tmp_path / "orig", naive, cases, [HOLDS] * 5 + [CHECK])


def test_check_failed_codes_and_fail_drg(tmp_path: Path) -> None:
    meta = {"check_failed_codes": "//", "fail_drg": "0000A"}
    naive = one_rule(
        tmp_path / "rs", [("PDX_IN", "AA1.zd", "", "", "")], meta, lists=[("AA1.zd", "A00", "")]
    )
    cases = [rec(dx="A00"), rec(dx="B00"), rec(gender="")]
    want = [HOLDS, ("FAIL", "0000", "00", "0000A"), ("CHECK_FAILED", "", "", "")]
    rows = check(tmp_path / "rs", naive, cases, want)
    # the group column stays empty for cases without a group, whatever their drg text
    assert [r["group"] for r in rows] == ["AA11", None, None]
    assert [r["status"] for r in rows] == ["ok", "ungroupable", "invalid"]


def test_fail_mdc_drg(tmp_path: Path) -> None:
    """An MDC-level result code (``A00``, here an entry's fallback) reports ``fail_mdc_drg``."""
    folder = tmp_path / "rs"
    _meta(folder, fail_drg="0000A", fail_mdc_drg="0000B")
    naive = write_ruleset(
        folder,
        mdcs=["MDCA"],
        entries=[("MDCA", "AA1", "ADRG", "AA1", "A00")],
        steps=[("AA1", "AA11")],
        rules={"MDC:MDCA": TRUE, "ADRG:AA1": TRUE, "DRG:AA11": [("FALSE", "", "", "", "")]},
    )
    check(folder, naive, [rec()], [("FAIL", "MDCA", "00", "0000B")])


def test_retry_secondary_procedures(tmp_path: Path) -> None:
    atoms = [("HAS_PROC", "", "", "", ""), ("PPROC_IN", "AA1.ss", "", "", "")]
    lists = [("AA1.ss", "P2", ""), ("AA1.ss", "P4", "")]
    cases = [
        rec(px="P1|P3|P2"),  # fails as given; [P3] fails; [P2] groups
        rec(px="P2"),  # groups as given
        rec(px="P1|P3"),  # every run fails
        rec(px="P1"),  # one procedure: no retry
    ]
    naive = one_rule(tmp_path / "each", atoms, {"retry_secondary_procedures": "each"}, lists=lists)
    check(tmp_path / "each", naive, cases, [HOLDS, HOLDS, FAILS, FAILS])
    naive = one_rule(tmp_path / "once", atoms, lists=lists)
    check(tmp_path / "once", naive, cases, [FAILS, HOLDS, FAILS, FAILS])
    # the trail shows each retry, and names the procedure the rule looked at
    e = drgkit.explain(cases[0], tmp_path / "each")
    assert [(t.level, t.target) for t in e.trail if t.level == "retry"] == [
        ("retry", "P3"),
        ("retry", "P2"),
    ]
    assert "principal procedure P2 is in AA1.ss" in e.trail[-2].why
    assert "grouping again with secondary procedure P2 alone" in e.render()


def test_retry_error_in_a_later_run_is_an_error(tmp_path: Path) -> None:
    """An error in any run makes the case ERROR (FORMAT §4)."""
    atoms = [("PPROC_IN", "AA1.ss", "", "", ""), ("CMP", "", "los", "<", "3")]
    naive = one_rule(
        tmp_path / "rs",
        atoms,
        {"retry_secondary_procedures": "each"},
        lists=[("AA1.ss", "P2", "")],
    )
    check(
        tmp_path / "rs",
        naive,
        [rec(px="P1|P2", los="x"), rec(px="P1|P2", los="2")],
        [ERROR, HOLDS],
    )


def test_versions_with_different_behaviour_each_check_and_report_their_own(
    tmp_path: Path,
) -> None:
    """A region whose 2023 version reads sex as text and reports failures as 0000A: each case
    is checked and reported as the version in force on its discharge date does."""
    atoms = [("PDX_IN", "AA1.zd", "", "", "")]
    lists = [("AA1.zd", "A00", "")]
    one_rule(
        tmp_path / "r" / "v2022",
        atoms,
        {"region": "r", "version": "2022", "effective_from": "2022-01-01"},
        lists=lists,
    )
    one_rule(
        tmp_path / "r" / "v2023",
        atoms,
        {
            "region": "r",
            "version": "2023",
            "effective_from": "2023-01-01",
            "text_fields": "gender",
            "check_gender": "text",
            "fail_drg": "0000A",
            "check_failed_codes": "//",
        },
        lists=lists,
    )
    cases = []
    for day in ("2022-06-01", "2023-06-01"):
        for dx, sex in (("A00", "男"), ("B00", "1"), ("A00", "1")):
            cases.append({**rec(dx=dx, gender=sex), "discharge_date": day})
    rows = _drgkit(tmp_path / "r", cases)
    got = [(r["ruleset"], r["status"], r["mdc"], r["adrg"], r["drg"]) for r in rows]
    assert got == [
        ("v2022", "ok", "MDCA", "AA1", "AA11"),
        ("v2022", "ungroupable", "0000", "00", "0000"),
        ("v2022", "ok", "MDCA", "AA1", "AA11"),
        ("v2023", "invalid", "", "", ""),
        ("v2023", "ungroupable", "0000", "00", "0000A"),
        ("v2023", "ok", "MDCA", "AA1", "AA11"),
    ]
    assert rows[3]["reason"] == "sex_not_text_1_2"


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("check_gender", "number", "check_gender must be text"),
        ("check_newborn_weight", "yes", "check_newborn_weight must be required"),
        ("retry_secondary_procedures", "all", "retry_secondary_procedures must be each"),
        ("text_fields", "gender sex", "text_fields must name fields"),
        ("check_failed_codes", "0000/00", "check_failed_codes must be mdc/adrg/drg"),
        ("fail_drg", "", "fail_drg must not be empty"),
    ],
)
def test_bad_behaviour_keys_name_the_meta_row(
    tmp_path: Path, key: str, value: str, message: str
) -> None:
    with contextlib.suppress(ValueError):  # the naive reference may refuse it first
        one_rule(tmp_path / "rs", TRUE, {key: value})
    with pytest.raises(RulesetError, match=message) as info:
        read_tables(tmp_path / "rs")
    text = str(info.value)
    assert "meta.csv" in text and "row 4" in text


def test_text_in_needs_op_in(tmp_path: Path) -> None:
    one_rule(tmp_path / "rs", [("TEXT_IN", "", "dept", "==", "a|b")])
    with pytest.raises(RulesetError, match="TEXT_IN takes op in") as info:
        read_tables(tmp_path / "rs")
    assert "rules.csv" in str(info.value) and "column 'op'" in str(info.value)
