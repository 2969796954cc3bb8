"""Regional payment policies: a TOML file we design, plus the region's published weights table.

A :class:`Policy` holds every regional choice as a parameter: the method (rate 费率法 or points
点数法), base rates per insurance scheme and hospital level, how the published table is read
(its own column names and flag values), basic, unstable, special-review and uncovered groups,
ungroupable and ambiguous cases, length-of-stay exclusions, low/high outliers (optionally
banded by RW) and their payment formulas, hospital coefficients, the fund/patient split, the
point-value budget and reserve, and the period rules (retention, over-spend sharing, quality
deductions, pre-settlement). Numbers are exact decimals: write them as strings or TOML numbers.

The published table is data of the region, given at run time: ``Policy.from_toml(path,
weights=table)``; a policy names the usual file (``[weights] file``) so a folder of tables
(``DRGKIT_PAYMENT_TABLES``) can supply it. The table is read as published: the policy maps its
columns (standards per level and scheme, thresholds, rates, coefficients, flags), the texts it
uses for "no weight" or "no standard", rows it does not read (with a reason); every figure it
prints is kept on the row (:attr:`GroupRow.figures`) for ``drgkit policies validate``.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from .._money import LIMIT_POOL_CENTS, RW_DECIMALS, yuan
from ..errors import TableError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "Band",
    "Figure",
    "GroupRow",
    "Policy",
    "PolicyError",
    "RwFrom",
    "Special",
    "Weights",
    "policy_decimal",
]

METHODS = ("rate", "points", "dip")
#: How a case outside normal DRG payment is paid.
SPECIAL_METHODS = ("by_item", "rw", "table_row", "standard")
LOW_PAYMENTS = ("by_item", "standard", "standard_times")
HIGH_PAYMENTS = ("standard_plus_excess", "by_item", "standard")
#: The most decimals a policy coefficient (a factor, share or ratio) may have.
MAX_COEFFICIENT_DECIMALS = 6


class PolicyError(TableError):
    """A policy file or a weights table is malformed; names file, row and field."""


def policy_decimal(value: Any, where: str, path: Path | None, *, positive: bool = False) -> Decimal:
    """An exact, finite decimal ≥ 0 (> 0 when ``positive``) from a TOML or CSV value."""
    if (
        isinstance(value, bool)
        or value is None
        or value == ""
        or not isinstance(value, (str, int, float, Decimal))
    ):
        raise PolicyError(f"{where} must be a number, got {value!r}", file=path)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise PolicyError(f"{where} must be a number, got {value!r}", file=path) from None
    if not number.is_finite() or number < 0 or (positive and number == 0):
        raise PolicyError(
            f"{where} must be a {'positive' if positive else 'non-negative'} number, got {value!r}",
            file=path,
        )
    return number


# the short name of the calls in this module (and of the DIP policy parser)
_dec = policy_decimal


def _budget(value: Any, where: str, path: Path | None) -> Decimal:
    """A pool's budget in yuan: at most :data:`LIMIT_POOL_CENTS` (``1e309`` is refused here, not
    met as an overflow in the point value)."""
    number = _dec(value, where, path)
    if number.scaleb(2) > LIMIT_POOL_CENTS:
        raise PolicyError(
            f"{where} is above the limit of {yuan(LIMIT_POOL_CENTS)} yuan, got {value!r}", file=path
        )
    return number


def _coefficient(value: Any, where: str, path: Path | None, limit: int = 10) -> Decimal:
    number = _dec(value, where, path)
    if -number.as_tuple().exponent > MAX_COEFFICIENT_DECIMALS:
        raise PolicyError(
            f"{where} may have at most {MAX_COEFFICIENT_DECIMALS} decimals, got {value!r}",
            file=path,
        )
    if number > limit:
        raise PolicyError(f"{where} must be at most {limit}, got {value!r}", file=path)
    return number


@attrs.frozen(slots=True)
class Band:
    """An outlier threshold ratio that applies to groups with RW below ``rw_below``."""

    ratio: Decimal
    rw_below: Decimal | None = None


@attrs.frozen(slots=True)
class Special:
    """How one kind of case outside normal payment is paid.

    ``by_item``: cost × ``factor`` (按项目); ``rw``: the standard of RW ``rw``;
    ``table_row``: the standard of the table rows named in ``[weights] ungroupable_rows``;
    ``standard``: the group's own standard.
    """

    method: str = "by_item"
    factor: Decimal = Decimal(1)
    rw: Decimal | None = None


@attrs.frozen(slots=True)
class Outlier:
    bands: tuple[Band, ...]
    payment: str
    factor: Decimal = Decimal(1)  # by_item: cost × factor; standard_times: standard × factor
    share: Decimal = Decimal(1)  # standard_plus_excess: of the cost above the threshold

    def ratio_for(self, rw: Decimal) -> Decimal:
        for band in self.bands:
            if band.rw_below is None or rw < band.rw_below:
                return band.ratio
        return self.bands[-1].ratio


#: a published figure of a row: (kind, level, scheme); kind is standard, low, high (outlier
#: thresholds), rate (yuan per RW) or rw_source; level and scheme may be "*" (any)
Figure = tuple[str, str, str]


@attrs.frozen(slots=True)
class RwFrom:
    """The table's RW is derived from another of its columns: RW = column ÷ divisor, rounded
    half up to ``decimals`` (a row without RW carries the divisor itself)."""

    column: str
    divisor: Decimal
    decimals: int


@attrs.frozen(slots=True)
class GroupRow:
    """One row of the published table."""

    code: str
    name: str
    rw: Decimal | None  # None: the table gives no weight (e.g. a group not covered)
    points: Decimal | None
    level_coefficients: Mapping[str, Decimal]
    published: Mapping[str, Decimal]  # published standard per level, when the table has one
    classes: frozenset[str]
    row: int
    #: every published figure of the row by (kind, level, scheme); None: "no figure" (e.g. 0)
    figures: Mapping[Figure, Decimal | None] = attrs.field(factory=dict)


@attrs.frozen(slots=True, eq=False)
class Weights:
    """The published table, read with the policy's column names."""

    path: Path | None
    rows: Mapping[str, GroupRow]
    content_hash: str
    #: the column of each published figure
    columns: Mapping[Figure, str] = attrs.field(factory=dict)
    #: rows the policy does not read, each with its reason (``[weights] ignore_rows``)
    ignored: tuple[str, ...] = ()
    #: rows with missing trailing fields read as empty (``[weights] short_rows = "pad"``)
    padded: tuple[int, ...] = ()
    #: table cells read (codes, weights, coefficients, figures, flags)
    cells_read: int = 0
    rw_from: RwFrom | None = None
    #: levels with a coefficient column in the table
    coefficient_levels: tuple[str, ...] = ()
    #: an empty coefficient cell: "" (the row's other levels decide, else 1), "none" (no
    #: price at that level) or a number ([weights] empty_coefficient)
    empty_coefficient: str = ""


