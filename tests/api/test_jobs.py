"""Jobs: create, read, list, change, delete; action and executor validation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import (
    assert_error,
    create_job,
    delete,
    get_run,
    noop,
    shell,
    space_name,
    trigger,
    uid,
    wait_state,
)


def test_create_job_with_defaults(api: httpx.Client) -> None:
    name = uid("defaults")
    r = api.post("/v1/jobs", json={"name": name, "action": {"type": "noop"}})
    assert r.status_code == 201, r.text
    job = r.json()
    assert len(job["id"]) == 26
    assert job["name"] == name
    assert job["space"] == "default"
    assert job["executor"] == "local"
    assert job["timeout_s"] is None
    assert job["action"] == {"type": "noop", "sleep_s": 0.0, "fail": False}
    assert job["retry"]["max_attempts"] == 1
    assert job["concurrency"] == {"max_running": None}
    assert job["params"] == {}
    assert job["created_at"].endswith("Z") and job["updated_at"].endswith("Z")

    got = api.get(f"/v1/jobs/{job['id']}")
    assert got.status_code == 200
    assert got.json() == job


def test_create_job_with_every_field(api: httpx.Client) -> None:
    body = {
        "name": uid("full"),
        "action": shell("echo hi", cwd="/tmp", env={"A": "1"}),
        "executor": "local",
        "timeout_s": 12.5,
        "retry": {"max_attempts": 4, "backoff_s": 2, "on": ["failed"]},
        "concurrency": {"max_running": 2},
        "params": {"x": 1, "y": "two"},
        "space": "default",
    }
    job = create_job(api, **body)
    assert job["action"] == {
        "type": "shell",
        "command": "echo hi",
        "cwd": "/tmp",
        "env": {"A": "1"},
    }
    assert job["timeout_s"] == 12.5
    assert job["retry"]["max_attempts"] == 4
    assert job["retry"]["backoff_s"] == 2
    assert job["retry"]["on"] == ["failed"]
    assert job["concurrency"] == {"max_running": 2}
    assert job["params"] == {"x": 1, "y": "two"}


def test_get_unknown_job_is_404(api: httpx.Client) -> None:
    assert_error(api.get("/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV"), 404, "not_found")


def test_list_pages_with_cursor(api: httpx.Client) -> None:
    prefix = uid("page")
    ids = [create_job(api, name=f"{prefix}-{i}")["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"q": prefix, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = api.get("/v1/jobs", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= 2
        seen += [j["id"] for j in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert seen == sorted(ids)
    assert pages == 3


def test_list_exact_page_has_no_dangling_cursor(api: httpx.Client) -> None:
    prefix = uid("exact")
    for i in range(2):
        create_job(api, name=f"{prefix}-{i}")
    page = api.get("/v1/jobs", params={"q": prefix, "limit": 2}).json()
    assert len(page["items"]) == 2
    if page["next_cursor"] is not None:  # allowed, but then the next page is empty
        nxt = api.get("/v1/jobs", params={"q": prefix, "limit": 2, "cursor": page["next_cursor"]})
        assert nxt.json() == {"items": [], "next_cursor": None}


def test_list_filters_name_q_and_space(api: httpx.Client) -> None:
    tag = uid("filt")
    a = create_job(api, name=f"{tag}-alpha")
    b = create_job(api, name=f"{tag}-beta")
    space = space_name()
    assert api.post("/v1/spaces", json={"name": space}).status_code == 201
    c = create_job(api, name=f"{tag}-alpha", space=space)  # same name, other space: fine

    by_name = api.get("/v1/jobs", params={"name": f"{tag}-alpha"}).json()["items"]
    assert {j["id"] for j in by_name} == {a["id"], c["id"]}

    by_q = api.get("/v1/jobs", params={"q": tag}).json()["items"]
    assert {j["id"] for j in by_q} == {a["id"], b["id"], c["id"]}
    by_q = api.get("/v1/jobs", params={"q": f"{tag}-be"}).json()["items"]
    assert [j["id"] for j in by_q] == [b["id"]]

    in_space = api.get("/v1/jobs", params={"space": space}).json()["items"]
    assert [j["id"] for j in in_space] == [c["id"]]
    in_default = api.get("/v1/jobs", params={"space": "default", "q": tag}).json()["items"]
    assert {j["id"] for j in in_default} == {a["id"], b["id"]}


def test_q_is_a_literal_substring(api: httpx.Client) -> None:
    tag = uid("lit")
    job = create_job(api, name=f"{tag}_x")
    create_job(api, name=f"{tag}-x")
    items = api.get("/v1/jobs", params={"q": f"{tag}_"}).json()["items"]
    assert [j["id"] for j in items] == [job["id"]]
    assert api.get("/v1/jobs", params={"q": f"{tag}%"}).json()["items"] == []


def test_patch_job(api: httpx.Client) -> None:
    job = create_job(api, params={"a": 1})
    new_name = uid("renamed")
    r = api.patch(
        f"/v1/jobs/{job['id']}",
        json={"name": new_name, "timeout_s": 5, "params": {"b": 2}, "action": shell("true")},
    )
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["name"] == new_name
    assert patched["timeout_s"] == 5
    assert patched["params"] == {"b": 2}
    assert patched["action"]["type"] == "shell"
    assert patched["created_at"] == job["created_at"]
    assert patched["updated_at"] >= job["updated_at"]
    assert api.get(f"/v1/jobs/{job['id']}").json() == patched

    # A partial patch leaves the rest alone.
    r = api.patch(f"/v1/jobs/{job['id']}", json={"executor": "site:x"})
    assert r.status_code == 200, r.text
    assert r.json()["executor"] == "site:x"
    assert r.json()["name"] == new_name and r.json()["timeout_s"] == 5

    # timeout_s can be cleared with null.
    r = api.patch(f"/v1/jobs/{job['id']}", json={"timeout_s": None})
    assert r.status_code == 200, r.text
    assert r.json()["timeout_s"] is None


def test_patch_validation(api: httpx.Client) -> None:
    job = create_job(api)
    other = create_job(api)
    assert_error(api.patch(f"/v1/jobs/{job['id']}", json={"colour": "red"}), 422, field="colour")
    assert_error(
        api.patch(f"/v1/jobs/{job['id']}", json={"executor": "k8s"}), 422, field="executor"
    )
    assert_error(api.patch(f"/v1/jobs/{job['id']}", json={"timeout_s": -1}), 422, field="timeout_s")
    assert_error(api.patch(f"/v1/jobs/{job['id']}", json={"name": other["name"]}), 409, "conflict")
    assert_error(api.patch("/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV", json={}), 404, "not_found")


def test_delete_job_keeps_its_runs(api: httpx.Client) -> None:
    job = create_job(api)
    run = trigger(api, job["id"])
    wait_state(api, run["id"])
    r = delete(api, f"/v1/jobs/{job['id']}")
    assert r.status_code == 204
    assert r.content == b""
    assert_error(api.get(f"/v1/jobs/{job['id']}"), 404, "not_found")
    assert_error(delete(api, f"/v1/jobs/{job['id']}"), 404, "not_found")
    assert_error(api.patch(f"/v1/jobs/{job['id']}", json={"timeout_s": 1}), 404, "not_found")
    assert_error(api.post(f"/v1/jobs/{job['id']}/runs"), 404, "not_found")
    names = [j["id"] for j in api.get("/v1/jobs", params={"name": job["name"]}).json()["items"]]
    assert job["id"] not in names
    # Its runs stay readable.
    assert get_run(api, run["id"])["job_id"] == job["id"]
    listed = api.get("/v1/runs", params={"job": job["id"]}).json()["items"]
    assert [r["id"] for r in listed] == [run["id"]]
    # The name is free again.
    assert api.post("/v1/jobs", json={"name": job["name"], "action": noop()}).status_code == 201


def test_duplicate_name_is_409(api: httpx.Client) -> None:
    job = create_job(api)
    r = api.post("/v1/jobs", json={"name": job["name"], "action": noop()})
    assert_error(r, 409, "conflict")


@pytest.mark.parametrize(
    "action",
    [
        {"type": "shell", "command": "echo hi"},
        {"type": "shell", "command": ["echo", "hi"], "cwd": "/tmp", "env": {"K": "v"}},
        {"type": "http", "url": "http://127.0.0.1:9/x"},
        {
            "type": "http",
            "url": "https://example.invalid/hook",
            "method": "PUT",
            "headers": {"X-A": "b"},
            "body": {"k": [1, 2]},
            "expect_status": [200, 204],
        },
        {"type": "http", "url": "http://127.0.0.1:9/", "method": "GET", "body": "text"},
        {"type": "noop"},
        {"type": "noop", "sleep_s": 0.5, "fail": True},
        {"type": "task", "name": "expose", "params": {"filter": "V"}},
    ],
)
def test_valid_actions(api: httpx.Client, action: dict[str, Any]) -> None:
    job = create_job(api, action)
    for key, value in action.items():
        assert job["action"][key] == value


@pytest.mark.parametrize(
    ("action", "needle"),
    [
        ({"type": "shell"}, "command"),
        ({"type": "shell", "command": ""}, "command"),
        ({"type": "shell", "command": []}, "command"),
        ({"type": "shell", "command": "x", "env": {"A": 1}}, "env"),
        ({"type": "shell", "command": "x", "shell": "bash"}, "shell"),
        ({"type": "http"}, "url"),
        ({"type": "http", "url": "ftp://example.com/"}, "url"),
        ({"type": "http", "url": "http://x/", "method": "FETCH"}, "method"),
        ({"type": "http", "url": "http://x/", "expect_status": ["ok"]}, "expect_status"),
        ({"type": "noop", "sleep_s": -1}, "sleep_s"),
        ({"type": "noop", "fail": "maybe"}, "fail"),
        ({"type": "teleport"}, "action"),
        ({"command": "echo"}, "action"),
        ("echo hi", "action"),
    ],
)
def test_invalid_actions_are_422(api: httpx.Client, action: Any, needle: str) -> None:
    r = api.post("/v1/jobs", json={"name": uid("bad"), "action": action})
    err = assert_error(r, 422, "invalid")
    fields = [d["field"] for d in err["details"]]
    assert any(f.startswith("action") and needle in f for f in fields), fields


def test_unknown_fields_are_rejected_by_name(api: httpx.Client) -> None:
    r = api.post("/v1/jobs", json={"name": uid(), "action": noop(), "colour": "red"})
    err = assert_error(r, 422, "invalid", field="colour")
    assert "colour" in err["message"]
    r = api.post("/v1/jobs", json={"name": uid(), "action": noop(), "retry": {"tries": 3}})
    assert_error(r, 422, "invalid", field="retry.tries")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": {"type": "noop"}}, "name"),
        ({"name": uid()}, "action"),
        ({"name": "", "action": {"type": "noop"}}, "name"),
        ({"name": "-leading-dash", "action": {"type": "noop"}}, "name"),
        ({"name": "x" * 201, "action": {"type": "noop"}}, "name"),
        ({"name": uid(), "action": {"type": "noop"}, "timeout_s": 0}, "timeout_s"),
        ({"name": uid(), "action": {"type": "noop"}, "retry": {"max_attempts": 0}}, "retry"),
        ({"name": uid(), "action": {"type": "noop"}, "space": "Not A Space"}, "space"),
        ({"name": uid(), "action": {"type": "noop"}, "params": [1]}, "params"),
    ],
)
def test_invalid_job_fields(api: httpx.Client, body: dict[str, Any], field: str) -> None:
    err = assert_error(api.post("/v1/jobs", json=body), 422, "invalid")
    assert err["details"][0]["field"].startswith(field), err


@pytest.mark.parametrize("executor", ["k8s", "site:", "site:-x", "LOCAL", "slurm ", "site:a b"])
def test_bad_executor_is_422(api: httpx.Client, executor: str) -> None:
    r = api.post("/v1/jobs", json={"name": uid(), "action": noop(), "executor": executor})
    assert_error(r, 422, "invalid", field="executor")


# Slurm and Celery when enabled: tests/engine; refused when not: test_executors.py.
@pytest.mark.parametrize("executor", ["local", "site:x", "site:obs-1.dome_2"])
def test_executors_accepted_at_creation(api: httpx.Client, executor: str) -> None:
    job = create_job(api, executor=executor)
    assert job["executor"] == executor
    listed = api.get("/v1/jobs", params={"name": job["name"], "executor": executor}).json()
    assert [j["id"] for j in listed["items"]] == [job["id"]]


def test_job_in_unknown_space_is_404(api: httpx.Client) -> None:
    r = api.post("/v1/jobs", json={"name": uid(), "action": noop(), "space": space_name("nope")})
    assert_error(r, 404, "not_found")
