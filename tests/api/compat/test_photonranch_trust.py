"""The Photon Ranch face's trust boundary over real HTTP: the tokenless site routes reach the
face's own jobs and no native site run, a web page of another site cannot act for a site,
site keys (header and query parameter; required by a setting), and JWT subjects that can
never stand for a gnomon token or the face's own agent. Servers of their own on each backend.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.compat.test_photonranch import AUD, ISS, KEYS, job_body
from tests.api.helpers import create_job, get_run, space_name, trigger, uid
from tests.server import Server, drop_postgres, fresh_postgres

TASK = {"type": "task", "name": "expose", "params": {}}
EVIL = "https://evil.example"


def _server(
    request: pytest.FixtureRequest, factory: pytest.TempPathFactory, **env: str
) -> Iterator[Server]:
    data = factory.mktemp(f"photonranch-trust-{request.param}")
    key = Path(data) / "auth0.pem"
    key.write_bytes(KEYS.pem())
    url = fresh_postgres() if request.param == "postgresql" else None
    server = Server(
        data,
        url,
        GNOMON_JWT_PUBLIC_KEY_FILE=str(key),
        GNOMON_JWT_AUDIENCE=AUD,
        GNOMON_JWT_ISSUER=ISS,
        **env,
    ).start()
    yield server
    server.stop()
    if url:
        drop_postgres(url)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A drop-in server: the site routes open, as in the original."""
    yield from _server(request, tmp_path_factory)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def strict(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server that requires site keys of tokenless callers."""
    yield from _server(request, tmp_path_factory, GNOMON_PHOTONRANCH_REQUIRE_SITE_KEY="true")


def site_post(
    srv: Server,
    route: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """A tokenless POST, as the site software sends it (no Content-Type) unless told."""
    return httpx.post(
        f"{srv.url}/jobs/{route}",
        content=json.dumps(body).encode(),
        headers=headers or {},
        params=params,
        timeout=30,
    )


def newjob(srv: Server, site: str, **over: Any) -> dict[str, Any]:
    r = httpx.post(
        f"{srv.url}/jobs/newjob",
        content=json.dumps(job_body(site, **over)).encode(),
        headers={"Authorization": f"Bearer {srv.token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def ulids(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [j["ulid"] for j in r.json()]


def refused(r: httpx.Response, status: int = 401) -> None:
    assert r.status_code == status, f"{r.status_code} {r.text}"
    assert r.headers["content-type"] == "application/json"
    assert isinstance(r.json(), str)
    assert r.headers["access-control-allow-origin"] == "*"


def set_key(client: httpx.Client, site: str) -> str:
    r = client.post(f"/v1/sites/{site}/key")
    assert r.status_code == 201, r.text
    assert r.json()["site"] == site and r.json()["created_at"]
    return r.json()["key"]


def test_open_routes_reach_only_photonranch_jobs(srv: Server) -> None:
    """H3: a tokenless getnewjobs took native `site:` runs (with a 24 h lease) and
    updatejobstatus marked them COMPLETE."""
    site = uid("dome")
    with srv.client() as admin:
        native = trigger(admin, create_job(admin, TASK, executor=f"site:{site}")["id"])
        face = newjob(srv, site)
        assert ulids(site_post(srv, "getnewjobs", {"site": site})) == [face["ulid"]]
        for route in ("updatejobstatus", "startjob"):
            body = {"site": site, "ulid": native["id"], "newStatus": "COMPLETE"}
            refused(site_post(srv, route, body), 404)
        assert ulids(site_post(srv, "getrecentjobs", {"site": site})) == [face["ulid"]]
        run = get_run(admin, native["id"])
        assert (run["state"], run["status"], run["worker_id"]) == ("queued", None, None)
        # The real agent still gets its run.
        r = admin.post(f"/v1/sites/{site}/claim", json={"agent": "roof"})
        assert [x["id"] for x in r.json()["runs"]] == [native["id"]]


def test_a_web_page_cannot_act_for_a_site(srv: Server) -> None:
    """H3: a `text/plain` POST from any web page took and completed a site's jobs."""
    site = uid("dome")
    face = newjob(srv, site)
    page = {"Origin": EVIL, "Content-Type": "text/plain"}
    refused(site_post(srv, "getnewjobs", {"site": site}, page))
    body = {"site": site, "ulid": face["ulid"], "newStatus": "COMPLETE"}
    refused(site_post(srv, "updatejobstatus", body, page))
    refused(site_post(srv, "startjob", body, page))
    # Reading stays open to the UI on its own origin; the job was not touched.
    r = site_post(srv, "getrecentjobs", {"site": site}, page)
    assert r.headers["access-control-allow-origin"] == "*"
    assert [j["statusId"] for j in r.json()] == [f"UNREAD#{face['ulid']}"]
    assert ulids(site_post(srv, "getnewjobs", {"site": site})) == [face["ulid"]]


def test_site_keys(srv: Server) -> None:
    site, elsewhere = uid("dome"), uid("dome")
    first = newjob(srv, site)
    newjob(srv, elsewhere)
    with srv.client() as admin:
        other = space_name("pr")
        assert admin.post("/v1/spaces", json={"name": other}).status_code == 201
        tokens = {}
        for name, roles in (
            ("manager", {"default": "manager"}),
            ("developer", {"default": "developer"}),
            ("outsider", {other: "manager"}),
        ):
            r = admin.post("/v1/tokens", json={"name": uid(name), "roles": roles})
            tokens[name] = r.json()["token"]
        for name in ("developer", "outsider"):  # a manager of a space that uses the site
            with srv.client(tokens[name]) as c:
                assert c.post(f"/v1/sites/{site}/key").status_code == 403
        with srv.client(tokens["manager"]) as manager:
            key = set_key(manager, site)
            assert manager.get(f"/v1/sites/{site}").json()["key_set"] is True
        other_key = set_key(admin, elsewhere)

        take = {"site": site}
        refused(site_post(srv, "getnewjobs", take))  # the site has a key: it is needed
        refused(site_post(srv, "getnewjobs", take, {"X-Site-Key": "sk_wrong"}))
        refused(site_post(srv, "getnewjobs", take, params={"key": "sk_wrong"}))
        refused(site_post(srv, "getnewjobs", take, {"X-Site-Key": other_key}))
        assert ulids(site_post(srv, "getnewjobs", take, {"X-Site-Key": key})) == [first["ulid"]]
        second = newjob(srv, site)
        assert ulids(site_post(srv, "getnewjobs", take, params={"key": key})) == [second["ulid"]]
        status = {"site": site, "ulid": second["ulid"], "newStatus": "EXPOSING"}
        refused(site_post(srv, "updatejobstatus", status))
        r = site_post(srv, "updatejobstatus", status, {"X-Site-Key": key, "Origin": EVIL})
        assert r.status_code == 200, r.text  # a page that holds the key may
        # Reading stays open; a wrong key is refused there too.
        assert len(ulids(site_post(srv, "getrecentjobs", take))) == 2
        refused(site_post(srv, "getrecentjobs", take, params={"key": "sk_wrong"}))

        assert admin.delete(f"/v1/sites/{site}/key").status_code == 204
        assert admin.delete(f"/v1/sites/{site}/key").status_code == 404
        third = newjob(srv, site)
        # A wrong key is refused even where no key is needed.
        refused(site_post(srv, "getnewjobs", take, {"X-Site-Key": key}))
        assert ulids(site_post(srv, "getnewjobs", take)) == [third["ulid"]]


def test_required_site_keys(strict: Server) -> None:
    site = uid("dome")
    job = newjob(strict, site)
    refused(site_post(strict, "getnewjobs", {"site": site}))
    body = {"site": site, "ulid": job["ulid"]}
    refused(site_post(strict, "startjob", body))
    assert ulids(site_post(strict, "getrecentjobs", {"site": site})) == [job["ulid"]]
    with strict.client() as admin:
        key = set_key(admin, site)
    assert ulids(site_post(strict, "getnewjobs", {"site": site}, {"X-Site-Key": key})) == [
        job["ulid"]
    ]
    r = site_post(strict, "startjob", body, params={"key": key})
    assert r.status_code == 200, r.text
    # A token acts as itself: no key needed.
    later = newjob(strict, site)
    r = httpx.post(
        f"{strict.url}/jobs/getnewjobs",
        content=json.dumps({"site": site}).encode(),
        headers={"Authorization": f"Bearer {strict.token}"},
        timeout=30,
    )
    assert ulids(r) == [later["ulid"]]


def test_a_jwt_subject_never_stands_for_a_token(srv: Server) -> None:
    """A JWT whose `sub` was a token's id (or the face's agent name) could report on that
    token's (or the face's) site runs."""
    site = uid("dome")
    with srv.client() as admin:
        job = create_job(admin, TASK, executor=f"site:{site}")
        run = trigger(admin, job["id"])
        r = admin.post("/v1/tokens", json={"name": uid("agent"), "roles": {"default": "developer"}})
        agent = r.json()
        with srv.client(agent["token"]) as a:
            claimed = a.post(f"/v1/sites/{site}/claim", json={}).json()["runs"]
            assert [x["id"] for x in claimed] == [run["id"]]
        face = newjob(srv, site)
        assert ulids(site_post(srv, "getnewjobs", {"site": site})) == [face["ulid"]]
        for sub, run_id in ((agent["id"], run["id"]), ("photonranch", face["ulid"])):
            mimic = {"Authorization": f"Bearer {KEYS.token(sub)}"}
            r = httpx.post(
                f"{srv.url}/v1/runs/{run_id}/report",
                json={"status": "FORGED", "exit_code": 0},
                headers=mimic,
                timeout=30,
            )
            assert r.status_code == 403, r.text
            assert get_run(admin, run_id)["state"] == "claimed"
