"""The tables a report shows, gathered once: indicators (from :mod:`drgkit.monitoring`) per
hospital, DRG, month and MDC, the warnings with their lights, and for a what-if the change per
department and DRG (from ``drgkit simulate``'s output). HTML and Excel render the same
:class:`Report`, so the page and the workbook cannot disagree."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io import CaseSource, open_cases
from ..errors import ArgumentError, CaseDataError
from ..schema import MONEY, SIMULATE_COMPONENTS

__all__ = ["KEY_COLUMNS", "Report", "build_report", "what_if_tables"]

#: the key columns a report's tables may have, in the order they are shown
KEY_COLUMNS = (
    "hospital_id",
    "department",
    "doctor",
    "drg",
    "drg_base",
    "mdc",
    "month",
    "scheme",
    "insurance_type",
    "hospital_level",
)

#: the columns of ``drgkit simulate``'s output that a what-if report adds up
_WHAT_IF_MONEY = ("payment_base", "payment_alt", "change", *SIMULATE_COMPONENTS)


@attrs.frozen(slots=True)
class Report:
    """Everything a report shows. The indicator tables follow the column contract of
    :func:`drgkit.monitoring.indicators` (keys first); ``warnings`` is the unit table with the
    ``light`` and ``rule`` columns of :func:`drgkit.monitoring.warnings`."""

    policy: str
    #: the region's indicators (one row, no key column)
    region: pa.Table
    #: one row per unit: hospitals (region report) or one hospital's departments
    units: pa.Table
    #: indicators per DRG, per month (``YYYY-MM``) and per MDC (``None``: no MDC in the data)
    drgs: pa.Table
    months: pa.Table
    mdcs: pa.Table | None
    #: the unit table with ``light`` and ``rule``
    warnings: pa.Table
    #: one row per unit and rule (keys, indicator, value, light, rule, action), when known
    warning_details: pa.Table | None = None
    #: the hospital of a hospital view, its own indicators (one row) and its departments
    hospital: str | None = None
    hospital_row: pa.Table | None = None
    #: per hospital and department (region report only)
    departments: pa.Table | None = None
    #: what changes under next year's rules, per department and per DRG (``drg_base``)
    what_if_departments: pa.Table | None = None
    what_if_drgs: pa.Table | None = None
    #: how many DRGs the gain/loss chart and table show
    top: int = 15
    #: ``drg`` or ``dip`` (the policy's scheme): a DIP report names packets, not DRGs
    scheme: str = "drg"
    #: first and last discharge month of the cases, 'YYYY-MM' (for the subtitle)
    period: tuple[str, str] | None = None
    #: the policy's regional targets met or missed (:func:`drgkit.monitoring.targets`): the
    #: region's, and each hospital's (a hospital view: that hospital's)
    targets: pa.Table | None = None

    @property
    def unit_key(self) -> str:
        """The key the unit charts are drawn by: ``hospital_id``, or ``department``."""
        return "department" if self.hospital is not None else "hospital_id"

    def write(self, path: Any, *, lang: str = "zh") -> None:
        """Write the report: ``.html`` (one self-contained page) or ``.xlsx`` (a workbook)."""
        from pathlib import Path

        from .._write import atomic_output

        target = Path(path)
        suffix = target.suffix.lower()
        if suffix in (".html", ".htm"):
            from ._html import render_html

            text = render_html(self, lang=lang)
            with atomic_output(target) as tmp:
                Path(tmp).write_bytes(text.encode("utf-8"))
        elif suffix == ".xlsx":
            from ._xlsx import write_xlsx

            with atomic_output(target) as tmp:
                write_xlsx(self, tmp, lang=lang)
        else:
            raise ArgumentError(f"{target}: a report is written as .html or .xlsx, not {suffix!r}")


def _sorted(table: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    """Rows in key order (nulls last): the same input gives the same page."""
    keys = tuple(k for k in keys if k in table.column_names)
    if not keys or table.num_rows == 0:
        return table
    return table.sort_by([(k, "ascending") for k in keys])


def _without_lights(lit: pa.Table) -> pa.Table:
    """An indicator table lit by :func:`drgkit.monitoring.warnings`, without the lights."""
    return lit.drop_columns([c for c in ("light", "rule") if c in lit.column_names])


def _only(table: pa.Table, hospital: str) -> pa.Table:
    """The rows of one hospital, without the hospital key."""
    rows = table.filter(pc.equal(table["hospital_id"], hospital))
    return rows.drop_columns(["hospital_id"])


def build_report(
    settled: Any,
    policy: Any,
    *,
    hospital: str | None = None,
    what_if: Any = None,
    previous: Any = None,
    cases: Any = None,
    year: int | None = None,
    top: int = 15,
    indicators: Callable[..., pa.Table] | None = None,
    warnings: Callable[[pa.Table, Any], pa.Table] | None = None,
    warning_details: Callable[[pa.Table, Any], pa.Table] | None = None,
    progress: Callable[[tuple[str, ...], int], None] | None = None,
) -> Report:
    """The report of a settled table (``drgkit settle``'s output: a table or a path) under
    ``policy`` (a :class:`~drgkit.settlement.Policy`; its ``[monitoring]`` rules set the lights).

    ``hospital``: the same report for that hospital against the region (its departments are the
    units; every index is still against the region's per-DRG means, because the indicators are
    computed over all the cases and then narrowed to the hospital). ``what_if``: the per-case
    (``--cases-out``) or per-key output of ``drgkit simulate`` for a what-if section.
    ``previous``: last period's settled cases (growth); ``cases``: the case input of the settled
    table (columns it lacks). ``year``: only the cases discharged in that year, with growth
    against the year before from the same data (unless ``previous`` is given); a path is then
    read batch by batch, once to count the cases per year and once per table (never whole).
    ``indicators``, ``warnings`` and ``warning_details`` default to :mod:`drgkit.monitoring`'s
    functions (given, they stand in for them: tests; the targets section then needs the real
    ones). ``progress``: called with the keys of the indicator table being computed and the
    rows read so far, after each batch.
    """
    if top < 1:
        raise ArgumentError(f"top must be at least 1, not {top}")
    if year is not None and cases is not None:
        # the case file is matched to the settled file row for row; one year's rows are not
        raise ArgumentError(
            "--cases cannot be combined with --year: the case file is matched row for row "
            "with the whole settled file (settle carries mdc, los, leaving_type, drug and "
            "consumable costs itself: re-settle, or split the files by year first)"
        )
    extra: dict[str, Any] = {} if cases is None else {"cases": cases}
    targets = None
    if indicators is None:
        from .. import monitoring

        indicators = monitoring.indicators
        targets = monitoring.targets
        warnings = warnings or monitoring.warnings
        warning_details = warning_details or monitoring.warning_details
        if policy is not None and not isinstance(policy, str):
            # the low-risk groups by the policy's own cut-offs ([monitoring.risk]), as
            # drgkit indicators -p POLICY computes them
            extra["risk"] = monitoring.MonitoringRules.from_policy(policy).risk
    if warnings is None:
        raise ArgumentError("give warnings= with indicators=")
    # a path of a year is read as a stream per table (never whole): ``source`` opens it anew
    source: Callable[[], Any] | None = None
    if year is not None and isinstance(settled, pa.Table):
        settled, previous, name = _one_year(settled, year, previous)
    elif year is not None:
        source, previous, name, columns = _year_stream(settled, year, previous)
    if source is None and isinstance(settled, pa.Table):
        name, columns = name if year is not None else "settled", settled.column_names
    elif source is None:
        # a path is handed to monitoring as it is, which reads it batch by batch: a report of
        # a year too large for memory needs only its indicator tables in memory
        src = open_cases(settled)
        name, columns = src.name, src.schema.names
        _close(src)

    def ind(*by: str) -> pa.Table:
        if progress is not None:
            extra["progress"] = lambda rows: progress(by, rows)
        data = settled if source is None else source()
        before = previous() if callable(previous) else previous
        return indicators(data, by, policy=policy, previous=before, **extra)

    region = ind()
    if region.num_rows == 0 or not region["cases"][0].as_py():
        raise CaseDataError("no cases: a report needs at least one settled case", file=name)
    # the MDC comes with the settled table, or from the case input (monitoring joins it)
    has_mdc = "mdc" in columns or cases is not None
    common: dict[str, Any] = {"policy": getattr(policy, "id", str(policy)), "top": top}
    common["scheme"] = "dip" if getattr(policy, "method", None) == "dip" else "drg"
    common["region"] = region
    if hospital is None:
        lit = _sorted(warnings(ind("hospital_id"), policy), ("hospital_id",))
        details = warning_details(_without_lights(lit), policy) if warning_details else None
        common |= {
            "drgs": _sorted(ind("drg"), ("drg",)),
            "months": _sorted(ind("month"), ("month",)),
            "mdcs": _sorted(ind("mdc"), ("mdc",)) if has_mdc else None,
            "departments": _sorted(ind("hospital_id", "department"), ("hospital_id", "department")),
        }
    else:
        hospitals = ind("hospital_id")
        if hospital not in hospitals["hospital_id"].to_pylist():
            raise ArgumentError(f"hospital {hospital!r} has no case in {name}")
        # the lights of every hospital's departments, then this hospital's: a relative rule
        # compares a department with the region, not with the rest of its own hospital
        all_departments = ind("hospital_id", "department")
        lit = _sorted(_only(warnings(all_departments, policy), hospital), ("department",))
        details = None
        if warning_details is not None:
            details = _only(warning_details(all_departments, policy), hospital)
        common |= {
            "hospital": hospital,
            "hospital_row": _only(hospitals, hospital),
            "drgs": _sorted(_only(ind("hospital_id", "drg"), hospital), ("drg",)),
            "months": _sorted(_only(ind("hospital_id", "month"), hospital), ("month",)),
            "mdcs": _sorted(_only(ind("hospital_id", "mdc"), hospital), ("mdc",))
            if has_mdc
            else None,
        }
    # the unit table and its lights, row for row
    common |= {"units": _without_lights(lit), "warnings": lit, "warning_details": details}
    if targets is not None and policy is not None and not isinstance(policy, str):
        every = hospitals if hospital is not None else _without_lights(lit)
        met = targets(region, every, rules=policy)
        if hospital is not None:  # the region's targets and this hospital's
            keep = pc.or_(
                pc.not_equal(met["scope"], "hospital"), pc.equal(met["scope_id"], hospital)
            )
            met = met.filter(pc.fill_null(keep, True))
        common["targets"] = met
    months = [m for m in common["months"]["month"].to_pylist() if m is not None]
    common["period"] = (min(months), max(months)) if months else None
    if what_if is not None:
        lookup = _settled_columns(
            settled if source is None else source(), ("case_id", "hospital_id", "department")
        )
        by_dept, by_drg = what_if_tables(what_if, lookup, hospital=hospital)
        common |= {"what_if_departments": by_dept, "what_if_drgs": by_drg}
    return Report(**common)


def what_if_tables(
    simulated: Any, settled: pa.Table | None = None, *, hospital: str | None = None
) -> tuple[pa.Table | None, pa.Table]:
    """``drgkit simulate``'s output added up per department and per DRG of this year's rules:
    cases, cases changing DRG (per-case input only), payments before and after, the change and
    its parts (regrouping, case mix, price, outlier), exactly (decimal sums, no float).

    A per-case table (``--cases-out``) counts one case a row; a per-key table (``-o``, by keys
    that include ``department`` or ``drg``) carries its ``cases``. The department of a case comes
    from the simulated table, else from ``settled`` by ``case_id``; without either, the
    department table is ``None``.
    """
    if isinstance(simulated, pa.Table):
        sim, name = simulated, "what-if table"
    else:
        src = open_cases(simulated)
        sim, name = pa.Table.from_batches(list(src.batches), schema=src.schema), src.name
    per_case = "case_id" in sim.column_names
    need = [c for c in _WHAT_IF_MONEY if c not in sim.column_names]
    if not per_case and "cases" not in sim.column_names:
        need.append("case_id or cases")
    if need:
        raise CaseDataError(
            f"not the output of drgkit simulate: no column {', '.join(need)}", file=name
        )
    columns = {c: _money(sim[c], name, c) for c in _WHAT_IF_MONEY}
    columns["cases"] = (
        pa.array([1] * sim.num_rows, pa.int64()) if per_case else sim["cases"].cast(pa.int64())
    )
    if per_case and "drg_base" in sim.column_names and "drg_alt" in sim.column_names:
        base, alt = sim["drg_base"].cast(pa.string()), sim["drg_alt"].cast(pa.string())
        moved = pc.fill_null(
            pc.not_equal(base, alt), pc.not_equal(pc.is_null(base), pc.is_null(alt))
        )
        columns["moved"] = pc.cast(moved, pa.int64())
    drg_col = "drg_base" if "drg_base" in sim.column_names else "drg"
    keys: dict[str, pa.ChunkedArray] = {}
    if drg_col in sim.column_names:
        keys["drg_base"] = sim[drg_col].cast(pa.string())
    if "department" in sim.column_names:
        keys["department"] = sim["department"].cast(pa.string())
    elif per_case and settled is not None and "department" in settled.column_names:
        keys["department"] = _lookup(sim["case_id"], settled, "department")
    hospitals = None
    if "hospital_id" in sim.column_names:
        hospitals = sim["hospital_id"].cast(pa.string())
    elif per_case and settled is not None:
        hospitals = _lookup(sim["case_id"], settled, "hospital_id")
    data = pa.table({**keys, **columns})
    if hospital is not None:
        if hospitals is None:
            raise CaseDataError(
                "the what-if table names no hospital (hospital_id), so it cannot be narrowed "
                f"to hospital {hospital!r}",
                file=name,
            )
        data = data.filter(pc.equal(hospitals, hospital))
    by_dept = _sum_by(data, "department") if "department" in data.column_names else None
    if "drg_base" not in data.column_names:
        raise CaseDataError(
            "the what-if table has no drg_base (or drg) column: give drgkit simulate's "
            "per-case output (--cases-out FILE), or its -o table with --by including drg",
            file=name,
        )
    return by_dept, _sum_by(data, "drg_base")


def _years_of(batch: pa.RecordBatch) -> np.ndarray:
    """The discharge year of each case of a batch; 0 when it has no (valid) discharge date."""
    from .._cases import parse_dates

    column = batch.column("discharge_date")
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    days, flag = parse_dates(column, batch.num_rows)
    years = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    return np.where(flag == 0, years, 0)


def _year_source(settled: Any, year: int) -> CaseSource:
    """The cases of a settled path discharged in ``year``, batch by batch (a fresh stream;
    unreadable CSV lines are reported by the reader as for the whole file)."""
    src = open_cases(settled)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in src.batches:
            yield batch.filter(pa.array(_years_of(batch) == year))

    return CaseSource(src.name, src.schema, batches(), malformed=src.malformed)


def _year_stream(
    settled: Any, year: int, previous: Any
) -> tuple[Callable[[], CaseSource], Any, str, list[str]]:
    """For a settled path: a maker of streams of the cases of ``year``, ``previous`` (or else
    a maker of streams of the year before, None when it has no case), the input's name and
    columns. One pass counts the cases per year first (only the dates are kept)."""
    src = open_cases(settled)
    name, columns = src.name, list(src.schema.names)
    if "discharge_date" not in columns:
        _close(src)
        raise CaseDataError("no discharge_date column to pick a year by", file=name)
    counts: dict[int, int] = {}
    try:
        for batch in src.batches:
            found, n = np.unique(_years_of(batch), return_counts=True)
            for y, k in zip(found.tolist(), n.tolist(), strict=True):
                counts[y] = counts.get(y, 0) + k
    finally:
        _close(src)
    if not counts.get(year):
        raise ArgumentError(f"no case of {name} was discharged in {year}")
    _warn_undated(name, counts.get(0, 0), year)
    if previous is None and counts.get(year - 1):
        previous = lambda: _year_source(settled, year - 1)  # noqa: E731
    return (lambda: _year_source(settled, year)), previous, name, columns


def _warn_undated(name: str, undated: int, year: int) -> None:
    """Such a case belongs to no year: said, not silently left out of every year's report."""
    if undated:
        import warnings

        from .._io import DataWarning

        warnings.warn(
            DataWarning(
                f"{name}: {undated:,} case(s) without a discharge_date are in no year: the "
                f"report of {year} leaves them out"
            ),
            stacklevel=4,
        )


def _one_year(settled: Any, year: int, previous: Any) -> tuple[pa.Table, Any, str]:
    """The cases discharged in ``year``, and ``previous`` or else those of the year before
    (None when there are none)."""
    from ..settlement._output import read_settled

    name = "settled" if isinstance(settled, pa.Table) else open_cases(settled).name
    table = settled if isinstance(settled, pa.Table) else read_settled(settled)
    if "discharge_date" not in table.column_names:
        raise CaseDataError("no discharge_date column to pick a year by", file=name)
    dates = table["discharge_date"]
    if not (pa.types.is_date(dates.type) or pa.types.is_timestamp(dates.type)):
        raise CaseDataError(
            f"discharge_date is {dates.type}, not a date: cannot pick a year by it",
            file=name,
            column="discharge_date",
        )
    years = pc.year(dates)
    _warn_undated(name, years.null_count, year)
    current = table.filter(pc.equal(years, year))
    if current.num_rows == 0:
        raise ArgumentError(f"no case of {name} was discharged in {year}")
    if previous is None:
        before = table.filter(pc.equal(years, year - 1))
        previous = before if before.num_rows else None
    return current, previous, name


def _settled_columns(settled: Any, names: tuple[str, ...]) -> pa.Table:
    """Only ``names`` (those present) of the settled cases, read batch by batch."""
    if isinstance(settled, pa.Table):
        return settled.select([n for n in names if n in settled.column_names])
    src = open_cases(settled)
    try:
        keep = [n for n in names if n in src.schema.names]
        parts = [pa.Table.from_batches([b]).select(keep) for b in src.batches]
    finally:
        _close(src)
    if not parts:
        return pa.table({n: pa.array([], pa.string()) for n in keep})
    return pa.concat_tables(parts, promote_options="permissive")


def _close(src: Any) -> None:
    """Let go of a source's file (its batches are a generator holding it open)."""
    close = getattr(src.batches, "close", None)
    if close is not None:
        close()


def _lookup(case_ids: pa.ChunkedArray, settled: pa.Table, column: str) -> pa.ChunkedArray:
    """``settled[column]`` of each case id, in the order of ``case_ids`` (null: not settled).

    ``drgkit simulate --cases-out`` writes one row per input case in input order, as settle
    does: then the rows match one for one, duplicated case ids included. Otherwise the cases
    are matched by id, which needs each id once in the settled cases."""
    ids = case_ids.cast(pa.string())
    settled_ids = settled["case_id"].cast(pa.string())
    if len(ids) == len(settled_ids) and ids.equals(settled_ids):
        return settled[column].cast(pa.string())
    counts = pa.table({"case_id": settled_ids}).group_by("case_id").aggregate([([], "count_all")])
    twice = counts.filter(pc.greater(counts["count_all"], 1))
    if twice.num_rows:
        first = min(twice["case_id"].to_pylist(), key=lambda v: (v is None, v or ""))
        raise CaseDataError(
            f"case id {first!r} appears more than once in the settled cases and the what-if "
            "table is not row for row the same cases, so its cases cannot be matched to their "
            f"{column}: give drgkit simulate's output with --by {column}"
        )
    left = pa.table({"case_id": ids, "__row": pa.array(range(len(ids)), pa.int64())})
    right = pa.table({"case_id": settled_ids, column: settled[column].cast(pa.string())})
    # a join does not keep row order: sort back by the row number of the what-if table
    joined = left.join(right, "case_id", join_type="left outer", use_threads=False)
    return joined.sort_by("__row")[column]


def _money(col: pa.ChunkedArray, name: str, column: str) -> pa.ChunkedArray:
    """A money column as MONEY, exactly (a CSV gives text; a cast that would round fails)."""
    try:
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            col = pc.if_else(pc.equal(col, ""), pa.scalar(None, col.type), col)
        return col.cast(MONEY)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise CaseDataError(
            f"not an amount in yuan and cents: {exc}", file=name, column=column
        ) from None


def _sum_by(data: pa.Table, key: str) -> pa.Table:
    """Sums per ``key`` (counts as int64, money exact as MONEY), in key order."""
    sums = [c for c in data.column_names if c not in ("department", "drg_base")]
    grouped = data.group_by(key, use_threads=False).aggregate([(c, "sum") for c in sums])
    out = {key: grouped[key]}
    for c in ("cases", "moved", *_WHAT_IF_MONEY):
        if c in sums:
            col = grouped[f"{c}_sum"]
            out[c] = col.cast(pa.int64()) if c in ("cases", "moved") else col.cast(MONEY)
    return _sorted(pa.table(out), (key,))
