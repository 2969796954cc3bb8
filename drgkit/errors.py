"""Errors drgkit raises. One root, builtin mix-ins, and the location an error is about.

A case that cannot be grouped or settled is never an exception: it is a status with a reason
in the output. Exceptions are for things a user must fix before anything can run: a malformed
ruleset, an unreadable case file, an unknown ruleset id, a plugin conflict.
"""

from __future__ import annotations

import os

__all__ = [
    "CaseDataError",
    "CaseNotFoundError",
    "CatalogueError",
    "DrgkitError",
    "OutputError",
    "RegistryError",
    "RulesetError",
    "TableError",
]


class DrgkitError(Exception):
    """Root of every error drgkit raises on purpose."""


class TableError(DrgkitError, ValueError):
    """A problem at a place in a table file: file, row (1-based line, header = 1) and column."""

    def __init__(
        self,
        message: str,
        *,
        file: str | os.PathLike[str] | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.message = message
        self.file = os.fspath(file) if file is not None else None
        self.row = row
        self.column = column
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class RulesetError(TableError):
    """A ruleset folder is missing, malformed or inconsistent."""


class CatalogueError(TableError):
    """A DIP catalogue folder is missing, malformed or inconsistent."""


class CaseDataError(TableError):
    """A case file cannot be read at all (unknown format, missing required column, bad encoding).

    Problems with single cases never raise: they become a per-case status.
    """


class CaseNotFoundError(CaseDataError, LookupError):
    """A case asked for by id (``drgkit explain --case``) is not in the case file."""


class ArgumentError(DrgkitError, ValueError):
    """An argument of a public function is not valid: a month that is not ``YYYY-MM``, a column
    named twice, an empty case, an amount out of range."""


class RegistryError(DrgkitError, LookupError):
    """An unknown ruleset or policy id, or two plugins registering the same id."""


class OutputError(DrgkitError, OSError):
    """An output cannot be written (full disk, no permission, a folder in the way). Nothing
    is left under the output's name: see :func:`drgkit._write.atomic_output`."""
