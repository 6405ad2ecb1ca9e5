"""The Cloud Foundry scheduler face over real HTTP: what the cf plugin, scripts and the Java
client do, answer by answer, field by field (and in the contract's field order)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.compat.helpers import (
    CALL_FIELDS,
    JOB_FIELDS,
    PAGINATION_FIELDS,
    ZERO,
    Tenant,
    endpoint,
    execution_fields,
    face,
    guid_of,
    is_guid,
    is_time,
    make_tenant,
    schedule_fields,
    ulid_of,
    wait_history,
    zero_call,
    zero_job,
    zero_schedule,
)
from tests.api.helpers import delete, uid
from tests.server import Server, wait_for

PREFIX = "/pcf"


@pytest.fixture(scope="module")
def tenant(server: Server) -> Tenant:
    with server.client() as admin:
        return make_tenant(admin)


@pytest.fixture(scope="module")
def other(server: Server) -> Tenant:
    with server.client() as admin:
        return make_tenant(admin)


@pytest.fixture
def dev(server: Server, tenant: Tenant) -> Iterator[httpx.Client]:
    """The cf plugin as a space developer of `tenant`."""
    with face(server.url + PREFIX, tenant.tokens["developer"]) as c:
        yield c


def find(client: httpx.Client, kind: str, space_guid: str, name: str) -> dict[str, Any]:
    """What `cf run-job NAME` does first: list the space's jobs and pick one by name."""
    r = client.get(f"/{kind}", params={"space_guid": space_guid})
    assert r.status_code == 200, r.text
    found = [j for j in r.json()["resources"] if j["name"] == name]
    assert len(found) == 1, r.json()
    return found[0]


def check_list(body: dict[str, Any], total: int) -> list[dict[str, Any]]:
    assert list(body) == ["pagination", "resources"]
    pagination = body["pagination"]
    assert list(pagination) == PAGINATION_FIELDS
    assert pagination["total_results"] == total
    assert isinstance(body["resources"], list)
    return body["resources"]


def check_job(job: dict[str, Any], tenant: Tenant, app: str, name: str, command: str) -> None:
    assert list(job) == JOB_FIELDS
    assert is_guid(job["guid"])
    assert job["name"] == name
    assert job["command"] == command
    assert job["disk_in_mb"] == 0 and job["memory_in_mb"] == 0  # none given: 0
    assert job["state"] in ("PENDING", "RUNNING", "SUCCEEDED", "FAILED")
    assert is_time(job["created_at"]) and is_time(job["updated_at"])
    assert job["app_guid"] == app
    assert job["space_guid"] == tenant.guid


def check_execution(
    execution: dict[str, Any], ref: str, owner: str, *, task: bool, schedule: str | None = None
) -> None:
    assert list(execution) == execution_fields(ref, task=task, scheduled=schedule is not None)
    assert is_guid(execution["guid"])
    assert execution[ref] == owner
    if task:
        assert is_guid(execution["task_guid"])
    if schedule is None:
        assert execution["scheduled_time"] == ZERO
    else:
        assert execution["schedule_guid"] == schedule
        assert is_time(execution["scheduled_time"])
    assert isinstance(execution["message"], str)
    assert execution["state"] in ("PENDING", "RUNNING", "SUCCEEDED", "FAILED")
    for key in ("execution_start_time", "execution_end_time"):
        assert execution[key] == ZERO or is_time(execution[key])
    if execution["state"] == "PENDING":
        assert execution["execution_start_time"] == ZERO
    if execution["state"] in ("SUCCEEDED", "FAILED"):
        assert is_time(execution["execution_start_time"])
        assert is_time(execution["execution_end_time"])
        assert execution["execution_end_time"] >= execution["execution_start_time"]
    else:
        assert execution["execution_end_time"] == ZERO


# --- the plugin's commands, in order --------------------------------------------------------


def test_health_needs_no_token(server: Server) -> None:
    r = httpx.get(server.url + PREFIX + "/")
    assert r.status_code == 200
    assert r.json() == ""


