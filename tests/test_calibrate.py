"""drgkit calibrate: relative weights from history, by hand, against the slow reference
(tests/calibrate_reference.py), on bad input, through the CLI and back into a policy."""

from __future__ import annotations

import csv
import math
import random
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pytest
from calibrate_reference import reference  # tests/ is on sys.path (rootdir prepend)
from click.testing import CliRunner

import drgkit
from drgkit._calibrate import CalibrationError, summary_of, weights_csv, write_weights
from drgkit.cli import cli
from drgkit.errors import ArgumentError
from drgkit.settlement import Policy, settle

POLICIES = Path(drgkit.__file__).parent / "policies"
COLUMNS = ("status", "drg", "adrg", "total_cost", "discharge_date", "insurance_type")


def table(rows: list[dict]) -> pa.Table:
    base = {"status": "ok", "adrg": None, "insurance_type": "310"}
    return pa.Table.from_pylist([{**base, **r} for r in rows])


def cases(drg: str, year: int, *costs: str, **extra) -> list[dict]:
    return [
        {"drg": drg, "total_cost": c, "discharge_date": f"{year}-06-30", **extra} for c in costs
    ]


def hand_history() -> pa.Table:
    """3 DRGs, 2 years. AA11 has one outlier in 2022 (10 × 1000 and one 50000: its ln lies
    10/√11 ≈ 3.015 sample SDs from the cell's mean, whatever its size); CC11 has 2 cases."""
    return table(
        cases("AA11", 2022, *["1000.00"] * 10, "50000.00")
        + cases("AA11", 2023, *["1200.00"] * 10)
        + cases("BB11", 2022, *["2000.00"] * 10)
        + cases("BB11", 2023, *["3000.00"] * 10)
        + cases("CC11", 2023, "500.00", "4500.00")
        + [{"status": "ungroupable", "drg": "0000", "total_cost": None, "discharge_date": None}]
    )


def rows(t: pa.Table) -> dict[str, dict]:
    return {r["DRG编码"]: r for r in t.to_pylist()}


def test_hand_example_year_weights_trimming_unstable_and_budget() -> None:
    t = drgkit.calibrate(hand_history(), year_weights="1:3", min_cases=5, budgets={None: "1000000"})
    r = rows(t)
    # kept year means: 2022 (10000 + 20000) / 20 = 1500; 2023 (12000 + 30000 + 5000) / 22
    # overall M = (1 × 1500 + 3 × 47000/22) / 4 = 21750/11 = 1977.2727…
    # AA11: (1 × 1000 + 3 × 1200) / 4 = 1150 → RW 1150 × 11 / 21750 = 0.58160919540…
    # BB11: (2000 + 3 × 3000) / 4 = 2750 → 1.39080459770…; CC11: 2023 only, 2500 → 1.26436781609…
    assert r["AA11"]["RW"] == Decimal("0.581609195")
    assert r["BB11"]["RW"] == Decimal("1.390804598")
    assert r["CC11"]["RW"] == Decimal("1.264367816")
    assert [r[d]["cases"] for d in ("AA11", "BB11", "CC11")] == [21, 20, 2]
    assert [r[d]["trimmed"] for d in ("AA11", "BB11", "CC11")] == [1, 0, 0]
    assert [r[d]["mean_cost"] for d in ("AA11", "BB11", "CC11")] == [
        Decimal("1150.00"),
        Decimal("2750.00"),
        Decimal("2500.00"),
    ]
    # CV (population SD / mean of kept cases): 100/1100, 500/2500, 2000/2500
    assert [r[d]["cv"] for d in ("AA11", "BB11", "CC11")] == [
        Decimal("0.0909"),
        Decimal("0.2000"),
        Decimal("0.8000"),
    ]
    assert [r[d]["stable"] for d in ("AA11", "BB11", "CC11")] == [True, True, False]
    assert [r[d]["病组类型"] for d in ("AA11", "BB11", "CC11")] == ["稳定病组"] * 2 + ["不稳定病组"]
    s = summary_of(t)
    assert s["rows_read"] == 44
    assert s["cases_used"] == 43 and s["excluded"] == {"ungroupable": 1} and s["trimmed"] == 1
    assert s["overall_mean_cost"] == "1977.27"
    # Σ expected weight of 2023: 10 × 0.581609195 + 10 × 1.390804598 + 2 × 1.264367816
    # = 22.252873562; 1,000,000 / 22.252873562 = 44938.0165… → 44938.02
    assert s["base_rates"]["all"] == {
        "budget": "1000000.00",
        "expected_weight": "22.252873562",
        "base_rate": "44938.02",
    }


