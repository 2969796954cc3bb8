"""The grouper against independent expectations.

1. The oracle: for every shared ruleset, all 10,000 conformance cases and the 30 samples
   agree 100% with the reference grouper's expected file.
2. The slow reference (tests/naive.py, written from FORMAT.md alone) on Hypothesis-generated
   cases: drgkit's kernels must give the same status and group for every case, in normal and
   in translation mode, with text and with typed input columns.
3. Hand-computed cases on the shipped demo rulesets.
"""

from __future__ import annotations

import csv
import functools
import random
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import DEMO, SHARED_RULESETS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from naive import NaiveRuleset

import drgkit
from drgkit.grouping._status import REASONS

STATUS_MAP = {
    "SUCCESS": "ok",
    "FAIL": "ungroupable",
    "QY": "ambiguous",
    "CHECK_FAILED": "invalid",
    "ERROR": "invalid",
    "ZD_NOT_MAPPING": "invalid",
    "SS_NOT_MAPPING": "invalid",
    "IMPLAUSIBLE": "invalid",
}
OPENDRG_COLUMNS = [
    "Index",
    "gender",
    "age",
    "ageDay",
    "weight",
    "dept",
    "inHospitalTime",
    "leavingType",
    "ICD10_DRGS",
    "ICD9_DRGS",
]


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def assert_agrees(result: pa.Table, expected: list[dict[str, str]]) -> None:
    """Same rows, same order, same status; same mdc/adrg/drg for ok and ambiguous."""
    got = result.to_pydict()
    assert len(got["case_id"]) == len(expected)
    bad = []
    for i, exp in enumerate(expected):
        status = STATUS_MAP[exp["status"]]
        row = (got["case_id"][i], got["status"][i], got["mdc"][i], got["adrg"][i], got["drg"][i])
        want = (exp["Index"], status, exp["mdc"], exp["adrg"], exp["drg"])
        if status not in ("ok", "ambiguous"):
            row, want = row[:2], want[:2]
        if row != want:
            bad.append((row, want, got["reason"][i], got["detail"][i]))
    assert not bad, f"{len(bad)} disagreements, first: {bad[:5]}"


# --------------------------------------------------------------------------- 1. oracle


@pytest.mark.parametrize("name", SHARED_RULESETS)
@pytest.mark.parametrize("which", ["cases", "samples"])
def test_oracle_agrees_100_percent(shared: Path, name: str, which: str) -> None:
    if which == "cases":
        cases, expected = (
            shared / "oracle" / name / "cases.csv",
            shared / "oracle" / name / "expected.csv",
        )
    else:
        cases, expected = (
            shared / "oracle" / "samples.csv",
            shared / "oracle" / name / "samples_expected.csv",
        )
    # the oracle is the reference grouper's behaviour: its checks only (FORMAT §5)
    result = drgkit.group(cases, shared / "rulesets" / name)
    exp = _read(expected)
    assert_agrees(result, exp)
    # reasons are consistent with the reference's own status vocabulary
    reasons = result.column("reason").to_pylist()
    for row, e in zip(reasons, exp, strict=True):
        if e["status"] == "SUCCESS":
            assert row is None
        else:
            assert REASONS[row].opendrg == e["status"], (row, e)


def test_samples_carry_their_national_group(shared: Path) -> None:
    """samples.csv names the national 1.1 group of each case in its last column."""
    result = drgkit.group(shared / "oracle" / "samples.csv", shared / "rulesets" / "chs_drg_11")
    national = [r["drg"] for r in _read(shared / "oracle" / "samples.csv")]
    got = result.column("drg").to_pylist()
    labelled = [(g, n) for g, n in zip(got, national, strict=True) if n]
    assert len(labelled) >= 20
    assert all(g == n for g, n in labelled), labelled


# --------------------------------------------------------------------------- 2. reference

