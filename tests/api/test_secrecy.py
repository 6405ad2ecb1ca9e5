"""Credentials stored in jobs and apps (http headers, environments, URL passwords, PCF
`auth_header`) are blotted out for viewers on every route and face; developers see them."""

from __future__ import annotations

import httpx

from tests.api.compat.helpers import make_tenant, zero_call
from tests.api.helpers import uid
from tests.server import Server

SECRET = "tok-" + uid("secret")
MASK = "********"


def test_viewers_never_see_credentials(server: Server, api: httpx.Client) -> None:
    tenant = make_tenant(api)
    space, app = tenant.space, tenant.apps[0]
    viewer, developer = (server.client(tenant.tokens[r]) for r in ("viewer", "developer"))
    with viewer, developer:
        action = {
            "type": "http",
            "url": f"https://user:{SECRET}@example.com/hook?api_key={SECRET}&page=2",
            "headers": {"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET, "Accept": "*/*"},
            "body": {"password": SECRET, "name": "kept"},
        }
        r = developer.post("/v1/jobs", json={"name": uid("job"), "space": space, "action": action})
        assert r.status_code == 201, r.text
        job = r.json()
        body = {"name": uid("app"), "space": space, "env": {"DB_PASSWORD": SECRET, "MODE": "x"}}
        r = developer.post("/v1/apps", json=body)
        assert r.status_code == 201, r.text
        guid = r.json()["guid"]
        r = developer.post(
            "/pcf/calls", params={"app_guid": app}, json=zero_call(uid("c"), "http://h/", SECRET)
        )
        assert r.status_code == 201, r.text
        call = r.json()["guid"]

        seen = [
            viewer.get(f"/v1/jobs/{job['id']}"),
            viewer.get("/v1/jobs", params={"space": space}),
            viewer.get(f"/v1/apps/{guid}"),
            viewer.get("/v1/apps", params={"space": space}),
            viewer.get(f"/pcf/calls/{call}"),
            viewer.get("/pcf/calls", params={"space_guid": tenant.guid}),
        ]
        for r in seen:
            assert r.status_code == 200, r.text
            assert SECRET not in r.text, r.text
            assert MASK in r.text, r.text
        shown = seen[0].json()["action"]
        assert shown["headers"] == {"Authorization": MASK, "X-Api-Key": MASK, "Accept": "*/*"}
        assert shown["body"] == {"password": MASK, "name": "kept"}
        assert shown["url"].startswith("https://user:********@example.com/hook?api_key=")
        assert seen[2].json()["env"] == {"DB_PASSWORD": MASK, "MODE": "x"}
        assert seen[4].json()["auth_header"] == MASK

        # Developers can change and run the job: they see what is stored.
        assert SECRET in developer.get(f"/v1/jobs/{job['id']}").text
        assert developer.get(f"/pcf/calls/{call}").json()["auth_header"] == SECRET
        assert developer.get(f"/v1/apps/{guid}").json()["env"]["DB_PASSWORD"] == SECRET