@attrs.frozen(slots=True, eq=False)
class Policy:
    """A regional payment policy (one region and period)."""

    id: str
    name: str
    region: str
    version: str
    method: str
    path: Path | None
    config: Mapping[str, Any]
    effective_from: dt.date | None
    effective_to: dt.date | None
    ruleset: str
    # scheme and level
    schemes: Mapping[str, str]
    default_scheme: str | None
    default_level: str | None
    # prices
    base: Mapping[str, Mapping[str, Decimal]]  # scheme -> level ('*' = any) -> yuan per RW
    level_coefficients: Mapping[str, Decimal]  # used when the table has none
    basic_price_level: str | None
    basic_hospital_coefficient: bool
    hospital_coefficients: bool
    # special cases
    specials: Mapping[str, Special]
    los_min: int | None
    los_max: int | None
    low: Outlier | None
    high: Outlier | None
    # points method
    per_rw: Decimal
    reference_rate: Mapping[str, Decimal]
    reserve: Decimal
    point_decimals: int
    value_decimals: int
    budget: Mapping[str, Decimal]
    # fund and patient
    share_method: str
    fund_ratio: Mapping[str, Decimal]
    weights: Weights
    content_hash: str
    #: the [dip] section (method "dip"), else None
    dip: Any = None
    #: "rw": a standard is RW × rate × coefficients; "published": the table's standard of the
    #: cell (× hospital coefficient), for tables whose RW are rounded from their standards
    standard_from: str = "rw"

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_toml(
        cls,
        path: str | os.PathLike[str],
        *,
        weights: Any = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Policy:
        """Read a policy file; ``weights`` is the published table (path) when the policy
        needs one. ``overrides`` replace values of the file (``{"points.budget.employee":
        "1e9"}``)."""
        path = Path(path)
        try:
            text = path.read_bytes()
            config = tomllib.loads(text.decode("utf-8"))
        except FileNotFoundError:
            raise PolicyError("policy file is missing", file=path) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise PolicyError(f"not a valid TOML file: {exc}", file=path) from None
        for key, value in (overrides or {}).items():
            node = config
            *parents, leaf = key.split(".")
            for k, p in enumerate(parents):
                node = node.setdefault(p, {})
                if not isinstance(node, dict):
                    where = ".".join(parents[: k + 1])
                    raise PolicyError(f"cannot override {key}: {where} is not a table", file=path)
            node[leaf] = value
        return cls.from_config(config, path=path, weights=weights, source=text)

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        path: Path | None = None,
        weights: Any = None,
        source: bytes | None = None,
    ) -> Policy:
        c = _Config(config, path)
        meta = c.table("policy")
        pid = c.str(meta, "id", required=True)
        method = c.str(meta, "method", required=True)
        if method not in METHODS:
            # a method of a scheme a plugin registered (drgkit_register_schemes)
            from .._schemes import schemes

            known = [*METHODS, *(m for s in schemes() for m in s.methods if m not in METHODS)]
            if method not in known:
                raise c.error(f"policy.method must be one of {', '.join(known)}, got {method!r}")
        schemes_t = c.table("schemes")
        schemes = {
            str(k): c.name(v, f"schemes.{k}") for k, v in schemes_t.items() if k != "default"
        }
        default_scheme = c.name(schemes_t.get("default"), "schemes.default")
        levels_t = c.table("levels")
        default_level = c.name(levels_t.get("default"), "levels.default")
        for k, v in c.table(levels_t, "aliases", "levels.aliases").items():
            c.name(v, f"levels.aliases.{k}")
        rate_t = c.table("rate")
        base: dict[str, dict[str, Decimal]] = {}
        for scheme, value in c.table(rate_t, "base", "rate.base").items():
            if isinstance(value, Mapping):
                base[scheme] = {
                    str(lv): _dec(v, f"rate.base.{scheme}.{lv}", path, positive=True)
                    for lv, v in value.items()
                }
            else:
                base[scheme] = {"*": _dec(value, f"rate.base.{scheme}", path, positive=True)}
        level_coefficients = {
            str(k): _dec(v, f"rate.level_coefficients.{k}", path)
            for k, v in c.table(rate_t, "level_coefficients", "rate.level_coefficients").items()
        }
        basic_t = c.table("basic_groups")
        hosp_t = c.table("hospital_coefficients")
        specials = {}
        for kind in (
            "ungroupable",
            "ambiguous",
            "unstable",
            "special_review",
            "not_covered",
            "excluded_stay",
        ):
            spec = c.table(c.table("special"), kind, f"special.{kind}")
            specials[kind] = _special(spec, f"special.{kind}", path)
        excl = c.table("exclusions")
        outliers = c.table("outliers")
        low = _outlier(outliers.get("low"), "outliers.low", path, LOW_PAYMENTS)
        high = _outlier(outliers.get("high"), "outliers.high", path, HIGH_PAYMENTS)
        points_t = c.table("points")
        shares_t = c.table("shares")
        share_method = c.name(shares_t.get("method"), "shares.method") or "claim"
        if share_method not in ("claim", "ratio"):
            raise c.error(f"shares.method must be claim or ratio, got {share_method!r}")
        fund_ratio = {
            str(k): _coefficient(v, f"shares.fund_ratio.{k}", path, limit=1)
            for k, v in c.table(shares_t, "fund_ratio", "shares.fund_ratio").items()
        }
        if share_method == "ratio" and not fund_ratio:
            raise c.error("shares.method = 'ratio' needs shares.fund_ratio per scheme")
        reference_rate = {}
        for scheme, value in c.table(points_t, "reference_rate", "points.reference_rate").items():
            reference_rate[str(scheme)] = _dec(
                value, f"points.reference_rate.{scheme}", path, positive=True
            )
        budget = {
            str(k): _budget(v, f"points.budget.{k}", path)
            for k, v in c.table(points_t, "budget", "points.budget").items()
        }
        standard_from = c.name(rate_t.get("standard"), "rate.standard") or "rw"
        if standard_from not in ("rw", "published"):
            raise c.error(f"rate.standard must be rw or published, got {standard_from!r}")
        if method == "rate" and not base and standard_from == "rw":
            raise c.error("a rate policy needs [rate] base (yuan per RW, per scheme)")
        if method == "points" and not reference_rate:
            raise c.error(
                "a points policy needs points.reference_rate (yuan per RW used to "
                "find outliers and convert their cost into points)"
            )
        weights_t = c.table("weights")
        for key, value in weights_t.items():
            if key.endswith("_rows") and key not in ("ignore_rows", "short_rows"):
                c.list(value, f"weights.{key}", str)
        dip = None
        if method == "dip":
            from ._dip_policy import parse_dip

            # scores come from the DIP catalogue: no published weights table
            dip = parse_dip(config, path, c.error, _dec, _coefficient)
            if not fund_ratio:
                raise c.error(
                    "a dip policy needs shares.fund_ratio per scheme (the fund "
                    "payment ratio: clearing point value = fund ÷ ratio ÷ points)"
                )
            table = Weights(None, {}, "")
        elif method not in METHODS and weights is None and not weights_t:
            table = Weights(None, {}, "")  # a plugin scheme's method that prices no weights
        else:
            table = _read_weights(weights, weights_t, path, pid, c)
        # the hash covers what the policy *is*: the effective configuration (overrides
        # included, so an overridden policy never carries the file's hash) and the table
        digest = hashlib.sha256()
        digest.update(json.dumps(config, sort_keys=True, ensure_ascii=False, default=str).encode())
        digest.update(table.content_hash.encode())
        policy = cls(
            id=pid,
            name=c.str(meta, "name"),
            region=c.str(meta, "region"),
            version=c.str(meta, "version"),
            method=method,
            path=path,
            config=config,
            effective_from=_date(meta.get("effective_from"), c),
            effective_to=_date(meta.get("effective_to"), c),
            ruleset=c.str(meta, "ruleset"),
            schemes=schemes,
            default_scheme=str(default_scheme) if default_scheme else None,
            default_level=str(default_level) if default_level else None,
            base=base,
            level_coefficients=level_coefficients,
            basic_price_level=c.name(basic_t.get("price_level"), "basic_groups.price_level")
            or None,
            basic_hospital_coefficient=c.flag(
                basic_t.get("hospital_coefficient"), "basic_groups.hospital_coefficient"
            ),
            hospital_coefficients=c.flag(hosp_t.get("apply"), "hospital_coefficients.apply"),
            specials=specials,
            los_min=_int(excl.get("los_min"), "exclusions.los_min", c),
            los_max=_int(excl.get("los_max"), "exclusions.los_max", c),
            low=low,
            high=high,
            per_rw=_dec(points_t.get("per_rw", 100), "points.per_rw", path, positive=True),
            reference_rate=reference_rate,
            reserve=_coefficient(points_t.get("reserve", 0), "points.reserve", path, limit=1),
            point_decimals=_int(points_t.get("point_decimals", 4), "points.point_decimals", c),
            value_decimals=_int(points_t.get("value_decimals", 4), "points.value_decimals", c),
            budget=budget,
            share_method=share_method,
            fund_ratio=fund_ratio,
            weights=table,
            content_hash=digest.hexdigest(),
            dip=dip,
            standard_from=standard_from,
        )
        policy._check()
        return policy

    def _check(self) -> None:
        for name, value, limit in (
            ("points.point_decimals", self.point_decimals, 6),
            ("points.value_decimals", self.value_decimals, 6),
        ):
            if not 0 <= value <= limit:
                raise PolicyError(f"{name} must be between 0 and {limit}", file=self.path)
        if self.high is not None and self.low is not None:
            for band in self.low.bands:
                if band.ratio >= min(b.ratio for b in self.high.bands):
                    raise PolicyError(
                        "outliers.low ratio must be below the high ratio", file=self.path
                    )
        if self.standard_from == "published" and not any(
            key[0] == "standard" for key in self.weights.columns
        ):
            raise PolicyError(
                "rate.standard = 'published' needs [weights] published_standards", file=self.path
            )
        for kind, spec in self.specials.items():
            if spec.method == "table_row" and not self.weights_rows("ungroupable"):
                raise PolicyError(
                    f"special.{kind} uses table_row, but [weights] names no ungroupable_rows",
                    file=self.path,
                )

    def weights_rows(self, kind: str) -> list[str]:
        return [str(x) for x in self.config.get("weights", {}).get(f"{kind}_rows", [])]

    # ------------------------------------------------------------------ queries
    @property
    def label(self) -> str:
        return f"{self.id} ({self.name})" if self.name else self.id

    def scheme_of(self, insurance_type: str | None) -> str | None:
        if insurance_type is not None and insurance_type in self.schemes:
            return self.schemes[insurance_type]
        if insurance_type is not None and insurance_type in self.schemes.values():
            return insurance_type
        return self.default_scheme

    def scheme_names(self) -> list[str]:
        names = list(dict.fromkeys(self.schemes.values()))
        if self.default_scheme and self.default_scheme not in names:
            names.append(self.default_scheme)
        extra = (
            tuple(
                s
                for s in (*self.dip.fund, *self.dip.start_point_value, *self.fund_ratio)
                if s != "all"
            )
            if self.dip
            else ()
        )
        for s in (*self.base, *self.reference_rate, *extra):
            if s not in names:
                names.append(s)
        return names

    def rate_for(self, scheme: str, level: str) -> Decimal | None:
        """Yuan per RW (rate method) or the reference rate (points method)."""
        table = (
            self.base
            if self.method == "rate"
            else {s: {"*": r} for s, r in self.reference_rate.items()}
        )
        rates = table.get(scheme)
        if rates is None:
            return None
        return rates.get(level, rates.get("*"))

    def published_for(self, row: GroupRow, kind: str, level: str, scheme: str) -> Any:
        """The row's published figure of a cell: a Decimal, None ("no figure" in the table)
        or ``...`` when the table has no such cell; a level or scheme of ``*`` matches any."""
        for key in (
            (kind, level, scheme),
            (kind, level, "*"),
            (kind, "*", scheme),
            (kind, "*", "*"),
        ):
            if key in row.figures:
                return row.figures[key]
        return ...

    def coefficient_for(self, row: GroupRow, level: str) -> Decimal | None:
        empty = self.weights.empty_coefficient
        if empty and level in self.weights.coefficient_levels:
            # the table has a coefficient column for this level: an empty cell is what the
            # policy says ([weights] empty_coefficient), not the policy's default
            value = row.level_coefficients.get(level)
            if value is not None:
                return value
            return None if empty == "none" else Decimal(empty)
        if row.level_coefficients:
            return row.level_coefficients.get(level)
        if self.level_coefficients:
            return self.level_coefficients.get(level)
        return Decimal(1)


