"""Reusable option bundles: each decorator adds a family of options and parses them once."""

from __future__ import annotations

import codecs
import functools
import re
from pathlib import Path
from typing import Any

import click

from ._common import UserError


def case_input_options(func: Any) -> Any:
    """Options that say how to read a case file (``--layout``, ``--map``, ``--encoding``)."""

    @click.option(
        "--layout",
        metavar="NAME",
        help="Column layout of the case file (drgkit, opendrg, settlement-list, zh, or a "
        "plugin's); detected from the header when omitted.",
    )
    @click.option(
        "--map",
        "mapping",
        multiple=True,
        metavar="FIELD=COLUMN",
        help="Map a case field to a column of the file, e.g. --map case_id=病案号. Repeatable.",
    )
    @click.option(
        "--encoding",
        default="utf-8",
        show_default=True,
        callback=_encoding,
        help="Text encoding of CSV input (e.g. gbk for many hospital exports).",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, mapping: tuple[str, ...] = (), **kwargs: Any) -> Any:
        columns = {}
        for item in mapping:
            if "=" not in item:
                raise UserError(f"--map expects FIELD=COLUMN, got {item!r}")
            field, column = item.split("=", 1)
            columns[field.strip()] = column.strip()
        return func(*args, columns=columns or None, **kwargs)

    return wrapper


def _encoding(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        codecs.lookup(value)
    except LookupError:
        raise click.BadParameter(
            f"unknown text encoding {value!r} (e.g. utf-8, gbk, gb18030)", ctx, param
        ) from None
    return value


def ruleset_option(required: bool = True) -> Any:
    return click.option(
        "-r",
        "--ruleset",
        "ruleset",
        required=required,
        metavar="RULESET|CATALOGUE",
        help="A DRG ruleset or a DIP catalogue: a registered id, a region (each case grouped "
        "by the version in force on its discharge date), or a folder. A region with both "
        "takes DRG; write dip:REGION (or dip_REGION) for its DIP catalogues.",
    )


def silent_option(func: Any) -> Any:
    return click.option("--silent", is_flag=True, help="No progress bar or summary.")(func)


def policy_options(func: Any) -> Any:
    """Options that choose and complete a payment policy (``-p``, ``--weights``, ``--budget``)."""

    @click.option(
        "-p",
        "--policy",
        "policy",
        required=True,
        metavar="POLICY",
        help="A registered policy id (drgkit policies list) or a policy TOML file.",
    )
    @click.option(
        "--weights",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The region's published weights table the policy reads (or put the "
        "folder of tables in DRGKIT_PAYMENT_TABLES).",
    )
    @click.option(
        "--budget",
        "budgets",
        multiple=True,
        metavar="POOL=YUAN",
        help="The money of a pool (a scheme, or 'all'): the budget of a DRG points "
        "policy, or the DIP fund of a DIP policy (replaces dip.fund). "
        "Repeatable.",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, budgets: tuple[str, ...] = (), **kwargs: Any) -> Any:
        overrides = {}
        for item in budgets:
            if "=" not in item:
                raise UserError(f"--budget expects POOL=YUAN, got {item!r}")
            pool, amount = item.split("=", 1)
            overrides[f"points.budget.{pool.strip()}"] = amount.strip()
        return func(*args, overrides=overrides or None, **kwargs)

    return wrapper


def threads_option(func: Any) -> Any:
    return click.option(
        "--threads",
        type=click.IntRange(min=1),
        help="Threads for the kernels (default: all cores).",
    )(func)


def batch_rows_option(func: Any) -> Any:
    # a batch of no rows would write an empty output and report success
    return click.option(
        "--batch-rows", type=click.IntRange(min=1), help="Rows per batch (memory vs. speed)."
    )(func)


def month_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check a ``YYYY-MM`` month on the command line (a usage error, not a library one)."""
    if value is None:
        return None
    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", value.strip()):
        raise click.BadParameter(f"expected a month YYYY-MM, got {value!r}", ctx, param)
    return value.strip()


def rejects_option(func: Any) -> Any:
    return click.option(
        "--rejects",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write the input rows that cannot be used here, each with its file, line, column "
        "and reason.",
    )(func)


def value_checks_option(func):
    """How strictly to check case values before grouping."""
    return click.option(
        "--value-checks",
        type=click.Choice(["format", "strict"]),
        default="format",
        show_default=True,
        help="format: the checks of the ruleset format (FORMAT.md §5, as the reference "
        "grouper), noting implausible ages, birth weights and stays in the detail; "
        "strict: such cases are invalid (age_implausible, …).",
    )(func)
