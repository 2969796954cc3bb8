"""Read and validate a DIP catalogue folder (format version 1, see ``FORMAT.md`` beside this file).

Everything here is about *tables*: parse each file, check every row, cross-check the packet
references. A problem raises :class:`~drgkit.errors.CatalogueError` naming the file, the row
(its line number, the header being row 1) and the column.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from .._versions import iter_csv, tables_hash
from ..errors import CatalogueError

FORMAT_VERSION = "1"

RULE_COLUMNS = (
    "packet",
    "seq",
    "principal_dx",
    "secondary_dx",
    "principal_px",
    "procedures",
    "min_vent_hours",
    "min_weight",
    "max_weight",
    "max_age_days",
)

#: file -> its columns (any order in the file)
FILES: dict[str, tuple[str, ...]] = {
    "meta.csv": ("key", "value"),
    "packets.csv": ("packet", "name", "kind", "score"),
    "excluded_dx.csv": ("code", "name"),
    "excluded_px.csv": ("code", "name"),
    "pregroup.csv": RULE_COLUMNS,
    "merge.csv": RULE_COLUMNS,
    "subdivide.csv": RULE_COLUMNS,
    "core.csv": ("packet", "dx_key", "principal_px", "related_px"),
    "px_attribute.csv": ("code", "attribute"),
    "comprehensive.csv": ("packet", "dx_category", "attribute"),
    "fallback.csv": ("packet", "dx_prefix"),
    "packet_stats.csv": ("packet", "hospital_level", "cases", "mean_cost", "mean_los", "cv"),
    "aux.csv": ("packet", "dimension", "band", "subtype", "coefficient"),
}
REQUIRED_FILES = ("meta.csv", "packets.csv", "core.csv")

#: rule tiers in evaluation order, with the packet kind each may name
RULE_TIERS: tuple[tuple[str, str], ...] = (
    ("pregroup.csv", "pregroup"),
    ("merge.csv", "merged"),
    ("subdivide.csv", "subdivided"),
)

KINDS = (
    "core",
    "primary",
    "comprehensive",
    "pregroup",
    "merged",
    "subdivided",
    "fallback",
    "blank",
)
#: treatment attributes, highest priority first (index = priority rank)
ATTRIBUTES = ("相关手术", "治疗性操作", "诊断性操作", "内科诊疗")
ATTRIBUTE_ALIASES = {
    "surgery": 0,
    "therapeutic": 1,
    "diagnostic": 2,
    "medical": 3,
    **{a: i for i, a in enumerate(ATTRIBUTES)},
}
MEDICAL = 3
TIE_RULES = ("highest_score", "lowest_score", "first")
CHAIN_STEPS = ("comprehensive", "prefix", "blank")
SCALES = ("1", "100", "1000")
AUX_DIMENSIONS = ("age", "death", "icu_days", "cci", "severity")
SEVERITIES = ("mild", "moderate", "severe", "death")

_PATTERN = re.compile(r"[^\s+|,]+")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_INT = re.compile(r"[0-9]+")
_RANGE = re.compile(r"([A-Z][0-9]{2})-([A-Z][0-9]{2})")

Spec = tuple[tuple[str, ...], ...]


def normalise(code: str) -> str:
    """A code as patterns compare it: no spaces around, no dots, upper case."""
    return code.strip().replace(".", "").upper()


def key_text(key: str) -> str:
    """A normalised dx key written with its dot (``K353`` -> ``K35.3``)."""
    return key if len(key) <= 3 else f"{key[:3]}.{key[3:]}"


@attrs.frozen(slots=True)
class Packet:
    packet: str
    name: str
    kind: str
    score: decimal.Decimal
    row: int


@attrs.frozen(slots=True)
class RuleRow:
    tier: str  # file name
    packet: str
    seq: int
    principal_dx: tuple[str, ...]
    secondary_dx: Spec
    principal_px: tuple[str, ...]
    procedures: Spec
    min_vent_hours: decimal.Decimal | None
    min_weight: decimal.Decimal | None
    max_weight: decimal.Decimal | None
    max_age_days: int | None
    row: int


@attrs.frozen(slots=True)
class CoreRow:
    packet: str
    dx_key: str  # normalised
    principal_px: tuple[str, ...]  # empty: conservative row
    related_px: Spec
    row: int


@attrs.frozen(slots=True)
class AuxRow:
    packet: str
    dimension: str
    band: str
    lo: int | None
    hi: int | None
    subtype: str
    coefficient: decimal.Decimal
    row: int


@attrs.frozen(slots=True)
class CatalogueTables:
    folder: Path
    meta: dict[str, str]
    packets: dict[str, Packet]
    excluded_dx: tuple[str, ...]
    excluded_px: tuple[str, ...]
    rules: tuple[RuleRow, ...]  # in evaluation order
    core: tuple[CoreRow, ...]
    px_attribute: dict[str, int]
    comprehensive: dict[tuple[str, int], str]
    fallback_prefix: dict[str, str]
    fallback_ranges: tuple[tuple[str, str, str], ...]  # (lo, hi, packet)
    stats: dict[tuple[str, str], dict[str, object]]
    aux: tuple[AuxRow, ...]
    content_hash: str

    @property
    def score_scale(self) -> int:
        return int(self.meta["score_scale"])

    @property
    def dx_key_chars(self) -> int:
        return int(self.meta.get("dx_key_chars") or 4)

    @property
    def tie_rule(self) -> str:
        return self.meta.get("tie_rule") or "highest_score"

    @property
    def chain(self) -> tuple[str, ...]:
        return tuple((self.meta.get("fallback_chain") or "comprehensive|prefix|blank").split("|"))

    @property
    def conservative_attributes(self) -> tuple[int, ...]:
        text = self.meta.get("conservative_attributes") or "内科诊疗|诊断性操作"
        return tuple(sorted(ATTRIBUTE_ALIASES[a] for a in text.split("|")))

    @property
    def blank_packet(self) -> str:
        return self.meta.get("blank_packet", "")


def content_hash(folder: Path) -> str:
    """SHA-256 over the names and bytes of every table file, in name order."""
    return tables_hash(folder, f"drgkit-dip-catalogue-format-{FORMAT_VERSION}", FILES)


def _any_order_header(expected: tuple[str, ...], path: Path) -> Callable[[list[str]], list[str]]:
    """A header check: exactly the ``expected`` columns, in any order, each once."""

    def check(header: list[str]) -> list[str]:
        header = [h.strip() for h in header]
        for column in header:
            if column not in expected:
                raise CatalogueError(
                    f"unexpected column (expected {','.join(expected)})",
                    file=path,
                    row=1,
                    column=column,
                )
        for column in expected:
            if column not in header:
                raise CatalogueError("column is missing", file=path, row=1, column=column)
        if len(set(header)) != len(header):
            dup = next(h for h in header if header.count(h) > 1)
            raise CatalogueError("column appears twice", file=path, row=1, column=dup)
        return header

    return check


def iter_rows(folder: Path, name: str) -> Iterator[tuple[int, dict[str, str]]]:
    """``(row number, {column: value})`` of each data row; an absent optional file is empty."""
    path = folder / name
    if not path.is_file() and name not in REQUIRED_FILES:
        return iter(())
    return iter_csv(path, CatalogueError, _any_order_header(FILES[name], path), strip=True)


class _Ctx:
    """Raises errors located at one row of one file."""

    def __init__(self, folder: Path, name: str) -> None:
        self.path = folder / name

    def error(self, row: int, column: str | None, message: str) -> CatalogueError:
        return CatalogueError(message, file=self.path, row=row, column=column)

    def pattern(self, row: int, column: str, text: str) -> str:
        if not _PATTERN.fullmatch(text) or not normalise(text):
            raise self.error(row, column, f"{text!r} is not a code pattern")
        return normalise(text)

    def spec(self, row: int, column: str, text: str, *, allow_all: bool = True) -> Spec:
        if text == "":
            return ()
        alternatives = []
        for alternative in text.split("|"):
            items = alternative.split("+")
            if len(items) > 1 and not allow_all:
                raise self.error(
                    row,
                    column,
                    f"{text!r}: '+' (all of) is not allowed here; a case has one principal code",
                )
            if any(item.strip() == "" for item in items):
                raise self.error(row, column, f"{text!r} has an empty item (check + and |)")
            alternatives.append(tuple(self.pattern(row, column, item.strip()) for item in items))
        return tuple(alternatives)

    def decimal(
        self, row: int, column: str, text: str, *, places: int = 6, positive: bool = False
    ) -> decimal.Decimal:
        if not _DECIMAL.fullmatch(text):
            raise self.error(
                row,
                column,
                f"{text!r} is not a decimal number ≥ 0 "
                "(digits, optional point; no sign or exponent)",
            )
        value = decimal.Decimal(text)
        if len(text.partition(".")[2]) > places:
            raise self.error(row, column, f"{text!r} has more than {places} decimals")
        if positive and value <= 0:
            raise self.error(row, column, f"{text!r} must be greater than 0")
        return value

    def integer(self, row: int, column: str, text: str) -> int:
        if not _INT.fullmatch(text):
            raise self.error(row, column, f"{text!r} is not a whole number ≥ 0")
        return int(text)

    def attribute(self, row: int, column: str, text: str) -> int:
        try:
            return ATTRIBUTE_ALIASES[text]
        except KeyError:
            raise self.error(
                row, column, f"{text!r} is not an attribute (one of {', '.join(ATTRIBUTES)})"
            ) from None


def _read_meta(folder: Path) -> dict[str, str]:
    ctx = _Ctx(folder, "meta.csv")
    meta: dict[str, str] = {}
    rows: dict[str, int] = {}
    for row, v in iter_rows(folder, "meta.csv"):
        key, value = v["key"], v["value"]
        if key in meta:
            raise ctx.error(row, "key", f"key {key!r} repeats row {rows[key]}")
        meta[key], rows[key] = value, row
    last = max(rows.values(), default=1)

    def need(key: str) -> str:
        if not meta.get(key):
            raise ctx.error(last, "key", f"required key {key!r} is missing")
        return meta[key]

    if need("format") != FORMAT_VERSION:
        raise ctx.error(
            rows["format"],
            "value",
            f"format {meta['format']!r} is not supported (this drgkit reads {FORMAT_VERSION})",
        )
    need("catalogue")
    if need("score_scale") not in SCALES:
        raise ctx.error(rows["score_scale"], "value", f"score_scale must be one of {SCALES}")
    checks = {
        "dx_key_chars": lambda x: x in ("3", "4", "5", "6"),
        "tie_rule": lambda x: x in TIE_RULES,
        "fallback_chain": lambda x: (
            all(s in CHAIN_STEPS for s in x.split("|"))
            and len(set(x.split("|"))) == len(x.split("|"))
        ),
        "conservative_attributes": lambda x: all(a in ATTRIBUTE_ALIASES for a in x.split("|")),
    }
    for key, ok in checks.items():
        if meta.get(key) and not ok(meta[key]):
            raise ctx.error(rows[key], "value", f"{meta[key]!r} is not a valid {key}")
    for key in ("effective_from", "effective_to"):
        if meta.get(key):
            try:
                dt.date.fromisoformat(meta[key])
            except ValueError:
                raise ctx.error(
                    rows[key], "value", f"{meta[key]!r} is not an ISO date (YYYY-MM-DD)"
                ) from None
    meta["_blank_row"] = str(rows.get("blank_packet", last))
    return meta


def read_tables(folder: str | Path) -> CatalogueTables:
    """Read, check and cross-check every table of a catalogue folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CatalogueError("not a catalogue folder (no such directory)", file=folder)
    meta = _read_meta(folder)

    # ---- packets
    ctx = _Ctx(folder, "packets.csv")
    packets: dict[str, Packet] = {}
    for row, v in iter_rows(folder, "packets.csv"):
        code = v["packet"]
        if not code or not _PATTERN.fullmatch(code):
            raise ctx.error(row, "packet", f"{code!r} is not a packet code")
        if code in packets:
            raise ctx.error(row, "packet", f"packet {code} repeats row {packets[code].row}")
        if v["kind"] not in KINDS:
            raise ctx.error(row, "kind", f"{v['kind']!r} is not a packet kind ({', '.join(KINDS)})")
        packets[code] = Packet(
            code, v["name"], v["kind"], ctx.decimal(row, "score", v["score"]), row
        )
    blanks = [p for p in packets.values() if p.kind == "blank"]
    if len(blanks) > 1:
        raise ctx.error(
            blanks[1].row,
            "kind",
            f"a second blank packet (first: {blanks[0].packet} at row {blanks[0].row})",
        )

    def packet_ref(c: _Ctx, row: int, code: str, kinds: tuple[str, ...]) -> str:
        if code not in packets:
            raise c.error(row, "packet", f"packet {code!r} is not in packets.csv")
        if packets[code].kind not in kinds:
            raise c.error(
                row,
                "packet",
                f"packet {code} has kind {packets[code].kind!r} in "
                f"packets.csv; here it must be {' or '.join(kinds)}",
            )
        return code

    blank = meta.get("blank_packet", "")
    if blank:
        mctx = _Ctx(folder, "meta.csv")
        if blank not in packets or packets[blank].kind != "blank":
            raise mctx.error(
                int(meta["_blank_row"]),
                "value",
                f"blank_packet {blank!r} is not a packet of kind 'blank' in packets.csv",
            )

    # ---- exclusion lists
    excluded: dict[str, tuple[str, ...]] = {}
    for name in ("excluded_dx.csv", "excluded_px.csv"):
        c = _Ctx(folder, name)
        excluded[name] = tuple(
            c.pattern(row, "code", v["code"]) for row, v in iter_rows(folder, name)
        )

    # ---- rule tiers
    rules: list[RuleRow] = []
    for name, kind in RULE_TIERS:
        c = _Ctx(folder, name)
        tier: list[RuleRow] = []
        seqs: dict[int, int] = {}
        for row, v in iter_rows(folder, name):
            packet = packet_ref(c, row, v["packet"], (kind,))
            seq = c.integer(row, "seq", v["seq"])
            if seq in seqs:
                raise c.error(row, "seq", f"seq {seq} repeats row {seqs[seq]}")
            seqs[seq] = row

            def opt_dec(
                col: str, r: int = row, vals: dict = v, cx: _Ctx = c
            ) -> decimal.Decimal | None:
                return cx.decimal(r, col, vals[col]) if vals[col] else None

            rule = RuleRow(
                name,
                packet,
                seq,
                tuple(
                    a[0] for a in c.spec(row, "principal_dx", v["principal_dx"], allow_all=False)
                ),
                c.spec(row, "secondary_dx", v["secondary_dx"]),
                tuple(
                    a[0] for a in c.spec(row, "principal_px", v["principal_px"], allow_all=False)
                ),
                c.spec(row, "procedures", v["procedures"]),
                opt_dec("min_vent_hours"),
                opt_dec("min_weight"),
                opt_dec("max_weight"),
                c.integer(row, "max_age_days", v["max_age_days"]) if v["max_age_days"] else None,
                row,
            )
            if not any(
                (
                    rule.principal_dx,
                    rule.secondary_dx,
                    rule.principal_px,
                    rule.procedures,
                    rule.min_vent_hours is not None,
                    rule.min_weight is not None,
                    rule.max_weight is not None,
                    rule.max_age_days is not None,
                )
            ):
                raise c.error(row, "packet", "the rule has no condition (it would take every case)")
            if (
                rule.min_weight is not None
                and rule.max_weight is not None
                and rule.min_weight >= rule.max_weight
            ):
                raise c.error(row, "max_weight", "max_weight must be above min_weight")
            tier.append(rule)
        rules.extend(sorted(tier, key=lambda r: r.seq))

    # ---- core
    key_chars = int(meta.get("dx_key_chars") or 4)
    c = _Ctx(folder, "core.csv")
    core: list[CoreRow] = []
    seen_core: dict[tuple, int] = {}
    for row, v in iter_rows(folder, "core.csv"):
        packet = packet_ref(c, row, v["packet"], ("core", "primary"))
        key = c.pattern(row, "dx_key", v["dx_key"]) if v["dx_key"] else ""
        if len(key) != key_chars:
            raise c.error(
                row,
                "dx_key",
                f"{v['dx_key']!r} is not a {key_chars}-character "
                "diagnosis key (dx_key_chars in meta.csv)",
            )
        principal = tuple(
            a[0] for a in c.spec(row, "principal_px", v["principal_px"], allow_all=False)
        )
        related = c.spec(row, "related_px", v["related_px"])
        if related and not principal:
            raise c.error(row, "related_px", "related procedures need a principal procedure")
        ident = (packet, key, principal, related)
        if ident in seen_core:
            raise c.error(row, "packet", f"the row repeats row {seen_core[ident]}")
        seen_core[ident] = row
        core.append(CoreRow(packet, key, principal, related, row))

    # ---- attributes, comprehensive, fallback
    c = _Ctx(folder, "px_attribute.csv")
    px_attribute: dict[str, int] = {}
    attr_rows: dict[str, int] = {}
    for row, v in iter_rows(folder, "px_attribute.csv"):
        code = c.pattern(row, "code", v["code"])
        if code in px_attribute:
            raise c.error(row, "code", f"code {v['code']} repeats row {attr_rows[code]}")
        px_attribute[code] = c.attribute(row, "attribute", v["attribute"])
        attr_rows[code] = row

    c = _Ctx(folder, "comprehensive.csv")
    comprehensive: dict[tuple[str, int], str] = {}
    comp_rows: dict[tuple[str, int], int] = {}
    for row, v in iter_rows(folder, "comprehensive.csv"):
        packet = packet_ref(c, row, v["packet"], ("comprehensive",))
        cat = c.pattern(row, "dx_category", v["dx_category"])
        if len(cat) != 3:
            raise c.error(
                row, "dx_category", f"{v['dx_category']!r} is not a 3-character diagnosis category"
            )
        pair = (cat, c.attribute(row, "attribute", v["attribute"]))
        if pair in comprehensive:
            raise c.error(
                row,
                "attribute",
                f"category {cat} with this attribute repeats row {comp_rows[pair]}",
            )
        comprehensive[pair], comp_rows[pair] = packet, row

    c = _Ctx(folder, "fallback.csv")
    prefixes: dict[str, str] = {}
    ranges: list[tuple[str, str, str]] = []
    fb_rows: dict[str, int] = {}
    for row, v in iter_rows(folder, "fallback.csv"):
        packet = packet_ref(c, row, v["packet"], ("fallback", "comprehensive"))
        text = v["dx_prefix"].strip().upper()
        m = _RANGE.fullmatch(text)
        if m:
            if m.group(1) > m.group(2):
                raise c.error(row, "dx_prefix", f"range {text} runs backwards")
            ranges.append((m.group(1), m.group(2), packet))
            continue
        prefix = c.pattern(row, "dx_prefix", text) if text else ""
        if not 1 <= len(prefix) <= 3:
            raise c.error(
                row,
                "dx_prefix",
                f"{v['dx_prefix']!r} is neither a 1–3 character prefix nor a range like A00-B99",
            )
        if prefix in prefixes:
            raise c.error(row, "dx_prefix", f"prefix {prefix} repeats row {fb_rows[prefix]}")
        prefixes[prefix], fb_rows[prefix] = packet, row

    # ---- statistics
    c = _Ctx(folder, "packet_stats.csv")
    stats: dict[tuple[str, str], dict[str, object]] = {}
    for row, v in iter_rows(folder, "packet_stats.csv"):
        packet = packet_ref(c, row, v["packet"], KINDS)
        level = v["hospital_level"]
        if level not in ("1", "2", "3", "all"):
            raise c.error(row, "hospital_level", f"{level!r} is not 1, 2, 3 or all")
        if (packet, level) in stats:
            raise c.error(row, "hospital_level", f"packet {packet} level {level} repeats")
        stats[(packet, level)] = {
            "cases": c.integer(row, "cases", v["cases"]),
            "mean_cost": c.decimal(row, "mean_cost", v["mean_cost"], places=2),
            "mean_los": c.decimal(row, "mean_los", v["mean_los"]),
            "cv": c.decimal(row, "cv", v["cv"]),
        }

    c = _Ctx(folder, "aux.csv")
    aux: list[AuxRow] = []
    for row, v in iter_rows(folder, "aux.csv"):
        packet = packet_ref(c, row, v["packet"], ("core", "primary"))
        dim = v["dimension"]
        if dim not in AUX_DIMENSIONS:
            raise c.error(row, "dimension", f"{dim!r} is not one of {', '.join(AUX_DIMENSIONS)}")
        lo, hi = _band(c, row, dim, v["band"])
        if not v["subtype"]:
            raise c.error(row, "subtype", "subtype code is empty")
        aux.append(
            AuxRow(
                packet,
                dim,
                v["band"],
                lo,
                hi,
                v["subtype"],
                c.decimal(row, "coefficient", v["coefficient"], positive=True),
                row,
            )
        )

    return CatalogueTables(
        folder,
        {k: v for k, v in meta.items() if not k.startswith("_")},
        packets,
        excluded["excluded_dx.csv"],
        excluded["excluded_px.csv"],
        tuple(rules),
        tuple(core),
        px_attribute,
        comprehensive,
        prefixes,
        tuple(ranges),
        stats,
        tuple(aux),
        content_hash(folder),
    )


