"""Runs: submit, batch, list, execute (shell/http/noop), timeouts, retries, cancel, logs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.api.helpers import (
    FINAL,
    assert_error,
    create_job,
    get_run,
    history,
    noop,
    parse_ts,
    pgrep,
    rfc3339,
    runs_of,
    shell,
    trigger,
    uid,
    unique_sleep,
    wait_state,
)
from tests.server import wait_for

# --- submit -------------------------------------------------------------------------------


def test_run_now_returns_a_queued_run(api: httpx.Client) -> None:
    job = create_job(api, params={"a": 1, "b": 1})
    r = api.post(f"/v1/jobs/{job['id']}/runs")
    assert r.status_code == 201, r.text
    run = r.json()
    assert len(run["id"]) == 26
    assert run["state"] == "queued"
    assert run["job_id"] == job["id"]
    assert run["space"] == "default"
    assert run["attempt"] == 1
    assert run["params"] == {"a": 1, "b": 1}
    assert run["schedule_id"] is None and run["scheduled_for"] is None
    assert run["created_at"].endswith("Z")
    assert "output" not in run
    done = wait_state(api, run["id"])
    assert done["state"] == "succeeded"
    assert done["exit_code"] == 0
    for key in ("claimed_at", "started_at", "finished_at"):
        assert done[key] is not None, key
    assert done["created_at"] <= done["claimed_at"] <= done["started_at"] <= done["finished_at"]


def test_run_with_params_and_future_at(api: httpx.Client) -> None:
    job = create_job(api, params={"a": 1, "b": 1})
    at = time.time() + 1.5
    run = trigger(api, job["id"], params={"b": 2, "c": [3]}, at=rfc3339(at))
    assert run["state"] == "queued"
    assert run["params"] == {"a": 1, "b": 2, "c": [3]}
    assert parse_ts(run["not_before"]).timestamp() == pytest.approx(at, abs=1e-3)
    time.sleep(0.7)
    early = get_run(api, run["id"])
    assert early["state"] == "queued"
    assert early["started_at"] is None
    done = wait_state(api, run["id"], timeout=10)
    assert done["state"] == "succeeded"
    assert parse_ts(done["claimed_at"]).timestamp() >= at - 1e-3
    assert parse_ts(done["started_at"]).timestamp() >= at - 1e-3


def test_run_request_validation(api: httpx.Client) -> None:
    job = create_job(api)
    url = f"/v1/jobs/{job['id']}/runs"
    assert_error(api.post(url, json={"at": "2030-01-01T00:00:00"}), 422, "invalid", field="at")
    assert_error(api.post(url, json={"at": "tomorrow"}), 422, "invalid", field="at")
    assert_error(api.post(url, json={"params": "x"}), 422, "invalid", field="params")
    assert_error(api.post(url, json={"priority": 1}), 422, "invalid", field="priority")
    assert_error(api.post("/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/runs"), 404, "not_found")


def test_batch_of_a_thousand(api: httpx.Client) -> None:
    job = create_job(api)
    later = rfc3339(time.time() + 86400)  # never runs during the session
    body = {"job": job["id"], "runs": [{"params": {"i": i}, "at": later} for i in range(1000)]}
    r = api.post("/v1/runs:batch", json=body)
    assert r.status_code == 201, r.text
    ids = r.json()["ids"]
    assert len(ids) == 1000 and len(set(ids)) == 1000

    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"job": job["id"], "state": "queued", "limit": 300}
    pages = 0
    while True:
        page = api.get("/v1/runs", params=params).json()
        seen += page["items"]
        pages += 1
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert pages == 4
    assert {r["id"] for r in seen} == set(ids)
    assert len(seen) == 1000
    assert sorted(r["params"]["i"] for r in seen) == list(range(1000))


def test_batch_validation(api: httpx.Client) -> None:
    job = create_job(api)
    assert_error(api.post("/v1/runs:batch", json={"job": job["id"], "runs": []}), 422, field="runs")
    assert_error(api.post("/v1/runs:batch", json={"runs": [{}]}), 422, field="job")
    r = api.post("/v1/runs:batch", json={"job": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "runs": [{}]})
    assert_error(r, 404, "not_found")


# --- list -----------------------------------------------------------------------------------


def test_list_runs_filters(api: httpx.Client) -> None:
    job = create_job(api, shell("exit ${PARAM_CODE:-0}"))
    other = create_job(api)
    first = trigger(api, job["id"], params={"code": 0})
    wait_state(api, first["id"])
    time.sleep(0.01)
    between = rfc3339(time.time())
    time.sleep(0.01)
    second = trigger(api, job["id"], params={"code": 1})
    third = trigger(api, job["id"], params={"code": 0})
    wait_state(api, second["id"])
    wait_state(api, third["id"])
    trigger(api, other["id"])

    all_ = runs_of(api, job=job["id"])
    assert [r["id"] for r in all_] == [third["id"], second["id"], first["id"]]  # newest first
    assert {r["job_id"] for r in all_} == {job["id"]}

    failed = runs_of(api, job=job["id"], state="failed")
    assert [r["id"] for r in failed] == [second["id"]]
    both = runs_of(api, job=job["id"], state="succeeded,failed")
    assert len(both) == 3
    assert runs_of(api, job=job["id"], state="queued,running") == []

    since = runs_of(api, job=job["id"], since=between)
    assert [r["id"] for r in since] == [third["id"], second["id"]]

    assert_error(api.get("/v1/runs", params={"state": "done"}), 422, "invalid", field="state")
    assert_error(api.get("/v1/runs", params={"since": "yesterday"}), 422, "invalid", field="since")
    assert_error(api.get("/v1/runs", params={"limit": 0}), 422, "invalid", field="limit")


def test_since_includes_a_run_created_at_that_instant(api: httpx.Client) -> None:
    """`since` is "created at or after": a run's own created_at, as presented, includes it."""
    job = create_job(api, executor="site:since-test")  # never executed: keeps the test cheap
    ids = api.post(
        "/v1/runs:batch", json={"job": job["id"], "runs": [{} for _ in range(5)]}
    ).json()["ids"]
    runs = [trigger(api, job["id"]) for _ in range(15)] + [get_run(api, i) for i in ids]
    excluded = [
        (r["id"], r["created_at"])
        for r in runs
        if r["id"] not in {x["id"] for x in runs_of(api, job=job["id"], since=r["created_at"])}
    ]
    assert excluded == []


