"""The DIP catalogue builder: DIP.md's worked examples, hand-computed boundaries, and the fast
builder against the slow reference (tests/dip_build_reference.py) on generated histories."""

from __future__ import annotations

import csv
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drgkit.catalogue._build import BuildOptions, build_catalogue
from drgkit.catalogue._build_options import BuildOptionsError
from drgkit.errors import CaseDataError, DrgkitError
from tests import dip_build_reference as ref

STENT, ANGIO, IVUS = "36.0700", "88.5600", "00.2400"
HYST_LAP, HYST_OPEN = "68.4100", "68.4900"


def case(
    i: int, dx: str, procs: list[str], cost: str, *, year: int = 2023, level: int = 2, **extra
) -> dict:
    row = {
        "case_id": f"c{i}",
        "hospital_id": "H1",
        "hospital_level": level,
        "year": year,
        "diagnoses": dx,
        "procedures": "|".join(procs),
        "total_cost": cost,
        "los": 5,
        "age": 50,
        "age_days": None,
        "leaving_type": "1",
        "icu_days": 0,
        "cci": 0,
    }
    row.update(extra)
    return row


def spread(mean: int, count: int) -> list[int]:
    """``count`` distinct yuan amounts with exactly ``mean`` as their mean (count even)."""
    assert count % 2 == 0
    out = []
    for k in range(count // 2):
        out += [mean - 100 * (k + 1), mean + 100 * (k + 1)]
    return out


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows)


def rows_of(result, name: str) -> list[dict]:
    return getattr(result, name).to_pylist()


def by(rows: list[dict], key: str = "code") -> dict:
    return {r[key]: r for r in rows}


# ------------------------------------------------------------------ worked examples (DIP.md §3)


def test_related_procedure_split_worked_example():
    """I21.0 + stent 28,033; + angiography 28,849 (+2.91%) merged; + IVUS 44,003 (+56.97%)
    its own packet."""
    rows = []
    for mean, procs in ((28033, [STENT]), (28849, [STENT, ANGIO]), (44003, [STENT, IVUS])):
        rows += [case(len(rows), "I21.0", procs, str(c)) for c in spread(mean, 20)]
    res = build_catalogue(table(rows), BuildOptions(min_cases=15))
    comb = {(r["procedure"], r["related"]): r for r in rows_of(res, "combinations")}
    assert comb[(STENT, "")]["mean_cost"] == Decimal("28033.00")
    assert comb[(STENT, ANGIO)]["change_pct"] == Decimal("2.91")
    assert comb[(STENT, ANGIO)]["related_decision"] == "merged"
    assert comb[(STENT, ANGIO)]["packet"] == f"I21.0:{STENT}"
    assert comb[(STENT, IVUS)]["change_pct"] == Decimal("56.97")
    assert comb[(STENT, IVUS)]["related_decision"] == "split"
    packets = by(rows_of(res, "packets"))
    assert set(packets) == {f"I21.0:{STENT}", f"I21.0:{STENT}&{IVUS}"}
    assert packets[f"I21.0:{STENT}"]["cases"] == 40
    # merged packet mean: (20 × 28,033 + 20 × 28,849) / 40 = 28,441
    assert packets[f"I21.0:{STENT}"]["mean_cost"] == Decimal("28441.00")
    assert packets[f"I21.0:{STENT}&{IVUS}"]["mean_cost"] == Decimal("44003.00")
    assert [s[2] for s in res.report.splits] == [IVUS]


