"""The one money house (drgkit/_money.py): one bound, one RW scale, exact readers.

Expectations are hand-computed in the comments or computed independently with Python's exact
integers and fractions; every entry point is tried at the bound and one cent over it."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import drgkit
from drgkit import _money
from drgkit._money import (
    LIMIT_CENTS,
    LIMIT_RW,
    OK,
    RW_SCALE,
    SUB_CENT,
    TOO_LARGE,
    cents_of,
    group_sums,
    rw_units,
    to_cents,
)
from drgkit.alliance import AllianceError, AllianceModel
from drgkit.settlement import Policy, settle
from drgkit.settlement import _kernel as K
from drgkit.settlement._period import settle_period

POLICIES = Path(drgkit.__file__).parent / "policies"
LIMIT_YUAN = "4000000000.00"  # LIMIT_CENTS in yuan
OVER_YUAN = "4000000000.01"  # one cent over


def test_the_bound_is_inside_the_kernels_exact_range() -> None:
    assert LIMIT_CENTS == 400_000_000_000
    # the kernel's largest intermediate is 2·10^7·|c| + G/2 (by item with factor 10, or
    # standard × 10): it fits int64 up to KERNEL_EXACT_CENTS and not one cent further
    k = _money.KERNEL_EXACT_CENTS
    assert 2 * 10**7 * k + 10**6 <= 2**63 - 1 < 2 * 10**7 * (k + 1) + 10**6
    assert k >= LIMIT_CENTS


# ----------------------------------------------------------------------------- readers


def flags(arr: pa.Array) -> tuple[list[int], list[int]]:
    cents, flag = to_cents(arr, len(arr))
    return cents.tolist(), flag.tolist()


@pytest.mark.parametrize(
    "arr",
    [
        pa.array([LIMIT_YUAN, f"-{LIMIT_YUAN}", OVER_YUAN, f"-{OVER_YUAN}", "90000000000.00"]),
        pa.array(
            [LIMIT_YUAN, f"-{LIMIT_YUAN}", OVER_YUAN, f"-{OVER_YUAN}", "90000000000.00"],
            pa.large_string(),
        ).dictionary_encode(),
        pa.array(
            [
                Decimal(x)
                for x in (
                    LIMIT_YUAN,
                    f"-{LIMIT_YUAN}",
                    OVER_YUAN,
                    f"-{OVER_YUAN}",
                    "90000000000.00",
                )
            ],
            pa.decimal128(18, 2),
        ),
        # the slow path: a wide decimal with more (zero) decimals
        pa.array(
            [
                Decimal(x)
                for x in (
                    "4000000000.0000",
                    "-4000000000.0000",
                    "4000000000.0100",
                    "-4000000000.0100",
                    "90000000000.0000",
                )
            ],
            pa.decimal128(38, 4),
        ),
        pa.array([4e9, -4e9, 4000000000.01, -4000000000.01, 9e10]),
    ],
)
def test_every_column_type_at_the_bound_and_one_cent_over(arr: pa.Array) -> None:
    cents, flag = flags(arr)
    assert flag == [OK, OK, TOO_LARGE, TOO_LARGE, TOO_LARGE]
    assert cents == [LIMIT_CENTS, -LIMIT_CENTS, 0, 0, 0]


def test_integer_columns_in_yuan() -> None:
    assert flags(
        pa.array([4_000_000_000, -4_000_000_000, 4_000_000_001, -(2**63)], pa.int64())
    ) == ([LIMIT_CENTS, -LIMIT_CENTS, 0, 0], [OK, OK, TOO_LARGE, TOO_LARGE])
    # a uint64 above 2^63 must not wrap to a small negative amount
    assert flags(pa.array([2**64 - 5, 3], pa.uint64())) == ([0, 300], [TOO_LARGE, OK])


def test_texts_far_beyond_int64_are_too_large_not_wrapped() -> None:
    assert flags(pa.array(["9" * 40, "9" * 40 + ".5x", "1" + "0" * 25 + ".00"])) == (
        [0, 0, 0],
        [TOO_LARGE, _money.NOT_A_NUMBER, TOO_LARGE],
    )


def test_one_amount_reads_like_a_column() -> None:
    for value in (LIMIT_YUAN, 4_000_000_000, Decimal(LIMIT_YUAN), 4e9):
        assert cents_of(value) == (LIMIT_CENTS, OK)
    for value in (OVER_YUAN, 4_000_000_001, Decimal(OVER_YUAN), 9e10, 10**30, Decimal("1E+30")):
        assert cents_of(value)[1] == TOO_LARGE
    assert cents_of(Decimal("1E+2")) == (10000, OK)  # exponent notation of a Decimal
    assert cents_of("0.005")[1] == SUB_CENT
    assert cents_of(True)[1] == _money.NOT_A_NUMBER
    assert cents_of(Decimal("NaN"))[1] == _money.NOT_A_NUMBER


def test_rw_at_nine_decimals() -> None:
    # Qingdao 2023 AA19 23.99262817; Yancheng publishes 9 decimals
    values, flag = rw_units(
        pa.array(
            ["23.99262817", "0.123456789", "0.1234567891", str(LIMIT_RW), f"{LIMIT_RW}.000000001"]
        ),
        5,
    )
    assert flag.tolist() == [OK, OK, SUB_CENT, OK, TOO_LARGE]
    assert values.tolist()[:2] == [23_992_628_170, 123_456_789]
    assert values[3] == LIMIT_RW * RW_SCALE
    assert pa.decimal128(18, 9) == _money.RW_TYPE


def test_group_sums_are_exact_beyond_int64() -> None:
    idx = np.array([0, 0, 1, 0])
    big = np.array([2**62, 2**62, 5, 2**62], dtype=np.int64)
    sums = group_sums(idx, big, 2)
    assert [int(x) for x in sums] == [3 * 2**62, 5]  # 3·2^62 > 2^63: Python integers
    small = group_sums(idx, np.array([1, 2, 3, 4]), 2)
    assert small.dtype == np.int64 and small.tolist() == [7, 3]


# ----------------------------------------------------------------------------- the kernel


def _half_up(x: Fraction) -> int:
    return int((x + Fraction(1, 2)) // 1) if x >= 0 else -int((-x + Fraction(1, 2)) // 1)


def test_kernel_is_exact_at_the_bound() -> None:
    """price_all against Python's exact integers, at ±LIMIT_CENTS, for the formulas with the
    largest terms: by item × 10 (the policy's largest factor), standard × 10 with a standard
    at the limit, and standard + share × excess."""
    G = K.G
    S = LIMIT_CENTS
    share = Fraction(9, 10)
    threshold = Fraction(S) / 2  # a high outlier above half the standard (hypothetical)
    high_a = S - share * threshold
    cell = {
        "std_g": [S * G],
        "low_c": [1],
        "high_c": [int(threshold)],
        "low_a": [10 * S * G],
        "low_b": [0],
        "high_a": [int((high_a * G) // 1)],
        "high_b": [900_000],
    }
    arrays = {k: np.array(v, dtype=np.int64) for k, v in cell.items()}
    costs = [LIMIT_CENTS, -LIMIT_CENTS, LIMIT_CENTS, 0, LIMIT_CENTS - 1]
    formula = np.array([K.F_BY_ITEM, K.F_BY_ITEM, K.F_DRG, K.F_DRG, K.F_DRG], np.int8)
    item_b = np.array([10_000_000, 10_000_000, 0, 0, 0], np.int64)
    cls, standard, pay = K.price_all(
        len(costs),
        formula,
        np.zeros(len(costs), np.int64),
        np.array(costs, np.int64),
        item_b,
        arrays["std_g"],
        arrays["low_c"],
        arrays["high_c"],
        arrays["low_a"],
        arrays["low_b"],
        arrays["high_a"],
        arrays["high_b"],
    )
    expected = [
        10 * LIMIT_CENTS,  # by item × 10
        -10 * LIMIT_CENTS,
        _half_up(high_a + share * LIMIT_CENTS),  # high outlier
        10 * S,  # low outlier paid standard × 10 (cost 0 < low threshold)
        _half_up(high_a + share * (LIMIT_CENTS - 1)),
    ]
    assert pay.tolist() == expected
    assert cls.tolist() == [0, 0, K.C_HIGH, K.C_LOW, K.C_HIGH]
    assert standard.tolist()[2:] == [S, S, S]


# ----------------------------------------------------------------------------- settle

TIA = {
    "hospital_id": "H1",
    "hospital_level": "3",
    "insurance_type": "310",
    "sex": "1",
    "age": "60",
    "department": "0303",
    "los": "5",
    "leaving_type": "1",
    "diagnoses": ["G45.900"],
    "procedures": [],
    "discharge_date": "2023-06-01",
    "self_pay": "0",
    "own_pay": "0",
}


def settle_costs(*costs: str, **overrides: str) -> pa.Table:
    policy = Policy.from_toml(POLICIES / "demo.toml", overrides=overrides)
    raw = pa.Table.from_pylist(
        [{**TIA, "case_id": f"c{k}", "total_cost": cost} for k, cost in enumerate(costs)]
    )
    return settle(raw, policy, "demo_2023")


def test_a_cost_beyond_the_bound_is_not_settled_never_paid_wrong() -> None:
    # BZ15 RW 0.78 × 15000 × 1.15 = 13,455.00; high outlier above 3 × = 40,365.00, paid
    # standard + 0.9 × excess: at the bound 13,455 + 0.9 × (4,000,000,000 − 40,365)
    t = settle_costs("90000000000.00", LIMIT_YUAN, OVER_YUAN).to_pylist()
    assert [r["settled"] for r in t] == [False, True, False]
    assert [r["reason"] for r in t] == ["cost_too_large", None, "cost_too_large"]
    assert t[0]["payment"] is None and t[2]["payment"] is None  # was −11,233,741,118.92
    assert t[1]["payment"] == Decimal("13455") + Decimal("0.9") * (
        Decimal(LIMIT_YUAN) - Decimal("40365")
    )
    assert t[1]["payment"] == Decimal("3599977126.50")
    assert t[1]["payment_class"] == "high_outlier"


def test_a_standard_beyond_the_bound_has_no_price() -> None:
    # 0.78 × 5,000,000,000 × 1.15 = 4,485,000,000 yuan > the limit
    t = settle_costs("9000.00", **{"rate.base.employee": "5000000000"}).to_pylist()
    assert (t[0]["settled"], t[0]["reason"]) == (False, "no_price")
    # 0.78 × 4,459,308,807 × 1.15 = 3,999,999,999.87… yuan: still priced, exactly
    t = settle_costs("9000.00", **{"rate.base.employee": "4459308807"}).to_pylist()
    std = Fraction("0.78") * 4459308807 * Fraction("1.15")
    assert t[0]["standard"] == Decimal(_half_up(std * 100)).scaleb(-2)
    assert t[0]["settled"]


# ----------------------------------------------------------------------------- loaders

MODEL = """id = "t"
[coefficients]
"3" = "1.2"
[package]
retention = [{ up_to = "0.1", keep = "1" }, { keep = "0.5" }]
overspend = [{ up_to = "0.1", fund_share = "0.5" }, { fund_share = "0" }]
[[alliances]]
id = "A"
members = [{ hospital_id = "H1", level = 3, role = "lead" }]
"""


def model_file(tmp_path: Path, line: str) -> Path:
    """MODEL with ``line`` in alliance A (a ``[[…]]`` table goes after it)."""
    text = (
        MODEL + line + "\n"
        if line.startswith("[[")
        else MODEL.replace('id = "A"\n', f'id = "A"\n{line}\n')
    )
    path = tmp_path / "m.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "line",
    [
        f'budget = "{LIMIT_YUAN}"',
        'basis = "capitation"\nenrolled = 4\nper_person = "1000000000.00"',
    ],
)
def test_alliance_amounts_at_the_bound(tmp_path: Path, line: str) -> None:
    assert AllianceModel.load(model_file(tmp_path, line)).alliances[0].budget == LIMIT_CENTS


@pytest.mark.parametrize(
    "line",
    [
        f'budget = "{OVER_YUAN}"',
        'budget = "90000000000.00"',
        'basis = "capitation"\nenrolled = 4\nper_person = "1000000000.01"',
        f'[[alliances.shared_costs]]\nname = "x"\namount = "{OVER_YUAN}"',
    ],
)
def test_alliance_amounts_one_cent_over_are_refused(tmp_path: Path, line: str) -> None:
    path = model_file(tmp_path, line)
    with pytest.raises(AllianceError, match=r"too large|above the limit") as info:
        AllianceModel.load(path)
    assert str(path) in str(info.value)


def test_period_budgets_and_paid_at_the_bound() -> None:
    policy = Policy.from_toml(POLICIES / "demo.toml")
    settled = settle_costs("9000.00")
    for what in ("budgets", "already_paid"):
        table = settle_period(settled, policy, **{what: {"H1": LIMIT_CENTS}})
        assert table.num_rows == 1
        with pytest.raises(ValueError, match="above the limit"):
            settle_period(settled, policy, **{what: {"H1": LIMIT_CENTS + 1}})
    with pytest.raises(ValueError, match="above the limit"):
        settle_period(settled, policy, already_paid={"H1": -LIMIT_CENTS - 1})


def test_scaling_and_rounding_helpers() -> None:
    assert _money.scaled_half_up(Decimal("1.0000000005"), 9) == 1_000_000_001  # half up
    assert _money.scaled_half_up(Decimal("-1.0000000005"), 9) == -1_000_000_001  # away
    assert _money.scaled_half_up(Decimal("23.99262817"), 9) == 23_992_628_170
    assert _money.round_cents(Decimal("0.005")) == 1
    assert _money.coefficient_units(Decimal("0.9")) == 900_000
    assert _money.coefficient_units(Fraction(1, 8)) == 125_000
    with pytest.raises(ValueError, match="more than 6 decimals"):
        _money.coefficient_units(Decimal("0.0000001"))
    assert _money.round_fraction(Fraction(2, 3), 4) == Decimal("0.6667")
    assert _money.round_fraction(Fraction(-1, 8), 2) == Decimal("-0.13")


def test_muldiv_round_is_signed_and_never_wraps() -> None:
    # 7 × 5 / 2 = 17.5 -> 18, away from zero for negatives
    assert K.muldiv_round(7, 5, 2) == 18
    assert K.muldiv_round(-7, 5, 2) == -18
    assert K.muldiv_round(7, -5, 2) == -18
    assert K.muldiv_round(-7, -5, 2) == 18
    big = 2**62
    assert K.muldiv_round(big, 3, 2) == 3 * 2**61  # 1.5 · 2^62 < 2^63: exact
    assert K.muldiv_round(big, 5, 2) == K.SATURATED  # 2.5 · 2^62 ≥ 2^63: no wrapped value
    assert K.muldiv_round(-big, 5, 2) == -K.SATURATED
    assert K.muldiv_round(big, 3, 4) == 3 * 2**60  # 0.75 · 2^62 fits exactly


def test_points_payments_beyond_range_are_errors_not_amounts() -> None:
    formula = np.array([K.F_DRG, K.F_DRG], np.int8)
    points = np.array([10**6, 2 * 10**6], np.int64)
    # value 1 cent per point unit: fine
    assert K.pay_points(2, points, formula, 1, 1).tolist() == [10**6, 2 * 10**6]
    # a point value that pays 2·10^6 × 10^7 cents > MAX_PAYMENT_CENTS
    with pytest.raises(K.AmountRangeError, match="point value"):
        K.pay_points(2, points, formula, 10**7, 1)
    with pytest.raises(K.AmountRangeError):
        K.pay_points(2, points, formula, 2**62, 1)  # would wrap in int64
    # a negative point value (budget below what is paid by item) pays negative, exactly
    assert K.pay_points(2, points, formula, -3, 2).tolist() == [-1_500_000, -3_000_000]


def test_exact_sums_and_decimal_precision_are_checked() -> None:
    assert _money.exact_sum(np.array([2**62, 2**62, 2**62], np.int64)) == 3 * 2**62
    assert _money.exact_sum(np.zeros(0, np.int64)) == 0
    assert _money.cents_array(np.array([10**18 - 1])).to_pylist() == [
        Decimal("9999999999999999.99")
    ]
    with pytest.raises(ValueError, match=r"does not fit decimal128\(18, 2\)"):
        _money.cents_array(np.array([10**18]))  # Arrow would store it without a word


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-2 * LIMIT_CENTS, 2 * LIMIT_CENTS),
    st.integers(0, 4),
    st.sampled_from(["", "+", " "]),
)
def test_text_amounts_agree_with_decimal(cents: int, extra_zeros: int, prefix: str) -> None:
    """Any cent amount written as text reads back exactly, or TOO_LARGE past the bound."""
    text = prefix + format(Decimal(cents).scaleb(-2), "f") + "0" * extra_zeros
    if cents < 0 and prefix == "+":
        text = text.replace("+", "", 1)
    got = cents_of(text)
    assert got == ((cents, OK) if abs(cents) <= LIMIT_CENTS else (0, TOO_LARGE))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2 * LIMIT_RW * RW_SCALE), st.integers(0, 3))
def test_rw_texts_agree_with_decimal(units: int, extra: int) -> None:
    text = format(Decimal(units).scaleb(-9), "f") + "0" * extra
    values, flag = rw_units(pa.array([text, text + "1"]), 2)
    if units <= LIMIT_RW * RW_SCALE:
        assert (int(values[0]), int(flag[0])) == (units, OK)
    else:
        assert int(flag[0]) == TOO_LARGE
    assert int(flag[1]) in (SUB_CENT, TOO_LARGE)  # a 10th decimal digit
