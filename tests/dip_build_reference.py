"""A slow, obviously correct DIP catalogue builder, written from DIP.md §3 and the rules stated
in drgkit/catalogue/_build.py's docstring, for checking the fast builder.

Plain Python: one dict per case, lists grouped in dicts, every mean and variance a Fraction,
sqrt through Decimal at 60 digits. It shares no code with drgkit.catalogue (it only reads the
option values). Input: a list of row dicts with Python values (texts, ints, Decimals, lists).
Output: {table name: list of row dicts} in the fast builder's column names and order.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from fractions import Fraction

SUFFIX = {
    "surgery": ("SS", "相关手术组"),
    "therapeutic": ("ZL", "治疗性操作组"),
    "diagnostic": ("ZD", "诊断性操作组"),
    "medical": ("NK", "内科诊疗组"),
}
ATTR_ORDER = ["surgery", "therapeutic", "diagnostic", "medical"]


def rnd(x: Fraction, places: int) -> Decimal:
    """Half up (away from zero) to ``places`` decimals, from the exact value."""
    with localcontext() as ctx:
        ctx.prec = 80
        d = Decimal(x.numerator) / Decimal(x.denominator)
        return d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def money(x: Fraction) -> Decimal:
    """Cents -> yuan with 2 decimals, rounded half up to the cent."""
    return rnd(x, 0).scaleb(-2)


def sqrt_rnd(x: Fraction, places: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60
        d = (Decimal(x.numerator) / Decimal(x.denominator)).sqrt()
        return d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def whole(value, allow_negative=False):
    """(present, ok, int) of a whole-number field."""
    if value is None:
        return False, True, 0
    if isinstance(value, bool):
        return True, False, 0
    if isinstance(value, int):
        return True, allow_negative or value >= 0, value
    text = str(value).strip()
    if text == "":
        return False, True, 0
    if re.fullmatch(r"[+-]?[0-9]{1,15}", text):
        v = int(text)
        return True, allow_negative or v >= 0, v
    return True, False, 0


def cents(value):
    """Cents of an amount, or a reason."""
    if value is None:
        return None, "total_cost: missing"
    if isinstance(value, int) and not isinstance(value, bool):
        return value * 100, None
    text = str(value).strip()
    if text == "":
        return None, "total_cost: missing"
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None, "total_cost: not an amount"
    if not re.fullmatch(r"[+-]?[0-9]*\.?[0-9]*", text):
        return None, "total_cost: not an amount"
    c = d * 100
    if c != c.to_integral_value():
        return None, "total_cost: has fractions of a cent"
    return int(c), None


def codes(value):
    if value is None:
        return []
    items = value if isinstance(value, list) else re.split(r"[|,]", str(value))
    return [str(x).strip().upper() for x in items if x is not None and str(x).strip()]


def dx_key(code):
    plain = code.replace(".", "")
    if len(plain) < 3 or not re.fullmatch(r"[A-Z][0-9A-Z]{2}", plain[:3]):
        return None
    if len(plain) == 3:
        return plain
    return plain[:3] + "." + plain[3]


def charlson(secondary):
    """CCI of a list of secondary diagnoses: each condition once, the lighter of a
    (lighter, heavier) pair dropped when the heavier is there. The condition table is data
    (Quan's ICD-10 coding) taken from drgkit; the matching here is written anew."""
    from drgkit.catalogue._build_cci import CONDITIONS

    present = set()
    for code in secondary:
        plain = code.replace(".", "")
        for name, _weight, prefixes in CONDITIONS:
            if any(plain[: len(p)] == p for p in prefixes):
                present.add(name)
    for light, heavy in (
        ("mild_liver", "severe_liver"),
        ("diabetes", "diabetes_complicated"),
        ("malignancy", "metastatic_tumour"),
    ):
        if heavy in present:
            present.discard(light)
    return sum(w for name, w, _p in CONDITIONS if name in present)


def read(rows, opt):
    cases, excluded = [], []
    for i, r in enumerate(rows):
        reason = None
        if not str(r.get("case_id") or "").strip():
            reason = "case_id: missing"
        c, why = cents(r.get("total_cost"))
        if reason is None and why:
            reason = why
        if reason is None and c <= 0:
            reason = "total_cost: not positive"
        present, ok, year = whole(r.get("year"), True)
        if reason is None and not ok:
            reason = "year: not a whole number"
        if reason is None and not present:
            reason = "year: missing"
        present, ok, level = whole(r.get("hospital_level"), True)
        if reason is None and (not ok or (present and level not in (1, 2, 3))):
            reason = "hospital_level: not 1, 2 or 3"
        if reason is None and not present:
            reason = "hospital_level: missing"
        extra = {}
        for name in ("los", "age", "age_days", "icu_days", "cci"):
            present, ok, v = whole(r.get(name))
            if reason is None and not ok:
                reason = f"{name}: not a whole number >= 0"
            extra[name] = v if present else None
        dxs = codes(r.get("diagnoses"))
        if "cci" not in r:
            extra["cci"] = charlson(dxs[1:])
        dx = dx_key(dxs[0]) if dxs else None
        if reason is None and not dxs:
            reason = "diagnoses: no principal diagnosis"
        if reason is None and dx is None:
            reason = "diagnoses: principal diagnosis is not an ICD-10 code"
        if reason is not None:
            excluded.append({"row": i + 1, "case_id": r.get("case_id") or "", "reason": reason})
            continue
        procs = codes(r.get("procedures"))
        principal = procs[0] if procs else ""
        related = "+".join(sorted({p for p in procs[1:] if p != principal}))
        if (
            principal in opt.procedure_attributes
            and opt.procedure_attributes[principal] in opt.conservative_attributes
        ):
            principal, related = "", ""  # counts as conservative
        cases.append(
            {
                "year": year,
                "level": level,
                "cost": c,
                "dx": dx,
                "proc": principal,
                "rel": related,
                "death": str(r.get("leaving_type") or "").strip() in opt.death_codes,
                **extra,
            }
        )
    years = sorted({x["year"] for x in cases})
    weights = list(opt.year_weights)[len(opt.year_weights) - len(years) :]
    for x in cases:
        x["w"] = weights[years.index(x["year"])]
    return cases, excluded, years


def kept_cases(cs, opt):
    n = len(cs)
    if opt.trim_share == 0 or n < opt.trim_min_cases:
        return list(cs)
    s = sorted(x["cost"] for x in cs)
    k = math.floor(n * opt.trim_share)
    return [x for x in cs if s[k] <= x["cost"] <= s[n - 1 - k]]


def wmean(cs):
    return Fraction(sum(x["w"] * x["cost"] for x in cs), sum(x["w"] for x in cs))


def ssd(cs):
    """Σw(c − m)², exactly."""
    m = wmean(cs)
    return sum((x["w"] * (x["cost"] - m) ** 2 for x in cs), Fraction(0))


def cv(cs_or_ssd, cs):
    total = ssd(cs) if cs_or_ssd is None else cs_or_ssd
    m = wmean(cs)
    return sqrt_rnd(total / sum(x["w"] for x in cs) / (m * m), 4)


def group(cases, key):
    out = {}
    for x in cases:
        out.setdefault(key(x), []).append(x)
    return out


def tm(cs, opt):
    return wmean(kept_cases(cs, opt))


def band(x, dim):
    if dim == "cci":
        c = x["cci"]
        if c is None:
            return ""
        return "0" if c == 0 else "1-2" if c <= 2 else "3-4" if c <= 4 else ">=5"
    if dim == "age":
        d, a = x["age_days"], x["age"]
        if d is not None and d < 365:
            return "0-28d" if d <= 28 else "29d-1y"
        if a is None:
            return ""
        return "1-6" if 1 <= a <= 6 else "7-17" if 7 <= a <= 17 else ">65" if a > 65 else ""
    if dim == "icu":
        d = x["icu_days"]
        if d is None:
            return ""
        return (
            "2-7"
            if 2 <= d <= 7
            else "8-14"
            if 8 <= d <= 14
            else "15-30"
            if 15 <= d <= 30
            else ">=31"
            if d >= 31
            else ""
        )
    return "death" if x["death"] else ""


BANDS = {
    "cci": ["0", "1-2", "3-4", ">=5"],
    "age": ["0-28d", "29d-1y", "1-6", "7-17", ">65"],
    "icu": ["2-7", "8-14", "15-30", ">=31"],
    "death": ["death"],
}


def build(rows, opt):
    cases, excluded, years = read(rows, opt)
    n_all = len(cases)
    # threshold
    base = group(cases, lambda x: (x["dx"], x["proc"]))
    if opt.coverage is not None:
        counts = sorted((len(v) for v in base.values()), reverse=True)
        n = 1
        for candidate in range(max(counts), 0, -1):
            if sum(c for c in counts if c >= candidate) >= opt.coverage * n_all:
                n = candidate
                break
    else:
        n = opt.min_cases
    combos = group(cases, lambda x: (x["dx"], x["proc"], x["rel"]))
    decision = {}
    for key, cs in combos.items():
        dx, p, r = key
        if not r:
            decision[key] = (None, None, (dx, p, ""))
            continue
        plain = combos.get((dx, p, ""))
        if not plain:
            decision[key] = ("merged", None, (dx, p, ""))
            continue
        mb, mf = tm(plain, opt), tm(cs, opt)
        change = (mf - mb) / mb
        if len(cs) >= n and abs(mf - mb) >= opt.related_split * mb:
            decision[key] = ("split", change, key)
        else:
            decision[key] = ("merged", change, (dx, p, ""))
    candidates = {}
    for key, cs in combos.items():
        candidates.setdefault(decision[key][2], []).extend(cs)
    attr = {}
    for x in cases:
        a = (
            opt.procedure_attributes.get(x["proc"], opt.unknown_attribute)
            if x["proc"]
            else "medical"
        )
        attr[id(x)] = a
    packet_of_case = {}
    core = {}
    comp = {}
    for key, cs in candidates.items():
        if len(cs) >= n:
            dx, p, r = key
            code = dx + (":" + p if p else "") + "".join("&" + x for x in r.split("+") if x)
            core[key] = (code, cs)
            for x in cs:
                packet_of_case[id(x)] = code
        else:
            for x in cs:
                comp.setdefault((x["dx"][:3], ATTR_ORDER.index(attr[id(x)])), []).append(x)
    comp_packets = {}
    blank = []
    for (dx3, a), cs in comp.items():
        if len(cs) < n and opt.blank_packet:
            blank.extend(cs)
            for x in cs:
                packet_of_case[id(x)] = opt.blank_code
        else:
            code = f"{dx3}:{SUFFIX[ATTR_ORDER[a]][0]}"
            comp_packets[(dx3, a)] = (code, cs)
            for x in cs:
                packet_of_case[id(x)] = code

    M_all = wmean(cases)
    if opt.score_method == "mean":
        big_m = M_all
    elif opt.score_method == "fixed":
        big_m = opt.fixed_mean * 100
    else:
        found = [cs for code, cs in core.values() if code == opt.reference_packet]
        if not found:
            raise LookupError(opt.reference_packet)
        big_m = tm(found[0], opt)

    def packet_row(cs):
        k = kept_cases(cs, opt)
        m = wmean(k)
        return {
            "cases": len(cs),
            "cases_kept": len(k),
            "mean_cost": money(m),
            "score": rnd(m / big_m * opt.scale, opt.score_decimals),
            "cv": cv(None, k),
        }

    packets = []
    for key in sorted(core):
        code, cs = core[key]
        row = {"code": code, "dx": key[0], "procedure": key[1], "related": key[2], **packet_row(cs)}
        k = kept_cases(cs, opt)
        m = wmean(k)
        var_ok = ssd(k) / sum(x["w"] for x in k) <= opt.primary_care_cv**2 * m * m
        l1 = Fraction(sum(1 for x in cs if x["level"] == 1), len(cs))
        row["primary_care"] = bool(var_ok and l1 >= opt.primary_care_level1_share)
        packets.append(row)
    comprehensive = []
    for key in sorted(comp_packets):
        code, cs = comp_packets[key]
        a = ATTR_ORDER[key[1]]
        comprehensive.append(
            {
                "code": code,
                "kind": "comprehensive",
                "dx": key[0],
                "attribute": a,
                "name": f"{key[0]} {SUFFIX[a][1]}",
                **packet_row(cs),
            }
        )
    if blank:
        comprehensive.append(
            {
                "code": opt.blank_code,
                "kind": "blank",
                "dx": "",
                "attribute": "",
                "name": "空白病种",
                **packet_row(blank),
            }
        )

    # auxiliary sub-types
    subtypes = []
    for key in sorted(core):
        code, cs = core[key]
        if len(cs) < opt.aux_min_cases:
            continue
        m = wmean(cs)
        total = ssd(cs)
        for dim in opt.aux_dimensions:
            by = group(cs, lambda x, d=dim: band(x, d))
            subs = [b for b in BANDS[dim] if len(by.get(b, [])) >= opt.aux_min_band_cases]
            if not subs:
                continue
            rest = [x for x in cs if band(x, dim) not in subs]
            within = sum((ssd(by[b]) for b in subs), Fraction(0)) + (ssd(rest) if rest else 0)
            if total <= 0 or within > (1 - opt.aux_cv_cut) ** 2 * total:
                continue
            for b in subs:
                mb = wmean(by[b])
                subtypes.append(
                    {
                        "packet": code,
                        "dimension": dim,
                        "band": b,
                        "cases": len(by[b]),
                        "mean_cost": money(mb),
                        "coefficient": rnd(mb / m, opt.coefficient_decimals),
                        "cv_before": cv(total, cs),
                        "cv_after": cv(within, cs),
                    }
                )

    levels = []
    for lv in (1, 2, 3):
        cs = [x for x in cases if x["level"] == lv]
        if cs:
            levels.append(
                {
                    "hospital_level": lv,
                    "cases": len(cs),
                    "mean_cost": money(wmean(cs)),
                    "coefficient": rnd(wmean(cs) / M_all, opt.coefficient_decimals),
                }
            )

    order = [p["code"] for p in packets] + [p["code"] for p in comprehensive]
    members = {code: [x for x in cases if packet_of_case[id(x)] == code] for code in order}
    stats = []
    for code in order:
        for lv in ("all", 1, 2, 3):
            cs = [x for x in members[code] if lv == "all" or x["level"] == lv]
            if not cs:
                continue
            with_los = [x for x in cs if x["los"] is not None]
            los = (
                rnd(
                    Fraction(
                        sum(x["w"] * x["los"] for x in with_los), sum(x["w"] for x in with_los)
                    ),
                    2,
                )
                if with_los
                else None
            )
            # the "all" row: the packet's trimmed mean and CV, as in the packet table
            k = kept_cases(cs, opt) if lv == "all" else cs
            stats.append(
                {
                    "packet": code,
                    "hospital_level": str(lv),
                    "cases": len(cs),
                    "mean_cost": money(wmean(k)),
                    "mean_los": los,
                    "cv": cv(None, k),
                }
            )

    combinations = []
    for key in sorted(combos):
        cs = combos[key]
        how, change, _to = decision[key]
        pk = packet_of_case[id(cs[0])]
        kind = (
            "core"
            if any(code == pk for code, _ in core.values())
            else ("blank" if pk == opt.blank_code and blank else "comprehensive")
        )
        combinations.append(
            {
                "dx": key[0],
                "procedure": key[1],
                "related": key[2],
                "cases": len(cs),
                "mean_cost": money(tm(cs, opt)),
                "change_pct": None if change is None else rnd(change * 100, 2),
                "related_decision": how,
                "packet": pk,
                "kind": kind,
            }
        )
    return {
        "packets": packets,
        "comprehensive": comprehensive,
        "subtypes": subtypes,
        "levels": levels,
        "packet_stats": stats,
        "combinations": combinations,
        "excluded": excluded,
        "threshold": n,
        "years": years,
    }