def test_c54_comprehensive_collapse_worked_example():
    """C54.1/C54.9 combinations with 14, 8, 13 and 10 cases, all below 15, become one packet
    'C54 相关手术组'."""
    rows = []
    for dx, proc, count in (
        ("C54.1", HYST_LAP, 14),
        ("C54.1", HYST_OPEN, 8),
        ("C54.9", HYST_LAP, 13),
        ("C54.9", HYST_OPEN, 10),
    ):
        rows += [case(len(rows), dx, [proc], str(20000 + 10 * k)) for k in range(count)]
    opt = BuildOptions(
        min_cases=15, procedure_attributes={HYST_LAP: "surgery", HYST_OPEN: "surgery"}
    )
    res = build_catalogue(table(rows), opt)
    assert res.packets.num_rows == 0
    comp = rows_of(res, "comprehensive")
    assert [(c["code"], c["kind"], c["name"], c["cases"]) for c in comp] == [
        ("C54:SS", "comprehensive", "C54 相关手术组", 45)
    ]
    assert {r["packet"] for r in rows_of(res, "combinations")} == {"C54:SS"}


# ------------------------------------------------------------------ weights, scores, trimming


def test_year_weights_1_2_7():
    rows = [
        case(i, "K35.3", [], str(c), year=y)
        for i, (y, c) in enumerate(((2021, 100), (2022, 200), (2023, 700)))
    ]
    res = build_catalogue(table(rows), BuildOptions(min_cases=1))
    # (1×100 + 2×200 + 7×700) / 10 = 540
    assert rows_of(res, "packets")[0]["mean_cost"] == Decimal("540.00")
    assert res.report.weights == (1, 2, 7)
    two = build_catalogue(table(rows[1:]), BuildOptions(min_cases=1))
    # two years take the newest two weights: (2×200 + 7×700) / 9 = 588.888… -> 588.89
    assert rows_of(two, "packets")[0]["mean_cost"] == Decimal("588.89")
    with pytest.raises(CaseDataError, match="year weights"):
        build_catalogue(table(rows), BuildOptions(min_cases=1, year_weights=(3, 7)))


def _two_packets() -> list[dict]:
    rows = [case(i, "K35.3", ["47.0100"], "100") for i in range(15)]
    rows += [case(15 + i, "K35.3", [], "300") for i in range(15)]
    return rows


@pytest.mark.parametrize(
    ("opts", "expected"),
    [
        ({"scale": 1000}, {"K35.3:47.0100": "500.0000", "K35.3": "1500.0000"}),
        ({"scale": 1, "score_decimals": 2}, {"K35.3:47.0100": "0.50", "K35.3": "1.50"}),
        (
            {"score_method": "reference", "reference_packet": "K35.3", "scale": 1000},
            {"K35.3:47.0100": "333.3333", "K35.3": "1000.0000"},
        ),
        (
            {
                "score_method": "reference",
                "reference_packet": "K35.3",
                "scale": 100,
                "score_decimals": 1,
            },
            {"K35.3:47.0100": "33.3", "K35.3": "100.0"},
        ),
        (
            {"score_method": "fixed", "fixed_mean": "250", "scale": 1},
            {"K35.3:47.0100": "0.4000", "K35.3": "1.2000"},
        ),
    ],
)
def test_score_is_mean_over_base_times_scale(opts, expected):
    res = build_catalogue(table(_two_packets()), BuildOptions(min_cases=15, **opts))
    assert {p["code"]: str(p["score"]) for p in rows_of(res, "packets")} == expected


def test_reference_packet_must_exist():
    with pytest.raises(BuildOptionsError, match=r"reference packet 'X99\.9'"):
        build_catalogue(
            table(_two_packets()),
            BuildOptions(min_cases=15, score_method="reference", reference_packet="X99.9"),
        )


def test_trimming_cuts_2_5_and_97_5_percent_quantiles():
    # 40 cases costing 1..40 yuan: k = floor(40 × 0.025) = 1, keep 2..39, mean 20.5
    rows = [case(i, "K35.3", [], str(i + 1)) for i in range(40)]
    p = rows_of(build_catalogue(table(rows), BuildOptions(min_cases=1)), "packets")[0]
    assert (p["cases"], p["cases_kept"], p["mean_cost"]) == (40, 38, Decimal("20.50"))
    # 24 cases (< 25) are not trimmed
    p = rows_of(build_catalogue(table(rows[:24]), BuildOptions(min_cases=1)), "packets")[0]
    assert (p["cases_kept"], p["mean_cost"]) == (24, Decimal("12.50"))
    # ties at a bound are kept: 1, 1, 2..39: bound c(1) = 1 keeps both 1s, drops 39 only
    tied = [case(0, "K35.3", [], "1"), *rows[:39]]
    p = rows_of(build_catalogue(table(tied), BuildOptions(min_cases=1)), "packets")[0]
    assert p["cases_kept"] == 39


