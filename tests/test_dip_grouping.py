"""DIP grouping: hand-computed cases per tier on the demo catalogue, and the kernel against the
naive reference (tests/dip_naive.py) on generated catalogues and cases."""

from __future__ import annotations

import csv
import decimal
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import REPO
from dip_naive import NaiveCatalogue
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import drgkit
from drgkit.catalogue import Catalogue
from drgkit.grouping._dip import group_dip

DEMO = REPO / "catalogues" / "demo" / "2024"


def _table(cases: list[dict]) -> pa.Table:
    return pa.table(
        {
            "case_id": pa.array([c.get("case_id") for c in cases], pa.string()),
            "diagnoses": pa.array([c.get("diagnoses") for c in cases], pa.list_(pa.string())),
            "procedures": pa.array([c.get("procedures") for c in cases], pa.list_(pa.string())),
            "ventilation_hours": pa.array(
                [c.get("ventilation_hours") for c in cases], pa.float64()
            ),
            "birth_weight": pa.array([c.get("birth_weight") for c in cases], pa.float64()),
            "age_days": pa.array([c.get("age_days") for c in cases], pa.float64()),
            "age": pa.array([c.get("age") for c in cases], pa.int64()),
            "leaving_type": pa.array([c.get("leaving_type") for c in cases], pa.int64()),
            "icu_days": pa.array([c.get("icu_days") for c in cases], pa.int64()),
            "cci": pa.array([c.get("cci") for c in cases], pa.int64()),
        }
    )


def _one(catalogue, **case) -> dict:
    case.setdefault("case_id", "x")
    return group_dip(_table([case]), catalogue).to_pylist()[0]


# ------------------------------------------------------------------ hand-computed, per tier

HAND = [
    # (diagnoses, procedures, extra, expected packet, tier) — each worked out from the tables
    (["K35.800x001"], ["47.0100x001"], {}, "K35.8-1", "core"),  # 4-char dx + principal
    (["K35.800x001"], [], {}, "K35.8-0", "core"),  # conservative
    (["K35.800x001"], ["88.0100"], {}, "K35.8-0", "core"),  # diagnostic principal = conservative
    (["K35.800x001"], ["57.9400"], {}, "K35.8-0", "core"),  # excluded principal = none
    # partial match: the packet with the most matching related procedures wins
    (["I21.000"], ["36.0700x001", "00.2400"], {}, "I21.0-2", "core"),
    # the 28,849 worked example: angiography merged into the stent packet
    (["I21.000"], ["36.0700x001", "88.5600"], {}, "I21.0-1", "core"),
    # related procedure matches no row: back to dx + principal procedure
    (["I21.000"], ["36.0700x001", "99.2900"], {}, "I21.0-1", "core"),
    (["C50.900"], ["85.4300", "40.2300"], {}, "C50.9-2", "core"),
    (["K40.900"], ["17.1200"], {}, "K40.9-1", "core"),  # principal alternatives (|)
    # pre-grouping, regardless of diagnosis
    (["K35.800x001"], ["47.0100", "50.5900"], {}, "PA-LT", "pregroup"),
    (["J18.900"], [], {"ventilation_hours": 96.0}, "PA-VENT96", "pregroup"),
    (["J18.900"], [], {"ventilation_hours": 95.5}, "J18.9-0", "core"),
    (["P07.100"], [], {"birth_weight": 1499.0, "age_days": 3.0}, "PA-NB1", "pregroup"),
    (["P07.100"], [], {"birth_weight": 1500.0, "age_days": 3.0}, "PA-NB2", "pregroup"),
    # merge rules: combination in one session, and a 3-character diagnosis merge
    (["K80.100"], ["51.2300", "51.4100"], {}, "MG-CHOL-ERCP", "merge"),
    (["K80.500"], ["51.2200"], {}, "MG-K80-OPEN", "merge"),
    (["S72.000"], ["81.5100"], {}, "MG-HIP", "merge"),
    # sub-division: tumour re-treatment, burns, drug-resistant TB
    (["Z51.100", "C34.100"], [], {}, "SD-CHEMO", "subdivide"),
    (["Z51.800", "C50.900"], ["99.2800"], {}, "SD-IMMUNE", "subdivide"),
    (["T22.300", "T31.400"], [], {}, "SD-BURN3", "subdivide"),
    (["A15.000", "U84.300"], [], {}, "SD-MDRTB", "subdivide"),
    # comprehensive: category x attribute, descending when the pair has no packet
    (["K35.900"], ["47.0900"], {}, "K35-S", "comprehensive"),
    (["K80.500"], ["51.8800"], {}, "K80-T", "comprehensive"),
    (["I21.400"], ["88.5600"], {}, "I21-D", "comprehensive"),
    (["I21.400"], [], {}, "I21-M", "comprehensive"),
    # no 相关手术 packet for I63: the next attribute down that has one (治疗性操作)
    (["I63.500"], ["47.0100"], {}, "I63-T", "comprehensive"),
    (["J18.000"], ["99.9999"], {}, "J18-M", "comprehensive"),  # unknown attribute = medical
    # prefix fallback: longest prefix, then chapter ranges
    (["I25.100"], [], {}, "FB-I2", "prefix"),
    (["K92.200"], [], {}, "FB-K", "prefix"),
    (["J45.900"], [], {}, "FB-J", "prefix"),
    (["D36.900"], [], {}, "FB-C00-D48", "prefix"),
    # blank packet
    (["A01.000"], [], {}, "KBBZ", "blank"),
]


