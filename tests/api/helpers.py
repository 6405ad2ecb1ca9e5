"""Small helpers shared by the API contract tests."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.server import wait_for

FINAL = frozenset({"succeeded", "failed", "timed_out", "cancelled", "lost"})


def uid(prefix: str = "t") -> str:
    """A name nobody else in the shared server uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def space_name(prefix: str = "sp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def noop(**kw: Any) -> dict[str, Any]:
    return {"type": "noop", **kw}


def shell(command: str | list[str], **kw: Any) -> dict[str, Any]:
    return {"type": "shell", "command": command, **kw}


def create_job(
    api: httpx.Client, action: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    body = {"name": uid("job"), "action": action or noop(), **fields}
    r = api.post("/v1/jobs", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def trigger(api: httpx.Client, job_id: str, **body: Any) -> dict[str, Any]:
    r = api.post(f"/v1/jobs/{job_id}/runs", json=body or None)
    assert r.status_code == 201, r.text
    return r.json()


def get_run(api: httpx.Client, run_id: str) -> dict[str, Any]:
    r = api.get(f"/v1/runs/{run_id}")
    assert r.status_code == 200, r.text
    return r.json()


def wait_state(
    api: httpx.Client,
    run_id: str,
    states: Iterable[str] = FINAL,
    timeout: float = 20,
) -> dict[str, Any]:
    """Poll a run until it is in one of `states`; returns the run."""
    wanted = set(states)

    def check() -> dict[str, Any] | None:
        run = get_run(api, run_id)
        return run if run["state"] in wanted else None

    return wait_for(check, timeout=timeout, interval=0.05)


def history(api: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/runs/{run_id}/events")
    assert r.status_code == 200, r.text
    return r.json()["items"]


def runs_of(api: httpx.Client, **query: Any) -> list[dict[str, Any]]:
    """All runs matching `query`, following cursors."""
    items: list[dict[str, Any]] = []
    params = {"limit": 1000, **query}
    while True:
        r = api.get("/v1/runs", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        if not page["next_cursor"]:
            return items
        params["cursor"] = page["next_cursor"]


def delete(api: httpx.Client, path: str) -> httpx.Response:
    """DELETE on a connection of its own: a 204 that breaks keep-alive is caught by its own test
    (test_errors.py::test_204_keeps_the_connection_usable), not by every test that deletes."""
    with httpx.Client(base_url=api.base_url, headers=api.headers, timeout=30) as once:
        return once.delete(path)


def assert_error(
    r: httpx.Response, status: int, code: str | None = None, field: str | None = None
) -> dict[str, Any]:
    """The response is the error envelope with this status (and code, and first field)."""
    assert r.status_code == status, f"{r.status_code} {r.text}"
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert {"code", "message", "details"} <= set(err), err
    assert isinstance(err["message"], str) and err["message"], err
    if code is not None:
        assert err["code"] == code, err
    if field is not None:
        assert err["details"], err
        assert err["details"][0]["field"] == field, err
    return err


def pgrep(marker: str) -> list[int]:
    """Pids of processes whose command line contains `marker`."""
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def unique_sleep() -> str:
    """A `sleep` duration that doubles as a unique marker for `pgrep -f`."""
    return f"30.{uuid.uuid4().int % 10**9:09d}"


def sse_events(response: httpx.Response, deadline: float) -> Iterator[dict[str, Any]]:
    """Parse server-sent events off a streaming response until `deadline` (monotonic)."""
    event: dict[str, Any] = {}
    for line in response.iter_lines():
        if time.monotonic() > deadline:
            return
        if line.startswith(":"):
            continue
        if not line:
            if "data" in event:
                event["data"] = json.loads(event["data"])
                yield event
            event = {}
            continue
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if key == "data" and "data" in event:
            event["data"] += "\n" + value
        else:
            event[key] = value
