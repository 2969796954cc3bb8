"""Data for the settlement benchmarks: the Suzhou 2023 oracle cases with claim money, at scale.

Shared by ``benchmarks/test_bench_settle.py`` (pytest-benchmark) and
``benchmarks/scale_settle.py`` (the scaling script). Reference data is read in place from
``$DRGKIT_SHARED`` (see ``bench_data.py``).

The 10,000 cases of ``oracle/suzhou_2023/cases.csv`` are replicated to any size exactly as the
grouping benchmarks do (copy *k* gets the id suffix ``-r<k>``), then every row gets synthetic
claim columns, a pure function of its row number (integer arithmetic only, so the same on
every machine): ``hospital_id`` (48 hospitals), ``hospital_level`` (12 of level 3, 20 of level
2, 16 of level 1), ``insurance_type`` (310 employees ≈ 60% / 390 residents), ``total_cost``,
``self_pay`` and ``own_pay`` (exact cents, ``decimal128(18, 2)``). About 6% of the costs are cut
to a quarter (low outliers), 6% multiplied by five (high outliers), 0.5% are missing and 0.5%
negative (refund lines), so every settlement path is taken.

Grouped with ``rulesets/suzhou_2023`` and settled under policy ``suzhou-2023`` with the
published table ``payment/suzhou-2023.csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import bench_data as B

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

RULESET = "suzhou_2023"
POLICY = "suzhou-2023"
HOSPITALS = 48
MONEY_COLUMNS = ("total_cost", "self_pay", "own_pay")
#: oracle columns that the grouped file keeps next to the results
CLAIM_COLUMNS = ("hospital_id", "hospital_level", "insurance_type", *MONEY_COLUMNS)


def ruleset_dir() -> Path:
    return B.shared_dir() / "rulesets" / RULESET


def cases_csv() -> Path:
    return B.shared_dir() / "oracle" / RULESET / "cases.csv"


def weights_csv() -> Path:
    return B.shared_dir() / "payment" / f"{POLICY}.csv"


def missing_message() -> str | None:
    for path in (ruleset_dir(), cases_csv(), weights_csv()):
        if not path.exists():
            return (
                f"shared reference data not found: {path} is missing; set DRGKIT_SHARED "
                "to the folder holding rulesets/, oracle/ and payment/"
            )
    return None


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 of each value (uint64, wrapping): a fixed pseudo-random stream per row."""
    import numpy as np

    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def claim_columns(rows: int) -> dict[str, pa.Array]:
    """The synthetic claim columns of rows ``0 .. rows-1``."""
    import numpy as np
    import pyarrow as pa

    from drgkit._money import cents_array

    h = _mix(np.arange(rows, dtype=np.uint64))
    hosp = (h % np.uint64(HOSPITALS)).astype(np.int64)
    names = np.array([f"H3205{k:05d}" for k in range(HOSPITALS)], dtype=object)
    levels = np.where(hosp < 12, 3, np.where(hosp < 32, 2, 1)).astype(np.int8)
    employee = ((h >> np.uint64(8)) % np.uint64(10)) < np.uint64(6)
    cost = (250_000 + (h >> np.uint64(12)) % np.uint64(2_000_000)).astype(np.int64)
    r = ((h >> np.uint64(36)) % np.uint64(200)).astype(np.int64)
    cost = np.where(r < 12, cost // 4 + 1_234, cost)
    cost = np.where((r >= 12) & (r < 24), cost * 5, cost)
    cost = np.where(r == 198, -cost, cost)
    valid = r != 199
    self_pct = ((h >> np.uint64(44)) % np.uint64(20)).astype(np.int64)
    own_pct = ((h >> np.uint64(52)) % np.uint64(6)).astype(np.int64)
    positive = np.maximum(cost, 0)
    return {
        "hospital_id": pa.array(names[hosp], pa.string()),
        "hospital_level": pa.array(levels, pa.int8()),
        "insurance_type": pa.array(np.where(employee, "310", "390"), pa.string()),
        "total_cost": cents_array(cost, valid),
        "self_pay": cents_array(positive * self_pct // 100, np.ones(rows, np.bool_)),
        "own_pay": cents_array(positive * own_pct // 100, np.ones(rows, np.bool_)),
    }


def build(rows: int, base: pa.Table | None = None) -> pa.Table:
    """``rows`` Suzhou cases (text shape, as read from the CSV) with the claim columns."""
    base = base if base is not None else B.read_base(cases_csv())
    table = B.replicate(base, rows)
    for name, column in claim_columns(rows).items():
        table = table.append_column(name, column)
    return table


def grouped_keep(table: pa.Table) -> list[str]:
    """Input columns a grouped file keeps (every one: none collides with a result column)."""
    return list(table.column_names)


def nullable_ids(table: pa.Table) -> pa.Table:
    """drgkit's group result declares ``case_id`` not null although a case without an id has
    a null one; Parquet refuses such a table. Declare it nullable."""
    import pyarrow as pa

    at = table.schema.get_field_index("case_id")
    return table.cast(table.schema.set(at, pa.field("case_id", pa.string())))


# ------------------------------------------------------------------------------ DuckDB baseline

#: the policy as an insurer's analyst would write it in SQL (DuckDB), over the grouped Parquet:
#: every amount in DECIMAL(38,10), rounded half up to the cent once, at the end
DUCKDB_SQL = r"""
WITH w AS (
    SELECT "DRG编码" AS drg,
           CAST("RW" AS DECIMAL(38,10)) AS rw,
           CAST(NULLIF("一级医院系数", '') AS DECIMAL(38,10)) AS c1,
           CAST(NULLIF("二级医院系数", '') AS DECIMAL(38,10)) AS c2,
           CAST(NULLIF("三级医院系数", '') AS DECIMAL(38,10)) AS c3
    FROM read_csv('{weights}', all_varchar = true, header = true)
),
c AS (
    SELECT g.file_row_number AS row_no,
           g.case_id, g.hospital_id, CAST(g.status AS VARCHAR) AS status, g.drg,
           CAST(g.hospital_level AS VARCHAR) AS level,
           TRY_CAST(g.inHospitalTime AS BIGINT) AS los,
           CAST(g.total_cost AS DECIMAL(38,10)) AS cost,
           CAST(COALESCE(g.self_pay, 0) AS DECIMAL(38,10))
             + CAST(COALESCE(g.own_pay, 0) AS DECIMAL(38,10)) AS patient,
           w.rw,
           CASE CAST(g.hospital_level AS VARCHAR) WHEN '1' THEN w.c1 WHEN '2' THEN w.c2
                WHEN '3' THEN w.c3 END AS coef,
           w.drg IS NOT NULL AS in_table
    FROM read_parquet('{grouped}', file_row_number = true) g
    LEFT JOIN w ON w.drg = g.drg
),
s AS (
    SELECT *,
           -- standard = RW × base rate × level coefficient (exact, before rounding)
           CAST(CAST(rw * CAST(8728.3 AS DECIMAL(38,10)) AS DECIMAL(38,10)) * coef
                AS DECIMAL(38,10)) AS std,
           CASE WHEN rw < 1 THEN CAST(3 AS DECIMAL(38,10))
                WHEN rw < 3 THEN CAST(2.5 AS DECIMAL(38,10))
                ELSE CAST(2 AS DECIMAL(38,10)) END AS high_ratio
    FROM c
),
p AS (
    SELECT row_no, case_id, hospital_id, patient,
        CASE
            WHEN status = 'invalid' OR cost IS NULL OR cost < 0 THEN NULL
            -- outside DRG payment, ungroupable, ambiguity groups, groups not in the table:
            -- by item
            WHEN los > 60 OR status IN ('ungroupable', 'ambiguous') OR NOT in_table THEN cost
            WHEN coef IS NULL THEN NULL  -- no price for this level
            WHEN cost < CAST(0.4 AS DECIMAL(38,10)) * std THEN cost  -- low outlier: by item
            WHEN cost > high_ratio * std THEN std + (cost - high_ratio * std)  -- high outlier
            ELSE std
        END AS amount
    FROM s
)
SELECT row_no, case_id, hospital_id,
       CAST(FLOOR(amount * 100 + 0.5) AS BIGINT) AS payment_cents,
       CASE WHEN amount IS NULL THEN NULL ELSE CAST(patient * 100 AS BIGINT) END
           AS patient_cents
FROM p
"""


def duckdb_sql(grouped: Path, weights: Path | None = None) -> str:
    return DUCKDB_SQL.format(
        grouped=str(grouped).replace("'", "''"),
        weights=str(weights or weights_csv()).replace("'", "''"),
    )


def cents_of(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """int64 cents of a ``decimal128(p, 2)`` money column (its unscaled integers); nulls ->
    the minimum int64."""
    import numpy as np
    import pyarrow as pa

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_decimal128(arr.type) or arr.type.scale != 2:
        raise TypeError(f"expected decimal128(p, 2) money, got {arr.type}")
    words = np.frombuffer(arr.buffers()[1], dtype=np.int64)[
        2 * arr.offset : 2 * (arr.offset + len(arr))
    ]
    out = words[0::2].copy()  # low words; |amounts| < 2^63 cents
    if arr.null_count:
        out[~arr.is_valid().to_numpy(zero_copy_only=False)] = np.iinfo(np.int64).min
    return out


def compare_with_duckdb(duck: pa.Table, settled: pa.Table) -> dict:
    """Case by case: DuckDB's payment and patient share (cents) vs drgkit's. ``duck`` rows
    carry ``row_no`` (their row in the grouped file) and may come in any order."""
    import numpy as np

    order = np.argsort(duck.column("row_no").to_numpy(), kind="stable")
    none = np.iinfo(np.int64).min
    d_pay = duck.column("payment_cents").fill_null(none).to_numpy()[order]
    d_pat = duck.column("patient_cents").fill_null(none).to_numpy()[order]
    k_pay = cents_of(settled.column("payment"))
    k_pat = cents_of(settled.column("patient_share"))
    same_ids = (
        duck.column("case_id").take(order).to_pylist() == settled.column("case_id").to_pylist()
    )
    bad = np.flatnonzero((d_pay != k_pay) | (d_pat != k_pat))
    examples = []
    for i in bad[:5].tolist():
        examples.append(
            {
                "row": i,
                "case_id": settled.column("case_id")[i].as_py(),
                "drgkit": {
                    k: settled.column(k)[i].as_py()
                    for k in (
                        "status",
                        "drg",
                        "payment_class",
                        "reason",
                        "total_cost",
                        "standard",
                        "payment",
                        "patient_share",
                    )
                },
                "duckdb_payment_cents": int(d_pay[i]),
                "duckdb_patient_cents": int(d_pat[i]),
            }
        )
    return {
        "rows": settled.num_rows,
        "compared": len(d_pay),
        "mismatches": len(bad),
        "ids_ok": bool(same_ids),
        "settled": int((k_pay != none).sum()),
        "examples": examples,
    }


# ------------------------------------------------------------------------------ pytest-benchmark


def record(benchmark, rows: int, rounds: int, **info) -> None:
    """cases/s of a pedantic benchmark into its ``extra_info`` (as the grouping suite does)."""
    import time

    stats = benchmark.stats.stats
    benchmark.extra_info.update(info)
    benchmark.extra_info["rows"] = rows
    benchmark.extra_info["rounds"] = rounds
    benchmark.extra_info["cases_per_s"] = rows / stats.min
    benchmark.extra_info["cases_per_s_mean"] = rows / stats.mean
    benchmark.extra_info["seconds_best"] = stats.min
    benchmark.extra_info["drgkit_source_mtime"] = time.strftime(
        "%Y-%m-%d %H:%M:%S", time.localtime(B.source_stamp()[0])
    )
