"""/v1/sites: claims (exactly once, long-poll, leases), reports, reservations, site view, SSE."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.api.helpers import (
    assert_error,
    create_job,
    delete,
    get_run,
    history,
    space_name,
    sse_events,
    trigger,
    uid,
)
from tests.server import Server

TASK = {"type": "task", "name": "expose", "params": {"filter": "air"}}
SSE_TIMEOUT = httpx.Timeout(10.0, read=5.0)


def site_job(api: httpx.Client, **fields: Any) -> tuple[str, dict[str, Any]]:
    site = uid("site")
    return site, create_job(api, TASK, executor=f"site:{site}", **fields)


def token(api: httpx.Client, role: str = "developer", space: str = "default") -> dict[str, Any]:
    r = api.post("/v1/tokens", json={"name": uid("agent"), "roles": {space: role}})
    assert r.status_code == 201, r.text
    return r.json()


def client(server: Server, tok: dict[str, Any]) -> httpx.Client:
    return server.client(tok["token"])


def claim(api: httpx.Client, site: str, **body: Any) -> list[dict[str, Any]]:
    r = api.post(f"/v1/sites/{site}/claim", json=body)
    assert r.status_code == 200, r.text
    return r.json()["runs"]


def report(api: httpx.Client, run_id: str, **body: Any) -> dict[str, Any]:
    r = api.post(f"/v1/runs/{run_id}/report", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_claim_report_run_to_the_end(server: Server, api: httpx.Client) -> None:
    site, job = site_job(api)
    runs = [trigger(api, job["id"]) for _ in range(3)]
    assert {get_run(api, r["id"])["state"] for r in runs} == {"queued"}  # nobody runs them
    first = claim(api, site, max=2, agent="dome-1")
    assert [r["id"] for r in first] == [r["id"] for r in runs[:2]]  # oldest first
    for r in first:
        assert r["state"] == "claimed" and r["worker_id"].startswith("dome-1@")
        assert r["action"] == TASK and r["job_name"] == job["name"]
        assert r["lease_expires_at"]
    assert [r["id"] for r in claim(api, site, max=5)] == [runs[2]["id"]]
    assert claim(api, site) == []

    run_id = first[0]["id"]
    moved = report(api, run_id, status="EXPOSING", eta_s=30, output="hello\n")
    assert moved["state"] == "running" and moved["status"] == "EXPOSING"
    assert moved["eta_s"] == 30 and moved["started_at"]
    report(api, run_id, status="READING OUT", output="world\n")
    done = report(api, run_id, exit_code=0, status="COMPLETE", output="bye\n")
    assert done["state"] == "succeeded" and done["exit_code"] == 0 and done["finished_at"]
    assert api.get(f"/v1/runs/{run_id}/log").text == "hello\nworld\nbye\n"
    assert [(e["state"], e["status"]) for e in history(api, run_id)] == [
        ("queued", None),
        ("claimed", None),
        ("running", "EXPOSING"),
        ("running", "READING OUT"),
        ("succeeded", "COMPLETE"),
    ]
    # Said again (a reply lost on the way): the same answer, nothing changes.
    again = api.post(f"/v1/runs/{run_id}/report", json={"state": "succeeded"})
    assert again.status_code == 200 and again.json()["state"] == "succeeded"
    failed = report(api, first[1]["id"], exit_code=3, message="shutter stuck")
    assert failed["state"] == "failed" and failed["message"] == "shutter stuck"


def test_reports_only_from_the_lease_holder(server: Server, api: httpx.Client) -> None:
    site, job = site_job(api)
    holder, other = token(api), token(api)
    viewer = token(api, "viewer")
    run = trigger(api, job["id"])
    with client(server, holder) as h, client(server, other) as o, client(server, viewer) as v:
        assert_error(v.post(f"/v1/sites/{site}/claim", json={}), 403, "forbidden")
        assert [r["id"] for r in claim(h, site)] == [run["id"]]
        assert_error(o.post(f"/v1/runs/{run['id']}/report", json={"status": "X"}), 403)
        assert report(h, run["id"], status="MINE")["status"] == "MINE"
    assert report(api, run["id"], status="ADMIN")["status"] == "ADMIN"  # admins may


def test_bad_reports_and_claims_are_refused(api: httpx.Client) -> None:
    site, job = site_job(api, retry={"max_attempts": 2, "backoff_s": 60})
    run = trigger(api, job["id"])
    url = f"/v1/runs/{run['id']}/report"
    assert_error(api.post(url, json={"status": "early"}), 409, "conflict")  # not claimed
    claim(api, site)
    assert_error(api.post(url, json={"state": "lost"}), 422, field="state")
    assert_error(api.post(url, json={"exit_code": "zero"}), 422, field="exit_code")
    assert_error(api.post(url, json={"eta_s": -2}), 422, field="eta_s")
    assert_error(api.post(url, json={"bogus": 1}), 422, field="bogus")
    assert_error(api.post(url, json={"attempt": 2}), 409, "conflict")
    assert_error(api.post(url, content=b"{"), 400, "bad_json")
    assert_error(api.post("/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV/report", json={}), 404)
    local = trigger(api, create_job(api)["id"])
    assert_error(api.post(f"/v1/runs/{local['id']}/report", json={}), 404)
    # A failure retries per the job's policy: the next attempt is queued again.
    again = report(api, run["id"], exit_code=1)
    assert again["state"] == "queued" and again["attempt"] == 2
    assert_error(api.post(url, json={"attempt": 1, "status": "late"}), 409)
    for body in ({"max": 0}, {"max": 1001}, {"wait_s": -1}, {"agent": "bad agent"}):
        assert_error(api.post(f"/v1/sites/{site}/claim", json=body), 422)
    assert_error(api.post("/v1/sites/bad%20site/claim", json={}), 422, field="site")
    assert_error(api.post(f"/v1/sites/{'x' * 64}/claim", json={}), 422, field="site")


def test_long_poll_sees_a_new_run(api: httpx.Client) -> None:
    site, job = site_job(api)
    got: list[list[dict[str, Any]]] = []
    poller = threading.Thread(target=lambda: got.append(claim(api, site, wait_s=10)))
    poller.start()
    time.sleep(0.3)
    run = trigger(api, job["id"])
    poller.join(15)
    assert [r["id"] for r in got[0]] == [run["id"]]
    start = time.monotonic()
    assert claim(api, site, wait_s=0.3) == []  # nothing comes: the wait ends empty
    assert time.monotonic() - start >= 0.25


def test_heartbeats_keep_leases_and_carry_cancels(api: httpx.Client) -> None:
    site, job = site_job(api)
    kept, stopped = trigger(api, job["id"]), trigger(api, job["id"])
    assert len(claim(api, site, max=2, agent="a1")) == 2
    assert api.post(f"/v1/runs/{stopped['id']}/cancel").status_code == 200
    deadline = time.monotonic() + 4  # longer than a lease (3 s in tests)
    while time.monotonic() < deadline:
        r = api.post(f"/v1/sites/{site}/heartbeat", json={"agent": "a1"})
        assert r.status_code == 200, r.text
        time.sleep(0.5)
    assert r.json()["cancel"] == [stopped["id"]]
    assert get_run(api, kept["id"])["state"] == "claimed"
    assert report(api, stopped["id"], state="cancelled")["state"] == "cancelled"


def test_lost_when_the_agent_vanishes(api: httpx.Client) -> None:
    site, job = site_job(api, retry={"max_attempts": 2, "backoff_s": 0})
    run = trigger(api, job["id"])
    claim(api, site)

    def retried() -> bool:
        now = get_run(api, run["id"])
        return now["state"] == "queued" and now["attempt"] == 2

    deadline = time.monotonic() + 10
    while not retried():
        assert time.monotonic() < deadline, get_run(api, run["id"])
        time.sleep(0.2)
    assert [e["state"] for e in history(api, run["id"])] == ["queued", "claimed", "lost", "queued"]
    assert [r["attempt"] for r in claim(api, site)] == [2]


def test_reservations_hold_a_site(server: Server, api: httpx.Client) -> None:
    site, job = site_job(api)
    owner, other = token(api), token(api)
    now = datetime.now(UTC)
    window = {
        "start": (now - timedelta(minutes=1)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
    }
    with client(server, owner) as o, client(server, other) as x:
        r = o.post(f"/v1/sites/{site}/reservations", json={**window, "note": "flats"})
        assert r.status_code == 201, r.text
        res = r.json()
        assert res["owner"] == owner["id"] and res["site"] == site and res["note"] == "flats"
        later = {
            "start": (now + timedelta(minutes=30)).isoformat(),
            "end": (now + timedelta(hours=2)).isoformat(),
        }
        assert_error(x.post(f"/v1/sites/{site}/reservations", json=later), 409, "conflict")
        assert_error(
            x.post(f"/v1/sites/{site}/reservations", json={**later, "end": later["start"]}),
            422,
        )
        assert_error(
            x.post(f"/v1/sites/{site}/reservations", json={**later, "owner": "someone"}), 403
        )
        trigger(o, job["id"])  # the owner may queue work
        err = assert_error(x.post(f"/v1/jobs/{job['id']}/runs", json={}), 403, "reserved")
        assert "reserved" in err["message"]
        r = x.post("/v1/runs:batch", json={"job": job["id"], "runs": [{}]})
        assert_error(r, 403, "reserved")
        trigger(api, job["id"])  # and an admin
        listed = o.get(f"/v1/sites/{site}/reservations").json()["items"]
        assert [i["id"] for i in listed] == [res["id"]]
        assert api.get(f"/v1/sites/{site}").json()["reservation"]["id"] == res["id"]
        assert delete(x, f"/v1/sites/{site}/reservations/{res['id']}").status_code == 403
        assert delete(o, f"/v1/sites/{site}/reservations/{res['id']}").status_code == 204
        assert delete(o, f"/v1/sites/{site}/reservations/{res['id']}").status_code == 404
        trigger(x, job["id"])  # free again
        assert api.get(f"/v1/sites/{site}/reservations").json()["items"] == []


def test_site_view(api: httpx.Client) -> None:
    site, job = site_job(api)
    for _ in range(3):
        trigger(api, job["id"])
    claim(api, site, agent="roof")
    view = api.get(f"/v1/sites/{site}").json()
    assert (view["queued"], view["claimed"], view["running"]) == (2, 1, 0)
    assert [a["id"].split("@")[0] for a in view["agents"]] == ["roof"]
    assert view["agents"][0]["claimed"] == 1 and view["last_contact_at"]
    listed = {s["site"]: s for s in api.get("/v1/sites").json()["items"]}
    assert listed[site]["queued"] == 2
    empty = api.get(f"/v1/sites/{uid('nowhere')}").json()
    assert (empty["queued"], empty["agents"], empty["reservation"]) == (0, [], None)


def test_site_stream_shows_every_change(server: Server, api: httpx.Client) -> None:
    site, job = site_job(api)
    with api.stream("GET", f"/v1/sites/{site}/events", timeout=SSE_TIMEOUT) as stream:
        assert stream.status_code == 200
        run = trigger(api, job["id"])
        claim(api, site)
        report(api, run["id"], status="STARTED")
        report(api, run["id"], status="COMPLETE", exit_code=0)
        seen = []
        for event in sse_events(stream, time.monotonic() + 15):
            seen.append(event)
            if event["data"]["data"]["state"] == "succeeded":
                break
    assert {e["event"] for e in seen} == {"jobs"}
    assert {(e["data"]["topic"], e["data"]["site"]) for e in seen} == {("jobs", site)}
    assert [(e["data"]["data"]["state"], e["data"]["data"]["status"]) for e in seen] == [
        ("queued", None),
        ("claimed", None),
        ("running", "STARTED"),
        ("succeeded", "COMPLETE"),
    ]


def test_sixteen_pollers_drain_two_thousand_runs_once(server: Server, api: httpx.Client) -> None:
    site, job = site_job(api)
    r = api.post("/v1/runs:batch", json={"job": job["id"], "runs": [{}] * 2000})
    assert r.status_code == 201, r.text
    ids = r.json()["ids"]
    got: list[str] = []
    lock = threading.Lock()

    def poller(n: int) -> None:
        with server.client() as c:
            idle = 0
            while idle < 3:
                runs = claim(c, site, max=25, agent=f"p{n}")
                idle = 0 if runs else idle + 1
                with lock:
                    got.extend(r["id"] for r in runs)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(poller, range(16)))
    assert len(got) == len(set(got)) == 2000  # each exactly once
    assert set(got) == set(ids)  # none lost


def tenant(api: httpx.Client, *roles: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """A new space and a token per role in it."""
    space = space_name("site")
    assert api.post("/v1/spaces", json={"name": space}).status_code == 201
    return space, {role: token(api, role, space) for role in roles}


def window() -> dict[str, str]:
    """From a minute ago, for an hour."""
    start = datetime.now(UTC) - timedelta(minutes=1)
    return {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}


def test_reservations_belong_to_the_spaces_that_use_a_site(
    server: Server, api: httpx.Client
) -> None:
    """M1: a developer of a space with no job at a site could reserve it, its users' manager
    could not remove that, and every site view showed other spaces' reservations."""
    site = uid("site")
    a, at = tenant(api, "viewer", "developer", "manager")
    b, bt = tenant(api, "developer", "manager")
    _, ct = tenant(api, "manager")
    a_job = create_job(api, TASK, executor=f"site:{site}", space=a)
    url = f"/v1/sites/{site}/reservations"
    with client(server, bt["developer"]) as bdev:
        assert_error(bdev.post(url, json={**window(), "space": b}), 403, "forbidden")
    create_job(api, TASK, executor=f"site:{site}", space=b)  # now b uses the site too
    with client(server, bt["developer"]) as bdev:
        r = bdev.post(url, json={**window(), "space": b, "note": "b's secret"})
        assert r.status_code == 201, r.text
        held = r.json()
    with client(server, at["viewer"]) as aview:
        shown = aview.get(f"/v1/sites/{site}").json()["reservation"]
        assert shown["id"] == held["id"] and shown["start"] == held["start"]
        assert (shown["space"], shown["owner"], shown["owner_name"], shown["note"]) == (None,) * 4
        listed = aview.get(url).json()["items"]
        assert [(i["id"], i["note"]) for i in listed] == [(held["id"], None)]
    with client(server, at["developer"]) as adev:
        queued = adev.post(f"/v1/jobs/{a_job['id']}/runs", json={})
        err = assert_error(queued, 403, "reserved")
        assert "another space" in err["message"] and "b's" not in err["message"]
    with client(server, ct["manager"]) as cman:  # c does not use the site: none of its own
        assert_error(cman.get(f"/v1/sites/{site}"), 404, "not_found")
        assert_error(cman.get(url), 404, "not_found")
        assert delete(cman, f"{url}/{held['id']}").status_code == 403
    with client(server, at["developer"]) as adev:
        assert delete(adev, f"{url}/{held['id']}").status_code == 403  # a developer may not
    with client(server, at["manager"]) as aman:
        assert delete(aman, f"{url}/{held['id']}").status_code == 204
    free = uid("site")  # a site no space uses yet: the first to come may reserve it
    with client(server, bt["developer"]) as bdev:
        r = bdev.post(f"/v1/sites/{free}/reservations", json={**window(), "space": b})
        assert r.status_code == 201, r.text
        mine = bdev.get(f"/v1/sites/{free}").json()["reservation"]
        assert (mine["id"], mine["owner"]) == (r.json()["id"], bt["developer"]["id"])


