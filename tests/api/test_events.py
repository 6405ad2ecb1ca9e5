"""/v1/events: server-sent events of run transitions, with resume."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.api.helpers import create_job, sse_events, trigger, wait_state
from tests.server import Server

SSE_TIMEOUT = httpx.Timeout(10.0, read=5.0)


def read_until(response: httpx.Response, done: Any, timeout: float = 15) -> list[dict[str, Any]]:
    """Events off the stream until `done(events)` holds (or the deadline passes)."""
    events: list[dict[str, Any]] = []
    for event in sse_events(response, time.monotonic() + timeout):
        events.append(event)
        if done(events):
            break
    return events


def test_stream_delivers_a_runs_transitions_in_order(api: httpx.Client) -> None:
    job = create_job(api)
    with api.stream("GET", "/v1/events", params={"job": job["id"]}, timeout=SSE_TIMEOUT) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        run = trigger(api, job["id"])
        events = read_until(stream, lambda ev: ev[-1]["data"]["state"] == "succeeded")
    states = [e["data"]["state"] for e in events]
    assert states == ["queued", "claimed", "running", "succeeded"], events
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 4
    for e in events:
        assert e["event"] == "run"
        assert e["data"]["run_id"] == run["id"]
        assert e["data"]["job_id"] == job["id"]
        assert e["data"]["attempt"] == 1
        assert e["data"]["at"].endswith("Z")
        assert str(e["data"]["id"]) == e["id"]


def test_stream_filters_by_run(api: httpx.Client) -> None:
    job = create_job(api)
    with api.stream("GET", "/v1/events", params={"job": job["id"]}, timeout=SSE_TIMEOUT) as s:
        first = trigger(api, job["id"])
        wait_state(api, first["id"])
        second = trigger(api, job["id"])
        events = read_until(
            s,
            lambda ev: (
                ev[-1]["data"]["run_id"] == second["id"] and ev[-1]["data"]["state"] == "succeeded"
            ),
        )
    assert [e["data"]["run_id"] for e in events] == [first["id"]] * 4 + [second["id"]] * 4
    with api.stream(
        "GET",
        "/v1/events",
        params={"run": second["id"], "after": 0},
        timeout=SSE_TIMEOUT,
    ) as s:
        only = read_until(s, lambda ev: ev[-1]["data"]["state"] == "succeeded")
    assert {e["data"]["run_id"] for e in only} == {second["id"]}
    assert [e["data"]["state"] for e in only] == ["queued", "claimed", "running", "succeeded"]


def test_resume_with_last_event_id(api: httpx.Client) -> None:
    job = create_job(api)
    with api.stream("GET", "/v1/events", params={"job": job["id"]}, timeout=SSE_TIMEOUT) as s:
        run = trigger(api, job["id"])
        first = read_until(s, lambda ev: len(ev) >= 1)
    assert first[0]["data"]["state"] == "queued"
    wait_state(api, run["id"])

    # Reconnect as a browser would: everything after the last event seen, nothing before.
    headers = {"Last-Event-ID": first[0]["id"]}
    with api.stream(
        "GET", "/v1/events", params={"job": job["id"]}, headers=headers, timeout=SSE_TIMEOUT
    ) as s:
        rest = read_until(s, lambda ev: ev[-1]["data"]["state"] == "succeeded")
    assert [e["data"]["state"] for e in rest] == ["claimed", "running", "succeeded"]
    assert all(int(e["id"]) > int(first[0]["id"]) for e in rest)

    # The `after` query parameter does the same.
    with api.stream(
        "GET",
        "/v1/events",
        params={"job": job["id"], "after": rest[0]["id"]},
        timeout=SSE_TIMEOUT,
    ) as s:
        tail = read_until(s, lambda ev: ev[-1]["data"]["state"] == "succeeded")
    assert [e["id"] for e in tail] == [e["id"] for e in rest[1:]]


def test_stream_shows_only_visible_spaces(api: httpx.Client, server: Server) -> None:
    space = f"ev-{time.time_ns()}"
    assert api.post("/v1/spaces", json={"name": space}).status_code == 201
    tok = api.post("/v1/tokens", json={"name": "ev", "roles": {space: "viewer"}}).json()
    hidden = create_job(api)
    mine = create_job(api, space=space)
    with (
        server.client(tok["token"]) as viewer,
        viewer.stream("GET", "/v1/events", timeout=SSE_TIMEOUT) as s,
    ):
        assert s.status_code == 200
        wait_state(api, trigger(api, hidden["id"])["id"])
        run = trigger(api, mine["id"])
        events = read_until(
            s,
            lambda ev: (
                ev[-1]["data"]["run_id"] == run["id"] and ev[-1]["data"]["state"] == "succeeded"
            ),
        )
    assert {e["data"]["space"] for e in events} == {space}
    assert hidden["id"] not in {e["data"]["job_id"] for e in events}
    with server.client(tok["token"]) as viewer:
        r = viewer.get("/v1/events", params={"space": "default"})
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "forbidden"


def test_stream_under_concurrent_writers_misses_nothing(api: httpx.Client, server: Server) -> None:
    """Several clients commit at once (on PostgreSQL their event ids interleave and commit out
    of order): a follower still sees every run's first event, once, in id order."""
    job = create_job(api, executor="site:stream-load")

    def submit(_: int) -> list[str]:
        with server.client() as c:
            ids: list[str] = []
            for _ in range(5):
                body = {"job": job["id"], "runs": [{"params": {"n": i}} for i in range(200)]}
                r = c.post("/v1/runs:batch", json=body)
                assert r.status_code == 201, r.text
                ids += r.json()["ids"]
                ids.append(trigger(c, job["id"])["id"])
            return ids

    with api.stream("GET", "/v1/events", params={"job": job["id"]}, timeout=SSE_TIMEOUT) as s:
        with ThreadPoolExecutor(6) as pool:
            submitted = [i for part in pool.map(submit, range(6)) for i in part]
        events = read_until(s, lambda ev: len(ev) >= len(submitted), timeout=30)
    assert len(events) == len(submitted) == 6 * 5 * 201
    assert {e["data"]["state"] for e in events} == {"queued"}
    assert sorted(e["data"]["run_id"] for e in events) == sorted(submitted)
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
