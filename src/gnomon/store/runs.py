"""The run ledger: batched inserts, claims in one statement, guarded transitions."""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.domain import RunState
from gnomon.store._sql import (
    UNIQUE_VIOLATIONS,
    Rows,
    bulk_insert,
    chunks,
    copy_rows,
    execute_many,
    for_update,
    mappings,
    upsert_insert,
)
from gnomon.store.db import Database
from gnomon.store.schema import events, jobs, runs

# Columns a listing returns: everything but the (possibly large) output.
LIST_COLUMNS = [c for c in runs.c if c.name != "output"]


# What a new run sets; every other column starts NULL or at its server default.
NEW_COLUMNS = (
    "id",
    "job_id",
    "space",
    "executor",
    "schedule_id",
    "scheduled_for",
    "state",
    "attempt",
    "max_attempts",
    "params",
    "timeout_s",
    "not_before",
    "created_at",
    "updated_at",
)


_head = operator.itemgetter(*NEW_COLUMNS[: NEW_COLUMNS.index("params")])
_tail = operator.itemgetter(*NEW_COLUMNS[NEW_COLUMNS.index("params") + 1 :])


def new_rows(rows: Sequence[dict[str, Any]]) -> Rows:
    """New runs as insertable tuples."""
    dumps = orjson.dumps
    return Rows(
        runs, NEW_COLUMNS, [(*_head(r), dumps(r["params"]).decode(), *_tail(r)) for r in rows]
    )


_PARAMS, _NOT_BEFORE = NEW_COLUMNS.index("params"), NEW_COLUMNS.index("not_before")


def new_rows_like(
    template: dict[str, Any],
    ids: Sequence[str],
    params: Sequence[dict[str, Any]],
    not_before: Sequence[float],
) -> Rows:
    """Fresh runs that differ from `template` only in id, params and not_before."""
    record = new_rows([template]).records[0]
    head, mid, tail = (
        record[1:_PARAMS],
        record[_PARAMS + 1 : _NOT_BEFORE],
        record[_NOT_BEFORE + 1 :],
    )
    dumps = orjson.dumps
    return Rows(
        runs,
        NEW_COLUMNS,
        [
            (run_id, *head, dumps(p).decode(), *mid, t, *tail)
            for run_id, p, t in zip(ids, params, not_before, strict=True)
        ],
    )


# New runs and their first event, written together, the event derived from the run's row:
# SQLite selects the rowids above the highest before the insert (the write lock is held);
# PostgreSQL gets both tables by COPY in one transaction.
_FIRST_EVENT = ("run_id", "job_id", "space", "executor", "attempt", "state", "at")
_FROM_RUN = ("id", "job_id", "space", "executor", "attempt", "state", "created_at")
_SQLITE_FIRST_EVENTS = (
    f"INSERT INTO {events.name} ({', '.join(_FIRST_EVENT)}) "
    f"SELECT {', '.join(_FROM_RUN)} FROM runs WHERE rowid > ? ORDER BY rowid"
)
_first_event = operator.itemgetter(*(NEW_COLUMNS.index(c) for c in _FROM_RUN))