def test_cv_is_weighted_population_sd_over_mean():
    rows = [case(i, "K35.3", [], c) for i, c in enumerate(("100", "300"))]
    p = rows_of(build_catalogue(table(rows), BuildOptions(min_cases=1)), "packets")[0]
    assert p["cv"] == Decimal("0.5000")  # sd 100, mean 200


# ------------------------------------------------------------------ threshold boundaries


def test_exactly_n_cases_is_core_and_one_less_is_not():
    rows = [case(i, "K35.3", ["47.0100"], "100") for i in range(15)]
    rows += [case(15 + i, "K35.9", ["47.0100"], "100") for i in range(14)]
    res = build_catalogue(table(rows), BuildOptions(min_cases=15, blank_packet=False))
    assert [p["code"] for p in rows_of(res, "packets")] == ["K35.3:47.0100"]
    assert [(c["code"], c["cases"]) for c in rows_of(res, "comprehensive")] == [("K35:NK", 14)]


@pytest.mark.parametrize(
    ("related_mean", "decision"),
    [("1100", "split"), ("1099.99", "merged"), ("900", "split"), ("900.01", "merged")],
)
def test_exactly_ten_percent_splits(related_mean, decision):
    rows = [case(i, "I21.0", [STENT], "1000") for i in range(15)]
    rows += [case(15 + i, "I21.0", [STENT, IVUS], related_mean) for i in range(15)]
    res = build_catalogue(table(rows), BuildOptions(min_cases=15))
    comb = by(rows_of(res, "combinations"), "related")
    assert comb[IVUS]["related_decision"] == decision


def test_related_set_below_threshold_merges_even_with_big_change():
    rows = [case(i, "I21.0", [STENT], "1000") for i in range(15)]
    rows += [case(15 + i, "I21.0", [STENT, IVUS], "5000") for i in range(14)]
    comb = by(
        rows_of(build_catalogue(table(rows), BuildOptions(min_cases=15)), "combinations"), "related"
    )
    assert comb[IVUS]["related_decision"] == "merged"
    assert comb[IVUS]["change_pct"] == Decimal("400.00")


def test_coverage_threshold():
    counts = {"A01.0": 50, "A02.0": 30, "A03.0": 15, "A04.0": 5}
    rows = []
    for dx, count in counts.items():
        rows += [case(len(rows), dx, [], "100") for _ in range(count)]
    res = build_catalogue(table(rows), BuildOptions(coverage="95%"))
    assert res.report.threshold == 15 and res.report.core_cases == 95
    assert build_catalogue(table(rows), BuildOptions(coverage="0.96")).report.threshold == 5


def test_blank_packet_for_small_comprehensive_groups():
    rows = [case(i, "K35.3", [], "100") for i in range(3)]
    res = build_catalogue(table(rows), BuildOptions(min_cases=15))
    assert [(c["code"], c["kind"], c["cases"]) for c in rows_of(res, "comprehensive")] == [
        ("KBBZ", "blank", 3)
    ]


# ------------------------------------------------------------------ sub-types, levels, care


