"""Plans: insert, read, list, record a dispatch."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.store._sql import mappings
from gnomon.store.schema import plans

SUMMARY = [c for c in plans.c if c.name not in ("blocks", "commands", "config")]


async def insert(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(plans.insert().values(**row))


async def get(conn: AsyncConnection, plan_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(sa.select(plans).where(plans.c.id == plan_id))).first()
    return dict(row._mapping) if row else None


async def list_(
    conn: AsyncConnection,
    *,
    spaces: list[str] | None,
    parent_id: str | None,
    cursor: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Plans without their blocks, script and config, newest first."""
    stmt = sa.select(*SUMMARY).order_by(plans.c.id.desc()).limit(limit)
    if spaces is not None:
        stmt = stmt.where(plans.c.space.in_(spaces))
    if parent_id is not None:
        stmt = stmt.where(plans.c.parent_id == parent_id)
    if cursor:
        stmt = stmt.where(plans.c.id < cursor)
    return mappings(await conn.execute(stmt))


async def set_dispatches(conn: AsyncConnection, plan_id: str, dispatches: list[Any]) -> None:
    await conn.execute(sa.update(plans).where(plans.c.id == plan_id).values(dispatches=dispatches))
