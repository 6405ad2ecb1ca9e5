"""Who may call what, for every route of the app, read from the app's own route table.

Each route has a rule: the least it needs (public, any valid token, a role in the space the
object lives in, or admin) and how to build a call to it against fresh objects of one space.
Every rule is tried with no token, a bad token, a token of another space, each role below the
least one (all must be refused) and the least one (must get past the access check). A route
the table does not know fails `test_every_route_has_a_rule`, so a route added later is covered
the day it is added.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gnomon.api.app import FACES, create_app
from gnomon.config import Settings
from tests.api.helpers import create_job, noop, space_name, trigger, uid
from tests.server import Server

ROLES = ("viewer", "developer", "manager")
LEVELS = ("public", "token", *ROLES, "admin")
DAY = {"t0": "2026-03-01T00:00:00Z", "t1": "2026-03-02T00:00:00Z"}


def routes_of(app: FastAPI) -> set[str]:
    """'METHOD /path' of every route an app serves (HEAD and mounts of static files aside)."""

    def walk(routes: list[Any], prefix: str) -> Iterator[str]:
        for route in routes:
            if hasattr(route, "original_router"):
                inner = route.include_context.prefix or ""
                yield from walk(route.original_router.routes, prefix + inner)
            elif getattr(route, "methods", None):
                for method in sorted(route.methods - {"HEAD"}):
                    yield f"{method} {prefix}{route.path}"

    return set(walk(app.router.routes, ""))


def native_routes() -> set[str]:
    return routes_of(create_app(Settings(), engine=False))


def face_routes() -> dict[str, set[str]]:
    """The routes of every face the app serves (a face added later is covered at once)."""
    settings = Settings()
    state = create_app(settings, engine=False).state
    return {f.name: routes_of(f.build(state, settings)) for f in FACES}


# --- the objects calls are made against -----------------------------------------------------


@dataclass
class World:
    """Space `space` with a token per role, space `other` with a developer-and-manager token,
    and an admin; objects are made fresh for each call by the admin."""

    server: Server
    admin: httpx.Client
    space: str
    other: str
    tokens: dict[str, str] = field(default_factory=dict)  # who → secret
    minutes: Iterator[int] = field(default_factory=itertools.count)

    def job(self, **fields: Any) -> dict[str, Any]:
        fields.setdefault("executor", f"site:{self.site}")
        return create_job(self.admin, noop(), space=self.space, **fields)

    @property
    def site(self) -> str:
        return f"m-{self.space}"

    def run(self) -> dict[str, Any]:
        return trigger(self.admin, self.job()["id"])

    def schedule(self) -> dict[str, Any]:
        job = self.job()
        r = self.admin.post(
            f"/v1/jobs/{job['id']}/schedules", json={"cron": "0 0 1 1 *", "enabled": False}
        )
        assert r.status_code == 201, r.text
        return r.json()

    def app(self) -> dict[str, Any]:
        r = self.admin.post("/v1/apps", json={"name": uid("app"), "space": self.space})
        assert r.status_code == 201, r.text
        return r.json()

    def plan(self) -> dict[str, Any]:
        r = self.admin.post("/v1/plans", json={"policy": "dummy", "space": self.space, **DAY})
        assert r.status_code == 201, r.text
        return r.json()

    def token(self, role: str = "viewer") -> dict[str, Any]:
        body = {"name": uid("tok"), "roles": {self.space: role}}
        r = self.admin.post("/v1/tokens", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def window(self) -> dict[str, Any]:
        """A reservation of the space at its site, a minute long, overlapping no other."""
        self.job()  # the space uses the site
        start = datetime.now(UTC) + timedelta(days=30, minutes=2 * next(self.minutes))
        return {
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=1)).isoformat(),
            "space": self.space,
        }

    def reservation(self) -> dict[str, Any]:
        r = self.admin.post(f"/v1/sites/{self.site}/reservations", json=self.window())
        assert r.status_code == 201, r.text
        return r.json()

    def claimed_run(self, who: str) -> dict[str, Any]:
        """A run of the space's site, claimed by `who`'s token (reports come from the holder)."""
        run = self.run()
        with self.client(who) as c:
            c.post(f"/v1/sites/{self.site}/claim", json={"max": 1000})
        return run

    def client(self, who: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=30)


@dataclass
class Call:
    path: str
    body: Any = None
    params: dict[str, Any] | None = None


Make = Callable[[World, str], Call]


@dataclass(frozen=True)
class Rule:
    level: str
    make: Make
    ok: frozenset[int] = frozenset()  # statuses past the access check besides 2xx
    scoped: bool = False  # a listing of the caller's own spaces: another space's token may ask

    def __post_init__(self) -> None:
        assert self.level in LEVELS, self.level


def at(path: str, body: Any = None, **params: Any) -> Make:
    return lambda w, who: Call(path.format(w=w), body, params or None)


def on(factory: str, path: str, body: Any = None, **params: Any) -> Make:
    """A call on a fresh object made by `World.<factory>`: `{o[id]}` in the path."""

    def make(w: World, who: str) -> Call:
        obj = getattr(w, factory)()
        return Call(path.format(w=w, o=obj), body, params or None)

    return make


def in_space(path: str, **params: Any) -> Make:
    return lambda w, who: Call(path.format(w=w), None, {"space": w.space, **params})


def job_body(w: World, who: str) -> Call:
    return Call("/v1/jobs", {"name": uid("job"), "action": noop(), "space": w.space})


def batch(w: World, who: str) -> Call:
    return Call("/v1/runs:batch", {"job": w.job()["id"], "runs": [{}]})


def member(w: World, who: str) -> Call:
    return Call(f"/v1/spaces/{w.space}/members/{w.token()['id']}", {"role": "viewer"})


def reservation(w: World, who: str) -> Call:
    return Call(f"/v1/sites/{w.site}/reservations", w.window())


def site_key(w: World, who: str) -> Call:
    """The space's site (used by the space) with a key to remove."""
    w.job()
    r = w.admin.post(f"/v1/sites/{w.site}/key")
    assert r.status_code == 201, r.text
    return Call(f"/v1/sites/{w.site}/key")


