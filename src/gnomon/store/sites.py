"""Sites: the agents seen, reservations of a site's time, the spaces that use a site, site
keys, and reads of a site's runs (claims go through store/ledger.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.store._sql import chunks, is_postgres, mappings, upsert_insert
from gnomon.store.runs import LIST_COLUMNS
from gnomon.store.schema import agents, jobs, reservations, runs, site_keys
from gnomon.vocabulary import ACTIVE_STATES, LIVE_STATES, SITE_PREFIX, values


async def get_for_report(conn: AsyncConnection, run_id: str) -> dict[str, Any] | None:
    """A run with its output and its job's retry policy, locked for this transaction."""
    stmt = (
        sa.select(*runs.c, jobs.c.retry)
        .join(jobs, jobs.c.id == runs.c.job_id)
        .where(runs.c.id == run_id)
    )
    if is_postgres(conn):
        stmt = stmt.with_for_update(of=runs)
    row = (await conn.execute(stmt)).first()
    return dict(row._mapping) if row else None


async def active_runs(
    conn: AsyncConnection, executor: str, spaces: Sequence[str] | None, job_id: str | None
) -> list[dict[str, Any]]:
    stmt = sa.select(*LIST_COLUMNS).where(
        runs.c.executor == executor,
        runs.c.state.in_(values(LIVE_STATES)),
    )
    if spaces is not None:
        stmt = stmt.where(runs.c.space.in_(list(spaces)))
    if job_id is not None:
        stmt = stmt.where(runs.c.job_id == job_id)
    return mappings(await conn.execute(stmt))


# --- agents ---------------------------------------------------------------------------------


async def seen(
    conn: AsyncConnection,
    site: str,
    agent_id: str,
    now: float,
    claimed: int = 0,
    spaces: Sequence[str] | None = None,
) -> None:
    """Record contact from an agent (and how many runs it just claimed); with `spaces`, the
    spaces it polls for now."""
    stmt = upsert_insert(conn, agents).values(
        site=site,
        agent_id=agent_id,
        first_seen_at=now,
        last_contact_at=now,
        claimed=claimed,
        spaces=None if spaces is None else sorted(spaces),
    )
    changes: dict[str, Any] = {
        "last_contact_at": stmt.excluded.last_contact_at,
        "claimed": agents.c.claimed + stmt.excluded.claimed,
    }
    if spaces is not None:
        changes["spaces"] = stmt.excluded.spaces
    stmt = stmt.on_conflict_do_update(index_elements=["site", "agent_id"], set_=changes)
    await conn.execute(stmt)


async def agents_of(conn: AsyncConnection, sites: Sequence[str] | None) -> list[dict[str, Any]]:
    stmt = sa.select(agents).order_by(agents.c.site, agents.c.last_contact_at.desc())
    if sites is not None:
        stmt = stmt.where(agents.c.site.in_(list(sites)))
    return mappings(await conn.execute(stmt))


# --- what a site has ------------------------------------------------------------------------


async def site_users(conn: AsyncConnection, site: str) -> set[str]:
    """The spaces with a live job on the site."""
    stmt = (
        sa.select(jobs.c.space)
        .distinct()
        .where(jobs.c.executor == SITE_PREFIX + site, jobs.c.deleted_at.is_(None))
    )
    return {r[0] for r in await conn.execute(stmt)}


async def site_names(conn: AsyncConnection, spaces: Sequence[str] | None) -> list[str]:
    """Sites that live jobs (in these spaces) name, and sites agents have polled."""
    stmt = (
        sa.select(jobs.c.executor)
        .distinct()
        .where(jobs.c.executor.startswith(SITE_PREFIX), jobs.c.deleted_at.is_(None))
    )
    if spaces is not None:
        stmt = stmt.where(jobs.c.space.in_(list(spaces)))
    names = {r[0][len(SITE_PREFIX) :] for r in await conn.execute(stmt)}
    if spaces is None:
        names |= {r[0] for r in await conn.execute(sa.select(agents.c.site).distinct())}
    return sorted(names)


async def counts(
    conn: AsyncConnection, sites: Sequence[str], spaces: Sequence[str] | None
) -> dict[str, dict[str, int]]:
    """Per site: runs queued (due or not), claimed and running."""
    out: dict[str, dict[str, int]] = {}
    for part in chunks(list(sites)):
        stmt = (
            sa.select(runs.c.executor, runs.c.state, sa.func.count())
            .where(
                runs.c.executor.in_([SITE_PREFIX + s for s in part]),
                runs.c.state.in_(values(ACTIVE_STATES)),
            )
            .group_by(runs.c.executor, runs.c.state)
        )
        if spaces is not None:
            stmt = stmt.where(runs.c.space.in_(list(spaces)))
        for executor, state, n in await conn.execute(stmt):
            out.setdefault(executor[len(SITE_PREFIX) :], {})[state] = n
    return out


# --- reservations ---------------------------------------------------------------------------


async def lock_site(conn: AsyncConnection, site: str) -> None:
    """Serialise reservation changes of one site (SQLite's writer already is serial)."""
    if is_postgres(conn):
        key = sa.func.hashtext("reservations:" + site)
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


async def overlapping(
    conn: AsyncConnection, site: str, start: float, end: float
) -> list[dict[str, Any]]:
    stmt = sa.select(reservations).where(
        reservations.c.site == site,
        reservations.c.start_at < end,
        reservations.c.end_at > start,
    )
    return mappings(await conn.execute(stmt))


async def insert_reservation(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(reservations.insert().values(row))


async def get_reservation(conn: AsyncConnection, res_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(sa.select(reservations).where(reservations.c.id == res_id))).first()
    return dict(row._mapping) if row else None


async def delete_reservation(conn: AsyncConnection, res_id: str) -> bool:
    stmt = sa.delete(reservations).where(reservations.c.id == res_id)
    return (await conn.execute(stmt)).rowcount > 0


async def list_reservations(
    conn: AsyncConnection,
    *,
    site: str | None,
    spaces: Sequence[str] | None,
    ending_after: float | None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    stmt = sa.select(reservations).order_by(reservations.c.start_at, reservations.c.id).limit(limit)
    if site is not None:
        stmt = stmt.where(reservations.c.site == site)
    if spaces is not None:
        stmt = stmt.where(reservations.c.space.in_(list(spaces)))
    if ending_after is not None:
        stmt = stmt.where(reservations.c.end_at > ending_after)
    return mappings(await conn.execute(stmt))


# --- site keys ------------------------------------------------------------------------------


async def key_hash(conn: AsyncConnection, site: str) -> str | None:
    stmt = sa.select(site_keys.c.hash).where(site_keys.c.site == site)
    return (await conn.execute(stmt)).scalar()


async def keyed(conn: AsyncConnection, sites: Sequence[str]) -> set[str]:
    """Which of these sites have a key."""
    out: set[str] = set()
    for part in chunks(list(sites)):
        stmt = sa.select(site_keys.c.site).where(site_keys.c.site.in_(part))
        out |= {r[0] for r in await conn.execute(stmt)}
    return out


async def set_key(conn: AsyncConnection, site: str, digest: str, now: float) -> None:
    stmt = upsert_insert(conn, site_keys).values(site=site, hash=digest, created_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["site"],
        set_={"hash": stmt.excluded.hash, "created_at": stmt.excluded.created_at},
    )
    await conn.execute(stmt)


async def delete_key(conn: AsyncConnection, site: str) -> bool:
    stmt = sa.delete(site_keys).where(site_keys.c.site == site)
    return (await conn.execute(stmt)).rowcount > 0
