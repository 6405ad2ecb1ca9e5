"""GET /v1/stats: runs by state, queues per executor and site, the last hour, missed slots."""

from __future__ import annotations

import httpx

from tests.api.helpers import assert_error, create_job, shell, space_name, trigger, uid, wait_state
from tests.server import Server


def new_space(api: httpx.Client) -> str:
    name = space_name()
    assert api.post("/v1/spaces", json={"name": name}).status_code == 201
    return name


def test_counts_throughput_and_failure_rate_of_a_space(api: httpx.Client) -> None:
    space = new_space(api)
    ok = create_job(api, space=space)
    bad = create_job(api, space=space, action=shell("exit 4"))
    site = uid("scope")
    waiting = create_job(api, space=space, executor=f"site:{site}", action={"type": "noop"})
    runs = [trigger(api, ok["id"]) for _ in range(3)] + [trigger(api, bad["id"])]
    for r in runs:
        wait_state(api, r["id"])
    trigger(api, waiting["id"])

    s = api.get("/v1/stats", params={"space": space}).json()
    assert s["runs"]["succeeded"] == 3
    assert s["runs"]["failed"] == 1
    assert s["runs"]["queued"] == 1
    assert set(s["runs"]) >= {"pending", "queued", "running", "lost", "timed_out"}
    assert s["queues"] == []  # the local runs are done
    assert s["sites"] == [{"site": site, "queued": 1, "active": 0}]
    assert s["finished"] == 4 and s["failed"] == 1
    assert s["failure_rate"] == 0.25
    assert len(s["throughput"]) == 12 and s["bucket_s"] == 300
    assert sum(b["succeeded"] for b in s["throughput"]) == 3
    assert s["throughput"][-1]["succeeded"] + s["throughput"][-2]["succeeded"] == 3
    assert all(b["start"].endswith("Z") for b in s["throughput"])
    assert s["missed_total"] == 0 and s["missed"] == []


def test_a_viewer_sees_only_its_spaces(api: httpx.Client, server: Server) -> None:
    mine, other = new_space(api), new_space(api)
    wait_state(api, trigger(api, create_job(api, space=other)["id"])["id"])
    r = api.post("/v1/tokens", json={"name": uid("tok"), "roles": {mine: "viewer"}})
    with server.client(r.json()["token"]) as viewer:
        s = viewer.get("/v1/stats").json()
        assert sum(s["runs"].values()) == 0
        assert_error(viewer.get("/v1/stats", params={"space": other}), 403)


def test_bad_parameters_are_named(api: httpx.Client) -> None:
    assert_error(api.get("/v1/stats", params={"window_s": 5}), 422, field="window_s")
    assert_error(api.get("/v1/stats", params={"buckets": 0}), 422, field="buckets")
    assert_error(api.get("/v1/stats", params={"buckets": "x"}), 422, field="buckets")
    assert_error(httpx.get(str(api.base_url) + "/v1/stats"), 401)