def test_agents_only_for_spaces_that_use_a_site(server: Server, api: httpx.Client) -> None:
    """Low: any token could claim or send heartbeats at any site and so be listed as its
    agent; agents of other spaces were shown to every viewer of the site."""
    site = uid("site")
    a, at = tenant(api, "viewer", "developer")
    b, bt = tenant(api, "developer")
    _, ct = tenant(api, "developer")
    create_job(api, TASK, executor=f"site:{site}", space=a)
    create_job(api, TASK, executor=f"site:{site}", space=b)
    with client(server, ct["developer"]) as stranger:
        claim_url, beat_url = f"/v1/sites/{site}/claim", f"/v1/sites/{site}/heartbeat"
        assert_error(stranger.post(claim_url, json={"agent": "intruder"}), 403, "forbidden")
        assert_error(stranger.post(beat_url, json={"agent": "intruder"}), 403, "forbidden")
    for tokens, name in ((at, "a-roof"), (bt, "b-roof")):
        with client(server, tokens["developer"]) as dev:
            assert claim(dev, site, agent=name) == []
    every = [x["id"].split("@")[0] for x in api.get(f"/v1/sites/{site}").json()["agents"]]
    assert sorted(every) == ["a-roof", "b-roof"]  # an admin sees all, and no intruder
    with client(server, at["viewer"]) as aview:
        seen = [x["id"].split("@")[0] for x in aview.get(f"/v1/sites/{site}").json()["agents"]]
        assert seen == ["a-roof"]
    with client(server, ct["developer"]) as stranger:
        assert_error(stranger.get(f"/v1/sites/{site}"), 404, "not_found")
