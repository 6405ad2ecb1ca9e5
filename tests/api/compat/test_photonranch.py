"""The Photon Ranch jobs face over real HTTP: every route and error of the contract (errors as
JSON strings), real signed JWTs (a key pair made here; nothing goes to the network), the job
item's fields as the site software reads them, CORS, the per-site event stream, and 16 pollers
draining 2,000 jobs through getnewjobs. A server of its own on each backend."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from ulid import ULID

from tests.api.helpers import sse_events, uid
from tests.server import Server, drop_postgres, fresh_postgres

AUD = "https://api.photonranch.test"
ISS = "https://photonranch.test/"
ROLES = "https://photonranch.org/user_roles"
SSE_TIMEOUT = httpx.Timeout(10.0, read=5.0)
NEWJOB_KEYS = [
    "site",
    "device",
    "instance",
    "action",
    "user_name",
    "user_id",
    "optional_params",
    "required_params",
]


class Keys:
    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def token(self, sub: str, roles: list[str] | None = None, **claims: Any) -> str:
        body = {
            "sub": sub,
            "aud": AUD,
            "iss": ISS,
            "exp": int(time.time()) + 600,
            "name": f"User {sub}",
            **claims,
        }
        if roles is not None:
            body[ROLES] = roles
        return jwt.encode(body, self.private, algorithm="RS256")


KEYS = Keys()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    data = tmp_path_factory.mktemp(f"photonranch-{request.param}")
    key = Path(data) / "auth0.pem"
    key.write_bytes(KEYS.pem())
    url = fresh_postgres() if request.param == "postgresql" else None
    server = Server(
        data,
        url,
        GNOMON_JWT_PUBLIC_KEY_FILE=str(key),
        GNOMON_JWT_AUDIENCE=AUD,
        GNOMON_JWT_ISSUER=ISS,
    ).start()
    yield server
    server.stop()
    if url:
        drop_postgres(url)


def post(srv: Server, route: str, body: Any = None, token: str | None = None) -> httpx.Response:
    """As the site software does: `data=json.dumps(body)`, no Content-Type at all."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{srv.url}/jobs/{route}", content=content, headers=headers, timeout=30)


def job_body(site: str, **over: Any) -> dict[str, Any]:
    return {
        "site": site,
        "device": "camera",
        "instance": "camera1",
        "action": "expose",
        "user_name": "Ada Observer",
        "user_id": "auth0|ada",
        "optional_params": {"filter": "air", "count": "1"},
        "required_params": {"time": "1", "image_type": "light"},
        **over,
    }


def newjob(srv: Server, site: str, token: str | None = None, **over: Any) -> dict[str, Any]:
    r = post(srv, "newjob", job_body(site, **over), token or KEYS.token("auth0|ada"))
    assert r.status_code == 200, r.text
    return r.json()


def text_error(r: httpx.Response, status: int, text: str | None = None) -> None:
    """An error of the face: the original's text, as a JSON string."""
    assert r.status_code == status, f"{r.status_code} {r.text}"
    assert r.headers["content-type"] == "application/json", r.headers
    assert r.headers["access-control-allow-origin"] == "*"
    said = r.json()
    assert isinstance(said, str) and said
    if text is not None:
        assert said == text


def test_newjob_needs_a_valid_token(srv: Server) -> None:
    site = uid("wmd")
    text_error(post(srv, "newjob", job_body(site)), 401)
    other = Keys()
    text_error(post(srv, "newjob", job_body(site), other.token("auth0|eve")), 401)
    expired = KEYS.token("auth0|ada", exp=int(time.time()) - 3600)
    text_error(post(srv, "newjob", job_body(site), expired), 401)
    wrong_aud = KEYS.token("auth0|ada", aud="https://elsewhere.test")
    text_error(post(srv, "newjob", job_body(site), wrong_aud), 401)
    wrong_iss = KEYS.token("auth0|ada", iss="https://evil.test/")
    text_error(post(srv, "newjob", job_body(site), wrong_iss), 401)
    text_error(post(srv, "newjob", job_body(site), "gn_not-a-token"), 401)
    assert post(srv, "newjob", job_body(site), srv.token).status_code == 200  # gnomon's own


