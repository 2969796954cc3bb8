"""The alliance split of a partitioned dataset (drgkit.alliance.split_dataset, drgkit alliance
--partitions / --dask) against the single-process split, and alliance models from plugins.

(a) a hand-computed province whose up-chain, down-link, conflict and repeated id cross
    partitions (one of them empty): the amounts are worked out by hand, and the partitioned
    run writes the single-process bytes for several partition counts;
(b) random messy scenarios (every link kind, repeated ids, outsiders; the generator of
    tests/test_alliance_props.py) cut at random places: the same bytes;
(c) a Dask local cluster writes the same bytes; a run resumed after losing parts too;
(d) errors name the partition's file, row and column; unsettled input is refused clearly;
(e) a plugin registers an alliance model through drgkit_register_alliance_models.
"""

from __future__ import annotations

import importlib
import itertools
import random
import sys
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_alliance_props import Seeded, make_scenario, table_of

from drgkit import _demo
from drgkit._runners import LocalRunner, ManifestError, partitions_of
from drgkit.alliance import (
    Alliance,
    AllianceModel,
    AllianceRules,
    Member,
    load_model,
    split,
    split_dataset,
)
from drgkit.alliance._dataset import split_as_parts
from drgkit.errors import CaseDataError, RegistryError

pytest_plugins = ["drgkit.testing"]

SMALL = ("members", "alliances", "transfers", "items")
SITE = Path(__file__).resolve().parent / "plugin_site"
MONEY = pa.decimal128(18, 2)