def test_job_commands_as_the_cf_plugin_runs_them(
    server: Server, dev: httpx.Client, tenant: Tenant
) -> None:
    app, name = tenant.apps[0], uid("job")

    # cf create-job APP JOB "CMD"
    r = dev.post("/jobs", params={"app_guid": app}, json=zero_job(name, "echo hello"))
    assert r.status_code == 201, r.text
    job = r.json()
    check_job(job, tenant, app, name, "echo hello")
    assert job["state"] == "PENDING"
    assert job["created_at"] == job["updated_at"]

    # cf run-job JOB
    found = find(dev, "jobs", tenant.guid, name)
    assert found == job
    r = dev.post(f"/jobs/{found['guid']}/execute")
    assert r.status_code == 201, r.text
    run = r.json()
    check_execution(run, "job_guid", job["guid"], task=True)
    assert run["state"] == "PENDING"
    assert run["message"] == ""
    assert run["execution_start_time"] == ZERO and run["execution_end_time"] == ZERO

    # cf job-history JOB
    history = wait_history(
        dev, f"/jobs/{job['guid']}/history", lambda items: items[-1]["state"] == "SUCCEEDED"
    )
    assert [e["guid"] for e in history] == [run["guid"]]
    check_execution(history[0], "job_guid", job["guid"], task=True)
    assert history[0]["task_guid"] == run["task_guid"]
    assert history[0]["scheduled_time"] == ZERO  # a manual run: cf job-history hides it

    # the job's state follows its latest execution
    got = dev.get(f"/jobs/{job['guid']}")
    assert got.status_code == 200
    assert got.json() == {**job, "state": "SUCCEEDED"}

    # cf schedule-job JOB "EXPR"
    r = dev.post(f"/jobs/{job['guid']}/schedules", json=zero_schedule("0 9 ? * MON", "job_guid"))
    assert r.status_code == 201, r.text
    schedule = r.json()
    assert list(schedule) == schedule_fields("job_guid")
    assert is_guid(schedule["guid"])
    assert schedule["enabled"] is True
    assert schedule["expression"] == "0 9 ? * MON"
    assert schedule["expression_type"] == "cron_expression"
    assert is_time(schedule["created_at"]) and is_time(schedule["updated_at"])
    assert schedule["job_guid"] == job["guid"]

    # cf job-schedules
    r = dev.get(f"/jobs/{job['guid']}/schedules")
    assert r.status_code == 200
    assert check_list(r.json(), 1) == [schedule]

    # the schedule's own history: nothing yet
    r = dev.get(f"/jobs/{job['guid']}/schedules/{schedule['guid']}/history")
    assert r.status_code == 200
    assert check_list(r.json(), 0) == []

    # cf delete-job-schedule
    r = delete(dev, f"/jobs/{job['guid']}/schedules/{schedule['guid']}")
    assert r.status_code == 204 and r.content == b""
    assert check_list(dev.get(f"/jobs/{job['guid']}/schedules").json(), 0) == []
    assert delete(dev, f"/jobs/{job['guid']}/schedules/{schedule['guid']}").status_code == 404

    # cf delete-job
    r = delete(dev, f"/jobs/{job['guid']}")
    assert r.status_code == 204 and r.content == b""
    assert dev.get(f"/jobs/{job['guid']}").status_code == 404
    assert dev.get(f"/jobs/{job['guid']}/history").status_code == 404
    assert name not in [j["name"] for j in dev.get("/jobs").json()["resources"]]