@pytest.mark.parametrize(("dx", "px", "extra", "packet", "tier"), HAND)
def test_demo_tiers_hand_computed(dx, px, extra, packet, tier) -> None:
    row = _one("dip_demo_2024", diagnoses=dx, procedures=px, **extra)
    assert (row["status"], row["packet"], row["tier"], row["scheme"]) == ("ok", packet, tier, "dip")
    assert row["score"] == Catalogue.from_path(DEMO).score(packet)
    naive = NaiveCatalogue.load(DEMO).group({"diagnoses": dx, "procedures": px, **extra})
    assert naive == ("", packet, tier)


def test_scores_are_exact_decimals_and_kind_is_reported() -> None:
    row = _one(DEMO, diagnoses=["K35.300"], procedures=["47.0100"])
    assert row["score"] == decimal.Decimal("905.5")
    assert row["packet_kind"] == "core"
    assert _one(DEMO, diagnoses=["J18.900"])["packet_kind"] == "primary"
    assert row["catalogue"] == "dip_demo_2024"


def test_aux_subtype_highest_coefficient() -> None:
    old = _one(DEMO, diagnoses=["I21.000"], age=70, leaving_type=1)
    assert (old["aux_subtype"], old["aux_coefficient"]) == ("A66", decimal.Decimal("1.12"))
    both = _one(DEMO, diagnoses=["I21.000"], age=70, leaving_type=5)
    assert (both["aux_subtype"], both["aux_coefficient"]) == ("D", decimal.Decimal("1.35"))
    young = _one(DEMO, diagnoses=["I21.000"], age=40, leaving_type=1)
    assert young["aux_subtype"] is None and young["aux_coefficient"] is None
    newborn = _one(DEMO, diagnoses=["J18.900"], age=0, age_days=20.0)
    assert newborn["aux_subtype"] == "N28"


def test_bad_cases_get_statuses_and_nothing_is_dropped() -> None:
    cases = [
        {"case_id": "1", "diagnoses": ["Z00.000"]},
        {"case_id": "2", "diagnoses": []},
        {"case_id": "3", "diagnoses": ["", "K35.800"]},
        {"case_id": "1", "diagnoses": ["K35.800"]},
        {"case_id": None, "diagnoses": ["K35.800"]},
        {"case_id": "6", "diagnoses": None},
        {"case_id": "7", "diagnoses": ["K35.800"], "procedures": ["47.01"]},
    ]
    out = group_dip(_table(cases), DEMO).to_pylist()
    assert len(out) == len(cases)
    got = [(r["case_id"], r["status"], r["reason"]) for r in out]
    assert got == [
        ("1", "ungroupable", "excluded_principal_dx"),
        ("2", "invalid", "principal_dx_missing"),
        ("3", "invalid", "principal_dx_missing"),
        ("1", "invalid", "duplicate_case_id"),
        (None, "invalid", "case_id_missing"),
        ("6", "invalid", "principal_dx_missing"),
        ("7", "ok", None),
    ]
    assert "Z00.000" in out[0]["detail"]


def test_no_blank_packet_means_ungroupable(tmp_path: Path) -> None:
    folder = _copy_demo(tmp_path, meta={"blank_packet": ""})
    row = _one(folder, diagnoses=["A01.000"])
    assert (row["status"], row["reason"], row["packet"]) == ("ungroupable", "no_packet", None)


