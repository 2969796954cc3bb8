"""The naive reference grouper (tests/naive.py) against the independent oracle.

1. For each of the five shared rulesets, every oracle case and every sample case must
   give exactly the expected (status, mdc, adrg, drg).
2. Hand-computed unit tests of the tricky parts of FORMAT.md on tiny rulesets written
   to ``tmp_path``.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import pytest

try:  # tests/ on sys.path (rootdir-relative "prepend" import, no tests/__init__.py)
    from naive import NaiveRuleset
except ImportError:  # tests/ turned into a package
    from tests.naive import NaiveRuleset


from conftest import SHARED_RULESETS as RULESETS
from conftest import require_shared

OUTPUT_FIELDS = ("status", "mdc", "adrg", "drg")


@functools.cache
def _load_shared_ruleset(folder: str) -> NaiveRuleset:
    return NaiveRuleset.load(folder)


def _read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------------------
# 1. Agreement with the oracle
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["cases", "samples"])
@pytest.mark.parametrize("ruleset", RULESETS)
def test_oracle_agreement(ruleset: str, which: str) -> None:
    shared = require_shared()
    rs = _load_shared_ruleset(str(shared / "rulesets" / ruleset))
    if which == "cases":
        cases = _read_rows(shared / "oracle" / ruleset / "cases.csv")
        expected = _read_rows(shared / "oracle" / ruleset / "expected.csv")
    else:
        cases = _read_rows(shared / "oracle" / "samples.csv")
        expected = _read_rows(shared / "oracle" / ruleset / "samples_expected.csv")
    assert len(cases) == len(expected) > 0

    mismatches = []
    for case, exp in zip(cases, expected, strict=True):
        assert case["Index"] == exp["Index"], "cases and expected are not aligned"
        want = tuple(exp[k] for k in OUTPUT_FIELDS)
        got = rs.group(case)
        if got != want:
            mismatches.append((case, want, got))

    if mismatches:
        lines = [f"{ruleset}/{which}: {len(mismatches)} of {len(cases)} rows differ"]
        for case, want, got in mismatches[:20]:
            inputs = {k: v for k, v in case.items() if k is not None}
            lines.append(f"  {case['Index']}: expected {want}, got {got}; input {inputs}")
        pytest.fail("\n".join(lines))


# ---------------------------------------------------------------------------------------
# 2. Tiny in-memory rulesets
# ---------------------------------------------------------------------------------------


def _write(path: Path, header: list[str], rows: list) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)


def write_ruleset(
    folder: Path,
    *,
    mdcs,
    entries,
    steps,
    rules,
    lists=(),
    ss_valid=(),
    mcc=(),
    cc=(),
    pdx_excl=(),
    dx_map=None,
    px_map=None,
) -> NaiveRuleset:
    """Write the CSV tables of a ruleset and load it.

    mdcs: [mdc]; the rule of each is ``MDC:<mdc>``.
    entries: [(mdc, entry, kind, code, fallback)]; the rule is ``ADRG:<entry>`` or
             ``QY:<mdc>`` for kind QY.
    steps: [(entry, drg)]; the rule is ``DRG:<drg>``.
    rules: {rule_id: [(template, list_id, field, op, value)]}.
    lists: [(list_id, code, tag)].
    """
    folder.mkdir(parents=True, exist_ok=True)
    _write(
        folder / "mdc.csv",
        ["seq", "mdc", "rule_id"],
        [(i + 1, m, f"MDC:{m}") for i, m in enumerate(mdcs)],
    )
    seq_in_mdc: dict[str, int] = {}
    adrg_rows = []
    for mdc, entry, kind, code, fallback in entries:
        seq_in_mdc[mdc] = seq_in_mdc.get(mdc, 0) + 1
        rule_id = f"QY:{mdc}" if kind == "QY" else f"ADRG:{entry}"
        adrg_rows.append((mdc, seq_in_mdc[mdc], entry, kind, code, rule_id, fallback))
    _write(
        folder / "adrg.csv",
        ["mdc", "seq", "entry", "kind", "code", "rule_id", "fallback"],
        adrg_rows,
    )
    seq_in_entry: dict[str, int] = {}
    step_rows = []
    for entry, drg in steps:
        seq_in_entry[entry] = seq_in_entry.get(entry, 0) + 1
        step_rows.append((entry, seq_in_entry[entry], drg, f"DRG:{drg}"))
    _write(folder / "adrg_drg.csv", ["entry", "seq", "drg", "rule_id"], step_rows)
    rule_rows = []
    for rule_id, atoms in rules.items():
        for i, (template, list_id, field, op, value) in enumerate(atoms):
            rule_rows.append((rule_id, i + 1, template, list_id, field, op, value))
    _write(
        folder / "rules.csv",
        ["rule_id", "seq", "template", "list_id", "field", "op", "value"],
        rule_rows,
    )
    _write(folder / "lists.csv", ["list_id", "code", "tag"], list(lists))
    _write(folder / "ss_valid.csv", ["code", "name"], [(c, "") for c in ss_valid])
    _write(folder / "mcc.csv", ["code", "excl_table"], list(mcc))
    _write(folder / "cc.csv", ["code", "excl_table"], list(cc))
    _write(folder / "pdx_excl.csv", ["code", "excl_table"], list(pdx_excl))
    if dx_map is not None:
        _write(folder / "dx_map.csv", ["code", "target"], list(dx_map))
    if px_map is not None:
        _write(folder / "px_map.csv", ["code", "target"], list(px_map))
    return NaiveRuleset.load(folder)


TRUE = [("TRUE", "", "", "", "")]


def one_rule_ruleset(folder: Path, atoms, **tables) -> NaiveRuleset:
    """MDCA (TRUE) -> entry AA1 with the rule under test -> DRG AA11 (TRUE).

    The case groups to AA11 exactly when the rule holds, and to FAIL otherwise."""
    return write_ruleset(
        folder,
        mdcs=["MDCA"],
        entries=[("MDCA", "AA1", "ADRG", "AA1", "")],
        steps=[("AA1", "AA11")],
        rules={"MDC:MDCA": TRUE, "ADRG:AA1": list(atoms), "DRG:AA11": TRUE},
        **tables,
    )


def rec(
    dx="A00", px="", gender="1", age="40", ageDay="", weight="", dept="", los="5", leavingType="1"
) -> dict:
    return {
        "Index": "1",
        "gender": gender,
        "age": age,
        "ageDay": ageDay,
        "weight": weight,
        "dept": dept,
        "inHospitalTime": los,
        "leavingType": leavingType,
        "ICD10_DRGS": dx,
        "ICD9_DRGS": px,
    }


HOLDS = ("SUCCESS", "MDCA", "AA1", "AA11")
NOT_HOLDS = ("FAIL", "0000", "00", "0000")
ERROR = ("ERROR", "", "", "")
CHECK_FAILED = ("CHECK_FAILED", "0000", "00", "0000")
ZD_NOT_MAPPING = ("ZD_NOT_MAPPING", "0000", "00", "0000")
SS_NOT_MAPPING = ("SS_NOT_MAPPING", "0000", "00", "0000")


def test_proc_tags_alternatives(tmp_path):
    # §3 PROC_TAGS: T = {tag(p) : p in px, p in L}; '1+2|1+3+4' = (1 and 2) or (1, 3 and 4)
    rs = one_rule_ruleset(
        tmp_path,
        [("HAS_PROC", "", "", "", ""), ("PROC_TAGS", "JA1.proc_tags", "", "", "1+2|1+3+4")],
        lists=[
            ("JA1.proc_tags", "p1", "1"),
            ("JA1.proc_tags", "p2", "2"),
            ("JA1.proc_tags", "p3", "3"),
            ("JA1.proc_tags", "p4", "4"),
            ("JA1.proc_tags", "p1b", "1"),
        ],
    )
    assert rs.group(rec(px="p1|p2")) == HOLDS
    assert rs.group(rec(px="p2|p1")) == HOLDS  # order does not matter
    assert rs.group(rec(px="x|p4|p3|p1b")) == HOLDS  # any code carrying tag 1
    assert rs.group(rec(px="p1|p3")) == NOT_HOLDS  # 1+3 alone is no alternative
    assert rs.group(rec(px="p2|p3|p4")) == NOT_HOLDS  # tag 1 missing
    assert rs.group(rec(px="p1|p1b")) == NOT_HOLDS
    assert rs.group(rec(px="")) == NOT_HOLDS  # HAS_PROC false


def test_multi_region_counts_distinct_tags_over_set_of_dx(tmp_path):
    # §3 MULTI_REGION: the diagnoses set(dx) (principal included) in L fall into >= n tags
    rs = one_rule_ruleset(
        tmp_path,
        [("MULTI_REGION", "MDCZ.regions", "", ">=", "2")],
        lists=[
            ("MDCZ.regions", "s1", "head"),
            ("MDCZ.regions", "s2", "head"),
            ("MDCZ.regions", "s3", "chest"),
        ],
    )
    assert rs.group(rec(dx="s1|s3")) == HOLDS
    assert rs.group(rec(dx="s3|x|s1")) == HOLDS  # the principal counts too
    assert rs.group(rec(dx="s1|s2")) == NOT_HOLDS  # two codes, one region
    assert rs.group(rec(dx="s1|s1|s1")) == NOT_HOLDS  # duplicates are one code
    assert rs.group(rec(dx="x|s3")) == NOT_HOLDS


def test_has_mcc_exclusion_via_pdx_excl(tmp_path):
    # §3 HAS_MCC: a secondary in mcc.csv not excluded by the principal's pdx_excl row
    tables = dict(mcc=[("m1", "T1"), ("m2", "T2")], cc=[("c1", "T1")], pdx_excl=[("P", "T1")])
    rs = one_rule_ruleset(tmp_path / "mcc", [("HAS_MCC", "", "", "", "")], **tables)
    assert rs.group(rec(dx="P|m1")) == NOT_HOLDS  # excluded: same table T1
    assert rs.group(rec(dx="P|m2")) == HOLDS  # other table
    assert rs.group(rec(dx="P|m1|m2")) == HOLDS
    assert rs.group(rec(dx="Q|m1")) == HOLDS  # Q has no pdx_excl row
    assert rs.group(rec(dx="m1|Q")) == NOT_HOLDS  # only secondaries count
    assert rs.group(rec(dx="P|c1")) == NOT_HOLDS  # a CC is not an MCC
    rs = one_rule_ruleset(tmp_path / "cc", [("HAS_CC", "", "", "", "")], **tables)
    assert rs.group(rec(dx="P|c1")) == NOT_HOLDS
    assert rs.group(rec(dx="Q|c1")) == HOLDS
    rs = one_rule_ruleset(tmp_path / "either", [("HAS_CC_OR_MCC", "", "", "", "")], **tables)
    assert rs.group(rec(dx="P|c1|m1")) == NOT_HOLDS
    assert rs.group(rec(dx="P|c1|m2")) == HOLDS
    assert rs.group(rec(dx="Q|c1")) == HOLDS


def test_cmp_on_text_and_numbers(tmp_path):
    # §3 CMP: on text '==' is false, '!=' is true, ordering ops are an error
    eq = one_rule_ruleset(tmp_path / "eq", [("CMP", "", "gender", "==", "1")])
    ne = one_rule_ruleset(tmp_path / "ne", [("CMP", "", "gender", "!=", "1")])
    lt = one_rule_ruleset(tmp_path / "lt", [("CMP", "", "weight", "<", "1500")])
    assert eq.group(rec(gender="1")) == HOLDS
    assert eq.group(rec(gender="2")) == NOT_HOLDS
    assert eq.group(rec(gender="男")) == NOT_HOLDS  # passes §5, never equals 1
    assert ne.group(rec(gender="男")) == HOLDS
    assert ne.group(rec(gender="2")) == HOLDS
    assert lt.group(rec(weight="1499.5")) == HOLDS  # a float
    assert lt.group(rec(weight="1500")) == NOT_HOLDS
    assert lt.group(rec(weight="-1")) == HOLDS
    assert lt.group(rec(weight="abc")) == ERROR
    assert lt.group(rec(weight="")) == ERROR  # missing value is the text ''
    assert lt.group(rec(weight=" 12")) == ERROR  # whitespace makes it text
    assert lt.group(rec(weight="1e3")) == ERROR  # no dot: not a float literal, text
    assert lt.group(rec(weight="2.e3")) == NOT_HOLDS  # with a dot it is the float 2000.0
    lt_small = one_rule_ruleset(tmp_path / "lt2", [("CMP", "", "weight", "<", "1001")])
    assert lt_small.group(rec(weight="1.e3")) == HOLDS
    assert lt_small.group(rec(weight=".5")) == HOLDS
    rec_missing = rec()
    del rec_missing["weight"]  # a missing key is ''
    assert lt.group(rec_missing) == ERROR


def test_cmp_int_truncates_and_errors(tmp_path):
    # §3 CMP_INT: int(field); a float is truncated towards zero, text must be an int
    rs = one_rule_ruleset(tmp_path, [("CMP_INT", "", "los", "==", "2")])
    assert rs.group(rec(los="2")) == HOLDS
    assert rs.group(rec(los="2.9")) == HOLDS  # truncation
    assert rs.group(rec(los="+2.")) == HOLDS
    assert rs.group(rec(los="3")) == NOT_HOLDS
    assert rs.group(rec(los=" 2 ")) == HOLDS  # text, but Python's int(' 2 ') works
    assert rs.group(rec(los="abc")) == ERROR
    assert rs.group(rec(los="")) == ERROR
    assert rs.group(rec(los="2e0")) == ERROR  # text and not an int literal
    assert rs.group(rec(los="1.0e999")) == ERROR  # inf cannot be converted
    neg = one_rule_ruleset(tmp_path / "neg", [("CMP_INT", "", "los", "==", "0")])
    assert neg.group(rec(los="-0.9")) == HOLDS  # towards zero, not floor
    # CMP on the same value compares the float itself
    cmp = one_rule_ruleset(tmp_path / "cmp", [("CMP", "", "los", "==", "2")])
    assert cmp.group(rec(los="2.9")) == NOT_HOLDS
    assert cmp.group(rec(los="2.0")) == HOLDS


def test_truthy_and_not_none(tmp_path):
    rs = one_rule_ruleset(tmp_path, [("TRUTHY", "", "weight", "", "")])
    assert rs.group(rec(weight="2500")) == HOLDS
    assert rs.group(rec(weight="0")) == NOT_HOLDS
    assert rs.group(rec(weight="0.0")) == NOT_HOLDS
    assert rs.group(rec(weight="")) == NOT_HOLDS
    assert rs.group(rec(weight="abc")) == HOLDS
    nn = one_rule_ruleset(tmp_path / "nn", [("NOT_NONE", "", "ageDay", "", "")])
    assert nn.group(rec(ageDay="")) == HOLDS


def test_false_short_circuits_later_erroring_atoms(tmp_path):
    # §3: the first false atom stops; atoms after FALSE are never evaluated
    bad_cmp = ("CMP", "", "weight", "<", "1500")
    disabled = one_rule_ruleset(tmp_path / "f", [("FALSE", "", "", "", ""), bad_cmp])
    assert disabled.group(rec(weight="abc")) == NOT_HOLDS
    # an earlier false atom protects the same way
    guarded = one_rule_ruleset(
        tmp_path / "g", [("HAS_PROC", "", "", "", ""), ("PPROC_IN", "L", "", "", "")]
    )
    assert guarded.group(rec(px="")) == NOT_HOLDS
    # without the guard, PPROC_IN on an empty px is an error
    unguarded = one_rule_ruleset(tmp_path / "u", [("PPROC_IN", "L", "", "", "")])
    assert unguarded.group(rec(px="")) == ERROR
    # once every earlier atom is true, the erroring atom is reached
    reached = one_rule_ruleset(tmp_path / "r", [("TRUE", "", "", "", ""), bad_cmp])
    assert reached.group(rec(weight="abc")) == ERROR
    # a rule that is never reached cannot error: first match wins at DRG level
    rs = write_ruleset(
        tmp_path / "steps",
        mdcs=["MDCA"],
        entries=[("MDCA", "AA1", "ADRG", "AA1", "")],
        steps=[("AA1", "AA11"), ("AA1", "AA13")],
        rules={"MDC:MDCA": TRUE, "ADRG:AA1": TRUE, "DRG:AA11": TRUE, "DRG:AA13": [bad_cmp]},
    )
    assert rs.group(rec(weight="abc")) == HOLDS


def _fallthrough_ruleset(folder: Path) -> NaiveRuleset:
    """MDCA: AA1 (holds, no step holds, fallback 'AA1' when fallback given),
    AB1 (holds, no step holds, empty fallback), AC1 (holds when px has p1 -> AC11);
    MDCB: BB1 (TRUE -> BB11)."""
    no = [("FALSE", "", "", "", "")]
    has_p1 = [("ANY_PROC_IN", "P1", "", "", "")]
    use_fallback = [("ANY_DX_IN", "FB", "", "", "")]
    return write_ruleset(
        folder,
        mdcs=["MDCA", "MDCB"],
        entries=[
            ("MDCA", "AA1", "ADRG", "AA1", "AA1"),
            ("MDCA", "AB1", "ADRG", "AB1", ""),
            ("MDCA", "AC1", "ADRG", "AC1", ""),
            ("MDCB", "BB1", "ADRG", "BB1", ""),
        ],
        steps=[("AA1", "AA11"), ("AB1", "AB11"), ("AC1", "AC11"), ("BB1", "BB11")],
        rules={
            "MDC:MDCA": TRUE,
            "ADRG:AA1": use_fallback,
            "DRG:AA11": no,
            "ADRG:AB1": TRUE,
            "DRG:AB11": no,
            "ADRG:AC1": has_p1,
            "DRG:AC11": TRUE,
            "MDC:MDCB": [("PDX_IN", "MDCB.mdc_zd", "", "", "")],
            "ADRG:BB1": TRUE,
            "DRG:BB11": TRUE,
        },
        lists=[("P1", "p1", ""), ("FB", "fb", ""), ("MDCB.mdc_zd", "b", "")],
    )


def test_fallback_and_fall_through(tmp_path):
    # §4: fallback returns the bare ADRG code; an empty fallback goes on with the next
    # entry; an MDC where no entry returns a code passes the case to the next MDC
    rs = _fallthrough_ruleset(tmp_path)
    assert rs.group(rec(dx="fb")) == ("SUCCESS", "MDCA", "AA1", "AA1")
    assert rs.group(rec(dx="x", px="p1")) == ("SUCCESS", "MDCA", "AC1", "AC11")
    assert rs.group(rec(dx="b")) == ("SUCCESS", "MDCB", "BB1", "BB11")
    assert rs.group(rec(dx="x")) == ("FAIL", "0000", "00", "0000")
    path = rs.explain_path(rec(dx="b"))
    assert path == [
        ("mdc", "MDCA", True),
        ("entry", "AA1", False),
        ("entry", "AB1", True),
        ("drg", "AB11", False),
        ("entry", "AC1", False),
        ("mdc", "MDCB", True),
        ("entry", "BB1", True),
        ("drg", "BB11", True),
        ("result", "BB11", True),
    ]


def test_qy_and_result_code_mapping(tmp_path):
    # §4: QY entry returns its code; 'X00' -> FAIL; mdc is taken from the code's letter
    rs = write_ruleset(
        tmp_path,
        mdcs=["MDCA"],
        entries=[("MDCA", "AQY", "QY", "AQY", ""), ("MDCA", "AA1", "ADRG", "AA1", "")],
        steps=[("AA1", "C00"), ("AA1", "ZZ15")],
        rules={
            "MDC:MDCA": TRUE,
            "QY:MDCA": [("ANY_PROC_IN", "SS_VALID", "", "", "")],
            "ADRG:AA1": TRUE,
            "DRG:C00": [("HAS_PROC", "", "", "", "")],
            "DRG:ZZ15": TRUE,
        },
        ss_valid=["or1"],
    )
    assert rs.group(rec(px="or1")) == ("QY", "MDCA", "QY", "AQY")
    assert rs.group(rec(px="x1")) == ("FAIL", "MDCC", "00", "0000")
    assert rs.group(rec(px="")) == ("SUCCESS", "MDCZ", "ZZ1", "ZZ15")


def test_input_checks(tmp_path):
    # §5: gender 1/2/男/女, int(age), and int(ageDay) when int(age) == 0
    rs = one_rule_ruleset(tmp_path, TRUE)
    assert rs.group(rec(gender="女")) == HOLDS
    assert rs.group(rec(gender="")) == CHECK_FAILED
    assert rs.group(rec(gender="M")) == CHECK_FAILED
    assert rs.group(rec(gender="3")) == CHECK_FAILED
    assert rs.group(rec(age="")) == CHECK_FAILED
    assert rs.group(rec(age="abc")) == CHECK_FAILED
    assert rs.group(rec(age="-1")) == HOLDS  # not validated beyond int()
    assert rs.group(rec(age=" 7")) == HOLDS  # Python's int(' 7') works
    assert rs.group(rec(age="0", ageDay="")) == CHECK_FAILED
    assert rs.group(rec(age="0", ageDay="12.5")) == HOLDS
    assert rs.group(rec(age="0.5", ageDay="x")) == CHECK_FAILED  # int(0.5) == 0
    assert rs.group(rec(age="1", ageDay="x")) == HOLDS
    assert rs.group(rec(dx="")) == HOLDS  # an empty dx field is not rejected
    # Python values: ints/floats are numbers, None is ''
    assert rs.group({"gender": 2, "age": 0, "ageDay": 3.0, "ICD10_DRGS": "A"}) == HOLDS
    assert rs.group({"gender": None, "age": 30}) == CHECK_FAILED
    assert rs.group({"gender": 1, "age": 0, "ageDay": None}) == CHECK_FAILED


def test_empty_dx_field_outside_translation(tmp_path):
    # §2: an empty field gives dx = [''], which matches nothing
    rs = one_rule_ruleset(tmp_path, [("PDX_IN", "L", "", "", "")], lists=[("L", "A00", "")])
    assert rs.group(rec(dx="")) == NOT_HOLDS
    assert rs.group(rec(dx="A00")) == HOLDS


def _translation_ruleset(folder: Path, dx_map, px_map=(("p", "p"),)) -> NaiveRuleset:
    """AA1 holds when the principal is in PD and some secondary is in SD."""
    return one_rule_ruleset(
        folder,
        [("PDX_IN", "PD", "", "", ""), ("SDX_IN", "SD", "", "", "")],
        lists=[("PD", "C", ""), ("SD", "B", "")],
        dx_map=list(dx_map),
        px_map=list(px_map),
    )


def test_translation_first_position_rule(tmp_path):
    # §6: with x = L[i] read at that moment, the FIRST position holding x is rewritten.
    # L = [A, B], A->B, B->C: i=0 gives [B, B]; i=1 reads B and rewrites position 0: [C, B]
    rs = _translation_ruleset(tmp_path, [("A", "B"), ("B", "C"), ("C", "C")])
    assert rs.group(rec(dx="A|B"), translate=True) == HOLDS
    assert ("translate_dx", "C|B", True) in rs.explain_path(rec(dx="A|B"), translate=True)
    # without translation the codes are used as they are
    assert rs.group(rec(dx="A|B")) == NOT_HOLDS


def test_translation_chains_not_followed(tmp_path):
    # §6: A->B->C is not followed transitively: A becomes B, not C
    rs = _translation_ruleset(tmp_path, [("A", "B"), ("B", "C"), ("C", "C"), ("Y", "C")])
    assert ("translate_dx", "B", True) in rs.explain_path(rec(dx="A"), translate=True)
    assert rs.group(rec(dx="Y|A"), translate=True) == HOLDS  # [C, B]: A -> B only
    assert rs.group(rec(dx="A|Y"), translate=True) == NOT_HOLDS  # [B, C]


def test_translation_dash_target_and_unmapped(tmp_path):
    rs = _translation_ruleset(
        tmp_path, [("C", "C"), ("B", "B"), ("D", "-")], px_map=[("p", "p"), ("q", "-"), ("r", "r2")]
    )
    # '-' on a secondary: dropped
    assert rs.group(rec(dx="C|D|B"), translate=True) == HOLDS
    # '-' on the principal: unmapped
    assert rs.group(rec(dx="D|C|B"), translate=True) == ZD_NOT_MAPPING
    # a code without a row: unmapped
    assert rs.group(rec(dx="C|B|nope"), translate=True) == ZD_NOT_MAPPING
    # procedures: empty field is px = []; a code without a row gives SS_NOT_MAPPING
    assert rs.group(rec(dx="C|B", px=""), translate=True) == HOLDS
    assert rs.group(rec(dx="C|B", px="p|nope"), translate=True) == SS_NOT_MAPPING
    assert rs.group(rec(dx="C|B", px="p|q"), translate=True) == HOLDS
    assert rs.group(rec(dx="C|B", px="q|p"), translate=True) == SS_NOT_MAPPING
    # diagnoses are translated first
    assert rs.group(rec(dx="nope", px="nope"), translate=True) == ZD_NOT_MAPPING
    # translation runs before the §5 checks
    assert rs.group(rec(dx="nope", gender=""), translate=True) == ZD_NOT_MAPPING
    assert rs.group(rec(dx="C|B", gender=""), translate=True) == CHECK_FAILED
    # translated procedures are what the rules see
    hp = one_rule_ruleset(
        tmp_path / "hp",
        [("PPROC_IN", "PP", "", "", "")],
        lists=[("PP", "r2", "")],
        dx_map=[("C", "C")],
        px_map=[("r", "r2")],
    )
    assert hp.group(rec(dx="C", px="r"), translate=True) == HOLDS
    assert hp.group(rec(dx="C", px="r")) == NOT_HOLDS


def test_translation_empty_dx(tmp_path):
    # §6 splits the raw field like §2 (an empty field is L = ['']). '' normally has no
    # row in dx_map, so an empty diagnosis field is unmapped ...
    rs = _translation_ruleset(tmp_path / "plain", [("C", "C"), ("B", "B")])
    assert rs.group(rec(dx=""), translate=True) == ZD_NOT_MAPPING
    # ... and "an empty dx then fails the check with CHECK_FAILED" when nothing is left
    # after removing '' and '-': here '' has a row of its own, or the code maps to ''.
    rs = _translation_ruleset(tmp_path / "empty_row", [("", ""), ("C", "C")])
    assert rs.group(rec(dx=""), translate=True) == CHECK_FAILED
    assert rs.group(rec(dx="C"), translate=True) == NOT_HOLDS  # no secondary, but groups
    rs = _translation_ruleset(tmp_path / "to_empty", [("E", ""), ("C", "C")])
    assert rs.group(rec(dx="E"), translate=True) == CHECK_FAILED
    assert rs.group(rec(dx="E|E"), translate=True) == CHECK_FAILED


def test_translation_needs_map_files(tmp_path):
    rs = one_rule_ruleset(tmp_path, TRUE)  # no dx_map.csv / px_map.csv
    assert rs.group(rec()) == HOLDS
    with pytest.raises(FileNotFoundError, match="dx_map"):
        rs.group(rec(), translate=True)
