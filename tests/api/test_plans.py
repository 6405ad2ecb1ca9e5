"""/v1/plans over real HTTP: create, read, list, revise, diff, dispatch; who may do what."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.api.helpers import assert_error, create_job, parse_ts, runs_of, space_name, uid
from tests.server import Server

DAY = {"t0": "2026-01-02T00:00:00Z", "t1": "2026-01-03T00:00:00Z"}


def make(api: httpx.Client, **body: Any) -> dict[str, Any]:
    r = api.post("/v1/plans", json={"policy": "basic", **DAY, **body})
    assert r.status_code == 201, r.text
    return r.json()


def test_create_get_and_list(api: httpx.Client) -> None:
    plan = make(api)
    assert plan["policy"] == "basic" and plan["revision"] == 1 and plan["parent_id"] is None
    assert plan["t0"] == "2026-01-02T00:00:00.000000Z"
    assert plan["verified"] is True and plan["verification"]["ok"] is True
    assert set(plan["verification"]["checks"]) == {"window", "overlap", "alt", "sun"}
    assert plan["commands"].startswith("from sorunlib import *")
    blocks = plan["blocks"]
    assert blocks and {b["kind"] for b in blocks} <= {"survey", "calibration"}
    assert [b["t0"] for b in blocks] == sorted(b["t0"] for b in blocks)
    assert api.get(f"/v1/plans/{plan['id']}").json() == plan
    r = api.get(f"/v1/plans/{plan['id']}/commands")
    assert r.status_code == 200 and r.text == plan["commands"]
    listed = api.get("/v1/plans", params={"limit": 1000}).json()["items"]
    mine = [p for p in listed if p["id"] == plan["id"]]
    assert mine and "blocks" not in mine[0] and "problems" not in mine[0]["verification"]


def test_paging(api: httpx.Client) -> None:
    space = space_name()
    assert api.post("/v1/spaces", json={"name": space}).status_code == 201
    ids = [make(api, policy="dummy", space=space)["id"] for _ in range(3)]
    first = api.get("/v1/plans", params={"space": space, "limit": 2}).json()
    assert [p["id"] for p in first["items"]] == ids[::-1][:2]
    rest = api.get("/v1/plans", params={"space": space, "cursor": first["next_cursor"]}).json()
    assert [p["id"] for p in rest["items"]] == ids[:1] and rest["next_cursor"] is None


def test_bad_input(api: httpx.Client) -> None:
    r = api.post("/v1/plans", json={"policy": "nope", **DAY})
    assert_error(r, 422, "invalid_plan")
    assert "Supported policies are" in r.json()["error"]["message"]
    r = api.post("/v1/plans", json={"policy": "basic", "config": {"x": 1}, **DAY})
    assert "'x'" in assert_error(r, 422, "invalid_plan")["message"]
    assert_error(
        api.post("/v1/plans", json={"policy": "basic", "t0": "soon", "t1": DAY["t1"]}),
        422,
        field="t0",
    )
    assert_error(
        api.post("/v1/plans", json={"policy": "basic", "t0": DAY["t1"], "t1": DAY["t0"]}), 422
    )
    assert_error(api.get("/v1/plans/01NOPE0000000000000000000"), 404, "not_found")
    assert_error(
        api.post("/v1/plans", json={"policy": "dummy", "space": "no-such-space", **DAY}), 404
    )


def test_revision_and_diff(api: httpx.Client) -> None:
    plan = make(api, config={"calibration_targets": ["uranus"]})
    rev = api.post(
        f"/v1/plans/{plan['id']}/revisions",
        json={
            "config": {
                "calibration_targets": ["saturn"],
                "rules": {"sun-avoidance": {"min_angle_az": 8}},
            }
        },
    )
    assert rev.status_code == 201, rev.text
    new = rev.json()
    assert new["parent_id"] == plan["id"] and new["revision"] == 2
    assert new["config"] == {
        "calibration_targets": ["saturn"],
        "rules": {"sun-avoidance": {"min_angle_az": 8}},
    }
    # a null removes an override: back to the defaults
    third = api.post(f"/v1/plans/{new['id']}/revisions", json={"config": {"rules": None}}).json()
    assert third["config"] == {"calibration_targets": ["saturn"]} and third["revision"] == 3

    d = api.get(f"/v1/plans/{plan['id']}/diff/{new['id']}").json()
    assert d["from"] == plan["id"] and d["to"] == new["id"]
    assert {b["name"] for b in d["added"]} >= {"saturn"}
    assert {b["name"] for b in d["removed"]} >= {"uranus"}
    assert d["unchanged"] > 0
    survey_names = {b["name"] for b in plan["blocks"] if b["kind"] == "survey"}
    for m in d["moved"]:  # survey blocks that uranus had cut and saturn cuts differently
        assert m["from"]["name"] == m["to"]["name"] and m["to"]["name"] in survey_names
    assert api.get(f"/v1/plans/{new['id']}/diff").json() == d  # against the parent
    same = api.get(f"/v1/plans/{plan['id']}/diff/{plan['id']}").json()
    assert same["added"] == same["removed"] == same["moved"] == []
    assert same["unchanged"] == len(plan["blocks"])
    assert_error(api.get(f"/v1/plans/{plan['id']}/diff"), 422, field="against")
    revs = api.get("/v1/plans", params={"parent": plan["id"]}).json()["items"]
    assert [r["id"] for r in revs] == [new["id"]]

    moved_window = api.post(
        f"/v1/plans/{plan['id']}/revisions", json={"t0": "2026-01-02T06:00:00Z"}
    ).json()
    assert moved_window["t0"] == "2026-01-02T06:00:00.000000Z"
    assert moved_window["t1"] == plan["t1"]


def test_dispatch_to_a_site(api: httpx.Client) -> None:
    plan = make(api, config={"calibration_targets": []})
    site = uid("obs").replace("-", "_")
    r = api.post(f"/v1/plans/{plan['id']}/dispatch", json={"site": site})
    assert r.status_code == 201, r.text
    done = r.json()
    assert done["plan_id"] == plan["id"] and len(done["run_ids"]) == len(plan["blocks"])
    runs = sorted(runs_of(api, job=done["job_id"]), key=lambda x: x["not_before"])
    assert len(runs) == len(plan["blocks"])
    for run, block in zip(runs, plan["blocks"], strict=True):
        assert run["executor"] == f"site:{site}"
        assert parse_ts(run["not_before"]) == parse_ts(block["t0"])
        assert run["params"]["name"] == block["name"] and run["params"]["plan_id"] == plan["id"]
        assert run["params"]["script"].startswith(f"# {block['name']}\nacu.move_to(")
    job = api.get(f"/v1/jobs/{done['job_id']}").json()
    assert job["action"]["type"] == "task" and job["executor"] == f"site:{site}"
    assert done["created"] is True and done["message"].startswith(f"dispatched plan {plan['id']}")
    shown = api.get(f"/v1/plans/{plan['id']}").json()
    assert [(d["site"], d["run_ids"]) for d in shown["dispatches"]] == [(site, done["run_ids"])]


def test_dispatch_is_idempotent(api: httpx.Client) -> None:
    """Dispatching twice queues once; the second answer says what is there already."""
    plan = make(api, policy="dummy", config={"seed": 3})
    site = uid("obs").replace("-", "_")
    url = f"/v1/plans/{plan['id']}/dispatch"
    first = api.post(url, json={"site": site})
    assert first.status_code == 201, first.text
    again = api.post(url, json={"site": site})
    assert again.status_code == 200, again.text
    same = {k: v for k, v in again.json().items() if k not in ("created", "message")}
    assert same == {k: v for k, v in first.json().items() if k not in ("created", "message")}
    assert again.json()["created"] is False
    assert again.json()["message"] == (
        f"plan {plan['id']} was dispatched to site {site} already, at {first.json()['at']} "
        f"({len(plan['blocks'])} run{'s' if len(plan['blocks']) != 1 else ''}); "
        "nothing new was queued"
    )
    assert len(runs_of(api, job=first.json()["job_id"])) == len(plan["blocks"])
    # Another target is another dispatch; a job, once too.
    other = api.post(url, json={"site": site + "_2"})
    assert other.status_code == 201 and other.json()["job_id"] != first.json()["job_id"]
    job = create_job(api)
    by_name = api.post(url, json={"job": job["name"]})
    by_id = api.post(url, json={"job": job["id"]})
    assert (by_name.status_code, by_id.status_code) == (201, 200)
    assert by_id.json()["run_ids"] == by_name.json()["run_ids"]
    assert len(runs_of(api, job=job["id"])) == 1
    shown = api.get(f"/v1/plans/{plan['id']}").json()["dispatches"]
    assert [d["site"] for d in shown] == [site, site + "_2", None]


def test_concurrent_dispatches_queue_once(api: httpx.Client, server: Server) -> None:
    """The database's key decides, not a look before the write: 12 requests at once."""
    plan = make(api, policy="dummy", config={"seed": 5})
    site = uid("obs").replace("-", "_")
    url = f"{server.url}/v1/plans/{plan['id']}/dispatch"
    headers = {"Authorization": f"Bearer {server.token}"}
    start = threading.Barrier(12)

    def dispatch(_: int) -> httpx.Response:
        start.wait()
        return httpx.post(url, json={"site": site}, headers=headers, timeout=30)

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(dispatch, range(12)))
    assert sorted(r.status_code for r in answers) == [200] * 11 + [201], [r.text for r in answers]
    assert len({tuple(r.json()["run_ids"]) for r in answers}) == 1
    job_id = answers[0].json()["job_id"]
    assert len(runs_of(api, job=job_id)) == len(plan["blocks"])
    assert len(api.get(f"/v1/plans/{plan['id']}").json()["dispatches"]) == 1