def test_text_code_columns_and_csv_input(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_text(
        "case_id,diagnoses,procedures\na,I21.000|E11.900,36.0700x001|00.2400\nb,K35.800x001,\n",
        encoding="utf-8",
    )
    out = drgkit.group(path, "dip_demo_2024").to_pylist()
    assert [r["packet"] for r in out] == ["I21.0-2", "K35.8-0"]


def test_group_dispatch_keeps_drg_path() -> None:
    assert (
        "drg"
        in drgkit.group(
            _table([{"case_id": "a", "diagnoses": ["K35.800"]}]), "demo_2024"
        ).column_names
    )


def _copy_demo(tmp_path: Path, meta: dict[str, str] | None = None) -> Path:
    folder = tmp_path / "cat"
    folder.mkdir(parents=True)
    for f in DEMO.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    if meta:
        rows = list(csv.reader(open(folder / "meta.csv", encoding="utf-8")))
        rows = [[k, meta.get(k, v)] if k in meta else [k, v] for k, v in rows]
        with open(folder / "meta.csv", "w", encoding="utf-8", newline="") as h:
            csv.writer(h).writerows(rows)
    return folder


# ------------------------------------------------------------ kernel vs naive, generated

# small alphabets so that codes, patterns and keys collide often
DX_CODES = [f"{a}0{c}.{d}0" for a in "AK" for c in "01" for d in "01"]
PX_CODES = [f"{a}{b}.{c}{d}" for a in "12" for b in "1" for c in "12" for d in "12"]


def _prefix(code: str, n: int) -> str:
    norm = code.replace(".", "")[:n]
    return norm if len(norm) <= 3 else f"{norm[:3]}.{norm[3:]}"


dx_pattern = st.builds(_prefix, st.sampled_from(DX_CODES), st.integers(1, 5))
#: rule tiers come first: narrower diagnosis patterns leave cases for the later tiers
rule_dx_pattern = st.builds(_prefix, st.sampled_from(DX_CODES), st.integers(3, 5))
px_pattern = st.builds(_prefix, st.sampled_from(PX_CODES), st.integers(1, 4))


def _spec(pattern, max_alts=2, max_items=2, allow_all=True):
    alt = st.lists(pattern, min_size=1, max_size=max_items if allow_all else 1)
    return st.lists(alt, min_size=1, max_size=max_alts).map(
        lambda alts: "|".join("+".join(a) for a in alts)
    )


def _opt(strategy):
    return st.one_of(st.just(""), strategy)


ATTR_NAMES = ["相关手术", "治疗性操作", "诊断性操作", "内科诊疗"]
SCORES = ["1", "2", "2.5", "3"]


@st.composite
def catalogues(
    draw, rules: bool = True, dx_codes: list[str] = DX_CODES
) -> dict[str, list[list[str]]]:
    files: dict[str, list[list[str]]] = {}
    packets: list[list[str]] = []

    def packet(kind: str) -> str:
        code = f"P{len(packets)}"
        packets.append([code, code, kind, draw(st.sampled_from(SCORES))])
        return code

    rule_header = [
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
    ]
    for name, kind in (
        ("pregroup.csv", "pregroup"),
        ("merge.csv", "merged"),
        ("subdivide.csv", "subdivided"),
    ):
        rows = [rule_header]
        for seq in draw(st.lists(st.integers(1, 50), max_size=2 if rules else 0, unique=True)):
            cond = [
                draw(_opt(_spec(rule_dx_pattern, allow_all=False))),
                draw(_opt(_spec(dx_pattern))),
                draw(_opt(_spec(px_pattern, allow_all=False))),
                draw(_opt(_spec(px_pattern))),
                draw(st.sampled_from(["", "", "48", "96"])),
            ]
            wmin, wmax = draw(
                st.sampled_from([("", ""), ("0", "1500"), ("1500", "2500"), ("", "2000")])
            )
            age = draw(st.sampled_from(["", "", "28"]))
            if not any(cond) and not (wmin or wmax or age):
                cond[0] = draw(rule_dx_pattern)
            rows.append([packet(kind), str(seq), *cond, wmin, wmax, age])
        files[name] = rows
    core = [["packet", "dx_key", "principal_px", "related_px"]]
    seen = set()
    for _ in range(draw(st.integers(0 if rules else 3, 8 if rules else 12))):
        key = _prefix(draw(st.sampled_from(dx_codes)), 4)
        principal = draw(_opt(_spec(px_pattern, max_alts=2, allow_all=False)))
        related = draw(_opt(_spec(px_pattern))) if principal else ""
        if (key, principal, related) in seen:
            continue
        seen.add((key, principal, related))
        reuse = [r[0] for r in core[1:]]
        code = (
            draw(st.sampled_from(reuse))
            if reuse and draw(st.booleans())
            else packet(draw(st.sampled_from(["core", "primary"])))
        )
        core.append([code, key, principal, related])
    files["core.csv"] = core
    files["excluded_dx.csv"] = [["code", "name"]] + [
        [p, ""] for p in draw(st.lists(rule_dx_pattern, max_size=1, unique=True))
    ]
    files["excluded_px.csv"] = [["code", "name"]] + [
        [p, ""] for p in draw(st.lists(px_pattern, max_size=1, unique=True))
    ]
    files["px_attribute.csv"] = [["code", "attribute"]] + [
        [p, draw(st.sampled_from(ATTR_NAMES))]
        for p in draw(st.lists(px_pattern, max_size=4, unique_by=lambda x: x.replace(".", "")))
    ]
    comp = [["packet", "dx_category", "attribute"]]
    for cat, attr in draw(
        st.lists(
            st.tuples(
                st.sampled_from(sorted({c[:3] for c in DX_CODES})), st.sampled_from(ATTR_NAMES)
            ),
            min_size=2,
            max_size=10,
            unique=True,
        )
    ):
        comp.append([packet("comprehensive"), cat, attr])
    files["comprehensive.csv"] = comp
    fb = [["packet", "dx_prefix"]]
    for prefix in draw(
        st.lists(
            st.builds(_prefix, st.sampled_from(DX_CODES), st.integers(1, 3)),
            max_size=3,
            unique=True,
        )
    ):
        fb.append([packet("fallback"), prefix])
    if draw(st.booleans()):
        fb.append([packet("fallback"), draw(st.sampled_from(["A00-A10", "A05-K00", "K01-K11"]))])
    files["fallback.csv"] = fb
    aux = [["packet", "dimension", "band", "subtype", "coefficient"]]
    core_packets = sorted({r[0] for r in core[1:]})
    for k in range(draw(st.integers(0, 4)) if core_packets else 0):
        dim, band = draw(
            st.sampled_from(
                [
                    ("age", "66-"),
                    ("age", "0d-28d"),
                    ("age", "1-17"),
                    ("death", "1"),
                    ("icu_days", "2-7"),
                    ("cci", "3-"),
                ]
            )
        )
        aux.append(
            [
                draw(st.sampled_from(core_packets)),
                dim,
                band,
                f"S{k}",
                draw(st.sampled_from(["0.9", "1.1", "1.25", "1.25"])),
            ]
        )
    files["aux.csv"] = aux
    blank = packet("blank") if draw(st.booleans()) else ""
    steps = draw(st.permutations(["comprehensive", "prefix", "blank"]))
    chain = steps[: draw(st.sampled_from([1, 2, 3, 3, 3]))]
    cons = draw(st.lists(st.sampled_from(ATTR_NAMES), min_size=1, max_size=2, unique=True))
    files["meta.csv"] = [
        ["key", "value"],
        ["format", "1"],
        ["catalogue", "gen"],
        ["score_scale", "1000"],
        ["tie_rule", draw(st.sampled_from(["highest_score", "lowest_score", "first"]))],
        ["fallback_chain", "|".join(chain)],
        ["blank_packet", blank],
        ["conservative_attributes", "|".join(cons)],
    ]
    files["packets.csv"] = [["packet", "name", "kind", "score"], *packets]
    return files


cases_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "diagnoses": st.lists(st.sampled_from([*DX_CODES, ""]), min_size=1, max_size=3),
            "procedures": st.lists(st.sampled_from(PX_CODES) | st.just(""), max_size=3),
            "ventilation_hours": st.sampled_from([None, 10.0, 48.0, 96.0, 120.0]),
            "birth_weight": st.sampled_from([None, 900.0, 1500.0, 2499.0, 3000.0]),
            "age_days": st.sampled_from([None, 0.0, 28.0, 29.0]),
            "age": st.sampled_from([None, 0, 1, 17, 18, 65, 66]),
            "leaving_type": st.sampled_from([None, 1, 5]),
            "icu_days": st.sampled_from([None, 1, 2, 7, 8]),
            "cci": st.sampled_from([None, 2, 3]),
        }
    ),
    min_size=5,
    max_size=25,
)


