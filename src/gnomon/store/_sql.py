"""Small helpers shared by the query modules: dialect-aware inserts, chunking, row mapping."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")

# Both SQLite (SQLITE_MAX_VARIABLE_NUMBER=32766) and asyncpg (32767) cap bound parameters.
CHUNK = 2000


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def upsert_insert(conn: AsyncConnection, table: sa.Table) -> Any:
    """An INSERT that knows ON CONFLICT for the connection's dialect."""
    mod = postgresql if conn.dialect.name == "postgresql" else sqlite
    return mod.insert(table)


def is_postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


def for_update(conn: AsyncConnection, stmt: sa.Select, of: Any = None) -> sa.Select:
    """SKIP LOCKED on PostgreSQL; SQLite serialises writers with BEGIN IMMEDIATE instead."""
    if is_postgres(conn):
        return stmt.with_for_update(skip_locked=True, of=of)
    return stmt


def mappings(result: sa.CursorResult | Iterable[Any]) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in result]


@dataclass(frozen=True, slots=True)
class Rows:
    """Rows for one table, ready for a bulk insert: plain tuples, JSON already serialised."""

    table: sa.Table
    columns: Sequence[str]
    records: Sequence[tuple[Any, ...]]

    @staticmethod
    def join(parts: Sequence[Rows]) -> Rows:
        """Parts for one table and the same columns, as one."""
        first = parts[0]
        if len(parts) == 1:
            return first
        return Rows(first.table, first.columns, [r for rows in parts for r in rows.records])

    @property
    def insert_sql(self) -> str:
        """The INSERT with `?` placeholders (sqlite3's paramstyle)."""
        marks = ", ".join("?" * len(self.columns))
        return f"INSERT INTO {self.table.name} ({', '.join(self.columns)}) VALUES ({marks})"


async def bulk_insert(conn: AsyncConnection, rows: Rows) -> None:
    """Insert many rows with the least work per row: COPY on PostgreSQL, one executemany of
    plain tuples on SQLite."""
    if not rows.records:
        return
    if is_postgres(conn):
        # Make sure the driver has begun the transaction before using it directly.
        await conn.exec_driver_sql("SELECT 1")
        raw = (await conn.get_raw_connection()).driver_connection
        await copy_rows(raw, rows)
    else:
        await conn.exec_driver_sql(rows.insert_sql, list(rows.records))


# A bulk insert that breaks a unique index: SQLAlchemy's error, or asyncpg's own from a COPY
# (which bypasses SQLAlchemy).
UNIQUE_VIOLATIONS = (sa.exc.IntegrityError, asyncpg.UniqueViolationError)


async def copy_rows(asyncpg_conn: Any, rows: Rows) -> None:
    if rows.records:
        await asyncpg_conn.copy_records_to_table(
            rows.table.name, records=rows.records, columns=list(rows.columns)
        )


async def execute_many(conn: AsyncConnection, sql: str, records: Sequence[tuple[Any, ...]]) -> None:
    """One statement (with `?` placeholders) for many parameter tuples, straight to the driver:
    sqlite3's executemany, or asyncpg's pipelined executemany."""
    if not records:
        return
    if is_postgres(conn):
        await conn.exec_driver_sql("SELECT 1")
        raw = (await conn.get_raw_connection()).driver_connection
        parts = sql.split("?")
        numbered = parts[0] + "".join(f"${i}{p}" for i, p in enumerate(parts[1:], 1))
        await raw.executemany(numbered, records)
    else:
        await conn.exec_driver_sql(sql, list(records))


async def insert_many(
    conn: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> None:
    if rows:
        await conn.execute(table.insert(), list(rows))
