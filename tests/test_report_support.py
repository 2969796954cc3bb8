"""Shared by the report tests: a small settled table, a stand-in for the monitoring API that
follows its column contract (computed independently, in Python with fractions), and the
headless Chromium the page tests drive. No test lives here."""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from drgkit.schema import MONEY

CHROMIUM = os.environ.get("DRGKIT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DRGKIT_CHROMEDRIVER", "/usr/bin/chromedriver")

HOSPITALS = ("H01", "H02", "H03", "H04", "H05")
DEPARTMENTS = ("心内科", "骨科", "普外科", "呼吸科")
DRGS = {  # drg -> (mdc, rw, mean cost in cents, mean los)
    "FM19": ("F", Decimal("2.1500"), 3_000_000, 8),
    "FR23": ("F", Decimal("0.9800"), 1_100_000, 9),
    "IC29": ("I", Decimal("3.4000"), 5_200_000, 12),
    "IE13": ("I", Decimal("1.2200"), 1_600_000, 10),
    "GB15": ("G", Decimal("2.6000"), 3_900_000, 11),
    "GE13": ("G", Decimal("0.7500"), 800_000, 6),
    "ES23": ("E", Decimal("1.0500"), 1_300_000, 10),
    "ET13": ("E", Decimal("0.8800"), 1_000_000, 8),
}


