"""Reads of the append-only event log of run transitions (store/ledger.py writes it)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.store._sql import mappings
from gnomon.store.schema import events


async def after(
    conn: AsyncConnection,
    after_id: int,
    *,
    spaces: list[str] | None,
    job_id: str | None = None,
    run_id: str | None = None,
    executor: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    stmt = sa.select(events).where(events.c.id > after_id).order_by(events.c.id).limit(limit)
    if spaces is not None:
        stmt = stmt.where(events.c.space.in_(spaces))
    if job_id:
        stmt = stmt.where(events.c.job_id == job_id)
    if run_id:
        stmt = stmt.where(events.c.run_id == run_id)
    if executor:
        stmt = stmt.where(events.c.executor == executor)
    return mappings(await conn.execute(stmt))


async def writers(conn: AsyncConnection) -> tuple[int, int] | None:
    """PostgreSQL: (xmin, xmax) of a fresh snapshot — every transaction below xmin has ended,
    every one at or above xmax began after it. None on SQLite, whose single writer commits
    event ids in order."""
    if conn.dialect.name != "postgresql":
        return None
    sql = (
        "SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint"
        " FROM pg_current_snapshot() AS s"
    )
    xmin, xmax = (await conn.exec_driver_sql(sql)).one()
    return int(xmin), int(xmax)


async def last_id(conn: AsyncConnection) -> int:
    return (await conn.execute(sa.select(sa.func.max(events.c.id)))).scalar_one_or_none() or 0


async def for_run(conn: AsyncConnection, run_id: str) -> list[dict[str, Any]]:
    stmt = sa.select(events).where(events.c.run_id == run_id).order_by(events.c.id)
    return mappings(await conn.execute(stmt))
