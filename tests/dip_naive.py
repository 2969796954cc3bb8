"""Naive reference DIP grouper, written from ``shared/docs/DIP.md`` §2 and the catalogue format
(``drgkit/catalogue/FORMAT.md``) alone. It shares no code with ``drgkit``.

It is meant to be *obviously correct*, not fast: one case at a time, plain string prefixes,
every step in the order of DIP.md §2. Only the standard library is used.

    cat = NaiveCatalogue.load(folder)
    cat.group(case)  # -> (reason, packet, tier); reason "" when grouped

``case`` is a dict: ``case_id``, ``diagnoses`` and ``procedures`` (lists of code strings,
principal first), ``ventilation_hours``, ``birth_weight``, ``age_days`` (numbers or None).
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

ATTRS = ["相关手术", "治疗性操作", "诊断性操作", "内科诊疗"]  # highest priority first
ALIASES = {
    "surgery": "相关手术",
    "therapeutic": "治疗性操作",
    "diagnostic": "诊断性操作",
    "medical": "内科诊疗",
}


def norm(code: str) -> str:
    """FORMAT §0: codes compare without spaces around, without dots, upper case."""
    return (code or "").strip().replace(".", "").upper()


def matches(code: str, pattern: str) -> bool:
    """FORMAT §0: a pattern matches a code when the code starts with it (both normalised)."""
    c, p = norm(code), norm(pattern)
    return c != "" and p != "" and c.startswith(p)


def any_matches(codes: list[str], pattern: str) -> bool:
    return any(matches(c, pattern) for c in codes)


def spec_alternatives(text: str) -> list[list[str]]:
    """``A+B|C`` -> [[A, B], [C]]."""
    if not text:
        return []
    return [alt.split("+") for alt in text.split("|")]


def spec_best(text: str, codes: list[str]) -> int:
    """Items in the largest alternative all present among ``codes``; -1 if none is."""
    best = -1
    for alt in spec_alternatives(text):
        if all(any_matches(codes, item) for item in alt):
            best = max(best, len(alt))
    return best


def read(folder: Path, name: str) -> list[dict[str, str]]:
    path = folder / name
    if not path.is_file():
        return []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return [
            {k.strip(): (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)
        ]


class NaiveCatalogue:
    def __init__(self, folder: Path) -> None:
        self.meta = {r["key"]: r["value"] for r in read(folder, "meta.csv")}
        self.packets = {r["packet"]: r for r in read(folder, "packets.csv")}
        self.excluded_dx = [r["code"] for r in read(folder, "excluded_dx.csv")]
        self.excluded_px = [r["code"] for r in read(folder, "excluded_px.csv")]
        self.tiers = []
        for name, tier in (
            ("pregroup.csv", "pregroup"),
            ("merge.csv", "merge"),
            ("subdivide.csv", "subdivide"),
        ):
            rows = sorted(read(folder, name), key=lambda r: int(r["seq"]))
            self.tiers.append((tier, rows))
        self.core = read(folder, "core.csv")
        self.attributes = {
            r["code"]: ALIASES.get(r["attribute"], r["attribute"])
            for r in read(folder, "px_attribute.csv")
        }
        self.comprehensive = {
            (norm(r["dx_category"]), ALIASES.get(r["attribute"], r["attribute"])): r["packet"]
            for r in read(folder, "comprehensive.csv")
        }
        self.fallback = read(folder, "fallback.csv")
        self.key_chars = int(self.meta.get("dx_key_chars") or 4)
        self.tie = self.meta.get("tie_rule") or "highest_score"
        cons = self.meta.get("conservative_attributes") or "内科诊疗|诊断性操作"
        self.conservative = {ALIASES.get(a, a) for a in cons.split("|")}
        chain = self.meta.get("fallback_chain") or "comprehensive|prefix|blank"
        self.chain = chain.split("|")
        self.blank = self.meta.get("blank_packet", "")
        self.aux = read(folder, "aux.csv")

    @classmethod
    def load(cls, folder: str | Path) -> NaiveCatalogue:
        return cls(Path(folder))

    def score(self, packet: str) -> Decimal:
        return Decimal(self.packets[packet]["score"])

    def attribute(self, code: str | None) -> str | None:
        """The longest matching pattern of px_attribute.csv, else None."""
        if not code:
            return None
        best = None
        for pattern, attr in self.attributes.items():
            if matches(code, pattern) and (best is None or len(norm(pattern)) > len(best[0])):
                best = (norm(pattern), attr)
        return best[1] if best else None

    def group(self, case: dict) -> tuple[str, str | None, str | None]:
        dxs = list(case.get("diagnoses") or [])
        pxs = list(case.get("procedures") or [])
        # step 1: data checks
        if not dxs or norm(dxs[0]) == "":
            return "principal_dx_missing", None, None
        pdx, sdx = dxs[0], dxs[1:]
        if any(matches(pdx, p) for p in self.excluded_dx):
            return "excluded_principal_dx", None, None
        principal = pxs[0] if pxs and norm(pxs[0]) != "" else None
        if principal is not None and any(matches(principal, p) for p in self.excluded_px):
            principal = None  # treated as no procedure
        related = pxs[1:] if principal is not None else []
        # steps 2-4: pre-grouping, merge rules, sub-division (first row by seq, tier by tier)
        for tier, rows in self.tiers:
            for r in rows:
                if self.rule_holds(r, pdx, sdx, principal, pxs, case):
                    return "", r["packet"], tier
        # steps 5-6: basic rules with the partial-match preferences
        key = norm(pdx)[: self.key_chars]
        attr = self.attribute(principal)
        conservative = principal is None or (attr is not None and attr in self.conservative)
        candidates = []  # (count, row order, packet)
        for order, r in enumerate(self.core):
            if len(key) < self.key_chars or norm(r["dx_key"]) != key:
                continue
            if r["principal_px"] == "":
                if not conservative:
                    continue
            elif principal is None or not any(
                matches(principal, p) for p in r["principal_px"].split("|")
            ):
                continue
            count = 0
            if r["related_px"]:
                count = spec_best(r["related_px"], related)
                if count < 0:
                    continue
            candidates.append((count, order, r["packet"]))
        if candidates:
            top = max(c[0] for c in candidates)
            best = [c for c in candidates if c[0] == top]
            if self.tie == "highest_score":
                s = max(self.score(c[2]) for c in best)
                best = [c for c in best if self.score(c[2]) == s]
            elif self.tie == "lowest_score":
                s = min(self.score(c[2]) for c in best)
                best = [c for c in best if self.score(c[2]) == s]
            return "", sorted(best, key=lambda c: c[1])[0][2], "core"  # then row order
        # steps 7-8: the region's chain
        for step in self.chain:
            if step == "comprehensive":
                cat = norm(pdx)[:3]
                own = attr if (principal is not None and attr is not None) else "内科诊疗"
                for a in ATTRS[ATTRS.index(own) :]:
                    if len(norm(pdx)) >= 3 and (cat, a) in self.comprehensive:
                        return "", self.comprehensive[(cat, a)], "comprehensive"
            elif step == "prefix":
                packet = self.prefix_packet(pdx)
                if packet:
                    return "", packet, "prefix"
            elif step == "blank" and self.blank:
                return "", self.blank, "blank"
        return "no_packet", None, None

    def aux_subtype(self, packet: str | None, case: dict) -> tuple[str, Decimal] | None:
        """FORMAT §5 aux.csv: the packet's sub-type with the highest coefficient the case
        meets (the earlier row on a tie), or None."""
        best = None
        for r in self.aux:
            if r["packet"] != packet or not self.in_band(r["dimension"], r["band"], case):
                continue
            coef = Decimal(r["coefficient"])
            if best is None or coef > best[1]:
                best = (r["subtype"], coef)
        return best

    @staticmethod
    def in_band(dimension: str, band: str, case: dict) -> bool:
        if dimension == "death":
            return case.get("leaving_type") == 5
        if dimension == "severity":
            return case.get("severity") == band
        if dimension == "age":
            years, days = case.get("age"), case.get("age_days")
            if years is not None and years >= 1:
                value = years * 365
            elif days is not None:
                value = days
            else:
                return False
            lo_text, _, hi_text = band.partition("-")
            in_days = lo_text.endswith("d")
            lo = int(lo_text.rstrip("d"))
            hi = int(hi_text.rstrip("d")) if hi_text else None
            if not in_days:  # whole years: [lo years, hi + 1 years)
                return value >= lo * 365 and (hi is None or value < (hi + 1) * 365)
            return value >= lo and (hi is None or value <= hi)
        value = case.get(dimension)
        if value is None:
            return False
        lo_text, _, hi_text = band.partition("-")
        return value >= int(lo_text) and (not hi_text or value <= int(hi_text))

    def rule_holds(
        self, r: dict, pdx: str, sdx: list[str], principal: str | None, pxs: list[str], case: dict
    ) -> bool:
        if r["principal_dx"] and not any(matches(pdx, p) for p in r["principal_dx"].split("|")):
            return False
        if r["secondary_dx"] and spec_best(r["secondary_dx"], sdx) < 0:
            return False
        if r["principal_px"] and (
            principal is None
            or not any(matches(principal, p) for p in r["principal_px"].split("|"))
        ):
            return False
        if r["procedures"] and spec_best(r["procedures"], pxs) < 0:
            return False

        def num(name: str) -> float | None:
            v = case.get(name)
            return None if v is None else float(v)

        if r["min_vent_hours"]:
            v = num("ventilation_hours")
            if v is None or v < float(r["min_vent_hours"]):
                return False
        w = num("birth_weight")
        if r["min_weight"] and (w is None or w < float(r["min_weight"])):
            return False
        if r["max_weight"] and (w is None or w >= float(r["max_weight"])):
            return False
        if r["max_age_days"]:
            d = num("age_days")
            if d is None or d > int(r["max_age_days"]):
                return False
        return True

    def prefix_packet(self, pdx: str) -> str | None:
        code = norm(pdx)
        for length in (3, 2, 1):
            for r in self.fallback:
                if (
                    "-" not in r["dx_prefix"]
                    and len(code) >= length
                    and norm(r["dx_prefix"]) == code[:length]
                ):
                    return r["packet"]
        for r in self.fallback:
            if "-" in r["dx_prefix"]:
                lo, hi = r["dx_prefix"].upper().split("-")
                if lo <= code[:3] <= hi:
                    return r["packet"]
        return None
