"""Bad input gets a 4xx error envelope, never a 5xx; the body limit; unknown routes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.api.helpers import assert_error, create_job, noop, space_name, uid
from tests.server import Server, drop_postgres, fresh_postgres

MIB = 1024 * 1024
MISSING = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


def one_shot(server: Server) -> httpx.Client:
    """A client that opens a new connection per request: a 5xx that drops the connection
    fails only the request that caused it."""
    return server.client(limits=httpx.Limits(max_keepalive_connections=0))


# --- malformed bodies -----------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{", b"{'name': 1}", b"[1,", b"\xff\xfe", b"{} trailing"])
def test_malformed_json_is_400(api: httpx.Client, body: bytes) -> None:
    r = api.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    assert_error(r, 400, "bad_json")


@pytest.mark.parametrize("body", [b"", b"[]", b'"job"', b"null", b"42"])
def test_body_of_the_wrong_shape_is_422(api: httpx.Client, body: bytes) -> None:
    r = api.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    assert_error(r, 422, "invalid")


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"name": 123}, "name"),
        ({"name": ["a"]}, "name"),
        ({"timeout_s": "abc"}, "timeout_s"),
        ({"params": "abc"}, "params"),
        ({"retry": 3}, "retry"),
        ({"concurrency": {"max_running": "many"}}, "concurrency.max_running"),
        ({"executor": 5}, "executor"),
    ],
)
def test_wrong_types_are_422_naming_the_field(
    api: httpx.Client, patch: dict[str, Any], field: str
) -> None:
    body = {"name": uid(), "action": noop(), **patch}
    err = assert_error(api.post("/v1/jobs", json=body), 422, "invalid")
    assert err["details"][0]["field"] == field, err
    assert err["message"].startswith(field)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/jobs", {"limit": "abc"}, "limit"),
        ("/v1/jobs", {"limit": 1001}, "limit"),
        ("/v1/runs", {"limit": -1}, "limit"),
        ("/v1/runs/x/log", {"follow": "maybe"}, "follow"),
        ("/v1/events", {"after": "-1"}, "after"),
        ("/v1/events", {"after": "abc"}, "after"),
    ],
)
def test_bad_query_parameters_are_422(
    api: httpx.Client, path: str, params: dict[str, Any], field: str
) -> None:
    assert_error(api.get(path, params=params), 422, "invalid", field=field)


def test_json_without_content_type_or_form_typed_is_read_as_json(api: httpx.Client) -> None:
    body = orjson.dumps({"name": uid(), "action": noop()})
    r = api.post(
        "/v1/jobs", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 201, r.text
    req = api.build_request(
        "POST", "/v1/jobs", content=orjson.dumps({"name": uid(), "action": noop()})
    )
    assert "content-type" not in req.headers
    r = api.send(req)
    assert r.status_code == 201, r.text


# --- size limit -----------------------------------------------------------------------------


def _big_body(size: int) -> bytes:
    pad = "x" * (size - 80)
    return (
        '{"name": "big", "action": {"type": "noop"}, "params": {"pad": "' + pad + '"}}'
    ).encode()


def test_body_over_one_mib_is_413(api: httpx.Client) -> None:
    body = _big_body(MIB + 100)
    assert len(body) > MIB
    r = api.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    assert_error(r, 413, "too_large")


def test_chunked_body_over_one_mib_is_413(api: httpx.Client) -> None:
    body = _big_body(MIB + 100)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    r = api.post("/v1/jobs", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "too_large")


def test_body_just_under_the_limit_is_accepted(api: httpx.Client) -> None:
    body = _big_body(MIB - 1024).replace(b'"big"', f'"{uid("big")}"'.encode())
    assert len(body) < MIB
    r = api.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 201, r.text[:300]


# --- routes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/v1/nope", "/v1/jobs/x/y/z", "/v2/jobs"])
def test_unknown_route_is_404_envelope(api: httpx.Client, path: str) -> None:
    assert_error(api.get(path), 404, "not_found")


def test_wrong_method_is_405_envelope(api: httpx.Client) -> None:
    assert_error(api.put("/v1/jobs", json={}), 405, "method_not_allowed")
    assert_error(api.delete("/v1/runs"), 405, "method_not_allowed")


def test_405_allow_names_every_method_of_the_path(api: httpx.Client) -> None:
    r = api.put("/v1/jobs/01J0000000000000000000000")
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET, PATCH, DELETE"
    assert api.put("/v1/jobs").headers["allow"] == "GET, POST"


def test_204_keeps_the_connection_usable(api: httpx.Client, server: Server) -> None:
    """A 204 has no body: sending one ("null") makes uvicorn drop the keep-alive connection,
    and the client's next request on it fails."""
    space = space_name()
    assert api.post("/v1/spaces", json={"name": space}).status_code == 201
    tok = api.post("/v1/tokens", json={"name": uid(), "roles": {space: "viewer"}}).json()
    job = create_job(api)
    sched = api.post(f"/v1/jobs/{job['id']}/schedules", json={"cron": "0 0 1 1 *"}).json()
    with server.client() as c:
        for path in (
            f"/v1/schedules/{sched['id']}",
            f"/v1/jobs/{job['id']}",
            f"/v1/spaces/{space}/members/{tok['id']}",
            f"/v1/tokens/{tok['id']}",
        ):
            r = c.delete(path)
            assert r.status_code == 204, (path, r.text)
            assert r.content == b"", path
            assert r.headers.get("content-length", "0") == "0", path
            # The same connection serves the next request.
            assert c.get("/healthz").status_code == 200, path