def test_death_subtype_kept_with_coefficient():
    rows = [case(i, "J18.9", [], "1000") for i in range(40)]
    rows += [case(40 + i, "J18.9", [], "5000", leaving_type="5") for i in range(10)]
    res = build_catalogue(
        table(rows), BuildOptions(min_cases=15, aux_min_cases=50, aux_min_band_cases=10)
    )
    subs = rows_of(res, "subtypes")
    # packet mean (40×1000 + 10×5000)/50 = 1800; deaths 5000 / 1800 = 2.7778
    assert [(s["dimension"], s["band"], s["cases"], s["coefficient"]) for s in subs] == [
        ("death", "death", 10, Decimal("2.7778"))
    ]
    assert subs[0]["cv_after"] == Decimal("0.0000")
    # one case short of the packet minimum: no sub-typing
    res = build_catalogue(table(rows[1:]), BuildOptions(min_cases=15, aux_min_cases=50))
    assert res.subtypes.num_rows == 0


def test_level_coefficients_and_primary_care():
    rows = [case(i, "K35.3", [], "100", level=1) for i in range(30)]
    rows += [case(30 + i, "K35.3", [], "400", level=3) for i in range(10)]
    res = build_catalogue(table(rows), BuildOptions(min_cases=15))
    # all-case mean (30×100 + 10×400)/40 = 175: level 1 100/175, level 3 400/175
    assert [(r["hospital_level"], r["coefficient"]) for r in rows_of(res, "levels")] == [
        (1, Decimal("0.5714")),
        (3, Decimal("2.2857")),
    ]
    p = rows_of(res, "packets")[0]
    # CV = sqrt(0.75×75² + 0.25×225²)/175 = 129.9/175 = 0.7423 > 0.7: not primary care
    assert p["cv"] == Decimal("0.7423") and p["primary_care"] is False
    rows = rows[:30] + [case(30 + i, "K35.3", [], "150", level=3) for i in range(10)]
    p = rows_of(build_catalogue(table(rows), BuildOptions(min_cases=15)), "packets")[0]
    assert p["primary_care"] is True


# ------------------------------------------------------------------ input problems, output


def test_bad_rows_are_excluded_with_reasons_never_dropped():
    rows = [case(i, "K35.3", [], "100") for i in range(3)]
    rows += [
        case(3, "K35.3", [], "12.345"),
        case(4, "", [], "100"),
        case(5, "K35.3", [], "-1"),
        case(6, "K35.3", [], "100", hospital_level=7),
        case(7, "7", [], "100"),
        case(8, "K35.3", [], "100", los="x"),
    ]
    for r in rows:  # a text column, as read from CSV
        r["los"] = str(r["los"])
    res = build_catalogue(table(rows), BuildOptions(min_cases=1))
    assert rows_of(res, "excluded") == [
        {"row": 4, "case_id": "c3", "reason": "total_cost: has fractions of a cent"},
        {"row": 5, "case_id": "c4", "reason": "diagnoses: no principal diagnosis"},
        {"row": 6, "case_id": "c5", "reason": "total_cost: not positive"},
        {"row": 7, "case_id": "c6", "reason": "hospital_level: not 1, 2 or 3"},
        {
            "row": 8,
            "case_id": "c7",
            "reason": "diagnoses: principal diagnosis is not an ICD-10 code",
        },
        {"row": 9, "case_id": "c8", "reason": "los: not a whole number >= 0"},
    ]
    assert res.report.valid + res.report.excluded == len(rows)


def test_missing_column_is_an_error_naming_it():
    rows = [case(0, "K35.3", [], "100")]
    del rows[0]["total_cost"]
    with pytest.raises(CaseDataError, match="'total_cost'") as info:
        build_catalogue(table(rows))
    assert isinstance(info.value, DrgkitError) and info.value.column == "total_cost"


