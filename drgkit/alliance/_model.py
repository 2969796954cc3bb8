"""The alliance model: alliances, members and split rules, from a TOML file.

::

    id = "demo-alliance"                 # the model's id (default: the file name)
    name = "示例县域医共体"
    volume = "cases"                     # service volume: "cases" (settled cases) or "rw" (Σ RW)
    members_file = "members.csv"         # optional: alliance_id,hospital_id,level,role,
                                         # coefficient (coefficient may be empty)

    [coefficients]                       # contribution coefficient by level, for members
    "3" = "1.2"                          # without their own
    "1" = "0.8"

    [referral]
    up_referrer_share = "0.3"            # 上转: the referrer's share of the episode payment
    down_sender_share = "0.5"            # 下转: the sender's share of the surplus
    down_share_losses = false            # a loss stays with the receiving member

    [package]                            # needed when an alliance has a budget
    retention = [{ up_to = "0.10", keep = "1" }, { keep = "0.5" }]
    overspend = [{ up_to = "0.10", fund_share = "0.5" }, { fund_share = "0" }]
    share_by = "coefficient_volume"      # or "claims"

    [[alliances]]
    id = "A1"
    name = "第一医共体"
    basis = "capitation"                 # or "payments" (then budget = "…" is optional)
    enrolled = 120000
    per_person = "850.00"
    members = [
      { hospital_id = "H001", level = 3, role = "lead" },
      { hospital_id = "H101", level = 1, coefficient = "0.8" },
    ]
    [[alliances.shared_costs]]
    name = "采购平台"
    amount = "120000.00"
    members = ["H001", "H101"]           # optional: default every member
    [[alliances.joint_services]]
    name = "远程会诊"
    revenue = "50000.00"
    lead_share = "0.6"                   # or shares = { H001 = "0.6", H101 = "0.4" }
    [[alliances.cost_increases]]
    name = "耗材涨价"
    amount = "30000.00"
    member_share = "0.5"

Levels are integers (1 = primary / 基层, 2 = secondary, 3 = tertiary; higher is "up"). Each
alliance has exactly one member with ``role = "lead"``. Amounts are yuan with at most two
decimals (given as strings, so nothing passes through a float); ratios have at most six
decimals. Every mistake raises :class:`AllianceError` naming the file, and for the members file
the row and column.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from .._money import LIMIT_CENTS, OK, SUB_CENT, TOO_LARGE, cents_of, yuan
from ..errors import TableError
from ..settlement._period import (
    OverspendBand,
    PeriodRules,
    RetentionBand,
    period_bands,
    period_ratio,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "Alliance",
    "AllianceError",
    "AllianceModel",
    "AllianceRules",
    "Cooperation",
    "CostIncrease",
    "JointService",
    "Member",
    "SharedCost",
    "SynergyFund",
    "builtin_models",
    "load_model",
]

ROLES = ("lead", "member")
VOLUMES = ("cases", "rw")
SHARE_BY = ("coefficient_volume", "claims")
BASES = ("payments", "capitation")
_TOP_KEYS = (
    "id",
    "name",
    "volume",
    "members_file",
    "coefficients",
    "referral",
    "package",
    "alliances",
    "cooperation",
    "synergy_fund",
)
_ALLIANCE_KEYS = (
    "id",
    "name",
    "basis",
    "budget",
    "enrolled",
    "per_person",
    "members",
    "shared_costs",
    "joint_services",
    "cost_increases",
)
_MEMBER_COLUMNS = ("alliance_id", "hospital_id", "level", "role", "coefficient")


class AllianceError(TableError):
    """An alliance model or its members file is malformed; names file, row and field."""


# --------------------------------------------------------------------------- model


@attrs.frozen(slots=True)
class Member:
    hospital_id: str
    level: int
    role: str
    coefficient: Decimal


@attrs.frozen(slots=True)
class SharedCost:
    """A common cost, allocated by coefficient × volume over ``members`` (None: all)."""

    name: str
    amount: int  # cents
    members: tuple[str, ...] | None = None


@attrs.frozen(slots=True)
class JointService:
    """Joint-service revenue: the lead takes ``lead_share`` and ``members`` (None: every other
    member) the rest by coefficient × volume; or explicit ``shares`` (hospital id, ratio)."""

    name: str
    revenue: int  # cents
    lead_share: Decimal | None = None
    members: tuple[str, ...] | None = None
    shares: tuple[tuple[str, Decimal], ...] | None = None


@attrs.frozen(slots=True)
class CostIncrease:
    """A cost increase shared between the members (``member_share``) and the suppliers."""

    name: str
    amount: int  # cents
    member_share: Decimal


@attrs.frozen(slots=True)
class Alliance:
    id: str
    members: tuple[Member, ...]  # sorted by hospital id
    basis: str = "payments"
    name: str = ""
    budget: int | None = None  # cents; capitation: enrolled × per_person
    enrolled: int | None = None
    per_person: int | None = None  # cents
    shared_costs: tuple[SharedCost, ...] = ()
    joint_services: tuple[JointService, ...] = ()
    cost_increases: tuple[CostIncrease, ...] = ()

    @property
    def lead(self) -> Member:
        return next(m for m in self.members if m.role == "lead")


@attrs.frozen(slots=True)
class AllianceRules:
    up_referrer_share: Decimal = Decimal("0.3")
    down_sender_share: Decimal = Decimal("0.5")
    down_share_losses: bool = False
    volume: str = "cases"
    share_by: str = "coefficient_volume"
    #: retention and over-spend bands of the package (None: no alliance may have a budget)
    package: PeriodRules | None = None
    #: ``[cooperation]``: coefficient uplift of members meeting cooperation targets
    cooperation: Cooperation | None = None
    #: ``[synergy_fund]``: the share of the kept package surplus set aside for cooperation
    synergy_fund: SynergyFund | None = None


@attrs.frozen(slots=True)
class Cooperation:
    """A member meets the cooperation targets when its referral rate (its cases in an up or
    down link between members, as child or parent, ÷ its cases) is at least
    ``referral_rate_min`` and, when ``shared_results``, it shares results (互认); it is then paid
    ``uplift`` more: ``half_up(max(claims, 0) × uplift)`` (its coefficient × (1 + uplift))."""

    referral_rate_min: Decimal
    uplift: Decimal
    shared_results: bool = False


@attrs.frozen(slots=True)
class SynergyFund:
    """``share`` of an alliance's kept package surplus, ``half_up(kept × share)``, is set aside
    (taken from the members' package adjustments by their positive parts) and paid out by
    ``split_by`` (``referrals``, ``coefficient_volume`` or ``equal``); cents left by the split
    go by ``remainder``: ``"largest"`` (largest remainder) or to one member (``"lead"`` or a
    hospital id)."""

    share: Decimal
    split_by: str = "referrals"
    remainder: str = "largest"


@attrs.frozen(slots=True)
class AllianceModel:
    id: str
    alliances: tuple[Alliance, ...]  # sorted by id
    rules: AllianceRules = AllianceRules()
    name: str = ""
    path: Path | None = None
    content_hash: str = ""

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AllianceModel:
        """Read and validate a model TOML file (and its members file)."""
        path = Path(path)
        try:
            with open(path, "rb") as fh:
                config = tomllib.load(fh)
        except FileNotFoundError:
            raise AllianceError("no such alliance model file", file=path) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise AllianceError(f"not valid TOML (UTF-8): {exc}", file=path) from None
        except OSError as exc:
            raise AllianceError(
                f"cannot read the model file: {exc.strerror or exc}", file=path
            ) from None
        return cls.from_config(config, path=path)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, path: Path | None = None) -> AllianceModel:
        """Validate a model given as a mapping (as read from TOML)."""
        return _build(config, path)

    @classmethod
    def of(
        cls,
        alliances: Sequence[Alliance],
        rules: AllianceRules | None = None,
        *,
        id: str = "alliances",
    ) -> AllianceModel:
        """A model built in Python (checked like a file); its hash covers every field."""
        model = cls(id, tuple(sorted(alliances, key=lambda a: a.id)), rules or AllianceRules())
        _check_model(model, None)
        return attrs.evolve(model, content_hash=_hash_of(_canonical(model)))

    def alliance_of(self) -> dict[str, str]:
        """hospital id -> alliance id."""
        return {m.hospital_id: a.id for a in self.alliances for m in a.members}


# --------------------------------------------------------------------------- parsing


def _err(
    message: str, path: Any, row: int | None = None, column: str | None = None
) -> AllianceError:
    return AllianceError(message, file=path, row=row, column=column)


def _no_other_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str, path: Any) -> None:
    for key in table:
        if key not in allowed:
            raise _err(f"{where} has an unknown key {key!r} (expected {', '.join(allowed)})", path)


def _text(value: Any, where: str, path: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _err(f"{where} must be a non-empty text, got {value!r}", path)
    return value.strip()


def _ratio(
    value: Any,
    where: str,
    path: Any,
    *,
    limit: Decimal = Decimal(1),
    positive: bool = False,
    row: int | None = None,
    column: str | None = None,
) -> Decimal:
    """An exact decimal in [0, limit] with at most six decimals (the policy files' rule)."""
    try:
        return period_ratio(value, where, path, limit=limit, positive=positive)
    except TableError as exc:
        raise _err(exc.message, path, row, column) from None


def _cents(value: Any, where: str, path: Any) -> int:
    """Yuan -> exact cents (≥ 0); a float is refused unless it is a whole number of yuan."""
    if isinstance(value, float) and not value.is_integer():
        raise _err(f'{where}: write amounts as text ("1234.56"), not as a float {value!r}', path)
    cents, flag = cents_of(value)
    if flag == SUB_CENT:
        raise _err(f"{where} has fractions of a cent: {value!r}", path)
    if flag == TOO_LARGE:
        raise _err(f"{where} is above the limit of {yuan(LIMIT_CENTS)} yuan: {value!r}", path)
    if flag != OK or cents < 0:
        raise _err(f"{where} must be a non-negative amount in yuan, got {value!r}", path)
    return cents


def _level(
    value: Any, where: str, path: Any, row: int | None = None, column: str | None = None
) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 9:
        raise _err(
            f"{where} must be a level from 1 (primary) to 9, got {value!r}", path, row, column
        )
    return value


def _member(
    raw: Mapping[str, Any],
    where: str,
    path: Any,
    coefficients: Mapping[int, Decimal],
    row: int | None = None,
) -> Member:
    def col(name: str) -> str | None:
        return name if row is not None else None

    hospital = raw.get("hospital_id")
    if not isinstance(hospital, str) or not hospital.strip():
        raise _err(
            f"{where}.hospital_id must be a non-empty text, got {hospital!r}",
            path,
            row,
            col("hospital_id"),
        )
    level = _level(raw.get("level"), f"{where}.level", path, row, col("level"))
    role = raw.get("role") or "member"
    if role not in ROLES:
        raise _err(
            f"{where}.role must be one of {', '.join(ROLES)}, got {role!r}", path, row, col("role")
        )
    coefficient = raw.get("coefficient")
    if coefficient is None or coefficient == "":
        if level not in coefficients:
            raise _err(
                f"{where} has no coefficient and [coefficients] has none for level {level}",
                path,
                row,
                col("coefficient"),
            )
        value = coefficients[level]
    else:
        value = _ratio(
            coefficient,
            f"{where}.coefficient",
            path,
            limit=Decimal(100),
            positive=True,
            row=row,
            column=col("coefficient"),
        )
    return Member(hospital.strip(), level, role, value)


def _read_members_file(file: Path, coefficients: Mapping[int, Decimal]) -> dict[str, list[Member]]:
    try:
        with open(file, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            for needed in ("alliance_id", "hospital_id", "level"):
                if needed not in header:
                    raise _err(
                        f"the members file has no {needed!r} column (columns: "
                        f"{', '.join(_MEMBER_COLUMNS)})",
                        file,
                        1,
                        needed,
                    )
            for name in header:
                if name not in _MEMBER_COLUMNS:
                    raise _err(
                        f"unknown column {name!r} (expected {', '.join(_MEMBER_COLUMNS)})",
                        file,
                        1,
                        name,
                    )
            out: dict[str, list[Member]] = {}
            for row in reader:
                row_no = reader.line_num
                if None in row:
                    raise _err(
                        f"the row has {len(row[None])} more field(s) than the header", file, row_no
                    )
                alliance = (row.get("alliance_id") or "").strip()
                if not alliance:
                    raise _err("alliance_id is empty", file, row_no, "alliance_id")
                raw = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
                out.setdefault(alliance, []).append(
                    _member(raw, "member", file, coefficients, row=row_no)
                )
            return out
    except FileNotFoundError:
        raise _err("no such members file", file) from None
    except UnicodeDecodeError as exc:
        raise _err(f"not UTF-8 text: {exc}", file) from None
    except OSError as exc:
        raise _err(f"cannot read the members file: {exc.strerror or exc}", file) from None


def _names(value: Any, where: str, path: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise _err(f"{where} must be a non-empty list of hospital ids", path)
    return tuple(v.strip() for v in value)


def _items(raw: Any, where: str, path: Any) -> list[Mapping[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(x, Mapping) for x in raw):
        raise _err(f"{where} must be an array of tables ([[{where}]])", path)
    return raw


def _alliance(
    raw: Any,
    k: int,
    path: Any,
    coefficients: Mapping[int, Decimal],
    from_file: Mapping[str, list[Member]],
) -> Alliance:
    where = f"alliances[{k}]"
    if not isinstance(raw, Mapping):
        raise _err(f"{where} must be a table", path)
    _no_other_keys(raw, _ALLIANCE_KEYS, where, path)
    aid = _text(raw.get("id"), f"{where}.id", path)
    where = f"alliance {aid!r}"
    basis = raw.get("basis", "payments")
    if basis not in BASES:
        raise _err(f"{where}: basis must be one of {', '.join(BASES)}, got {basis!r}", path)
    members: list[Member] = []
    inline = raw.get("members")
    if inline is not None:
        if not isinstance(inline, list) or not all(isinstance(m, Mapping) for m in inline):
            raise _err(f"{where}: members must be a list of tables", path)
        for j, m in enumerate(inline):
            _no_other_keys(m, _MEMBER_COLUMNS[1:], f"{where}.members[{j}]", path)
            members.append(_member(m, f"{where}.members[{j}]", path, coefficients))
    members.extend(from_file.get(aid, ()))
    enrolled = per_person = budget = None
    if basis == "capitation":
        for key in ("enrolled", "per_person"):
            if key not in raw:
                raise _err(f"{where}: a capitation alliance needs {key}", path)
        if "budget" in raw:
            raise _err(f"{where}: a capitation budget is enrolled × per_person; drop budget", path)
        enrolled = raw["enrolled"]
        if isinstance(enrolled, bool) or not isinstance(enrolled, int) or enrolled < 0:
            raise _err(
                f"{where}: enrolled must be a whole number of persons, got {enrolled!r}", path
            )
        per_person = _cents(raw["per_person"], f"{where}.per_person", path)
        budget = enrolled * per_person
        if budget > LIMIT_CENTS:
            raise _err(f"{where}: the budget enrolled × per_person is too large", path)
    else:
        for key in ("enrolled", "per_person"):
            if key in raw:
                raise _err(f'{where}: {key} is only for basis = "capitation"', path)
        if "budget" in raw:
            budget = _cents(raw["budget"], f"{where}.budget", path)

    shared = []
    for j, item in enumerate(_items(raw.get("shared_costs"), f"{where}.shared_costs", path)):
        here = f"{where}.shared_costs[{j}]"
        _no_other_keys(item, ("name", "amount", "members"), here, path)
        shared.append(
            SharedCost(
                _text(item.get("name"), f"{here}.name", path),
                _cents(item.get("amount"), f"{here}.amount", path),
                _names(item.get("members"), f"{here}.members", path),
            )
        )
    joint = []
    for j, item in enumerate(_items(raw.get("joint_services"), f"{where}.joint_services", path)):
        here = f"{where}.joint_services[{j}]"
        _no_other_keys(item, ("name", "revenue", "lead_share", "members", "shares"), here, path)
        shares = item.get("shares")
        lead_share = item.get("lead_share")
        if (shares is None) == (lead_share is None):
            raise _err(f"{here} needs either lead_share or shares", path)
        parsed_shares = None
        if shares is not None:
            if not isinstance(shares, Mapping) or not shares:
                raise _err(f"{here}.shares must be a table {{ hospital_id = ratio }}", path)
            if "members" in item:
                raise _err(f"{here}: members goes with lead_share, not with shares", path)
            parsed_shares = tuple(
                sorted((str(h), _ratio(v, f"{here}.shares.{h}", path)) for h, v in shares.items())
            )
            if sum(v for _h, v in parsed_shares) != 1:
                raise _err(
                    f"{here}.shares must add up to 1, they add up to "
                    f"{sum(v for _h, v in parsed_shares)}",
                    path,
                )
        joint.append(
            JointService(
                _text(item.get("name"), f"{here}.name", path),
                _cents(item.get("revenue"), f"{here}.revenue", path),
                None if lead_share is None else _ratio(lead_share, f"{here}.lead_share", path),
                _names(item.get("members"), f"{here}.members", path),
                parsed_shares,
            )
        )
    increases = []
    for j, item in enumerate(_items(raw.get("cost_increases"), f"{where}.cost_increases", path)):
        here = f"{where}.cost_increases[{j}]"
        _no_other_keys(item, ("name", "amount", "member_share"), here, path)
        if "member_share" not in item:
            raise _err(f"{here}.member_share is required", path)
        increases.append(
            CostIncrease(
                _text(item.get("name"), f"{here}.name", path),
                _cents(item.get("amount"), f"{here}.amount", path),
                _ratio(item["member_share"], f"{here}.member_share", path),
            )
        )
    name = raw.get("name", "")
    if not isinstance(name, str):
        raise _err(f"{where}.name must be a text", path)
    return Alliance(
        aid,
        tuple(sorted(members, key=lambda m: m.hospital_id)),
        basis,
        name,
        budget,
        enrolled,
        per_person,
        tuple(shared),
        tuple(joint),
        tuple(increases),
    )


def _build(config: Mapping[str, Any], path: Path | None) -> AllianceModel:
    if not isinstance(config, Mapping):
        raise _err("an alliance model must be a table", path)
    _no_other_keys(config, _TOP_KEYS, "the model", path)
    model_id = config.get("id", path.stem if path is not None else None)
    model_id = _text(model_id, "id", path)
    volume = config.get("volume", "cases")
    if volume not in VOLUMES:
        raise _err(f"volume must be one of {', '.join(VOLUMES)}, got {volume!r}", path)

    coefficients: dict[int, Decimal] = {}
    raw_coef = config.get("coefficients", {})
    if not isinstance(raw_coef, Mapping):
        raise _err("[coefficients] must be a table { level = coefficient }", path)
    for level, value in raw_coef.items():
        lv = _level(level, f"coefficients key {level!r}", path)
        if lv in coefficients:
            raise _err(f"[coefficients] gives level {lv} twice", path)
        coefficients[lv] = _ratio(
            value, f"coefficients.{level}", path, limit=Decimal(100), positive=True
        )

    referral = config.get("referral", {})
    if not isinstance(referral, Mapping):
        raise _err("[referral] must be a table", path)
    _no_other_keys(
        referral,
        ("up_referrer_share", "down_sender_share", "down_share_losses"),
        "[referral]",
        path,
    )
    losses = referral.get("down_share_losses", False)
    if not isinstance(losses, bool):
        raise _err(f"referral.down_share_losses must be true or false, got {losses!r}", path)

    package = config.get("package")
    rules_pkg = None
    share_by = "coefficient_volume"
    if package is not None:
        if not isinstance(package, Mapping):
            raise _err("[package] must be a table", path)
        _no_other_keys(package, ("retention", "overspend", "share_by"), "[package]", path)
        share_by = package.get("share_by", share_by)
        if share_by not in SHARE_BY:
            raise _err(
                f"package.share_by must be one of {', '.join(SHARE_BY)}, got {share_by!r}", path
            )
        try:
            retention = tuple(
                RetentionBand(u, s)
                for u, s in period_bands(
                    package.get("retention"), "keep", "package.retention", path
                )
            )
            overspend = tuple(
                OverspendBand(u, s)
                for u, s in period_bands(
                    package.get("overspend"), "fund_share", "package.overspend", path
                )
            )
        except TableError as exc:
            raise _err(exc.message, path) from None
        rules_pkg = PeriodRules(retention, overspend)

    rules = AllianceRules(
        _ratio(referral.get("up_referrer_share", "0.3"), "referral.up_referrer_share", path),
        _ratio(referral.get("down_sender_share", "0.5"), "referral.down_sender_share", path),
        losses,
        volume,
        share_by,
        rules_pkg,
        _cooperation(config.get("cooperation"), path),
        _synergy(config.get("synergy_fund"), path),
    )

    from_file: dict[str, list[Member]] = {}
    digest = hashlib.sha256()
    members_file = config.get("members_file")
    if members_file is not None:
        file = Path(_text(members_file, "members_file", path))
        if not file.is_absolute() and path is not None:
            file = path.parent / file
        from_file = _read_members_file(file, coefficients)
        digest.update(file.read_bytes())

    raw_alliances = config.get("alliances")
    if not isinstance(raw_alliances, list) or not raw_alliances:
        raise _err("the model needs at least one [[alliances]] table", path)
    alliances = [
        _alliance(a, k, path, coefficients, from_file) for k, a in enumerate(raw_alliances)
    ]
    declared = {a.id for a in alliances}
    for aid in from_file:
        if aid not in declared:
            raise _err(
                f"the members file names alliance {aid!r}, which has no [[alliances]] table", path
            )
    name = config.get("name", "")
    if not isinstance(name, str):
        raise _err("name must be a text", path)
    model = AllianceModel(model_id, tuple(sorted(alliances, key=lambda a: a.id)), rules, name, path)
    _check_model(model, path)
    digest.update(_canonical(model).encode())
    return attrs.evolve(model, content_hash=digest.hexdigest()[:16])


SYNERGY_SPLITS = ("referrals", "coefficient_volume", "equal")


def _cooperation(spec: Any, path: Any) -> Cooperation | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise _err("[cooperation] must be a table", path)
    _no_other_keys(spec, ("referral_rate_min", "uplift", "shared_results"), "[cooperation]", path)
    for key in ("referral_rate_min", "uplift"):
        if key not in spec:
            raise _err(f"cooperation.{key} is required", path)
    shared = spec.get("shared_results", False)
    if not isinstance(shared, bool):
        raise _err(f"cooperation.shared_results must be true or false, got {shared!r}", path)
    return Cooperation(
        _ratio(spec["referral_rate_min"], "cooperation.referral_rate_min", path),
        _ratio(spec["uplift"], "cooperation.uplift", path),
        shared,
    )


def _synergy(spec: Any, path: Any) -> SynergyFund | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise _err("[synergy_fund] must be a table", path)
    _no_other_keys(spec, ("share", "split_by", "remainder"), "[synergy_fund]", path)
    if "share" not in spec:
        raise _err("synergy_fund.share is required", path)
    split_by = spec.get("split_by", "referrals")
    if split_by not in SYNERGY_SPLITS:
        raise _err(
            f"synergy_fund.split_by must be one of {', '.join(SYNERGY_SPLITS)}, got {split_by!r}",
            path,
        )
    remainder = spec.get("remainder", "largest")
    if not isinstance(remainder, str) or not remainder:
        raise _err("synergy_fund.remainder must be 'largest', 'lead' or a hospital id", path)
    return SynergyFund(_ratio(spec["share"], "synergy_fund.share", path), split_by, remainder)


def _check_values(model: AllianceModel, path: Any) -> None:
    """The value checks of the file reader, for models built in Python."""
    rules = model.rules
    for name in ("up_referrer_share", "down_sender_share"):
        _ratio(getattr(rules, name), f"referral.{name}", path)
    for name, allowed in (("volume", VOLUMES), ("share_by", SHARE_BY)):
        if getattr(rules, name) not in allowed:
            raise _err(
                f"{name} must be one of {', '.join(allowed)}, got {getattr(rules, name)!r}", path
            )
    for a in model.alliances:
        where = f"alliance {a.id!r}"
        if a.basis not in BASES:
            raise _err(f"{where}: basis must be one of {', '.join(BASES)}", path)
        if a.basis == "capitation" and (
            a.enrolled is None or a.per_person is None or a.budget != a.enrolled * a.per_person
        ):
            raise _err(f"{where}: a capitation budget is enrolled × per_person", path)
        for m in a.members:
            _level(m.level, f"{where} member {m.hospital_id!r} level", path)
            if m.role not in ROLES:
                raise _err(
                    f"{where} member {m.hospital_id!r}: role must be one of {', '.join(ROLES)}",
                    path,
                )
            _ratio(
                m.coefficient,
                f"{where} member {m.hospital_id!r} coefficient",
                path,
                limit=Decimal(100),
                positive=True,
            )
        amounts = [("budget", a.budget)] + [
            (f"shared cost {c.name!r}", c.amount) for c in a.shared_costs
        ]
        amounts += [(f"joint service {j.name!r}", j.revenue) for j in a.joint_services]
        amounts += [(f"cost increase {c.name!r}", c.amount) for c in a.cost_increases]
        for what, cents in amounts:
            if cents is not None and (
                isinstance(cents, bool)
                or not isinstance(cents, int)
                or not 0 <= cents <= LIMIT_CENTS
            ):
                raise _err(
                    f"{where}: {what} must be a whole number of cents from 0 to "
                    f"{LIMIT_CENTS}, got {cents!r}",
                    path,
                )
        for j in a.joint_services:
            if (j.lead_share is None) == (j.shares is None):
                raise _err(
                    f"{where} joint service {j.name!r} needs either lead_share or shares", path
                )
            if j.lead_share is not None:
                _ratio(j.lead_share, f"{where} joint service {j.name!r} lead_share", path)
            else:
                for h, share in j.shares or ():
                    _ratio(share, f"{where} joint service {j.name!r} share of {h}", path)
                if sum(share for _h, share in j.shares or ()) != 1:
                    raise _err(f"{where} joint service {j.name!r}: shares must add up to 1", path)
        for c in a.cost_increases:
            _ratio(c.member_share, f"{where} cost increase {c.name!r} member_share", path)


def _check_model(model: AllianceModel, path: Any) -> None:
    _check_values(model, path)
    seen_alliance: set[str] = set()
    where_member: dict[str, str] = {}
    for a in model.alliances:
        if a.id in seen_alliance:
            raise _err(f"alliance {a.id!r} is declared twice", path)
        seen_alliance.add(a.id)
        if not a.members:
            raise _err(f"alliance {a.id!r} has no members", path)
        leads = [m.hospital_id for m in a.members if m.role == "lead"]
        if len(leads) != 1:
            raise _err(
                f'alliance {a.id!r} must have exactly one member with role = "lead", '
                f"it has {len(leads)}" + (f" ({', '.join(leads)})" if leads else ""),
                path,
            )
        ids = {m.hospital_id for m in a.members}
        for m in a.members:
            if m.hospital_id in where_member:
                raise _err(
                    f"hospital {m.hospital_id!r} is a member of alliance "
                    f"{where_member[m.hospital_id]!r} and of {a.id!r}; a hospital "
                    "belongs to one alliance",
                    path,
                )
            where_member[m.hospital_id] = a.id
        if a.budget is not None and model.rules.package is None:
            raise _err(
                f"alliance {a.id!r} has a budget, but the model has no [package] "
                "retention and overspend bands",
                path,
            )
        for item in a.shared_costs:
            _known(item.members, ids, f"alliance {a.id!r} shared cost {item.name!r}", path)
        for item in a.joint_services:
            _known(item.members, ids, f"alliance {a.id!r} joint service {item.name!r}", path)
            if item.shares is not None:
                _known(
                    tuple(h for h, _s in item.shares),
                    ids,
                    f"alliance {a.id!r} joint service {item.name!r}",
                    path,
                )
            elif item.members is not None and a.lead.hospital_id in item.members:
                raise _err(
                    f"alliance {a.id!r} joint service {item.name!r}: members are the "
                    "members besides the lead, who takes lead_share",
                    path,
                )


def _known(names: tuple[str, ...] | None, ids: set[str], where: str, path: Any) -> None:
    for h in names or ():
        if h not in ids:
            raise _err(f"{where} names {h!r}, which is not a member of the alliance", path)


#: fields added later: left out of the canonical text when unset (the hash of a model without
#: them does not change)
_OPTIONAL_FIELDS = ("cooperation", "synergy_fund", "cost_coefficient", "outcomes")


def _canonical(model: AllianceModel) -> str:
    def plain(x: Any) -> Any:
        if attrs.has(type(x)):
            return {
                f.name: plain(getattr(x, f.name))
                for f in attrs.fields(type(x))
                if f.name not in ("path", "content_hash", "policy_id", "policy_hash")
                and not (f.name in _OPTIONAL_FIELDS and getattr(x, f.name) in (None, ()))
            }
        if isinstance(x, (tuple, list)):
            return [plain(v) for v in x]
        if isinstance(x, Decimal):
            return str(x)
        return x

    return json.dumps(plain(model), sort_keys=True, ensure_ascii=False)


def _hash_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def builtin_models() -> dict[str, Path]:
    """Alliance models shipped with drgkit: name -> TOML file."""
    folder = Path(__file__).resolve().parent.parent / "alliances"
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def load_model(spec: str | os.PathLike[str] | AllianceModel) -> AllianceModel:
    """An alliance model: a registered id (``demo``, or one a plugin registers through the
    ``drgkit_register_alliance_models`` hook), or a TOML file."""
    if isinstance(spec, AllianceModel):
        return spec
    from .._resolve import RESOLVER  # names resolve at this public entry point

    return RESOLVER.alliance_model(spec)