def test_list_runs_cursor_paging(api: httpx.Client) -> None:
    job = create_job(api)
    ids = {trigger(api, job["id"])["id"] for _ in range(5)}
    seen: list[str] = []
    params: dict[str, Any] = {"job": job["id"], "limit": 2}
    for _ in range(5):
        page = api.get("/v1/runs", params=params).json()
        seen += [r["id"] for r in page["items"]]
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == sorted(ids, reverse=True)


def test_unknown_run_is_404(api: httpx.Client) -> None:
    missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    assert_error(api.get(f"/v1/runs/{missing}"), 404, "not_found")
    assert_error(api.get(f"/v1/runs/{missing}/log"), 404, "not_found")
    assert_error(api.get(f"/v1/runs/{missing}/events"), 404, "not_found")
    assert_error(api.post(f"/v1/runs/{missing}/cancel"), 404, "not_found")


# --- shell ----------------------------------------------------------------------------------


def test_shell_success_with_output(api: httpx.Client) -> None:
    job = create_job(
        api,
        shell('echo "hello $PARAM_WHO"; echo "run=$GNOMON_RUN_ID"; echo "env=$GREETING" >&2'),
        params={"who": "world"},
    )
    job_env = api.patch(
        f"/v1/jobs/{job['id']}",
        json={"action": shell(job["action"]["command"], env={"GREETING": "hi"})},
    )
    assert job_env.status_code == 200
    run = trigger(api, job["id"])
    done = wait_state(api, run["id"])
    assert done["state"] == "succeeded", done
    assert done["exit_code"] == 0
    assert done["output_size"] > 0
    log = api.get(f"/v1/runs/{run['id']}/log")
    assert log.status_code == 200
    assert log.headers["content-type"].startswith("text/plain")
    assert log.text.splitlines() == ["hello world", f"run={run['id']}", "env=hi"]