def report(w: World, who: str) -> Call:
    run = w.claimed_run(who) if who in w.tokens else w.run()
    return Call(f"/v1/runs/{run['id']}/report", {"status": "working"})


def backfill() -> Make:
    body = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "dry_run": True}
    return on("schedule", "/v1/schedules/{o[id]}/backfill", body)


def dispatch(w: World, who: str) -> Call:
    return Call(f"/v1/plans/{w.plan()['id']}/dispatch", {"site": w.site})


def diff(w: World, who: str) -> Call:
    a, b = w.plan(), w.plan()
    return Call(f"/v1/plans/{a['id']}/diff/{b['id']}")


FREE = frozenset({404})  # an object the server has none of: past the check, nothing there
CONFLICT = frozenset({409})

RULES: dict[str, Rule] = {
    # system and documentation
    "GET /healthz": Rule("public", at("/healthz")),
    "GET /readyz": Rule("public", at("/readyz")),
    "GET /metrics": Rule("public", at("/metrics")),
    "GET /openapi.json": Rule("public", at("/openapi.json")),
    "GET /docs": Rule("public", at("/docs")),
    "GET /docs/oauth2-redirect": Rule("public", at("/docs/oauth2-redirect")),
    "GET /redoc": Rule("public", at("/redoc")),
    "GET /": Rule("public", at("/"), frozenset({307, 404})),
    "GET /ui": Rule("public", at("/ui"), frozenset({307})),
    "GET /ui/": Rule("public", at("/ui/")),
    # who am I, and what any token may read
    "GET /v1/whoami": Rule("token", at("/v1/whoami")),
    "GET /v1/spaces": Rule("token", at("/v1/spaces")),
    "GET /v1/policies": Rule("token", at("/v1/policies")),
    "POST /v1/events/ticket": Rule("token", at("/v1/events/ticket")),
    "GET /v1/sites": Rule("token", at("/v1/sites")),
    "GET /v1/templates": Rule("token", at("/v1/templates")),
    # jobs
    "POST /v1/jobs": Rule("developer", job_body),
    "GET /v1/jobs": Rule("viewer", in_space("/v1/jobs")),
    "GET /v1/jobs/{job_id}": Rule("viewer", on("job", "/v1/jobs/{o[id]}")),
    "PATCH /v1/jobs/{job_id}": Rule("developer", on("job", "/v1/jobs/{o[id]}", {"params": {}})),
    "DELETE /v1/jobs/{job_id}": Rule("developer", on("job", "/v1/jobs/{o[id]}")),
    "POST /v1/jobs/{job_id}/runs": Rule("developer", on("job", "/v1/jobs/{o[id]}/runs", {})),
    "POST /v1/runs:batch": Rule("developer", batch),
    "POST /v1/jobs/{job_id}/schedules": Rule(
        "developer", on("job", "/v1/jobs/{o[id]}/schedules", {"every": "1h", "enabled": False})
    ),
    "GET /v1/jobs/{job_id}/schedules": Rule("viewer", on("job", "/v1/jobs/{o[id]}/schedules")),
    # runs
    "GET /v1/runs": Rule("viewer", in_space("/v1/runs")),
    "GET /v1/runs/{run_id}": Rule("viewer", on("run", "/v1/runs/{o[id]}")),
    "GET /v1/runs/{run_id}/events": Rule("viewer", on("run", "/v1/runs/{o[id]}/events")),
    "GET /v1/runs/{run_id}/log": Rule("viewer", on("run", "/v1/runs/{o[id]}/log")),
    "POST /v1/runs/{run_id}/cancel": Rule("developer", on("run", "/v1/runs/{o[id]}/cancel")),
    # schedules
    "GET /v1/schedules": Rule("viewer", in_space("/v1/schedules")),
    "GET /v1/schedules/{schedule_id}": Rule("viewer", on("schedule", "/v1/schedules/{o[id]}")),
    "PATCH /v1/schedules/{schedule_id}": Rule(
        "developer", on("schedule", "/v1/schedules/{o[id]}", {"jitter_s": 1})
    ),
    "DELETE /v1/schedules/{schedule_id}": Rule(
        "developer", on("schedule", "/v1/schedules/{o[id]}")
    ),
    "POST /v1/schedules/{schedule_id}/backfill": Rule("developer", backfill()),
    "GET /v1/schedules/{schedule_id}/next": Rule(
        "viewer", on("schedule", "/v1/schedules/{o[id]}/next")
    ),
    "GET /v1/schedules/{schedule_id}/fires": Rule(
        "viewer", on("schedule", "/v1/schedules/{o[id]}/fires")
    ),
    # apps
    "POST /v1/apps": Rule(
        "developer", lambda w, who: Call("/v1/apps", {"name": uid("app"), "space": w.space})
    ),
    "GET /v1/apps": Rule("viewer", in_space("/v1/apps")),
    "GET /v1/apps/{app_id}": Rule("viewer", on("app", "/v1/apps/{o[id]}")),
    "DELETE /v1/apps/{app_id}": Rule("developer", on("app", "/v1/apps/{o[id]}")),
    # plans
    "POST /v1/plans": Rule(
        "developer", lambda w, who: Call("/v1/plans", {"policy": "dummy", "space": w.space, **DAY})
    ),
    "GET /v1/plans": Rule("viewer", in_space("/v1/plans")),
    "GET /v1/plans/{plan_id}": Rule("viewer", on("plan", "/v1/plans/{o[id]}")),
    "GET /v1/plans/{plan_id}/commands": Rule("viewer", on("plan", "/v1/plans/{o[id]}/commands")),
    "POST /v1/plans/{plan_id}/revisions": Rule(
        "developer", on("plan", "/v1/plans/{o[id]}/revisions", {})
    ),
    "GET /v1/plans/{plan_id}/diff/{other_id}": Rule("viewer", diff),
    "GET /v1/plans/{plan_id}/diff": Rule(
        "viewer",
        on("plan", "/v1/plans/{o[id]}/diff"),
        frozenset({422}),  # no parent
    ),
    "POST /v1/plans/{plan_id}/dispatch": Rule("developer", dispatch, CONFLICT),
    # spaces and tokens
    "POST /v1/spaces": Rule("admin", lambda w, who: Call("/v1/spaces", {"name": space_name()})),
    "GET /v1/spaces/{name}": Rule("viewer", at("/v1/spaces/{w.space}")),
    "PUT /v1/spaces/{name}/members/{token_id}": Rule("manager", member),
    "DELETE /v1/spaces/{name}/members/{token_id}": Rule(
        "manager", on("token", "/v1/spaces/{w.space}/members/{o[id]}")
    ),
    "GET /v1/tokens": Rule("manager", at("/v1/tokens"), scoped=True),
    "POST /v1/tokens": Rule(
        "manager",
        lambda w, who: Call("/v1/tokens", {"name": uid("tok"), "roles": {w.space: "viewer"}}),
    ),
    "DELETE /v1/tokens/{token_id}": Rule("manager", on("token", "/v1/tokens/{o[id]}")),
    # events and stats
    "GET /v1/events": Rule("viewer", in_space("/v1/events", after="0")),
    "GET /v1/stats": Rule("viewer", in_space("/v1/stats")),
    # sites
    "POST /v1/sites/{site}/claim": Rule("developer", at("/v1/sites/{w.site}/claim", {})),
    "POST /v1/sites/{site}/heartbeat": Rule(
        "developer", at("/v1/sites/{w.site}/heartbeat", {"agent": "a1"})
    ),
    "POST /v1/runs/{run_id}/report": Rule("developer", report),
    "GET /v1/sites/{site}": Rule("viewer", at("/v1/sites/{w.site}")),
    "POST /v1/sites/{site}/reservations": Rule("developer", reservation),
    "GET /v1/sites/{site}/reservations": Rule("viewer", at("/v1/sites/{w.site}/reservations")),
    "DELETE /v1/sites/{site}/reservations/{reservation_id}": Rule(
        "manager", on("reservation", "/v1/sites/{w.site}/reservations/{o[id]}")
    ),
    "GET /v1/sites/{site}/events": Rule("viewer", at("/v1/sites/{w.site}/events")),
    "POST /v1/sites/{site}/key": Rule("manager", on("job", "/v1/sites/{w.site}/key")),
    "DELETE /v1/sites/{site}/key": Rule("manager", site_key),
    # job templates (none configured on the test server: past the check, nothing there)
    "GET /v1/templates/{name}": Rule("viewer", at("/v1/templates/nothing"), FREE),
    "POST /v1/templates/{name}/runs": Rule("developer", at("/v1/templates/nothing/runs", {}), FREE),
}

