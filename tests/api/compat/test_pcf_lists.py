"""The Cloud Foundry scheduler face: numbered pages, schedules in the cron dialect and the
space's time zone, and what deleting leaves behind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.api.compat.helpers import (
    PAGINATION_FIELDS,
    Tenant,
    face,
    make_tenant,
    ulid_of,
    wait_history,
)
from tests.api.helpers import delete, parse_ts, uid
from tests.server import Server

PREFIX = "/pcf"


@pytest.fixture(scope="module")
def tenant(server: Server) -> Tenant:
    with server.client() as admin:
        return make_tenant(admin, timezone="Europe/Berlin")


@pytest.fixture
def dev(server: Server, tenant: Tenant) -> Iterator[httpx.Client]:
    with face(server.url + PREFIX, tenant.tokens["developer"]) as c:
        yield c


def new_job(dev: httpx.Client, app: str, name: str | None = None, command: str = "true") -> dict:
    r = dev.post(
        "/jobs", params={"app_guid": app}, json={"name": name or uid("job"), "command": command}
    )
    assert r.status_code == 201, r.text
    return r.json()


def schedule(dev: httpx.Client, job: dict[str, Any], expression: str) -> httpx.Response:
    body = {"enabled": True, "expression": expression, "expression_type": "cron_expression"}
    return dev.post(f"/jobs/{job['guid']}/schedules", json=body)


def query(href: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(href).query)


# --- pages ----------------------------------------------------------------------------------


def test_pages_are_real(server: Server, tenant: Tenant) -> None:
    with server.client() as admin:
        fresh = make_tenant(admin)
    with face(server.url + PREFIX, fresh.tokens["developer"]) as dev:
        empty = dev.get("/jobs", params={"space_guid": fresh.guid}).json()
        assert empty["resources"] == []
        assert empty["pagination"]["total_results"] == 0
        assert empty["pagination"]["total_pages"] == 1
        assert empty["pagination"]["next"] is None and empty["pagination"]["previous"] is None

        names = [f"b-{uid()}", f"c-{uid()}", f"a-{uid()}"]
        for name in names:
            new_job(dev, fresh.apps[0], name)
        r = dev.get("/jobs", params={"space_guid": fresh.guid, "per_page": 2})
        assert r.status_code == 200
        first = r.json()
        pagination = first["pagination"]
        assert list(pagination) == PAGINATION_FIELDS
        assert (pagination["total_pages"], pagination["total_results"]) == (2, 3)
        assert [j["name"] for j in first["resources"]] == sorted(names)[:2]  # by name
        assert pagination["previous"] is None
        for key, page in (("first", "1"), ("last", "2"), ("next", "2")):
            href = pagination[key]["href"]
            assert href.startswith(f"{server.url}{PREFIX}/jobs?"), href
            assert query(href) == {"space_guid": [fresh.guid], "page": [page], "per_page": ["2"]}

        second = httpx.get(pagination["next"]["href"], headers=dev.headers).json()
        assert [j["name"] for j in second["resources"]] == sorted(names)[2:]
        assert second["pagination"]["next"] is None
        assert query(second["pagination"]["previous"]["href"])["page"] == ["1"]
        beyond = dev.get("/jobs", params={"space_guid": fresh.guid, "page": 9}).json()
        assert beyond["resources"] == [] and beyond["pagination"]["total_results"] == 3


def test_space_guid_filters_and_a_space_name_is_accepted(
    server: Server, dev: httpx.Client, tenant: Tenant
) -> None:
    job = new_job(dev, tenant.apps[0])
    by_guid = dev.get("/jobs", params={"space_guid": tenant.guid}).json()["resources"]
    by_name = dev.get("/jobs", params={"space_guid": tenant.space}).json()["resources"]
    everywhere = dev.get("/jobs").json()["resources"]
    assert job in by_guid and by_guid == by_name == everywhere
    assert {j["space_guid"] for j in by_guid} == {tenant.guid}
    unknown = dev.get("/jobs", params={"space_guid": "0b9e1a3c-0000-4000-8000-000000000000"})
    assert unknown.status_code == 200 and unknown.json()["resources"] == []


def test_history_pages(dev: httpx.Client, tenant: Tenant) -> None:
    job = new_job(dev, tenant.apps[1])
    runs = [dev.post(f"/jobs/{job['guid']}/execute").json()["guid"] for _ in range(3)]
    wait_history(
        dev,
        f"/jobs/{job['guid']}/history",
        lambda items: len(items) == 3 and all(e["state"] == "SUCCEEDED" for e in items),
    )
    one = dev.get(f"/jobs/{job['guid']}/history", params={"per_page": 1, "page": 2}).json()
    assert one["pagination"]["total_results"] == 3 and one["pagination"]["total_pages"] == 3
    assert len(one["resources"]) == 1
    every = dev.get(f"/jobs/{job['guid']}/history").json()["resources"]
    assert sorted(e["guid"] for e in every) == sorted(runs)
    starts = [e["execution_start_time"] for e in every]
    assert starts == sorted(starts)  # by start time
    assert one["resources"][0] == every[1]


# --- schedules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "*/5 * * * *",
        "0 9 ? * MON-FRI",
        "0 0 1 JAN ?",
        "30 12 * * 0",
        "0 0 L * ?",
        "@hourly",
        "@daily",
        "@weekly",
        "@monthly",
        "@yearly",
    ],
)
def test_the_cron_dialect(dev: httpx.Client, tenant: Tenant, expression: str) -> None:
    r = schedule(dev, new_job(dev, tenant.apps[0]), expression)
    assert r.status_code == 201, r.text
    assert r.json()["expression"] == expression


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 * * * ?",  # six fields (Quartz seconds)
        "0 0 12 * * ? 2030",  # seven fields
        "* * * *",
        "61 * * * *",
        "* 24 * * *",
        "* * * 13 *",
        "* * * * 8",
        "? * * * *",
        "@reboot",
        "@often",
        "every minute",
        "",
        "H * * * *",
    ],
)
def test_other_expressions_are_422(dev: httpx.Client, tenant: Tenant, expression: str) -> None:
    r = schedule(dev, new_job(dev, tenant.apps[0]), expression)
    assert r.status_code == 422 and r.json() == ""


def test_expression_type_must_be_cron(dev: httpx.Client, tenant: Tenant) -> None:
    job = new_job(dev, tenant.apps[0])
    for kind in ("rate", "", None, 1):
        body = {"enabled": True, "expression": "* * * * *", "expression_type": kind}
        r = dev.post(f"/jobs/{job['guid']}/schedules", json=body)
        assert r.status_code == 422 and r.json() == "", kind


def test_schedules_are_in_the_spaces_time_zone(
    server: Server, dev: httpx.Client, tenant: Tenant
) -> None:
    """Sunday is 0, and times are those of the space's zone (Europe/Berlin here)."""
    made = schedule(dev, new_job(dev, tenant.apps[0]), "30 12 * * 0").json()
    with server.client() as admin:
        sid = ulid_of(made["guid"])
        native = admin.get(f"/v1/schedules/{sid}").json()
        assert native["timezone"] == "Europe/Berlin" and native["cron"] == "30 12 * * 0"
        times = admin.get(f"/v1/schedules/{sid}/next", params={"n": 3}).json()["times"]
    berlin = [parse_ts(t).astimezone(ZoneInfo("Europe/Berlin")) for t in times]
    assert all(t.weekday() == 6 and (t.hour, t.minute) == (12, 30) for t in berlin), berlin