def test_newjob_names_the_first_missing_key(srv: Server) -> None:
    site = uid("wmd")
    full = job_body(site)
    for i, key in enumerate(NEWJOB_KEYS):
        partial = {k: full[k] for k in NEWJOB_KEYS[:i]}
        r = post(srv, "newjob", partial, KEYS.token("auth0|ada"))
        text_error(r, 400, f"Error: missing required key {key}")


def test_newjob_returns_the_item(srv: Server) -> None:
    site = uid("wmd")
    before = int(time.time() * 1000)
    item = newjob(srv, site)
    ulid = item["ulid"]
    assert len(ulid) == 26 and str(ULID.from_str(ulid)) == ulid
    assert item == {
        "site": site,
        "ulid": ulid,
        "statusId": f"UNREAD#{ulid}",
        "action": "expose",
        "deviceType": "camera",
        "deviceInstance": "camera1",
        "required_params": {"time": "1", "image_type": "light"},
        "optional_params": {"filter": "air", "count": "1"},
        "user_name": "Ada Observer",
        "user_id": "auth0|ada",
        "user_roles": [],  # the token's roles claim lists none
        "timestamp_ms": ULID.from_str(ulid).milliseconds,
    }
    assert before - 5 <= item["timestamp_ms"] <= time.time() * 1000 + 5


# Every key of the original's job item (its `newJob` entry), and the one a status update adds.
ITEM_KEYS = {
    "site",
    "ulid",
    "statusId",
    "user_name",
    "user_id",
    "user_roles",
    "timestamp_ms",
    "deviceType",
    "deviceInstance",
    "action",
    "optional_params",
    "required_params",
}


def test_every_item_carries_the_users_roles(srv: Server) -> None:
    """The site software reads `cmd["user_roles"]` (run commands; its admin/owner-only mode
    for every command): a KeyError there dropped the rest of a poll's batch."""
    site = uid("wmd")
    token = KEYS.token("auth0|ada", roles=["owner", "observer"])
    body = job_body(site, action="run", user_roles=["admin"])  # the body's claim is not taken
    r = post(srv, "newjob", body, token)
    assert r.status_code == 200, r.text
    made = r.json()
    assert set(made) == ITEM_KEYS and made["user_roles"] == ["owner", "observer"]
    plain = newjob(srv, site, token=srv.token)  # gnomon's own token: no roles claim
    assert plain["user_roles"] == []
    taken = post(srv, "getnewjobs", {"site": site}).json()
    assert [set(j) for j in taken] == [ITEM_KEYS, ITEM_KEYS]
    assert [j["user_roles"] for j in taken] == [["owner", "observer"], []]
    # What the site software keeps in its admin/owner-only mode:
    assert [("admin" in c["user_roles"]) or ("owner" in c["user_roles"]) for c in taken] == [
        True,
        False,
    ]
    post(srv, "updatejobstatus", {"site": site, "ulid": made["ulid"], "newStatus": "STARTED"})
    recent = post(srv, "getrecentjobs", {"site": site}).json()
    assert set(recent[0]) == ITEM_KEYS | {"secondsUntilComplete"}
    assert recent[0]["user_roles"] == ["owner", "observer"] and recent[1]["user_roles"] == []


