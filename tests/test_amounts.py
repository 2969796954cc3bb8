"""Budgets and already-paid amounts per hospital (drgkit.settlement._amounts): exact cents or a
TableError naming file, row and column; never an overwrite, a rounding or a traceback."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from drgkit._money import LIMIT_CENTS
from drgkit.cli import cli
from drgkit.errors import TableError
from drgkit.settlement._amounts import read_amounts

#: the smallest amount over the bound, and the bound itself (accepted)
OVER = str(Decimal(LIMIT_CENTS + 1) / 100)
AT = str(Decimal(LIMIT_CENTS) / 100)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "paid.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_amounts_are_read_exactly(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "\ufeffname,hospital_id,amount\n"
        "A,H1,1000000.00\nB, H2 ,+0.5\nC,H3,0\nD,H4,1000\nE,H5," + AT + "\n",
    )
    assert read_amounts(path, "already-paid") == {
        "H1": 100_000_000,
        "H2": 50,
        "H3": 0,
        "H4": 100_000,
        "H5": LIMIT_CENTS,
    }


@pytest.mark.parametrize(
    "body, row, column, words",
    [
        ("H1,10.00\nH2,5\nH1,20.00\n", 4, "hospital_id", "'H1' is listed twice (first on row 2)"),
        ("H1,Infinity\n", 2, "amount", "not an amount"),
        ("H1,-Infinity\n", 2, "amount", "not an amount"),
        ("H1,NaN\n", 2, "amount", "not an amount"),
        ("H1,sNaN\n", 2, "amount", "not an amount"),
        ('H1,"1,000.00"\n', 2, "amount", "not an amount"),
        ("H1,ten\n", 2, "amount", "not an amount"),
        ("H1,12.345\n", 2, "amount", "fractions of a cent"),
        ("H1,0.001\n", 2, "amount", "fractions of a cent"),
        ("H1,-1.00\n", 2, "amount", "negative"),
        ("H1," + OVER + "\n", 2, "amount", "beyond drgkit's exact bound"),
        # read as a case file's money column is: no exponents (1E+3 there is not an amount either)
        ("H1,1e400\n", 2, "amount", "not an amount"),
        ("H1,1E+3\n", 2, "amount", "not an amount"),
        ("H1,1.00\n,2.00\n", 3, "hospital_id", "no hospital id"),
        ("H1,1.00\nH2,\n", 3, "amount", "no amount"),
        ("H1,1.00\nH2\n", 3, "amount", "no amount"),
        ("H1,1.00,extra\n", 2, None, "more fields than the header"),
    ],
)
def test_bad_rows_are_refused_with_their_place(
    tmp_path: Path, body: str, row: int, column: str | None, words: str
) -> None:
    path = _write(tmp_path, "hospital_id,amount\n" + body)
    with pytest.raises(TableError) as info:
        read_amounts(path, "already-paid")
    err = info.value
    assert (err.file, err.row, err.column) == (str(path), row, column), str(err)
    assert words in err.message, err.message


@pytest.mark.parametrize("header", ["hospital,amount", "hospital_id,yuan", "", "amount"])
def test_missing_columns_are_named(tmp_path: Path, header: str) -> None:
    path = _write(tmp_path, header + "\nH1,1.00\n" if header else "")
    with pytest.raises(TableError, match="needs the columns hospital_id and amount") as info:
        read_amounts(path, "budgets")
    assert info.value.row == 1 and "budgets file" in str(info.value)


def test_bad_utf8_is_a_table_error(tmp_path: Path) -> None:
    path = tmp_path / "paid.csv"
    path.write_bytes("hospital_id,amount\nH1,1.00\n苏州一院,2.00\n".encode("gbk"))
    with pytest.raises(TableError, match="not UTF-8") as info:
        read_amounts(path, "already-paid")
    assert info.value.row == 3


def test_missing_file_is_the_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_amounts(tmp_path / "nope.csv", "already-paid")


@pytest.mark.parametrize(
    "body, words",
    [
        (
            "H320500001,10.00\nH320500001,20.00\n",
            "row 3, column 'hospital_id': hospital 'H320500001' is listed twice",
        ),
        ("H320500001,Infinity\n", "row 2, column 'amount': not an amount in yuan: 'Infinity'"),
    ],
)
def test_period_command_refuses_bad_amount_files_in_one_line(
    tmp_path: Path, body: str, words: str
) -> None:
    """Before: a repeated hospital silently kept its last amount; Infinity was a traceback."""
    from drgkit import _demo

    cases = tmp_path / "cases.parquet"
    pq.write_table(_demo.generate_cases(200, seed=5), cases)
    settled = tmp_path / "settled.parquet"
    runner = CliRunner()
    assert (
        runner.invoke(
            cli, ["settle", str(cases), "-p", "demo", "-o", str(settled), "--silent"]
        ).exit_code
        == 0
    )
    paid = _write(tmp_path, "hospital_id,amount\n" + body)
    for option in ("--already-paid", "--hospital-budgets"):
        result = runner.invoke(
            cli,
            [
                "period",
                str(settled),
                "-p",
                "demo",
                "-o",
                str(tmp_path / "p.csv"),
                option,
                str(paid),
            ],
        )
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {paid}, {words}"), lines
        assert not (tmp_path / "p.csv").exists()