# --- never a 5xx ----------------------------------------------------------------------------

ODD_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/v1/jobs/" + "x" * 3000, {}),
    ("GET", "/v1/jobs/%00", {}),
    ("GET", "/v1/jobs/..%2F..%2Fetc%2Fpasswd", {}),
    ("GET", "/v1/jobs", {"params": {"cursor": "zzzz"}}),
    ("GET", "/v1/jobs", {"params": {"q": "%_\\'\";--"}}),
    ("GET", "/v1/jobs", {"params": {"q": "\x00"}}),
    ("GET", "/v1/jobs", {"params": {"space": "Not A Space"}}),
    ("GET", "/v1/jobs", {"params": {"limit": "99999999999999999999999"}}),
    ("GET", "/v1/runs", {"params": {"state": ",,,"}}),
    ("GET", "/v1/runs", {"params": {"state": "queued,,failed"}}),
    ("GET", "/v1/runs", {"params": {"job": "\x00"}}),
    ("GET", "/v1/runs", {"params": {"since": "9999-12-31T23:59:59Z"}}),
    ("GET", "/v1/runs", {"params": {"since": "0001-01-01T00:00:00Z"}}),
    ("GET", "/v1/runs", {"params": {"since": "2030-13-01T00:00:00Z"}}),
    ("GET", "/v1/runs", {"params": {"site": "x y"}}),
    ("GET", f"/v1/runs/{MISSING}/log", {"params": {"follow": "true"}}),
    ("GET", "/v1/schedules/x/next", {"params": {"n": "5"}}),
    ("GET", "/v1/schedules/x/fires", {"params": {"status": "nope"}}),
    ("GET", "/v1/spaces/%00", {}),
    ("POST", f"/v1/runs/{MISSING}/cancel", {"json": {"why": "x"}}),
    ("POST", "/v1/jobs", {"content": b'{"name": "\\ud800x", "action": {"type": "noop"}}'}),
    (
        "POST",
        "/v1/jobs",
        {"content": b'{"name": "x", "action": {"type": "noop"}, "params": 1e999}'},
    ),
    (
        "POST",
        "/v1/jobs",
        {"json": {"name": uid(), "action": {"type": "shell", "command": "a\x00"}}},
    ),
    ("POST", "/v1/jobs", {"json": {"name": uid(), "action": noop(), "timeout_s": 1e308}}),
    ("POST", "/v1/jobs", {"json": {"name": uid(), "action": noop(), "timeout_s": 1e-300}}),
    ("POST", "/v1/jobs", {"json": {"name": uid(), "action": noop(), "params": {"": None}}}),
    ("POST", "/v1/jobs", {"json": {"name": uid(), "action": noop(), "retry": {"on": []}}}),
    ("POST", "/v1/jobs", {"json": {"name": uid(), "action": noop(), "params": {"d": [[[[]]]]}}}),
    ("POST", "/v1/runs:batch", {"json": {"job": "\x00", "runs": [{}]}}),
    ("POST", "/v1/runs:batch", {"json": {"job": MISSING, "runs": [{"at": "x"}]}}),
    ("POST", "/v1/spaces", {"json": {"name": "s" * 65}}),
    ("POST", "/v1/spaces", {"json": {"name": space_name(), "timezone": "\x00"}}),
    ("POST", "/v1/tokens", {"json": {"name": uid(), "roles": {"Bad Space": "viewer"}}}),
    ("POST", "/v1/tokens", {"json": {"name": uid(), "roles": ["default"]}}),
    ("PUT", f"/v1/spaces/default/members/{MISSING}", {"json": {"role": "viewer"}}),
    ("PUT", "/v1/spaces/default/members/x", {"json": {"role": "owner"}}),
    ("DELETE", "/v1/spaces/default/members/x", {}),
    ("DELETE", f"/v1/tokens/{MISSING}", {}),
    ("PATCH", f"/v1/schedules/{MISSING}", {"json": {"enabled": True}}),
]