# Routes of the faces: open ones work without a gnomon token by design (as the originals did;
# see the README's security model for how to close them); the others need a token.
FACE_RULES: dict[str, dict[str, str]] = {
    "pcf": {route: "token" for route in face_routes()["pcf"]} | {"GET /": "public"},
    "photonranch": {
        "POST /newjob": "token",
        "POST /getnewjobs": "open",
        "POST /updatejobstatus": "open",
        "POST /startjob": "open",
        "POST /getrecentjobs": "open",
        "GET /events/{site}": "open",
    },
    "tsm": {"GET /health": "public", "POST /{name}/run": "open"},
    "schedule_api": {"POST /": "open", "POST ": "open"},
}

STREAMS = {"GET /v1/events", "GET /v1/sites/{site}/events", "GET /v1/runs/{run_id}/log"}


def test_every_route_has_a_rule() -> None:
    routes = native_routes()
    assert routes - set(RULES) == set(), "routes without an access rule in RULES"
    assert set(RULES) - routes == set(), "rules for routes the app does not serve"
    for name, routes in face_routes().items():
        assert routes == set(FACE_RULES[name]), f"face {name}: routes without a rule"


# --- the matrix ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(server: Server) -> Iterator[World]:
    with server.client() as admin:
        w = World(server, admin, space_name("auth"), space_name("other"))
        for name in (w.space, w.other):
            assert admin.post("/v1/spaces", json={"name": name}).status_code == 201
        for role in ROLES:
            w.tokens[role] = w.token(role)["token"]
        r = admin.post(
            "/v1/tokens",
            json={"name": uid("other"), "roles": {w.other: "manager"}},
        )
        w.tokens["other"] = r.json()["token"]
        w.tokens["admin"] = server.token
        w.tokens["bad"] = "gn_" + "x" * 43
        yield w