class _Config:
    def __init__(self, config: Mapping[str, Any], path: Path | None) -> None:
        self.config = config
        self.path = path

    def error(self, message: str) -> PolicyError:
        return PolicyError(message, file=self.path)

    def table(
        self, parent: Any, name: str | None = None, where: str | None = None
    ) -> Mapping[str, Any]:
        """The sub-table ``name`` of ``parent`` (of the file when only a name is given); {}
        when it is absent; ``where`` names it in errors (the dotted key)."""
        if name is None:
            parent, name = self.config, parent
        value = parent.get(name, {})
        if not isinstance(value, Mapping):
            raise self.error(f"[{where or name}] must be a table, got {value!r}")
        return value

    def str(self, table: Mapping[str, Any], key: str, required: bool = False) -> str:
        value = table.get(key)
        if value is None:
            if required:
                raise self.error(f"policy.{key} is required")
            return ""
        return self.name(value, f"policy.{key}")

    def name(self, value: Any, where: str) -> str:
        """A text value (a number is taken as its text, as TOML writers differ); "" when absent;
        a table, list, boolean or date is an error naming ``where``."""
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.error(f"{where} must be text, got {value!r}")
        return str(value)

    def flag(self, value: Any, where: str) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.error(f"{where} must be true or false, got {value!r}")
        return value

    def list(self, value: Any, where: str, kind: type | None = None) -> list[Any]:
        """A list ([] when absent), of ``kind`` items when given."""
        if value is None:
            return []
        if not isinstance(value, list) or (
            kind is not None
            and not all(isinstance(x, kind) and not isinstance(x, bool) for x in value)
        ):
            what = f"a list of {'tables' if kind is Mapping else 'text'}" if kind else "a list"
            raise self.error(f"{where} must be {what}, got {value!r}")
        return value