def test_write_folder_and_toml_options(tmp_path):
    toml = tmp_path / "build.toml"
    (tmp_path / "attrs.csv").write_text(f"procedure,attribute\n{HYST_LAP},surgery\n")
    toml.write_text(
        '[build]\nmin_cases = 2\nrelated_split = "10%"\nyear_weights = [1, 2, 7]\n'
        'procedure_attributes = "attrs.csv"\nscale = 100\n'
    )
    opt = BuildOptions.from_toml(toml)
    assert opt.min_cases == 2 and opt.related_split == Fraction(1, 10)
    assert dict(opt.procedure_attributes) == {HYST_LAP: "surgery"}
    rows = [case(i, "C54.1", [HYST_LAP], "100") for i in range(3)] + [
        case(3, "C54.9", [HYST_LAP], "200")
    ]
    res = build_catalogue(table(rows), opt)
    out = res.write(tmp_path / "cat", catalogue="test_local", region="demo")
    assert sorted(p.name for p in out.iterdir()) == [
        "aux.csv",
        "build",
        "comprehensive.csv",
        "core.csv",
        "meta.csv",
        "packet_stats.csv",
        "packets.csv",
        "px_attribute.csv",
    ]
    assert sorted(p.name for p in (out / "build").iterdir()) == [
        "combinations.csv",
        "comprehensive.csv",
        "excluded.csv",
        "levels.csv",
        "packet_stats.csv",
        "packets.csv",
        "report.json",
        "report.md",
        "subtypes.csv",
    ]

    def read(name: str) -> list[dict]:
        with open(out / name, encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))

    meta = {r["key"]: r["value"] for r in read("meta.csv")}
    assert meta["format"] == "1" and meta["catalogue"] == "test_local"
    assert meta["score_scale"] == "100" and meta["blank_packet"] == "KBBZ"
    assert meta["base_year_weights"] == "7"
    # M = (3×100 + 200)/4 = 125: core score 100/125 × 100 = 80, blank 200/125 × 100 = 160
    assert read("packets.csv") == [
        {
            "packet": f"C54.1:{HYST_LAP}",
            "name": f"C54.1:{HYST_LAP}",
            "kind": "core",
            "score": "80.0000",
        },
        {"packet": "KBBZ", "name": "空白病种", "kind": "blank", "score": "160.0000"},
    ]
    assert read("core.csv") == [
        {
            "packet": f"C54.1:{HYST_LAP}",
            "dx_key": "C54.1",
            "principal_px": HYST_LAP,
            "related_px": "",
        }
    ]
    assert read("px_attribute.csv") == [{"code": HYST_LAP, "attribute": "相关手术"}]
    stats = read("packet_stats.csv")
    assert [
        (r["packet"], r["hospital_level"], r["cases"], r["mean_cost"], r["cv"]) for r in stats
    ] == [
        (f"C54.1:{HYST_LAP}", "all", "3", "100.00", "0.0000"),
        (f"C54.1:{HYST_LAP}", "2", "3", "100.00", "0.0000"),
        ("KBBZ", "all", "1", "200.00", "0.0000"),
        ("KBBZ", "2", "1", "200.00", "0.0000"),
    ]
    assert "threshold n = 2" in (out / "build" / "report.md").read_text(encoding="utf-8")
    toml.write_text("[build]\nmin_case = 2\n")
    with pytest.raises(BuildOptionsError, match="unknown option 'min_case'"):
        BuildOptions.from_toml(toml)


# ------------------------------------------------------------------ fast == reference


def _compare(rows: list[dict], opt: BuildOptions) -> None:
    expected = ref.build(rows, opt)
    got = build_catalogue(table(rows), opt)
    assert got.report.threshold == expected["threshold"]
    for name in (
        "packets",
        "comprehensive",
        "subtypes",
        "levels",
        "packet_stats",
        "combinations",
        "excluded",
    ):
        actual = rows_of(got, name)
        if name == "combinations":
            actual = [{k: v for k, v in r.items() if k != "reason"} for r in actual]
        assert actual == expected[name], name


DXS = ["I21.0", "I21.0x001", "I21.1", "C54.1", "C54.9", "K35", "k35.3"]
SECONDARY = ["E11.9", "E11.2", "I21.0", "C78.0", "C34.1", "K72.1", "K70.3", "I10"]
PROCS = ["36.0700", "88.5600", "00.2400", "68.4100", "47.0100"]


