"""Cold start: a short command-line run imports only what its command needs and takes its
kernels from numba's cache.

Each check runs in a fresh interpreter (what a user's ``drgkit`` command is) and looks at
``sys.modules`` and numba's cache statistics there; no check measures time (the figures are in
``benchmarks/cold_start.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from drgkit import _demo

REPO = Path(__file__).resolve().parents[1]
#: never needed by a short group or settle run from a file
NOT_FOR_A_SHORT_RUN = ["dask", "distributed", "pyarrow.dataset", "pandas", "polars", "duckdb"]

# Runs drgkit's console entry point in this interpreter, then reports what it imported and, per
# drgkit kernel, numba's cache hits and misses (a miss is a compilation in this process).
_PROBE = r"""
import json, sys
from drgkit.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
from numba.core.dispatcher import Dispatcher
from drgkit._jit import Dual
hits, misses = {}, {}
for name, module in list(sys.modules.items()):
    if not name.startswith("drgkit"):
        continue
    for value in list(vars(module).values()):
        kernels = [value.parallel, value.serial] if isinstance(value, Dual) else [value]
        for kernel in kernels:
            if isinstance(kernel, Dispatcher):
                label = kernel.py_func.__module__ + "." + kernel.py_func.__qualname__
                stats = kernel.stats
                if stats.cache_hits:
                    hits[label] = sum(stats.cache_hits.values())
                if stats.cache_misses:
                    misses[label] = sum(stats.cache_misses.values())
print("PROBE " + json.dumps({"code": code, "modules": sorted(sys.modules), "hits": hits,
                             "misses": misses}))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env.pop("NUMBA_DISABLE_JIT", None)  # the cache is what is tested
    return env


def _probe(*args: object) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *map(str, args)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("PROBE ")]
    assert lines, proc.stdout + proc.stderr
    result = json.loads(lines[-1][len("PROBE ") :])
    assert result["code"] == 0, proc.stdout + proc.stderr
    return result


@pytest.fixture(scope="module")
def ten_cases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Ten demo cases as CSV (codes ``|``-joined) and as Parquet (with claim amounts)."""
    folder = tmp_path_factory.mktemp("ten")
    table = _demo.generate_cases(10, seed=11, bad_fraction=0.0)
    parquet = folder / "cases.parquet"
    pq.write_table(table, parquet)
    text = table.select(["case_id", "sex", "age", "age_days", "diagnoses", "procedures"])
    for name in ("diagnoses", "procedures"):
        i = text.schema.get_field_index(name)
        text = text.set_column(i, name, pc.binary_join(text.column(name), "|"))
    csv = folder / "cases.csv"
    pacsv.write_csv(text, csv)
    return csv, parquet


def test_importing_the_cli_imports_neither_dask_nor_pyarrow_dataset() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, drgkit.cli; print(json.dumps(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        check=True,
    )
    modules = set(json.loads(proc.stdout.splitlines()[-1]))
    assert "drgkit.cli" in modules  # the probe looked at the right interpreter
    for heavy in [*NOT_FOR_A_SHORT_RUN, "drgkit.settlement", "drgkit.alliance"]:
        assert heavy not in modules, f"import drgkit.cli imports {heavy}"


def test_a_short_group_run_imports_only_what_grouping_needs(
    ten_cases: tuple[Path, Path], tmp_path: Path
) -> None:
    csv, _parquet = ten_cases
    out = tmp_path / "groups.csv"
    result = _probe("group", csv, "-r", "demo_2024", "-o", out, "--silent")
    modules = set(result["modules"])
    assert "drgkit.grouping._kernel" in modules
    for heavy in [*NOT_FOR_A_SHORT_RUN, "drgkit.settlement", "drgkit.alliance"]:
        assert heavy not in modules, f"drgkit group imported {heavy}"
    # the run's output is the library's result, pandas or not
    import drgkit

    expected = drgkit.group(csv, "demo_2024")
    written = pacsv.read_csv(
        out,
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in ("case_id", "status", "drg")}
        ),
    )
    assert written.num_rows == 10
    assert written.column("case_id").to_pylist() == expected.column("case_id").to_pylist()
    assert written.column("status").to_pylist() == [
        str(s) for s in expected.column("status").to_pylist()
    ]
    assert written.column("drg").to_pylist() == expected.column("drg").to_pylist()


def test_a_short_settle_run_imports_neither_pandas_nor_dask(
    ten_cases: tuple[Path, Path], tmp_path: Path
) -> None:
    _csv, parquet = ten_cases
    out = tmp_path / "settled.csv"
    modules = set(_probe("settle", parquet, "-p", "demo", "-o", out, "--silent")["modules"])
    assert "drgkit.settlement" in modules
    for heavy in NOT_FOR_A_SHORT_RUN:
        assert heavy not in modules, f"drgkit settle imported {heavy}"
    assert len(out.read_text(encoding="utf-8").splitlines()) == 11  # header + 10 cases


def test_a_second_process_compiles_no_kernel(ten_cases: tuple[Path, Path], tmp_path: Path) -> None:
    csv, _parquet = ten_cases
    args = ("group", csv, "-r", "demo_2024", "-o", tmp_path / "out.csv", "--silent")
    _probe(*args)  # fills numba's cache if it is empty (a fresh checkout)
    again = _probe(*args)
    assert again["misses"] == {}, f"kernels compiled again in a new process: {again['misses']}"
    assert any(label.endswith(".group_all_serial") for label in again["hits"]), again["hits"]
