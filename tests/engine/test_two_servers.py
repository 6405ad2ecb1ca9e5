"""Two `gnomon serve` processes on one PostgreSQL database share 200 one-second schedules.

Duplicates are impossible by construction: the unique index on runs(schedule_id,
scheduled_for) makes a second insert of a slot a no-op, whichever process fires it. The
test still counts runs against distinct slots, but gaps are the real test: every slot
between a schedule's first and last run must have been fired by one of the two schedulers,
with nothing recorded as missed (or coalesced) while both compete for the same rows.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import pairwise
from pathlib import Path

from tests.engine.conftest import Cluster

N_SCHEDULES = 200
RUN_FOR_S = 10.0


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_two_servers_fire_every_slot_once(pg_cluster: Cluster, tmp_path: Path) -> None:
    # Separate data dirs (logs, admin token), one database: the first start migrates it.
    first = pg_cluster.server(tmp_path / "a")
    second = pg_cluster.server(tmp_path / "b")
    with first.client() as api:
        job = api.post("/v1/jobs", json={"name": "tick", "action": {"type": "noop"}})
        assert job.status_code == 201, job.text
        job_id = job.json()["id"]

        def create(_: int) -> dict:
            resp = api.post(f"/v1/jobs/{job_id}/schedules", json={"every": "1s"})
            assert resp.status_code == 201, resp.text
            return resp.json()

        # A few requests in flight at once: the 200 schedules start within a second or two.
        with ThreadPoolExecutor(8) as pool:
            made = list(pool.map(create, range(N_SCHEDULES)))
    schedules = {s["id"]: ts(s["created_at"]) for s in made}
    time.sleep(RUN_FOR_S)
    stopped_at = time.time()
    first.stop()
    second.stop()

    rows = pg_cluster.ledger.query(
        "SELECT schedule_id, scheduled_for, worker_id, state FROM runs"
        " WHERE schedule_id IS NOT NULL"
    )
    slots: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        slots[r["schedule_id"]].append(r["scheduled_for"])
    assert set(slots) == set(schedules), "some schedules never fired"

    problems = []
    for sid, times in slots.items():
        times.sort()
        # Runs = distinct slots (the unique index guarantees it; a second guard costs nothing).
        if len(set(times)) != len(times):
            problems.append(f"{sid}: {len(times)} runs for {len(set(times))} slots")
        # Slots are whole seconds (aligned to the epoch); the first is the first whole second
        # after creation, the rest follow it.
        if any(t != round(t) for t in times):
            problems.append(f"{sid}: slots off whole seconds: {times[:3]}")
        if times[0] != math.floor(schedules[sid]) + 1:
            problems.append(f"{sid}: first slot {times[0] - schedules[sid]:.3f}s after creation")
        steps = [round(b - a, 3) for a, b in pairwise(times)]
        if any(s != 1.0 for s in steps):
            problems.append(f"{sid}: steps between slots {sorted(set(steps))}")
        # It kept firing until the servers stopped (the last slot is recent).
        if times[-1] < stopped_at - 3:
            problems.append(f"{sid}: last slot {stopped_at - times[-1]:.1f}s before the stop")
    # Slots that did not become runs are recorded in `fires`: missed (older than the catch-up
    # window) or coalesced (the scheduler was more than a slot late, catchup=latest).
    fires = pg_cluster.ledger.query(
        "SELECT status, count(*) AS rows, sum(count) AS slots FROM fires GROUP BY status"
    )
    assert not problems, f"{len(problems)} schedules with gaps: {problems[:5]}; fires: {fires}"
    assert fires == [], fires

    # Both processes did work: their worker ids (host:pid:ulid) appear on the runs.
    pids = {int(r["worker_id"].split(":")[1]) for r in rows if r["worker_id"]}
    assert first.proc is not None and second.proc is not None
    assert {first.proc.pid, second.proc.pid} <= pids, pids
    # And they ran them: every run of a slot well before the stop succeeded.
    settled = [r for r in rows if r["scheduled_for"] < stopped_at - 2]
    states = sorted({r["state"] for r in settled})
    assert states == ["succeeded"], (states, [r for r in settled if r["state"] != "succeeded"][:5])
    # ~10 slots per schedule ran: a sanity check that the test measured something.
    assert len(rows) >= N_SCHEDULES * (RUN_FOR_S - 2), len(rows)
