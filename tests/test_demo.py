"""The embedded default: demo rulesets and the case generator."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

import pyarrow as pa
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
        assert all(isinstance(r[k], Decimal) and r[k] == r[k].quantize(Decimal("0.01"))
                   for k in ("total_cost", "fund_paid"))
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
    # NO_DX_IN is reserved in the format and has its twin NO_SDX_IN in the demo
    assert set(TEMPLATES) - used <= {"NO_DX_IN"}


def test_versions_differ_where_the_readme_says() -> None:
    """G45.900 (TIA) moved from BZ1 to BR2 in 2024."""
    case = {"case_id": ["a", "b"], "diagnoses": ["G45.900", "G45.900"], "sex": ["1", "1"],
            "age": ["60", "60"], "discharge_date": ["2023-06-01", "2024-06-01"]}
    result = drgkit.group(pa.table(case), "demo").to_pylist()
    assert result[0]["adrg"] == "BZ1" and result[1]["adrg"] == "BR2"