def test_utc_when_the_space_sets_no_zone(server: Server) -> None:
    with server.client() as admin:
        utc = make_tenant(admin)
        with face(server.url + PREFIX, utc.tokens["developer"]) as dev:
            made = schedule(dev, new_job(dev, utc.apps[0]), "0 6 * * *").json()
        native = admin.get(f"/v1/schedules/{ulid_of(made['guid'])}").json()
        assert native["timezone"] == "UTC"
        first = admin.get(f"/v1/schedules/{native['id']}/next", params={"n": 1}).json()["times"][0]
    assert parse_ts(first).hour == 6


def test_a_disabled_schedule_never_fires(server: Server, dev: httpx.Client, tenant: Tenant) -> None:
    job = new_job(dev, tenant.apps[0])
    body = {"enabled": False, "expression": "* * * * *", "expression_type": "cron_expression"}
    made = dev.post(f"/jobs/{job['guid']}/schedules", json=body).json()
    assert made["enabled"] is False
    with server.client() as admin:
        sid = ulid_of(made["guid"])
        assert admin.get(f"/v1/schedules/{sid}/next").json()["times"] == []


def test_a_schedule_of_another_job_is_404(dev: httpx.Client, tenant: Tenant) -> None:
    a, b = new_job(dev, tenant.apps[0]), new_job(dev, tenant.apps[0])
    s = schedule(dev, a, "@daily").json()
    assert delete(dev, f"/jobs/{b['guid']}/schedules/{s['guid']}").status_code == 404
    assert dev.get(f"/jobs/{b['guid']}/schedules/{s['guid']}/history").status_code == 404
    assert dev.get(f"/jobs/{a['guid']}/schedules/{s['guid']}/history").status_code == 200