JUNK_CODES = ["", "XYZ.123", "k22.301", " K22.301", "A00", "96.08", "-", "A00.000 "]
FIELD_VALUES = [
    "",
    "0",
    "1",
    "2",
    "12",
    "28",
    "29",
    "65",
    "-3",
    "+3",
    "0.0",
    "1.0",
    "2.5",
    ".5",
    "1.",
    "3.7e1",
    "1e5",
    " 12",
    "1_0",
    "１２",
    "abc",
    "3,2kg",
    "男",
    "女",
    "M",
    "F",
    "1500",
    "1499.9",
    "2500",
    "99999999999999999999999",
    "1e999",
    "0302",
    "13040503",
    "nan",
]


@functools.cache
def _naive(folder: str) -> NaiveRuleset:
    return NaiveRuleset.load(folder)


@functools.cache
def _code_pools(folder: str) -> tuple[list[str], list[str]]:
    """Diagnosis-like and procedure-like codes that the ruleset's tables mention."""
    root = Path(folder)
    dx: set[str] = set()
    px: set[str] = set()
    for row in _read(root / "lists.csv"):
        name = row["list_id"]
        (px if ("_ss" in name or "proc" in name) else dx).add(row["code"])
    for table in ("mcc.csv", "cc.csv", "pdx_excl.csv"):
        dx.update(r["code"] for r in _read(root / table))
    px.update(r["code"] for r in _read(root / "ss_valid.csv"))
    for table, pool in (("dx_map.csv", dx), ("px_map.csv", px)):
        if (root / table).is_file():
            rows = _read(root / table)
            pool.update(r["code"] for r in rows[:: max(1, len(rows) // 400)])
            pool.update(r["target"] for r in rows[:: max(1, len(rows) // 400)])
    return sorted(dx), sorted(px)


def _reference_folders() -> list[str]:
    from conftest import shared_dir

    folders = [str(DEMO / "2023"), str(DEMO / "2024")]
    root = shared_dir() / "rulesets"
    if root.is_dir():
        folders += [str(root / name) for name in SHARED_RULESETS]
    return folders


@st.composite
def case_batches(draw, folder: str) -> list[dict[str, str]]:
    dx_pool, px_pool = _code_pools(folder)
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 40))
    cases = []

    def code(pool: list[str]) -> str:
        return rng.choice(JUNK_CODES) if rng.random() < 0.08 else rng.choice(pool)

    for i in range(n):
        ndx = rng.choice([0, 1, 1, 2, 3, 4, 6])
        npx = rng.choice([0, 0, 1, 1, 2, 3, 5])
        dxs = [code(dx_pool) for _ in range(ndx)]
        pxs = [code(px_pool) for _ in range(npx)]
        if pxs and rng.random() < 0.1:
            pxs.append(pxs[0])  # duplicates are kept
        sep = rng.choice(["|", "|", ","])
        age = rng.choice(
            ["0", "0", "1", "30", "70", "65", "6", "", *FIELD_VALUES[:8]]
            if rng.random() < 0.9
            else FIELD_VALUES
        )
        cases.append(
            {
                "Index": f"H-{i}",
                "gender": rng.choice(["1", "2", "1", "2", "男", "女", "", "M", "1.0", "abc", " 1"]),
                "age": age,
                "ageDay": rng.choice(["", "3", "12", "28", "29", "200", "abc", "5.5", "0"]),
                "weight": rng.choice(
                    [
                        "",
                        "",
                        "800",
                        "1499",
                        "1500",
                        "2000",
                        "2499",
                        "3200",
                        "abc",
                        "3,2kg",
                        "0",
                        "1e3",
                        "2.5e3",
                    ]
                ),
                "dept": rng.choice(["0302", "13040503", "", "abc", "7"]),
                "inHospitalTime": rng.choice(
                    ["", "0", "1", "2", "5", "6", "13", "14", "60", "abc", "3.5"]
                ),
                "leavingType": rng.choice(["1", "2", "5", "9", "", "x"]),
                "ICD10_DRGS": sep.join(dxs),
                "ICD9_DRGS": sep.join(pxs),
            }
        )
    return cases


def _compare_with_reference(
    folder: str,
    cases: list[dict[str, str]],
    translate: bool,
    typed: bool = False,
    checks: str = "format",
) -> None:
    reference = _naive(folder)
    if typed:
        table = _typed_table(cases)
    else:
        table = pa.table({c: [r[c] for r in cases] for c in OPENDRG_COLUMNS})
    result = drgkit.group(table, folder, translate=translate, value_checks=checks).to_pydict()
    for i, case in enumerate(cases):
        record = {k: v for k, v in case.items() if k != "Index"}
        status, mdc, adrg, drg = reference.group(record, translate=translate, checks=checks)
        got = (result["status"][i], result["mdc"][i], result["adrg"][i], result["drg"][i])
        if STATUS_MAP[status] in ("ok", "ambiguous"):
            want = (STATUS_MAP[status], mdc, adrg, drg)
        else:
            want = (STATUS_MAP[status], *got[1:])
            if status == "IMPLAUSIBLE":
                assert result["reason"][i].endswith("_implausible"), (case, result["reason"][i])
            else:
                assert REASONS[result["reason"][i]].opendrg == status, (case, result["reason"][i])
        assert got == want, (case, got, want, result["detail"][i])


@pytest.mark.kernel
@pytest.mark.parametrize("folder", _reference_folders(), ids=lambda f: Path(f).name)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_kernels_match_reference_on_generated_cases(folder: str, data) -> None:
    cases = data.draw(case_batches(folder))
    _compare_with_reference(folder, cases, translate=False)
    _compare_with_reference(folder, cases, translate=False, checks="strict")


@pytest.mark.kernel
@pytest.mark.parametrize("folder", _reference_folders(), ids=lambda f: Path(f).name)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_translation_mode_matches_reference(folder: str, data) -> None:
    cases = data.draw(case_batches(folder))
    _compare_with_reference(folder, cases, translate=True)


def _typed_table(cases: list[dict[str, str]]) -> pa.Table:
    """Numeric fields as Arrow numbers where every value is a plain number, else text;
    code lists as list<string>."""
    from drgkit._cases import parse_value

    columns = {}
    for name in OPENDRG_COLUMNS:
        values = [r[name] for r in cases]
        if name in ("ICD10_DRGS", "ICD9_DRGS"):
            import re

            columns[name] = pa.array(
                [re.split("[,|]", v) if v else [] for v in values], pa.list_(pa.string())
            )
            continue
        numbers = [parse_value(v) for v in values]
        if name != "Index" and all(
            v == "" or (k & 1) for v, (k, *_rest) in zip(values, numbers, strict=True)
        ):
            converted = [
                None if v == "" else (int(v) if "." not in v and "e" not in v.lower() else float(v))
                for v in values
            ]
            fits = all(x is None or (isinstance(x, int) and abs(x) < 2**63) for x in converted)
            if fits:
                columns[name] = pa.array(converted, pa.int64())
            elif any(isinstance(x, int) and abs(x) >= 2**63 for x in converted):
                columns[name] = pa.array(values, pa.string())  # no Arrow integer holds it
            else:
                columns[name] = pa.array(
                    [None if x is None else float(x) for x in converted], pa.float64()
                )
        else:
            columns[name] = pa.array(values, pa.string())
    return pa.table(columns)


@pytest.mark.kernel
@pytest.mark.parametrize("folder", _reference_folders()[:3], ids=lambda f: Path(f).name)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_typed_columns_group_like_text(folder: str, data) -> None:
    """Numbers given as Arrow numbers and code lists as lists group exactly as their text."""
    cases = data.draw(case_batches(folder))
    for case in cases:
        # an empty principal in a list column is the same as an empty diagnosis field
        if case["ICD10_DRGS"] == "":
            case["ICD10_DRGS"] = ""
    text = drgkit.group(pa.table({c: [r[c] for r in cases] for c in OPENDRG_COLUMNS}), folder)
    typed = drgkit.group(_typed_table(cases), folder)
    for name in ("status", "reason", "mdc", "adrg", "drg"):
        assert typed.column(name).to_pylist() == text.column(name).to_pylist(), name


# --------------------------------------------------------------------------- 3. by hand


def test_every_output_row_has_a_status_and_only_ok_rows_lack_a_reason() -> None:
    cases = drgkit._demo.generate_cases(3000, seed=7) if hasattr(drgkit, "_demo") else None
    from drgkit import _demo

    cases = _demo.generate_cases(3000, seed=7)
    result = drgkit.group(cases, "demo")
    assert result.num_rows == cases.num_rows
    assert result.column("case_id").to_pylist() == cases.column("case_id").to_pylist()
    status = result.column("status").to_pylist()
    reason = result.column("reason").to_pylist()
    detail = result.column("detail").to_pylist()
    assert set(status) <= set(drgkit.STATUSES)
    for s, r, d in zip(status, reason, detail, strict=True):
        assert (r is None) == (s == "ok")
        assert (d is None) == (s == "ok")
        if r is not None:
            assert REASONS[r].status == drgkit.STATUSES.index(s)


# --------------------------------------------------------------------------- plausibility


def _one(table_or_csv, **options) -> dict:
    rows = drgkit.group(table_or_csv, "demo_2024", **options).to_pylist()
    assert len(rows) == 1
    return rows[0]


_PLAIN = {
    "case_id": "P1",
    "sex": "1",
    "age": "45",
    "age_days": "",
    "birth_weight": "",
    "los": "5",
    "diagnoses": "I63.500",
    "procedures": "93.3900",
}


@pytest.mark.kernel
def test_plain_case_is_ok_so_the_checks_below_are_meaningful() -> None:
    assert _one(pa.table({k: [v] for k, v in _PLAIN.items()}))["status"] == "ok"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("age", "-5", "age_implausible"),
        ("age", "45.5", "age_implausible"),
        ("age", "99999999999999999999", "age_implausible"),
        ("age", "151", "age_implausible"),
        ("age_days", "-1", "age_days_implausible"),
        ("age_days", "2.5", "age_days_implausible"),
        ("birth_weight", "-1", "birth_weight_implausible"),
        ("birth_weight", "10000.5", "birth_weight_implausible"),
        ("los", "-1", "los_implausible"),
        ("los", "36601", "los_implausible"),
    ],
)
@pytest.mark.kernel
def test_implausible_values_are_invalid_from_csv_text(
    tmp_path: Path, field: str, value: str, reason: str
) -> None:
    case = dict(_PLAIN, **{field: value})
    path = tmp_path / "c.csv"
    path.write_text(",".join(case) + "\n" + ",".join(case.values()) + "\n", encoding="utf-8")
    row = _one(path, value_checks="strict")
    assert (row["status"], row["reason"]) == ("invalid", reason)
    assert repr(value) in row["detail"] and field in row["detail"]
    # by default the checks are FORMAT §5's (the reference grouper's): the case groups, and
    # the run says loudly that the value is implausible, once per kind, and per case in detail
    with pytest.warns(drgkit.DataWarning, match=f"implausible {field}"):
        default = _one(path)
    assert default["status"] == "ok"
    assert repr(value) in default["detail"] and "not plausible" in default["detail"]


@pytest.mark.parametrize(
    ("field", "value", "arrow_type", "reason"),
    [
        ("age", -5, pa.int64(), "age_implausible"),
        ("age", 45.5, pa.float64(), "age_implausible"),
        ("age", 1e20, pa.float64(), "age_implausible"),
        ("age_days", -3.0, pa.float64(), "age_days_implausible"),
        ("birth_weight", -10, pa.int32(), "birth_weight_implausible"),
        ("los", -2.0, pa.float32(), "los_implausible"),
    ],
)
@pytest.mark.kernel
def test_implausible_values_are_invalid_from_typed_columns(
    field: str, value: object, arrow_type: pa.DataType, reason: str
) -> None:
    columns = {k: pa.array([v]) for k, v in _PLAIN.items() if k != field}
    columns[field] = pa.array([value], arrow_type)
    row = _one(pa.table(columns), value_checks="strict")
    assert (row["status"], row["reason"]) == ("invalid", reason)


@pytest.mark.parametrize(
    ("age", "age_days", "status"),
    [
        ("0", "366", "ok"),
        ("0", "367", "invalid"),
        ("3", "1200", "ok"),
        ("45.0", "", "ok"),
        ("150", "", "ok"),
        ("0", "0", "ok"),
    ],
)
@pytest.mark.kernel
def test_plausibility_boundaries(age: str, age_days: str, status: str) -> None:
    case = dict(_PLAIN, age=age, age_days=age_days)
    row = _one(pa.table({k: [v] for k, v in case.items()}), value_checks="strict")
    assert row["status"] == status, row


def test_format_checks_come_before_plausibility() -> None:
    case = dict(_PLAIN, sex="", age="-5")
    assert (
        _one(pa.table({k: [v] for k, v in case.items()}), value_checks="strict")["reason"]
        == "sex_missing"
    )


def test_unknown_value_checks_is_a_drgkit_error() -> None:
    with pytest.raises(drgkit.DrgkitError, match="value_checks"):
        _one(pa.table({k: [v] for k, v in _PLAIN.items()}), value_checks="lenient")


def test_naive_reference_applies_the_same_plausibility_checks(shared: Path) -> None:
    reference = _naive(str(shared / "rulesets" / "chs_drg_11"))
    record = {
        "gender": "1",
        "age": "45",
        "ageDay": "",
        "weight": "",
        "inHospitalTime": "5",
        "ICD10_DRGS": "I10.x05",
        "ICD9_DRGS": "",
    }
    assert reference.group(record, checks="strict")[0] == "SUCCESS"
    for key, value in (
        ("age", "-5"),
        ("age", "45.5"),
        ("age", "99999999999999999999"),
        ("ageDay", "-1"),
        ("weight", "-1"),
        ("inHospitalTime", "-1"),
    ):
        bad = dict(record, **{key: value})
        assert reference.group(bad, checks="strict")[0] == "IMPLAUSIBLE", (key, value)
        assert reference.group(bad)[0] == "SUCCESS", (key, value)


# --------------------------------------------------------------------------- code-list mistakes


def _with_codes(diagnoses: object, procedures: object = "93.3900") -> dict:
    case = dict(_PLAIN, diagnoses=diagnoses, procedures=procedures)
    return _one(pa.table({k: [v] for k, v in case.items()}))


@pytest.mark.kernel
def test_whitespace_around_codes_is_not_part_of_them() -> None:
    clean = _with_codes("I63.500|E03.900")
    assert clean["status"] == "ok"
    for spaced in (
        "I63.500 |E03.900",
        "I63.500| E03.900",
        " I63.500\t|\tE03.900 ",
        "I63.500 , E03.900",
    ):
        assert _with_codes(spaced)["drg"] == clean["drg"], spaced
    # a field of whitespace only is an empty field: no procedure at all
    assert _with_codes("I63.500", " \t ")["drg"] == _with_codes("I63.500", "")["drg"]
    # list columns: the same
    listed = drgkit.group(
        pa.table(
            {
                **{k: [v] for k, v in _PLAIN.items() if k not in ("diagnoses", "procedures")},
                "diagnoses": [[" I63.500", "E03.900 "]],
                "procedures": [["93.3900\t"]],
            }
        ),
        "demo_2024",
    )
    assert listed.column("drg").to_pylist() == [clean["drg"]]


@pytest.mark.parametrize(
    ("diagnoses", "mark", "known"),
    [
        ("I63.500;E03.900", "';'", "I63.500"),
        ("I63.500/E03.900", "'/'", "I63.500"),
        ("I63.500\tE03.900", "a space or tab", "I63.500"),
        ("I63.500 E03.900", "a space or tab", "I63.500"),
        ("i63.500|E03.900", "case-sensitive", "I63.500"),
        ("i20.800x001", "case-sensitive", "I20.800x001"),  # the x of an extension code stays
        ("i63.500;e03.900", "';'", "I63.500"),
    ],
)
@pytest.mark.kernel
def test_code_list_mistakes_get_a_hint_and_a_warning(diagnoses: str, mark: str, known: str) -> None:
    with pytest.warns(drgkit.DataWarning, match="look mistyped") as caught:
        row = _with_codes(diagnoses)
    # the lookup stays exact: the case is not grouped as if the file were right
    assert row["status"] == "ungroupable"
    assert "hint:" in row["detail"] and mark in row["detail"] and repr(known) in row["detail"]
    assert row["detail"].startswith("no MDC entry rule holds")
    assert any("case P1" in str(w.message) for w in caught)


def test_real_unknown_codes_and_correct_x_codes_get_no_hint(recwarn) -> None:
    assert _with_codes("I20.800x001")["status"] == "ok"
    row = _with_codes("ZZZ.999;Q99.999")  # nothing the ruleset knows, whatever the fix
    assert row["status"] == "ungroupable" and "hint" not in row["detail"]
    assert not [
        w
        for w in recwarn
        if issubclass(w.category, drgkit.DataWarning) and "mistyped" in str(w.message)
    ]


@pytest.mark.kernel
def test_lower_case_codes_in_list_columns_and_in_the_summary(tmp_path: Path) -> None:
    columns = {k: [v, v, v] for k, v in _PLAIN.items() if k not in ("case_id", "diagnoses")}
    table = pa.table(
        {
            **columns,
            "case_id": ["a", "b", "c"],
            "diagnoses": [["i63.500"], ["I63.500"], ["I63.500;E03.900"]],
        }
    )
    with pytest.warns(drgkit.DataWarning):
        result = drgkit.group(table, "demo_2024").to_pylist()
    assert [r["status"] for r in result] == ["ungroupable", "ok", "ungroupable"]
    assert "'I63.500' is known" in result[0]["detail"]
    assert "';'" in result[2]["detail"]
    from drgkit.grouping import group_file

    with pytest.warns(drgkit.DataWarning):
        summary = group_file(table, tmp_path / "out.csv", "demo_2024")
    text = "\n".join(summary.warnings)
    assert "1 case(s) with lower-case codes" in text and "1 case(s) with ';'" in text


# --------------------------------------------------------------------------- code lookups


@pytest.mark.kernel
@settings(max_examples=40, deadline=None)
@given(
    known=st.lists(st.text(min_size=0, max_size=24), max_size=40, unique=True),
    probes=st.lists(st.text(max_size=24), max_size=40),
    seps=st.sampled_from([",|", "|", ";"]),
)
def test_code_table_agrees_with_a_python_dict(
    known: list[str], probes: list[str], seps: str
) -> None:
    import re

    from drgkit._codes import CodeTable

    known = [k for k in known if k == k.strip(" \t\n\r\x0b\x0c")]
    table = CodeTable(known)
    index = {c: i for i, c in enumerate(known)}
    words = probes + known[:5]
    ids, _flags = table.map_strings(pa.array(words, pa.string()))
    assert ids.tolist() == [index.get(w.strip(" \t\n\r\x0b\x0c"), -1) for w in words]
    texts = [seps[0].join(words[k : k + 3]) for k in range(0, len(words), 3)]
    offsets, ids, _flags = table.split_and_map(
        pa.array(texts, pa.large_string()), seps.encode(), False, -7
    )
    for i, text in enumerate(texts):
        text = text.strip(" \t\n\r\x0b\x0c")
        pieces = re.split("[" + re.escape(seps) + "]", text) if text else []
        want = [index.get(p.strip(" \t\n\r\x0b\x0c"), -1) for p in pieces]
        assert ids[offsets[i] : offsets[i + 1]].tolist() == want, text


@pytest.mark.kernel
@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "", "é", "a "])), max_size=60),
    st.integers(1, 7),
)
def test_id_tracker_finds_the_first_row_of_each_repeat(ids: list, batch: int) -> None:
    from drgkit._codes import IdTracker

    tracker = IdTracker(capacity=4)  # small: forces the table to grow
    seen: dict[str, int] = {}
    for start in range(0, len(ids), batch):
        part = ids[start : start + batch]
        got = tracker.check(pa.array(part, pa.string()), start).tolist()
        want = []
        for k, value in enumerate(part):
            if value is None:
                want.append(-1)
            elif value in seen:
                want.append(seen[value])
            else:
                seen[value] = start + k
                want.append(-1)
        assert got == want


