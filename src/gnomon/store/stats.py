"""Aggregates for the dashboard: runs by executor and state, finished runs per time bucket
(both from the tallies that triggers on `runs` keep, never the runs table), recent slots not
run."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.store._sql import is_postgres, mappings
from gnomon.store.schema import (
    fires,
    run_finish_deltas,
    run_finishes,
    run_tallies,
    run_tally_deltas,
    schedules,
)


def _both(totals: sa.Table, deltas: sa.Table, *cols: str) -> sa.Subquery:
    """The folded totals and the deltas appended since, as one set of rows."""
    pick = [*cols, "space", "n"]
    return sa.union_all(
        sa.select(*(totals.c[c] for c in pick)), sa.select(*(deltas.c[c] for c in pick))
    ).subquery()


async def counts(conn: AsyncConnection, spaces: list[str] | None) -> list[tuple[str, str, int]]:
    """(executor, state, runs) for the spaces (None: all), from the tallies."""
    t = _both(run_tallies, run_tally_deltas, "executor", "state")
    stmt = sa.select(t.c.executor, t.c.state, sa.func.sum(t.c.n)).group_by(t.c.executor, t.c.state)
    if spaces is not None:
        stmt = stmt.where(t.c.space.in_(spaces))
    return [(e, s, int(n)) for e, s, n in await conn.execute(stmt) if n]


async def finished(
    conn: AsyncConnection, spaces: list[str] | None, since: float, bucket_s: float
) -> list[tuple[int, str, int]]:
    """(bucket index from `since`, final state, runs) for runs finished in the minute of
    `since` or later: to the minute, a run counts in the bucket its minute starts in."""
    first = int(since // 60)
    f = sa.union_all(
        *(
            sa.select(t.c.minute, t.c.state, t.c.space, t.c.n).where(t.c.minute >= first)
            for t in (run_finishes, run_finish_deltas)
        )
    ).subquery()
    stmt = sa.select(f.c.minute, f.c.state, sa.func.sum(f.c.n))
    if spaces is not None:
        stmt = stmt.where(f.c.space.in_(spaces))
    stmt = stmt.group_by(f.c.minute, f.c.state)
    out: dict[tuple[int, str], int] = {}
    for minute, state, n in await conn.execute(stmt):
        if n:
            key = (max(int((minute * 60 - since) // bucket_s), 0), state)
            out[key] = out.get(key, 0) + int(n)
    return [(b, s, n) for (b, s), n in out.items()]


FOLDS = (
    ("run_tallies", "run_tally_deltas", "space, executor, state"),
    ("run_finishes", "run_finish_deltas", "minute, space, state"),
)


async def unfolded(conn: AsyncConnection) -> bool:
    """Whether any delta waits to be folded."""
    for deltas in (run_tally_deltas, run_finish_deltas):
        if (await conn.execute(sa.select(deltas.c.id).limit(1))).first() is not None:
            return True
    return False


async def fold(conn: AsyncConnection, keep_since: float) -> bool:
    """Add the deltas into the totals and delete them, and drop finishing minutes before
    `keep_since`, in the caller's write transaction; False when another process is folding
    (PostgreSQL)."""
    first = {"first": int(keep_since // 60)}
    if is_postgres(conn):
        locked = await conn.exec_driver_sql("SELECT pg_try_advisory_xact_lock(74290312)")
        if not locked.scalar():
            return False
        for totals, deltas, keys in FOLDS:
            # One statement: what it adds is exactly what it deleted, so a delta committed
            # meanwhile stays for the next fold.
            await conn.exec_driver_sql(
                f"WITH gone AS (DELETE FROM {deltas} RETURNING {keys}, n) "
                f"INSERT INTO {totals} AS t ({keys}, n) "
                f"SELECT {keys}, sum(n) FROM gone GROUP BY {keys} ORDER BY {keys} "
                f"ON CONFLICT ({keys}) DO UPDATE SET n = t.n + excluded.n"
            )
    else:  # the write transaction excludes every other writer
        for totals, deltas, keys in FOLDS:
            await conn.exec_driver_sql(
                f"INSERT INTO {totals} ({keys}, n) SELECT {keys}, sum(n) FROM {deltas} "
                f"WHERE true GROUP BY {keys} "
                f"ON CONFLICT ({keys}) DO UPDATE SET n = {totals}.n + excluded.n"
            )
            await conn.exec_driver_sql(f"DELETE FROM {deltas}")
    await conn.execute(sa.text("DELETE FROM run_finishes WHERE minute < :first"), first)
    await conn.execute(sa.text("DELETE FROM run_tallies WHERE n = 0"))
    return True


async def recent_fires(
    conn: AsyncConnection, spaces: list[str] | None, status: str, limit: int
) -> list[dict[str, Any]]:
    """The latest recorded slots of a status (newest first), with their schedule's job."""
    stmt = (
        sa.select(fires, schedules.c.job_id, schedules.c.space)
        .join(schedules, schedules.c.id == fires.c.schedule_id)
        .where(fires.c.status == status)
        .order_by(fires.c.recorded_at.desc(), fires.c.fire_at.desc())
        .limit(limit)
    )
    if spaces is not None:
        stmt = stmt.where(schedules.c.space.in_(spaces))
    return mappings(await conn.execute(stmt))


async def fire_total(conn: AsyncConnection, spaces: list[str] | None, status: str) -> int:
    stmt = (
        sa.select(sa.func.coalesce(sa.func.sum(fires.c.count), 0))
        .join(schedules, schedules.c.id == fires.c.schedule_id)
        .where(fires.c.status == status)
    )
    if spaces is not None:
        stmt = stmt.where(schedules.c.space.in_(spaces))
    return int((await conn.execute(stmt)).scalar_one())