def test_call_commands_as_the_cf_plugin_runs_them(
    server: Server, dev: httpx.Client, tenant: Tenant
) -> None:
    app, name = tenant.apps[0], uid("call")
    with endpoint() as (url, hits):
        # cf create-call APP CALL URL (the plugin sends auth_header "default")
        r = dev.post("/calls", params={"app_guid": app}, json=zero_call(name, url + "/hook"))
        assert r.status_code == 201, r.text
        call = r.json()
        assert list(call) == CALL_FIELDS
        assert is_guid(call["guid"])
        assert call["name"] == name
        assert call["url"] == url + "/hook"
        assert call["auth_header"] == "default"
        assert is_time(call["created_at"]) and call["created_at"] == call["updated_at"]
        assert call["app_guid"] == app and call["space_guid"] == tenant.guid

        # cf run-call CALL
        assert find(dev, "calls", tenant.guid, name) == call
        r = dev.post(f"/calls/{call['guid']}/execute")
        assert r.status_code == 201, r.text
        run = r.json()
        check_execution(run, "call_guid", call["guid"], task=False)
        assert run["state"] == "PENDING"

        # cf call-history CALL
        history = wait_history(
            dev,
            f"/calls/{call['guid']}/history",
            lambda items: items[-1]["state"] in ("SUCCEEDED", "FAILED"),
        )
        assert len(history) == 1
        check_execution(history[0], "call_guid", call["guid"], task=False)
        assert history[0]["state"] == "SUCCEEDED"
        assert history[0]["message"] == "POST success"
        assert len(hits) == 1
        assert hits[0].method == "POST" and hits[0].path == "/hook"
        assert hits[0].headers["Authorization"] == "default"
        assert hits[0].body == b""

    assert dev.get(f"/calls/{call['guid']}").json() == call

    # cf schedule-call, call-schedules, delete-call-schedule
    r = dev.post(f"/calls/{call['guid']}/schedules", json=zero_schedule("@daily", "call_guid"))
    assert r.status_code == 201, r.text
    schedule = r.json()
    assert list(schedule) == schedule_fields("call_guid")
    assert schedule["expression"] == "@daily" and schedule["call_guid"] == call["guid"]
    assert check_list(dev.get(f"/calls/{call['guid']}/schedules").json(), 1) == [schedule]
    r = dev.get(f"/calls/{call['guid']}/schedules/{schedule['guid']}/history")
    assert check_list(r.json(), 0) == []
    assert delete(dev, f"/calls/{call['guid']}/schedules/{schedule['guid']}").status_code == 204

    # cf delete-call
    assert delete(dev, f"/calls/{call['guid']}").status_code == 204
    assert dev.get(f"/calls/{call['guid']}").status_code == 404


def test_a_call_that_fails_says_why(dev: httpx.Client, tenant: Tenant) -> None:
    with endpoint(status=500) as (url, hits):
        body = {"name": uid("call"), "url": url, "auth_header": "Bearer secret-1"}
        call = dev.post("/calls", params={"app_guid": tenant.apps[1]}, json=body).json()
        dev.post(f"/calls/{call['guid']}/execute")
        history = wait_history(
            dev,
            f"/calls/{call['guid']}/history",
            lambda items: items[-1]["state"] in ("SUCCEEDED", "FAILED"),
        )
        assert history[0]["state"] == "FAILED"
        assert history[0]["message"] == "HTTP 500 Internal Server Error"
        assert hits[0].headers["Authorization"] == "Bearer secret-1"
    assert dev.get(f"/calls/{call['guid']}").json()["auth_header"] == "Bearer secret-1"


# --- jobs: state, app context, names -------------------------------------------------------


