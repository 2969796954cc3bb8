"""Exact prices of cells: (group row, hospital level, insurance scheme, hospital coefficient).

Each cell's standard (支付标准), outlier thresholds and outlier formulas are computed once, in
Python, with exact decimals, and handed to the kernel as integers (see ``_kernel``). Cells are
built on demand for the combinations that occur, so a province with thousands of hospital
coefficients costs only the cells it uses.
"""

from __future__ import annotations

import decimal
import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import attrs
import numpy as np

from .._money import LIMIT_CENTS, LIMIT_RW, RW_DECIMALS, coefficient_units, scaled_half_up
from ._kernel import NO_HIGH, NO_LOW, G
from ._policy import GroupRow, Policy

_CTX = decimal.Context(prec=80)  # exact for every product we form (inputs have few digits)

#: pseudo rows for special cases priced by an RW of their own
SPECIAL_ROW = "~{}"


def _floor(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_FLOOR, context=_CTX))


def _ceil(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_CEILING, context=_CTX))


@attrs.define(slots=True, eq=False)
class PriceBook:
    """Rows, levels, schemes and hospital coefficients by index; cells by key."""

    policy: Policy
    rows: list[GroupRow] = attrs.field(init=False)
    row_index: dict[str, int] = attrs.field(init=False)
    levels: list[str] = attrs.field(init=False)
    schemes: list[str] = attrs.field(init=False)
    coefficients: list[Decimal] = attrs.field(init=False)
    _cells: dict[tuple[int, int, int, int], int] = attrs.field(init=False, factory=dict)
    _arrays: dict[str, list[int]] = attrs.field(init=False)
    cell_ok: list[str] = attrs.field(init=False, factory=list)  # "" or why the cell has no price
    cell_rw: list[Decimal | None] = attrs.field(init=False, factory=list)

    def __attrs_post_init__(self) -> None:
        p = self.policy
        self.rows = list(p.weights.rows.values())
        for kind, spec in p.specials.items():
            if spec.method == "rw":
                self.rows.append(
                    GroupRow(SPECIAL_ROW.format(kind), kind, spec.rw, None, {}, {}, frozenset(), 0)
                )
        self.row_index = {r.code: k for k, r in enumerate(self.rows)}
        levels: list[str] = []
        for r in p.weights.rows.values():
            for lv in (*r.level_coefficients, *(key[1] for key in r.figures)):
                if lv not in levels and lv != "*":
                    levels.append(lv)
        for rates in p.base.values():
            levels.extend(lv for lv in rates if lv != "*" and lv not in levels)
        levels.extend(lv for lv in p.level_coefficients if lv not in levels)
        for lv in ("1", "2", "3"):
            if lv not in levels:
                levels.append(lv)
        self.levels = levels
        self.schemes = p.scheme_names()
        self.coefficients = [Decimal(1)]
        self._arrays = {
            k: []
            for k in ("std_g", "low_c", "high_c", "low_a", "low_b", "high_a", "high_b", "points")
        }

    # ------------------------------------------------------------------ lookups
    def coefficient_index(self, value: Decimal) -> int:
        if value not in self.coefficients:
            self.coefficients.append(value)
        return self.coefficients.index(value)

    def special_row(self, kind: str) -> int | None:
        spec = self.policy.specials[kind]
        if spec.method == "rw":
            return self.row_index[SPECIAL_ROW.format(kind)]
        if spec.method == "table_row":
            for code in self.policy.weights_rows("ungroupable"):
                if code in self.row_index:
                    return self.row_index[code]
            return None
        return None

    def cells(
        self, row: np.ndarray, level: np.ndarray, scheme: np.ndarray, coef: np.ndarray
    ) -> np.ndarray:
        """Cell id of each case (cases with row < 0 get -1)."""
        n = len(row)
        out = np.full(n, -1, dtype=np.int64)
        ok = row >= 0
        if not ok.any():
            return out
        width = np.array(
            [len(self.rows), len(self.levels), len(self.schemes), max(1, len(self.coefficients))],
            dtype=np.int64,
        )
        key = ((row * width[1] + level) * width[2] + scheme) * width[3] + coef
        uniq, inverse = np.unique(key[ok], return_inverse=True)
        ids = np.empty(len(uniq), dtype=np.int64)
        for j, k in enumerate(uniq.tolist()):
            k, c = divmod(k, int(width[3]))
            k, s = divmod(k, int(width[2]))
            r, lv = divmod(k, int(width[1]))
            ids[j] = self._cell(r, lv, s, c)
        out[ok] = ids[inverse]
        return out

    def rw_scaled(self) -> np.ndarray:
        """RW of each cell × RW_SCALE (for the rw column; 0 when the cell has none). A
        published RW (≤ RW_DECIMALS decimals) is exact; one derived from points (points ÷
        per_rw) is rounded half up to RW_DECIMALS for display, payments use it exactly."""
        return np.array(
            [0 if rw is None else scaled_half_up(rw, RW_DECIMALS) for rw in self.cell_rw],
            dtype=np.int64,
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.array(v, dtype=np.int64) for k, v in self._arrays.items()}

    # ------------------------------------------------------------------ one cell
    def standard(
        self, row: GroupRow, level: str, scheme: str, coefficient: Decimal
    ) -> tuple[Decimal | None, Decimal | None, str]:
        """(exact standard in yuan, RW used, why not) of one cell."""
        p = self.policy
        basic = "basic" in row.classes
        price_level = p.basic_price_level if basic and p.basic_price_level else level
        if p.standard_from == "published":
            return self._published_standard(row, price_level, scheme, coefficient)
        rate = p.rate_for(scheme, price_level)
        if rate is None:
            return None, None, f"no base rate for scheme {scheme}, level {price_level}"
        coef = p.coefficient_for(row, price_level)
        if coef is None:
            return None, None, f"no level coefficient for level {price_level} in row {row.code}"
        rw = row.rw
        if rw is None and row.points is not None:
            rw = _CTX.divide(row.points, p.per_rw)
        if rw is None:
            return None, None, f"the table gives no weight for {row.code}"
        if abs(rw) > LIMIT_RW:
            return None, None, f"the weight of {row.code} ({rw}) is above {LIMIT_RW}"
        hosp = (
            coefficient
            if p.hospital_coefficients and not (basic and not p.basic_hospital_coefficient)
            else Decimal(1)
        )
        std = _CTX.multiply(_CTX.multiply(_CTX.multiply(rw, rate), coef), hosp)
        if abs(std.scaleb(2)) > LIMIT_CENTS:
            # beyond the kernel's exact range: no price rather than a wrong one
            return (
                None,
                None,
                (
                    f"the standard of {row.code} ({std} yuan) is above the limit "
                    f"of {Decimal(LIMIT_CENTS).scaleb(-2)} yuan"
                ),
            )
        return std, rw, ""

    def _published_standard(
        self, row: GroupRow, level: str, scheme: str, coefficient: Decimal
    ) -> tuple[Decimal | None, Decimal | None, str]:
        """The table's own standard of the cell (``[rate] standard = "published"``)."""
        p = self.policy
        std = p.published_for(row, "standard", level, scheme)
        if std is None or std is ...:
            return None, None, f"the table publishes no standard for {row.code} at level {level}"
        if row.rw is None:
            return None, None, f"the table gives no weight for {row.code}"
        basic = "basic" in row.classes
        if p.hospital_coefficients and not (basic and not p.basic_hospital_coefficient):
            std = _CTX.multiply(std, coefficient)
        if abs(std.scaleb(2)) > LIMIT_CENTS:
            return None, None, f"the standard of {row.code} ({std} yuan) is above the limit"
        return std, row.rw, ""

    def _cell(self, r: int, lv: int, s: int, c: int) -> int:
        key = (r, lv, s, c)
        if key in self._cells:
            return self._cells[key]
        p = self.policy
        row = self.rows[r]
        std, rw, why = self.standard(row, self.levels[lv], self.schemes[s], self.coefficients[c])
        a = self._arrays
        cell = len(a["std_g"])
        self._cells[key] = cell
        self.cell_ok.append(why)
        self.cell_rw.append(rw)
        if std is None:
            for name in a:
                a[name].append(0)
            a["low_c"][-1] = NO_LOW
            a["high_c"][-1] = NO_HIGH
            return cell
        cents = std.scaleb(2, _CTX)
        a["std_g"].append(_floor(_CTX.multiply(cents, Decimal(G))))
        # low outliers: cost < ratio·standard  <=>  cost_cents < ceil(ratio·standard·100)
        if p.low is not None:
            threshold = _CTX.multiply(p.low.ratio_for(rw), cents)
            a["low_c"].append(_ceil(threshold))
            if p.low.payment == "by_item":
                low_a, low_b = Decimal(0), p.low.factor
            elif p.low.payment == "standard":
                low_a, low_b = cents, Decimal(0)
            else:  # standard_times
                low_a, low_b = _CTX.multiply(cents, p.low.factor), Decimal(0)
        else:
            a["low_c"].append(NO_LOW)
            low_a, low_b = Decimal(0), Decimal(0)
        if p.high is not None:
            threshold = _CTX.multiply(p.high.ratio_for(rw), cents)
        if p.high is not None and threshold < LIMIT_CENTS:
            a["high_c"].append(_floor(threshold))
            if p.high.payment == "standard_plus_excess":
                # standard + share·(cost − threshold) = (standard − share·threshold) + share·cost
                high_a = _CTX.subtract(cents, _CTX.multiply(p.high.share, threshold))
                high_b = p.high.share
            elif p.high.payment == "by_item":
                high_a, high_b = Decimal(0), p.high.factor
            else:
                high_a, high_b = cents, Decimal(0)
        else:  # no rule, or no cost within LIMIT_CENTS is above its threshold
            a["high_c"].append(NO_HIGH)
            high_a, high_b = Decimal(0), Decimal(0)
        a["low_a"].append(_floor(_CTX.multiply(low_a, Decimal(G))))
        a["low_b"].append(coefficient_units(low_b))
        a["high_a"].append(_floor(_CTX.multiply(high_a, Decimal(G))))
        a["high_b"].append(coefficient_units(high_b))
        # points of a normal case of this cell (points method), scaled by 10^point_decimals
        if p.method == "points":
            basic = "basic" in row.classes
            price_level = p.basic_price_level if basic and p.basic_price_level else self.levels[lv]
            coef = p.coefficient_for(row, price_level) or Decimal(1)
            hosp = (
                self.coefficients[c]
                if p.hospital_coefficients and not (basic and not p.basic_hospital_coefficient)
                else Decimal(1)
            )
            base = row.points if row.points is not None else _CTX.multiply(rw, p.per_rw)
            points = _CTX.multiply(_CTX.multiply(base, coef), hosp)
            a["points"].append(scaled_half_up(points, p.point_decimals))
        else:
            a["points"].append(0)
        return cell

    def points_ratio(self, scheme: int) -> tuple[int, int]:
        """(num, den) with points·10^pd = cents·num/den for outlier cases (points method)."""
        p = self.policy
        ref = p.rate_for(self.schemes[scheme], "*")
        if ref is None:
            return 0, 1
        num = Decimal(p.per_rw).scaleb(p.point_decimals, _CTX)
        den = _CTX.multiply(ref, Decimal(100))
        # make both integers
        scale = max(-num.as_tuple().exponent, -den.as_tuple().exponent, 0)
        n, d = int(num.scaleb(scale, _CTX)), int(den.scaleb(scale, _CTX))
        g = math.gcd(n, d)
        return n // g, d // g


__all__ = ["PriceBook"]
