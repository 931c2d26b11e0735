"""A projection: a typed table of one kind of vendor event, kept by the
recorder beside the search index, for SQL and BI users who query the store
directly (Chainguard's pull table, for instance).

The recorder writes a projection's row in the transaction that indexes its
event, and retention deletes it with the event; the store creates its table
from the projection's DDL for the store's backend, kept in the vendor's
folder as `<table>.<backend>.sql` (idempotent: `IF NOT EXISTS`). Its table
name carries a version (`_v1`): other columns make another table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from auditlake.core.event import Event


@dataclass(frozen=True)
class Projection:
    """A typed table of the events whose action is `action`."""

    table: str
    action: str
    # Its columns after `seq` (the event's journal position, the key), in
    # the order of `row`'s values.
    columns: tuple[str, ...]
    # The event's row, or None when the event does not have the vendor's
    # documented shape (it stays searchable; the table leaves it out).
    row: Callable[[Event], tuple[Any, ...] | None]
    package: str  # where its DDL files are

    def ddl(self, backend: str) -> str:
        """The statements that create its table and indexes on `backend`."""
        return resources.files(self.package).joinpath(f"{self.table}.{backend}.sql").read_text()

    def insert_sql(self) -> str:
        """`INSERT` of one row: `seq`, then `columns` (qmark parameters)."""
        names = ", ".join(f'"{c}"' for c in ("seq", *self.columns))
        marks = ", ".join("?" * (len(self.columns) + 1))
        return f"INSERT INTO {self.table} ({names}) VALUES ({marks})"

    def delete_sql(self) -> str:
        """`DELETE` of the row of one `seq` (qmark parameter)."""
        return f"DELETE FROM {self.table} WHERE seq = ?"
