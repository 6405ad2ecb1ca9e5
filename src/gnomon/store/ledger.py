"""The run ledger's one door: every write of a run row, and every event, goes through here.

- new runs with their first event (`insert_new` for the group commit, `insert` inside a
  caller's transaction, `insert_slots` for schedule slots, each slot once);
- `claim`: due queued runs taken by a worker, in lanes, with their `claimed` events;
- `take`: one named queued run claimed (a site reporting on a job it never polled for);
- `move`: guarded changes (domain.RunChange) with an event per state entered; the state
  machine decides which states a change may start from, the database which changes took;
- writes that log nothing: leases, cancel requests, live output.

Reads of runs live in store/runs.py; the event log's reads in store/events.py.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.domain import RunChange
from gnomon.store._sql import (
    UNIQUE_VIOLATIONS,
    Rows,
    bulk_insert,
    chunks,
    copy_rows,
    execute_many,
    for_update,
    is_postgres,
    mappings,
    upsert_insert,
)
from gnomon.store.db import Database
from gnomon.store.runs import LIST_COLUMNS
from gnomon.store.schema import events, jobs, runs
from gnomon.vocabulary import HELD_STATES, RunState, values

HELD = values(HELD_STATES)
QUEUED = RunState.queued.value
CLAIMED = RunState.claimed.value

# --- events ---------------------------------------------------------------------------------

EVENT_COLUMNS = ("run_id", "job_id", "space", "executor", "attempt", "state", "status", "at")


def _event(run: dict[str, Any], state: str, at: float, attempt: int) -> tuple[Any, ...]:
    return (
        run["id"],
        run["job_id"],
        run["space"],
        run["executor"],
        attempt,
        state,
        run.get("status"),
        at,
    )


async def _log(conn: AsyncConnection, records: list[tuple[Any, ...]]) -> None:
    await bulk_insert(conn, Rows(events, EVENT_COLUMNS, records))


# --- new runs -------------------------------------------------------------------------------

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
_PARAMS, _NOT_BEFORE = NEW_COLUMNS.index("params"), NEW_COLUMNS.index("not_before")


def new_rows(rows: Sequence[dict[str, Any]]) -> Rows:
    """New runs (domain.new_run) as insertable tuples."""
    dumps = orjson.dumps
    return Rows(
        runs, NEW_COLUMNS, [(*_head(r), dumps(r["params"]).decode(), *_tail(r)) for r in rows]
    )


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


async def insert_rows(conn: AsyncConnection, rows: Rows) -> None:
    """`insert_new` inside the caller's transaction."""
    if not rows.records:
        return
    if is_postgres(conn):
        await bulk_insert(conn, rows)
        await bulk_insert(conn, Rows(events, _FIRST_EVENT, list(map(_first_event, rows.records))))
        return
    top = (await conn.exec_driver_sql("SELECT coalesce(max(rowid), 0) FROM runs")).scalar()
    await conn.exec_driver_sql(rows.insert_sql, list(rows.records))
    await conn.exec_driver_sql(_SQLITE_FIRST_EVENTS, (top,))


async def insert(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """New runs (domain.new_run) and their first events, in the caller's transaction."""
    await insert_rows(conn, new_rows(rows))


async def insert_slots(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], now: float
) -> list[dict[str, Any]]:
    """Runs that fill schedule slots, each slot once, with their first events; returns the
    runs actually inserted.

    The unique (schedule_id, scheduled_for) index makes firing idempotent across processes.
    The caller holds the schedules' locks, so a slot normally cannot exist yet: the bulk
    insert is tried first, and only if the index refuses it does the per-row ON CONFLICT
    path run.
    """
    if not rows:
        return []
    try:
        async with conn.begin_nested():
            await bulk_insert(conn, new_rows(rows))
        created = list(rows)
    except UNIQUE_VIOLATIONS:
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
        created = [r for r in rows if r["id"] in inserted]
    await _log(conn, [_event(r, r["state"], now, 1) for r in created])
    return created


# --- claims ---------------------------------------------------------------------------------

# (shell, limit): shell True takes only shell actions, False all others, None any.
Lane = tuple[bool | None, int]
JobFields = Callable[[str], dict[str, Any] | None]

_JOB_FIELDS = (
    jobs.c.action,
    jobs.c.retry,
    jobs.c.executor_options,
    jobs.c.name.label("job_name"),
)


