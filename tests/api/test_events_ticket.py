"""POST /v1/events/ticket: a short-lived ticket that opens the event stream for clients that
cannot send an Authorization header (a browser's EventSource)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx

from gnomon.service.access import ticket_mac
from tests.api.helpers import assert_error, create_job, space_name, trigger, uid
from tests.api.test_events import SSE_TIMEOUT, read_until
from tests.server import Server


def ticket(api: httpx.Client) -> str:
    r = api.post("/v1/events/ticket")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["expires_at"].endswith("Z")
    return body["ticket"]


def anonymous(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


def server_key(server: Server) -> bytes:
    """The key the server signs tickets with (its key file: nothing in the database)."""
    return (server.data_dir / "secret.key").read_text().strip().encode()


def test_a_ticket_opens_the_stream_without_a_header(api: httpx.Client, server: Server) -> None:
    job = create_job(api)
    t = ticket(api)
    with (
        anonymous(server) as anon,
        anon.stream(
            "GET", "/v1/events", params={"job": job["id"], "ticket": t}, timeout=SSE_TIMEOUT
        ) as stream,
    ):
        assert stream.status_code == 200
        trigger(api, job["id"])
        events = read_until(stream, lambda ev: ev[-1]["data"]["state"] == "succeeded")
    assert [e["data"]["state"] for e in events][-1] == "succeeded"


def test_a_ticket_is_not_a_token(api: httpx.Client, server: Server) -> None:
    t = ticket(api)
    with anonymous(server) as anon:
        assert_error(anon.get("/v1/jobs", headers={"Authorization": f"Bearer {t}"}), 401)
        assert_error(anon.get("/v1/jobs", params={"ticket": t}), 401)
        assert_error(anon.post("/v1/events/ticket"), 401)


def test_bad_tickets_are_refused_with_a_reason(api: httpx.Client, server: Server) -> None:
    with anonymous(server) as anon:
        for bad, words in [
            ("", "malformed"),
            ("nothing", "malformed"),
            ("a.b.c", "malformed"),
            ("01HZZZZZZZZZZZZZZZZZZZZZZZ.99999999999.00", "invalid"),
            ("x" * 201, None),
        ]:
            r = anon.get("/v1/events", params={"ticket": bad})
            err = assert_error(r, 422 if len(bad) > 200 else 401)
            if words:
                assert words in err["message"], err
        t = ticket(api)
        token_id, expires, mac = t.split(".")
        forged = f"{token_id}.{int(expires) + 3600}.{mac}"  # a longer life, same signature
        assert (
            "invalid"
            in assert_error(anon.get("/v1/events", params={"ticket": forged}), 401)["message"]
        )


def test_expired_and_revoked_tickets_are_refused(api: httpx.Client, server: Server) -> None:
    space = space_name()
    assert api.post("/v1/spaces", json={"name": space}).status_code == 201
    r = api.post("/v1/tokens", json={"name": uid("tok"), "roles": {space: "viewer"}})
    made = r.json()
    secret = made["token"]
    key = server_key(server)
    old = int(time.time()) - 5
    expired = f"{made['id']}.{old}.{ticket_mac(key, made['id'], old)}"
    with anonymous(server) as anon:
        err = assert_error(anon.get("/v1/events", params={"ticket": expired}), 401)
        assert "expired" in err["message"]
        viewer = {"Authorization": f"Bearer {secret}"}
        fresh = anon.post("/v1/events/ticket", headers=viewer).json()["ticket"]
        assert api.delete(f"/v1/tokens/{made['id']}").status_code == 204
        assert_error(anon.get("/v1/events", params={"ticket": fresh}), 401)


def test_a_ticket_sees_only_its_tokens_spaces(api: httpx.Client, server: Server) -> None:
    mine, other = space_name(), space_name()
    for s in (mine, other):
        assert api.post("/v1/spaces", json={"name": s}).status_code == 201
    r = api.post("/v1/tokens", json={"name": uid("tok"), "roles": {mine: "viewer"}})
    viewer = {"Authorization": f"Bearer {r.json()['token']}"}
    with anonymous(server) as anon:
        t = anon.post("/v1/events/ticket", headers=viewer).json()["ticket"]
        assert_error(anon.get("/v1/events", params={"ticket": t, "space": other}), 403)
        theirs = create_job(api, space=other)
        ours = create_job(api, space=mine)
        with anon.stream("GET", "/v1/events", params={"ticket": t}, timeout=SSE_TIMEOUT) as stream:
            trigger(api, theirs["id"])
            trigger(api, ours["id"])
            events = read_until(stream, lambda ev: ev[-1]["data"]["state"] == "succeeded")
    assert {e["data"]["job_id"] for e in events} == {ours["id"]}


def test_what_the_database_holds_cannot_sign_a_ticket(api: httpx.Client, server: Server) -> None:
    key_file = server.data_dir / "secret.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    r = api.post("/v1/tokens", json={"name": uid("tok"), "admin": True})
    made = r.json()
    stored = hashlib.sha256(made["token"].encode()).hexdigest()  # the tokens table's hash
    expires = int(time.time()) + 60
    forged = f"{made['id']}.{expires}.{ticket_mac(stored.encode(), made['id'], expires)}"
    with anonymous(server) as anon:
        err = assert_error(anon.get("/v1/events", params={"ticket": forged}), 401)
        assert "invalid" in err["message"]
        real = f"{made['id']}.{expires}.{ticket_mac(server_key(server), made['id'], expires)}"
        with anon.stream(
            "GET", "/v1/events", params={"ticket": real}, timeout=SSE_TIMEOUT
        ) as stream:
            assert stream.status_code == 200


def test_servers_sharing_a_database_share_the_ticket_key(postgres_url: str, tmp_path: Path) -> None:
    shared = {"GNOMON_SECRET_KEY": "k" * 40}
    a = Server(tmp_path / "a", postgres_url, **shared).start()
    b = Server(tmp_path / "b", postgres_url, **shared).start()
    c = Server(tmp_path / "c", postgres_url).start()  # its own key file
    try:
        with a.client(a.token) as api:
            t = ticket(api)
        for other, status in ((b, 200), (c, 401)):
            with (
                anonymous(other) as anon,
                anon.stream("GET", "/v1/events", params={"ticket": t}, timeout=SSE_TIMEOUT) as s,
            ):
                assert s.status_code == status
        assert not (tmp_path / "a" / "secret.key").exists()
    finally:
        for srv in (a, b, c):
            srv.stop()
