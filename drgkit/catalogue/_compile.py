"""Compile validated catalogue tables into integer arrays for the DIP kernel, and cache them.

Layout (numpy arrays; ids are dense ints):

* packets: ``p_kind`` (index into :data:`KINDS`), ``p_rank`` (rank of the score, for the tie rule).
* specs: spec ``s`` owns alternatives ``spec_ptr[s] .. spec_ptr[s+1]``; alternative ``a`` owns
  items ``alt_ptr[a] .. alt_ptr[a+1]`` of ``items`` (a dx or px pattern id, by where the spec is
  used). Spec id -1 = no condition.
* rule tiers (pregroup, merge, subdivide in order): ``r_tier, r_packet, r_pdx, r_sdx, r_ppx,
  r_px`` (spec ids), ``r_vent, r_wmin, r_wmax`` (float, NaN = none), ``r_agemax`` (-1 = none).
* core rows grouped by dx key: key ``k`` owns rows ``core_ptr[k] .. core_ptr[k+1]`` of
  ``c_packet, c_ppx`` (spec, -1 = conservative), ``c_rel`` (spec, -1 = none), ``c_order``.
* ``comp[category, attribute]``: comprehensive packet or -1; ``cons[attribute]``: counts as
  conservative; ``chain``: fallback steps; ``blank``: packet or -1.

Per-code facts (is a code excluded, its key, category, fallback packet, attribute, which patterns
it matches) are derived per *distinct* code of each batch from the string tables in ``names``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import attrs
import numpy as np

from .._versions import CompiledTables, load_cached
from . import _tables as T

COMPILER_VERSION = 1
TIER_IDS = {"pregroup.csv": 1, "merge.csv": 2, "subdivide.csv": 3}
STEP_IDS = {"comprehensive": 5, "prefix": 6, "blank": 7}
TIE_IDS = {name: i for i, name in enumerate(T.TIE_RULES)}


@attrs.define(slots=True, eq=False)
class CompiledCatalogue(CompiledTables):
    """Arrays for the DIP kernel plus the names that explain them (one cache entry)."""

    compiler: ClassVar[int] = COMPILER_VERSION

    #: per-catalogue lookups built on first use (prefix dictionaries)
    derived: dict = attrs.field(factory=dict)


class _Specs:
    def __init__(self) -> None:
        self.spec_ptr = [0]
        self.alt_ptr = [0]
        self.items: list[int] = []

    def add(self, spec: T.Spec, ids: dict[str, int]) -> int:
        if not spec:
            return -1
        for alternative in spec:
            for item in alternative:
                self.items.append(ids.setdefault(item, len(ids)))
            self.alt_ptr.append(len(self.items))
        self.spec_ptr.append(len(self.alt_ptr) - 1)
        return len(self.spec_ptr) - 2


def compile_tables(t: T.CatalogueTables) -> CompiledCatalogue:
    packets = list(t.packets)
    pid = {p: i for i, p in enumerate(packets)}
    scores = sorted({p.score for p in t.packets.values()})
    score_rank = {s: i for i, s in enumerate(scores)}
    dx_pat: dict[str, int] = {}
    px_pat: dict[str, int] = {}
    specs = _Specs()

    def as_spec(items: tuple[str, ...]) -> T.Spec:
        return tuple((x,) for x in items)

    nan = float("nan")
    rules = t.rules
    r = {
        "r_tier": np.array([TIER_IDS[x.tier] for x in rules], dtype=np.int8),
        "r_packet": np.array([pid[x.packet] for x in rules], dtype=np.int32),
        "r_pdx": np.array(
            [specs.add(as_spec(x.principal_dx), dx_pat) for x in rules], dtype=np.int32
        ),
        "r_sdx": np.array([specs.add(x.secondary_dx, dx_pat) for x in rules], dtype=np.int32),
        "r_ppx": np.array(
            [specs.add(as_spec(x.principal_px), px_pat) for x in rules], dtype=np.int32
        ),
        "r_px": np.array([specs.add(x.procedures, px_pat) for x in rules], dtype=np.int32),
        "r_vent": np.array(
            [float(x.min_vent_hours) if x.min_vent_hours is not None else nan for x in rules],
            dtype=np.float64,
        ),
        "r_wmin": np.array(
            [float(x.min_weight) if x.min_weight is not None else nan for x in rules],
            dtype=np.float64,
        ),
        "r_wmax": np.array(
            [float(x.max_weight) if x.max_weight is not None else nan for x in rules],
            dtype=np.float64,
        ),
        "r_agemax": np.array(
            [x.max_age_days if x.max_age_days is not None else -1 for x in rules], dtype=np.int64
        ),
    }

    keys = sorted({c.dx_key for c in t.core})
    key_id = {k: i for i, k in enumerate(keys)}
    order = sorted(range(len(t.core)), key=lambda i: (key_id[t.core[i].dx_key], i))
    core_ptr = np.zeros(len(keys) + 1, dtype=np.int32)
    for i in order:
        core_ptr[key_id[t.core[i].dx_key] + 1] += 1
    core_ptr = np.cumsum(core_ptr).astype(np.int32)
    c = {
        "core_ptr": core_ptr,
        "c_packet": np.array([pid[t.core[i].packet] for i in order], dtype=np.int32),
        "c_ppx": np.array(
            [specs.add(as_spec(t.core[i].principal_px), px_pat) for i in order], dtype=np.int32
        ),
        "c_rel": np.array([specs.add(t.core[i].related_px, px_pat) for i in order], dtype=np.int32),
        "c_order": np.array(order, dtype=np.int32),
    }

    cats = sorted({cat for cat, _a in t.comprehensive})
    cat_id = {x: i for i, x in enumerate(cats)}
    comp = np.full((max(len(cats), 1), len(T.ATTRIBUTES)), -1, dtype=np.int32)
    for (cat, attr), packet in t.comprehensive.items():
        comp[cat_id[cat], attr] = pid[packet]
    cons = np.zeros(len(T.ATTRIBUTES), dtype=np.bool_)
    cons[list(t.conservative_attributes)] = True

    arrays = {
        "p_kind": np.array([T.KINDS.index(t.packets[p].kind) for p in packets], dtype=np.int8),
        "p_rank": np.array([score_rank[t.packets[p].score] for p in packets], dtype=np.int32),
        "spec_ptr": np.array(specs.spec_ptr, dtype=np.int32),
        "alt_ptr": np.array(specs.alt_ptr, dtype=np.int32),
        "items": np.array(specs.items or [0], dtype=np.int32),
        **r,
        **c,
        "comp": comp,
        "cons": cons,
        "chain": np.array([STEP_IDS[s] for s in t.chain], dtype=np.int8),
        "blank": np.array([pid[t.blank_packet] if t.blank_packet else -1], dtype=np.int32),
        "tie": np.array([TIE_IDS[t.tie_rule]], dtype=np.int8),
    }
    names = {
        "compiler": COMPILER_VERSION,
        "content_hash": t.content_hash,
        "meta": t.meta,
        "packets": packets,
        "packet_names": [t.packets[p].name for p in packets],
        "packet_kinds": [t.packets[p].kind for p in packets],
        "scores": [str(t.packets[p].score) for p in packets],
        "dx_patterns": sorted(dx_pat, key=dx_pat.get),
        "px_patterns": sorted(px_pat, key=px_pat.get),
        "excluded_dx": list(t.excluded_dx),
        "excluded_px": list(t.excluded_px),
        "keys": keys,
        "key_chars": t.dx_key_chars,
        "categories": cats,
        "fallback_prefix": {k: pid[v] for k, v in t.fallback_prefix.items()},
        "fallback_ranges": [[lo, hi, pid[p]] for lo, hi, p in t.fallback_ranges],
        "px_attribute": t.px_attribute,
        "rules": [[x.tier, x.row, x.packet] for x in rules],
        "core": [[t.core[i].row, t.core[i].packet] for i in order],
        "aux": [
            [a.packet, a.dimension, a.band, a.lo, a.hi, a.subtype, str(a.coefficient), a.row]
            for a in t.aux
        ],
    }
    return CompiledCatalogue(t.content_hash, arrays, names)


def load_compiled(folder: Path, *, use_cache: bool = True) -> CompiledCatalogue:
    """Compiled form of a catalogue folder, from the cache when its content hash is there."""
    return load_cached(
        folder,
        CompiledCatalogue,
        "dip-catalogue",
        T.content_hash(folder),
        lambda f: compile_tables(T.read_tables(f)),
        use_cache=use_cache,
    )
