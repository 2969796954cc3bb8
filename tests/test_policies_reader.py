"""The generic table reader and the published-figure check on small hand-made tables: each key
of [weights] does what the README says, and a figure that does not hold is reported."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from drgkit.settlement import Policy, PolicyError, settle
from drgkit.settlement._check import check_published
from drgkit.settlement._price import PriceBook

D = Decimal


def make(tmp_path: Path, table: str, weights: dict[str, Any], **sections: Any) -> Policy:
    path = tmp_path / "t.csv"
    path.write_text(table, encoding="utf-8")
    config: dict[str, Any] = {
        "policy": {"id": "t", "method": "rate"},
        "weights": {"drg": "code", "rw": "RW", **weights},
        "schemes": {"310": "employee", "390": "resident"},
        "rate": {"base": {"employee": "10000", "resident": "9000"}},
        **sections,
    }
    return Policy.from_config(config, path=tmp_path / "t.toml", weights=path)


def kinds(policy: Policy) -> dict[str, tuple[int, int]]:
    return check_published(policy).kinds


def test_standards_per_level_and_scheme(tmp_path: Path) -> None:
    # A1: 1.5 × 10000 = 15000 (employees), 1.5 × 9000 = 13500 (residents); B1 is one cent off
    table = "code,RW,std_e,std_r\nA1,1.5,15000,13500\nB1,0.25,2500.01,2250\n"
    std = {"employee": {"*": "std_e"}, "resident": {"*": "std_r"}}
    policy = make(tmp_path, table, {"published_standards": std})
    report = check_published(policy)
    assert report.kinds == {"standard": (4, 3)}
    assert report.mismatches == (
        "B1 standard level * scheme employee: published 2500.01, computed 2500.00",
    )


def test_thresholds_and_rates_are_reproduced(tmp_path: Path) -> None:
    # standard 2 × 10000 = 20000: low 0.4 × = 8000, high 3 × = 60000; the row's rate 10000
    table = "code,RW,low,high,rate\nA1,2,8000,60000.00,10000\nB1,1,4000,30000.01,10001\n"
    policy = make(
        tmp_path,
        table,
        {
            "published_thresholds": {"low": {"*": "low"}, "high": {"*": "high"}},
            "published_rates": {"employee": "rate"},
        },
        outliers={"low": {"ratio": "0.4"}, "high": {"ratio": "3"}},
    )
    report = check_published(policy)
    assert report.kinds == {"low": (2, 2), "high": (2, 1), "rate": (2, 1)}
    assert len(report.mismatches) == 2
    assert "B1 high level * scheme *: published 30000.01, computed 30000" in report.mismatches[0]
    assert report.mismatches[1] == "B1 rate level * scheme employee: published 10001, policy 10000"


def test_rw_derived_from_another_column(tmp_path: Path) -> None:
    # RW = mean ÷ 8000, half up to 2 decimals: 12345 ÷ 8000 = 1.543… -> 1.54 (printed: match);
    # 4004 ÷ 8000 = 0.5005 -> 0.50 (printed 0.51: differs); a row without RW prints the
    # divisor 8000 (C1 matches, D1 prints 7999: differs)
    table = "code,RW,mean\nA1,1.54,12345\nB1,0.51,4004\nC1,,8000\nD1,,7999\n"
    rule = {"column": "mean", "divisor": "8000", "decimals": 2}
    report = check_published(make(tmp_path, table, {"rw_from": rule}))
    assert report.kinds == {"rw": (4, 2)}
    assert report.mismatches == (
        "B1 rw: published 0.51, mean 4004 ÷ 8000 = 0.50",
        "D1 rw: none, mean 7999",
    )


def test_no_standard_and_no_weight_values(tmp_path: Path) -> None:
    table = "code,RW,std\nA1,1,10000\nB1,按项目,0\nC1,2,0\n"
    policy = make(
        tmp_path,
        table,
        {
            "published_standards": {"*": "std"},
            "no_standard_values": ["0"],
            "no_weight_values": {"按项目": "not_covered"},
        },
    )
    rows = policy.weights.rows
    assert rows["B1"].rw is None and rows["B1"].classes == {"not_covered"}
    report = check_published(policy)
    # B1: no standard printed, none computed (no weight); C1: none printed, 20000 computed
    assert report.kinds == {"standard": (3, 2)}
    assert report.mismatches == (
        "C1 standard level * scheme *: the table has none, computed 20000",
    )
    out = settle(
        pa.Table.from_pylist(
            [
                {
                    "case_id": "b",
                    "status": "ok",
                    "drg": "B1",
                    "hospital_level": "3",
                    "total_cost": "123.45",
                    "insurance_type": "310",
                    "self_pay": "0",
                    "own_pay": "0",
                },
            ]
        ),
        policy,
    )
    assert out["payment_class"].to_pylist() == ["not_covered"]
    assert out["payment"].to_pylist() == [D("123.45")]


@pytest.mark.parametrize(
    ("empty", "expected"), [("none", None), ("1", D("10000")), ("", D("10000"))]
)
def test_empty_coefficient(tmp_path: Path, empty: str, expected: Decimal | None) -> None:
    # B1 has a level-3 coefficient, A1 has none: "" keeps the old rule (a row without any
    # coefficient is priced at 1), "none" gives no price, a number is that coefficient
    table = "code,RW,c3\nA1,1,\nB1,1,1.1\n"
    weights = {"level_coefficients": {"3": "c3"}}
    if empty:
        weights["empty_coefficient"] = empty
    policy = make(tmp_path, table, weights)
    book = PriceBook(policy)
    std, _rw, why = book.standard(policy.weights.rows["A1"], "3", "employee", D(1))
    assert std == expected
    assert (why != "") == (expected is None)
    assert book.standard(policy.weights.rows["B1"], "3", "employee", D(1))[0] == D("11000.0")


def test_standard_as_published(tmp_path: Path) -> None:
    table = "code,RW,std\nA1,1.23,12345\nB1,0.5,\n"
    policy = make(
        tmp_path,
        table,
        {"published_standards": {"*": "std"}},
        rate={"standard": "published"},
        hospital_coefficients={"apply": True},
    )
    book = PriceBook(policy)
    assert book.standard(policy.weights.rows["A1"], "2", "resident", D(1)) == (
        D("12345"),
        D("1.23"),
        "",
    )
    # a hospital coefficient still applies; a row with no printed standard has no price
    assert book.standard(policy.weights.rows["A1"], "2", "resident", D("0.9"))[0] == D("11110.5")
    assert book.standard(policy.weights.rows["B1"], "2", "resident", D(1))[0] is None
    report = check_published(policy)
    assert report.kinds == {} and report.read_as_price == 1
    with pytest.raises(PolicyError, match="needs \\[weights\\] published_standards"):
        make(tmp_path, table, {}, rate={"standard": "published"})


def test_flags_ignored_rows_and_short_rows(tmp_path: Path) -> None:
    table = "code,RW,flag\nA1,1,是\nA1,9,\nB1,2\nC1,3,？\n"
    weights = {
        "classes": {"basic": {"column": "flag", "values": ["是"], "others": [""]}},
        "ignore_rows": [{"row": 3, "code": "A1", "reason": "printed twice"}],
        "short_rows": "pad",
    }
    with pytest.raises(PolicyError) as info:
        make(tmp_path, table, weights)
    assert (info.value.row, info.value.column) == (5, "flag")
    assert "unknown flag value '？'" in str(info.value)
    policy = make(tmp_path, table.replace("？", ""), weights)
    assert sorted(policy.weights.rows) == ["A1", "B1", "C1"]
    assert policy.weights.rows["A1"].rw == 1 and policy.weights.rows["A1"].classes == {"basic"}
    assert policy.weights.ignored == ("row 3 (A1): printed twice",)
    assert policy.weights.padded == (4,)
    assert check_published(policy).notes == (
        "not read: row 3 (A1): printed twice",
        "rows with missing trailing fields read as empty: 4",
    )
    # the row named must hold the code named, and exist
    bad = {**weights, "ignore_rows": [{"row": 3, "code": "B1", "reason": "x"}]}
    with pytest.raises(PolicyError, match="names group B1 on this row, the table has A1"):
        make(tmp_path, table, bad)
    bad = {**weights, "ignore_rows": [{"row": 9, "code": "B1", "reason": "x"}]}
    with pytest.raises(PolicyError, match="names row 9"):
        make(tmp_path, "code,RW,flag\nA1,1,是\n", bad)
    bad = {**weights, "ignore_rows": [{"row": 3, "reason": "x"}]}
    with pytest.raises(PolicyError, match="needs row, code and reason"):
        make(tmp_path, table, bad)


def test_rw_with_ten_decimals_is_refused_nine_are_exact(tmp_path: Path) -> None:
    policy = make(tmp_path, "code,RW\nA1,1.123456789\n", {})
    assert policy.weights.rows["A1"].rw == D("1.123456789")
    assert PriceBook(policy).standard(policy.weights.rows["A1"], "3", "employee", D(1))[0] == D(
        "11234.56789"
    )
    with pytest.raises(PolicyError) as info:
        make(tmp_path, "code,RW\nA1,1.1234567891\n", {})
    assert (info.value.row, info.value.column) == (2, "RW")