def _write(folder: Path, files: dict[str, list[list[str]]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        with open(folder / name, "w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows(rows)


_counter = iter(range(10**9))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(files=catalogues(), cases=cases_strategy)
def test_kernel_matches_naive_on_generated_catalogues(tmp_path: Path, files, cases) -> None:
    folder = tmp_path / f"c{next(_counter)}"
    _write(folder, files)
    _compare(folder, cases)


CORE_DX = DX_CODES[:2]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    files=catalogues(rules=False, dx_codes=CORE_DX),
    cases=st.lists(
        st.fixed_dictionaries(
            {
                "diagnoses": st.lists(st.sampled_from(CORE_DX), min_size=1, max_size=2),
                "procedures": st.lists(st.sampled_from(PX_CODES), max_size=4),
            }
        ),
        min_size=5,
        max_size=25,
    ),
)
def test_core_partial_matches_match_naive(tmp_path: Path, files, cases) -> None:
    """Dense core rows around two dx keys: related-procedure counts, ties, conservative rows."""
    folder = tmp_path / f"c{next(_counter)}"
    _write(folder, files)
    _compare(folder, cases)


def _compare(folder: Path, cases: list[dict]) -> None:
    for k, c in enumerate(cases):
        c["case_id"] = str(k)
    out = group_dip(_table(cases), Catalogue.from_path(folder)).to_pylist()
    naive = NaiveCatalogue.load(folder)
    assert len(out) == len(cases)
    for case, row in zip(cases, out, strict=True):
        reason, packet, tier = naive.group(case)
        assert (row["reason"] or "", row["packet"], row["tier"]) == (reason, packet, tier), case
        aux = naive.aux_subtype(packet, case)
        got = (row["aux_subtype"], row["aux_coefficient"]) if row["aux_subtype"] else None
        assert got == aux, (case, packet)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "diagnoses": st.lists(
                    st.sampled_from(
                        [
                            "K35.800x001",
                            "K35.300",
                            "K80.100",
                            "K80.500",
                            "I21.000",
                            "I21.400",
                            "I63.900",
                            "J18.900",
                            "Z51.100",
                            "C34.100",
                            "T22.300",
                            "T31.400",
                            "A15.000",
                            "U84.300",
                            "Z00.000",
                            "S72.000",
                            "D36.900",
                            "A01.000",
                            "",
                        ]
                    ),
                    max_size=3,
                ),
                "procedures": st.lists(
                    st.sampled_from(
                        [
                            "47.0100",
                            "51.2300",
                            "51.4100",
                            "51.1000",
                            "36.0700",
                            "00.2400",
                            "88.5600",
                            "57.9400",
                            "50.5900",
                            "81.5100",
                            "99.2800",
                            "99.1000",
                            "",
                        ]
                    ),
                    max_size=3,
                ),
                "ventilation_hours": st.sampled_from([None, 96.0]),
                "birth_weight": st.sampled_from([None, 1200.0]),
                "age_days": st.sampled_from([None, 5.0]),
            }
        ),
        min_size=1,
        max_size=30,
    )
)
def test_kernel_matches_naive_on_demo(cases) -> None:
    for k, c in enumerate(cases):
        c["case_id"] = str(k)
    table = _table(cases)
    out = group_dip(table, DEMO).to_pylist()
    naive = NaiveCatalogue.load(DEMO)
    for case, row in zip(cases, out, strict=True):
        reason, packet, tier = naive.group(case)
        assert (row["reason"] or "", row["packet"], row["tier"]) == (reason, packet, tier), case
    # the same cases as '|'-joined text columns (as read from CSV) group the same
    as_text = table.set_column(1, "diagnoses", pa.array(["|".join(c["diagnoses"]) for c in cases]))
    as_text = as_text.set_column(
        2, "procedures", pa.array(["|".join(c["procedures"]) for c in cases])
    )
    text_out = group_dip(as_text, DEMO).to_pylist()
    for case, a, b in zip(cases, out, text_out, strict=True):
        if case["diagnoses"]:  # an empty list and an empty text are both "no diagnosis"
            assert (a["packet"], a["reason"]) == (b["packet"], b["reason"]), case