def test_quantile_rule_is_nearest_rank_and_needs_enough_cases() -> None:
    costs = [f"{100 * k}.00" for k in range(1, 41)]  # 100 … 4000, 40 cases
    t = drgkit.calibrate(table(cases("AA11", 2023, *costs)), trim="quantile")
    # Q(2.5%) = c(⌈1⌉) = c(1): nothing below; Q(97.5%) = c(⌈39⌉) = 3900: 4000 is trimmed
    assert rows(t)["AA11"]["trimmed"] == 1
    assert rows(t)["AA11"]["mean_cost"] == Decimal("2000.00")  # mean of 100 … 3900
    few = drgkit.calibrate(table(cases("AA11", 2023, *costs[:24])), trim="quantile")
    assert rows(few)["AA11"]["trimmed"] == 0  # 24 < 25 cases: not trimmed


def test_merge_small_prices_a_small_drg_with_its_adrg_pool() -> None:
    hist = table(
        cases("AA11", 2023, *["1000.00"] * 8)
        + cases("AA13", 2023, "4000.00", "4000.00")
        + cases("BB11", 2023, *["3000.00"] * 10)
    )
    plain = rows(drgkit.calibrate(hist, min_cases=5))
    merged = rows(drgkit.calibrate(hist, min_cases=5, merge_small=True))
    # overall mean (8000 + 8000 + 30000) / 20 = 2300; AA1 pool (8000 + 8000) / 10 = 1600
    assert plain["AA13"]["RW"] == Decimal("1.739130435")  # 4000 / 2300
    assert not plain["AA13"]["stable"] and plain["AA13"]["merged_into"] is None
    assert merged["AA13"]["RW"] == Decimal("0.695652174")  # 1600 / 2300
    assert merged["AA13"]["merged_into"] == "AA1" and merged["AA13"]["cases"] == 2
    assert merged["AA13"]["stable"]  # the pool: 10 cases, CV 0.6
    assert merged["AA11"] == plain["AA11"]  # 8 cases ≥ 5: its own