_CLAIMED_VALUES = {
    "state": CLAIMED,
    "worker_id": sa.bindparam("worker"),
    "lease_expires_at": sa.bindparam("lease"),
    "claimed_at": sa.bindparam("now"),
    "updated_at": sa.bindparam("now"),
    "output": "",  # a new attempt starts a new log
    "output_size": 0,
}


@lru_cache(maxsize=256)
def _due(shell: bool | None, limited: bool, by_space: bool, by_job: bool) -> sa.Select:
    """Due queued runs of the executors `:executors` (of jobs with a concurrency limit, or
    without), oldest first, at most `:lim`; by `:spaces` / `:job_ids` when asked. Built once
    per shape: a claim binds its values only."""
    max_running = jobs.c.concurrency["max_running"].as_string()
    stmt = (
        sa.select(runs.c.id)
        .join(jobs, jobs.c.id == runs.c.job_id)
        .where(
            runs.c.state == QUEUED,
            runs.c.executor.in_(sa.bindparam("executors", expanding=True)),
            runs.c.not_before <= sa.bindparam("now"),
            max_running.is_not(None) if limited else max_running.is_(None),
        )
        .order_by(runs.c.not_before, runs.c.id)
        .limit(sa.bindparam("lim", type_=sa.Integer))
    )
    if by_space:
        stmt = stmt.where(runs.c.space.in_(sa.bindparam("spaces", expanding=True)))
    if by_job:
        stmt = stmt.where(runs.c.job_id.in_(sa.bindparam("job_ids", expanding=True)))
    if shell is not None:
        kind = jobs.c.action["type"].as_string()
        stmt = stmt.where(kind == "shell" if shell else kind != "shell")
    return stmt


@lru_cache(maxsize=256)
def _claim_free_stmt(postgres: bool, *shape: Any) -> sa.Executable:
    """The one statement that claims the runs `_due(*shape)` picks (jobs without a limit):
    on PostgreSQL with SKIP LOCKED, the jobs' fields and the `claimed` events in it too."""
    pick = _due(*shape)
    if postgres:
        pick = pick.with_for_update(skip_locked=True, of=runs)
        claimed = (
            sa.update(runs)
            .where(runs.c.id.in_(pick.scalar_subquery()), runs.c.job_id == jobs.c.id)
            .values(_CLAIMED_VALUES)
            .returning(*LIST_COLUMNS, *_JOB_FIELDS)
            .cte("claimed")
        )
        c = claimed.c
        logged = (
            sa.insert(events)
            .from_select(
                EVENT_COLUMNS,
                sa.select(
                    c.id,
                    c.job_id,
                    c.space,
                    c.executor,
                    c.attempt,
                    c.state,
                    c.status,
                    sa.bindparam("now"),
                ),
            )
            .cte("logged")
        )
        return sa.select(claimed).add_cte(logged)
    return (
        sa.update(runs)
        .where(runs.c.id.in_(pick.scalar_subquery()))
        .values(_CLAIMED_VALUES)
        .returning(*LIST_COLUMNS)
    )


_JOB_FIELDS_OF = sa.select(jobs.c.id, *_JOB_FIELDS).where(
    jobs.c.id.in_(sa.bindparam("ids", expanding=True))
)
_HELD_COUNTS = (
    sa.select(runs.c.job_id, sa.func.count())
    .where(runs.c.job_id.in_(sa.bindparam("ids", expanding=True)), runs.c.state.in_(HELD))
    .group_by(runs.c.job_id)
)
_CLAIM_IDS = (
    sa.update(runs)
    .where(runs.c.id.in_(sa.bindparam("ids", expanding=True)), runs.c.state == QUEUED)
    .values(_CLAIMED_VALUES)
)
_CLAIMED_WITH_JOBS = (
    sa.select(*LIST_COLUMNS, *_JOB_FIELDS)
    .join(jobs, jobs.c.id == runs.c.job_id)
    .where(runs.c.id.in_(sa.bindparam("ids", expanding=True)))
)


