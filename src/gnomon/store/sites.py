"""Site queues: claims in one statement, the agents seen, reservations of a site's time, the
spaces that use a site, site keys."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.store._sql import chunks, is_postgres, mappings, upsert_insert
from gnomon.store.runs import LIST_COLUMNS
from gnomon.store.schema import agents, events, jobs, reservations, runs, site_keys

SITE_PREFIX = "site:"


def _claimed_values(worker_id: str, lease_until: float, now: float) -> dict[str, Any]:
    return {
        "state": "claimed",
        "worker_id": worker_id,
        "lease_expires_at": lease_until,
        "claimed_at": now,
        "updated_at": now,
        "output": "",  # a new attempt starts a new log
        "output_size": 0,
    }


CLAIMED_EVENT = ["run_id", "job_id", "space", "executor", "attempt", "state", "status", "at"]


def _claimed_events(c: Any, now: float) -> sa.Select:
    """The `claimed` event of each run in `c` (columns of a claimed-runs set)."""
    return sa.select(
        c.id, c.job_id, c.space, c.executor, c.attempt, c.state, c.status, sa.literal(now)
    )


async def claim(
    conn: AsyncConnection,
    *,
    executor: str,
    spaces: Sequence[str] | None,
    limit: int,
    worker_id: str,
    lease_until: float,
    now: float,
    jobs_known: Callable[[str], dict[str, Any] | None] | None = None,
    job_ids: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Claim up to `limit` due queued runs of one executor, oldest first, in ONE statement
    (UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) on PostgreSQL; on SQLite the
    writer's BEGIN IMMEDIATE serialises it), and log their `claimed` events (in the same
    statement on PostgreSQL). Runs of jobs with a concurrency limit are left for
    `store.runs.claim`, which counts what they hold.

    Returns the claimed runs with their job's `action`, `retry` and `job_name` (on SQLite
    from `jobs_known` where it knows them, else read). With `job_ids`, only runs of those jobs.
    """
    pick = (
        sa.select(runs.c.id)
        .join(jobs, jobs.c.id == runs.c.job_id)
        .where(
            runs.c.state == "queued",
            runs.c.executor == executor,
            runs.c.not_before <= now,
            jobs.c.concurrency["max_running"].as_string().is_(None),
        )
        .order_by(runs.c.not_before, runs.c.id)
        .limit(limit)
    )
    if spaces is not None:
        pick = pick.where(runs.c.space.in_(list(spaces)))
    if job_ids is not None:
        pick = pick.where(runs.c.job_id.in_(list(job_ids)))
    values = _claimed_values(worker_id, lease_until, now)
    if is_postgres(conn):
        # One statement: claim, log each run's `claimed` event, return the runs.
        pick = pick.with_for_update(skip_locked=True, of=runs)
        claimed = (
            sa.update(runs)
            .where(runs.c.id.in_(pick.scalar_subquery()), runs.c.job_id == jobs.c.id)
            .values(values)
            .returning(*LIST_COLUMNS, jobs.c.action, jobs.c.retry, jobs.c.name.label("job_name"))
            .cte("claimed")
        )
        logged = (
            sa.insert(events)
            .from_select(CLAIMED_EVENT, _claimed_events(claimed.c, now))
            .cte("logged")
        )
        rows = mappings(await conn.execute(sa.select(claimed).add_cte(logged)))
    else:
        stmt = (
            sa.update(runs)
            .where(runs.c.id.in_(pick.scalar_subquery()))
            .values(values)
            .returning(*LIST_COLUMNS)
        )
        rows = mappings(await conn.execute(stmt))
        if rows:
            ids = [r["id"] for r in rows]
            chosen = sa.select(runs).where(runs.c.id.in_(ids)).subquery()
            log = sa.insert(events).from_select(CLAIMED_EVENT, _claimed_events(chosen.c, now))
            await conn.execute(log)
        known = {}
        for job_id in {r["job_id"] for r in rows}:
            fields = jobs_known(job_id) if jobs_known else None
            if fields is not None:
                known[job_id] = fields
        if missing := {r["job_id"] for r in rows} - set(known):
            known |= await job_fields(conn, missing)
        for r in rows:
            r.update(known[r["job_id"]])
    rows.sort(key=lambda r: (r["not_before"], r["id"]))
    return rows


async def job_fields(conn: AsyncConnection, ids: set[str]) -> dict[str, dict[str, Any]]:
    """What a claimed run carries of its job: action, retry policy, name."""
    stmt = sa.select(jobs.c.id, jobs.c.action, jobs.c.retry, jobs.c.name).where(
        jobs.c.id.in_(list(ids))
    )
    return {
        r.id: {"action": r.action, "retry": r.retry, "job_name": r.name}
        for r in await conn.execute(stmt)
    }


async def take(
    conn: AsyncConnection, run_id: str, *, worker_id: str, lease_until: float, now: float
) -> bool:
    """Claim one named queued run (a site reporting on a job it never polled for)."""
    stmt = (
        sa.update(runs)
        .where(runs.c.id == run_id, runs.c.state == "queued")
        .values(_claimed_values(worker_id, lease_until, now))
    )
    return (await conn.execute(stmt)).rowcount > 0


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


async def extend_leases(conn: AsyncConnection, executor_prefix: str, lease_until: float) -> int:
    """Push every held lease of these executors to at least `lease_until`."""
    stmt = (
        sa.update(runs)
        .where(
            runs.c.state.in_(("claimed", "running")),
            runs.c.executor.startswith(executor_prefix, autoescape=True),
            runs.c.lease_expires_at < lease_until,
        )
        .values(lease_expires_at=lease_until)
    )
    return (await conn.execute(stmt)).rowcount


async def active_runs(
    conn: AsyncConnection, executor: str, spaces: Sequence[str] | None, job_id: str | None
) -> list[dict[str, Any]]:
    stmt = sa.select(*LIST_COLUMNS).where(
        runs.c.executor == executor,
        runs.c.state.in_(("pending", "queued", "claimed", "running")),
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
                runs.c.state.in_(("queued", "claimed", "running")),
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