def test_job_state_follows_its_latest_execution(
    server: Server, dev: httpx.Client, tenant: Tenant, shared_dir: Path
) -> None:
    marker = shared_dir / "ok"  # the job runs in its app's directory, as another user
    with server.client() as admin:
        r = admin.post(
            "/v1/apps", json={"name": uid("app"), "space": tenant.space, "cwd": str(shared_dir)}
        )
        assert r.status_code == 201, r.text
    body = {"name": uid("job"), "command": "test -f ok"}
    job = dev.post("/jobs", params={"app_guid": r.json()["guid"]}, json=body).json()
    assert job["state"] == "PENDING"

    dev.post(f"/jobs/{job['guid']}/execute")
    history = wait_history(
        dev, f"/jobs/{job['guid']}/history", lambda items: items[-1]["state"] == "FAILED"
    )
    assert history[-1]["message"] == "exit code 1"
    assert dev.get(f"/jobs/{job['guid']}").json()["state"] == "FAILED"

    marker.write_text("")
    dev.post(f"/jobs/{job['guid']}/execute")
    history = wait_history(
        dev,
        f"/jobs/{job['guid']}/history",
        lambda items: len(items) == 2 and items[-1]["state"] == "SUCCEEDED",
    )
    assert [e["state"] for e in history] == ["FAILED", "SUCCEEDED"]  # by start time
    assert history[0]["execution_start_time"] <= history[1]["execution_start_time"]
    assert dev.get(f"/jobs/{job['guid']}").json()["state"] == "SUCCEEDED"
    listed = find(dev, "jobs", tenant.guid, job["name"])
    assert listed["state"] == "SUCCEEDED"


def test_a_job_runs_in_its_apps_context(server: Server, tenant: Tenant, shared_dir: Path) -> None:
    with server.client() as admin:
        r = admin.post(
            "/v1/apps",
            json={
                "name": uid("app"),
                "space": tenant.space,
                "cwd": str(shared_dir),
                "env": {"APP_COLOUR": "teal"},
            },
        )
        assert r.status_code == 201, r.text
        app = r.json()
        with face(server.url + PREFIX, tenant.tokens["developer"]) as dev:
            body = {"name": uid("job"), "command": 'echo "$APP_COLOUR"; pwd'}
            job = dev.post("/jobs", params={"app_guid": app["guid"]}, json=body).json()
            run = dev.post(f"/jobs/{job['guid']}/execute").json()
            wait_history(
                dev, f"/jobs/{job['guid']}/history", lambda i: i[-1]["state"] == "SUCCEEDED"
            )
        native = admin.get(f"/v1/jobs/{ulid_of(job['guid'])}").json()
        assert native["app"] == app["guid"] and native["space"] == tenant.space
        assert native["executor"] == "local"
        log = admin.get(f"/v1/runs/{ulid_of(run['guid'])}/log").text
        assert log.split() == ["teal", str(shared_dir)]


def test_disk_and_memory_are_kept(dev: httpx.Client, tenant: Tenant) -> None:
    body = {"name": uid("job"), "command": "true", "disk_in_mb": 2048, "memory_in_mb": 512}
    r = dev.post("/jobs", params={"app_guid": tenant.apps[0]}, json=body)
    assert r.status_code == 201, r.text
    job = r.json()
    assert (job["disk_in_mb"], job["memory_in_mb"]) == (2048, 512)
    assert dev.get(f"/jobs/{job['guid']}").json() == job


def test_disk_and_memory_are_0_when_not_given(dev: httpx.Client, tenant: Tenant) -> None:
    """As the original answered (gnomon said 1024)."""
    for body in (
        {"name": uid("job"), "command": "true"},
        {"name": uid("job"), "command": "true", "disk_in_mb": None, "memory_in_mb": 0},
        zero_job(uid("job"), "true"),
    ):
        r = dev.post("/jobs", params={"app_guid": tenant.apps[0]}, json=body)
        assert r.status_code == 201, r.text
        job = r.json()
        assert (job["disk_in_mb"], job["memory_in_mb"]) == (0, 0)
        assert dev.get(f"/jobs/{job['guid']}").json() == job
    body = {"name": uid("job"), "command": "true", "memory_in_mb": 256}
    job = dev.post("/jobs", params={"app_guid": tenant.apps[0]}, json=body).json()
    assert (job["disk_in_mb"], job["memory_in_mb"]) == (0, 256)


