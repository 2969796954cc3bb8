"""Exact string -> integer id lookup over Arrow's UTF-8 buffers, in numba.

A :class:`CodeTable` holds the codes a ruleset knows (diagnoses, procedures, map targets) in an
open-addressing hash table keyed by the bytes themselves. Lookups compare bytes, so they are
exact; a code the table does not hold gets id -1. The same kernels split a text column of
``|``/``,``-joined codes into per-case lists without building Python strings.

Two input habits are handled here, because they cost nothing in the kernels:

* Whitespace (space, tab, CR, LF, VT, FF) around a code is dropped: ``'I10.x05 | E11.900'`` is
  two codes, and a field of only whitespace is empty. No code of any ruleset starts or ends with
  whitespace, so this never changes which code is meant.
* A code the table does not hold is checked for the marks of common mistakes (:data:`SUSPECT`):
  a ``;`` or ``/`` or inner whitespace (another separator was used), or a lower-case letter
  other than the ``x`` of extension codes such as ``I10.x05`` (the file was lower-cased). The
  lookup stays exact; the marks only tell the caller which rows deserve a hint
  (see :func:`drgkit._cases.code_hints`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._jit import dual, jit, prange
from .errors import TableError

__all__ = ["SUSPECT", "CodeTable", "IdTracker", "as_numpy", "fingerprints", "string_buffers"]

#: Bits of the mistakes an unknown code shows: another separator, or lower case.
SUSPECT = {"semicolon": 1, "slash": 2, "whitespace": 4, "lower_case": 8}
#: the longest code a table holds (UTF-8 bytes); a longer case code is simply not found
MAX_CODE_BYTES = 0xFFFF

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@jit(inline="always")
def _hash(data, start, end):
    h = np.uint64(0xCBF29CE484222325)
    for k in range(start, end):
        h = (h ^ np.uint64(data[k])) * np.uint64(0x100000001B3)
    # final avalanche so that linear probing on the low bits spreads well
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    return h


@jit(inline="always")
def _key(data, start, end):
    """(hash, first 8 bytes, next 8 bytes) of ``data[start:end]``; hash is never 0."""
    h = np.uint64(0xCBF29CE484222325)
    w0 = np.uint64(0)
    w1 = np.uint64(0)
    for k in range(start, end):
        b = np.uint64(data[k])
        h = (h ^ b) * np.uint64(0x100000001B3)
        j = k - start
        if j < 8:
            w0 |= b << np.uint64(8 * j)
        elif j < 16:
            w1 |= b << np.uint64(8 * (j - 8))
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    return h | np.uint64(1), w0, w1


@jit(inline="always")
def _is_space(b):
    return b == 32 or (b >= 9 and b <= 13)


@jit(inline="always")
def _trim(data, a, b):
    """``(a, b)`` without the whitespace at either end of ``data[a:b]``."""
    while a < b and _is_space(data[a]):
        a += 1
    while b > a and _is_space(data[b - 1]):
        b -= 1
    return a, b


@jit(inline="always")
def _suspect(data, a, b):
    """SUSPECT bits of an unknown code ``data[a:b]`` (already trimmed)."""
    bits = 0
    for k in range(a, b):
        c = data[k]
        if c == 59:  # ;
            bits |= 1
        elif c == 47:  # /
            bits |= 2
        elif _is_space(c):
            bits |= 4
        elif c >= 97 and c <= 122 and (c != 120 or k == a):  # a-z; an 'x' inside is real
            bits |= 8
    return bits


# A slot is one row of four words: hash (0 = empty), id << 16 | length, key bytes 0-7, 8-15.
# A lookup reads one slot; keys longer than 16 bytes compare their tail in ``key_bytes``.


@jit(inline="always")
def _find(h, w0, w1, data, start, end, slots, mask, key_bytes, key_offsets):
    """Id of ``data[start:end]``, whose :func:`_key` is ``(h, w0, w1)``, in the table, or -1."""
    n = end - start
    slot = np.int64(h & np.uint64(mask))
    while True:
        sh = slots[slot, 0]
        if sh == 0:
            return np.int32(-1)
        if (
            sh == h
            and (slots[slot, 1] & np.uint64(0xFFFF)) == np.uint64(n)
            and slots[slot, 2] == w0
            and slots[slot, 3] == w1
        ):
            ident = np.int64(slots[slot, 1] >> np.uint64(16))
            if n <= 16:
                return np.int32(ident)
            k0 = key_offsets[ident]
            same = True
            for k in range(16, n):
                if key_bytes[k0 + k] != data[start + k]:
                    same = False
                    break
            if same:
                return np.int32(ident)
        slot = (slot + 1) & mask


@jit(inline="always")
def _lookup(data, start, end, slots, mask, key_bytes, key_offsets):
    """Id of ``data[start:end]`` in the table, or -1."""
    h, w0, w1 = _key(data, start, end)
    return _find(h, w0, w1, data, start, end, slots, mask, key_bytes, key_offsets)


@jit
def _build_slots(key_bytes, key_offsets, capacity):
    slots = np.zeros((capacity, 4), dtype=np.uint64)
    mask = np.int64(capacity - 1)
    for ident in range(len(key_offsets) - 1):
        a = key_offsets[ident]
        b = key_offsets[ident + 1]
        if b - a > 0xFFFF:
            raise ValueError("a code longer than 65535 bytes")
        h, w0, w1 = _key(key_bytes, a, b)
        slot = np.int64(h & np.uint64(mask))
        while slots[slot, 0] != 0:
            slot = (slot + 1) & mask
        slots[slot, 0] = h
        slots[slot, 1] = (np.uint64(ident) << np.uint64(16)) | np.uint64(b - a)
        slots[slot, 2] = w0
        slots[slot, 3] = w1
    return slots


@dual
def _map_values(offsets, data, valid, slots, mask, key_bytes, key_offsets, empty_id):
    """Id and SUSPECT bits of every string of an Arrow string array (null -> the id of the
    empty string)."""
    n = len(offsets) - 1
    out = np.empty(n, dtype=np.int32)
    flags = np.zeros(n, dtype=np.uint8)
    for i in prange(n):
        if valid is not None and not valid[i]:
            out[i] = empty_id
        else:
            a, b = _trim(data, offsets[i], offsets[i + 1])
            ident = _lookup(data, a, b, slots, mask, key_bytes, key_offsets)
            out[i] = ident
            if ident < 0:
                flags[i] = _suspect(data, a, b)
    return out, flags


@dual
def _split_count(offsets, data, valid, sep, empty_is_one):
    n = len(offsets) - 1
    counts = np.empty(n, dtype=np.int64)
    for i in prange(n):
        a, b = _trim(data, offsets[i], offsets[i + 1])
        if (valid is not None and not valid[i]) or a == b:
            counts[i] = 1 if empty_is_one else 0
            continue
        c = 1
        for k in range(a, b):
            if sep[data[k]]:
                c += 1
        counts[i] = c
    return counts


#: rows a block of :func:`_split_fill` splits and hashes before it probes the table
_BLOCK_ROWS = 256


@dual
def _split_fill(
    offsets,
    data,
    valid,
    sep,
    empty_is_one,
    out_offsets,
    slots,
    mask,
    key_bytes,
    key_offsets,
    empty_id,
):
    """Ids of the pieces of every text, and per text the OR of its unknown pieces' SUSPECT
    bits."""
    n = len(offsets) - 1
    out = np.empty(out_offsets[n], dtype=np.int32)
    flags = np.zeros(n, dtype=np.uint8)
    # In blocks of rows, two passes: split and hash every piece of the block, then probe the
    # table for them in a short loop. The table (4 MiB for CHS-DRG) is far larger than the
    # caches, so nearly every probe is a cache miss; with the byte loops of hashing out of
    # the probe loop, the CPU keeps several of those misses in flight at once.
    blocks = (n + _BLOCK_ROWS - 1) // _BLOCK_ROWS
    for blk in prange(blocks):
        r0 = blk * _BLOCK_ROWS
        r1 = min(n, r0 + _BLOCK_ROWS)
        base = out_offsets[r0]
        m = out_offsets[r1] - base
        first = np.empty(m, dtype=np.int64)  # piece bounds; -1: the empty code of a row
        last = np.empty(m, dtype=np.int64)
        hs = np.empty(m, dtype=np.uint64)
        w0s = np.empty(m, dtype=np.uint64)
        w1s = np.empty(m, dtype=np.uint64)
        for i in range(r0, r1):
            a, b = _trim(data, offsets[i], offsets[i + 1])
            j = out_offsets[i] - base
            if (valid is not None and not valid[i]) or a == b:
                if empty_is_one:
                    first[j] = -1
                continue
            start = a
            for k in range(a, b + 1):
                if k == b or sep[data[k]]:
                    p, q = _trim(data, start, k)
                    first[j] = p
                    last[j] = q
                    hs[j], w0s[j], w1s[j] = _key(data, p, q)
                    j += 1
                    start = k + 1
        unknown = False
        for j in range(m):
            if first[j] < 0:
                out[base + j] = empty_id
                continue
            ident = _find(
                hs[j], w0s[j], w1s[j], data, first[j], last[j], slots, mask, key_bytes, key_offsets
            )
            out[base + j] = ident
            if ident < 0:
                unknown = True
        if unknown:
            for i in range(r0, r1):
                for w in range(out_offsets[i], out_offsets[i + 1]):
                    j = w - base
                    if out[w] < 0 and first[j] >= 0:
                        flags[i] |= _suspect(data, first[j], last[j])
    return out, flags


def string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Zero-copy ``(offsets, data, valid)`` of a (large_)string array, honouring its offset.

    ``valid`` is None when the array has no nulls.
    """
    if pa.types.is_string_view(arr.type) or pa.types.is_binary_view(arr.type):
        arr = arr.cast(pa.large_string())
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise TypeError(f"expected a string array, got {arr.type}")
    large = pa.types.is_large_string(arr.type)
    bufs = arr.buffers()
    dtype = np.int64 if large else np.int32
    offsets = np.frombuffer(bufs[1], dtype=dtype)[arr.offset : arr.offset + len(arr) + 1]
    data = (
        np.frombuffer(bufs[2], dtype=np.uint8)
        if bufs[2] is not None and len(bufs[2])
        else np.zeros(1, dtype=np.uint8)
    )
    valid = None
    if arr.null_count:
        valid = as_numpy(pc.is_valid(arr))
    return offsets, data, valid


