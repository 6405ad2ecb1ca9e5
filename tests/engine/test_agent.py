"""The reference site agent against a real server that is killed (-9) mid-job and restarted:
the job runs once, finishes once, and its status history is whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.engine.conftest import Cluster, check_history
from tests.server import wait_for

ROOT = Path(__file__).resolve().parents[2]


def start_agent(url: str, token: str, site: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "gnomon", "agent", "--site", site]
    command += ["--handlers", "tests.engine.site_handlers:HANDLERS", "--name", "dome"]
    command += ["--url", url, "--token", token, "--wait-s", "2"]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def run_of(srv_url: str, token: str, run_id: str) -> dict[str, Any] | None:
    try:
        r = httpx.get(
            f"{srv_url}/v1/runs/{run_id}", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def test_agent_rides_out_a_server_crash(cluster: Cluster, tmp_path: Path) -> None:
    srv = cluster.server()
    token = srv.token
    site = f"dome-{uuid.uuid4().hex[:8]}"
    marker, gate = tmp_path / "ran.txt", tmp_path / "gate"
    with srv.client() as api:
        job = api.post(
            "/v1/jobs",
            json={
                "name": f"expose-{site}",
                "action": {"type": "task", "name": "expose"},
                "executor": f"site:{site}",
                "params": {"marker": str(marker), "gate": str(gate)},
                "retry": {"max_attempts": 3, "backoff_s": 0},
            },
        ).json()
        run = api.post(f"/v1/jobs/{job['id']}/runs", json={}).json()
    agent = start_agent(srv.url, token, site, tmp_path / "agent.log")
    try:
        wait_for(lambda: (run_of(srv.url, token, run["id"]) or {}).get("status") == "EXPOSING")
        srv.kill9()
        time.sleep(1.0)
        srv.start()  # same port, same database
        gate.touch()
        done = wait_for(
            lambda: (r := run_of(srv.url, token, run["id"])) and r["state"] == "succeeded" and r,
            timeout=30,
        )
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait()
    assert marker.read_text().splitlines() == [run["id"]]  # it ran once
    assert done["attempt"] == 1 and done["exit_code"] == 0
    with srv.client() as api:
        events = api.get(f"/v1/runs/{run['id']}/events").json()["items"]
        log = api.get(f"/v1/runs/{run['id']}/log").text
    # Status reports are events of their own (same state, a new status); the states
    # follow the machine, with no `lost` and no second attempt.
    moves = [e for i, e in enumerate(events) if i == 0 or e["state"] != events[i - 1]["state"]]
    assert check_history(moves) == [("queued", 1), ("claimed", 1), ("running", 1), ("succeeded", 1)]
    statuses = [(e["state"], e["status"]) for e in events]
    assert statuses == [
        ("queued", None),
        ("claimed", None),
        ("running", None),
        ("running", "EXPOSING"),
        ("running", "READING OUT"),
        ("succeeded", "READING OUT"),
    ], events
    assert log == "shutter open\nshutter closed\n"
