"""What DRG rulesets and DIP catalogues have in common: a versioned folder of CSV tables.

Both are a registered folder of tables with a ``meta.csv`` (identity, region, dates in force),
a content hash over the table bytes that keys a cache of compiled arrays, and a series of
versions per region from which each case takes the one in force on its discharge date. The
pieces here are that machinery, written once; :mod:`drgkit.ruleset` and :mod:`drgkit.catalogue`
add only what their tables mean.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import attrs
import numpy as np

from ._write import atomic_output
from .errors import DrgkitError, TableError

__all__ = [
    "CompiledTables",
    "SeriesBase",
    "VersionBase",
    "VersionInfoBase",
    "cache_dir",
    "iter_csv",
    "load_cached",
    "parse_date",
    "read_info",
    "tables_hash",
]

_EPOCH = dt.date(1970, 1, 1)


def parse_date(value: str | dt.date | None) -> dt.date | None:
    """An ISO date from ``meta.csv`` (or a date already); empty means none."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


# --------------------------------------------------------------------------- tables on disk


def tables_hash(folder: Path, label: str, names: Iterable[str]) -> str:
    """SHA-256 over the names and bytes of each present table file, in name order.

    ``label`` names the format (and its version) so two formats never share a key.
    """
    digest = hashlib.sha256(f"{label}\n".encode())
    for name in sorted(names):
        path = folder / name
        if path.is_file():
            data = path.read_bytes()
            digest.update(f"{name}\n{len(data)}\n".encode())
            digest.update(data)
    return digest.hexdigest()


def iter_csv(
    path: Path,
    error: type[TableError],
    check_header: Callable[[list[str]], Sequence[str]],
    *,
    strip: bool = False,
) -> Iterator[tuple[int, dict[str, str]]]:
    """``(row number, {column: value})`` of each data row of one CSV table.

    ``check_header`` gets the header row and returns the column names in file order (or raises
    ``error``). Every problem is an ``error`` naming the file and, where there is one, the row
    (its line number, the header being row 1). Blank lines are skipped; ``strip`` trims values.
    """
    try:
        handle = open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise error("file is missing", file=path) from None
    with handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise error("file is empty (a header row is required)", file=path, row=1)
            columns = tuple(check_header(header))
            start = reader.line_num + 1
            for values in reader:
                if not values or values == [""]:
                    start = reader.line_num + 1
                    continue  # blank line
                if len(values) != len(columns):
                    raise error(
                        f"expected {len(columns)} fields ({','.join(columns)}), "
                        f"found {len(values)}",
                        file=path,
                        row=start,
                    )
                if strip:
                    values = [v.strip() for v in values]
                yield start, dict(zip(columns, values, strict=True))
                start = reader.line_num + 1
        except csv.Error as exc:
            raise error(f"not valid CSV: {exc}", file=path, row=reader.line_num) from None
        except UnicodeDecodeError as exc:
            raise error(f"not UTF-8 text: {exc.reason} at byte {exc.start}", file=path) from None


# --------------------------------------------------------------------------- compiled cache