def generated(seed: int, n: int = 700) -> list[dict]:
    rng = random.Random(seed)
    drgs = ["AA11", "AA13", "BB11", "BB15", "CC11", "DD11", "DD13", "DD15"]
    size = {d: rng.choice([1, 3, 10, 40]) for d in drgs}
    out = []
    for _ in range(n):
        drg = rng.choices(drgs, weights=[size[d] for d in drgs])[0]
        year = rng.choice([2021, 2022, 2022, 2023, 2023, 2023])
        status = "ok" if rng.random() > 0.05 else rng.choice(["ungroupable", "invalid"])
        cost = int(math.exp(rng.gauss(8 + drgs.index(drg) / 4, 0.5)) * 100)
        if rng.random() < 0.03:
            cost *= 40  # an outlier
        out.append(
            {
                "status": status,
                "drg": drg,
                "adrg": drg[:3],
                "year": year,
                "cost": str(Decimal(max(cost, 1)).scaleb(-2)),
                "insurance_type": rng.choice(["310", "390"]),
            }
        )
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("trim", ["log-sd", "quantile", "none"])
def test_matches_the_reference_on_generated_history(seed: int, trim: str) -> None:
    data = generated(seed)
    merge = seed % 2 == 1
    budgets = {None: "5000000.00", "employee": "3000000", "resident": "1999999.99"}
    t = drgkit.calibrate(
        pa.Table.from_pylist(
            [
                {
                    "status": r["status"],
                    "drg": r["drg"],
                    "adrg": r["adrg"],
                    "total_cost": r["cost"],
                    "discharge_date": f"{r['year']}-12-31",
                    "insurance_type": r["insurance_type"],
                }
                for r in data
            ]
        ),
        year_weights="1:2:7",
        trim=trim,
        quantile_min_cases=20,
        min_cases=10,
        merge_small=merge,
        budgets=budgets,
    )
    want, rates = reference(
        data,
        year_weights=[Fraction(1), Fraction(2), Fraction(7)],
        trim=trim,
        quantile_min_cases=20,
        min_cases=10,
        merge_small=merge,
        budgets=budgets,
    )
    got = {
        d: {k: r[k] for k in ("RW", "cases", "trimmed", "mean_cost", "cv", "stable", "merged_into")}
        for d, r in rows(t).items()
    }
    assert got == want
    s = summary_of(t)
    assert {k: Decimal(v["base_rate"]) for k, v in s["base_rates"].items()} == {
        ("all" if k is None else k): v for k, v in rates.items()
    }
    assert s["cases_used"] + sum(s["excluded"].values()) == len(data)  # no row dropped
    if trim != "none":
        assert s["trimmed"] > 0


def test_same_input_same_bytes_whatever_the_row_order(tmp_path: Path) -> None:
    data = hand_history().to_pylist()
    a = drgkit.calibrate(pa.Table.from_pylist(data), year_weights="1:3", min_cases=5)
    b = drgkit.calibrate(pa.Table.from_pylist(data[::-1]), year_weights="1:3", min_cases=5)
    assert weights_csv(a) == weights_csv(b)
    write_weights(a, tmp_path / "w.csv")
    assert (tmp_path / "w.csv").read_bytes() == weights_csv(a)


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({**{"status": "ok", "adrg": "", "insurance_type": "310"}, **r})
    return path


@pytest.mark.parametrize(
    ("bad", "message", "column"),
    [
        ({"total_cost": "-5.00"}, "total cost must be positive, got -5.00", "total_cost"),
        ({"total_cost": "0"}, "total cost must be positive", "total_cost"),
        ({"total_cost": "1.005"}, "total cost has fractions of a cent", "total_cost"),
        ({"total_cost": ""}, "total cost missing", "total_cost"),
        ({"drg": ""}, "missing DRG", "drg"),
        ({"discharge_date": ""}, "discharge date missing", "discharge_date"),
        ({"discharge_date": "2023-13-45"}, "discharge date not a date", "discharge_date"),
    ],
)
def test_bad_rows_are_errors_naming_file_row_and_column(
    tmp_path: Path, bad: dict, message: str, column: str
) -> None:
    good = cases("AA11", 2023, "100.00", "200.00")
    path = write_csv(tmp_path / "h.csv", [*good, {**good[0], **bad}])
    with pytest.raises(CalibrationError) as info:
        drgkit.calibrate(path)
    e = info.value
    assert (e.file, e.row, e.column) == (str(path), 4, column)  # header = line 1
    assert message in str(e) and "row 4" in str(e)


def test_an_unknown_year_is_an_error(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "h.csv",
        cases("AA11", 2022, "100.00") + cases("AA11", 2021, "100.00") + cases("AA11", 2023, "1"),
    )
    with pytest.raises(CalibrationError, match="year 2021 is not one of the calibration years"):
        drgkit.calibrate(path, years=[2022, 2023], year_weights="1:2")
    with pytest.raises(ArgumentError, match="2 year weights for 3 years"):
        drgkit.calibrate(path, year_weights="1:2")
    with pytest.raises(ArgumentError, match="no grouped case of year 2020"):
        drgkit.calibrate(path, years=[2020, 2021, 2022, 2023])