def test_versions_by_discharge_date(tmp_path: Path) -> None:
    root = tmp_path / "city"
    root.mkdir()
    old = _copy_demo(root / "a", meta={"catalogue": "city_2023", "effective_from": "2023-01-01"})
    new = _copy_demo(root / "b", meta={"catalogue": "city_2024", "effective_from": "2024-01-01"})
    text = (old / "packets.csv").read_text(encoding="utf-8")
    (old / "packets.csv").write_text(text.replace("core,850\n", "core,800\n"), encoding="utf-8")
    old.rename(root / "2023")
    new.rename(root / "2024")
    cases = pa.table(
        {
            "case_id": ["a", "b", "c", "d", "e", "f"],
            "diagnoses": ["K35.800"] * 5 + ["Z00.000"],
            "procedures": ["47.01"] * 6,
            "discharge_date": [
                "2023-12-31",
                "2024-01-01",
                None,
                "2023-02-30",
                "2022-12-31",
                "2024-05-01",
            ],
        }
    )
    out = group_dip(cases, root).to_pylist()
    assert [r["case_id"] for r in out] == ["a", "b", "c", "d", "e", "f"]  # input order kept
    assert [(r["catalogue"], r["score"]) for r in out[:2]] == [
        ("city_2023", decimal.Decimal(800)),
        ("city_2024", decimal.Decimal(850)),
    ]
    assert [r["reason"] for r in out[2:]] == [
        "discharge_date_missing",
        "discharge_date_invalid",
        "no_catalogue_in_force",
        "excluded_principal_dx",
    ]
    assert out[2]["catalogue"] is None and out[5]["catalogue"] == "city_2024"
    assert (
        "2022-12-31" in out[4]["detail"]
        and "city_2023 2023-01-01 to 2023-12-31" in out[4]["detail"]
    )


