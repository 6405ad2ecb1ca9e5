"""How a change to a run is written: the run row and its event, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.store import events as event_store
from gnomon.store import runs as run_store
from gnomon.store._sql import Rows
from gnomon.store.db import Database


def event_for(run: dict[str, Any], state: str, at: float, attempt: int | None = None) -> dict:
    return {
        "run_id": run["id"],
        "job_id": run["job_id"],
        "space": run["space"],
        "executor": run["executor"],
        "attempt": attempt if attempt is not None else run["attempt"],
        "state": state,
        "status": run.get("status"),
        "at": at,
    }


async def record_new(db: Database, rows: Rows) -> None:
    """Insert new runs (`store.runs.new_rows` / `new_rows_like`) with their first event."""
    await run_store.insert_new(db, rows)


async def move(
    conn: AsyncConnection,
    changes: Sequence[dict[str, Any]],
    *,
    from_states: Sequence[str],
    worker_id: str | None = None,
) -> list[dict[str, Any]]:
    """Apply guarded changes and log an event per state entered.

    A change may carry `_states`: the list of (state, attempt) it passes through (a retry logs
    `failed` at attempt n, then `queued` at n+1); by default its `state`, if any.
    Returns the runs that changed, as they are now.
    """
    plain = [{k: v for k, v in c.items() if not k.startswith("_")} for c in changes]
    passes = {c["id"]: c.get("_states") for c in changes}
    done = await run_store.transition(conn, plain, from_states=from_states, worker_id=worker_id)
    log: list[dict[str, Any]] = []
    by_id = {c["id"]: c for c in plain}
    for run in done:
        states = passes[run["id"]]
        if states is None:
            state = by_id[run["id"]].get("state")
            states = [(state, run["attempt"])] if state else []
        log += [event_for(run, s, run["updated_at"], a) for s, a in states]
    await event_store.append(conn, log)
    return done
