"""A slow, obviously-correct reference of DIP settlement (DIP.md §4–§5), written from the text
with Fractions and sharing no code with drgkit: it reads the policy TOML with tomllib and the
catalogue's packet_stats.csv with csv.

A case is a dict: ``case_id``, ``status`` (ok / ungroupable / other), ``packet``, ``kind``
(packet kind), ``score`` and ``aux`` (decimal text or None), ``cost`` (yuan text), ``scheme``
(employee / resident), ``level`` (hospital level text) and ``h`` (the hospital coefficient as
text, or None for the policy's level table).

Fund rounding (``dip.fund_rounding``): "exact" pays each case of a fund pool the increase of the
rounded running total (in case order) of the exact amounts at the unrounded point value, so the
fund payments of a pool add up to its fund; "per_case" rounds the point value, then each case.
"""

from __future__ import annotations

import csv
import math
from fractions import Fraction as F
from pathlib import Path

import tomllib


def half_up(x: F) -> int:
    return math.floor(x + F(1, 2))


def rnd(x: F, places: int) -> F:
    """x rounded half up to ``places`` decimals, as a Fraction."""
    return F(half_up(x * 10**places), 10**places)


class Reference:
    def __init__(self, policy_path: str | Path, catalogue_folder: str | Path) -> None:
        cfg = tomllib.loads(Path(policy_path).read_text("utf-8"))
        self.cfg = cfg
        d = cfg["dip"]
        self.d = d
        self.dev = d.get("deviation", {})
        self.levels = {k: F(v) for k, v in d.get("hospital_coefficients", {}).items()}
        self.pd = int(cfg.get("points", {}).get("point_decimals", 4))
        self.vd = int(cfg.get("points", {}).get("value_decimals", 4))
        self.ratio = {k: F(v) for k, v in cfg["shares"]["fund_ratio"].items()}
        self.fund = {k: F(v) for k, v in d.get("fund", {}).items()}
        self.start = {k: F(v) for k, v in d.get("start_point_value", {}).items()}
        self.mean: dict[tuple[str, str], F] = {}
        with open(Path(catalogue_folder) / "packet_stats.csv", encoding="utf-8-sig") as f:
            for row in csv.DictReader(f):
                self.mean[(row["packet"], row["hospital_level"])] = F(row["mean_cost"])

    def h_of(self, case: dict) -> F:
        if case.get("h") is not None:
            return F(case["h"])
        if not self.levels:
            return F(1)
        return self.levels[case["level"]]

    def price(self, case: dict) -> dict:
        """Class, points (rounded) or money by item, for one case (before special review)."""
        cost = F(case["cost"])
        if case["status"] == "ungroupable":
            ug = self.d.get("ungroupable", {})
            if ug.get("settle", True) is False:
                return {"class": "not_settled"}
            return {"class": "ungroupable", "item": rnd(cost * F(ug.get("factor", "1")), 2)}
        if case["status"] != "ok":
            return {"class": "not_settled"}
        score = F(case["score"])
        aux = F(case["aux"]) if case.get("aux") and self.d.get("auxiliary", True) else F(1)
        h = self.h_of(case)
        if case["kind"] == "primary" and not self.d.get("primary_hospital_coefficient", False):
            h = F(1)
        start = self.start.get(case["scheme"], self.start.get("all"))
        if self.dev.get("reference", "mean") == "standard":
            ref = rnd(score * aux * h * start, 2) if start is not None else None
        else:
            ref = self.mean.get(
                (case["packet"], case["level"]), self.mean.get((case["packet"], "all"))
            )
        if case["kind"] == "blank":
            b = self.d.get("blank", {})
            if b.get("method", "factor") == "factor":
                f = F(b.get("factor", "1"))
            else:
                if not ref:
                    return {"class": "not_settled"}
                f = cost / ref * F(b.get("k", "1")) * F(b.get("m", "1"))
            return {"class": "normal", "dev": "blank", "points": rnd(score * f, self.pd)}
        if not ref:
            return {
                "class": "normal",
                "dev": "no_reference",
                "points": rnd(score * aux * h, self.pd),
            }
        r = cost / ref
        low = F(self.dev.get("low_ratio", "0.5"))
        high = F(self.dev.get("high_ratio", "2"))
        ext = self.dev.get("extreme_ratio", "5")
        ext = F(ext) if ext not in (None, "") else None
        is_low = r <= low if self.dev.get("low_inclusive", False) else r < low
        if is_low:
            coefs = aux * h if self.dev.get("coefficients_on_low", True) else F(1)
            return {"class": "low_outlier", "dev": "low", "points": rnd(score * r * coefs, self.pd)}
        if r > high:
            coefs = aux * h if self.dev.get("coefficients_on_high", True) else F(1)
            add = F(1) if self.dev.get("high_add", "one") == "one" else h
            f = r - high + add
            out = {"class": "high_outlier", "dev": "high"}
            if ext is not None and r > ext:
                out["dev"] = "extreme"
                kind = self.dev.get("extreme", "review")
                if kind == "hospital":
                    f = h
                if kind == "review":
                    sr = self.d.get("special_review", {})
                    out["review"] = (r, case["case_id"])
                    out["review_item"] = rnd(cost * F(sr.get("factor", "1")), 2)
            out["points"] = rnd(score * f * coefs, self.pd)
            return out
        return {"class": "normal", "dev": "normal", "points": rnd(score * aux * h, self.pd)}

    def settle(self, cases: list[dict]) -> tuple[list[dict], dict[str, F]]:
        priced = [self.price(c) for c in cases]
        settled = [p for p in priced if p["class"] != "not_settled"]
        cap = math.floor(F(self.d.get("special_review", {}).get("cap", "0.005")) * len(settled))
        cands = sorted(
            (p["review"] for p in priced if "review" in p), key=lambda rc: (-rc[0], rc[1])
        )
        approved = {cid for _r, cid in cands[:cap]}
        for c, p in zip(cases, priced, strict=True):
            if "review" in p and c["case_id"] in approved:
                p.update({"class": "special_review", "dev": "review", "item": p["review_item"]})
                del p["points"]
        by_ratio = self.cfg["shares"].get("method", "claim") == "ratio"
        exact = self.d.get("fund_rounding", "exact" if by_ratio else "per_case") == "exact"

        def pool_of(scheme: str) -> str | None:
            if scheme in self.fund:
                return scheme
            return "all" if "all" in self.fund else None

        values: dict[str, F] = {}
        exact_v: dict[str, F] = {}
        for pool, fund in self.fund.items():
            mine = [
                (c, p)
                for c, p in zip(cases, priced, strict=True)
                if p["class"] != "not_settled" and pool_of(c["scheme"]) == pool
            ]
            pts = sum((p["points"] for _c, p in mine if "points" in p), F(0))
            item = sum((p["item"] for _c, p in mine if "item" in p), F(0))
            if pts:
                exact_v[pool] = (fund / self.ratio[pool] - item) / pts
                values[pool] = rnd(exact_v[pool], self.vd)
        if exact:
            # exact rule: per pool, walk the cases in order; each case gets the growth of the
            # rounded running total of exact payments (and of exact fund payments)
            run_pay: dict[str, F] = {}
            run_fund: dict[str, F] = {}
            for c, p in zip(cases, priced, strict=True):
                if p["class"] == "not_settled":
                    continue
                pool = pool_of(c["scheme"])
                if pool is None:  # no fund for the scheme: by-item only, per case
                    p["payment"] = p["item"]
                    p["fund"] = rnd(
                        p["item"] * self.ratio.get(c["scheme"], self.ratio.get("all")), 2
                    )
                    continue
                x = p["points"] * exact_v.get(pool, F(0)) if "points" in p else p["item"]
                before_pay, before_fund = run_pay.get(pool, F(0)), run_fund.get(pool, F(0))
                run_pay[pool] = before_pay + x
                run_fund[pool] = before_fund + x * self.ratio[pool]
                p["payment"] = rnd(run_pay[pool], 2) - rnd(before_pay, 2)
                p["fund"] = rnd(run_fund[pool], 2) - rnd(before_fund, 2)
            return priced, values
        for c, p in zip(cases, priced, strict=True):
            if p["class"] == "not_settled":
                continue
            if "points" in p:
                pv = values.get(c["scheme"], values.get("all"))
                # no point value when the pool has no points: every case pays 0
                p["payment"] = rnd(p["points"] * pv, 2) if pv is not None else F(0)
            else:
                p["payment"] = p["item"]
            ratio = self.ratio.get(c["scheme"], self.ratio.get("all"))
            p["fund"] = rnd(p["payment"] * ratio, 2)
        return priced, values
