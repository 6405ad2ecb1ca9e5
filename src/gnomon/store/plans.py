"""Plans: insert, read, list; their dispatches, each (plan, target) once."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.store._sql import chunks, mappings, upsert_insert
from gnomon.store.schema import plan_dispatches, plans

SUMMARY = [c for c in plans.c if c.name not in ("blocks", "commands", "config")]
SHOWN = [c for c in plan_dispatches.c if c.name not in ("plan_id", "target")]


async def insert(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """A new plan (a `dispatches` list in `row`, always empty for a new plan, is not kept)."""
    await conn.execute(plans.insert().values(**{k: v for k, v in row.items() if k != "dispatches"}))


async def get(conn: AsyncConnection, plan_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(sa.select(plans).where(plans.c.id == plan_id))).first()
    if row is None:
        return None
    return (await _with_dispatches(conn, [dict(row._mapping)]))[0]


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
    return await _with_dispatches(conn, mappings(await conn.execute(stmt)))


async def _with_dispatches(
    conn: AsyncConnection, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The plans with their dispatches (`dispatches`, oldest first)."""
    found: dict[str, list[dict[str, Any]]] = {r["id"]: [] for r in rows}
    for part in chunks(list(found)):
        stmt = (
            sa.select(plan_dispatches.c.plan_id, *SHOWN)
            .where(plan_dispatches.c.plan_id.in_(part))
            .order_by(plan_dispatches.c.at, plan_dispatches.c.target)
        )
        for d in mappings(await conn.execute(stmt)):
            found[d.pop("plan_id")].append(d)
    return [{**r, "dispatches": found[r["id"]]} for r in rows]


async def add_dispatch(conn: AsyncConnection, row: dict[str, Any]) -> bool:
    """Record a dispatch of a plan to a target; False when that plan went to that target
    already (the key decides, whatever other transactions do meanwhile)."""
    stmt = (
        upsert_insert(conn, plan_dispatches)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["plan_id", "target"])
        .returning(plan_dispatches.c.plan_id)
    )
    return (await conn.execute(stmt)).first() is not None


async def dispatch_of(conn: AsyncConnection, plan_id: str, target: str) -> dict[str, Any] | None:
    stmt = sa.select(*SHOWN).where(
        plan_dispatches.c.plan_id == plan_id, plan_dispatches.c.target == target
    )
    row = (await conn.execute(stmt)).first()
    return dict(row._mapping) if row else None