def test_shell_argv_list(api: httpx.Client) -> None:
    job = create_job(api, shell(["printf", "%s|", "a b", "$HOME"]))
    done = wait_state(api, trigger(api, job["id"])["id"])
    assert done["state"] == "succeeded"
    assert api.get(f"/v1/runs/{done['id']}/log").text == "a b|$HOME|"


def test_shell_failure_carries_exit_code(api: httpx.Client) -> None:
    job = create_job(api, shell("echo oops; exit 3"))
    done = wait_state(api, trigger(api, job["id"])["id"])
    assert done["state"] == "failed"
    assert done["exit_code"] == 3
    assert done["attempt"] == 1
    assert api.get(f"/v1/runs/{done['id']}/log").text == "oops\n"
    states = [e["state"] for e in history(api, done["id"])]
    assert states == ["queued", "claimed", "running", "failed"]


def test_shell_that_cannot_start_fails(api: httpx.Client) -> None:
    job = create_job(api, shell(["/nonexistent/binary-" + uid()]))
    done = wait_state(api, trigger(api, job["id"])["id"])
    assert done["state"] == "failed"
    assert done["exit_code"] == 127


def test_timeout_kills_the_process_group(api: httpx.Client) -> None:
    marker = unique_sleep()
    job = create_job(api, shell(f"sleep {marker} & sleep {marker}; echo never"), timeout_s=1)
    run = trigger(api, job["id"])
    try:
        wait_for(lambda: len(pgrep(f"sleep {marker}")) >= 2, timeout=5)
        done = wait_state(api, run["id"], timeout=10)
        assert done["state"] == "timed_out", done
        assert "never" not in api.get(f"/v1/runs/{run['id']}/log").text
        wait_for(lambda: not pgrep(f"sleep {marker}"), timeout=5)
        started, finished = parse_ts(done["started_at"]), parse_ts(done["finished_at"])
        assert 0.9 <= (finished - started).total_seconds() < 5
        states = [e["state"] for e in history(api, run["id"])]
        assert states == ["queued", "claimed", "running", "timed_out"]
    finally:
        for pid in pgrep(f"sleep {marker}"):
            _kill(pid)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def test_retries_until_max_attempts(api: httpx.Client) -> None:
    job = create_job(
        api,
        shell('echo "attempt=$GNOMON_ATTEMPT"; exit 7'),
        retry={"max_attempts": 3, "backoff_s": 0.1, "jitter": 0},
    )
    run = trigger(api, job["id"])
    assert run["max_attempts"] == 3

    def finished() -> dict[str, Any] | None:
        r = get_run(api, run["id"])
        return r if r["state"] in FINAL and r["attempt"] == 3 else None

    done = wait_for(finished, timeout=15)
    assert done["state"] == "failed"
    assert done["exit_code"] == 7
    assert api.get(f"/v1/runs/{run['id']}/log").text == "attempt=3\n"
    steps = [(e["state"], e["attempt"]) for e in history(api, run["id"])]
    expected = []
    for n in (1, 2, 3):
        expected += [("queued", n), ("claimed", n), ("running", n), ("failed", n)]
    assert steps == expected