# --------------------------------------------------------------------------- column types


def _base_columns() -> dict[str, pa.Array]:
    return {k: pa.array([v]) for k, v in _PLAIN.items()}


@pytest.mark.parametrize(
    ("field", "array"),
    [
        ("age", pa.array([["45"]], pa.list_(pa.string()))),
        ("sex", pa.array([1], pa.date32())),
        ("los", pa.array([{"a": 1}])),
    ],
)
def test_a_column_of_the_wrong_type_is_an_error_naming_it(field: str, array: pa.Array) -> None:
    columns = _base_columns()
    columns[field] = array
    with pytest.raises(drgkit.CaseDataError, match=f"column '{field}'.*case field {field}"):
        drgkit.group(pa.table(columns), "demo_2024")


def test_a_repeated_column_is_an_error_naming_it() -> None:
    columns = _base_columns()
    table = pa.Table.from_arrays([*columns.values(), pa.array(["2"])], names=[*columns, "sex"])
    with pytest.raises(drgkit.CaseDataError, match=r"column 'sex'.*appears 2 times"):
        drgkit.group(table, "demo_2024")


def test_binary_columns_are_read_as_utf8_text() -> None:
    columns = _base_columns()
    columns["case_id"] = pa.array([b"\xff\xfeP1"], pa.binary())
    columns["age"] = pa.array([b"45"], pa.binary())
    row = drgkit.group(pa.table(columns), "demo_2024").to_pylist()[0]
    assert row["status"] == "ok" and row["case_id"] == "\ufffd\ufffdP1"
    columns["age"] = pa.array([b"-5"], pa.binary())
    row = drgkit.group(pa.table(columns), "demo_2024", value_checks="strict").to_pylist()[0]
    assert (row["reason"], "'-5'" in row["detail"]) == ("age_implausible", True)


def test_hints_follow_each_case_when_versions_are_chosen_by_date() -> None:
    import datetime as dt

    rows = [
        dict(_PLAIN, case_id=f"v{k}", diagnoses=dx, discharge_date=day)
        for k, (dx, day) in enumerate(
            [
                ("I63.500;E03.900", dt.date(2023, 5, 1)),
                ("I63.500", dt.date(2023, 6, 1)),
                ("i63.500", dt.date(2024, 5, 1)),
                ("I63.500", dt.date(2024, 6, 1)),
            ]
        )
    ]
    with pytest.warns(drgkit.DataWarning):
        result = drgkit.group(pa.Table.from_pylist(rows), "demo").to_pylist()
    assert [r["ruleset"][-4:] for r in result] == ["2023", "2023", "2024", "2024"]
    assert [r["status"] for r in result] == ["ungroupable", "ok", "ungroupable", "ok"]
    assert "';'" in result[0]["detail"] and "case-sensitive" in result[2]["detail"]