def _date(value: Any, c: _Config) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise c.error(f"dates are YYYY-MM-DD, got {value!r}") from None


def _int(value: Any, where: str, c: _Config) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise c.error(f"{where} must be a whole number, got {value!r}")
    return int(value)


def _special(spec: Mapping[str, Any], where: str, path: Path | None) -> Special:
    method = spec.get("method", "by_item")
    if not isinstance(method, str) or method not in SPECIAL_METHODS:
        raise PolicyError(
            f"{where}.method must be one of {', '.join(SPECIAL_METHODS)}, got {method!r}", file=path
        )
    rw = None
    if method == "rw":
        if "rw" not in spec:
            raise PolicyError(f"{where}.method = 'rw' needs {where}.rw", file=path)
        rw = _dec(spec["rw"], f"{where}.rw", path)
    return Special(method, _coefficient(spec.get("factor", 1), f"{where}.factor", path), rw)


def _outlier(spec: Any, where: str, path: Path | None, payments: tuple[str, ...]) -> Outlier | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise PolicyError(f"[{where}] must be a table", file=path)
    bands: list[Band] = []
    if "bands" in spec:
        raw = spec["bands"]
        if not isinstance(raw, list) or not all(isinstance(b, Mapping) for b in raw):
            raise PolicyError(f"{where}.bands must be a list of tables, got {raw!r}", file=path)
        for k, band in enumerate(raw):
            below = band.get("rw_below")
            bands.append(
                Band(
                    _coefficient(band.get("ratio"), f"{where}.bands[{k}].ratio", path, limit=100),
                    _dec(below, f"{where}.bands[{k}].rw_below", path)
                    if below is not None
                    else None,
                )
            )
        if not bands or bands[-1].rw_below is not None:
            raise PolicyError(f"{where}.bands must end with a band without rw_below", file=path)
    else:
        bands.append(Band(_coefficient(spec.get("ratio"), f"{where}.ratio", path, limit=100)))
    payment = spec.get("payment", payments[0])
    if not isinstance(payment, str) or payment not in payments:
        raise PolicyError(
            f"{where}.payment must be one of {', '.join(payments)}, got {payment!r}", file=path
        )
    return Outlier(
        tuple(bands),
        payment,
        _coefficient(spec.get("factor", 1), f"{where}.factor", path),
        _coefficient(spec.get("share", 1), f"{where}.share", path, limit=1),
    )