def write_parts(table: pa.Table, folder: Path, cuts: list[int]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, (a, b) in enumerate(itertools.pairwise(cuts)):
        pq.write_table(table.slice(a, b - a), folder / f"cases-{k:03d}.parquet")
    return folder


def assert_same_as_single(
    table: pa.Table, model: Any, dataset: Path, out: Path, tmp: Path, fmt: str = "parquet", **kw
) -> Any:
    """The partitioned run's files are the single-process split's, byte for byte."""
    result = split_dataset(dataset, out, model, fmt=fmt, **kw)
    single = split(table, model)
    single.write(tmp / "single", fmt)
    for name in SMALL:
        assert (out / f"{name}.{fmt}").read_bytes() == (
            tmp / "single" / f"{name}.{fmt}"
        ).read_bytes(), name
    expected = split_as_parts(single, partitions_of(dataset), tmp / "single-parts")
    assert [Path(p).name for p in result.paths] == [p.name for p in expected]
    for got, want in zip(result.paths, expected, strict=True):
        assert Path(got).read_bytes() == want.read_bytes(), got
    back = result.cases()
    assert back.schema == single.cases.schema
    assert back.to_pylist() == single.cases.to_pylist()
    assert result.rows == table.num_rows
    assert result.outside_cases == single.outside_cases
    return result


# --------------------------------------------------------------------------- (a) by hand

MODEL = AllianceModel.of(
    [
        Alliance(
            "A",
            (
                Member("H1", 1, "member", D("0.8")),
                Member("H2", 2, "member", D("1.0")),
                Member("H3", 3, "lead", D("1.2")),
            ),
        )
    ],
    AllianceRules(up_referrer_share=D("0.3"), down_sender_share=D("0.5")),
)

#: case_id, hospital, payment, cost, referral_from — in dataset order
ROWS = [
    ("c01", "H1", "1000.00", "900.00", None),  # chain start (absorbed)
    ("d01", "H3", "5000.00", "4000.00", None),  # sends d02 down
    ("x01", "HX", "100.00", "90.00", None),  # in no alliance
    ("c03", "H3", "10000.00", "9000.00", "c02"),  # chain end: pays the episode
    ("d02", "H1", "2000.00", "1500.00", "d01"),  # down child: surplus 500.00
    ("k01", "H1", "700.00", "600.00", None),  # referred up twice
    ("c02", "H2", "4000.00", "3000.00", "c01"),  # chain middle (absorbed)
    ("u01", "H2", "300.00", "200.00", "zz"),  # unresolved
    ("k03", "H3", "800.00", "700.00", "k01"),  # loses to k02 (conflict)
    ("k02", "H2", "600.00", "500.00", "k01"),  # keeps the up link
    ("r01", "H1", "50.00", "40.00", None),  # id repeated in another partition
    ("r01", "H2", "60.00", "50.00", None),
    ("a01", "H3", "70.00", "60.00", "r01"),  # ambiguous
]
#: cuts putting every link across partitions, with an empty partition
HAND_CUTS = [
    [0, 13],
    [0, 3, 3, 6, 9, 13],
    [0, 1, 2, 4, 5, 7, 8, 10, 11, 13],
    list(range(14)),
]


def hand_table() -> pa.Table:
    return pa.table(
        {
            "case_id": [r[0] for r in ROWS],
            "hospital_id": [r[1] for r in ROWS],
            "settled": [True] * len(ROWS),
            "payment": pa.array([D(r[2]) for r in ROWS], MONEY),
            "total_cost": pa.array([D(r[3]) for r in ROWS], MONEY),
            "referral_from": [r[4] for r in ROWS],
        }
    )


@pytest.mark.parametrize("cuts", HAND_CUTS, ids=lambda c: f"{len(c) - 1}parts")
def test_links_across_partitions_by_hand(cuts: list[int], tmp_path: Path) -> None:
    table = hand_table()
    dataset = write_parts(table, tmp_path / "in", cuts)
    result = assert_same_as_single(table, MODEL, dataset, tmp_path / "out", tmp_path)
    cases = {(r["case_id"], r["hospital_id"]): r for r in result.cases().to_pylist()}
    links = {k[0]: r["link"] for k, r in cases.items() if k[0] not in ("r01",)}
    assert links == {
        "c01": "none",
        "d01": "none",
        "x01": "none",
        "c03": "up",
        "d02": "down",
        "k01": "none",
        "c02": "up",
        "u01": "unresolved",
        "k03": "conflict",
        "k02": "up",
        "a01": "ambiguous",
    }
    assert cases["c01", "H1"]["absorbed_into"] == "c03"
    assert cases["c02", "H2"]["absorbed_into"] == "c03"
    assert cases["k01", "H1"]["absorbed_into"] == "k02"
    assert cases["d02", "H1"]["down_surplus"] == D("500.00")
    assert cases["x01", "HX"]["alliance_id"] is None
    # C pays 10000: B (H2) gets 30 % = 3000 from H3, A (H1) 30 % of that = 900 from H2;
    # k02 pays 600: H1 gets 180; d02's surplus 500 is halved with the sender H3
    members = {r["hospital_id"]: r for r in result.members.to_pylist()}
    want = {
        #       own      referred_up up_received up_paid_out down_received down_paid_out
        "H1": ("3750.00", "-1700.00", "1080.00", "0.00", "0.00", "-250.00"),
        "H2": ("4960.00", "-4000.00", "3000.00", "-1080.00", "0.00", "0.00"),
        "H3": ("15870.00", "0.00", "0.00", "-3000.00", "250.00", "0.00"),
    }
    names = ("own_payment", "referred_up", "up_received", "up_paid_out")
    names += ("down_received", "down_paid_out")
    for h, values in want.items():
        assert tuple(str(members[h][n]) for n in names) == values, h
    # claims: every paid case once (c01, c02, k01 absorbed; x01 outside)
    paid = D("5000") + D("10000") + D("2000") + D("300") + D("800") + D("600")
    paid += D("50") + D("60") + D("70")
    assert sum(m["claims"] for m in members.values()) == paid
    assert result.alliances.column("up_links").to_pylist() == [3]
    assert result.alliances.column("absorbed_cases").to_pylist() == [3]


# --------------------------------------------------------------------------- (b) at random


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    seed=st.integers(0, 2**32),
    cut_seed=st.integers(0, 2**16),
    fmt=st.sampled_from(["csv", "parquet"]),
)
def test_random_scenarios_cut_anywhere(
    seed: int, cut_seed: int, fmt: str, tmp_path_factory
) -> None:
    model, rows = make_scenario(Seeded(seed))
    table = table_of(rows)
    try:
        split(table, model)
    except CaseDataError:  # the scenario is bad input: the partitioned run must refuse too
        with pytest.raises(CaseDataError):
            split_dataset(
                write_parts(table, tmp_path_factory.mktemp("bad"), [0, table.num_rows]),
                tmp_path_factory.mktemp("bad-out"),
                model,
            )
        return
    rnd = random.Random(cut_seed)
    n = table.num_rows
    cuts = sorted([0, n] + [rnd.randint(0, n) for _ in range(rnd.randint(0, 5))])
    tmp = tmp_path_factory.mktemp("scenario")
    dataset = write_parts(table, tmp / "in", cuts)
    assert_same_as_single(table, model, dataset, tmp / "out", tmp, fmt, batch_rows=7)