def test_retry_then_success(api: httpx.Client) -> None:
    job = create_job(
        api,
        shell('test "$GNOMON_ATTEMPT" -ge 2'),
        retry={"max_attempts": 5, "backoff_s": 0.1, "jitter": 0},
    )
    run = trigger(api, job["id"])
    wait_for(lambda: get_run(api, run["id"])["state"] == "succeeded", timeout=15)
    done = get_run(api, run["id"])
    assert done["attempt"] == 2
    assert [e["state"] for e in history(api, run["id"])][-2:] == ["running", "succeeded"]


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_a_queued_run(api: httpx.Client) -> None:
    job = create_job(api)
    run = trigger(api, job["id"], at=rfc3339(time.time() + 60))
    r = api.post(f"/v1/runs/{run['id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled"
    got = get_run(api, run["id"])
    assert got["state"] == "cancelled"
    assert got["finished_at"] is not None
    assert [e["state"] for e in history(api, run["id"])] == ["queued", "cancelled"]
    assert_error(api.post(f"/v1/runs/{run['id']}/cancel"), 409, "conflict")


def test_cancel_a_running_run_kills_it(api: httpx.Client) -> None:
    marker = unique_sleep()
    job = create_job(api, shell(f"echo started; sleep {marker}"))
    run = trigger(api, job["id"])
    try:
        wait_state(api, run["id"], {"running"})
        wait_for(lambda: pgrep(f"sleep {marker}"), timeout=5)
        r = api.post(f"/v1/runs/{run['id']}/cancel")
        assert r.status_code == 200, r.text
        assert r.json()["state"] in ("running", "cancelled")
        done = wait_state(api, run["id"], timeout=10)
        assert done["state"] == "cancelled"
        wait_for(lambda: not pgrep(f"sleep {marker}"), timeout=5)
        assert [e["state"] for e in history(api, run["id"])] == [
            "queued",
            "claimed",
            "running",
            "cancelled",
        ]
    finally:
        for pid in pgrep(f"sleep {marker}"):
            _kill(pid)


def test_cancel_a_finished_run_is_409(api: httpx.Client) -> None:
    job = create_job(api)
    done = wait_state(api, trigger(api, job["id"])["id"])
    assert done["state"] == "succeeded"
    assert_error(api.post(f"/v1/runs/{done['id']}/cancel"), 409, "conflict")
    assert get_run(api, done["id"])["state"] == "succeeded"


def test_cancelled_retrying_run_does_not_retry(api: httpx.Client) -> None:
    job = create_job(api, shell("exit 1"), retry={"max_attempts": 10, "backoff_s": 30, "jitter": 0})
    run = trigger(api, job["id"])
    wait_for(lambda: get_run(api, run["id"])["attempt"] == 2, timeout=10)
    assert get_run(api, run["id"])["state"] == "queued"  # waiting out its backoff
    assert api.post(f"/v1/runs/{run['id']}/cancel").json()["state"] == "cancelled"
    time.sleep(0.3)
    assert get_run(api, run["id"])["state"] == "cancelled"


# --- logs -----------------------------------------------------------------------------------


def test_log_of_a_waiting_run_is_empty(api: httpx.Client) -> None:
    job = create_job(api)
    run = trigger(api, job["id"], at=rfc3339(time.time() + 60))
    r = api.get(f"/v1/runs/{run['id']}/log")
    assert r.status_code == 200
    assert r.text == ""
    api.post(f"/v1/runs/{run['id']}/cancel")


def test_log_follow_streams_before_the_end(api: httpx.Client) -> None:
    job = create_job(api, shell("for i in 1 2 3 4 5; do echo line-$i; sleep 0.3; done"))
    run = trigger(api, job["id"])
    lines: list[str] = []
    state_at_first_line = None
    t0 = time.monotonic()
    with api.stream("GET", f"/v1/runs/{run['id']}/log", params={"follow": "true"}, timeout=10) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        for line in r.iter_lines():
            if line and state_at_first_line is None:
                state_at_first_line = get_run(api, run["id"])["state"]
            if line:
                lines.append(line)
            assert time.monotonic() - t0 < 15
    assert lines == [f"line-{i}" for i in range(1, 6)]
    assert state_at_first_line in ("claimed", "running")
    # The stream ended because the run did.
    assert get_run(api, run["id"])["state"] == "succeeded"


def test_log_follow_of_a_finished_run_returns_at_once(api: httpx.Client) -> None:
    job = create_job(api, shell("echo done"))
    done = wait_state(api, trigger(api, job["id"])["id"])
    t0 = time.monotonic()
    r = api.get(f"/v1/runs/{done['id']}/log", params={"follow": "true"}, timeout=5)
    assert r.status_code == 200
    assert r.text == "done\n"
    assert time.monotonic() - t0 < 2


# --- http -----------------------------------------------------------------------------------


class Receiver:
    """A local HTTP server that records what it receives."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                receiver.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
                status = 500 if self.path.startswith("/fail") else 200
                payload = b"pong" if status == 200 else b"boom"
                self.send_response(status)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


def test_http_action_sends_method_headers_and_body(api: httpx.Client, receiver: Receiver) -> None:
    tag = uid("hdr")
    job = create_job(
        api,
        {
            "type": "http",
            "url": f"{receiver.url}/hook?x=1",
            "method": "PUT",
            "headers": {"X-Gnomon-Test": tag},
            "body": {"hello": "world", "n": [1, 2]},
        },
    )
    done = wait_state(api, trigger(api, job["id"])["id"])
    assert done["state"] == "succeeded", done
    assert len(receiver.requests) == 1
    got = receiver.requests[0]
    assert got["method"] == "PUT"
    assert got["path"] == "/hook?x=1"
    assert got["headers"]["x-gnomon-test"] == tag
    assert got["headers"]["content-type"] == "application/json"
    assert json.loads(got["body"]) == {"hello": "world", "n": [1, 2]}
    assert "HTTP 200" in api.get(f"/v1/runs/{done['id']}/log").text


def test_http_action_string_body(api: httpx.Client, receiver: Receiver) -> None:
    job = create_job(api, {"type": "http", "url": f"{receiver.url}/plain", "body": "raw text"})
    done = wait_state(api, trigger(api, job["id"])["id"])
    assert done["state"] == "succeeded", done
    assert receiver.requests[0]["method"] == "POST"
    assert receiver.requests[0]["body"] == b"raw text"


def test_http_action_non_2xx_fails(api: httpx.Client, receiver: Receiver) -> None:
    job = create_job(api, {"type": "http", "url": f"{receiver.url}/fail", "method": "GET"})
    done = wait_state(api, trigger(api, job["id"])["id"])
    assert done["state"] == "failed", done
    assert "500" in (done["message"] or "")
    assert receiver.requests[0]["method"] == "GET"


def test_http_action_expect_status(api: httpx.Client, receiver: Receiver) -> None:
    job = create_job(api, {"type": "http", "url": f"{receiver.url}/fail", "expect_status": [500]})
    done = wait_state(api, trigger(api, job["id"])["id"])
    assert done["state"] == "succeeded", done


def test_http_action_connection_refused_fails(api: httpx.Client) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    job = create_job(api, {"type": "http", "url": f"http://127.0.0.1:{port}/"})
    done = wait_state(api, trigger(api, job["id"])["id"])
    assert done["state"] == "failed", done


# --- noop and events ------------------------------------------------------------------------


def test_noop_runs_and_events_in_order(api: httpx.Client) -> None:
    job = create_job(api, noop())
    done = wait_state(api, trigger(api, job["id"])["id"])
    assert done["state"] == "succeeded"
    assert done["exit_code"] == 0
    events = history(api, done["id"])
    assert [e["state"] for e in events] == ["queued", "claimed", "running", "succeeded"]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    ats = [e["at"] for e in events]
    assert ats == sorted(ats)
    for e in events:
        assert e["run_id"] == done["id"]
        assert e["job_id"] == job["id"]
        assert e["attempt"] == 1


def test_noop_fail(api: httpx.Client) -> None:
    job = create_job(api, noop(fail=True))
    done = wait_state(api, trigger(api, job["id"])["id"])
    assert done["state"] == "failed"


def test_task_action_on_local_executor_fails_cleanly(api: httpx.Client) -> None:
    job = create_job(api, {"type": "task", "name": "expose"})
    done = wait_state(api, trigger(api, job["id"])["id"])
    assert done["state"] == "failed"
    assert "task" in (done["message"] or "")


def test_runs_for_other_executors_stay_queued(api: httpx.Client) -> None:
    job = create_job(api, executor="site:nowhere")
    run = trigger(api, job["id"])
    time.sleep(0.5)
    assert get_run(api, run["id"])["state"] == "queued"
    assert api.post(f"/v1/runs/{run['id']}/cancel").json()["state"] == "cancelled"
