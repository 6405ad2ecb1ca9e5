"""The web interface end to end: a real gnomon, a real Chromium, the page's own forms."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from playwright.sync_api import Page, expect

from tests.server import Server, wait_for
from tests.ui.conftest import keep_screenshot


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_job(api: httpx.Client, **fields: object) -> dict:
    body = {"name": uid("job"), "action": {"type": "noop"}, **fields}
    r = api.post("/v1/jobs", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def count(page: Page, state: str) -> int:
    return int(page.locator(f"[data-count={state}]").inner_text())


def test_sign_in_with_a_bad_token_then_a_good_one(page: Page, ui_server: Server) -> None:
    page.goto("/")  # a browser asking for / is sent to the web interface
    expect(page).to_have_url(re.compile(r"/ui/"))
    page.get_by_label("Token").fill("gn_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown or revoked token")
    page.get_by_label("Token").fill(ui_server.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator("#who")).to_contain_text("admin")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_create_a_job_run_it_and_watch_the_log_stream_in(signed_in: Page) -> None:
    page = signed_in
    page.goto("/ui/#/jobs")
    name = uid("ticker")
    form = page.locator("form", has=page.get_by_role("heading", name="New job"))
    form.get_by_label("Name").fill(name)
    form.get_by_label("Command / URL / task").fill(
        "for i in $(seq 1 40); do echo line-$i; sleep 0.1; done; echo status=$GREETING"
    )
    form.get_by_role("button", name="Create job").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()

    page.get_by_label("Parameter overrides (JSON)").fill("{not json")
    page.get_by_role("button", name="Run now").click()
    expect(page.locator(".msg-error")).to_contain_text("params: not valid JSON")
    page.get_by_label("Parameter overrides (JSON)").fill('{"x": 1}')
    page.get_by_role("button", name="Run now").click()

    log = page.get_by_label("Run log")
    expect(log).to_contain_text("line-1")
    # Output arrives while the run is still going: the log is streamed, not loaded at the end.
    assert "line-40" not in log.inner_text()
    expect(page.locator("[data-run-state]")).to_have_text("running")
    expect(log).to_contain_text("line-40", timeout=15_000)
    expect(log).to_have_attribute("data-done", "true")
    expect(page.locator("[data-run-state]")).to_have_text("succeeded")
    expect(page.locator("[data-field=exit_code]")).to_have_text("0")
    expect(page.locator(".page-head")).not_to_contain_text("null")
    timeline = page.locator("section", has=page.get_by_role("heading", name="Timeline"))
    for state in ("queued", "running", "succeeded"):
        expect(timeline.get_by_text(state, exact=True).first).to_be_visible()


def test_the_log_keeps_up_with_fast_output(signed_in: Page, api: httpx.Client) -> None:
    page = signed_in
    job = make_job(api, action={"type": "shell", "command": "seq 1 200000"})
    run = api.post(f"/v1/jobs/{job['id']}/runs").json()
    page.goto(f"/ui/#/runs/{run['id']}")
    log = page.get_by_label("Run log")
    expect(log).to_have_attribute("data-done", "true", timeout=20_000)
    text = log.inner_text()
    assert text.rstrip().endswith("199999\n200000")
    # Followed to the end: the last line is in view.
    assert page.evaluate(
        "(el) => el.scrollTop + el.clientHeight >= el.scrollHeight - 2", log.element_handle()
    )


def test_dashboard_counts_change_without_a_reload(signed_in: Page, api: httpx.Client) -> None:
    page = signed_in
    ok = make_job(api)
    bad = make_job(api, action={"type": "shell", "command": "echo boom >&2; exit 3"})
    site = uid("dome")
    remote = make_job(api, executor=f"site:{site}", action={"type": "task", "name": "expose"})
    for _ in range(3):
        assert api.post(f"/v1/jobs/{ok['id']}/runs").status_code == 201
    assert api.post(f"/v1/jobs/{bad['id']}/runs").status_code == 201
    assert api.post(f"/v1/jobs/{remote['id']}/runs").status_code == 201  # no agent: it waits
    wait_for(lambda: api.get("/v1/stats").json()["runs"]["failed"] >= 1)

    page.goto("/ui/")
    expect(page.locator(".live")).to_have_text("● live")
    before = count(page, "succeeded")
    page.evaluate("window.__same_page = true")
    assert api.post(f"/v1/jobs/{ok['id']}/runs").status_code == 201
    expect(page.locator("[data-count=succeeded]")).to_have_text(str(before + 1))
    assert page.evaluate("window.__same_page") is True  # updated in place, not reloaded
    failures = page.locator("section", has=page.get_by_role("heading", name="Recent failures"))
    expect(failures.locator("tbody tr").first).to_contain_text("failed")
    queues = page.locator("section", has=page.get_by_role("heading", name="Queues"))
    expect(queues.get_by_role("link", name=f"site:{site}")).to_be_visible()
    keep_screenshot(page, "dashboard.png")


def test_schedule_shows_next_fire_times_in_its_zone_and_pauses(
    signed_in: Page, api: httpx.Client
) -> None:
    page = signed_in
    job = make_job(api)
    page.goto(f"/ui/#/jobs/{job['id']}")
    add = page.locator("form", has=page.get_by_role("heading", name="Add a schedule"))
    add.get_by_label("When").fill("not a cron")
    add.get_by_role("button", name="Add schedule").click()
    expect(page.locator(".msg-error")).to_be_visible()  # the API's message, not a blank page

    add.get_by_label("When").fill("30 9 * * *")
    add.get_by_label("Time zone").fill("America/New_York")
    add.get_by_role("button", name="Add schedule").click()
    card = page.locator("article.schedule")
    expect(card).to_contain_text("cron 30 9 * * *")
    times = card.locator("ol.fires li")
    expect(times).to_have_count(10)
    # Shown in the schedule's zone: 09:30 in New York, whatever UTC says.
    expect(times.first).to_contain_text("9:30:00")
    attr = times.first.locator("time").get_attribute("datetime")
    assert attr is not None and attr.endswith("Z")

    card.get_by_role("button", name="Pause").click()
    expect(card.locator(".badge")).to_have_text("paused")
    sid = card.get_attribute("data-schedule")
    assert api.get(f"/v1/schedules/{sid}").json()["enabled"] is False
    card.get_by_role("button", name="Resume").click()
    expect(card.locator(".badge")).to_have_text("enabled")
    assert api.get(f"/v1/schedules/{sid}").json()["enabled"] is True


def test_edit_then_delete_a_job_after_confirming(signed_in: Page, api: httpx.Client) -> None:
    page = signed_in
    job = make_job(api)
    page.goto(f"/ui/#/jobs/{job['id']}")
    page.get_by_text("Edit", exact=True).click()
    renamed = uid("renamed")
    page.get_by_label("Name", exact=True).fill(renamed)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name=renamed)).to_be_visible()
    assert api.get(f"/v1/jobs/{job['id']}").json()["name"] == renamed

    page.get_by_role("button", name="Delete job").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    assert api.get(f"/v1/jobs/{job['id']}").status_code == 200
    page.get_by_role("button", name="Delete job").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    assert api.get(f"/v1/jobs/{job['id']}").status_code == 404


def test_plan_timeline(signed_in: Page, api: httpx.Client) -> None:
    page = signed_in
    page.goto("/ui/#/plans")
    form = page.locator("form", has=page.get_by_role("heading", name="New plan"))
    expect(form.get_by_label("Policy")).to_contain_text("dummy")
    form.get_by_label("Policy").select_option("dummy")
    form.get_by_role("button", name="Generate plan").click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    plan_id = page.url.rsplit("/", 1)[1]
    plan = api.get(f"/v1/plans/{plan_id}").json()
    assert plan["blocks"]
    expect(page.locator("svg.gantt rect.blk:not(.blk-gap)")).to_have_count(len(plan["blocks"]))
    expect(page.get_by_text("No problems found.")).to_be_visible()
    assert "null" not in page.locator("main").inner_text()

    page.get_by_label("Config changes (JSON merge patch)").fill("{}")
    page.get_by_role("button", name="Make revision").click()
    expect(page.get_by_text("Changes from the previous revision")).to_be_visible()
    expect(page.get_by_text("Revised from")).to_be_visible()


def test_a_reservation_is_created_and_deleted(signed_in: Page, api: httpx.Client) -> None:
    page = signed_in
    site = uid("scope")
    make_job(api, executor=f"site:{site}", action={"type": "task", "name": "expose"})
    page.goto(f"/ui/#/sites/{site}")
    expect(page.get_by_role("heading", name=f"Site {site}")).to_be_visible()
    if api.get(f"/v1/sites/{site}/reservations").status_code == 404:
        expect(page.get_by_text("This server does not keep reservations.")).to_be_visible()
        return
    start = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    local = start.strftime("%Y-%m-%dT%H:%M")  # the browser runs in UTC
    page.get_by_label("From").fill(local)
    page.get_by_label("To").fill((start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Note").fill("flat fields")
    page.get_by_role("button", name="Reserve").click()
    bar = page.locator("button.resv", has_text="flat fields")
    expect(bar).to_be_visible()
    held = api.get(f"/v1/sites/{site}/reservations").json()["items"]
    assert [r["note"] for r in held] == ["flat fields"]
    page.locator("tr[data-reservation]").get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(bar).to_have_count(0)
    assert api.get(f"/v1/sites/{site}/reservations").json()["items"] == []


def test_phone_layout_and_keyboard(signed_in: Page) -> None:
    page = signed_in
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/ui/#/settings")
    expect(page.get_by_role("heading", name="Tokens")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    expect(nav).to_be_visible()
    nav.get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    # Keyboard: a route change moves focus to the content; from the top, the first Tab
    # reaches the skip link, which leads there too; forms submit with Enter.
    expect(page.locator("main")).to_be_focused()
    page.reload()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    page.get_by_label("Search").fill("no-such-job-anywhere")
    page.get_by_label("Search").press("Enter")
    expect(page.get_by_text("No jobs match.")).to_be_visible()


def test_unknown_run_shows_the_api_message(signed_in: Page) -> None:
    page = signed_in
    page.goto("/ui/#/runs/01HZZZZZZZZZZZZZZZZZZZZZZZ")
    expect(page.get_by_role("alert")).to_contain_text("not found")
    page.goto("/ui/#/nowhere")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