def test_getnewjobs_takes_each_job_once(srv: Server) -> None:
    site = uid("wmd")
    jobs = [newjob(srv, site, action=f"a{i}") for i in range(3)]
    r = post(srv, "getnewjobs", {"site": site})
    assert r.status_code == 200, r.text
    taken = r.json()
    assert [j["ulid"] for j in taken] == [j["ulid"] for j in jobs]  # oldest first
    assert [j["statusId"] for j in taken] == [f"UNREAD#{j['ulid']}" for j in jobs]
    assert post(srv, "getnewjobs", {"site": site}).json() == []
    recent = post(srv, "getrecentjobs", {"site": site}).json()
    assert [j["statusId"] for j in recent] == [f"RECEIVED#{j['ulid']}" for j in jobs]
    text_error(post(srv, "getnewjobs", {}), 400, "Error: missing required key site")
    text_error(post(srv, "getnewjobs", {"site": 7}), 400)
    text_error(post(srv, "getnewjobs", {"site": site, "wait_s": "soon"}), 400)


def test_getnewjobs_long_polls(srv: Server) -> None:
    site = uid("wmd")
    newjob(srv, site, action="warmup")  # the face's job for the site exists
    post(srv, "getnewjobs", {"site": site})
    got: list[Any] = []
    poller = threading.Thread(
        target=lambda: got.append(post(srv, "getnewjobs", {"site": site, "wait_s": 10}).json())
    )
    poller.start()
    time.sleep(0.3)
    item = newjob(srv, site)
    poller.join(15)
    assert [j["ulid"] for j in got[0]] == [item["ulid"]]


def test_status_updates(srv: Server) -> None:
    site = uid("wmd")
    item = newjob(srv, site)
    ulid = item["ulid"]
    post(srv, "getnewjobs", {"site": site})
    r = post(
        srv,
        "updatejobstatus",
        {"site": site, "ulid": ulid, "newStatus": "EXPOSING", "secondsUntilComplete": 5},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"ulid": ulid, "statusId": f"EXPOSING#{ulid}", "secondsUntilComplete": 5}
    recent = post(srv, "getrecentjobs", {"site": site}).json()
    assert recent[0]["statusId"] == f"EXPOSING#{ulid}" and recent[0]["secondsUntilComplete"] == 5
    r = post(
        srv,
        "updatejobstatus",
        {"site": site, "ulid": ulid, "newStatus": "READING", "secondsUntilComplete": 2.5},
    )
    assert r.json()["secondsUntilComplete"] == 2.5
    r = post(srv, "updatejobstatus", {"site": site, "ulid": ulid, "newStatus": "SAVING"})
    assert r.json()["secondsUntilComplete"] == -1  # none given: -1
    r = post(srv, "updatejobstatus", {"site": site, "ulid": ulid, "newStatus": "COMPLETE"})
    assert r.json()["statusId"] == f"COMPLETE#{ulid}"
    with srv.client() as admin:
        run = admin.get(f"/v1/runs/{ulid}").json()
        assert (run["state"], run["status"]) == ("succeeded", "COMPLETE")
        events = admin.get(f"/v1/runs/{ulid}/events").json()["items"]
    assert [(e["state"], e["status"]) for e in events] == [
        ("queued", None),
        ("claimed", None),
        ("running", "EXPOSING"),
        ("running", "READING"),
        ("running", "SAVING"),
        ("succeeded", "COMPLETE"),
    ]