@st.composite
def histories(draw):
    n = draw(st.integers(1, 60))
    years = draw(st.lists(st.sampled_from([2021, 2022, 2023]), min_size=1, max_size=3, unique=True))
    rows = []
    for i in range(n):
        procs = draw(st.lists(st.sampled_from(PROCS), max_size=3))
        cost = draw(
            st.one_of(
                st.integers(1, 60).map(lambda c: str(c * 50)),
                st.sampled_from(["1234.56", "1234.5", "0.01"]),
            )
            if draw(st.integers(0, 30))
            else st.sampled_from(["", "x", "1.005", "0"])
        )
        rows.append(
            {
                "case_id": f"c{i}",
                "hospital_id": "H",
                "hospital_level": draw(
                    st.sampled_from([1, 1, 2, 3] + ([4] if i % 17 == 5 else []))
                ),
                "year": draw(st.sampled_from(years)),
                "diagnoses": "|".join(
                    [
                        draw(st.sampled_from(DXS)),
                        *draw(st.lists(st.sampled_from(SECONDARY), max_size=3)),
                    ]
                ),
                "procedures": "|".join(procs),
                "total_cost": cost,
                "los": draw(st.one_of(st.none(), st.integers(0, 30))),
                "age": draw(st.integers(0, 90)),
                "age_days": draw(st.one_of(st.none(), st.integers(0, 400))),
                "leaving_type": draw(st.sampled_from(["1", "1", "5"])),
                "icu_days": draw(st.integers(0, 35)),
                "cci": draw(st.integers(0, 7)),
            }
        )
    if draw(st.booleans()):  # no cci column: CCI from the secondary diagnoses
        for r in rows:
            del r["cci"]
    return rows


@st.composite
def options(draw):
    method = draw(st.sampled_from(["mean", "fixed"]))
    return BuildOptions(
        min_cases=draw(st.integers(1, 6)),
        coverage=draw(st.sampled_from([None, None, "0.5", "0.9"])),
        related_split=draw(st.sampled_from(["0", "0.1", "0.5"])),
        score_method=method,
        fixed_mean="321.5" if method == "fixed" else None,
        scale=draw(st.sampled_from([1, 100, 1000])),
        score_decimals=draw(st.integers(0, 4)),
        trim_share=draw(st.sampled_from(["0", "0.025", "0.1", "0.25"])),
        trim_min_cases=draw(st.integers(1, 12)),
        procedure_attributes={
            "36.0700": "surgery",
            "88.5600": "diagnostic",
            "47.0100": "therapeutic",
        },
        blank_packet=draw(st.booleans()),
        aux_min_cases=draw(st.integers(1, 10)),
        aux_min_band_cases=draw(st.integers(1, 4)),
        aux_cv_cut=draw(st.sampled_from(["0", "0.2", "0.5"])),
        primary_care_cv=draw(st.sampled_from(["0.3", "0.7"])),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), options())
def test_fast_equals_reference(rows, opt):
    if not any(ref.read(rows, opt)[0]):
        with pytest.raises(CaseDataError, match="no valid case"):
            build_catalogue(table(rows), opt)
        return
    _compare(rows, opt)


def test_fast_equals_reference_on_worked_examples():
    rows = []
    for mean, procs in ((28033, [STENT]), (28849, [STENT, ANGIO]), (44003, [STENT, IVUS])):
        rows += [
            case(
                len(rows),
                "I21.0",
                procs,
                str(c),
                year=2021 + len(rows) % 3,
                level=1 + len(rows) % 3,
                cci=len(rows) % 6,
            )
            for c in spread(mean, 30)
        ]
    _compare(rows, BuildOptions(min_cases=15, aux_min_cases=20, aux_min_band_cases=5))