_BAND = re.compile(r"([0-9]+)(d?)-(?:([0-9]+)(d?))?")


def _band(c: _Ctx, row: int, dim: str, text: str) -> tuple[int | None, int | None]:
    """(lo, hi) of an aux band, inclusive; ages in days (years × 365 for year bands)."""
    if dim == "death":
        if text != "1":
            raise c.error(row, "band", "the death dimension has the single band 1")
        return 1, 1
    if dim == "severity":
        if text not in SEVERITIES:
            raise c.error(row, "band", f"severity band must be one of {', '.join(SEVERITIES)}")
        rank = SEVERITIES.index(text)
        return rank, rank
    m = _BAND.fullmatch(text)
    if not m or (m.group(4) is not None and m.group(3) is None):
        raise c.error(row, "band", f"{text!r} is not a band like 2-7, 31- or 0d-28d")
    days = m.group(2) == "d"
    if dim != "age" and days:
        raise c.error(row, "band", "only age bands may be given in days")
    if m.group(3) is not None and (m.group(4) == "d") != days:
        raise c.error(row, "band", f"{text!r} mixes days and years")
    lo = int(m.group(1))
    hi = int(m.group(3)) if m.group(3) is not None else None
    if hi is not None and hi < lo:
        raise c.error(row, "band", f"band {text} runs backwards")
    if dim == "age" and not days:  # whole years: compare on age in days
        lo, hi = lo * 365, (hi + 1) * 365 - 1 if hi is not None else None
    return lo, hi