def test_status_update_errors(srv: Server) -> None:
    site = uid("wmd")
    ulid = newjob(srv, site)["ulid"]
    needs = "Requires 'site' and 'jobId' in the body payload."
    for route in ("updatejobstatus", "startjob"):
        text_error(post(srv, route, {"ulid": ulid, "newStatus": "X"}), 400, needs)
        text_error(post(srv, route, {"site": site, "newStatus": "X"}), 400, needs)
        text_error(
            post(srv, route, {"site": site, "ulid": str(ULID()), "newStatus": "X"}), 404
        )  # unknown: JSON, see test_an_unknown_ulid_answers_json
        text_error(
            post(srv, route, {"site": uid("other"), "ulid": ulid, "newStatus": "X"}), 404
        )  # not its site
        text_error(post(srv, route, {"site": site, "ulid": 12, "newStatus": "X"}), 404)
    text_error(
        post(srv, "updatejobstatus", {"site": site, "ulid": ulid}),
        400,
        "Error: missing required key newStatus",
    )
    for bad in ("soon", True, [], {"s": 1}, -5):
        body = {"site": site, "ulid": ulid, "newStatus": "X", "secondsUntilComplete": bad}
        text_error(post(srv, "updatejobstatus", body), 400)
    text_error(post(srv, "updatejobstatus", {"site": site, "ulid": ulid, "newStatus": 3}), 400)
    text_error(
        post(srv, "updatejobstatus", {"site": site, "ulid": ulid, "newStatus": "UNREAD"}), 409
    )
    # A job never polled for can still be reported on: the site took it.
    r = post(srv, "startjob", {"site": site, "ulid": ulid, "secondsUntilComplete": 30})
    assert r.status_code == 200, r.text
    assert r.json() == {"ulid": ulid, "statusId": f"STARTED#{ulid}", "secondsUntilComplete": 30}
    assert post(srv, "getnewjobs", {"site": site}).json() == []


def test_an_unknown_ulid_answers_json(srv: Server) -> None:
    """The README's own example calls `response.json()` on every answer. The original
    answered 200 for any ulid (its table made a sparse item); gnomon says 404, in JSON."""
    site = uid("wmd")
    newjob(srv, site)
    unknown = "01E4C33S9ZFGS8P0K31FH9FDTN"
    payload = {"site": site, "ulid": unknown, "newStatus": "STARTED", "secondsUntilComplete": 5}
    r = post(srv, "updatejobstatus", payload)
    assert r.status_code == 404
    assert r.json() == f"Error: no job {unknown} at site {site}"
    assert post(srv, "startjob", payload).json() == r.json()
    assert post(srv, "getrecentjobs", {"site": site}).json()[0]["ulid"] != unknown


def test_getrecentjobs_time_range(srv: Server) -> None:
    site = uid("wmd")
    old = newjob(srv, site, action="old")
    time.sleep(0.6)
    new = newjob(srv, site, action="new")
    everything = post(srv, "getrecentjobs", {"site": site}).json()
    assert [j["ulid"] for j in everything] == [old["ulid"], new["ulid"]]
    recent = post(srv, "getrecentjobs", {"site": site, "timeRange": 400}).json()
    assert [j["ulid"] for j in recent] == [new["ulid"]]
    assert post(srv, "getrecentjobs", {"site": uid("empty")}).json() == []
    text_error(post(srv, "getrecentjobs", {}), 400, "Error: missing required key site")
    text_error(post(srv, "getrecentjobs", {"site": site, "timeRange": "day"}), 400)
    text_error(post(srv, "getrecentjobs", {"site": site, "timeRange": -1}), 400)


def test_cancel_all_commands(srv: Server) -> None:
    site = uid("wmd")
    waiting = newjob(srv, site, action="expose")
    started = newjob(srv, site, action="focus")
    post(srv, "getnewjobs", {"site": site})
    post(srv, "startjob", {"site": site, "ulid": started["ulid"]})
    queued = newjob(srv, site, action="park")
    post(srv, "updatejobstatus", {"site": site, "ulid": queued["ulid"], "newStatus": "COMPLETE"})
    cancel = newjob(srv, site, action="cancel_all_commands")
    assert cancel["statusId"].startswith("UNREAD#")
    # The original deleted every earlier job of the site: none is listed any more.
    recent = post(srv, "getrecentjobs", {"site": site}).json()
    assert [j["ulid"] for j in recent] == [cancel["ulid"]]
    assert [j["ulid"] for j in post(srv, "getnewjobs", {"site": site}).json()] == [cancel["ulid"]]
    later = newjob(srv, site, action="park")
    recent = post(srv, "getrecentjobs", {"site": site}).json()
    assert [j["ulid"] for j in recent] == [cancel["ulid"], later["ulid"]]
    r = post(
        srv, "updatejobstatus", {"site": site, "ulid": started["ulid"], "newStatus": "COMPLETE"}
    )
    text_error(r, 409)
    with srv.client() as admin:  # gnomon's ledger keeps them
        states = {
            j["ulid"]: admin.get(f"/v1/runs/{j['ulid']}").json()["state"]
            for j in (waiting, started, queued)
        }
    assert states == {
        waiting["ulid"]: "cancelled",
        started["ulid"]: "cancelled",
        queued["ulid"]: "succeeded",
    }