def test_list_columns_equal_text_columns():
    """Diagnoses and procedures as Arrow lists (with nulls, empty and untrimmed codes) build
    the same catalogue as the '|'-separated texts."""
    rows = []
    for mean, procs in ((28033, [STENT]), (28849, [STENT, ANGIO]), (44003, [STENT, IVUS])):
        rows += [case(len(rows), "I21.0|E11.9", procs, str(c)) for c in spread(mean, 16)]
    rows += [case(len(rows), "K35.3", [], "500") for _ in range(16)]
    listed = [
        dict(
            r,
            diagnoses=[" " + r["diagnoses"].split("|")[0].lower(), None, "E11.9"],
            procedures=[p for p in r["procedures"].split("|") if p] + [""] or None,
        )
        for r in rows
    ]
    listed[-1]["procedures"] = None
    opt = BuildOptions(min_cases=15)
    a, b = build_catalogue(table(rows), opt), build_catalogue(table(listed), opt)
    for name in ("packets", "comprehensive", "combinations", "packet_stats"):
        assert rows_of(a, name) == rows_of(b, name), name
    assert len(rows_of(a, "packets")) == 3


def test_exact_with_huge_costs():
    """Costs near the money limit (drgkit._money.LIMIT_CENTS) push Σw·c² far past 2^64: the
    128-bit accumulation must still agree with the Fraction reference."""
    from drgkit._money import LIMIT_CENTS

    big = LIMIT_CENTS // 100  # yuan: the largest cost drgkit accepts
    rows = [
        case(
            i,
            "K35.3",
            ["47.0100"] if i % 3 else [],
            str(big - 7_777_777 * i),
            year=2021 + i % 3,
            level=1 + i % 3,
            cci=i % 6,
            leaving_type="5" if i % 7 == 0 else "1",
        )
        for i in range(300)
    ]
    _compare(
        rows, BuildOptions(min_cases=15, aux_min_cases=20, aux_min_band_cases=5, aux_cv_cut="0")
    )
    res = build_catalogue(table(rows), BuildOptions(min_cases=15))
    assert sum(int(r["mean_cost"]) for r in rows_of(res, "packets")) > 2 * big - 10**10


def test_group_sums_are_exact_in_128_bits():
    """The accumulator's Σw, Σw·c and Σw·c² equal Python's big-integer sums for costs up to
    the money limit and weights up to 65535 (every carry path taken)."""
    import numpy as np

    from drgkit.catalogue._build_stats import group_stats

    rng = np.random.default_rng(7)
    n = 5000
    cost = np.concatenate(
        [
            rng.integers(10**13 - 10**6, 10**13, n // 2),
            rng.integers(1, 2**44 - 1, n // 2).clip(max=10**13),
        ]
    )
    w = rng.integers(1, 65536, n)
    gid = rng.integers(-1, 3, n)
    st = group_stats(gid, 3, cost, w)
    for g in range(3):
        sel = [(int(c), int(x)) for c, x, k in zip(cost, w, gid, strict=True) if k == g]
        assert st.n[g] == len(sel)
        assert st.sw[g] == sum(x for _c, x in sel)
        assert st.swc[g] == sum(x * c for c, x in sel)
        assert st.swc2[g] == sum(x * c * c for c, x in sel)


def test_diagnostic_principal_procedure_counts_as_conservative(tmp_path):
    rows = [case(i, "I21.0", [], "1000") for i in range(10)]
    rows += [case(10 + i, "I21.0", [ANGIO, IVUS], "2000") for i in range(10)]
    attrs_ = {ANGIO: "diagnostic", IVUS: "diagnostic"}
    res = build_catalogue(table(rows), BuildOptions(min_cases=15, procedure_attributes=attrs_))
    assert [(p["code"], p["cases"], p["mean_cost"]) for p in rows_of(res, "packets")] == [
        ("I21.0", 20, Decimal("1500.00"))
    ]
    res.write(tmp_path / "cat")
    meta = (tmp_path / "cat" / "meta.csv").read_text(encoding="utf-8")
    assert "conservative_attributes,内科诊疗|诊断性操作" in meta
    res = build_catalogue(
        table(rows),
        BuildOptions(min_cases=10, procedure_attributes=attrs_, conservative_attributes=()),
    )
    # no case of I21.0 + angiography alone: the IVUS set cannot split and joins it
    assert [p["code"] for p in rows_of(res, "packets")] == ["I21.0", f"I21.0:{ANGIO}"]


def test_csv_file_builds_like_the_table(tmp_path):
    """A CSV history (every column text, as open_cases reads it) builds the same catalogue;
    a malformed CSV row is an error naming the file and row, not a silent drop."""
    rows = []
    for mean, procs in ((28033, [STENT]), (44003, [STENT, IVUS])):
        rows += [
            case(
                len(rows),
                "I21.0|E11.9",
                procs,
                f"{c}.50",
                year=2022 + len(rows) % 2,
                level=1 + len(rows) % 3,
            )
            for c in spread(mean, 16)
        ]
    path = tmp_path / "history.csv"
    pacsv.write_csv(table(rows), path)
    opt = BuildOptions(min_cases=15)
    a, b = build_catalogue(table(rows), opt), build_catalogue(path, opt)
    for name in ("packets", "comprehensive", "combinations", "packet_stats", "levels"):
        assert rows_of(a, name) == rows_of(b, name), name
    text = path.read_text(encoding="utf-8").splitlines()
    text.insert(3, "only,three,fields")
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    with pytest.raises(CaseDataError, match=r"3 fields, not 13: 'only,three,fields'") as info:
        build_catalogue(path, opt)
    assert info.value.file == str(path)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), options(), st.integers(0, 50))
