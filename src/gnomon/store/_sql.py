"""Small helpers shared by the query modules: dialect-aware inserts, chunking, row mapping."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

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


async def bulk_insert(
    conn: AsyncConnection,
    table: sa.Table,
    columns: Sequence[str],
    records: Sequence[tuple[Any, ...]],
) -> None:
    """Insert many rows with the least work per row: COPY on PostgreSQL, one executemany of
    plain tuples on SQLite. JSON values must already be serialised."""
    if not records:
        return
    if is_postgres(conn):
        # Make sure the driver has begun the transaction before using it directly.
        await conn.exec_driver_sql("SELECT 1")
        raw = (await conn.get_raw_connection()).driver_connection
        await raw.copy_records_to_table(table.name, records=records, columns=list(columns))
    else:
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"
        await conn.exec_driver_sql(sql, list(records))


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