def settled_table(n: int = 400, seed: int = 7) -> pa.Table:
    """A settled table (the columns the report reads) with a spread of hospitals, months and
    DRGs, some ungroupable cases and gains as well as losses."""
    rnd = random.Random(seed)
    rows: dict[str, list[Any]] = defaultdict(list)
    codes = sorted(DRGS)
    for i in range(n):
        h = HOSPITALS[i % len(HOSPITALS)]
        drg = rnd.choice(codes)
        mdc, rw, mean, los = DRGS[drg]
        ok = rnd.random() > 0.04
        factor = 0.75 + 0.1 * HOSPITALS.index(h) + rnd.random() * 0.2
        cost = int(mean * factor)
        standard = int(mean * Decimal("1.0"))
        rows["case_id"].append(f"C{i:05d}")
        rows["hospital_id"].append(h)
        rows["department"].append(DEPARTMENTS[(i // 3) % len(DEPARTMENTS)])
        rows["discharge_date"].append(date(2024, 1, 1) + timedelta(days=(i * 37) % 366))
        rows["status"].append("ok" if ok else "ungroupable")
        rows["drg"].append(drg if ok else None)
        rows["mdc"].append(mdc if ok else None)
        rows["rw"].append(rw if ok else None)
        rows["los"].append(max(1, los + rnd.randint(-3, 4) + HOSPITALS.index(h) - 2))
        rows["total_cost"].append(Decimal(cost) / 100)
        rows["payment"].append(Decimal(standard if ok else cost) / 100)
        rows["gain_loss"].append(Decimal((standard if ok else cost) - cost) / 100)
    return pa.table(
        {
            "case_id": pa.array(rows["case_id"]),
            "hospital_id": pa.array(rows["hospital_id"]),
            "department": pa.array(rows["department"]),
            "discharge_date": pa.array(rows["discharge_date"], pa.date32()),
            "status": pa.array(rows["status"]),
            "drg": pa.array(rows["drg"], pa.string()),
            "mdc": pa.array(rows["mdc"], pa.string()),
            "rw": pa.array(rows["rw"], pa.decimal128(18, 9)),
            "los": pa.array(rows["los"], pa.int64()),
            "total_cost": pa.array(rows["total_cost"], MONEY),
            "payment": pa.array(rows["payment"], MONEY),
            "gain_loss": pa.array(rows["gain_loss"], MONEY),
        }
    )


def _ratio(num: Fraction | int, den: Fraction | int) -> float | None:
    return None if den == 0 else float(Fraction(num) / Fraction(den))


def fake_indicators(table: pa.Table, by: tuple[str, ...] = (), **_: Any) -> pa.Table:
    """The indicator contract's columns the report shows, per ``by`` key (``month`` from the
    discharge date), against the region's per-DRG means of the same data. ``table`` may be a
    path, as for the real one."""
    if not isinstance(table, pa.Table):
        from drgkit.settlement._output import read_settled

        table = read_settled(table)
    rows = table.to_pylist()
    for r in rows:
        r["month"] = r["discharge_date"].strftime("%Y-%m")
    region: dict[str, list[Fraction]] = defaultdict(lambda: [Fraction(0), Fraction(0), 0])
    for r in rows:
        if r["drg"] is not None:
            acc = region[r["drg"]]
            acc[0] += Fraction(r["total_cost"])
            acc[1] += r["los"]
            acc[2] += 1
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in by)].append(r)
    out: dict[str, list[Any]] = defaultdict(list)
    for key in sorted(groups, key=lambda k: tuple("" if v is None else str(v) for v in k)):
        g = groups[key]
        grouped = [r for r in g if r["drg"] is not None]
        weighted = [r for r in grouped if r["rw"] is not None]
        weight = sum((r["rw"] for r in weighted), Decimal(0))
        cost = sum((r["total_cost"] for r in g), Decimal(0))
        expected_cost = sum(region[r["drg"]][0] / region[r["drg"]][2] for r in grouped)
        expected_los = sum(region[r["drg"]][1] / region[r["drg"]][2] for r in grouped)
        for k, v in zip(by, key, strict=True):
            out[k].append(v)
        out["cases"].append(len(g))
        out["grouped"].append(len(grouped))
        out["grouping_rate"].append(_ratio(len(grouped), len(g)))
        out["drg_count"].append(len({r["drg"] for r in grouped}))
        out["total_weight"].append(weight)
        out["cmi"].append(_ratio(Fraction(weight), len(weighted)))
        out["cost_index"].append(
            _ratio(sum(Fraction(r["total_cost"]) for r in grouped), expected_cost)
        )
        out["time_index"].append(_ratio(sum(r["los"] for r in grouped), expected_los))
        out["total_cost"].append(cost)
        out["mean_cost"].append(_ratio(Fraction(cost), len(g)))
        out["mean_los"].append(_ratio(sum(r["los"] for r in g), len(g)))
        out["drug_share"].append(None)
        out["payment"].append(sum((r["payment"] for r in g), Decimal(0)))
        out["gain_loss"].append(sum((r["gain_loss"] for r in g), Decimal(0)))
        out["cost_growth"].append(None)
    types = {
        "cases": pa.int64(),
        "grouped": pa.int64(),
        "drg_count": pa.int64(),
        "total_weight": pa.decimal128(38, 9),
        "total_cost": MONEY,
        "payment": MONEY,
        "gain_loss": MONEY,
    }
    columns = {
        name: pa.array(values, types.get(name, pa.string() if name in by else pa.float64()))
        for name, values in out.items()
    }
    if not by and not columns:
        return pa.table({})
    return pa.table(columns)


def fake_warnings(table: pa.Table, policy: Any = None) -> pa.Table:
    """Lights on the cost index: above 1.10 red, above 1.00 yellow, else green; fewer than 5
    cases no light (the contract's null)."""
    lights, rules = [], []
    for ci, n in zip(table["cost_index"].to_pylist(), table["cases"].to_pylist(), strict=True):
        if n < 5 or ci is None:
            lights.append(None)
            rules.append(None)
        elif ci > 1.10:
            lights.append("red")
            rules.append("cost_index > 1.10")
        elif ci > 1.00:
            lights.append("yellow")
            rules.append("cost_index > 1.00")
        else:
            lights.append("green")
            rules.append("cost_index ≤ 1.00")
    return table.append_column("light", pa.array(lights, pa.string())).append_column(
        "rule", pa.array(rules, pa.string())
    )


# ----------------------------------------------------------------------------- the browser


def have_chromium() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def require_chromium() -> None:
    """Skip without Chromium, except on CI, where its absence is a failure (.ci/run installs
    it)."""
    if have_chromium():
        try:
            import selenium  # noqa: F401
        except ImportError:
            message = "the selenium package is not installed (pip install -e '.[test]')"
        else:
            return
    else:
        message = f"no Chromium at {CHROMIUM} with chromedriver at {CHROMEDRIVER}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}: .ci/run installs it (apt-get install chromium chromium-driver)")
    pytest.skip(message)


class Browser:
    """One headless Chromium for a test module, driven through chromedriver (the Debian
    package's, so the two versions always match); nothing is downloaded."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="drgkit-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1000",
            "--hide-scrollbars",
            f"--user-data-dir={self.profile}",
        ):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        # the start page fetches Chromium's own resources: get them out of the way
        self.driver.get("about:blank")

    def open(self, path: Path) -> dict[str, Any]:
        """Load ``path``; the console messages and every network request the page made."""
        self.driver.get_log("browser")  # drop what an earlier page left
        self.driver.get_log("performance")
        url = path.resolve().as_uri()
        self.driver.get(url)
        console = self.driver.get_log("browser")
        requests = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                requests.append(message["params"]["request"]["url"])
        return {"url": url, "console": console, "requests": requests}

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def close(self) -> None:
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)