def test_one_file_by_row_groups(tmp_path: Path) -> None:
    model, rows = make_scenario(Seeded(5))
    table = table_of(rows)
    pq.write_table(table, tmp_path / "one.parquet", row_group_size=max(1, table.num_rows // 4))
    assert len(partitions_of(tmp_path / "one.parquet")) >= 3
    assert_same_as_single(table, model, tmp_path / "one.parquet", tmp_path / "out", tmp_path)


# --------------------------------------------------------------------------- (c) Dask, resume


def test_dask_local_cluster_writes_the_same_bytes(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from drgkit._runners import DaskRunner

    table = hand_table()
    dataset = write_parts(table, tmp_path / "in", HAND_CUTS[2])
    local = split_dataset(dataset, tmp_path / "local", MODEL, runner=LocalRunner())
    with DaskRunner(n_workers=2, threads_per_worker=1, processes=False) as runner:
        remote = split_dataset(dataset, tmp_path / "dask", MODEL, runner=runner)
    for name in SMALL:
        assert (tmp_path / "dask" / f"{name}.parquet").read_bytes() == (
            tmp_path / "local" / f"{name}.parquet"
        ).read_bytes()
    assert [Path(p).read_bytes() for p in remote.paths] == [
        Path(p).read_bytes() for p in local.paths
    ]
    assert remote.cases().to_pylist() == split(table, MODEL).cases.to_pylist()
    # worker processes: the context, the narrow results and the named ids travel pickled
    with DaskRunner(n_workers=2, threads_per_worker=1, processes=True) as runner:
        apart = split_dataset(dataset, tmp_path / "dask-processes", MODEL, runner=runner)
    assert [Path(p).read_bytes() for p in apart.paths] == [
        Path(p).read_bytes() for p in local.paths
    ]
    assert apart.members == local.members


def test_resume_rewrites_only_what_is_missing(tmp_path: Path) -> None:
    table = hand_table()
    dataset = write_parts(table, tmp_path / "in", HAND_CUTS[1])
    first = split_dataset(dataset, tmp_path / "out", MODEL)
    want = {p: Path(p).read_bytes() for p in first.paths}
    Path(first.paths[0]).unlink()
    Path(first.paths[3]).write_bytes(b"garbage")
    kept = Path(first.paths[4]).stat().st_mtime_ns
    again = split_dataset(dataset, tmp_path / "out", MODEL, resume=True)
    assert {p: Path(p).read_bytes() for p in again.paths} == want
    assert Path(first.paths[4]).stat().st_mtime_ns == kept  # verified: not written again
    # a fresh run refuses a folder with parts; a resume under another model is refused
    with pytest.raises(CaseDataError, match="already holds"):
        split_dataset(dataset, tmp_path / "out", MODEL)
    other = AllianceModel.of(MODEL.alliances, AllianceRules(up_referrer_share=D("0.4")))
    with pytest.raises(ManifestError, match="model"):
        split_dataset(dataset, tmp_path / "out", other, resume=True)


# --------------------------------------------------------------------------- (d) errors, CLI


def test_a_bad_payment_names_the_partition_file_row_and_column(tmp_path: Path) -> None:
    table = hand_table()
    dataset = write_parts(table, tmp_path / "in", [0, 5, 13])
    bad = table.slice(5).set_column(
        3, "payment", pa.array([D("1.00")] * 3 + [None] + [D("1.00")] * 4, MONEY)
    )
    pq.write_table(bad, dataset / "cases-001.parquet")
    with pytest.raises(CaseDataError) as info:
        split_dataset(dataset, tmp_path / "out", MODEL)
    err = info.value
    assert err.file == str((dataset / "cases-001.parquet").absolute())
    assert (err.row, err.column) == (4, "payment")
    assert "'k03'" in err.message


def test_cli_partitions_equal_the_single_process_command(drgkit_cli, tmp_path: Path) -> None:
    import warnings

    from drgkit.settlement import settle

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        settled = settle(_demo.generate_cases(900, seed=3), "demo", "demo", keep=["referral_from"])
    assert settled.column("referral_from").null_count < settled.num_rows
    dataset = write_parts(settled, tmp_path / "in", [0, 250, 250, 600, 900])
    single = drgkit_cli("alliance", tmp_path / "in", "-a", "demo", "-o", tmp_path / "single")
    assert single.exit_code == 0, single.output
    run = drgkit_cli("alliance", dataset, "-a", "demo", "-o", tmp_path / "parts", "--partitions")
    assert run.exit_code == 0, run.output
    assert "4 case part files" in run.output
    for name in SMALL:
        assert (tmp_path / "parts" / f"{name}.csv").read_bytes() == (
            tmp_path / "single" / f"{name}.csv"
        ).read_bytes()
    parts = sorted((tmp_path / "parts" / "cases").glob("part-*.parquet"))
    got = pa.concat_tables([pq.read_table(p) for p in parts])
    assert got.to_pylist() == split(settled, load_model("demo")).cases.to_pylist()
    again = drgkit_cli(
        "alliance", dataset, "-a", "demo", "-o", tmp_path / "parts", "--partitions", "--resume"
    )
    assert again.exit_code == 0, again.output
    bad = drgkit_cli("alliance", dataset, "-a", "demo", "-o", tmp_path / "x", "--resume")
    assert bad.exit_code == 2 and "--resume needs" in bad.output


def test_a_renamed_referral_column_splits_the_same(drgkit_cli, tmp_path: Path) -> None:
    table = hand_table()
    renamed = table.rename_columns(
        ["转诊来源" if c == "referral_from" else c for c in table.column_names]
    )
    dataset = write_parts(renamed, tmp_path / "in", HAND_CUTS[1])
    result = split_dataset(dataset, tmp_path / "lib", MODEL, referral_column="转诊来源")
    assert result.cases().to_pylist() == split(table, MODEL).cases.to_pylist()
    run = drgkit_cli(
        "alliance", dataset, "-a", "demo", "-o", tmp_path / "o", "--partitions",
        "--referral-column", "转诊来源", "--format", "parquet",
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    got = pa.concat_tables(pq.read_table(p) for p in sorted((tmp_path / "o" / "cases").iterdir()))
    assert got.to_pylist() == split(table, load_model("demo")).cases.to_pylist()
    assert got.column("parent_case_id").null_count == 6  # 7 referrals: the renamed column
    missing = drgkit_cli(
        "alliance", dataset, "-a", "demo", "-o", tmp_path / "o2", "--partitions",
        "--referral-column", "nope",
    )  # fmt: skip
    assert missing.exit_code == 2 and "'nope'" in missing.output


def test_cli_partitions_settle_unsettled_cases_first(drgkit_cli, tmp_path: Path) -> None:
    """Unsettled partitions and -p: settled partition by partition into OUT/settled, then
    split; the same files as the single-process command (which settles in memory)."""
    raw = _demo.generate_cases(600, seed=5)
    assert raw.column("referral_from").null_count < raw.num_rows
    folder = write_parts(raw, tmp_path / "raw", [0, 200, 200, 600])
    run = drgkit_cli("alliance", folder, "-a", "demo", "-o", tmp_path / "o", "--partitions")
    assert run.exit_code == 2 and "not settled yet" in run.output and "-p POLICY" in run.output
    args = ("-a", "demo", "-p", "demo", "-r", "demo")
    single = drgkit_cli("alliance", folder, *args, "-o", tmp_path / "single")
    assert single.exit_code == 0, single.output
    run = drgkit_cli("alliance", folder, *args, "-o", tmp_path / "o", "--partitions")
    assert run.exit_code == 0, run.output
    assert len(list((tmp_path / "o" / "settled").glob("part-*.parquet"))) == 3
    for name in SMALL:
        assert (tmp_path / "o" / f"{name}.csv").read_bytes() == (
            tmp_path / "single" / f"{name}.csv"
        ).read_bytes(), name
    assert pq.read_table(tmp_path / "o" / "cases").num_rows == 600


# --------------------------------------------------------------------------- (e) plugins


@pytest.fixture
def thirdparty(monkeypatch: pytest.MonkeyPatch):
    """tests/plugin_site on sys.path, found through its entry point (as in test_plugins)."""
    monkeypatch.syspath_prepend(str(SITE))
    importlib.invalidate_caches()
    yield
    for name in [m for m in sys.modules if m.startswith("drgkit_thirdparty")]:
        del sys.modules[name]


def test_a_plugin_registers_an_alliance_model(
    thirdparty, drgkit_registry, drgkit_cli, tmp_path: Path
) -> None:
    reg = drgkit_registry(entry_points=True)
    assert set(reg.alliance_models) >= {"demo", "thirdparty-county"}
    assert reg.alliance_model_registered_by("thirdparty-county").startswith("plugin thirdparty (")
    assert reg.alliance_model_registered_by("demo").startswith("plugin drgkit.builtin")
    model = load_model("thirdparty-county")
    assert model.rules.up_referrer_share == D("0.4")
    assert [m.hospital_id for m in model.alliances[0].members] == ["H320500001", "H320500007"]
    listed = drgkit_cli("alliance", "models", "list")
    assert listed.exit_code == 0, listed.output
    line = next(x for x in listed.output.splitlines() if x.startswith("thirdparty-county"))
    assert "thirdparty" in line.split()[3] and "third-party test alliance" in line
    # used by id on the command line
    settled = tmp_path / "settled.parquet"
    pq.write_table(
        hand_table().set_column(1, "hospital_id", pa.array(["H320500007"] * 13)), settled
    )
    run = drgkit_cli("alliance", settled, "-a", "thirdparty-county", "-o", tmp_path / "o")
    assert run.exit_code == 0, run.output
    assert "model thirdparty-county" in run.output


def test_an_alliance_model_id_registered_twice_names_both(drgkit_registry, tmp_path: Path) -> None:
    import drgkit

    path = tmp_path / "demo.toml"
    path.write_text((Path(drgkit.__file__).parent / "alliances" / "demo.toml").read_text("utf-8"))

    class Again:
        @drgkit.hookimpl
        def drgkit_register_alliance_models(self, registry) -> None:
            registry.add_alliance_model(path)

    with pytest.raises(RegistryError, match=r"alliance model id 'demo' is registered twice"):
        drgkit_registry(Again())
    # without the built-in plugin the same file registers, and resolves by id
    reg = drgkit_registry(Again(), builtin=False)
    assert list(reg.alliance_models) == ["demo"]
    assert reg.alliance_model("demo").content_hash
