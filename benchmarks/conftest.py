"""Fixtures of the grouping benchmarks (pytest-benchmark).

Run them with::

    python -m pytest benchmarks --benchmark-only -p no:cacheprovider

The project's ``addopts`` carry ``--benchmark-disable`` so that the normal test run never times
anything; ``--benchmark-only`` turns benchmarking back on here. Without ``--benchmark-only`` (or
``--benchmark-enable``) every benchmark is skipped: a 1,000,000-case run is not a unit test.
Plain ``pytest`` does not come here at all (``testpaths = ["tests"]``).

The shared reference data is read in place (``$DRGKIT_SHARED``, default ``../shared``); when it
is absent every benchmark skips with a message saying where it looked. Compiled rulesets go to a
cache of this session unless ``DRGKIT_CACHE_DIR`` is set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_data as B

ROWS = B.bench_rows()


def pytest_configure(config: pytest.Config) -> None:
    # runs before pytest-benchmark's own (trylast) pytest_configure reads the options
    opt = config.option
    if getattr(opt, "benchmark_only", False) and getattr(opt, "benchmark_disable", False):
        opt.benchmark_enable = True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    opt = config.option
    if getattr(opt, "benchmark_only", False) or getattr(opt, "benchmark_enable", False):
        return
    here = Path(__file__).resolve().parent
    skip = pytest.mark.skip(
        reason="grouping benchmarks run only with --benchmark-only "
        "(python -m pytest benchmarks --benchmark-only)"
    )
    for item in items:
        if here in Path(item.path).resolve().parents:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """A short cases/s table after pytest-benchmark's own."""
    session = getattr(config, "_benchmarksession", None)
    benches = [
        b for b in getattr(session, "benchmarks", []) or [] if getattr(b, "extra_info", None)
    ]
    if not benches:
        return
    tr = terminalreporter
    tr.section("drgkit throughput")
    for b in sorted(benches, key=lambda b: b.name):
        info = b.extra_info
        if "cases_per_s" in info:
            tr.write_line(
                f"{b.name:<52} {info.get('rows', 0):>10,} cases  "
                f"{info['cases_per_s']:>12,.0f} cases/s (best of "
                f"{info.get('rounds', '?')}, mean {info.get('cases_per_s_mean', 0):,.0f})"
                f"  check: {info.get('check', '-')}"
            )
        elif "seconds" in info:
            tr.write_line(f"{b.name:<52} {info['seconds'] * 1000:>10.1f} ms (best)")


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def shared() -> Path:
    message = B.missing_message()
    if message:
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return B.shared_dir()


@pytest.fixture(scope="session", autouse=True)
def _bench_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Compile rulesets into a cache of this session, not the user's (unless one is set)."""
    if "DRGKIT_CACHE_DIR" not in os.environ:
        os.environ["DRGKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("drgkit-cache"))


@pytest.fixture(scope="session")
def ruleset_dir(shared: Path) -> Path:
    return B.ruleset_dir()


@pytest.fixture(scope="session")
def ruleset(ruleset_dir: Path):
    """CHS-DRG 1.1 compiled (this fills the cache, so later loads are warm)."""
    import drgkit

    return drgkit.load_ruleset(ruleset_dir)


@pytest.fixture(scope="session")
def base_text(shared: Path):
    return B.read_base()


@pytest.fixture(scope="session")
def expected(shared: Path) -> tuple[list[str], list[str]]:
    """The oracle's (status, drg) per base case, statuses in drgkit's words."""
    return B.read_expected()


@pytest.fixture(scope="session")
def warm(ruleset, base_text) -> None:
    """One small run per input shape so that no benchmark pays for loading the kernels."""
    import drgkit

    for threads in (1, 2):
        drgkit.group(base_text, ruleset, threads=threads)
        drgkit.group(B.typed(base_text), ruleset, threads=threads)


_TABLES: dict[str, object] = {}


@pytest.fixture(scope="session")
def big_table(base_text):
    """``big_table(shape)``: the ROWS-case in-memory Arrow table of a shape, built once.

    Only one shape is kept alive at a time, to keep the session's memory flat.
    """

    def get(shape: str):
        if shape not in _TABLES:
            _TABLES.clear()
            _TABLES[shape] = B.build(ROWS, shape, base_text)
        return _TABLES[shape]

    yield get
    _TABLES.clear()


@pytest.fixture(scope="session")
def parquet_cases(tmp_path_factory: pytest.TempPathFactory, base_text) -> Path:
    """ROWS cases (text shape, as converted from the CSV) in a Parquet file of this session."""
    import pyarrow.parquet as pq

    path = tmp_path_factory.mktemp("bench-parquet") / "cases.parquet"
    pq.write_table(B.build(ROWS, "text", base_text), path, compression="zstd")
    return path
