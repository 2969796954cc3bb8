"""The embedded default: demo rulesets and the case generator."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

import pyarrow as pa
import pyarrow.csv as pacsv
from conftest import DEMO

import drgkit
from drgkit import _demo
from drgkit.ruleset._tables import TEMPLATES, read_tables


def test_generator_is_deterministic_and_typed() -> None:
    a = _demo.generate_cases(2000, seed=99)
    b = _demo.generate_cases(2000, seed=99)
    c = _demo.generate_cases(2000, seed=100)
    assert a.equals(b) and not a.equals(c)
    assert a.schema.field("diagnoses").type == pa.list_(pa.string())
    assert a.schema.field("total_cost").type == pa.decimal128(14, 2)
    assert a.schema.field("discharge_date").type == pa.date32()


def test_generated_money_adds_up_and_dates_are_coherent() -> None:
    t = _demo.generate_cases(3000, seed=1).to_pylist()
    for r in t:
        assert r["fund_paid"] + r["self_pay"] + r["own_pay"] == r["total_cost"]
        assert r["drug_cost"] + r["consumables_cost"] < r["total_cost"]
        assert all(
            isinstance(r[k], Decimal) and r[k] == r[k].quantize(Decimal("0.01"))
            for k in ("total_cost", "fund_paid")
        )
        if r["los"].isdigit():
            assert r["discharge_date"] - r["admission_date"] == dt.timedelta(days=int(r["los"]))
    years = Counter(r["discharge_date"].year for r in t)
    assert set(years) == {2023, 2024}


def test_demo_groups_end_to_end_with_every_status() -> None:
    cases = _demo.generate_cases(5000, seed=2)
    result = drgkit.group(cases, "demo")
    status = Counter(result.column("status").to_pylist())
    assert status["ok"] / cases.num_rows > 0.8
    assert set(status) == {"ok", "ungroupable", "ambiguous", "invalid"}
    versions = Counter(result.column("ruleset").to_pylist())
    assert versions["demo_2023"] > 1000 and versions["demo_2024"] > 1000
    reasons = set(result.column("reason").to_pylist())
    assert {"duplicate_case_id", "age_not_integer", "sex_missing", "text_compared"} <= reasons


def test_demo_rulesets_cover_the_templates() -> None:
    used = set()
    for version in ("2023", "2024"):
        tables = read_tables(DEMO / version)
        used |= {a.template for atoms in tables.rules.values() for a in atoms}
    # NO_DX_IN is reserved in the format and has its twin NO_SDX_IN in the demo; the templates
    # the later regional rulesets added are proven on tiny rulesets (test_ruleset_behaviour.py)
    regional = {"SPROC_IN", "PDX_NOT_IN", "PPROC_NOT_IN", "TEXT_IN", "RAISE"}
    assert set(TEMPLATES) - used <= {"NO_DX_IN"} | regional


def test_versions_differ_where_the_readme_says() -> None:
    """G45.900 (TIA) moved from BZ1 to BR2 in 2024."""
    case = {
        "case_id": ["a", "b"],
        "diagnoses": ["G45.900", "G45.900"],
        "sex": ["1", "1"],
        "age": ["60", "60"],
        "discharge_date": ["2023-06-01", "2024-06-01"],
    }
    result = drgkit.group(pa.table(case), "demo").to_pylist()
    assert result[0]["adrg"] == "BZ1" and result[1]["adrg"] == "BR2"


# ------------------------------------------------------------------------------- DIP part


def _dip_built(tmp_path):
    from drgkit import _demo_dip
    from drgkit.catalogue._build import build_catalogue
    from drgkit.catalogue._build_options import BuildOptions

    data = _demo_dip.generate(800, 800, seed=11)
    result = build_catalogue(
        data.history, BuildOptions(procedure_attributes=_demo_dip.PROCEDURE_ATTRIBUTES)
    )
    return data, result, result.write(tmp_path / "cat", catalogue="t")


def test_dip_generator_is_deterministic_and_covers_three_levels_and_years() -> None:
    from drgkit import _demo_dip

    a, b = _demo_dip.generate(300, 200, seed=5), _demo_dip.generate(300, 200, seed=5)
    c = _demo_dip.generate(300, 200, seed=6)
    assert a.history.equals(b.history) and a.current.equals(b.current)
    assert not a.history.equals(c.history)
    assert a.history.num_rows == 900 and a.current.num_rows == 200
    years = Counter(d.year for d in a.history.column("discharge_date").to_pylist())
    assert set(years) == set(_demo_dip.HISTORY_YEARS)
    assert {d.year for d in a.current.column("discharge_date").to_pylist()} == {2024}
    assert set(a.history.column("hospital_level").to_pylist()) == {1, 2, 3}
    assert len(set(a.history.column("case_id").to_pylist())) == 900
    assert a.history.schema.field("total_cost").type == pa.decimal128(12, 2)


def test_dip_demo_catalogue_has_every_packet_kind_and_costs_straddle_break_even(tmp_path) -> None:
    data, result, folder = _dip_built(tmp_path)
    r = result.report
    assert r.core_packets > 10 and r.comprehensive_packets >= 1 and r.blank_cases >= 1
    grouped = drgkit.group(data.current, str(folder), keep=["hospital_id", "total_cost"])
    kinds = Counter(grouped.column("packet_kind").to_pylist())
    assert kinds["core"] > 0.9 * grouped.num_rows and kinds["comprehensive"] and kinds["blank"]
    assert set(grouped.column("status").to_pylist()) == {"ok"}
    # what a packet is worth: score × (score base M / scale), M in cents; a hospital's cost
    # against that: the demo has hospitals on both sides of break-even
    worth_per_point = Decimal(r.score_base) / 100 / 1000
    cost: Counter = Counter()
    worth: Counter = Counter()
    for row in grouped.to_pylist():
        cost[row["hospital_id"]] += row["total_cost"]
        worth[row["hospital_id"]] += row["score"] * worth_per_point
    ratios = {h: cost[h] / worth[h] for h in cost}
    assert len(ratios) == 6
    assert min(ratios.values()) < 1 < max(ratios.values()), ratios


def test_demo_command_shows_dip_beside_drg(tmp_path) -> None:
    from click.testing import CliRunner

    from drgkit.cli import cli

    out = tmp_path / "demo"
    result = CliRunner().invoke(
        cli, ["demo", "--cases", "300", "--dip-cases", "400", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = result.output
    drg_at = text.index("Result:")
    dip_at = text.index("DIP (按病种分值付费): 1,200 cases")
    assert drg_at < dip_at
    assert (out / "dip" / "catalogue" / "meta.csv").is_file()
    assert (out / "dip" / "catalogue" / "build" / "report.md").is_file()
    grouped = (out / "dip" / "grouped.csv").read_text(encoding="utf-8").splitlines()
    assert len(grouped) == 401 and '"scheme"' in grouped[0]
    for part in (
        "5. built a local catalogue",
        "core packets hold",
        "6. grouped 400 cases",
        "packet kinds:",
        "most frequent packets:",
        "7. why did case",
        "candidates (points",
        "as coded",
    ):
        assert part in text, part
    # DIP settled under the national rules with a fund derived from the data: Σ fund
    # payments equal the fund of each scheme to the cent, hospitals on both sides of cost
    assert "8. settled under policy 'dip-national-1.0'" in text
    assert "clearing point value" in text
    for scheme in ("employee", "resident"):
        line = next(t for t in text.splitlines() if f"Σ fund payments ({scheme})" in t)
        paid, fund = re.fullmatch(
            r"\s*Σ fund payments \(\w+\) = ([\d,.]+) == DIP fund "
            r"([\d,.]+) \(to the cent\)",
            line,
        ).groups()
        assert paid == fund
        value = re.search(rf"point value \({scheme}\): ([\d.]+) yuan", text).group(1)
        assert 1 < float(value) < 100  # yuan per point at score scale 1000
    # independently of the printed lines: from the settled file
    settled = pacsv.read_csv(
        out / "dip" / "settled.csv",
        convert_options=pacsv.ConvertOptions(
            column_types={
                "fund_payment": "string",
                "payment": "string",
                "total_cost": "string",
                "hospital_id": "string",
                "insurance_type": "string",
            }
        ),
    )
    rows = settled.to_pylist()
    assert len(rows) == 400
    funds = {}
    for r in rows:
        funds.setdefault(r["insurance_type"], [Decimal(0), Decimal(0)])
        funds[r["insurance_type"]][0] += Decimal(r["fund_payment"])
        funds[r["insurance_type"]][1] += Decimal(r["total_cost"])
    ratio = {"310": Decimal("0.85"), "390": Decimal("0.70")}  # employee, resident
    for scheme, (paid, cost) in funds.items():
        assert paid == (cost * ratio[scheme] * Decimal("0.97")).quantize(
            Decimal("0.01"), ROUND_HALF_UP
        )
    gain = Counter()
    for r in rows:
        gain[r["hospital_id"]] += Decimal(r["payment"]) - Decimal(r["total_cost"])
    assert min(gain.values()) < 0 < max(gain.values())
    match = re.search(r"(\d) hospitals paid above their cost, (\d) below", text)
    assert int(match.group(1)) > 0 and int(match.group(2)) > 0
    assert int(match.group(1)) == sum(1 for g in gain.values() if g > 0)


def test_demo_hospitals_straddle_break_even() -> None:
    """Generated costs sit around each group's price at the hospital's own efficiency: the
    demo's settlement has hospitals with a gain and hospitals with a loss, and all of them
    together are paid about what they spent (not 22 % less, as before)."""
    import warnings

    from drgkit.settlement import settle

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        settled = settle(_demo.generate_cases(4000, seed=3), "demo", "demo")
    payment: Counter = Counter()
    cost: Counter = Counter()
    for row in settled.select(["hospital_id", "payment", "total_cost", "settled"]).to_pylist():
        if row["settled"]:
            payment[row["hospital_id"]] += row["payment"]
            cost[row["hospital_id"]] += row["total_cost"]
    gains = [payment[h] - cost[h] for h in cost]
    assert len(gains) == 8
    assert min(gains) < 0 < max(gains)
    ratio = sum(payment.values()) / sum(cost.values())
    assert Decimal("0.9") < ratio < Decimal("1.1"), ratio


def test_demo_command_prints_break_even(tmp_path) -> None:
    from click.testing import CliRunner

    from drgkit.cli import cli

    out = tmp_path / "demo"
    result = CliRunner().invoke(
        cli, ["demo", "--cases", "1500", "--dip-cases", "300", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    match = re.search(
        r"break-even: (\d) hospitals with a gain, (\d) with a loss; payment ÷ cost over all "
        r"hospitals = ([\d.]+)",
        result.output,
    )
    assert match is not None, result.output
    assert int(match.group(1)) > 0 and int(match.group(2)) > 0
    assert 0.9 < float(match.group(3)) < 1.1
