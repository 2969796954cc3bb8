"""Historical cases for the DIP catalogue builder, read once into flat numpy columns.

Every input row either becomes a valid case (integer cents, a year index, a 4-character
diagnosis key, a principal procedure and a canonical related-procedure set, each as a rank in
a sorted code list so that id order is text order) or an *excluded* row with a reason naming
the field. Nothing is dropped silently: the excluded rows are part of the build result.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._cases import parse_dates
from .._io import open_cases
from .._jit import jit
from .._money import FLAG_TEXT, OK, to_cents
from ..errors import CaseDataError
from ._build_cci import cci_per_case

__all__ = ["History", "dx4_key", "read_history"]

_DX = re.compile(r"[A-Z][0-9A-Z]{2}")
#: Columns a history must have (year may come from discharge_date instead).
REQUIRED = ("case_id", "hospital_id", "hospital_level", "diagnoses", "procedures", "total_cost")


def dx4_key(code: str) -> str | None:
    """The packet key of a principal diagnosis: its first 4 significant characters written
    ``XXX.X`` (``I21.0x001`` -> ``I21.0``, ``I210`` -> ``I21.0``, ``I21`` -> ``I21``);
    None when the code does not start like an ICD-10 code (letter + 2 characters)."""
    plain = code.strip().upper().replace(".", "")
    if len(plain) < 3 or not _DX.fullmatch(plain[:3]):
        return None
    return plain[:3] + ("." + plain[3] if len(plain) > 3 else "")


@attrs.define(slots=True, eq=False)
class History:
    """Valid cases as arrays (index = valid case), plus the excluded rows."""

    source: str
    rows: int  # rows read
    row: np.ndarray  # 0-based source row of each valid case
    years: list[int]  # distinct years, oldest first
    weight: np.ndarray  # int64 year weight of each case
    year_index: np.ndarray  # int64 index into years
    level: np.ndarray  # int64 hospital level (1..3)
    cost: np.ndarray  # int64 cents (> 0)
    los: np.ndarray  # int64, -1 = missing
    age: np.ndarray  # int64 years, -1 = missing
    age_days: np.ndarray  # int64, -1 = missing
    icu_days: np.ndarray  # int64, -1 = missing
    cci: np.ndarray  # int64, -1 = missing
    death: np.ndarray  # bool
    dx: np.ndarray  # int64 rank in dx_codes
    dx_codes: list[str]
    proc: np.ndarray  # int64 rank in proc_codes (0 = no procedure, code "")
    proc_codes: list[str]
    rel: np.ndarray  # int64 rank in rel_codes (0 = none, code "")
    rel_codes: list[str]
    excluded: pa.Table  # row, case_id, reason
    columns: frozenset[str]


def _text(arr: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.large_string())
    return arr


def _code_ids(arr: pa.Array, source: str, field: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(offsets[n+1], code ids, codes) of a code column: text is split on | or ,; every code
    is trimmed and upper-cased, empty codes are left out, and ids are ranks in the sorted
    list of distinct codes (so id order = text order). Distinct values are normalised once
    (dictionary encoding), not once per case."""
    n = len(arr)
    t = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type
    if pa.types.is_null(t):
        return np.zeros(n + 1, np.int64), np.zeros(0, np.int64), []
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        arr = pc.split_pattern_regex(_text(arr), r"[|,]")
    elif (
        pa.types.is_list_view(t) or pa.types.is_large_list_view(t) or pa.types.is_fixed_size_list(t)
    ):
        arr = arr.cast(pa.large_list(t.value_type))
    elif not (pa.types.is_list(t) or pa.types.is_large_list(t)):
        raise CaseDataError(
            f"codes must be text ('|'-separated) or a list of texts, got {t}",
            file=source,
            column=field,
        )
    if arr.null_count:
        arr = pc.if_else(pc.is_null(arr), pa.scalar([], arr.type), arr)
    offsets = arr.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    values = arr.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    offsets = offsets - offsets[0]
    if pa.types.is_null(values.type):
        return np.zeros(n + 1, np.int64), np.zeros(0, np.int64), []
    enc = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
    raw = enc.dictionary.to_pylist()
    norm = [str(v).strip().upper() if v is not None else "" for v in raw]
    codes = sorted({c for c in norm if c})
    pos = {c: i for i, c in enumerate(codes)}
    remap = np.array([pos.get(c, -1) for c in norm] or [-1], np.int64)
    idx = enc.indices.fill_null(len(raw)).to_numpy(zero_copy_only=False).astype(np.int64)
    ids = np.append(remap, -1)[idx]
    keep = ids >= 0
    kept_before = np.zeros(len(ids) + 1, np.int64)
    np.cumsum(keep, out=kept_before[1:])
    return kept_before[offsets], ids[keep], codes