def test_a_scheduled_execution_is_not_shown_before_its_time(
    server: Server, dev: httpx.Client, tenant: Tenant
) -> None:
    """Runs of a schedule are made a moment ahead of their slot (the scheduler's look-ahead):
    until the slot, the job's history and state do not show it (they showed a PENDING
    execution with a zero start time, a second or two early)."""
    body = {"name": uid("job"), "command": "true"}
    job = dev.post("/jobs", params={"app_guid": tenant.apps[0]}, json=body).json()
    dev.post(f"/jobs/{job['guid']}/execute")
    done = wait_history(
        dev, f"/jobs/{job['guid']}/history", lambda i: i and i[-1]["state"] == "SUCCEEDED"
    )
    slot = math.ceil(time.time()) + 5.0
    with server.client() as admin:
        at = datetime.fromtimestamp(slot, UTC).isoformat()
        r = admin.post(f"/v1/jobs/{ulid_of(job['guid'])}/schedules", json={"at": at})
        assert r.status_code == 201, r.text
        schedule = guid_of(r.json()["id"])

        def made() -> bool:
            runs = admin.get("/v1/runs", params={"job": ulid_of(job["guid"])}).json()["items"]
            return len(runs) == 2

        wait_for(made, timeout=10, interval=0.05)
    assert time.time() < slot - 0.5, "the run was made too late to tell"
    checked = 0
    while time.time() < slot - 0.3:  # made ahead of its slot: not there yet
        history = dev.get(f"/jobs/{job['guid']}/history").json()
        assert history["resources"] == done and history["pagination"]["total_results"] == 1
        assert dev.get(f"/jobs/{job['guid']}").json()["state"] == "SUCCEEDED"
        one = dev.get(f"/jobs/{job['guid']}/schedules/{schedule}/history").json()
        assert one["resources"] == [] and one["pagination"]["total_results"] == 0
        checked += 1
        time.sleep(0.1)
    assert checked
    history = wait_history(dev, f"/jobs/{job['guid']}/history", lambda i: len(i) == 2)
    assert time.time() >= slot
    check_execution(history[1], "job_guid", job["guid"], task=True, schedule=schedule)
    assert history[1]["scheduled_time"].startswith(at[:19])


def test_names_are_unique_per_app(dev: httpx.Client, tenant: Tenant) -> None:
    name = uid("job")
    for app in tenant.apps:  # the same name in two apps of one space
        r = dev.post("/jobs", params={"app_guid": app}, json={"name": name, "command": "true"})
        assert r.status_code == 201, r.text
    r = dev.post("/jobs", params={"app_guid": tenant.apps[0]}, json={"name": name, "command": "x"})
    assert r.status_code == 422 and r.json() == ""
    listed = dev.get("/jobs", params={"space_guid": tenant.guid}).json()["resources"]
    assert [j["name"] for j in listed].count(name) == 2


def test_jobs_and_calls_are_apart(dev: httpx.Client, tenant: Tenant) -> None:
    job = dev.post(
        "/jobs", params={"app_guid": tenant.apps[0]}, json={"name": uid("j"), "command": "true"}
    ).json()
    call = dev.post(
        "/calls",
        params={"app_guid": tenant.apps[0]},
        json={"name": uid("c"), "url": "http://127.0.0.1:9/", "auth_header": "x"},
    ).json()
    assert dev.get(f"/calls/{job['guid']}").status_code == 404
    assert dev.get(f"/jobs/{call['guid']}").status_code == 404
    jobs = dev.get("/jobs", params={"space_guid": tenant.guid}).json()["resources"]
    calls = dev.get("/calls", params={"space_guid": tenant.guid}).json()["resources"]
    assert job["guid"] in [j["guid"] for j in jobs]
    assert call["guid"] not in [j["guid"] for j in jobs]
    assert call["guid"] in [c["guid"] for c in calls]
    assert job["guid"] not in [c["guid"] for c in calls]


def test_native_jobs_are_not_shown(server: Server, dev: httpx.Client, tenant: Tenant) -> None:
    with server.client() as admin:
        native = admin.post(
            "/v1/jobs",
            json={"name": uid("n"), "space": tenant.space, "action": {"type": "noop"}},
        ).json()
    listed = dev.get("/jobs", params={"space_guid": tenant.guid}).json()["resources"]
    assert native["name"] not in [j["name"] for j in listed]
