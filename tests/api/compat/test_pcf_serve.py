"""Where the Cloud Foundry scheduler face is served (a prefix of choice, the root of its own
hosts), and a cron schedule firing for real. One SQLite server with its own settings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.api.compat.helpers import (
    Tenant,
    execution_fields,
    face,
    make_tenant,
    wait_history,
)
from tests.api.helpers import assert_error, parse_ts, uid
from tests.server import Server

HOST = "scheduler.sys.example.test"
PREFIX = "/cf-scheduler"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(
        tmp_path_factory.mktemp("pcf-serve"),
        GNOMON_PCF_PREFIX=PREFIX,
        GNOMON_PCF_HOSTS=f"other.example.test, {HOST.upper()}",
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tenant(srv: Server) -> Tenant:
    with srv.client() as admin:
        return make_tenant(admin)


@pytest.fixture(scope="module")
def minutely(srv: Server, tenant: Tenant) -> dict[str, Any]:
    """A job on `* * * * *`, made first so its minute passes while the other tests run."""
    with face(srv.url + PREFIX, tenant.tokens["developer"]) as dev:
        job = dev.post(
            "/jobs", params={"app_guid": tenant.apps[0]}, json={"name": uid(), "command": "true"}
        ).json()
        body = {"enabled": True, "expression": "* * * * *", "expression_type": "cron_expression"}
        r = dev.post(f"/jobs/{job['guid']}/schedules", json=body)
        assert r.status_code == 201, r.text
    return {"job": job, "schedule": r.json(), "made": time.time()}


def test_the_face_at_a_prefix_of_choice(srv: Server, tenant: Tenant, minutely: Any) -> None:
    with face(srv.url + PREFIX, tenant.tokens["viewer"]) as viewer:
        r = viewer.get("/jobs", params={"space_guid": tenant.guid})
        assert r.status_code == 200
        assert minutely["job"]["guid"] in [j["guid"] for j in r.json()["resources"]]
        assert r.json()["pagination"]["first"]["href"].startswith(f"{srv.url}{PREFIX}/jobs?")
        assert viewer.get("/").status_code == 200
    with srv.client() as admin:
        assert_error(admin.get("/pcf/jobs"), 404)  # the default prefix is not served here
        assert admin.get("/v1/apps").status_code == 200


@pytest.mark.parametrize("host", [HOST, f"{HOST}:443", HOST.upper(), "other.example.test"])
def test_the_face_at_the_root_of_its_hosts(
    srv: Server, tenant: Tenant, minutely: Any, host: str
) -> None:
    """The cf plugin calls /jobs at the root of scheduler.<system domain>."""
    headers = {"Host": host, "Authorization": f"Bearer {tenant.tokens['developer']}"}
    with httpx.Client(base_url=srv.url, headers=headers, timeout=30) as plugin:
        assert plugin.get("/").status_code == 200
        r = plugin.get("/jobs", params={"space_guid": tenant.guid})
        assert r.status_code == 200, r.text
        jobs = r.json()
        assert minutely["job"]["guid"] in [j["guid"] for j in jobs["resources"]]
        href = jobs["pagination"]["first"]["href"]
        assert href.lower().startswith(f"http://{host.lower()}/jobs?"), href
        r = plugin.get(f"/jobs/{minutely['job']['guid']}")
        assert r.status_code == 200
        r = plugin.get("/v1/jobs")  # that host is the face's alone
        assert r.status_code == 404 and r.json() == ""
        assert plugin.get("/jobs", headers={"Authorization": ""}).status_code == 401


def test_other_hosts_get_the_native_api(srv: Server) -> None:
    with srv.client() as admin:
        assert admin.get("/jobs").status_code == 404
        assert admin.get("/v1/jobs", headers={"Host": "gnomon.example.test"}).status_code == 200


def test_a_minutely_schedule_fires_on_the_minute(
    srv: Server, tenant: Tenant, minutely: dict[str, Any]
) -> None:
    """Runs last in this module: waits for the first minute after the schedule was made."""
    job, schedule = minutely["job"], minutely["schedule"]
    with face(srv.url + PREFIX, tenant.tokens["developer"]) as dev:
        path = f"/jobs/{job['guid']}/schedules/{schedule['guid']}/history"
        fired = wait_history(
            dev, path, lambda items: any(e["state"] == "SUCCEEDED" for e in items), timeout=75
        )
        first = next(e for e in fired if e["state"] == "SUCCEEDED")
        assert list(first) == execution_fields("job_guid", task=True, scheduled=True)
        assert first["schedule_guid"] == schedule["guid"] and first["job_guid"] == job["guid"]
        slot = parse_ts(first["scheduled_time"])
        assert (slot.second, slot.microsecond) == (0, 0)
        assert slot.timestamp() > minutely["made"]
        assert slot <= parse_ts(first["execution_start_time"])
        assert first["execution_start_time"] < first["execution_end_time"]
        assert (parse_ts(first["execution_start_time"]) - slot).total_seconds() < 10
        everything = dev.get(f"/jobs/{job['guid']}/history").json()["resources"]
        assert first["guid"] in [e["guid"] for e in everything]
        assert dev.get(f"/jobs/{job['guid']}").json()["state"] in (
            "SUCCEEDED",
            "PENDING",
            "RUNNING",
        )
        assert slot < datetime.now(UTC)