def send(w: World, who: str, rule: Rule, route: str) -> httpx.Response:
    method = route.split(" ", 1)[0]
    call = rule.make(w, who)
    body = call.body
    if isinstance(body, dict):
        body = {k: (v.format(w=w) if isinstance(v, str) else v) for k, v in body.items()}
    with w.client(who) as c:
        if route in STREAMS:
            # A stream answers its status first; read no further.
            with c.stream(method, call.path, params=call.params, timeout=10) as r:
                if r.status_code >= 400:
                    r.read()
                return r
        return c.request(method, call.path, params=call.params, json=body)


@pytest.mark.parametrize("route", sorted(RULES))
def test_access_matrix(world: World, route: str) -> None:
    rule = RULES[route]
    answers: dict[str, int] = {}

    def expect(who: str, allowed: bool) -> None:
        r = send(world, who, rule, route)
        answers[who] = r.status_code
        assert r.status_code < 500, (route, who, r.status_code, r.text)
        if allowed:
            past = r.status_code < 400 or r.status_code in rule.ok
            assert past, f"{route}: {who} refused with {r.status_code}: {r.text[:300]}"
        elif who in ("anonymous", "bad"):
            assert r.status_code == 401, f"{route}: {who} got {r.status_code}"
        else:
            assert r.status_code in (403, 404), f"{route}: {who} got {r.status_code}: {r.text}"

    if rule.level == "public":
        expect("anonymous", True)
        return
    expect("anonymous", False)
    expect("bad", False)
    if rule.level == "token":
        expect("viewer", True)
        return
    expect("other", rule.scoped)
    need = LEVELS.index(rule.level)
    for role in ROLES:
        if LEVELS.index(role) < need:
            expect(role, False)
    expect(rule.level, True)