def test_group_dip_file_streams_to_parquet_and_csv(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    src = tmp_path / "cases.csv"
    src.write_text(
        "case_id,diagnoses,procedures\na,I21.000,36.0700|00.2400\nb,Z00.000,\nc,K35.800,47.01\n",
        encoding="utf-8",
    )
    summary = drgkit.group_dip_file(src, tmp_path / "out.parquet", "dip_demo_2024", batch_rows=2)
    out = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [(r["case_id"], r["packet"]) for r in out] == [
        ("a", "I21.0-2"),
        ("b", None),
        ("c", "K35.8-1"),
    ]
    assert summary.cases == 3 and summary.by_status == {"ok": 2, "ungroupable": 1}
    drgkit.group_dip_file(src, tmp_path / "out.csv", "dip_demo_2024")
    lines = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and "excluded_principal_dx" in lines[2]


def test_malformed_csv_rows_are_reported_not_dropped(tmp_path: Path) -> None:
    src = tmp_path / "cases.csv"
    src.write_text(
        "case_id,diagnoses,procedures\na,K35.800,47.01\nb,K35.800,47.01,extra\nc,K35.800,\n",
        encoding="utf-8",
    )
    out = group_dip(src, "dip_demo_2024").to_pylist()
    assert [(r["case_id"], r["status"], r["reason"]) for r in out] == [
        ("a", "ok", None),
        ("c", "ok", None),
        ("b", "invalid", "malformed_row"),
    ]
    assert "has 4 fields, the header has 3" in out[2]["detail"]


def test_keep_passes_input_columns_through(tmp_path: Path) -> None:
    cases = pa.table(
        {
            "case_id": ["a", "b"],
            "hospital_id": ["H1", "H2"],
            "total_cost": [1234.5, 99.0],
            "diagnoses": ["K35.800", "Z00.000"],
            "discharge_date": ["2024-02-01", "2024-02-02"],
        }
    )
    out = group_dip(cases, "dip_demo_2024", keep=["hospital_id", "total_cost"])
    assert out.column_names[:3] == ["hospital_id", "total_cost", "case_id"]
    assert out.column("hospital_id").to_pylist() == ["H1", "H2"]
    series = group_dip(cases, "demo", keep="all")
    assert series.column("total_cost").to_pylist() == [1234.5, 99.0]
    assert series.column("packet").to_pylist() == ["K35.8-0", None]
    with pytest.raises(drgkit.CaseDataError, match="'nope' to keep"):
        group_dip(cases, "dip_demo_2024", keep=["nope"])
