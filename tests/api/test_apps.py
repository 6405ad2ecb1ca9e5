"""/v1/apps: execution contexts, and native jobs bound to them."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.api.helpers import assert_error, delete, space_name, uid, wait_state


def new_app(api: httpx.Client, **spec: Any) -> dict[str, Any]:
    r = api.post("/v1/apps", json={"name": uid("app"), **spec})
    assert r.status_code == 201, r.text
    return r.json()


def test_create_get_list_delete(api: httpx.Client) -> None:
    app = new_app(api, cwd="/tmp", env={"A": "1"})
    assert list(app) == [
        "id",
        "space",
        "name",
        "cwd",
        "env",
        "executor",
        "created_at",
        "updated_at",
        "guid",  # the old name of `id`, still sent
    ]
    assert str(uuid.UUID(app["id"])) == app["id"] == app["guid"]
    assert (app["space"], app["cwd"], app["env"], app["executor"]) == (
        "default",
        "/tmp",
        {"A": "1"},
        "local",
    )
    assert api.get(f"/v1/apps/{app['id']}").json() == app
    assert api.get(f"/v1/apps/{app['id'].upper()}").json() == app
    listed = api.get("/v1/apps", params={"space": "default", "limit": 1000}).json()
    assert app in listed["items"]
    assert delete(api, f"/v1/apps/{app['id']}").status_code == 204
    assert_error(api.get(f"/v1/apps/{app['id']}"), 404, "not_found")
    assert_error(delete(api, f"/v1/apps/{app['id']}"), 404, "not_found")


def test_an_app_keeps_the_id_it_is_given(api: httpx.Client) -> None:
    given = str(uuid.uuid4())
    app = new_app(api, id=given.upper())
    assert app["id"] == app["guid"] == given
    assert_error(api.post("/v1/apps", json={"name": uid(), "id": given}), 409, "conflict")
    delete(api, f"/v1/apps/{given}")
    # an id once used is not handed to another app
    assert_error(api.post("/v1/apps", json={"name": uid(), "id": given}), 409, "conflict")


def test_the_old_names_guid_and_app_are_still_accepted(api: httpx.Client) -> None:
    guid = str(uuid.uuid4())
    app = new_app(api, guid=guid)
    assert app["id"] == app["guid"] == guid
    assert_error(api.post("/v1/apps", json={"name": uid(), "guid": guid}), 409, "conflict")
    job = api.post(
        "/v1/jobs", json={"name": uid("j"), "action": {"type": "noop"}, "app": guid}
    ).json()
    assert job["app_id"] == job["app"] == guid
    job = api.post(
        "/v1/jobs", json={"name": uid("j"), "action": {"type": "noop"}, "app_id": guid}
    ).json()
    assert job["app_id"] == job["app"] == guid
    assert api.get(f"/v1/jobs/{job['id']}").json()["app_id"] == guid
    assert_error(api.post("/v1/apps", json={"name": uid(), "id": "not-a-uuid"}), 422, "invalid")


def test_names_are_unique_per_space(api: httpx.Client) -> None:
    app = new_app(api)
    assert_error(api.post("/v1/apps", json={"name": app["name"]}), 409, "conflict")


def test_bad_apps(api: httpx.Client) -> None:
    assert_error(api.post("/v1/apps", json={}), 422, field="name")
    assert_error(api.post("/v1/apps", json={"name": uid(), "guid": "nope"}), 422, field="guid")
    assert_error(api.post("/v1/apps", json={"name": uid(), "executor": "mars"}), 422)
    assert_error(api.post("/v1/apps", json={"name": uid(), "env": {"A": 1}}), 422)
    assert_error(api.post("/v1/apps", json={"name": uid(), "space": space_name()}), 404)
    assert_error(api.get("/v1/apps/not-a-guid"), 404)
    assert_error(api.get(f"/v1/apps/{uuid.uuid4()}"), 404)


def test_a_native_job_in_an_apps_context(api: httpx.Client, shared_dir: Path) -> None:
    app = new_app(api, cwd=str(shared_dir), env={"WHO": "app", "KEEP": "app"})
    r = api.post(
        "/v1/jobs",
        json={
            "name": uid("job"),
            "app": app["guid"],
            "action": {"type": "shell", "command": "echo $WHO $KEEP; pwd", "env": {"WHO": "job"}},
        },
    )
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["app"] == app["guid"] and job["space"] == "default"
    assert job["action"]["cwd"] == str(shared_dir)
    assert job["action"]["env"] == {"WHO": "job", "KEEP": "app"}
    run = api.post(f"/v1/jobs/{job['id']}/runs").json()
    assert wait_state(api, run["id"])["state"] == "succeeded"
    assert api.get(f"/v1/runs/{run['id']}/log").text.split() == ["job", "app", str(shared_dir)]
    assert_error(api.delete(f"/v1/apps/{app['guid']}"), 409, "conflict")


def test_job_names_per_app_and_per_space(api: httpx.Client) -> None:
    a, b = new_app(api), new_app(api)
    name = uid("job")
    for body in ({"app": a["guid"]}, {"app": b["guid"]}, {}):
        r = api.post("/v1/jobs", json={"name": name, "action": {"type": "noop"}, **body})
        assert r.status_code == 201, r.text
    for body in ({"app": a["guid"]}, {}):
        r = api.post("/v1/jobs", json={"name": name, "action": {"type": "noop"}, **body})
        assert_error(r, 409, "conflict")


def test_a_job_needs_a_real_app_in_its_space(api: httpx.Client) -> None:
    body = {"name": uid(), "action": {"type": "noop"}}
    assert_error(api.post("/v1/jobs", json={**body, "app": str(uuid.uuid4())}), 422, field="app")
    assert_error(api.post("/v1/jobs", json={**body, "app": "x"}), 422, field="app")
    space = space_name()
    assert api.post("/v1/spaces", json={"name": space}).status_code == 201
    app = new_app(api)
    r = api.post("/v1/jobs", json={**body, "app": app["guid"], "space": space})
    assert_error(r, 422, field="space")


def test_apps_are_scoped_to_spaces(api: httpx.Client) -> None:
    space = space_name()
    assert api.post("/v1/spaces", json={"name": space}).status_code == 201
    theirs = new_app(api, space=space)
    r = api.post("/v1/tokens", json={"name": uid(), "roles": {"default": "developer"}})
    with httpx.Client(
        base_url=api.base_url, headers={"Authorization": f"Bearer {r.json()['token']}"}
    ) as dev:
        assert_error(dev.get(f"/v1/apps/{theirs['guid']}"), 403, "forbidden")
        assert_error(dev.delete(f"/v1/apps/{theirs['guid']}"), 403, "forbidden")
        assert_error(dev.post("/v1/apps", json={"name": uid(), "space": space}), 403)
        assert theirs["guid"] not in [a["guid"] for a in dev.get("/v1/apps").json()["items"]]
        body = {"name": uid(), "action": {"type": "noop"}, "app": theirs["guid"]}
        assert_error(dev.post("/v1/jobs", json=body), 403, "forbidden")
        assert dev.post("/v1/apps", json={"name": uid()}).status_code == 201


def test_spaces_have_guids(api: httpx.Client) -> None:
    guid = str(uuid.uuid4())
    space = space_name()
    r = api.post("/v1/spaces", json={"name": space, "guid": guid})
    assert r.status_code == 201 and r.json()["guid"] == guid
    assert api.get(f"/v1/spaces/{space}").json()["guid"] == guid
    assert_error(api.post("/v1/spaces", json={"name": space_name(), "guid": guid}), 409)
    default = api.get("/v1/spaces/default").json()
    assert str(uuid.UUID(default["guid"])) == default["guid"]