async def claim(
    conn: AsyncConnection,
    *,
    executors: Sequence[str],
    lanes: Sequence[Lane],
    worker_id: str,
    lease_until: float,
    now: float,
    spaces: Sequence[str] | None = None,
    job_ids: Sequence[str] | None = None,
    jobs_known: JobFields | None = None,
) -> list[dict[str, Any]]:
    """Claim due queued runs, oldest first, and log their `claimed` events.

    Each lane (shell, limit) takes up to `limit` runs: `shell` True only shell actions, False
    all others, None any — so an executor can bound its processes and its light work apart.
    Runs of jobs without a concurrency limit are claimed in one statement (on PostgreSQL
    `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)` with the events in the same
    statement; on SQLite the writer's BEGIN IMMEDIATE serialises it); runs of jobs with one
    only while the job holds fewer. With `spaces` / `job_ids`, only runs of those.

    Returns the claimed runs with their job's `action`, `retry`, `executor_options` and
    `job_name` (on SQLite from `jobs_known` where it knows them).
    """
    params: dict[str, Any] = {
        "executors": list(executors),
        "now": now,
        "worker": worker_id,
        "lease": lease_until,
    }
    if spaces is not None:
        params["spaces"] = list(spaces)
    if job_ids is not None:
        params["job_ids"] = list(job_ids)
    by = (spaces is not None, job_ids is not None)
    out: list[dict[str, Any]] = []
    for shell, limit in lanes:
        if limit <= 0:
            continue
        got = await _claim_free(conn, (shell, False, *by), {**params, "lim": limit}, jobs_known)
        if len(got) < limit:
            room = {**params, "lim": limit - len(got)}
            got += await _claim_counted(conn, (shell, True, *by), room)
        out += got
    out.sort(key=lambda r: (r["not_before"], r["id"]))
    return out


async def _claim_free(
    conn: AsyncConnection,
    shape: tuple[Any, ...],
    params: dict[str, Any],
    jobs_known: JobFields | None,
) -> list[dict[str, Any]]:
    """Claim the runs `_due(*shape)` picks (jobs without a concurrency limit) in one
    statement."""
    postgres = is_postgres(conn)
    rows = mappings(await conn.execute(_claim_free_stmt(postgres, *shape), params))
    if postgres or not rows:
        return rows
    now = params["now"]
    await _log(conn, [_event(r, CLAIMED, now, r["attempt"]) for r in rows])
    known: dict[str, dict[str, Any]] = {}
    for job_id in {r["job_id"] for r in rows}:
        fields = jobs_known(job_id) if jobs_known else None
        if fields is not None:
            known[job_id] = fields
    if missing := {r["job_id"] for r in rows} - set(known):
        for r in mappings(await conn.execute(_JOB_FIELDS_OF, {"ids": list(missing)})):
            known[r.pop("id")] = r
    for r in rows:
        r.update(known[r["job_id"]])
    return rows


