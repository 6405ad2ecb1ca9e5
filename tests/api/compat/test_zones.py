"""One rule for every face: a schedule made without a time zone means its space's zone (UTC
unless the space was given one); a zone given explicitly is kept, whichever face made it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.compat.helpers import face, make_tenant, ulid_of
from tests.api.helpers import create_job, noop, uid
from tests.server import Server

CRON = "30 12 * * *"


def native(admin: httpx.Client, space: str, **fields: Any) -> dict[str, Any]:
    job = create_job(admin, noop(), space=space)
    r = admin.post(f"/v1/jobs/{job['id']}/schedules", json={"cron": CRON, **fields})
    assert r.status_code == 201, r.text
    return r.json()


def pcf(server: Server, admin: httpx.Client, tenant: Any) -> dict[str, Any]:
    with face(server.url + "/pcf", tenant.tokens["developer"]) as dev:
        r = dev.post(
            "/jobs", params={"app_guid": tenant.apps[0]}, json={"name": uid(), "command": "true"}
        )
        assert r.status_code == 201, r.text
        body = {"enabled": False, "expression": CRON, "expression_type": "cron_expression"}
        r = dev.post(f"/jobs/{r.json()['guid']}/schedules", json=body)
        assert r.status_code == 201, r.text
    return admin.get(f"/v1/schedules/{ulid_of(r.json()['guid'])}").json()


@pytest.mark.parametrize("zone", ["Europe/Berlin", "UTC"])
def test_every_face_gives_a_schedule_its_spaces_zone(server: Server, zone: str) -> None:
    with server.client() as admin:
        tenant = make_tenant(admin, timezone=zone)
        assert native(admin, tenant.space)["timezone"] == zone
        assert pcf(server, admin, tenant)["timezone"] == zone


def test_an_explicit_zone_is_kept(server: Server) -> None:
    with server.client() as admin:
        tenant = make_tenant(admin, timezone="Europe/Berlin")
        made = native(admin, tenant.space, timezone="UTC")
        assert made["timezone"] == "UTC"
        assert native(admin, tenant.space, timezone="Asia/Tokyo")["timezone"] == "Asia/Tokyo"
        r = admin.post(
            f"/v1/jobs/{made['job_id']}/schedules", json={"cron": CRON, "timezone": "Nowhere/X"}
        )
        assert r.status_code == 422 and "timezone" in r.text