def test_excluded_rows_are_counted_not_checked() -> None:
    t = drgkit.calibrate(
        table(
            [
                *cases("AA11", 2023, "100.00"),
                {"status": "invalid", "drg": "0000", "total_cost": "-1", "discharge_date": "x"},
            ]
        )
    )
    assert summary_of(t)["excluded"] == {"invalid": 1}


def test_cli_writes_the_hand_example_and_prints_the_base_rate(tmp_path: Path) -> None:
    hist = hand_history().to_pylist()
    by_year = {
        y: [r for r in hist if (r["discharge_date"] or "2023")[:4] == y] for y in ("2022", "2023")
    }
    a = write_csv(tmp_path / "a.csv", by_year["2022"])
    b = write_csv(tmp_path / "b.csv", by_year["2023"])
    out = tmp_path / "w.csv"
    args = ["calibrate", f"2022={a}", f"2023={b}", "-o", str(out), "--year-weights", "1:3"]
    res = CliRunner().invoke(cli, [*args, "--min-cases", "5", "--budget", "1000000"])
    assert res.exit_code == 0, res.output
    assert "base rate (all, 2023): 1000000.00 / 22.252873562 = 44938.02" in res.output
    assert "excluded: ungroupable 1" in res.output
    with out.open(encoding="utf-8") as fh:
        got = {r["DRG编码"]: r for r in csv.DictReader(fh)}
    assert got["AA11"]["RW"] == "0.581609195" and got["AA11"]["trimmed"] == "1"
    assert got["CC11"]["stable"] == "false" and got["CC11"]["病组类型"] == "不稳定病组"
    bad = CliRunner().invoke(cli, ["calibrate", str(a), "-o", str(out), "--year-weights", "x"])
    assert bad.exit_code == 2 and "year weight must be a number" in bad.output


def test_calibrated_weights_settle_round_trip(tmp_path: Path) -> None:
    # history on demo DRG codes; names and level coefficients copied from the demo table
    rng = random.Random(7)
    hist = []
    for year in (2022, 2023, 2024):
        for drg, mean in (("GZ13", 9000), ("FM11", 30000), ("AB19", 200000)):
            n = 2 if drg == "AB19" else 30
            for _ in range(n):
                cost = Decimal(int(rng.gauss(mean, mean / 10)) * 100).scaleb(-2)
                hist.append(
                    {"drg": drg, "total_cost": str(cost), "discharge_date": f"{year}-05-01"}
                )
    out = tmp_path / "weights.csv"
    t = drgkit.calibrate(table(hist), year_weights="1:2:7", template=POLICIES / "demo-weights.csv")
    write_weights(t, out)
    r = rows(t)
    assert r["GZ13"]["DRG名称"] and r["GZ13"]["三级医院系数"] == "1.15"
    assert not r["AB19"]["stable"]  # 6 cases < 10
    policy = Policy.from_toml(POLICIES / "demo.toml", weights=out)
    settled = settle(
        pa.Table.from_pylist(
            [
                {
                    **c,
                    "case_id": f"c{k}",
                    "hospital_id": "H1",
                    "hospital_level": "3",
                    "insurance_type": "310",
                    "status": "ok",
                    "los": "5",
                    "self_pay": "0",
                    "own_pay": "0",
                }
                for k, c in enumerate(x for x in hist if x["discharge_date"].startswith("2024"))
            ]
        ),
        policy,
    ).to_pylist()
    assert len(settled) == 62  # 30 + 30 + 2 cases of 2024
    assert {c["status"] for c in settled} == {"ok"}
    for case in settled:
        rw = r[case["drg"]]["RW"]
        if case["drg"] == "AB19":  # unstable: the demo policy pays it by item
            assert case["payment"] == Decimal(case["total_cost"])
        else:  # RW × 15000 (employees) × 1.15 (level 3), rounded once to the cent
            want = Fraction(rw) * 15000 * Fraction("1.15")
            assert case["standard"] == Decimal(math.floor(want * 100 + Fraction(1, 2))).scaleb(-2)


