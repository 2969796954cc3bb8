"""Options of the DIP catalogue builder (``drgkit dip build``), from Python or a TOML
``[build]`` section. Every regional choice of DIP.md §3 is one field here."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from ..errors import TableError

__all__ = ["ATTRIBUTES", "BuildOptions", "BuildOptionsError"]

#: treatment attributes of comprehensive packets, highest first: (key, code suffix, name)
ATTRIBUTES = (
    ("surgery", "SS", "相关手术组"),
    ("therapeutic", "ZL", "治疗性操作组"),
    ("diagnostic", "ZD", "诊断性操作组"),
    ("medical", "NK", "内科诊疗组"),
)
_ATTR_KEYS = tuple(a[0] for a in ATTRIBUTES)
SCORE_METHODS = ("mean", "reference", "fixed")
DIMENSIONS = ("cci", "age", "icu", "death")


class BuildOptionsError(TableError):
    """A ``[build]`` option is missing, of the wrong kind or out of range."""


def _fraction(value: Any) -> Fraction:
    """Exact ratio from an int, a decimal text ('0.1', '10%') or a float written in TOML."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    text = str(value).strip()
    percent = text.endswith("%")
    try:
        out = Fraction(Decimal(text[:-1] if percent else text))
    except (InvalidOperation, ValueError):
        raise ValueError(f"not a number: {value!r}") from None
    return out / 100 if percent else out


def _opt_fraction(value: Any) -> Fraction | None:
    return None if value is None else _fraction(value)


def _share(_inst, attribute, value: Fraction | None) -> None:
    if value is not None and not 0 <= value <= 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value}")


