"""Alliance package splits (:func:`drgkit.alliance.split`) on a synthetic province.

Figures only: nothing here asserts a speed. Each benchmark runs a few rounds of 1 iteration
(``benchmark.pedantic``) and records ``cases_per_s`` (best round) and ``cases_per_s_mean`` in
``extra_info``; every result is checked, so a fast wrong answer fails:
``alliance_data.identities`` (Σ member net = the alliance net, Σ claims = Σ payment of the paid
cases, …) and ``alliance_data.reference_check`` (link kinds, absorptions, every transfer,
volumes, claims, package bands and allocations re-derived from the input and the spec).

- ``test_split[cases-coefficient_volume|rw-claims]``: ``split(table, model)`` of
  ``DRGKIT_BENCH_ALLIANCE_ROWS`` (default 200,000) cases over 250 alliances × 8 members, with
  the service volume counted in cases or in Σ RW, and the package adjustment shared by
  coefficient × volume or by claims.
- ``test_split_batches``: ``split_batches`` of the same cases in batches of 50,000 rows (at
  least 4 batches for small inputs); its tables must equal ``split()``'s.

Data: ``alliance_data.py`` (generated in memory, no shared data needed). Like the other
benchmarks here, these run only with ``--benchmark-only`` (see ``conftest.py``)::

    python -m pytest benchmarks/test_bench_alliance.py --benchmark-only -p no:cacheprovider
"""

from __future__ import annotations

import os

import alliance_data as D  # benchmarks/ is on sys.path (conftest.py puts it there)
import pytest
import settle_data as S

from drgkit.alliance import split, split_batches

ROWS = int(os.environ.get("DRGKIT_BENCH_ALLIANCE_ROWS", 200_000))
ALLIANCES, MEMBERS = 250, 8
ROUNDS = 5
TABLES = ("cases", "transfers", "items", "members", "alliances")

_PROVINCES: dict[tuple[str, str], D.Province] = {}


def _province(volume: str, share_by: str) -> D.Province:
    key = (volume, share_by)
    if key not in _PROVINCES:
        _PROVINCES.clear()  # one province alive at a time
        _PROVINCES[key] = D.generate(
            ROWS, ALLIANCES, MEMBERS, seed=0, volume=volume, share_by=share_by
        )
    return _PROVINCES[key]


@pytest.fixture(scope="module", autouse=True)
def _release():
    yield
    _PROVINCES.clear()


def _checked(result, prov: D.Province) -> str:
    bad, counts = D.identities(result, prov.table)
    assert not bad, f"{len(bad)} identities fail: {bad[:5]}"
    bad, figures = D.reference_check(result, prov.table, prov.model)
    assert not bad, f"{len(bad)} differences from the reference: {bad[:5]}"
    return (
        f"{counts['cases']:,} cases, {counts['alliances']} alliances, "
        f"{figures['transfers']:,} transfers = reference"
    )


@pytest.mark.parametrize(
    ("volume", "share_by"),
    [("cases", "coefficient_volume"), ("rw", "claims")],
    ids=["cases-coefficient_volume", "rw-claims"],
)
def test_split(benchmark, volume, share_by):
    prov = _province(volume, share_by)
    split(prov.table.slice(0, 10_000), prov.model)  # warm: kernels, imports
    benchmark.group = f"alliance split, {ROWS:,} cases, {ALLIANCES * MEMBERS:,} members"
    result = benchmark.pedantic(split, args=(prov.table, prov.model), rounds=ROUNDS, iterations=1)
    S.record(
        benchmark,
        prov.table.num_rows,
        ROUNDS,
        volume=volume,
        share_by=share_by,
        check=_checked(result, prov),
    )


def test_split_batches(benchmark):
    prov = _province("cases", "coefficient_volume")
    batches = prov.table.to_batches(max_chunksize=min(50_000, max(1_000, ROWS // 4)))
    reference = split(prov.table, prov.model)
    benchmark.group = f"alliance split, {ROWS:,} cases, {ALLIANCES * MEMBERS:,} members"
    result = benchmark.pedantic(
        split_batches, args=(batches, prov.model), rounds=ROUNDS, iterations=1
    )
    differ = [t for t in TABLES if not getattr(result, t).equals(getattr(reference, t))]
    assert not differ, f"split_batches differs from split() in {differ}"
    S.record(
        benchmark,
        prov.table.num_rows,
        ROUNDS,
        batches=len(batches),
        check=f"{len(batches)} batches = split(); " + _checked(result, prov),
    )
