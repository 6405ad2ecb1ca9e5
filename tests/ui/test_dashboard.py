"""The dashboard names jobs: recent failures link to their job by its name, not its id."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.server import wait_for
from tests.ui.test_pages import make_job, uid


def test_recent_failures_name_the_job(signed_in: Page, api: httpx.Client) -> None:
    page = signed_in
    name = uid("nightly-reduce")
    bad = make_job(api, name=name, action={"type": "shell", "command": "exit 4"})
    run = api.post(f"/v1/jobs/{bad['id']}/runs").json()
    wait_for(lambda: api.get(f"/v1/runs/{run['id']}").json()["state"] == "failed")

    page.goto("/ui/")
    failures = page.locator("section", has=page.get_by_role("heading", name="Recent failures"))
    row = failures.locator("tbody tr", has=page.locator(f"a[href='#/runs/{run['id']}']"))
    link = row.get_by_role("link", name=name)
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", f"#/jobs/{bad['id']}")