def _reserve_now(srv: Server, site: str, token: str) -> httpx.Response:
    """Reserve `site` from five minutes ago for an hour, with `token`."""
    now = datetime.now(UTC)
    window = {
        "start": (now - timedelta(minutes=5)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
    }
    r = httpx.post(
        f"{srv.url}/v1/sites/{site}/reservations",
        json=window,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text
    return r


def test_reservations_hold_the_site(srv: Server) -> None:
    site = uid("wmd")
    bob = KEYS.token("auth0|bob")
    r = _reserve_now(srv, site, bob)
    # A JWT's subject is a principal of its own, never a token id: `jwt:<sub>`.
    assert r.json()["owner"] == "jwt:auth0|bob" and r.json()["owner_name"] == "User auth0|bob"
    text_error(
        post(srv, "newjob", job_body(site), KEYS.token("auth0|ada")),
        401,
        "Someone else has a reservation right now. Please see the calendar for details.",
    )
    assert post(srv, "newjob", job_body(site, user_id="auth0|bob"), bob).status_code == 200
    admin = KEYS.token("auth0|root", roles=["admin"])
    assert post(srv, "newjob", job_body(site, user_id="auth0|root"), admin).status_code == 200
    r = post(srv, "newjob", job_body(site, action="cancel_all_commands"), KEYS.token("auth0|ada"))
    text_error(r, 401)
    assert len(post(srv, "getrecentjobs", {"site": site}).json()) == 2  # nothing cancelled


def test_a_reservation_matches_the_user_the_body_names(srv: Server) -> None:
    """The original matched the reservation against the body's `user_id`: a service acting
    for the holder (a gnomon token) may queue; a JWT must name its own subject."""
    site = uid("wmd")
    bob = KEYS.token("auth0|bob")
    r = _reserve_now(srv, site, bob)
    with srv.client() as admin:
        r = admin.post("/v1/tokens", json={"name": uid("svc"), "roles": {"default": "developer"}})
        service = r.json()["token"]
    made = post(srv, "newjob", job_body(site, user_id="auth0|bob"), service)
    assert made.status_code == 200, made.text
    assert made.json()["user_id"] == "auth0|bob"
    reserved = "Someone else has a reservation right now. Please see the calendar for details."
    text_error(post(srv, "newjob", job_body(site, user_id="auth0|ada"), service), 401, reserved)
    # Both named: they must be the same user.
    text_error(
        post(srv, "newjob", job_body(site, user_id="auth0|bob"), KEYS.token("auth0|ada")), 401
    )
    text_error(post(srv, "newjob", job_body(site, user_id="auth0|ada"), bob), 401)
    elsewhere = uid("wmd")  # no reservation: still one user, or none
    text_error(post(srv, "newjob", job_body(elsewhere, user_id="auth0|eve"), bob), 401)
    assert post(srv, "newjob", job_body(elsewhere, user_id="auth0|bob"), bob).status_code == 200
    assert len(post(srv, "getrecentjobs", {"site": site}).json()) == 1


def test_cors_and_preflight(srv: Server) -> None:
    for route in ("newjob", "getnewjobs", "updatejobstatus", "startjob", "getrecentjobs"):
        r = httpx.options(
            f"{srv.url}/jobs/{route}",
            headers={
                "Origin": "https://www.photonranch.org",
                "Access-Control-Request-Method": "POST",
            },
        )
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "*"
        assert r.headers["access-control-allow-credentials"] == "true"
        assert r.headers["access-control-allow-methods"] == "OPTIONS,POST"
        assert "Authorization" in r.headers["access-control-allow-headers"]
    ok = post(srv, "getrecentjobs", {"site": uid("wmd")})
    assert ok.headers["access-control-allow-origin"] == "*"
    assert ok.headers["access-control-allow-credentials"] == "true"


def test_malformed_input_is_a_4xx_in_json(srv: Server) -> None:
    site = uid("wmd")
    routes = ("newjob", "getnewjobs", "updatejobstatus", "startjob", "getrecentjobs")
    bodies: list[Any] = [
        b"{",
        b"[1, 2]",
        b'"x"',
        b"null",
        b"\xff\xfe",
        {"site": None},
        {"site": "a b"},
    ]
    bodies += [
        {"site": "x" * 100},
        {"site": site, "ulid": "\u0000" * 26},
        {"site": site, "timeRange": 10**30},
    ]
    for route in routes:
        for body in bodies:
            r = post(srv, route, body, KEYS.token("auth0|ada"))
            assert 400 <= r.status_code < 500, (route, body, r.status_code, r.text)
            assert r.headers["content-type"] == "application/json", (route, body, r.headers)
            assert isinstance(r.json(), str), (route, body, r.text)
            assert r.headers["access-control-allow-origin"] == "*"
    text_error(httpx.get(f"{srv.url}/jobs/newjob"), 405)
    text_error(httpx.post(f"{srv.url}/jobs/nothing", content=b"{}"), 404)


def test_a_subscriber_sees_the_job_move(srv: Server) -> None:
    """Browser-free: an SSE client on the site sees UNREAD → RECEIVED → STARTED → COMPLETE."""
    site = uid("wmd")
    with httpx.stream("GET", f"{srv.url}/jobs/events/{site}", timeout=SSE_TIMEOUT) as stream:
        assert stream.status_code == 200
        assert stream.headers["access-control-allow-origin"] == "*"
        ulid = newjob(srv, site)["ulid"]
        post(srv, "getnewjobs", {"site": site})
        post(srv, "startjob", {"site": site, "ulid": ulid, "secondsUntilComplete": 10})
        post(srv, "updatejobstatus", {"site": site, "ulid": ulid, "newStatus": "COMPLETE"})
        seen = []
        for event in sse_events(stream, time.monotonic() + 15):
            seen.append(event["data"])
            if event["data"]["data"]["statusId"].startswith("COMPLETE"):
                break
    assert {(m["topic"], m["site"]) for m in seen} == {("jobs", site)}
    assert [m["data"]["statusId"] for m in seen] == [
        f"{word}#{ulid}" for word in ("UNREAD", "RECEIVED", "STARTED", "COMPLETE")
    ]
    assert seen[2]["data"]["secondsUntilComplete"] == 10


def test_sixteen_pollers_drain_two_thousand_jobs_once(srv: Server) -> None:
    site = uid("wmd")
    first = newjob(srv, site)
    with srv.client() as admin:
        job = admin.get("/v1/jobs", params={"name": f"photonranch:{site}"}).json()["items"][0]
        params = {k: v for k, v in job_body(site).items() if k != "site"}
        r = admin.post(
            "/v1/runs:batch", json={"job": job["id"], "runs": [{"params": params}] * 1999}
        )
        assert r.status_code == 201, r.text
        ids = {first["ulid"], *r.json()["ids"]}
    got: list[str] = []
    lock = threading.Lock()

    def poller(_: int) -> None:
        with httpx.Client(base_url=f"{srv.url}/jobs", timeout=30) as c:
            idle = 0
            while idle < 3:
                items = c.post("/getnewjobs", content=json.dumps({"site": site})).json()
                idle = 0 if items else idle + 1
                with lock:
                    got.extend(i["ulid"] for i in items)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(poller, range(16)))
    assert len(got) == len(set(got)) == 2000  # each exactly once
    assert set(got) == ids  # none lost