FACE_PREFIX = {f.name: f.where(Settings())[0] for f in FACES}


def face_url(face: str, path: str) -> str:
    for name, value in (("ref", "x"), ("sref", "y"), ("name", "z"), ("site", "s")):
        path = path.replace(f"{{{name}}}", value)
    return FACE_PREFIX[face] + path


@pytest.mark.parametrize(
    ("face", "route"),
    sorted(
        (f, r) for f, rules in FACE_RULES.items() for r, level in rules.items() if level == "token"
    ),
)
def test_face_routes_need_a_token(world: World, face: str, route: str) -> None:
    """Without a token, or with a bad one, a face's closed route does nothing (in the face's
    own dialect: 401 or 403)."""
    method, path = route.split(" ", 1)
    url = face_url(face, path)
    for who in ("anonymous", "bad"):
        with world.client(who) as c:
            r = c.request(method, url, json={} if method in ("POST", "PUT") else None)
        assert r.status_code in (401, 403), (face, route, who, r.status_code, r.text)


@pytest.mark.parametrize(
    ("face", "route"),
    sorted(
        (f, r) for f, rules in FACE_RULES.items() for r, level in rules.items() if level != "token"
    ),
)
def test_open_face_routes_need_no_token(world: World, face: str, route: str) -> None:
    """A face's open and public routes answer a caller without a token (whatever else they
    say about the request, it is not for want of a token)."""
    method, path = route.split(" ", 1)
    with (
        world.client("anonymous") as c,
        c.stream(method, face_url(face, path), json={} if method == "POST" else None) as r,
    ):
        assert r.status_code < 500 and r.status_code not in (401, 403), (face, route)
