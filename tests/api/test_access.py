"""Tokens, spaces and roles over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import (
    assert_error,
    create_job,
    delete,
    noop,
    space_name,
    trigger,
    uid,
    wait_state,
)
from tests.server import Server, wait_for


def new_space(api: httpx.Client) -> str:
    name = space_name()
    r = api.post("/v1/spaces", json={"name": name})
    assert r.status_code == 201, r.text
    return name


def new_token(api: httpx.Client, **spec: Any) -> dict[str, Any]:
    r = api.post("/v1/tokens", json={"name": uid("tok"), **spec})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def anon(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


# --- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer gn_not-a-real-token"},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "gn_no_scheme"},
    ],
)
def test_401_without_a_valid_token(anon: httpx.Client, headers: dict[str, str]) -> None:
    for method, path in [
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("GET", "/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        ("GET", "/v1/tokens"),
        ("GET", "/v1/whoami"),
    ]:
        r = anon.request(method, path, headers=headers, json={} if method == "POST" else None)
        assert_error(r, 401, "unauthorized")


def test_public_routes_need_no_token(anon: httpx.Client) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert anon.get(path).status_code == 200, path


def test_whoami(api: httpx.Client) -> None:
    me = api.get("/v1/whoami").json()
    assert me["admin"] is True
    assert me["name"] == "admin"


# --- spaces and tokens ----------------------------------------------------------------------


def test_admin_creates_a_space(api: httpx.Client) -> None:
    name = space_name()
    r = api.post("/v1/spaces", json={"name": name, "timezone": "Europe/Berlin"})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == name
    assert r.json()["timezone"] == "Europe/Berlin"
    assert r.json()["members"] == []
    got = api.get(f"/v1/spaces/{name}").json()
    assert got["name"] == name and got["members"] == []
    assert name in [s["name"] for s in api.get("/v1/spaces").json()["items"]]
    assert "default" in [s["name"] for s in api.get("/v1/spaces").json()["items"]]
    assert_error(api.post("/v1/spaces", json={"name": name}), 409, "conflict")
    assert_error(api.post("/v1/spaces", json={"name": "Has Spaces"}), 422, field="name")
    bad_tz = api.post("/v1/spaces", json={"name": space_name(), "timezone": "Nowhere/Land"})
    assert_error(bad_tz, 422, field="timezone")
    assert_error(api.get(f"/v1/spaces/{space_name('missing')}"), 404, "not_found")


def test_token_secret_is_shown_once(api: httpx.Client, server: Server) -> None:
    space = new_space(api)
    tok = new_token(api, roles={space: "developer"})
    assert tok["token"].startswith("gn_")
    assert tok["roles"] == {space: "developer"}
    assert tok["admin"] is False
    assert tok["revoked_at"] is None
    listed = {t["id"]: t for t in api.get("/v1/tokens").json()["items"]}
    assert tok["id"] in listed
    entry = listed[tok["id"]]
    assert "token" not in entry and "hash" not in entry
    assert tok["token"] not in str(listed)
    assert entry["roles"] == {space: "developer"}
    members = api.get(f"/v1/spaces/{space}").json()["members"]
    assert members == [{"token_id": tok["id"], "name": tok["name"], "role": "developer"}]
    with server.client(tok["token"]) as dev:
        me = dev.get("/v1/whoami").json()
        assert me["token_id"] == tok["id"]
        assert me["admin"] is False
        assert me["roles"] == {space: "developer"}


def test_token_validation(api: httpx.Client) -> None:
    assert_error(api.post("/v1/tokens", json={"name": uid()}), 422, field="roles")
    space = new_space(api)
    r = api.post("/v1/tokens", json={"name": uid(), "roles": {space: "owner"}})
    assert_error(r, 422, "invalid")
    r = api.post("/v1/tokens", json={"name": uid(), "roles": {space_name("nope"): "viewer"}})
    assert_error(r, 404, "not_found")
    assert_error(api.post("/v1/tokens", json={"roles": {space: "viewer"}}), 422, field="name")


def test_developer_token_is_confined_to_its_space(api: httpx.Client, server: Server) -> None:
    space = new_space(api)
    tok = new_token(api, roles={space: "developer"})
    foreign = create_job(api)  # in `default`
    foreign_run = trigger(api, foreign["id"])
    with server.client(tok["token"]) as dev:
        # Its own space: full developer rights.
        r = dev.post("/v1/jobs", json={"name": uid(), "action": noop(), "space": space})
        assert r.status_code == 201, r.text
        own = r.json()
        assert own["space"] == space
        run = dev.post(f"/v1/jobs/{own['id']}/runs")
        assert run.status_code == 201, run.text
        assert wait_state(dev, run.json()["id"])["state"] == "succeeded"
        assert dev.patch(f"/v1/jobs/{own['id']}", json={"timeout_s": 5}).status_code == 200
        listed = dev.get("/v1/jobs").json()["items"]
        assert listed and {j["space"] for j in listed} == {space}
        runs = dev.get("/v1/runs").json()["items"]
        assert runs and {r["space"] for r in runs} == {space}
        assert [s["name"] for s in dev.get("/v1/spaces").json()["items"]] == [space]

        # Other spaces: 403 (with the envelope), reads and writes alike.
        assert_error(dev.get(f"/v1/jobs/{foreign['id']}"), 403, "forbidden")
        assert_error(dev.patch(f"/v1/jobs/{foreign['id']}", json={"timeout_s": 5}), 403)
        assert_error(delete(dev, f"/v1/jobs/{foreign['id']}"), 403, "forbidden")
        assert_error(dev.post(f"/v1/jobs/{foreign['id']}/runs"), 403, "forbidden")
        assert_error(dev.get(f"/v1/runs/{foreign_run['id']}"), 403, "forbidden")
        assert_error(dev.post(f"/v1/runs/{foreign_run['id']}/cancel"), 403, "forbidden")
        assert_error(dev.get(f"/v1/runs/{foreign_run['id']}/log"), 403, "forbidden")
        assert_error(dev.get("/v1/jobs", params={"space": "default"}), 403, "forbidden")
        assert_error(dev.get("/v1/runs", params={"space": "default"}), 403, "forbidden")
        assert_error(dev.get("/v1/spaces/default"), 403, "forbidden")
        r = dev.post("/v1/jobs", json={"name": uid(), "action": noop()})  # default space
        assert_error(r, 403, "forbidden")
        r = dev.post("/v1/runs:batch", json={"job": foreign["id"], "runs": [{}]})
        assert_error(r, 403, "forbidden")
        r = dev.post(f"/v1/jobs/{foreign['id']}/schedules", json={"every": "1h"})
        assert_error(r, 403, "forbidden")

        # Admin-only and manager-only routes.
        assert_error(dev.post("/v1/spaces", json={"name": space_name()}), 403, "forbidden")
        assert_error(dev.get("/v1/tokens"), 403, "forbidden")
        r = dev.post("/v1/tokens", json={"name": uid(), "admin": True})
        assert_error(r, 403, "forbidden")
        r = dev.post("/v1/tokens", json={"name": uid(), "roles": {space: "viewer"}})
        assert_error(r, 403, "forbidden")
        assert_error(delete(dev, f"/v1/tokens/{tok['id']}"), 403, "forbidden")
        r = dev.put(f"/v1/spaces/{space}/members/{tok['id']}", json={"role": "manager"})
        assert_error(r, 403, "forbidden")
    wait_state(api, foreign_run["id"])


def test_viewer_reads_but_cannot_write(api: httpx.Client, server: Server) -> None:
    space = new_space(api)
    job = create_job(api, space=space)
    run = trigger(api, job["id"])
    tok = new_token(api, roles={space: "viewer"})
    with server.client(tok["token"]) as viewer:
        assert viewer.get(f"/v1/jobs/{job['id']}").status_code == 200
        assert viewer.get("/v1/jobs", params={"space": space}).status_code == 200
        assert viewer.get(f"/v1/runs/{run['id']}").status_code == 200
        r = viewer.post("/v1/jobs", json={"name": uid(), "action": noop(), "space": space})
        assert_error(r, 403, "forbidden")
        assert_error(viewer.post(f"/v1/jobs/{job['id']}/runs"), 403, "forbidden")
        assert_error(viewer.patch(f"/v1/jobs/{job['id']}", json={"timeout_s": 1}), 403)
        assert_error(delete(viewer, f"/v1/jobs/{job['id']}"), 403, "forbidden")
        r = viewer.post(f"/v1/jobs/{job['id']}/schedules", json={"every": "1h"})
        assert_error(r, 403, "forbidden")
    wait_state(api, run["id"])
    assert api.get(f"/v1/jobs/{job['id']}").status_code == 200


def test_manager_manages_tokens_of_its_space(api: httpx.Client, server: Server) -> None:
    space = new_space(api)
    other = new_space(api)
    boss = new_token(api, roles={space: "manager"})
    with server.client(boss["token"]) as mgr:
        made = mgr.post("/v1/tokens", json={"name": uid(), "roles": {space: "viewer"}})
        assert made.status_code == 201, made.text
        viewer = made.json()
        listed = [t["id"] for t in mgr.get("/v1/tokens").json()["items"]]
        assert viewer["id"] in listed and boss["id"] in listed
        r = mgr.post("/v1/tokens", json={"name": uid(), "roles": {other: "viewer"}})
        assert_error(r, 403, "forbidden")

        # Promote the viewer to developer: it may now create jobs.
        r = mgr.put(f"/v1/spaces/{space}/members/{viewer['id']}", json={"role": "developer"})
        assert r.status_code == 200, r.text
        roles = {m["token_id"]: m["role"] for m in r.json()["members"]}
        assert roles == {boss["id"]: "manager", viewer["id"]: "developer"}
        with server.client(viewer["token"]) as dev:
            body = {"name": uid(), "action": noop(), "space": space}
            wait_for(lambda: dev.post("/v1/jobs", json=body).status_code == 201, timeout=2)

            # Remove the membership: the token sees nothing of the space any more.
            r = delete(mgr, f"/v1/spaces/{space}/members/{viewer['id']}")
            assert r.status_code == 204
            wait_for(lambda: dev.get("/v1/jobs", params={"space": space}).status_code == 403, 2)
        members = api.get(f"/v1/spaces/{space}").json()["members"]
        assert [m["token_id"] for m in members] == [boss["id"]]


def test_a_manager_cannot_take_in_another_spaces_token(api: httpx.Client, server: Server) -> None:
    """A's manager may not add B's token to A (B's manager could then no longer revoke it);
    a token of spaces they manage, or a member changing role, is theirs to place."""
    a, b = new_space(api), new_space(api)
    boss_a = new_token(api, roles={a: "manager"})
    other = new_token(api, roles={b: "manager"})
    stranger = new_token(api, roles={b: "developer"})
    both = new_token(api, roles={a: "manager", b: "manager"})
    admin_token = new_token(api, admin=True)
    with server.client(boss_a["token"]) as mgr:
        r = mgr.put(f"/v1/spaces/{a}/members/{stranger['id']}", json={"role": "viewer"})
        assert_error(r, 403, "forbidden")
        r = mgr.put(f"/v1/spaces/{a}/members/{admin_token['id']}", json={"role": "viewer"})
        assert_error(r, 403, "forbidden")
        own = mgr.post("/v1/tokens", json={"name": uid(), "roles": {a: "viewer"}}).json()
        r = mgr.put(f"/v1/spaces/{a}/members/{own['id']}", json={"role": "developer"})
        assert r.status_code == 200, r.text
    with server.client(both["token"]) as mgr:  # manages A and B: may bring B's token to A
        r = mgr.put(f"/v1/spaces/{a}/members/{stranger['id']}", json={"role": "viewer"})
        assert r.status_code == 200, r.text
    r = api.put(f"/v1/spaces/{a}/members/{other['id']}", json={"role": "viewer"})
    assert r.status_code == 200, r.text  # an admin places any token


def test_revoked_token_gets_401(api: httpx.Client, server: Server) -> None:
    space = new_space(api)
    tok = new_token(api, roles={space: "developer"})
    with server.client(tok["token"]) as dev:
        assert dev.get("/v1/jobs").status_code == 200
        r = delete(api, f"/v1/tokens/{tok['id']}")
        assert r.status_code == 204
        wait_for(lambda: dev.get("/v1/jobs").status_code == 401, timeout=1.0)
        assert_error(dev.get("/v1/jobs"), 401, "unauthorized")
        assert_error(dev.get("/v1/whoami"), 401, "unauthorized")
    listed = {t["id"]: t for t in api.get("/v1/tokens").json()["items"]}
    if tok["id"] in listed:
        assert listed[tok["id"]]["revoked_at"] is not None
    assert_error(delete(api, "/v1/tokens/01ARZ3NDEKTSV4RRFFQ69G5FAV"), 404, "not_found")


def test_admin_can_mint_another_admin(api: httpx.Client, server: Server) -> None:
    tok = new_token(api, admin=True)
    assert tok["admin"] is True
    with server.client(tok["token"]) as other:
        assert other.post("/v1/spaces", json={"name": space_name()}).status_code == 201
    assert delete(api, f"/v1/tokens/{tok['id']}").status_code == 204