def cache_dir() -> Path:
    """Where compiled tables are cached: ``$DRGKIT_CACHE_DIR``, else the user cache."""
    env = os.environ.get("DRGKIT_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "drgkit"


@attrs.define(slots=True, eq=False)
class CompiledTables:
    """Kernel arrays plus the JSON-able names that explain them; one ``.npz`` on disk."""

    #: bump in a subclass when its layout or semantics change: old cache entries are ignored
    compiler: ClassVar[int] = 0

    content_hash: str
    arrays: dict[str, np.ndarray]
    names: dict

    def __getattr__(self, name: str) -> np.ndarray:  # convenient array access: c.a_tmpl
        try:
            return self.arrays[name]
        except KeyError:
            raise AttributeError(name) from None

    def save(self, path: Path) -> None:
        """Write the cache entry; a reader sees the old entry or the whole new one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = np.frombuffer(json.dumps(self.names, ensure_ascii=False).encode(), dtype=np.uint8)
        with atomic_output(path) as tmp, open(tmp, "wb") as handle:
            # a handle, not a name: np.savez would append ".npz" to the temporary name
            np.savez(handle, __names__=blob, **self.arrays)

    @classmethod
    def load(cls, path: Path, content_hash: str) -> Any:
        """Read a cache entry; ValueError when it belongs to other content or compiler."""
        with np.load(path, allow_pickle=False) as data:
            names = json.loads(bytes(data["__names__"]).decode())
            arrays = {k: data[k] for k in data.files if k != "__names__"}
        if names.get("content_hash") != content_hash or names.get("compiler") != cls.compiler:
            raise ValueError("stale cache entry")
        return cls(content_hash, arrays, names)


C = TypeVar("C", bound=CompiledTables)


def load_cached(
    folder: Path,
    cls: type[C],
    prefix: str,
    digest: str,
    build: Callable[[Path], C],
    *,
    use_cache: bool = True,
) -> C:
    """The compiled form of ``folder`` from the cache entry for ``digest``, else ``build`` it
    (and store it; a read-only or full cache must not stop grouping)."""
    path = cache_dir() / f"{prefix}-{digest[:32]}-c{cls.compiler}.npz"
    if use_cache and path.is_file():
        try:
            return cls.load(path, digest)
        except (OSError, ValueError, KeyError):
            pass  # unreadable or stale: rebuild below
    compiled = build(folder)
    if use_cache:
        with contextlib.suppress(OSError):  # OutputError is an OSError too
            compiled.save(path)
    return compiled


# --------------------------------------------------------------------------- identity


@attrs.frozen(slots=True)
class VersionInfoBase:
    """Identity and dates in force of one version (of a ruleset or a catalogue); subclasses add
    their own fields after these and set ``_error`` and ``_noun``."""

    _error: ClassVar[type[TableError]] = TableError
    _noun: ClassVar[str] = "version"

    id: str
    path: Path = attrs.field(converter=Path)
    name: str = ""
    region: str = ""
    version: str = ""
    effective_from: dt.date | None = attrs.field(default=None, converter=parse_date)
    effective_to: dt.date | None = attrs.field(default=None, converter=parse_date)

    def __attrs_post_init__(self) -> None:
        first, last = self.effective_from, self.effective_to
        if first and last and last < first:
            raise self._error(
                f"{self._noun} {self.id}: effective_to {last} is before effective_from {first}",
                file=self.path / "meta.csv",
            )

    @property
    def label(self) -> str:
        return f"{self.id} ({self.name})" if self.name else self.id

    def in_force(self, day: dt.date) -> bool:
        first, last = self.effective_from, self.effective_to
        return (first is None or first <= day) and (last is None or day <= last)


I = TypeVar("I", bound=VersionInfoBase)


def read_info(
    cls: type[I],
    path: Path,
    source: str,
    overrides: dict[str, Any],
    *,
    id_key: str,
    read_rows: Callable[[Path, str], Iterable[tuple[int, dict]]],
    extra: Callable[[dict[str, str]], dict[str, Any]] | None = None,
) -> I:
    """An info object from ``path/meta.csv`` (the first value of a repeated key counts), with
    ``overrides`` that are not None taking precedence."""
    meta: dict[str, str] = {}
    if (path / "meta.csv").is_file():
        for _row, values in read_rows(path, "meta.csv"):
            meta.setdefault(values["key"], values["value"])
    fields: dict[str, Any] = {
        "id": meta.get(id_key) or path.name,
        "name": meta.get("name", ""),
        "region": meta.get("region", ""),
        "version": meta.get("version", ""),
        "effective_from": meta.get("effective_from") or None,
        "effective_to": meta.get("effective_to") or None,
        "description": meta.get("description", ""),
    }
    if extra is not None:
        fields.update(extra(meta))
    fields.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return cls(path=path, source=source, **fields)  # type: ignore[call-arg]
    except DrgkitError:
        raise
    except ValueError as exc:  # a date that is not ISO
        raise cls._error(str(exc), file=path / "meta.csv") from None


class VersionBase:
    """One version (a ruleset or a catalogue): its info and, loaded on first use, its
    compiled tables. Subclasses set the class attributes below."""

    _info_cls: ClassVar[type]
    _error: ClassVar[type[TableError]]
    _noun: ClassVar[str]

    def __init__(self, info: Any, compiled: Any = None) -> None:
        self.info = info
        self._compiled = compiled

    @staticmethod
    def _load_compiled(path: Path) -> Any:
        raise NotImplementedError

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], **overrides: Any) -> Any:
        """An ad-hoc version from a folder of tables."""
        path = Path(path)
        if not path.is_dir():
            raise cls._error(f"not a {cls._noun} folder (no such directory)", file=path)
        return cls(cls._info_cls.from_folder(path, **overrides))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.info.id} at {self.info.path}>"

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def compiled(self) -> Any:
        if self._compiled is None:
            self._compiled = self._load_compiled(self.info.path)
        return self._compiled

    def load(self) -> Any:
        """Compile now (or read the cache) rather than on first use; returns self."""
        _ = self.compiled
        return self

    @property
    def content_hash(self) -> str:
        return self.compiled.content_hash


# --------------------------------------------------------------------------- series


class SeriesBase:
    """Behaviour shared by ``RulesetSeries`` and ``CatalogueSeries`` (attrs classes with
    ``region`` and ``versions``).

    A version is in force from its own ``effective_from`` until the day before the next
    version's, or until its ``effective_to`` if that comes earlier.
    """

    __slots__ = ()
    _error: ClassVar[type[TableError]]
    _noun: ClassVar[str]

    def _check_versions(self) -> None:
        region, versions = self.region, self.versions  # type: ignore[attr-defined]
        if not versions:
            raise self._error(f"region {region!r} has no {self._noun} versions")
        undated = [v for v in versions if v.info.effective_from is None]
        if undated and len(versions) > 1:
            raise self._error(
                f"region {region!r} has several {self._noun} versions but "
                f"{', '.join(v.id for v in undated)} has no effective_from date",
                file=undated[0].info.path / "meta.csv",
            )
        seen: dict[dt.date | None, str] = {}
        for v in versions:
            start = v.info.effective_from
            if start in seen:
                raise self._error(
                    f"region {region!r}: {seen[start]} and {v.id} both take effect on {start}",
                    file=v.info.path / "meta.csv",
                )
            seen[start] = v.id

    @property
    def id(self) -> str:
        return self.region  # type: ignore[attr-defined]

    def ordered(self) -> list[Any]:
        """The versions, oldest first."""
        return sorted(
            self.versions,  # type: ignore[attr-defined]
            key=lambda v: v.info.effective_from or dt.date.min,
        )

    def periods(self) -> list[tuple[Any, dt.date | None, dt.date | None]]:
        """(version, first day, last day) of each version's period in force, oldest first."""
        out = []
        ordered = self.ordered()
        for k, v in enumerate(ordered):
            end = v.info.effective_to
            if k + 1 < len(ordered):
                nxt = ordered[k + 1].info.effective_from - dt.timedelta(days=1)
                end = nxt if end is None or nxt < end else end
            out.append((v, v.info.effective_from, end))
        return out

    def select(self, days: np.ndarray) -> np.ndarray:
        """Index into :meth:`ordered` (= :meth:`periods`) of the version in force on each day
        (days since 1970-01-01), or -1 where none is."""
        choice = np.full(len(days), -1, dtype=np.int32)
        for k, (_v, first, last) in enumerate(self.periods()):
            lo = (first - _EPOCH).days if first else np.iinfo(np.int32).min
            hi = (last - _EPOCH).days if last else np.iinfo(np.int32).max
            choice[(days >= lo) & (days <= hi)] = k
        return choice

    def for_date(self, day: dt.date) -> Any:
        """The version in force on ``day``, or None."""
        k = int(self.select(np.array([(day - _EPOCH).days]))[0])
        return self.ordered()[k] if k >= 0 else None