def test_dispatch_as_one_job(api: httpx.Client) -> None:
    plan = make(api)
    job = create_job(api)
    r = api.post(f"/v1/plans/{plan['id']}/dispatch", json={"job": job["name"]})
    assert r.status_code == 201, r.text
    (run_id,) = r.json()["run_ids"]
    run = api.get(f"/v1/runs/{run_id}").json()
    assert run["job_id"] == job["id"]
    assert run["params"]["commands"] == plan["commands"]
    assert parse_ts(run["not_before"]) == parse_ts(plan["blocks"][0]["t0"])


def test_dispatch_input(api: httpx.Client) -> None:
    plan = make(api, policy="dummy")
    url = f"/v1/plans/{plan['id']}/dispatch"
    assert_error(api.post(url, json={}), 422)
    assert_error(api.post(url, json={"site": "a", "job": "b"}), 422)
    assert_error(api.post(url, json={"site": "bad site!"}), 422)
    assert_error(api.post(url, json={"job": uid("missing")}), 404)


def test_access(api: httpx.Client, server: Server) -> None:
    space = space_name()
    assert api.post("/v1/spaces", json={"name": space}).status_code == 201
    tokens = {}
    for role in ("viewer", "developer"):
        r = api.post("/v1/tokens", json={"name": uid(role), "roles": {space: role}})
        tokens[role] = r.json()["token"]
    plan = make(api, policy="dummy", space=space)
    with server.client(tokens["viewer"]) as viewer:
        assert viewer.get(f"/v1/plans/{plan['id']}").status_code == 200
        assert_error(viewer.post("/v1/plans", json={"policy": "dummy", "space": space, **DAY}), 403)
        assert_error(viewer.post(f"/v1/plans/{plan['id']}/revisions", json={}), 403)
        assert_error(viewer.post(f"/v1/plans/{plan['id']}/dispatch", json={"site": "s"}), 403)
        assert_error(viewer.get("/v1/plans", params={"space": "default"}), 403)
    with server.client(tokens["developer"]) as dev:
        assert (
            dev.post("/v1/plans", json={"policy": "dummy", "space": space, **DAY}).status_code
            == 201
        )
        assert_error(dev.get(f"/v1/plans/{make(api, policy='dummy')['id']}"), 403)
    with httpx.Client(base_url=server.url) as anon:
        assert_error(anon.get("/v1/plans"), 401)


def test_policies(api: httpx.Client) -> None:
    items = {p["name"]: p["defaults"] for p in api.get("/v1/policies").json()["items"]}
    assert list(items) == ["dummy", "basic"]
    assert items["basic"]["rules"]["sun-avoidance"] == {
        "min_angle_az": 6.0,
        "min_angle_alt": 6.0,
        "time_step": 10.0,
        "n_buffer": 3,
    }
    assert items["basic"]["calibration_targets"] == ["uranus", "saturn"]


def test_a_plan_window_past_the_limit_is_refused(api: httpx.Client) -> None:
    week = {"t0": "2026-01-01T00:00:00Z", "t1": "2026-01-09T00:00:00Z"}
    err = assert_error(api.post("/v1/plans", json={"policy": "basic", **week}), 422, "invalid_plan")
    assert "7 days" in err["message"] and "GNOMON_PLAN_WINDOW_MAX_S" in err["message"]
    plan = make(api)
    r = api.post(f"/v1/plans/{plan['id']}/revisions", json={"t1": "2026-02-01T00:00:00Z"})
    assert_error(r, 422, "invalid_plan")