def test_fast_equals_reference_reference_packet_method(rows, opt, pick):
    """The reference-packet score method, with a core packet of the build as reference."""
    if not any(ref.read(rows, opt)[0]):
        return
    codes = [p["code"] for p in ref.build(rows, opt)["packets"]]
    if not codes:
        return
    import attrs

    _compare(
        rows,
        attrs.evolve(
            opt,
            score_method="reference",
            fixed_mean=None,
            reference_packet=codes[pick % len(codes)],
        ),
    )


def test_cci_from_secondary_diagnoses_when_no_cci_column():
    from drgkit.catalogue._build_cci import cci_per_case

    # MI 1 + complicated diabetes 2 (the plain one dropped) + metastasis 6 (the primary
    # cancer dropped) = 9; the principal diagnosis never counts; severe liver 3 only
    lists = [
        ["I21.0", "I21.0", "E11.2", "E11.9", "C78.0", "C34.1"],
        ["C34.1"],
        [],
        ["K35.3", "K70.3", "K72.1"],
        ["K35.3", "c34.1", "I50.0x001"],
    ]
    codes = sorted({c.upper() for lst in lists for c in lst})
    offsets = np.cumsum([0] + [len(x) for x in lists])
    ids = np.array([codes.index(c.upper()) for lst in lists for c in lst], np.int64)
    assert cci_per_case(offsets, ids, codes).tolist() == [9, 0, 0, 3, 3]
    rows = [
        case(
            i,
            "|".join(["J18.9", *(["I21.0", "E11.2"] if i % 2 else ["I10"])]),
            [],
            str(1000 + 3000 * (i % 2)),
        )
        for i in range(60)
    ]
    for r in rows:
        del r["cci"]
    opt = BuildOptions(min_cases=15, aux_min_cases=50, aux_min_band_cases=10)
    _compare(rows, opt)
    subs = rows_of(build_catalogue(table(rows), opt), "subtypes")
    # CCI 3 (band 3-4) costs 4000 against a mean of 2500; CCI 0 costs 1000
    assert [(s["dimension"], s["band"], s["coefficient"]) for s in subs] == [
        ("cci", "0", Decimal("0.4000")),
        ("cci", "3-4", Decimal("1.6000")),
    ]