# --- deleting -------------------------------------------------------------------------------


def test_deleting_a_job_stops_its_schedules_and_keeps_its_ledger(
    server: Server, dev: httpx.Client, tenant: Tenant
) -> None:
    job = new_job(dev, tenant.apps[0])
    s = schedule(dev, job, "* * * * *").json()
    run = dev.post(f"/jobs/{job['guid']}/execute").json()
    wait_history(dev, f"/jobs/{job['guid']}/history", lambda i: i[-1]["state"] == "SUCCEEDED")
    assert delete(dev, f"/jobs/{job['guid']}").status_code == 204
    deleted = time.time()
    assert dev.get(f"/jobs/{job['guid']}/schedules").status_code == 404
    assert delete(dev, f"/jobs/{job['guid']}").status_code == 404
    with server.client() as admin:
        assert admin.get(f"/v1/schedules/{ulid_of(s['guid'])}").status_code == 404
        kept = admin.get(f"/v1/runs/{ulid_of(run['guid'])}")
        assert kept.status_code == 200 and kept.json()["state"] == "succeeded"
        left = admin.get("/v1/runs", params={"job": ulid_of(job["guid"])}).json()["items"]
    assert [r["id"] for r in left if r["schedule_id"] is None] == [ulid_of(run["guid"])]
    for r in left:  # a slot that came before the delete may have fired; none after it
        if r["schedule_id"] is not None:
            late = parse_ts(r["scheduled_for"]).timestamp() > deleted
            assert not late or r["state"] == "cancelled", r


def test_an_app_with_jobs_cannot_be_deleted(server: Server, tenant: Tenant) -> None:
    with server.client() as admin:
        app = admin.post("/v1/apps", json={"name": uid("app"), "space": tenant.space}).json()
        with face(server.url + PREFIX, tenant.tokens["developer"]) as dev:
            job = new_job(dev, app["guid"])
            assert admin.delete(f"/v1/apps/{app['guid']}").status_code == 409
            assert delete(dev, f"/jobs/{job['guid']}").status_code == 204
        assert admin.delete(f"/v1/apps/{app['guid']}").status_code == 204
        with face(server.url + PREFIX, tenant.tokens["developer"]) as dev:
            r = dev.post(
                "/jobs", params={"app_guid": app["guid"]}, json={"name": "x", "command": "y"}
            )
            assert r.status_code == 422


def test_times_are_rfc3339_utc(dev: httpx.Client, tenant: Tenant) -> None:
    job = new_job(dev, tenant.apps[0])
    created = datetime.fromisoformat(job["created_at"].replace("Z", "+00:00"))
    assert created.utcoffset() is not None and created.utcoffset().total_seconds() == 0
