"""Every route of every compat face (they are not in the OpenAPI document) against hostile
bodies — random JSON, random bytes, deep nesting, huge integers, lone surrogates, NUL, wrong
content types: no body gets a 5xx. One shared server on PostgreSQL (the stricter store)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.compat.helpers import make_tenant
from tests.server import Server, drop_postgres, fresh_postgres

TEMPLATES = """
[templates.echo]
executor = "local"
faces = ["tsm"]
argv = ["echo", "{msg}", "{n}"]
params.msg = { type = "string" }
params.n = { type = "int", required = false, default = 1 }
"""

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ODD_TEXT = st.sampled_from(["\ud800", "\udfff", "\x00", "a\x00b", "\U0001f600", "-5", "", " "])
TEXT = st.text(max_size=20) | ODD_TEXT
HUGE = st.sampled_from([2**63, -(2**63) - 1, 10**19, 10**40, 1234567890123456789])
SCALAR = st.none() | st.booleans() | st.integers() | HUGE | st.floats(allow_nan=False) | TEXT
JSON_VALUE = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-16",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
    ]
)


def encode(value: Any) -> bytes:
    """JSON as a hostile client writes it: surrogates and NUL as escapes, big numbers whole."""
    return json.dumps(value, ensure_ascii=True).encode()


def deep(depth: int, core: str) -> bytes:
    opener, closer = ("[", "]") if depth % 2 else ('{"a":', "}")
    return (opener * depth + core + closer * depth).encode()


RAW = st.sampled_from(
    [b"", b"null", b"{", b"\xff\xfe\x00", b"1e400", b'{"a": NaN}', b"\x00", b'"\\ud800"']
)
DEEP = st.builds(
    deep, st.integers(min_value=100, max_value=6000), st.sampled_from(["1234567890123456789", "1"])
)


def bodies(*shapes: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """Random JSON and bytes, and the given shapes with random values in their fields."""
    shaped = [
        st.fixed_dictionaries({k: JSON_VALUE | st.just(v) for k, v in shape.items()}).map(encode)
        for shape in shapes
    ]
    return st.one_of(JSON_VALUE.map(encode), st.binary(max_size=64), RAW, DEEP, *shaped)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("gnomon-fuzz")
    templates = Path(data) / "templates.toml"
    templates.write_text(TEMPLATES)
    url = fresh_postgres()
    srv = Server(data / "data", url, GNOMON_TEMPLATES_FILE=str(templates)).start()
    yield srv
    srv.stop()
    drop_postgres(url)


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def world(server: Server, client: httpx.Client) -> dict[str, str]:
    """A space with an app, a PCF job and call each with a schedule; the admin token."""
    admin = {"Authorization": f"Bearer {server.token}"}
    with server.client() as api:
        tenant = make_tenant(api)
    app = tenant.apps[0]
    job = client.post(
        f"/pcf/jobs?app_guid={app}", json={"name": "fuzz", "command": "true"}, headers=admin
    )
    call = client.post(
        f"/pcf/calls?app_guid={app}",
        json={"name": "fuzz-call", "url": "http://127.0.0.1:9/", "auth_header": "x"},
        headers=admin,
    )
    assert job.status_code == call.status_code == 201, (job.text, call.text)
    found = {"app": app, "token": server.token, "job": job.json()["guid"]}
    found["call"] = call.json()["guid"]
    for kind in ("jobs", "calls"):
        ref = found[kind[:-1]]
        body = {"expression": "0 0 1 1 *", "expression_type": "cron_expression"}
        r = client.post(f"/pcf/{kind}/{ref}/schedules", json=body, headers=admin)
        assert r.status_code == 201, r.text
        found[f"{kind}_schedule"] = r.json()["guid"]
    return found


def send(
    client: httpx.Client,
    method: str,
    path: str,
    body: bytes,
    content_type: str | None,
    token: str | None = None,
) -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    r = client.request(method, path, content=body, headers=headers)
    assert r.status_code < 500 or executor_answer(r), (
        method,
        path,
        body[:300],
        r.status_code,
        r.text[:300],
    )
    return r


def executor_answer(r: httpx.Response) -> bool:
    """The TSM contract's 500: a run was made and its executor refused or failed it."""
    try:
        body = r.json()
    except ValueError:
        return False
    return r.status_code == 500 and isinstance(body, dict) and bool(body.get("run_id"))


# --- the Cloud Foundry scheduler face -------------------------------------------------------