def _sqlite_insert_new(conn: Any, rows: Rows) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        top = conn.execute("SELECT coalesce(max(rowid), 0) FROM runs").fetchone()[0]
        conn.executemany(rows.insert_sql, rows.records)
        conn.execute(_SQLITE_FIRST_EVENTS, (top,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


async def _pg_insert_new(conn: Any, rows: Rows) -> None:
    first = Rows(events, _FIRST_EVENT, list(map(_first_event, rows.records)))
    async with conn.transaction():
        await copy_rows(conn, rows)
        await copy_rows(conn, first)


async def insert_new(db: Database, rows: Rows) -> None:
    """New runs (from `new_rows`) and their first event, in one transaction and one call to
    the driver: the group commit's path."""
    if rows.records:
        await db.driver_call(_sqlite_insert_new, _pg_insert_new, rows)


async def insert(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert new runs (bulk: COPY / executemany of tuples)."""
    await bulk_insert(conn, new_rows(rows))


async def insert_slots(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert runs that fill schedule slots; a slot already filled is left alone.

    Returns the ids actually inserted: the unique (schedule_id, scheduled_for) index makes
    firing idempotent across processes. The caller holds the schedules' locks, so a slot
    normally cannot exist yet: the bulk insert is tried first, and only if the index refuses
    it does the slower per-row ON CONFLICT path run.
    """
    try:
        async with conn.begin_nested():
            await insert(conn, rows)
        return {r["id"] for r in rows}
    except UNIQUE_VIOLATIONS:
        pass
    inserted: set[str] = set()
    for part in chunks(rows, 1000):
        stmt = (
            upsert_insert(conn, runs)
            .on_conflict_do_nothing(
                index_elements=["schedule_id", "scheduled_for"],
                index_where=runs.c.schedule_id.is_not(None),
            )
            .returning(runs.c.id)
        )
        result = await conn.execute(stmt, list(part))
        inserted.update(r.id for r in result)
    return inserted


async def get(conn: AsyncConnection, run_id: str, *, output: bool = True) -> dict[str, Any] | None:
    cols = list(runs.c) if output else LIST_COLUMNS
    row = (await conn.execute(sa.select(*cols).where(runs.c.id == run_id))).first()
    return dict(row._mapping) if row else None


async def get_many(conn: AsyncConnection, ids: Sequence[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in chunks(ids):
        out += mappings(await conn.execute(sa.select(*LIST_COLUMNS).where(runs.c.id.in_(part))))
    return out


async def list_(
    conn: AsyncConnection,
    *,
    spaces: list[str] | None,
    job_id: str | None,
    schedule_id: str | None,
    states: list[str] | None,
    executor: str | None,
    since: float | None,
    cursor: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    stmt = sa.select(*LIST_COLUMNS).order_by(runs.c.id.desc()).limit(limit)
    if spaces is not None:
        stmt = stmt.where(runs.c.space.in_(spaces))
    if job_id:
        stmt = stmt.where(runs.c.job_id == job_id)
    if schedule_id:
        stmt = stmt.where(runs.c.schedule_id == schedule_id)
    if states:
        stmt = stmt.where(runs.c.state.in_(states))
    if executor:
        stmt = stmt.where(runs.c.executor == executor)
    if since is not None:
        stmt = stmt.where(runs.c.created_at >= since)
    if cursor:
        stmt = stmt.where(runs.c.id < cursor)
    return mappings(await conn.execute(stmt))


async def next_not_before(conn: AsyncConnection, executors: Sequence[str]) -> float | None:
    """When the earliest queued run for these executors may start (a cheap indexed read
    before taking the write lock, and the time to wake up for)."""
    stmt = sa.select(sa.func.min(runs.c.not_before)).where(
        runs.c.state == "queued", runs.c.executor.in_(executors)
    )
    return (await conn.execute(stmt)).scalar_one_or_none()


async def claim(
    conn: AsyncConnection,
    *,
    executors: Sequence[str],
    lanes: Sequence[tuple[bool | None, int]],
    worker_id: str,
    lease_until: float,
    now: float,
    spaces: Sequence[str] | None = None,
    job_ids: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Claim due queued runs in one transaction, honouring job concurrency limits (of the
    jobs `job_ids` only, when given).

    `lanes` are (shell, limit) pairs: shell True takes only shell actions, False all others,
    None any — so an executor can bound its processes and its light work separately.
    Returns the claimed runs with their job's `action`, `retry`, `executor_options` and
    `job_name`.
    """
    rows: list[Any] = []
    for shell, limit in lanes:
        if limit <= 0:
            continue
        stmt = (
            sa.select(runs.c.id, runs.c.job_id, jobs.c.concurrency)
            .join(jobs, jobs.c.id == runs.c.job_id)
            .where(
                runs.c.state == "queued",
                runs.c.executor.in_(executors),
                runs.c.not_before <= now,
            )
            .order_by(runs.c.not_before, runs.c.id)
            .limit(limit)
        )
        if spaces is not None:
            stmt = stmt.where(runs.c.space.in_(list(spaces)))
        if job_ids is not None:
            stmt = stmt.where(runs.c.job_id.in_(list(job_ids)))
        if shell is not None:
            kind = jobs.c.action["type"].as_string()
            stmt = stmt.where(kind == "shell" if shell else kind != "shell")
        rows += (await conn.execute(for_update(conn, stmt, of=runs))).all()
    if not rows:
        return []
    ids = await _within_concurrency(conn, rows)
    if not ids:
        return []
    await conn.execute(
        sa.update(runs)
        .where(runs.c.id.in_(ids), runs.c.state == "queued")
        .values(
            state="claimed",
            worker_id=worker_id,
            lease_expires_at=lease_until,
            claimed_at=now,
            updated_at=now,
            output="",  # a new attempt starts a new log
            output_size=0,
        )
    )
    stmt = (
        sa.select(
            *LIST_COLUMNS,
            jobs.c.action,
            jobs.c.retry,
            jobs.c.executor_options,
            jobs.c.name.label("job_name"),
        )
        .join(jobs, jobs.c.id == runs.c.job_id)
        .where(runs.c.id.in_(ids))
        .order_by(runs.c.not_before, runs.c.id)
    )
    return mappings(await conn.execute(stmt))


async def _within_concurrency(conn: AsyncConnection, rows: Sequence[Any]) -> list[str]:
    limits = {
        r.job_id: r.concurrency["max_running"]
        for r in rows
        if r.concurrency and r.concurrency.get("max_running")
    }
    if not limits:
        return [r.id for r in rows]
    if conn.dialect.name == "postgresql":
        for job_id in sorted(limits):
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(job_id))))
    held = await conn.execute(
        sa.select(runs.c.job_id, sa.func.count())
        .where(runs.c.job_id.in_(list(limits)), runs.c.state.in_(("claimed", "running")))
        .group_by(runs.c.job_id)
    )
    room = {job_id: limit for job_id, limit in limits.items()}
    for job_id, n in held:
        room[job_id] -= n
    ids = []
    for r in rows:
        if r.job_id in room:
            if room[r.job_id] <= 0:
                continue
            room[r.job_id] -= 1
        ids.append(r.id)
    return ids


# What the caller of a transition needs back: enough to log events and follow schedules.
MOVED_COLUMNS = [
    runs.c[n]
    for n in (
        "id",
        "job_id",
        "space",
        "executor",
        "schedule_id",
        "attempt",
        "state",
        "status",
        "updated_at",
    )
]


async def transition(
    conn: AsyncConnection,
    changes: Sequence[dict[str, Any]],
    *,
    from_states: Sequence[str],
    worker_id: str | None = None,
) -> list[dict[str, Any]]:
    """Apply per-run value changes, each only if the run is still in `from_states` (and held by
    `worker_id` when given). Returns, for the runs that changed, MOVED_COLUMNS as they are now.

    Each change is a dict with `id`, `updated_at` (a stamp that tells which changes took) and
    the columns to set, and optionally `while_attempt`: apply only while the run is still at
    that attempt. Changes with the same keys go out as one executemany.
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for change in changes:
        groups[tuple(sorted(k for k in change if k != "id"))].append(change)
    known = {c.name for c in runs.c}
    states = ", ".join(f"'{s}'" for s in from_states if s in {r.value for r in RunState})
    for keys, group in groups.items():
        guard = "while_attempt" in keys
        cols = [k for k in keys if k != "while_attempt"]
        assert known.issuperset(cols), cols
        sql = (
            f"UPDATE runs SET {', '.join(f'{k} = ?' for k in cols)} "
            f"WHERE id = ? AND state IN ({states})"
        )
        if guard:
            sql += " AND attempt = ?"
        if worker_id is not None:
            sql += " AND worker_id = ?"
        held = (worker_id,) if worker_id is not None else ()
        records = [
            (*(c[k] for k in cols), c["id"], *((c["while_attempt"],) if guard else ()), *held)
            for c in group
        ]
        await execute_many(conn, sql, records)
    # Which ones took: the rows now carry the `updated_at` stamp each change set.
    stamps = {c["id"]: c["updated_at"] for c in changes}
    ids = list(stamps)
    after: list[dict[str, Any]] = []
    for part in chunks(ids):
        after += mappings(await conn.execute(sa.select(*MOVED_COLUMNS).where(runs.c.id.in_(part))))
    return [r for r in after if r["updated_at"] == stamps[r["id"]]]


async def heartbeat(
    conn: AsyncConnection, worker_id: str, lease_until: float, now: float
) -> list[str]:
    """Extend the leases a worker holds; return ids of its runs whose cancel was requested."""
    await conn.execute(
        sa.update(runs)
        .where(runs.c.worker_id == worker_id, runs.c.state.in_(("claimed", "running")))
        .values(lease_expires_at=lease_until)
    )
    rows = await conn.execute(
        sa.select(runs.c.id).where(
            runs.c.worker_id == worker_id,
            runs.c.state.in_(("claimed", "running")),
            runs.c.cancel_requested.is_(True),
        )
    )
    return [r.id for r in rows]


async def extend_lease(conn: AsyncConnection, run_id: str, lease_until: float) -> bool:
    stmt = (
        sa.update(runs)
        .where(runs.c.id == run_id, runs.c.state.in_(("claimed", "running")))
        .values(lease_expires_at=lease_until)
    )
    return (await conn.execute(stmt)).rowcount > 0


async def expired(conn: AsyncConnection, now: float, limit: int) -> list[dict[str, Any]]:
    """Runs whose lease ran out, with their job's retry policy, locked for this transaction."""
    stmt = for_update(
        conn,
        sa.select(*LIST_COLUMNS, jobs.c.retry)
        .join(jobs, jobs.c.id == runs.c.job_id)
        .where(runs.c.state.in_(("claimed", "running")), runs.c.lease_expires_at < now)
        .order_by(runs.c.lease_expires_at)
        .limit(limit),
        of=runs,
    )
    return mappings(await conn.execute(stmt))


async def request_cancel(conn: AsyncConnection, run_id: str, now: float) -> None:
    await conn.execute(
        sa.update(runs).where(runs.c.id == run_id).values(cancel_requested=True, updated_at=now)
    )


async def active_for_schedules(
    conn: AsyncConnection, schedule_ids: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Per schedule: how many of its runs are active (queued/claimed/running) and pending."""
    out: dict[str, dict[str, int]] = {}
    for part in chunks(schedule_ids):
        rows = await conn.execute(
            sa.select(runs.c.schedule_id, runs.c.state, sa.func.count())
            .where(
                runs.c.schedule_id.in_(part),
                runs.c.state.in_(("pending", "queued", "claimed", "running")),
            )
            .group_by(runs.c.schedule_id, runs.c.state)
        )
        for sid, state, n in rows:
            slot = out.setdefault(sid, {"active": 0, "pending": 0})
            slot["pending" if state == "pending" else "active"] += n
    return out


async def filled_slots(
    conn: AsyncConnection, schedule_id: str, slots: Sequence[float]
) -> set[float]:
    """Which of these slots of a schedule already have a run."""
    out: set[float] = set()
    for part in chunks(slots):
        rows = await conn.execute(
            sa.select(runs.c.scheduled_for).where(
                runs.c.schedule_id == schedule_id, runs.c.scheduled_for.in_(part)
            )
        )
        out.update(r[0] for r in rows)
    return out


async def active_runs_of_schedules(
    conn: AsyncConnection, schedule_ids: Sequence[str]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in chunks(schedule_ids):
        out += mappings(
            await conn.execute(
                sa.select(*LIST_COLUMNS).where(
                    runs.c.schedule_id.in_(part),
                    runs.c.state.in_(("pending", "queued", "claimed", "running")),
                )
            )
        )
    return out


async def buffered_to_release(
    conn: AsyncConnection, schedule_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The oldest pending run of each schedule that has no active run left."""
    active = sa.select(runs.c.schedule_id).where(
        runs.c.schedule_id.in_(list(schedule_ids)),
        runs.c.state.in_(("queued", "claimed", "running")),
    )
    stmt = for_update(
        conn,
        sa.select(*LIST_COLUMNS)
        .where(
            runs.c.schedule_id.in_(list(schedule_ids)),
            runs.c.state == "pending",
            runs.c.schedule_id.not_in(active),
        )
        .order_by(runs.c.id),
    )
    seen: set[str] = set()
    out = []
    for r in mappings(await conn.execute(stmt)):
        if r["schedule_id"] not in seen:
            seen.add(r["schedule_id"])
            out.append(r)
    return out


async def write_output(conn: AsyncConnection, chunks_: Sequence[dict[str, Any]]) -> None:
    """Store the kept tail of output for running runs: [{id, output, output_size}]."""
    if not chunks_:
        return
    stmt = (
        sa.update(runs)
        .where(runs.c.id == sa.bindparam("_id"))
        .values(output=sa.bindparam("_output"), output_size=sa.bindparam("_size"))
    )
    await conn.execute(
        stmt,
        [{"_id": c["id"], "_output": c["output"], "_size": c["output_size"]} for c in chunks_],
    )


async def counts_by_state(conn: AsyncConnection) -> list[tuple[str, str, int]]:
    rows = await conn.execute(
        sa.select(runs.c.executor, runs.c.state, sa.func.count()).group_by(
            runs.c.executor, runs.c.state
        )
    )
    return [(e, s, n) for e, s, n in rows]


async def next_due(conn: AsyncConnection, executors: Sequence[str]) -> float | None:
    stmt = sa.select(sa.func.min(runs.c.not_before)).where(
        runs.c.state == "queued", runs.c.executor.in_(list(executors))
    )
    return (await conn.execute(stmt)).scalar_one_or_none()
