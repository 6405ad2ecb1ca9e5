"""A server dies (kill -9) or stops (SIGTERM) with runs in flight: the ledger keeps every run.

Runs that were queued survive and run after the restart; runs that were held end `lost`
(after the lease on a crash, at once on a graceful stop) and retry when they have attempts
left; their shell children die with the server; every run's event log follows the machine.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.engine.conftest import Cluster, check_history, processes_marked
from tests.server import wait_for

WORKERS = "4"


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def make_jobs(api: httpx.Client, marker: str) -> dict[str, str]:
    """`slow` retries once, `once` does not: both sleep 30 s on attempt 1 (and not after);
    `quick` is `true`. Every process they start carries `marker` in its environment, and the
    shell line carries it too (the `echo` after the sleep keeps the shell from exec-ing
    `sleep`, so the sleep is a grandchild of the server: it must die as well)."""
    command = f'if [ "$GNOMON_ATTEMPT" = 1 ]; then sleep 30; fi; echo {marker}'
    env = {"GNOMON_TEST_MARK": marker}
    specs = {
        "slow": {"command": command, "env": env, "retry": {"max_attempts": 2, "backoff_s": 0}},
        "once": {"command": command, "env": env, "retry": {"max_attempts": 1}},
        "quick": {"command": "true", "env": env, "retry": {"max_attempts": 1}},
    }
    ids = {}
    for name, spec in specs.items():
        body = {
            "name": f"{name}-{marker}",
            "action": {"type": "shell", "command": spec["command"], "env": spec["env"]},
            "retry": spec["retry"],
        }
        resp = api.post("/v1/jobs", json=body)
        assert resp.status_code == 201, resp.text
        ids[name] = resp.json()["id"]
    return ids


def submit(api: httpx.Client, job_id: str, n: int, at: datetime | None = None) -> list[str]:
    runs = [{"at": at.isoformat()} if at else {} for _ in range(n)]
    resp = api.post("/v1/runs:batch", json={"job": job_id, "runs": runs})
    assert resp.status_code == 201, resp.text
    return resp.json()["ids"]


def runs_of(api: httpx.Client) -> dict[str, dict[str, Any]]:
    resp = api.get("/v1/runs", params={"limit": 1000})
    assert resp.status_code == 200, resp.text
    return {r["id"]: r for r in resp.json()["items"]}


def history(api: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    resp = api.get(f"/v1/runs/{run_id}/events")
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


def start_four(api: httpx.Client, jobs: dict[str, str]) -> tuple[list[str], list[str]]:
    """Two `slow` and two `once` runs, running; the pool of 4 is then full."""
    slow = submit(api, jobs["slow"], 2)
    once = submit(api, jobs["once"], 2)
    try:
        wait_for(lambda: all(runs_of(api)[i]["state"] == "running" for i in slow + once), 10)
    except AssertionError:
        states = sorted(runs_of(api)[i]["state"] for i in slow + once)
        raise AssertionError(f"4 runs not running after 10 s: {states}") from None
    return slow, once


def assert_no_children(marker: str) -> None:
    """No process left from the runs: neither the shell (pgrep on the command line) nor the
    `sleep` it started (found by the marker in its environment)."""
    deadline = time.monotonic() + 5
    while (left := processes_marked(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes of the runs outlived the server: {left}"
    pgrep = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert pgrep.returncode == 1, f"still running: {pgrep.stdout}"


def test_kill9_keeps_every_run(cluster: Cluster) -> None:
    marker = f"gnomon-crash-{uuid.uuid4().hex}"
    cluster.markers.append(marker)
    srv = cluster.server(GNOMON_WORKERS=WORKERS)
    with srv.client() as api:
        jobs = make_jobs(api, marker)
        slow, once = start_four(api, jobs)
        assert len(processes_marked(marker)) >= 4  # the shells and their sleeps
        quick_now = submit(api, jobs["quick"], 14)
        at = datetime.now(UTC) + timedelta(seconds=5)
        quick_later = submit(api, jobs["quick"], 6, at=at)
        time.sleep(0.3)  # give a (wrong) claim a chance to happen
        before = runs_of(api)
    submitted = set(slow + once + quick_now + quick_later)
    assert set(before) == submitted
    assert sorted(r["state"] for r in before.values()).count("running") == 4
    assert {before[i]["state"] for i in quick_now + quick_later} == {"queued"}

    srv.kill9()
    assert_no_children(marker)

    # The same data dir / database, a new process.
    srv2 = cluster.server(GNOMON_WORKERS=WORKERS)
    with srv2.client() as api:
        # Queued runs were kept and run; the ones `at` a later time not before it.
        def all_settled() -> dict[str, dict[str, Any]] | None:
            runs = runs_of(api)
            done = {"succeeded", "failed", "lost", "timed_out", "cancelled"}
            return runs if all(r["state"] in done for r in runs.values()) else None

        runs = wait_for(all_settled, timeout=20, interval=0.2)
        assert set(runs) == submitted, "runs appeared or disappeared"

        for i in quick_now + quick_later:
            assert runs[i]["state"] == "succeeded", runs[i]
            assert check_history(history(api, i)) == [
                ("queued", 1),
                ("claimed", 1),
                ("running", 1),
                ("succeeded", 1),
            ]
        for i in quick_later:
            assert ts(runs[i]["started_at"]) >= at.timestamp() - 0.01, runs[i]

        # Held runs: lost once their lease ran out, not before.
        for i in once:
            assert runs[i]["state"] == "lost", runs[i]
            assert runs[i]["attempt"] == 1
            assert "lease expired" in (runs[i]["message"] or ""), runs[i]
            events = history(api, i)
            assert check_history(events) == [
                ("queued", 1),
                ("claimed", 1),
                ("running", 1),
                ("lost", 1),
            ]
            # Not before the lease ran out: it was at least what we saw before the kill.
            lost_at = ts(events[-1]["at"])
            assert lost_at >= ts(before[i]["lease_expires_at"]), (before[i], events)

        # The one with an attempt left came back: lost (1), queued (2), and ran.
        for i in slow:
            assert runs[i]["state"] == "succeeded", runs[i]
            assert runs[i]["attempt"] == 2, runs[i]
            events = history(api, i)
            assert check_history(events) == [
                ("queued", 1),
                ("claimed", 1),
                ("running", 1),
                ("lost", 1),
                ("queued", 2),
                ("claimed", 2),
                ("running", 2),
                ("succeeded", 2),
            ]
            assert ts(events[3]["at"]) >= ts(before[i]["lease_expires_at"]), (before[i], events)
            log = api.get(f"/v1/runs/{i}/log").text
            assert marker in log  # attempt 2 went through the whole command

    # The ledger itself agrees with the API: one event stream per run, nothing orphaned.
    rows = cluster.ledger.query("SELECT run_id, count(*) AS n FROM events GROUP BY run_id")
    assert {r["run_id"] for r in rows} == submitted
    srv2.stop()


def test_graceful_stop_ends_held_runs_at_once(cluster: Cluster) -> None:
    marker = f"gnomon-stop-{uuid.uuid4().hex}"
    cluster.markers.append(marker)
    # A long lease: if the lost transitions had to wait for it, the test would time out.
    srv = cluster.server(GNOMON_WORKERS=WORKERS, GNOMON_LEASE_S="120")
    with srv.client() as api:
        jobs = make_jobs(api, marker)
        slow, once = start_four(api, jobs)
        queued = submit(api, jobs["quick"], 5, at=datetime.now(UTC) + timedelta(seconds=3))

    began = time.monotonic()
    stopping_at = time.time()
    srv.stop()
    took = time.monotonic() - began
    # uvicorn re-raises the SIGTERM it handled once shut down: -15 is a clean exit too.
    assert srv.proc is not None and srv.proc.returncode in (0, -15), srv.log()
    assert took < 5, f"a graceful stop took {took:.1f}s"
    assert_no_children(marker)

    # Read the ledger while no server runs: the stop itself settled the held runs.
    rows = cluster.ledger.query("SELECT id, state, attempt, message, worker_id FROM runs")
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == set(slow + once + queued)
    for i in once:
        assert by_id[i]["state"] == "lost", by_id[i]
        assert "server stopped" in by_id[i]["message"], by_id[i]
    for i in slow:
        assert (by_id[i]["state"], by_id[i]["attempt"]) == ("queued", 2), by_id[i]
        assert by_id[i]["worker_id"] is None
    for i in queued:
        assert (by_id[i]["state"], by_id[i]["attempt"]) == ("queued", 1), by_id[i]

    srv2 = cluster.server(GNOMON_WORKERS=WORKERS, GNOMON_LEASE_S="120")
    with srv2.client() as api:
        for i in once:
            events = history(api, i)
            assert check_history(events)[-1] == ("lost", 1)
            assert ts(events[-1]["at"]) - stopping_at < 5
        for i in slow + queued:
            wait_for(lambda i=i: runs_of(api)[i]["state"] == "succeeded", timeout=15)
        for i in slow:
            assert check_history(history(api, i)) == [
                ("queued", 1),
                ("claimed", 1),
                ("running", 1),
                ("lost", 1),
                ("queued", 2),
                ("claimed", 2),
                ("running", 2),
                ("succeeded", 2),
            ]
    srv2.stop()