def find_table(name: str) -> Path | None:
    """A published table by file name, in ``$DRGKIT_PAYMENT_TABLES`` (os.pathsep-separated)."""
    for folder in os.environ.get("DRGKIT_PAYMENT_TABLES", "").split(os.pathsep):
        if folder and (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def _cell_columns(value: Any, where: str, c: _Config, *, top: str) -> dict[tuple[str, str], str]:
    """(level, scheme) -> column of a published figure. ``top="level"``: ``{level = column}``
    (any scheme) or ``{scheme = {level = column}}``; ``top="scheme"``: ``{scheme = column}``
    (any level) or ``{scheme = {level = column}}``. ``*`` is any level or scheme."""
    out: dict[tuple[str, str], str] = {}
    if value is None:
        return out
    if not isinstance(value, Mapping):
        raise c.error(f"[{where}] must be a table, got {value!r}")
    for key, item in value.items():
        if isinstance(item, Mapping):
            for lv, column in item.items():
                out[(str(lv), str(key))] = c.name(column, f"{where}.{key}.{lv}")
        elif top == "level":
            out[(str(key), "*")] = c.name(item, f"{where}.{key}")
        else:
            out[("*", str(key))] = c.name(item, f"{where}.{key}")
    return out


def _read_weights(
    source: Any, spec: Mapping[str, Any], policy_path: Path | None, pid: str, c: _Config
) -> Weights:
    # every key is checked for its type where it is read: a wrong type names the key and file
    embedded = c.name(spec.get("embedded"), "weights.embedded")
    file_name = c.name(spec.get("file"), "weights.file")
    if source is None and embedded:
        source = (policy_path.parent if policy_path else Path()) / embedded
    if source is None and file_name:
        source = find_table(file_name)
    if source is None:
        hint = f" (usually {file_name})" if file_name else ""
        raise PolicyError(
            f"policy {pid} prices groups from its region's published weights "
            f"table{hint}: give it with --weights FILE, or put the folder of "
            "tables in DRGKIT_PAYMENT_TABLES",
            file=policy_path,
        )
    path = Path(source)
    encoding = c.name(spec.get("encoding"), "weights.encoding") or "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise c.error(f"weights.encoding {encoding!r} is not a known text encoding") from None
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError("weights table is missing", file=path) from None
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise PolicyError(
            f"cannot decode as {encoding}: {exc.reason} (set [weights] encoding)", file=path
        ) from None
    reader = csv.reader(text.lstrip("\ufeff").splitlines())
    header = next(reader, None)
    if not header:
        raise PolicyError("the weights table is empty", file=path, row=1)
    col = {name: k for k, name in enumerate(header)}

    def need(name: str, key: str) -> int:
        if name not in col:
            raise PolicyError(
                f"column {name!r} (from [weights] {key}) is not in the table; "
                f"columns: {', '.join(header)}",
                file=path,
                row=1,
                column=name,
            )
        return col[name]

    def named(key: str, default: str = "") -> str:
        return c.name(spec.get(key), f"weights.{key}") or default

    drg_c = need(named("drg", "DRG编码"), "drg")
    rw_c = need(named("rw"), "rw") if named("rw") else None
    name_c = col.get(named("name", "DRG名称"))
    points_c = need(named("points"), "points") if named("points") else None
    level_cols = {
        str(lv): need(c.name(name, f"weights.level_coefficients.{lv}"), f"level_coefficients.{lv}")
        for lv, name in c.table(spec, "level_coefficients", "weights.level_coefficients").items()
    }
    # published figures, each a (kind, level, scheme) cell of every row
    figure_cols: dict[Figure, int] = {}
    for (lv, sc), name in _cell_columns(
        spec.get("published_standards"), "weights.published_standards", c, top="level"
    ).items():
        figure_cols[("standard", lv, sc)] = need(name, "published_standards")
    thresholds = c.table(spec, "published_thresholds", "weights.published_thresholds")
    for kind, value in thresholds.items():
        if kind not in ("low", "high"):
            raise c.error(f"weights.published_thresholds has low and high, not {kind!r}")
        where = f"weights.published_thresholds.{kind}"
        for (lv, sc), name in _cell_columns(value, where, c, top="level").items():
            figure_cols[(kind, lv, sc)] = need(name, f"published_thresholds.{kind}")
    for (lv, sc), name in _cell_columns(
        spec.get("published_rates"), "weights.published_rates", c, top="scheme"
    ).items():
        figure_cols[("rate", lv, sc)] = need(name, "published_rates")
    rw_from = None
    if "rw_from" in spec:
        rule = c.table(spec, "rw_from", "weights.rw_from")
        rw_from = RwFrom(
            c.name(rule.get("column"), "weights.rw_from.column"),
            _dec(rule.get("divisor"), "weights.rw_from.divisor", policy_path, positive=True),
            _int(rule.get("decimals"), "weights.rw_from.decimals", c) or 0,
        )
        figure_cols[("rw_source", "*", "*")] = need(rw_from.column, "rw_from.column")
    no_standard = set(c.list(spec.get("no_standard_values"), "weights.no_standard_values", str))
    no_weight = {
        str(k): c.name(v, f"weights.no_weight_values.{k}")
        for k, v in c.table(spec, "no_weight_values", "weights.no_weight_values").items()
    }
    class_cols: dict[str, tuple[int, set[str]]] = {}
    flag_known: dict[int, set[str]] = {}
    for cls_name, rule in c.table(spec, "classes", "weights.classes").items():
        where = f"weights.classes.{cls_name}"
        rule = c.table(spec["classes"], cls_name, where)
        column = c.name(rule.get("column"), f"{where}.column")
        if not column:
            raise c.error(f"{where}.column is required (the table column to read)")
        values = c.list(rule.get("values"), f"{where}.values")
        k = need(column, f"classes.{cls_name}.column")
        class_cols[cls_name] = (k, {str(v) for v in values})
        # the column's values that mean no class: when given, any value of the column that
        # no class of the column names either is an error (a flag is never ignored unread)
        if "others" in rule:
            flag_known.setdefault(k, set()).update(
                str(v) for v in c.list(rule.get("others"), f"{where}.others")
            )
    for k in flag_known:
        for kk, vals in class_cols.values():
            if kk == k:
                flag_known[k] |= vals
    ignored_spec: dict[int, tuple[str, str]] = {}
    for k, item in enumerate(c.list(spec.get("ignore_rows"), "weights.ignore_rows", Mapping)):
        where = f"weights.ignore_rows[{k}]"
        row_no = _int(item.get("row"), f"{where}.row", c)
        reason = c.name(item.get("reason"), f"{where}.reason")
        code = c.name(item.get("code"), f"{where}.code")
        if row_no is None or not code or not reason:
            # the code makes a changed table fail loudly instead of skipping another row
            raise c.error(f"{where} needs row, code and reason (why the row is not read)")
        ignored_spec[row_no] = (code, reason)
    empty_coefficient = named("empty_coefficient")
    if empty_coefficient and empty_coefficient != "none":
        _dec(empty_coefficient, "weights.empty_coefficient", policy_path, positive=True)
    short_rows = named("short_rows", "error")
    if short_rows not in ("error", "pad"):
        raise c.error(f"weights.short_rows must be error or pad, got {short_rows!r}")
    if rw_c is None and points_c is None:
        raise PolicyError("[weights] names neither an rw nor a points column", file=policy_path)

    def number(text: str, row: int, column: str) -> Decimal | None:
        text = text.strip()
        if text == "":
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise PolicyError(
                f"not a number: {text!r}", file=path, row=row, column=column
            ) from None
        if not value.is_finite() or value < 0:
            raise PolicyError(
                f"not a non-negative number: {text!r}", file=path, row=row, column=column
            )
        return value

    def weight(values: list[str], k: int | None, row: int, extra: set[str]) -> Decimal | None:
        if k is None:
            return None
        text = values[k].strip()
        if text in no_weight:
            if no_weight[text]:
                extra.add(no_weight[text])
            return None
        value = number(text, row, header[k])
        if k == rw_c and value is not None and -value.as_tuple().exponent > RW_DECIMALS:
            # RW are carried at one scale everywhere (drgkit._money): never rounded here
            raise PolicyError(
                f"{text!r} has more than {RW_DECIMALS} decimals",
                file=path,
                row=row,
                column=header[k],
            )
        return value

    rows: dict[str, GroupRow] = {}
    ignored: list[str] = []
    padded: list[int] = []
    cells = 0
    for n, values in enumerate(reader, start=2):
        if not values or all(v.strip() == "" for v in values):
            continue
        if len(values) < len(header) and short_rows == "pad":
            padded.append(n)
            values = values + [""] * (len(header) - len(values))
        if len(values) != len(header):
            raise PolicyError(
                f"expected {len(header)} fields, found {len(values)}", file=path, row=n
            )
        code = values[drg_c].strip()
        if n in ignored_spec:
            want, reason = ignored_spec.pop(n)
            if code != want:
                raise PolicyError(
                    f"[weights] ignore_rows names group {want} on this row, the table has {code}",
                    file=path,
                    row=n,
                    column=header[drg_c],
                )
            ignored.append(f"row {n} ({code}): {reason}")
            continue
        if not code:
            raise PolicyError("empty group code", file=path, row=n, column=header[drg_c])
        if code in rows:
            raise PolicyError(
                f"group {code} is listed twice (first on row {rows[code].row})",
                file=path,
                row=n,
                column=header[drg_c],
            )
        extra: set[str] = set()
        rw = weight(values, rw_c, n, extra)
        points = weight(values, points_c, n, extra)
        figures: dict[Figure, Decimal | None] = {}
        for key, k in figure_cols.items():
            text = values[k].strip()
            if key[0] != "rw_source" and text in no_standard:
                figures[key] = None  # the table says: no figure for this cell
            elif text != "":
                figures[key] = number(text, n, header[k])
        classes = set(extra)
        for name, (k, vals) in class_cols.items():
            if values[k].strip() in vals:
                classes.add(name)
        for k, known in flag_known.items():
            if values[k].strip() not in known:
                raise PolicyError(
                    f"unknown flag value {values[k].strip()!r} (known: "
                    f"{', '.join(repr(v) for v in sorted(known))}; [weights.classes] others)",
                    file=path,
                    row=n,
                    column=header[k],
                )
        coefficients = {
            lv: v
            for lv, k in level_cols.items()
            if (v := number(values[k], n, header[k])) is not None
        }
        cells += (
            1
            + (rw_c is not None)
            + (points_c is not None)
            + len(figures)
            + len(coefficients)
            + len({k for k, _v in class_cols.values()})
        )
        rows[code] = GroupRow(
            code=code,
            name=values[name_c].strip() if name_c is not None else "",
            rw=rw,
            points=points,
            level_coefficients=coefficients,
            published={
                lv: v
                for (kind, lv, sc), v in figures.items()
                if kind == "standard" and sc == "*" and lv != "*" and v is not None
            },
            classes=frozenset(classes),
            row=n,
            figures=figures,
        )
    if ignored_spec:
        row_no, (want, _reason) = next(iter(ignored_spec.items()))
        raise PolicyError(
            f"[weights] ignore_rows names row {row_no} ({want}), which the table does not have",
            file=path,
        )
    if not rows:
        # a header alone would price nothing: every case would be `not_covered`
        raise PolicyError("the weights table has a header but no group rows", file=path, row=2)
    return Weights(
        path,
        rows,
        hashlib.sha256(raw).hexdigest(),
        columns={key: header[k] for key, k in figure_cols.items()},
        ignored=tuple(ignored),
        padded=tuple(padded),
        cells_read=cells,
        rw_from=rw_from,
        coefficient_levels=tuple(level_cols),
        empty_coefficient=empty_coefficient,
    )