def pcf_routes(w: dict[str, str]) -> list[tuple[str, str]]:
    routes = [("GET", "/pcf/")]
    for kind in ("jobs", "calls"):
        one = f"/pcf/{kind}/{w[kind[:-1]]}"
        sched = f"{one}/schedules/{w[kind + '_schedule']}"
        routes += [
            ("GET", f"/pcf/{kind}"),
            ("POST", f"/pcf/{kind}?app_guid={w['app']}"),
            ("GET", one),
            ("POST", f"{one}/execute"),
            ("GET", f"{one}/history"),
            ("GET", f"{one}/schedules"),
            ("POST", f"{one}/schedules"),
            ("GET", f"{sched}/history"),
            ("DELETE", f"/pcf/{kind}/{uuid.uuid4()}/schedules/{uuid.uuid4()}"),
            ("DELETE", f"/pcf/{kind}/{uuid.uuid4()}"),
        ]
    return routes


PCF_SHAPES = (
    {"name": "n", "command": "true", "disk_in_mb": 0, "memory_in_mb": 0},
    {"name": "n", "url": "http://127.0.0.1:9/", "auth_header": "x"},
    {"enabled": True, "expression": "0 0 1 1 *", "expression_type": "cron_expression"},
)


@SETTINGS
@given(
    route=st.integers(min_value=0, max_value=100),
    body=bodies(*PCF_SHAPES),
    content_type=CONTENT_TYPES,
    authorized=st.booleans(),
    query=st.sampled_from(["", "page=0", "per_page=99999999999999999999", "page=%00", "page=x"]),
)
def test_pcf_face(
    client: httpx.Client,
    world: dict[str, str],
    route: int,
    body: bytes,
    content_type: str | None,
    authorized: bool,
    query: str,
) -> None:
    routes = pcf_routes(world)
    method, path = routes[route % len(routes)]
    if query:
        path += ("&" if "?" in path else "?") + query
    send(client, method, path, body, content_type, world["token"] if authorized else None)


# --- the Photon Ranch jobs face -------------------------------------------------------------

PHOTONRANCH = ["newjob", "getnewjobs", "updatejobstatus", "startjob", "getrecentjobs"]
PHOTONRANCH_SHAPES = (
    {"site": "fuzz", "device": "camera", "instance": "c1", "action": "expose"},
    {"site": "fuzz", "ulid": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "newStatus": "COMPLETE"},
    {"site": "fuzz", "timeRange": 1000, "secondsUntilComplete": 5},
)


@SETTINGS
@given(
    route=st.sampled_from(PHOTONRANCH),
    body=bodies(*PHOTONRANCH_SHAPES),
    content_type=CONTENT_TYPES,
    authorized=st.booleans(),
)
def test_photonranch_face(
    client: httpx.Client,
    world: dict[str, str],
    route: str,
    body: bytes,
    content_type: str | None,
    authorized: bool,
) -> None:
    r = send(
        client, "POST", f"/jobs/{route}", body, content_type, world["token"] if authorized else None
    )
    assert r.headers["content-type"] == "application/json", r.headers  # JSON everywhere
    r.json()


# --- the TSM batch face ---------------------------------------------------------------------


@SETTINGS
@given(
    route=st.sampled_from(
        [("POST", "/tsm/echo/run"), ("POST", "/tsm/nope/run"), ("GET", "/tsm/health")]
    ),
    body=bodies({"msg": "hello", "n": 1}),
    content_type=CONTENT_TYPES,
)
def test_tsm_face(
    client: httpx.Client, route: tuple[str, str], body: bytes, content_type: str | None
) -> None:
    r = send(client, *route, body, content_type)
    if route[1] != "/tsm/health":
        assert set(r.json()) == {"code", "err", "out", "job_id", "run_id"}, r.text


# --- the observatory schedule face ----------------------------------------------------------

WINDOW = {"t0": "2024-01-01T00:00:00Z", "t1": "2024-01-01T01:00:00Z"}


@SETTINGS
@given(
    method=st.sampled_from(["POST", "POST", "POST", "GET", "OPTIONS"]),
    body=bodies(
        {**WINDOW, "policy": '{"policy": "dummy"}'},
        {**WINDOW, "policy": {"policy": "dummy", "config": {}}},
    ),
    content_type=CONTENT_TYPES,
)
def test_schedule_face(
    client: httpx.Client, method: str, body: bytes, content_type: str | None
) -> None:
    send(client, method, "/api/v1/schedule/", body, content_type)