def test_raw_cases_grouped_on_the_fly_equal_grouping_first(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from drgkit import _demo

    raw = _demo.generate_cases(300, seed=5)
    path = tmp_path / "raw.parquet"
    pq.write_table(raw, path)
    out = tmp_path / "w.csv"
    res = CliRunner().invoke(cli, ["calibrate", str(path), "-r", "demo", "-o", str(out)])
    assert res.exit_code == 0, res.output
    g = drgkit.group(raw, "demo")
    joined = pa.table(
        {
            "status": g.column("status"),
            "drg": g.column("drg"),
            "adrg": g.column("adrg"),
            "total_cost": raw.column("total_cost"),
            "discharge_date": raw.column("discharge_date"),
        }
    )
    first = drgkit.calibrate(joined)
    assert out.read_bytes() == weights_csv(first)
    s = summary_of(first)
    assert s["cases_used"] + sum(s["excluded"].values()) == 300
    assert s["excluded"]  # the demo's ungroupable and invalid rows
    assert f"{s['cases_used']} grouped cases used" in res.output


def test_drg_0000_without_a_status_column_is_excluded_as_ungroupable() -> None:
    hist = pa.Table.from_pylist(
        [
            {"drg": "AA11", "total_cost": "100.00", "discharge_date": "2023-01-01"},
            {"drg": "0000", "total_cost": "900.00", "discharge_date": "2023-01-01"},
        ]
    )
    t = drgkit.calibrate(hist)
    assert t.column("DRG编码").to_pylist() == ["AA11"]
    assert summary_of(t)["excluded"] == {"ungroupable": 1}


def test_template_names_coefficients_and_special_review_type_are_kept(tmp_path: Path) -> None:
    tmpl = tmp_path / "old.csv"
    tmpl.write_text(
        "DRG编码,DRG名称,RW,基础病组,病组类型,一级医院系数,二级医院系数,三级医院系数\n"
        "AA11,甲病,9.9,是,单议病组,0.8,1.0,1.2\n"
        "BB11,乙病,0.5,,不稳定病组,,,\n",
        encoding="utf-8",
    )
    hist = table(cases("AA11", 2023, *["100.00"] * 10) + cases("BB11", 2023, *["300.00"] * 10))
    r = rows(drgkit.calibrate(hist, template=tmpl))
    assert [r["AA11"][k] for k in ("DRG名称", "基础病组", "病组类型", "三级医院系数")] == [
        "甲病",
        "是",
        "单议病组",  # special review stays whatever the stability
        "1.2",
    ]
    assert r["AA11"]["RW"] == Decimal("0.500000000")  # recalibrated: 100 / 200, not 9.9
    assert r["BB11"]["病组类型"] == "稳定病组"  # from this history's stability


def test_cli_bad_options_are_usage_errors(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h.csv", cases("AA11", 2023, "100.00"))
    out = str(tmp_path / "w.csv")
    for extra, message in (
        (["--years", "20x3"], "--years must be years"),
        (["--quantiles", "2.5"], "--quantiles must be LOW:HIGH"),
        (["--budget", "employee=12.345"], "a budget must be positive whole cents"),
        (["--sd", "-1"], "sd must be a positive number"),  # was a ZeroDivisionError traceback
        (["--sd", "0"], "sd must be a positive number"),
    ):
        res = CliRunner().invoke(cli, ["calibrate", str(path), "-o", out, *extra])
        assert res.exit_code == 2 and message in res.output, (extra, res.output)
    assert not Path(out).exists()
    # CSV bytes under a .parquet name would mislead whoever opens it
    parquet = tmp_path / "w.parquet"
    res = CliRunner().invoke(cli, ["calibrate", str(path), "-o", str(parquet)])
    assert res.exit_code == 2 and "written as CSV" in res.output and not parquet.exists()


def test_a_folder_of_csv_files_with_a_bom_reads_like_one_table(tmp_path: Path) -> None:
    folder = tmp_path / "history"
    folder.mkdir()
    data = hand_history().to_pylist()
    write_csv(folder / "a.csv", data[:30])
    with (folder / "b.csv").open("w", newline="", encoding="utf-8-sig") as fh:  # Excel's BOM
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows({k: ("" if r[k] is None else r[k]) for k in COLUMNS} for r in data[30:])
    got = drgkit.calibrate(folder, year_weights="1:3", min_cases=5)
    want = drgkit.calibrate(hand_history(), year_weights="1:3", min_cases=5)
    assert weights_csv(got) == weights_csv(want)
    assert summary_of(got)["rows_read"] == 44


def test_calibrated_weights_settle_under_a_real_policy_with_its_region_table(
    tmp_path: Path,
) -> None:
    # suzhou-2023 reads a TCM flag (中医优势病组) and published standards (支付标准) from its
    # table: calibrated with --like that table, the weights must load and settle under it
    from conftest import require_shared

    region_table = require_shared() / "payment" / "suzhou-2023.csv"
    hist = (
        cases("BR1A", 2023, *[f"{9000 + 100 * k}.00" for k in range(12)])
        + cases("BR25", 2023, *[f"{11000 + 100 * k}.00" for k in range(12)])
        + cases("AE19", 2023, *[f"{150000 + 1000 * k}.00" for k in range(12)])
    )
    out = tmp_path / "weights.csv"
    runner = CliRunner()
    res = runner.invoke(
        cli,
        [
            "calibrate",
            str(write_csv(tmp_path / "h.csv", hist)),
            "-o",
            str(out),
            "--like",
            str(region_table),
        ],
    )
    assert res.exit_code == 0, res.output
    r = {row["DRG编码"]: row for row in csv.DictReader(out.open(encoding="utf-8"))}
    assert r["BR1A"]["中医优势病组"] == "是" and r["BR25"]["基础病组"] == "是"
    # the old published standards belong to the old RW: not carried beside the new one
    assert r["BR1A"]["三级医院支付标准"] == ""
    policy = Policy.from_toml(POLICIES / "suzhou-2023.toml", weights=out)
    assert "tcm" in policy.weights.rows["BR1A"].classes
    assert "basic" in policy.weights.rows["BR25"].classes
    settled = settle(
        pa.Table.from_pylist(
            [
                {
                    **c,
                    "case_id": f"c{k}",
                    "hospital_id": "H1",
                    "hospital_level": "3",
                    "insurance_type": "310",
                    "status": "ok",
                    "los": "5",
                    "self_pay": "0",
                    "own_pay": "0",
                }
                for k, c in enumerate(hist)
            ]
        ),
        policy,
    ).to_pylist()
    assert {c["status"] for c in settled} == {"ok"}
    for case in settled:
        coef = Fraction(r[case["drg"]]["三级医院系数"])  # 1.02 for the basic group, else 1.2
        want = Fraction(r[case["drg"]]["RW"]) * Fraction("8728.3") * coef
        assert case["standard"] == Decimal(math.floor(want * 100 + Fraction(1, 2))).scaleb(-2)


def test_a_drg_with_every_case_trimmed_is_an_error_not_a_crash() -> None:
    # two equal clusters: each ln cost lies 0.87 sample SDs from the mean, beyond 0.5
    hist = table(cases("AA11", 2023, "100.00", "100.00", "10000.00", "10000.00"))
    with pytest.raises(CalibrationError, match="every case of DRG AA11 was trimmed"):
        drgkit.calibrate(hist, sd="0.5")
    assert rows(drgkit.calibrate(hist, sd=1))["AA11"]["trimmed"] == 0
