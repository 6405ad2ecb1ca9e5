"""The Cloud Foundry scheduler face refuses: no token (401), another space's objects (401 on
every route), writes by a viewer (401), and bad input on every route (a 4xx, never a 5xx) —
always with the body `""`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.compat.helpers import Tenant, face, make_tenant
from tests.api.helpers import uid
from tests.server import Server

PREFIX = "/pcf"
NOWHERE = "0b9e1a3c-0000-4000-8000-000000000000"


@dataclass
class World:
    tenant: Tenant
    other: Tenant
    refs: dict[str, str]


@pytest.fixture(scope="module")
def world(server: Server) -> World:
    """A job and a call with a schedule each, in `tenant`; `other` is a second space."""
    with server.client() as admin:
        tenant, other = make_tenant(admin), make_tenant(admin)
    refs = {"app": tenant.apps[0]}
    with face(server.url + PREFIX, tenant.tokens["developer"]) as dev:
        for kind, body in (
            ("jobs", {"name": uid("job"), "command": "true"}),
            ("calls", {"name": uid("call"), "url": "http://127.0.0.1:9/", "auth_header": "x"}),
        ):
            made = dev.post(f"/{kind}", params={"app_guid": refs["app"]}, json=body)
            assert made.status_code == 201, made.text
            refs[kind] = made.json()["guid"]
            sched = dev.post(
                f"/{kind}/{refs[kind]}/schedules",
                json={
                    "enabled": True,
                    "expression": "@yearly",
                    "expression_type": "cron_expression",
                },
            )
            assert sched.status_code == 201, sched.text
            refs[f"{kind}-schedule"] = sched.json()["guid"]
    return World(tenant, other, refs)


def routes(world: World, kind: str) -> list[tuple[str, str, dict[str, Any], bool]]:
    """(method, path, request options, writes) for the ten routes of `kind`."""
    g, s = world.refs[kind], world.refs[f"{kind}-schedule"]
    body = (
        {"name": uid(), "command": "true"}
        if kind == "jobs"
        else {"name": uid(), "url": "http://127.0.0.1:9/", "auth_header": "x"}
    )
    cron = {"enabled": True, "expression": "@daily", "expression_type": "cron_expression"}
    space = {"params": {"space_guid": world.tenant.guid}}
    return [
        ("GET", f"/{kind}", space, False),
        ("POST", f"/{kind}", {"params": {"app_guid": world.refs["app"]}, "json": body}, True),
        ("GET", f"/{kind}/{g}", {}, False),
        ("DELETE", f"/{kind}/{g}", {}, True),
        ("POST", f"/{kind}/{g}/execute", {}, True),
        ("GET", f"/{kind}/{g}/history", {}, False),
        ("GET", f"/{kind}/{g}/schedules", {}, False),
        ("POST", f"/{kind}/{g}/schedules", {"json": cron}, True),
        ("DELETE", f"/{kind}/{g}/schedules/{s}", {}, True),
        ("GET", f"/{kind}/{g}/schedules/{s}/history", {}, False),
    ]


def blank(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, (r.request.method, r.request.url, r.status_code, r.text)
    assert r.content == b'""', r.content
    assert r.headers["content-type"] == "application/json"


@pytest.mark.parametrize("kind", ["jobs", "calls"])
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer gn_nobody", "Basic dXNlcjpwdw==", "gn_token"],
)
def test_every_route_needs_a_token(
    server: Server, world: World, kind: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with httpx.Client(base_url=server.url + PREFIX, headers=headers, timeout=30) as anon:
        for method, path, options, _ in routes(world, kind):
            blank(anon.request(method, path, **options), 401)


def test_the_scheme_is_read_as_cf_writes_it(server: Server, world: World) -> None:
    """~/.cf/config.json keeps the token as 'bearer …', lower case."""
    token = world.tenant.tokens["viewer"]
    r = httpx.get(
        f"{server.url}{PREFIX}/jobs/{world.refs['jobs']}",
        headers={"Authorization": f"bearer {token}"},
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("kind", ["jobs", "calls"])
@pytest.mark.parametrize("role", ["viewer", "developer", "manager"])
def test_another_space_is_refused_on_every_route(
    server: Server, world: World, kind: str, role: str
) -> None:
    with face(server.url + PREFIX, world.other.tokens[role]) as stranger:
        for method, path, options, _ in routes(world, kind):
            blank(stranger.request(method, path, **options), 401)
        mine = stranger.get(f"/{kind}").json()["resources"]
        assert world.refs[kind] not in [j["guid"] for j in mine]
    with face(server.url + PREFIX, world.tenant.tokens["viewer"]) as dev:
        assert dev.get(f"/{kind}/{world.refs[kind]}").status_code == 200  # still there


@pytest.mark.parametrize("kind", ["jobs", "calls"])
def test_a_viewer_reads_but_does_not_write(server: Server, world: World, kind: str) -> None:
    with face(server.url + PREFIX, world.tenant.tokens["viewer"]) as viewer:
        for method, path, options, writes in routes(world, kind):
            r = viewer.request(method, path, **options)
            if writes:
                blank(r, 401)
            else:
                assert r.status_code == 200, (method, path, r.text)


@pytest.mark.parametrize("role", ["developer", "manager"])
def test_developers_and_managers_write(server: Server, world: World, role: str) -> None:
    with face(server.url + PREFIX, world.tenant.tokens[role]) as writer:
        r = writer.post(
            "/jobs", params={"app_guid": world.refs["app"]}, json={"name": uid(), "command": "true"}
        )
        assert r.status_code == 201, r.text
        assert writer.post(f"/jobs/{r.json()['guid']}/execute").status_code == 201


def bad_requests(world: World, kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    g, s, app = world.refs[kind], world.refs[f"{kind}-schedule"], world.refs["app"]
    good = (
        {"name": uid(), "command": "true"}
        if kind == "jobs"
        else {"name": uid(), "url": "http://127.0.0.1:9/", "auth_header": "x"}
    )
    cases: list[tuple[str, str, dict[str, Any]]] = []
    # unknown or malformed guids in the path, on every route that has one
    for ref in ("not-a-guid", NOWHERE, "0", "x" * 300, "01M8EGRZF3JPFQ4WC52QFWVBRQ"):
        cases += [
            ("GET", f"/{kind}/{ref}", {}),
            ("DELETE", f"/{kind}/{ref}", {}),
            ("POST", f"/{kind}/{ref}/execute", {}),
            ("GET", f"/{kind}/{ref}/history", {}),
            ("GET", f"/{kind}/{ref}/schedules", {}),
            ("POST", f"/{kind}/{ref}/schedules", {"json": {"expression": "@daily"}}),
            ("DELETE", f"/{kind}/{g}/schedules/{ref}", {}),
            ("DELETE", f"/{kind}/{ref}/schedules/{s}", {}),
            ("GET", f"/{kind}/{g}/schedules/{ref}/history", {}),
            ("GET", f"/{kind}/{ref}/schedules/{s}/history", {}),
        ]
    # paging
    for params in (
        {"page": "0"},
        {"page": "-1"},
        {"page": "one"},
        {"page": "1e3"},
        {"page": str(10**30)},
        {"per_page": "0"},
        {"per_page": "1000000"},
        {"per_page": ""},
    ):
        for path in (f"/{kind}", f"/{kind}/{g}/history", f"/{kind}/{g}/schedules"):
            cases.append(("GET", path, {"params": params}))
        cases.append(("GET", f"/{kind}/{g}/schedules/{s}/history", {"params": params}))
    # creating
    for params in ({}, {"app_guid": ""}, {"app_guid": "nope"}, {"app_guid": NOWHERE}):
        cases.append(("POST", f"/{kind}", {"params": params, "json": good}))
    bodies: list[Any] = [None, [], "text", 5, {}, {"name": ""}, {**good, "name": "   "}]
    bodies += [{**good, "name": 7}, {**good, "name": None}, {**good, "name": "a\u0000b"}]
    bodies += [{**good, "name": "x" * 300}, {**good, "name": "-leading-dash"}]
    if kind == "jobs":
        bodies += [{"name": uid()}, {**good, "command": ""}, {**good, "command": "  "}]
        bodies += [{**good, "command": ["ls"]}, {**good, "disk_in_mb": -1}]
        bodies += [{**good, "memory_in_mb": "big"}, {**good, "disk_in_mb": 2**40}]
        bodies += [{**good, "memory_in_mb": 2**70}, {**good, "disk_in_mb": 1.5}]
    else:
        bodies += [{"name": uid(), "url": "http://x/"}, {**good, "url": "ftp://x/"}]
        bodies += [{**good, "url": "not a url"}, {**good, "url": ""}]
        bodies += [{**good, "auth_header": ""}, {**good, "auth_header": 5}]
    for body in bodies:
        cases.append(("POST", f"/{kind}", {"params": {"app_guid": app}, "json": body}))
    for raw in (b"{", b"\xff\xfe", b"nul\x00"):
        cases.append(("POST", f"/{kind}", {"params": {"app_guid": app}, "content": raw}))
    # scheduling
    for body in (
        None,
        [],
        {},
        {"expression": "@daily"},
        {"expression": "@daily", "expression_type": "cron_expression", "enabled": "yes"},
        {"expression": 5, "expression_type": "cron_expression"},
        {"expression": "*" * 300, "expression_type": "cron_expression"},
        {"expression": "0 0 * * * *", "expression_type": "cron_expression"},
    ):
        cases.append(("POST", f"/{kind}/{g}/schedules", {"json": body}))
    cases.append(("POST", f"/{kind}/{g}/schedules", {"content": b"not json"}))
    # wrong methods and unknown routes
    cases += [
        ("PUT", f"/{kind}", {}),
        ("PATCH", f"/{kind}/{g}", {}),
        ("GET", f"/{kind}/{g}/execute", {}),
        ("GET", f"/{kind}/{g}/nothing", {}),
        ("GET", "/nothing", {}),
    ]
    return cases


@pytest.mark.parametrize("kind", ["jobs", "calls"])
def test_bad_input_is_a_4xx_on_every_route(server: Server, world: World, kind: str) -> None:
    with face(server.url + PREFIX, world.tenant.tokens["developer"]) as dev:
        for method, path, options in bad_requests(world, kind):
            r = dev.request(method, path, **options)
            assert 400 <= r.status_code < 500, (method, path, options, r.status_code)
            assert r.content == b'""', (method, path, options, r.content)
        # nothing above changed the world
        assert dev.get(f"/{kind}/{world.refs[kind]}").status_code == 200
        schedules = dev.get(f"/{kind}/{world.refs[kind]}/schedules").json()["resources"]
        assert [x["guid"] for x in schedules] == [world.refs[f"{kind}-schedule"]]


def test_status_codes_of_bad_input(server: Server, world: World) -> None:
    """The codes the contract names: 404 for unknown objects, 422 for bad bodies."""
    with face(server.url + PREFIX, world.tenant.tokens["developer"]) as dev:
        blank(dev.get(f"/jobs/{NOWHERE}"), 404)
        blank(dev.get("/jobs/not-a-guid/history"), 404)
        blank(dev.post("/jobs", json={"name": "x", "command": "y"}), 422)
        blank(
            dev.post("/jobs", params={"app_guid": NOWHERE}, json={"name": "x", "command": "y"}), 422
        )
        blank(dev.post("/jobs", params={"app_guid": world.refs["app"]}, json={"name": "x"}), 422)
        blank(dev.post("/calls", params={"app_guid": world.refs["app"]}, json={"name": "x"}), 422)
        wrong = dev.put("/jobs")
        blank(wrong, 405)
        assert wrong.headers["allow"] == "GET, POST"
        assert dev.put(f"/jobs/{NOWHERE}").headers["allow"] == "GET, DELETE"
        blank(dev.get("/nothing"), 404)