@jit
def _related_sets(offsets, ids, principal):
    """Per case: distinct secondary procedure ids other than the principal, ascending."""
    n = len(offsets) - 1
    out_off = np.zeros(n + 1, np.int64)
    out = np.empty(len(ids), np.int64)
    k = 0
    for i in range(n):
        a = offsets[i] + 1
        b = offsets[i + 1]
        start = k
        for j in range(a, b):
            v = ids[j]
            if v == principal[i]:
                continue
            # insertion into the (short) sorted run, skipping duplicates
            pos = k
            dup = False
            while pos > start and out[pos - 1] >= v:
                if out[pos - 1] == v:
                    dup = True
                    break
                pos -= 1
            if dup:
                continue
            for q in range(k, pos, -1):
                out[q] = out[q - 1]
            out[pos] = v
            k += 1
        out_off[i + 1] = k
    return out_off, out[:k]


def _integers(arr: pa.Array | None, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, present, bad) of a whole-number column; text like ' 12 ' is accepted."""
    if arr is None:
        return np.zeros(n, np.int64), np.zeros(n, bool), np.zeros(n, bool)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    null = arr.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_integer(arr.type):
        vals = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        return vals, ~null, np.zeros(n, bool)
    if pa.types.is_floating(arr.type):
        x = arr.cast(pa.float64()).fill_null(0).to_numpy(zero_copy_only=False)
        whole = np.isfinite(x) & (np.floor(x) == x) & (np.abs(x) < 2**53)
        bad = ~null & ~whole
        return np.where(whole, x, 0).astype(np.int64), ~null & whole, bad
    text = pc.utf8_trim_whitespace(_text(arr))
    empty = pc.fill_null(pc.equal(text, ""), True).to_numpy(zero_copy_only=False)
    ok = pc.fill_null(pc.match_substring_regex(text, r"^[+-]?[0-9]{1,15}$"), False)
    ok_np = ok.to_numpy(zero_copy_only=False)
    vals = pc.cast(pc.if_else(ok, text, "0"), pa.int64()).to_numpy(zero_copy_only=False)
    return vals, ok_np, ~ok_np & ~empty


def read_history(
    history, *, weights: Sequence[int], death_codes: Sequence[str], need: Sequence[str] = ()
) -> History:
    """Read and check every row of ``history`` (anything :func:`drgkit._io.open_cases` reads)."""
    src = open_cases(history)
    batches = list(src.batches)
    # columns are joined one at a time when used (col), so the whole table is never copied
    table = (
        pa.Table.from_batches(batches, schema=src.schema) if batches else src.schema.empty_table()
    )
    names = set(table.column_names)
    for name in (*REQUIRED, *need):
        if name not in names:
            raise CaseDataError(f"the history has no {name!r} column", file=src.name, column=name)
    if "year" not in names and "discharge_date" not in names:
        raise CaseDataError(
            "the history needs a 'year' or a 'discharge_date' column", file=src.name, column="year"
        )
    n = table.num_rows

    def col(name: str) -> pa.Array | None:
        return table.column(name).combine_chunks() if name in names else None

    reason = np.zeros(n, np.int64)  # index into reasons; 0 = fine
    reasons: list[str] = [""]

    def flag(mask: np.ndarray, text: str) -> None:
        mask = mask & (reason == 0)
        if mask.any():
            reasons.append(text)
            reason[mask] = len(reasons) - 1

    if src.malformed:
        bad = src.malformed[0]
        raise CaseDataError(
            f"{len(src.malformed)} row(s) cannot be split into the header's fields; the first "
            f"has {bad.actual} fields, not {bad.expected}: {bad.text[:80]!r}",
            file=src.name,
            row=bad.row,
        )
    case_id = _text(col("case_id")).fill_null("")
    flag(
        pc.equal(pc.utf8_trim_whitespace(case_id), "").to_numpy(zero_copy_only=False),
        "case_id: missing",
    )
    cost, cflag = to_cents(col("total_cost"), n)
    for code, text in FLAG_TEXT.items():
        flag(cflag == code, f"total_cost: {text}")
    flag((cflag == OK) & (cost <= 0), "total_cost: not positive")
    if "year" in names:
        year, present, bad = _integers(col("year"), n)
        flag(bad, "year: not a whole number")
        flag(~present, "year: missing")
    else:
        days, dflag = parse_dates(col("discharge_date"), n)
        flag(dflag == 1, "discharge_date: missing")
        flag(dflag == 2, "discharge_date: not a date")
        year = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    level, present, bad = _integers(col("hospital_level"), n)
    flag(bad | (present & ((level < 1) | (level > 3))), "hospital_level: not 1, 2 or 3")
    flag(~present, "hospital_level: missing")
    optional = {}
    for name in ("los", "age", "age_days", "icu_days", "cci"):
        vals, present, bad = _integers(col(name), n)
        flag(bad | (present & (vals < 0)), f"{name}: not a whole number >= 0")
        optional[name] = np.where(present, vals, -1)
    death = np.zeros(n, bool)
    if "leaving_type" in names:
        lt = pc.utf8_trim_whitespace(_text(col("leaving_type"))).fill_null("")
        death = pc.is_in(lt, pa.array(list(death_codes), pa.large_string())).to_numpy(
            zero_copy_only=False
        )

    d_off, d_ids, d_codes = _code_ids(col("diagnoses"), src.name, "diagnoses")
    has_dx = np.diff(d_off) > 0
    keys = [dx4_key(c) for c in d_codes]
    dx_codes = sorted({k for k in keys if k is not None})
    pos = {k: i for i, k in enumerate(dx_codes)}
    remap = np.array([pos[k] if k is not None else -2 for k in keys] or [-1], np.int64)
    dx_full = np.full(n, -1, np.int64)
    dx_full[has_dx] = remap[d_ids[d_off[:-1][has_dx]]]
    if "cci" not in names:  # CCI from the secondary diagnoses (Charlson, Quan's ICD-10 codes)
        optional["cci"] = cci_per_case(d_off, d_ids, d_codes)
    flag(dx_full == -1, "diagnoses: no principal diagnosis")
    flag(dx_full == -2, "diagnoses: principal diagnosis is not an ICD-10 code")

    p_off, p_ids, p_codes = _code_ids(col("procedures"), src.name, "procedures")
    proc_codes = ["", *p_codes]
    ids = p_ids + 1  # 0 = no procedure
    has_p = np.diff(p_off) > 0
    principal = np.zeros(n, np.int64)
    principal[has_p] = ids[p_off[:-1][has_p]]
    r_off, r_ids = _related_sets(p_off, ids, principal)
    rel_bin = pa.Array.from_buffers(
        pa.large_binary(),
        n,
        [
            None,
            pa.py_buffer((r_off * 4).astype(np.int64)),
            pa.py_buffer(r_ids.astype(">u4").tobytes()),
        ],
    )
    enc = pc.dictionary_encode(rel_bin)
    sets = [np.frombuffer(b, ">u4") for b in enc.dictionary.to_pylist()]
    texts = ["+".join(proc_codes[int(i)] for i in s) for s in sets]
    order = sorted(range(len(texts)), key=texts.__getitem__)
    rel_rank = np.empty(len(texts), np.int64)
    rel_rank[order] = np.arange(len(texts))
    rel_all = rel_rank[enc.indices.to_numpy(zero_copy_only=False)]
    rel_codes = [texts[i] for i in order]
    if not rel_codes or rel_codes[0] != "":  # rank 0 is always "no related procedure"
        rel_codes = ["", *rel_codes]
        rel_all = rel_all + 1

    valid = reason == 0
    row = np.flatnonzero(valid)
    years = sorted({int(y) for y in np.unique(year[valid])})
    if len(years) > len(weights):
        raise CaseDataError(
            f"the history has {len(years)} years ({years}) but only "
            f"{len(weights)} year weights are set",
            file=src.name,
            column="year",
        )
    wts = list(weights)[len(weights) - len(years) :]  # the newest years take the last weights
    y_index = np.searchsorted(np.array(years, np.int64), year[valid]).astype(np.int64)
    bad_rows = np.flatnonzero(~valid)
    excluded = pa.table(
        {
            "row": pa.array(bad_rows + 1, pa.int64()),
            "case_id": case_id.take(pa.array(bad_rows)),
            "reason": pa.array([reasons[i] for i in reason[bad_rows]], pa.string()),
        }
    )
    return History(
        source=src.name,
        rows=n,
        row=row,
        years=years,
        weight=np.array(wts, np.int64)[y_index] if years else np.zeros(0, np.int64),
        year_index=y_index,
        level=level[valid],
        cost=cost[valid],
        los=optional["los"][valid],
        age=optional["age"][valid],
        age_days=optional["age_days"][valid],
        icu_days=optional["icu_days"][valid],
        cci=optional["cci"][valid],
        death=death[valid],
        dx=dx_full[valid],
        dx_codes=dx_codes,
        proc=principal[valid].astype(np.int64),
        proc_codes=proc_codes,
        rel=rel_all[valid],
        rel_codes=rel_codes,
        excluded=excluded,
        columns=frozenset(names),
    )