@pytest.mark.parametrize(("method", "path", "kw"), ODD_REQUESTS, ids=range(len(ODD_REQUESTS)))
def test_odd_requests_never_5xx(server: Server, method: str, path: str, kw: dict[str, Any]) -> None:
    with one_shot(server) as c:
        r = c.request(method, path, **kw)
    assert r.status_code < 500, (method, path, kw, r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert_error(r, r.status_code)


def test_schedule_inputs_never_5xx(server: Server) -> None:
    with one_shot(server) as c:
        job = create_job(c)
        url = f"/v1/jobs/{job['id']}/schedules"
        for spec in (
            {"at": "9999-12-31T23:59:59Z"},
            {"at": "0001-01-01T00:00:00+14:00"},
            {"at": "2030-02-30T00:00:00Z"},
            {"at": "2016-12-31T23:59:60Z"},
            {"every": "99999999999d"},
            {"every": 10**20},
            {"every": "1h" * 30},
            {"cron": "0 0 * * *", "timezone": "../../etc/passwd"},
            {"cron": "0 0 * * *", "timezone": "UTC\x00"},
            {"cron": "\x00"},
            {"cron": "*/0 * * * *"},
            {"cron": "0 0 30 2 *"},
            {"cron": "0 0 L * *"},
            {"cron": "0 0 * * 5#6"},
            {"cron": "H H * * *"},
            {"cron": "ünïcode * * * *"},
        ):
            r = c.post(url, json=spec)
            assert r.status_code < 500, (spec, r.status_code, r.text[:300])
            if r.status_code == 201:
                sid = r.json()["id"]
                nxt = c.get(f"/v1/schedules/{sid}/next", params={"n": 3})
                assert nxt.status_code == 200, (spec, nxt.text[:300])
                c.patch(f"/v1/schedules/{sid}", json={"enabled": False})
            else:
                assert_error(r, r.status_code)


def test_every_must_be_an_interval_not_a_boolean(api: httpx.Client) -> None:
    job = create_job(api)
    r = api.post(f"/v1/jobs/{job['id']}/schedules", json={"every": True})
    assert_error(r, 422, "invalid", field="every")


# Inputs that, when they hit a bug, leave a poisoned row behind (a stored run whose presentation
# fails breaks every listing that includes it). They go to a private server per backend so the
# rest of the suite is not affected.


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def private(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    url = fresh_postgres() if request.param == "postgresql" else None
    srv = Server(Path(tmp_path_factory.mktemp(f"private-{request.param}")), url)
    srv.start()
    yield srv
    srv.stop()
    if url:
        drop_postgres(url)


@pytest.mark.parametrize(
    "at", ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-10:00"]
)
def test_run_at_out_of_range_is_422(private: Server, at: str) -> None:
    with one_shot(private) as c:
        job = create_job(c, executor="site:never-claimed")
        r = c.post(f"/v1/jobs/{job['id']}/runs", json={"at": at})
        assert r.status_code in (201, 422), (at, r.status_code, r.text[:300])
        if r.status_code == 422:
            assert_error(r, 422, "invalid", field="at")
        # Whatever happened, the ledger still lists.
        listed = c.get("/v1/runs", params={"job": job["id"]})
        assert listed.status_code == 200, listed.text[:300]
        batch = c.post("/v1/runs:batch", json={"job": job["id"], "runs": [{"at": at}]})
        assert batch.status_code in (201, 422), (at, batch.status_code, batch.text[:300])
        listed = c.get("/v1/runs", params={"job": job["id"]})
        assert listed.status_code == 200, listed.text[:300]


@pytest.mark.parametrize(
    ("where", "body"),
    [
        ("job", {"params": {"n": 10**30}}),
        ("job", {"action": {"type": "http", "url": "http://127.0.0.1:9/", "body": {"n": 10**30}}}),
        ("job", {"action": {"type": "task", "name": "t", "params": {"n": -(10**20)}}}),
        ("run", {"params": {"n": 10**30}}),
        ("schedule", {"cron": "0 0 1 1 *", "params": {"n": 10**30}}),
    ],
)
def test_huge_integers_are_not_a_500(private: Server, where: str, body: dict[str, Any]) -> None:
    with one_shot(private) as c:
        if where == "job":
            r = c.post("/v1/jobs", json={"name": uid(), "action": noop(), **body})
        else:
            job = create_job(c)
            path = "runs" if where == "run" else "schedules"
            r = c.post(f"/v1/jobs/{job['id']}/{path}", json=body)
        assert r.status_code in (201, 422), (where, r.status_code, r.text[:300])
        if r.status_code == 422:
            assert_error(r, 422, "invalid")


def test_events_after_out_of_range_is_422(private: Server) -> None:
    with one_shot(private) as c:
        r = c.get("/v1/events", params={"after": str(10**23)}, timeout=httpx.Timeout(5.0))
        assert_error(r, 422, "invalid", field="after")


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("run", b'{"params": {"a": "x\\ud800"}}', "params.a"),
        ("run", b'{"params": {"\\udfff": 1}}', "params.?"),
        ("batch", b'{"job": "%s", "runs": [{"params": {"a": "\\ud800"}}]}', "runs.0.params.a"),
        (
            "job",
            b'{"name": "n", "action": {"type": "noop"}, "params": {"s": "\\ud800"}}',
            "params.s",
        ),
    ],
)
def test_a_lone_surrogate_is_422_naming_the_field(
    private: Server, route: str, body: bytes, field: str
) -> None:
    """Not text in any encoding: no store keeps it (before: 500, or a dropped connection)."""
    with one_shot(private) as c:
        job = create_job(c, executor="site:never-claimed")
        path = {"run": f"/v1/jobs/{job['id']}/runs", "batch": "/v1/runs:batch"}.get(route)
        if route == "batch":
            body = body.replace(b"%s", job["id"].encode())
        r = c.post(path or "/v1/jobs", content=body, headers={"content-type": "application/json"})
        assert_error(r, 422, "invalid", field=field)
        assert "surrogate" in r.json()["error"]["message"]
        # A valid pair is text: it is kept.
        r = c.post(f"/v1/jobs/{job['id']}/runs", json={"params": {"a": "\U0001f600"}})
        assert r.status_code == 201 and r.json()["params"]["a"] == "\U0001f600", r.text


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/runs:batch", "/api/v1/schedule/"])
def test_deep_nesting_with_a_long_number_is_not_a_500(private: Server, path: str) -> None:
    body = b"[" * 5000 + b"1234567890123456789" + b"]" * 5000
    with one_shot(private) as c:
        r = c.post(path, content=body, headers={"content-type": "application/json"})
        assert r.status_code in (400, 422), r.text[:300]
        if path.startswith("/v1/"):
            assert_error(r, 422, "invalid", field="body")
        # The schedule face, with its own envelope, on a body the guard does not look into.
        r = c.post("/api/v1/schedule/", content=b'{"t0": ' + b"[" * 5000 + b"]" * 5000 + b"}")
        assert r.status_code == 400 and r.json()["status"] == "error", r.text[:300]