async def _claim_counted(
    conn: AsyncConnection, shape: tuple[Any, ...], params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Claim the runs `_due(*shape)` picks (jobs with a concurrency limit) while their jobs
    hold fewer runs than the limit (counted under a per-job lock on PostgreSQL)."""
    candidates = _due(*shape).with_only_columns(runs.c.id, runs.c.job_id, jobs.c.concurrency)
    rows = (await conn.execute(for_update(conn, candidates, of=runs), params)).all()
    if not rows:
        return []
    limits = {r.job_id: r.concurrency["max_running"] for r in rows}
    if is_postgres(conn):
        for job_id in sorted(limits):
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(job_id))))
    room = dict(limits)
    for job_id, n in await conn.execute(_HELD_COUNTS, {"ids": list(limits)}):
        room[job_id] -= n
    ids = []
    for r in rows:
        if room[r.job_id] > 0:
            room[r.job_id] -= 1
            ids.append(r.id)
    if not ids:
        return []
    await conn.execute(_CLAIM_IDS, {**params, "ids": ids})
    claimed = mappings(await conn.execute(_CLAIMED_WITH_JOBS, {"ids": ids}))
    await _log(conn, [_event(r, CLAIMED, params["now"], r["attempt"]) for r in claimed])
    return claimed


async def take(
    conn: AsyncConnection,
    run: dict[str, Any],
    *,
    worker_id: str,
    lease_until: float,
    now: float,
) -> bool:
    """Claim one named queued run (a site reporting on a job it never polled for), with its
    `claimed` event; False when it is no longer queued."""
    stmt = (
        sa.update(runs)
        .where(runs.c.id == run["id"], runs.c.state == QUEUED)
        .values(_CLAIMED_VALUES)
    )
    bound = {"worker": worker_id, "lease": lease_until, "now": now}
    if (await conn.execute(stmt, bound)).rowcount == 0:
        return False
    await _log(conn, [_event({**run, "status": run.get("status")}, CLAIMED, now, run["attempt"])])
    return True


# --- guarded changes ------------------------------------------------------------------------

# What the caller of `move` gets back: enough to follow schedules and wake executors.
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
_KNOWN = frozenset(c.name for c in runs.c) - {"id", "state", "updated_at"}


async def move(
    conn: AsyncConnection, changes: Sequence[RunChange], *, worker_id: str | None = None
) -> list[dict[str, Any]]:
    """Apply each change only while its run is in the change's from-states (at its attempt,
    when it names one; held by `worker_id`, when given), and log an event per state entered.
    Changes of the same shape go out as one executemany. Returns the runs that changed
    (MOVED_COLUMNS as they are now)."""
    if not changes:
        return []
    groups: dict[tuple[Any, ...], list[RunChange]] = defaultdict(list)
    for c in changes:
        shape = (tuple(sorted(c.values)), bool(c.path), c.attempt is not None, c.from_states)
        groups[shape].append(c)
    held = (worker_id,) if worker_id is not None else ()
    for (cols, enters, guarded, from_states), group in groups.items():
        assert _KNOWN.issuperset(cols), cols
        sets = [*cols, *(("state",) if enters else ()), "updated_at"]
        states = ", ".join(f"'{s.value}'" for s in from_states)
        sql = (
            f"UPDATE runs SET {', '.join(f'{k} = ?' for k in sets)} "
            f"WHERE id = ? AND state IN ({states})"
        )
        sql += " AND attempt = ?" if guarded else ""
        sql += " AND worker_id = ?" if worker_id is not None else ""
        records = [
            (
                *(c.values[k] for k in cols),
                *((c.path[-1].value,) if enters else ()),
                c.at,
                c.run_id,
                *((c.attempt,) if guarded else ()),
                *held,
            )
            for c in group
        ]
        await execute_many(conn, sql, records)
    # Which ones took: the rows now carry the `updated_at` stamp each change set.
    by_id = {c.run_id: c for c in changes}
    after: list[dict[str, Any]] = []
    for part in chunks(list(by_id)):
        after += mappings(await conn.execute(sa.select(*MOVED_COLUMNS).where(runs.c.id.in_(part))))
    done = [r for r in after if r["updated_at"] == by_id[r["id"]].at]
    await _log(
        conn,
        [
            _event(r, state, r["updated_at"], attempt)
            for r in done
            for state, attempt in by_id[r["id"]].logged(r["state"], r["attempt"])
        ],
    )
    return done


# --- writes that log nothing ----------------------------------------------------------------


async def heartbeat(
    conn: AsyncConnection, worker_id: str, lease_until: float, now: float
) -> list[str]:
    """Extend the leases a worker holds; return ids of its runs whose cancel was requested."""
    await conn.execute(
        sa.update(runs)
        .where(runs.c.worker_id == worker_id, runs.c.state.in_(HELD))
        .values(lease_expires_at=lease_until)
    )
    rows = await conn.execute(
        sa.select(runs.c.id).where(
            runs.c.worker_id == worker_id,
            runs.c.state.in_(HELD),
            runs.c.cancel_requested.is_(True),
        )
    )
    return [r.id for r in rows]


async def extend_leases(conn: AsyncConnection, executor_prefix: str, lease_until: float) -> int:
    """Push every held lease of these executors to at least `lease_until`."""
    stmt = (
        sa.update(runs)
        .where(
            runs.c.state.in_(HELD),
            runs.c.executor.startswith(executor_prefix, autoescape=True),
            runs.c.lease_expires_at < lease_until,
        )
        .values(lease_expires_at=lease_until)
    )
    return (await conn.execute(stmt)).rowcount


async def request_cancel(conn: AsyncConnection, run_id: str, now: float) -> None:
    """Ask the worker holding a run to stop it (it learns at its next heartbeat)."""
    await conn.execute(
        sa.update(runs).where(runs.c.id == run_id).values(cancel_requested=True, updated_at=now)
    )


async def write_output(conn: AsyncConnection, tails: Sequence[dict[str, Any]]) -> None:
    """Store the kept tail of output for running runs: [{id, output, output_size}]."""
    if not tails:
        return
    stmt = (
        sa.update(runs)
        .where(runs.c.id == sa.bindparam("_id"))
        .values(output=sa.bindparam("_output"), output_size=sa.bindparam("_size"))
    )
    await conn.execute(
        stmt,
        [{"_id": c["id"], "_output": c["output"], "_size": c["output_size"]} for c in tails],
    )