def _positive(_inst, attribute, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a whole number >= 1, got {value!r}")


def _weights(value: Any) -> tuple[int, ...]:
    out = tuple(value)
    if not out or any(
        isinstance(w, bool) or not isinstance(w, int) or not 1 <= w < 2**16 for w in out
    ):
        raise ValueError(f"year_weights must be whole numbers 1..65535, got {value!r}")
    return out


def _attributes(value: Any) -> Mapping[str, str]:
    out = {str(k).strip().upper(): str(v).strip() for k, v in dict(value).items()}
    bad = {k: v for k, v in out.items() if v not in _ATTR_KEYS}
    if bad:
        raise ValueError(f"procedure attributes must be one of {_ATTR_KEYS}, got {bad}")
    return MappingProxyType(out)


@attrs.frozen(slots=True)
class BuildOptions:
    """How a local catalogue is built. Ratios are exact (``Fraction``; texts such as ``"0.1"``
    or ``"10%"`` are accepted)."""

    #: core packet case-count threshold n (a combination with >= n cases is core)
    min_cases: int = attrs.field(default=15, validator=_positive)
    #: if set, n is instead the largest n at which (dx, principal) combinations with >= n
    #: cases cover at least this share of the valid cases
    coverage: Fraction | None = attrs.field(default=None, converter=_opt_fraction, validator=_share)
    #: a related procedure set stays its own packet when |m_rel − m_base| >= this × m_base
    related_split: Fraction = attrs.field(
        default=Fraction(1, 10), converter=_fraction, validator=_share
    )
    score_method: str = attrs.field(default="mean", validator=attrs.validators.in_(SCORE_METHODS))
    reference_packet: str | None = None
    #: fixed-quota method: the fixed M in yuan
    fixed_mean: Fraction | None = attrs.field(default=None, converter=_opt_fraction)
    scale: int = attrs.field(default=1000, validator=attrs.validators.in_((1, 100, 1000)))
    #: at most 6: the catalogue format's scores have at most 6 decimals
    score_decimals: int = attrs.field(default=4, validator=attrs.validators.in_(range(7)))
    #: oldest -> newest; with fewer years than weights the newest years take the last ones
    year_weights: tuple[int, ...] = attrs.field(default=(1, 2, 7), converter=_weights)
    trim_share: Fraction = attrs.field(
        default=Fraction(25, 1000), converter=_fraction, validator=_share
    )
    trim_min_cases: int = attrs.field(default=25, validator=_positive)
    procedure_attributes: Mapping[str, str] = attrs.field(factory=dict, converter=_attributes)
    #: attribute of a principal procedure missing from the dictionary
    unknown_attribute: str = attrs.field(
        default="medical", validator=attrs.validators.in_(_ATTR_KEYS)
    )
    #: a case whose principal procedure has one of these attributes in the dictionary counts
    #: as conservative (no procedure, related procedures ignored), as the catalogue format's
    #: conservative rows do (FORMAT.md §4; the format's default is medical|diagnostic)
    conservative_attributes: tuple[str, ...] = attrs.field(
        default=("medical", "diagnostic"),
        converter=tuple,
        validator=attrs.validators.deep_iterable(attrs.validators.in_(_ATTR_KEYS)),
    )
    blank_packet: bool = True
    blank_code: str = "KBBZ"
    primary_care_cv: Fraction = attrs.field(default=Fraction(7, 10), converter=_fraction)
    primary_care_level1_share: Fraction = attrs.field(
        default=Fraction(1, 2), converter=_fraction, validator=_share
    )
    aux_dimensions: tuple[str, ...] = attrs.field(
        default=DIMENSIONS,
        converter=tuple,
        validator=attrs.validators.deep_iterable(attrs.validators.in_(DIMENSIONS)),
    )
    aux_min_cases: int = attrs.field(default=50, validator=_positive)
    aux_min_band_cases: int = attrs.field(default=10, validator=_positive)
    aux_cv_cut: Fraction = attrs.field(
        default=Fraction(1, 5), converter=_fraction, validator=_share
    )
    coefficient_decimals: int = attrs.field(default=4, validator=attrs.validators.in_(range(7)))
    death_codes: tuple[str, ...] = attrs.field(default=("5",), converter=tuple)

    def __attrs_post_init__(self) -> None:
        if self.score_method == "reference" and not self.reference_packet:
            raise ValueError("score_method 'reference' needs reference_packet")
        if self.score_method == "fixed" and (self.fixed_mean is None or self.fixed_mean <= 0):
            raise ValueError("score_method 'fixed' needs fixed_mean > 0 (yuan)")

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> BuildOptions:
        """Options from the ``[build]`` section of a TOML file. ``procedure_attributes`` may
        be an inline table or the path (relative to the TOML file) of a CSV with columns
        ``procedure,attribute``."""
        import tomllib

        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BuildOptionsError(f"cannot read: {exc}", file=path) from None
        section = data.get("build")
        if not isinstance(section, dict):
            raise BuildOptionsError("no [build] section", file=path)
        section = dict(section)
        attrs_value = section.get("procedure_attributes")
        if isinstance(attrs_value, str):
            section["procedure_attributes"] = _read_attributes(path.parent / attrs_value)
        known = {f.name for f in attrs.fields(cls)}
        for key in section:
            if key not in known:
                raise BuildOptionsError(f"unknown option {key!r}", file=path, column=f"build.{key}")
        if "year_weights" in section:
            section["year_weights"] = tuple(section["year_weights"])
        try:
            return cls(**section)
        except (TypeError, ValueError) as exc:
            raise BuildOptionsError(str(exc), file=path, column="build") from None


def _read_attributes(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or not {"procedure", "attribute"} <= set(
                reader.fieldnames
            ):
                raise BuildOptionsError("needs columns procedure,attribute", file=path, row=1)
            for line, rec in enumerate(reader, start=2):
                code = (rec["procedure"] or "").strip().upper()
                value = (rec["attribute"] or "").strip()
                if value not in _ATTR_KEYS:
                    raise BuildOptionsError(
                        f"attribute must be one of {_ATTR_KEYS}",
                        file=path,
                        row=line,
                        column="attribute",
                    )
                if code in out:
                    raise BuildOptionsError(
                        f"procedure {code!r} appears twice", file=path, row=line, column="procedure"
                    )
                out[code] = value
    except OSError as exc:
        raise BuildOptionsError(f"cannot read: {exc}", file=path) from None
    return out