class CodeTable:
    """Exact lookup of code strings to dense ids ``0 .. len(codes) - 1``."""

    def __init__(self, codes: list[str], slots: np.ndarray | None = None) -> None:
        self.codes = list(codes)
        encoded = [c.encode("utf-8") for c in self.codes]
        for code, raw in zip(self.codes, encoded, strict=True):
            if len(raw) > MAX_CODE_BYTES:  # a slot keeps the length in 16 bits
                raise TableError(
                    f"a code longer than {MAX_CODE_BYTES} bytes: "
                    f"{code[:40]!r}... ({len(raw)} bytes)"
                )
        self.key_offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=self.key_offsets[1:])
        self.key_bytes = np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8).copy()
        capacity = 1 << max(4, (3 * len(encoded) // 2 + 1).bit_length())  # load <= 2/3
        self.slots = (
            slots if slots is not None else _build_slots(self.key_bytes, self.key_offsets, capacity)
        )
        self.mask = np.int64(len(self.slots) - 1)
        self.index = {c: i for i, c in enumerate(self.codes)}

    def __len__(self) -> int:
        return len(self.codes)

    def id(self, code: str) -> int:
        return self.index.get(code, -1)

    def map_strings(self, arr: pa.Array, empty_id: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """Ids and SUSPECT bits of the strings of ``arr``, each without surrounding whitespace
        (dictionary arrays map their dictionary once)."""
        if pa.types.is_dictionary(arr.type):
            dict_ids, dict_flags = self.map_strings(arr.dictionary, empty_id)
            indices = arr.indices
            idx = as_numpy(indices)
            if not len(dict_ids):
                return (np.full(len(idx), empty_id, np.int32), np.zeros(len(idx), np.uint8))
            if indices.null_count:
                valid = as_numpy(pc.is_valid(indices))
                idx = np.where(valid, idx, 0)
                out, flags = dict_ids[idx], dict_flags[idx]
                out[~valid] = empty_id
                flags[~valid] = 0
                return out, flags
            return dict_ids[idx], dict_flags[idx]
        offsets, data, valid = string_buffers(arr)
        return _map_values(
            len(offsets) - 1,
            offsets,
            data,
            valid,
            self.slots,
            self.mask,
            self.key_bytes,
            self.key_offsets,
            np.int32(empty_id),
        )

    def split_and_map(
        self, arr: pa.Array, separators: bytes, empty_is_one: bool, empty_id: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Split each text of ``arr`` on any byte of ``separators``; map every piece.

        Returns ``(offsets, ids)`` of the per-row lists and the per-row SUSPECT bits. Pieces
        lose their surrounding whitespace. An empty, null or all-whitespace text gives one
        element (the empty code) when ``empty_is_one`` and no element otherwise.
        """
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(arr.type.value_type)
        offsets, data, valid = string_buffers(arr)
        sep = np.zeros(256, dtype=np.bool_)
        for b in separators:
            sep[b] = True
        n = len(offsets) - 1
        counts = _split_count(n, offsets, data, valid, sep, empty_is_one)
        out_offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=out_offsets[1:])
        ids, flags = _split_fill(
            n,
            offsets,
            data,
            valid,
            sep,
            empty_is_one,
            out_offsets,
            self.slots,
            self.mask,
            self.key_bytes,
            self.key_offsets,
            np.int32(empty_id),
        )
        return out_offsets, ids, flags


# ------------------------------------------------------------------ duplicate case ids


@jit(inline="always")
def _hash128(data, start, end):
    """Two independent 64-bit hashes of ``data[start:end]`` in one pass; the first is never 0."""
    h1 = np.uint64(0xCBF29CE484222325)
    h2 = np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(end - start)
    for k in range(start, end):
        b = np.uint64(data[k])
        h1 = (h1 ^ b) * np.uint64(0x100000001B3)
        h2 = (h2 ^ b) * np.uint64(0xBF58476D1CE4E5B9)
        h2 ^= h2 >> np.uint64(29)
    h1 ^= h1 >> np.uint64(33)
    h1 *= np.uint64(0xFF51AFD7ED558CCD)
    h1 ^= h1 >> np.uint64(33)
    h2 ^= h2 >> np.uint64(31)
    h2 *= np.uint64(0x94D049BB133111EB)
    h2 ^= h2 >> np.uint64(32)
    return h1 | np.uint64(1), h2


@jit(inline="always")
def _probe(table, mask, h1, h2, row, count):
    """Insert the 128-bit fingerprint (h1, h2) first seen at ``row`` into the open-addressing
    ``table``; returns the row it was first seen at, or -1 when it is new."""
    # not the low bits: bit 0 of h1 is always set (0 marks an empty slot), and ``h1 & mask``
    # would start every probe at an odd slot, doubling the chains
    slot = (h1 >> np.uint64(1)) & mask
    while True:
        if table[slot, 0] == 0:
            table[slot, 0] = h1
            table[slot, 1] = h2
            table[slot, 2] = np.uint64(row)
            count[0] += 1
            return np.int64(-1)
        if table[slot, 0] == h1 and table[slot, 1] == h2:
            return np.int64(table[slot, 2])
        slot = (slot + np.uint64(1)) & mask


@jit
def _regrow(table, capacity):
    grown = np.zeros((capacity, 3), dtype=np.uint64)
    mask = np.uint64(capacity - 1)
    for s in range(len(table)):
        if table[s, 0] != 0:
            slot = (table[s, 0] >> np.uint64(1)) & mask
            while grown[slot, 0] != 0:
                slot = (slot + np.uint64(1)) & mask
            grown[slot, 0] = table[s, 0]
            grown[slot, 1] = table[s, 1]
            grown[slot, 2] = table[s, 2]
    return grown


@jit
def _fingerprints(offsets, data, valid):
    """(n, 2) uint64: the 128-bit fingerprint of each id; a null id gets (0, 0)."""
    n = len(offsets) - 1
    out = np.zeros((n, 2), dtype=np.uint64)
    for i in range(n):
        if valid is not None and not valid[i]:
            continue
        h1, h2 = _hash128(data, offsets[i], offsets[i + 1])
        out[i, 0] = h1
        out[i, 1] = h2
    return out


@jit
def _track_fingerprints(fp, row0, table, count):
    """Insert each fingerprint; return the earlier row of those already seen (-1 when new).
    A (0, 0) row (a null id) is never a repeat.

    ``table`` rows are (hash 1, hash 2, row); hash 1 = 0 marks an empty slot. One row is one
    read, so an insert costs one cache miss, not three."""
    n = len(fp)
    first = np.full(n, -1, dtype=np.int64)
    mask = np.uint64(len(table) - 1)
    for i in range(n):
        h1 = fp[i, 0]
        if h1 == 0:
            continue
        first[i] = _probe(table, mask, h1, fp[i, 1], row0 + i, count)
    return first


def fingerprints(ids: pa.Array) -> np.ndarray:
    """128-bit fingerprints of case ids (a string array), as ``(n, 2)`` uint64, so that ids
    can be shipped between processes and tracked later with :meth:`IdTracker.add`."""
    offsets, data, valid = string_buffers(ids)
    return _fingerprints(offsets, data, valid)


class IdTracker:
    """Remembers every case id seen in a stream, to flag repeats across batches.

    Ids are kept as 128-bit fingerprints (two independent 64-bit hashes) with the row where
    each was first seen: 24 bytes a slot, at most half the slots used. Two different ids share
    a fingerprint with probability about n²/2¹²⁸ — below 10⁻²³ for a billion cases.
    """

    def __init__(self, capacity: int = 1 << 16) -> None:
        self.table = np.zeros((capacity, 3), dtype=np.uint64)
        self.count = np.zeros(1, dtype=np.int64)

    @classmethod
    def for_rows(cls, rows: int) -> IdTracker:
        """A tracker sized for ``rows`` ids, so that it never has to grow."""
        capacity = 1 << 16
        while capacity < 2 * rows:
            capacity *= 2
        return cls(capacity)

    def _reserve(self, more: int) -> None:
        need = int(self.count[0]) + more
        if need * 2 > len(self.table):
            capacity = len(self.table)
            while need * 2 > capacity:
                capacity *= 2
            self.table = _regrow(self.table, capacity)

    def check(self, ids: pa.Array, row0: int) -> np.ndarray:
        """For each id of ``ids`` (rows ``row0, row0+1, …``): the row where it was seen
        before, or -1. Nulls are never duplicates."""
        # in two passes: hashing all ids first leaves the probe loop short, so the CPU keeps
        # several of its cache misses (the table is far larger than the caches) in flight at
        # once; hashing and probing in one loop measured twice as slow
        return self.add(fingerprints(ids), row0)

    def add(self, fp: np.ndarray, row0: int) -> np.ndarray:
        """:meth:`check` for ids given as their :func:`fingerprints`."""
        self._reserve(len(fp))
        return _track_fingerprints(fp, np.int64(row0), self.table, self.count)


_NUMPY_TYPES = {
    pa.int8(): np.int8,
    pa.int16(): np.int16,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint8(): np.uint8,
    pa.uint16(): np.uint16,
    pa.uint32(): np.uint32,
    pa.uint64(): np.uint64,
    pa.float32(): np.float32,
    pa.float64(): np.float64,
}


def as_numpy(arr: pa.Array) -> np.ndarray:
    """The values of an Arrow array as numpy, as ``arr.to_numpy(zero_copy_only=False)`` gives
    them, read straight from the buffers for numbers and booleans without nulls.

    pyarrow's own conversion imports pandas on its first call (0.3 s of a short command
    line run; see :func:`drgkit._io.without_pandas`); the common cases do not need it.
    """
    dtype = _NUMPY_TYPES.get(arr.type)
    if arr.null_count == 0:
        if dtype is not None:
            data = np.frombuffer(arr.buffers()[1], dtype=dtype) if len(arr) else np.zeros(0, dtype)
            return data[arr.offset : arr.offset + len(arr)]
        if pa.types.is_boolean(arr.type):
            if not len(arr):
                return np.zeros(0, dtype=np.bool_)
            bits = np.frombuffer(arr.buffers()[1], dtype=np.uint8)
            flat = np.unpackbits(bits, count=arr.offset + len(arr), bitorder="little")
            return flat[arr.offset :].astype(np.bool_)
    return arr.to_numpy(zero_copy_only=False)
