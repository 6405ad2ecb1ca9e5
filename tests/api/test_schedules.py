"""Schedules: cron / every / at, validation, upcoming times, enable/disable, firing."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.api.helpers import (
    assert_error,
    create_job,
    delete,
    noop,
    parse_ts,
    rfc3339,
    runs_of,
    trigger,
    wait_state,
)
from tests.server import Server, wait_for


def create_schedule(api: httpx.Client, job_id: str, **spec: Any) -> dict[str, Any]:
    r = api.post(f"/v1/jobs/{job_id}/schedules", json=spec)
    assert r.status_code == 201, r.text
    return r.json()


def upcoming(api: httpx.Client, schedule_id: str, n: int = 5) -> list[datetime]:
    r = api.get(f"/v1/schedules/{schedule_id}/next", params={"n": n})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["schedule_id"] == schedule_id
    return [parse_ts(t) for t in body["times"]]


def schedule_runs(api: httpx.Client, schedule_id: str) -> list[dict[str, Any]]:
    return runs_of(api, schedule=schedule_id)


def whole_second(ts: str) -> bool:
    return parse_ts(ts).microsecond == 0


# --- create and read ------------------------------------------------------------------------


def test_cron_five_fields_in_a_time_zone(api: httpx.Client) -> None:
    job = create_job(api)
    before = datetime.now(UTC)
    s = create_schedule(api, job["id"], cron="0 9 * * *", timezone="Europe/Berlin")
    assert s["kind"] == "cron"
    assert s["cron"] == "0 9 * * *"
    assert s["every"] is None and s["at"] is None
    assert s["timezone"] == "Europe/Berlin"
    assert s["enabled"] is True
    assert s["overlap"] == "allow"
    assert s["job_id"] == job["id"]
    assert s["space"] == "default"

    berlin = ZoneInfo("Europe/Berlin")
    day = before.astimezone(berlin).date()
    expected: list[datetime] = []
    while len(expected) < 5:
        local = datetime(day.year, day.month, day.day, 9, tzinfo=berlin)
        if local > before:
            expected.append(local.astimezone(UTC))
        day += timedelta(days=1)
    times = upcoming(api, s["id"], 5)
    assert times == expected
    for t in times:
        assert (t.hour, t.minute, t.second) in ((8, 0, 0), (7, 0, 0))
        offset = t.astimezone(berlin).utcoffset()
        assert offset is not None
        assert t.hour == 9 - int(offset.total_seconds() // 3600)
    assert parse_ts(s["next_fire_at"]) == expected[0]
    assert api.get(f"/v1/schedules/{s['id']}").json() == s


def test_cron_six_fields_has_seconds_first(api: httpx.Client) -> None:
    job = create_job(api)
    s = create_schedule(api, job["id"], cron="*/10 * * * * *", enabled=False)
    assert s["next_fire_at"] is None
    r = api.patch(f"/v1/schedules/{s['id']}", json={"enabled": True})
    assert r.status_code == 200, r.text
    times = upcoming(api, s["id"], 5)
    assert len(times) == 5
    assert all(t.second % 10 == 0 and t.microsecond == 0 for t in times)
    assert all((b - a) == timedelta(seconds=10) for a, b in itertools.pairwise(times))
    assert delete(api, f"/v1/schedules/{s['id']}").status_code == 204


@pytest.mark.parametrize(
    ("expr", "step"),
    [("@daily", timedelta(days=1)), ("@hourly", timedelta(hours=1)), ("@midnight", None)],
)
def test_cron_macros(api: httpx.Client, expr: str, step: timedelta | None) -> None:
    job = create_job(api)
    s = create_schedule(api, job["id"], cron=expr)
    times = upcoming(api, s["id"], 3)
    assert len(times) == 3
    assert all(t.minute == 0 and t.second == 0 for t in times)
    if step is not None:
        assert times[1] - times[0] == step
    if expr in ("@daily", "@midnight"):
        assert all(t.hour == 0 for t in times)


def test_cron_question_mark(api: httpx.Client) -> None:
    job = create_job(api)
    s = create_schedule(api, job["id"], cron="0 12 ? * MON")
    times = upcoming(api, s["id"], 4)
    assert [t.weekday() for t in times] == [0, 0, 0, 0]
    assert all((t.hour, t.minute) == (12, 0) for t in times)
    assert all((b - a) == timedelta(days=7) for a, b in itertools.pairwise(times))
    s = create_schedule(api, job["id"], cron="30 6 1 * ?")
    times = upcoming(api, s["id"], 3)
    assert all((t.day, t.hour, t.minute) == (1, 6, 30) for t in times)


@pytest.mark.parametrize(("every", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), (90, 90)])
def test_every(api: httpx.Client, every: str | int, seconds: int) -> None:
    job = create_job(api)
    s = create_schedule(api, job["id"], every=every)
    assert s["kind"] == "every"
    assert s["every"] == f"{seconds}s"
    assert s["cron"] is None
    times = upcoming(api, s["id"], 5)
    assert len(times) == 5
    assert all((b - a) == timedelta(seconds=seconds) for a, b in itertools.pairwise(times))
    assert times[0] > datetime.now(UTC) - timedelta(seconds=1)
    assert delete(api, f"/v1/schedules/{s['id']}").status_code == 204


def test_every_slots_are_aligned_to_the_interval(api: httpx.Client) -> None:
    """Interval slots sit on multiples of the interval (anchor: the Unix epoch), so an hourly
    schedule fires on the hour, whatever second it was created at."""
    job = create_job(api)
    s = create_schedule(api, job["id"], every="1h", enabled=False)
    r = api.patch(f"/v1/schedules/{s['id']}", json={"enabled": True})
    times = upcoming(api, r.json()["id"], 3)
    assert all((t.minute, t.second, t.microsecond) == (0, 0, 0) for t in times), times
    s = create_schedule(api, job["id"], every="10s", enabled=False)
    api.patch(f"/v1/schedules/{s['id']}", json={"enabled": True})
    times = upcoming(api, s["id"], 3)
    assert all(t.second % 10 == 0 and t.microsecond == 0 for t in times), times
    for sid in (r.json()["id"], s["id"]):
        delete(api, f"/v1/schedules/{sid}")


def test_at(api: httpx.Client) -> None:
    job = create_job(api)
    when = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    s = create_schedule(api, job["id"], at=when.isoformat())
    assert s["kind"] == "at"
    assert parse_ts(s["at"]) == when
    assert parse_ts(s["next_fire_at"]) == when
    assert upcoming(api, s["id"], 5) == [when]
    # An offset other than Z is the same instant.
    s2 = create_schedule(api, job["id"], at=when.astimezone(ZoneInfo("Asia/Kolkata")).isoformat())
    assert parse_ts(s2["at"]) == when


def test_job_schedule_listing(api: httpx.Client) -> None:
    job = create_job(api)
    a = create_schedule(api, job["id"], cron="0 0 * * *")
    b = create_schedule(api, job["id"], every="1h")
    listed = api.get(f"/v1/jobs/{job['id']}/schedules").json()
    assert {s["id"] for s in listed["items"]} == {a["id"], b["id"]}
    listed = api.get("/v1/schedules", params={"job": job["id"]}).json()
    assert {s["id"] for s in listed["items"]} == {a["id"], b["id"]}
    delete(api, f"/v1/schedules/{b['id']}")


def test_concurrent_creations_are_each_kept(server: Server, api: httpx.Client) -> None:
    """Creations in flight together share a commit; each answer is a schedule in the ledger."""
    job = create_job(api)

    def create(n: int) -> str:
        with server.client() as c:
            return create_schedule(c, job["id"], every=f"{n + 1}h")["id"]

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(create, range(120)))
    assert len(set(ids)) == 120
    listed = api.get(f"/v1/jobs/{job['id']}/schedules", params={"limit": 200}).json()
    seen = {s["id"] for s in listed["items"]}
    while listed.get("next_cursor"):
        listed = api.get(
            f"/v1/jobs/{job['id']}/schedules", params={"cursor": listed["next_cursor"]}
        ).json()
        seen |= {s["id"] for s in listed["items"]}
    assert seen == set(ids)
    delete(api, f"/v1/jobs/{job['id']}")


def test_backfill_runs_each_slot_of_the_range_once(api: httpx.Client) -> None:
    job = create_job(api, executor="site:backfill")
    sched = create_schedule(api, job["id"], cron="0 * * * *", overlap="skip")
    path = f"/v1/schedules/{sched['id']}/backfill"
    r = api.post(path, json={"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T03:00:00Z"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["schedule_id"], out["slots"], out["created"], out["existing"]) == (
        sched["id"],
        3,
        3,
        0,
    )
    runs = [api.get(f"/v1/runs/{rid}").json() for rid in out["runs"]]
    assert sorted(parse_ts(run["scheduled_for"]) for run in runs) == [
        datetime(2026, 1, 1, hour, tzinfo=UTC) for hour in range(3)
    ]
    assert {(run["state"], run["schedule_id"]) for run in runs} == {("queued", sched["id"])}
    # Overlapping the first range: only the new slot gets a run; repeating changes nothing.
    body = {"start": "2026-01-01T02:00:00+01:00", "end": "2026-01-01T04:00:00Z"}
    again = api.post(path, json=body).json()
    assert (again["slots"], again["created"], again["existing"]) == (3, 1, 2)
    assert api.post(path, json=body).json()["created"] == 0
    # A dry run lists the slots and counts those that already ran; it queues nothing.
    dry = api.post(path, json={**body, "start": "2026-01-01T03:00:00Z", "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert [parse_ts(t) for t in dry.json()["times"]] == [datetime(2026, 1, 1, 3, tzinfo=UTC)]
    assert (dry.json()["created"], dry.json()["existing"], dry.json()["runs"]) == (0, 1, [])
    fresh = api.post(
        path, json={"start": "2026-02-01T00:00:00Z", "end": "2026-02-01T02:00:00Z", "dry_run": True}
    ).json()
    assert [parse_ts(t) for t in fresh["times"]] == [
        datetime(2026, 2, 1, hour, tzinfo=UTC) for hour in range(2)
    ]
    assert (fresh["slots"], fresh["existing"]) == (2, 0)
    assert len(runs_of(api, job=job["id"])) == 4


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00Z"}, "start"),
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"}, "end"),
        ({"start": "yesterday", "end": "2026-01-01T00:00:00Z"}, "start"),
        ({"start": "0001-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "start"),
        ({"start": "2026-01-01T00:00:00Z", "end": "9999-12-31T23:59:59-23:59"}, "end"),
        ({"start": "2026-01-01T00:00:00Z"}, "end"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z", "x": 1}, "x"),
    ],
)
def test_bad_backfill_names_the_field(api: httpx.Client, body: dict[str, Any], field: str) -> None:
    job = create_job(api, executor="site:backfill")
    sched = create_schedule(api, job["id"], every="1m")
    r = api.post(f"/v1/schedules/{sched['id']}/backfill", json=body)
    assert_error(r, 422, "invalid", field)
    assert runs_of(api, job=job["id"]) == []


def test_backfill_of_an_unknown_schedule_is_404(api: httpx.Client) -> None:
    body = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z"}
    r = api.post("/v1/schedules/01J0000000000000000000000A/backfill", json=body)
    assert_error(r, 404, "not_found")


def test_a_huge_backfill_is_refused_at_once_and_the_server_stays_responsive(
    api: httpx.Client, server: Server
) -> None:
    job = create_job(api, executor="site:backfill")
    sched = create_schedule(api, job["id"], cron="* * * * *")
    everything = {"start": "1970-01-01T00:00:00Z", "end": "9999-12-31T00:00:00Z", "dry_run": True}
    with ThreadPoolExecutor(1) as pool:
        t0 = time.monotonic()
        answer = pool.submit(
            api.post, f"/v1/schedules/{sched['id']}/backfill", json=everything, timeout=20
        )
        worst = 0.0
        while not answer.done():
            t1 = time.monotonic()
            assert httpx.get(server.url + "/healthz", timeout=20).status_code == 200
            worst = max(worst, time.monotonic() - t1)
            time.sleep(0.05)
        r = answer.result()
    took = time.monotonic() - t0
    err = assert_error(r, 422, "invalid", "end")
    assert "10,000 slots" in err["message"] and "GNOMON_BACKFILL_MAX_SLOTS" in err["message"]
    assert took < 5, f"the refusal took {took:.1f} s"
    assert worst < 2.0, f"/healthz took {worst:.2f} s meanwhile"
    # The most a request may ask of /next is cheap even for a rare slot (29 February).
    rare = create_schedule(api, job["id"], cron="0 0 29 2 *")
    t0 = time.monotonic()
    r = api.get(f"/v1/schedules/{rare['id']}/next", params={"n": 1000})
    assert r.status_code == 200 and len(r.json()["times"]) == 1000
    assert time.monotonic() - t0 < 5


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "not a cron"}, "cron"),
        ({"cron": "* * * *"}, "cron"),
        ({"cron": "* * * * * * * *"}, "cron"),
        ({"cron": "@reboot"}, "cron"),
        ({"cron": "0 0 31 2 *"}, "cron"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"cron": "0 9 * * *", "timezone": ""}, "timezone"),
        ({"every": "5 parsecs"}, "every"),
        ({"every": "0s"}, "every"),
        ({"every": 0}, "every"),
        ({"every": "-5"}, "every"),
        ({"at": "2030-01-01T00:00:00"}, "at"),
        ({"at": "soon"}, "at"),
        ({"every": "1m", "overlap": "sometimes"}, "overlap"),
        ({"every": "1m", "jitter_s": -1}, "jitter_s"),
        ({"every": "1m", "catchup_window_s": -1}, "catchup_window_s"),
        ({"every": "1m", "colour": "red"}, "colour"),
    ],
)
def test_bad_schedule_names_the_field(api: httpx.Client, spec: dict[str, Any], field: str) -> None:
    job = create_job(api)
    r = api.post(f"/v1/jobs/{job['id']}/schedules", json=spec)
    assert_error(r, 422, "invalid", field=field)


@pytest.mark.parametrize(
    "spec",
    [{}, {"cron": "* * * * *", "every": "1m"}, {"every": "1m", "at": "2030-01-01T00:00:00Z"}],
)
def test_exactly_one_trigger(api: httpx.Client, spec: dict[str, Any]) -> None:
    job = create_job(api)
    err = assert_error(api.post(f"/v1/jobs/{job['id']}/schedules", json=spec), 422, "invalid")
    assert "exactly one" in err["message"]


def test_schedule_for_unknown_job_is_404(api: httpx.Client) -> None:
    r = api.post("/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/schedules", json={"every": "1m"})
    assert_error(r, 404, "not_found")
    assert_error(api.get("/v1/schedules/01ARZ3NDEKTSV4RRFFQ69G5FAV"), 404, "not_found")
    assert_error(api.get("/v1/schedules/01ARZ3NDEKTSV4RRFFQ69G5FAV/next"), 404, "not_found")


def test_next_bounds(api: httpx.Client) -> None:
    job = create_job(api)
    s = create_schedule(api, job["id"], cron="0 0 * * *")
    assert_error(api.get(f"/v1/schedules/{s['id']}/next", params={"n": 0}), 422, field="n")
    assert_error(api.get(f"/v1/schedules/{s['id']}/next", params={"n": 1001}), 422, field="n")
    assert len(upcoming(api, s["id"], 1000)) == 1000
    assert len(upcoming(api, s["id"], 1)) == 1


def test_patch_validation(api: httpx.Client) -> None:
    job = create_job(api)
    s = create_schedule(api, job["id"], cron="0 0 * * *")
    url = f"/v1/schedules/{s['id']}"
    assert_error(api.patch(url, json={"cron": "99 * * * *"}), 422, field="cron")
    assert_error(api.patch(url, json={"timezone": "Nowhere/Land"}), 422, field="timezone")
    assert_error(api.patch(url, json={"every": "fast"}), 422, field="every")
    assert_error(api.patch(url, json={"cron": "* * * * *", "every": "1m"}), 422)
    assert_error(api.patch(url, json={"colour": "red"}), 422, field="colour")
    assert api.get(url).json() == s  # nothing changed


def test_patch_changes_trigger_and_timezone(api: httpx.Client) -> None:
    job = create_job(api)
    s = create_schedule(api, job["id"], cron="0 9 * * *")
    r = api.patch(f"/v1/schedules/{s['id']}", json={"timezone": "America/New_York"})
    assert r.status_code == 200, r.text
    assert r.json()["timezone"] == "America/New_York"
    ny = ZoneInfo("America/New_York")
    assert all(t.astimezone(ny).hour == 9 for t in upcoming(api, s["id"], 3))
    r = api.patch(f"/v1/schedules/{s['id']}", json={"every": "2h"})
    assert r.status_code == 200, r.text
    assert (r.json()["kind"], r.json()["every"], r.json()["cron"]) == ("every", "7200s", None)
    times = upcoming(api, s["id"], 2)
    assert times[1] - times[0] == timedelta(hours=2)
    assert api.get(f"/v1/schedules/{s['id']}").json()["kind"] == "every"


# --- enable, disable, delete ----------------------------------------------------------------


def test_disabled_schedule_makes_no_runs(api: httpx.Client) -> None:
    job = create_job(api)
    s = create_schedule(api, job["id"], every="1s", enabled=False)
    assert s["enabled"] is False
    assert s["next_fire_at"] is None
    assert upcoming(api, s["id"]) == []
    time.sleep(1.3)
    assert schedule_runs(api, s["id"]) == []

    r = api.patch(f"/v1/schedules/{s['id']}", json={"enabled": True})
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is True and r.json()["next_fire_at"] is not None
    wait_for(lambda: schedule_runs(api, s["id"]), timeout=5)

    r = api.patch(f"/v1/schedules/{s['id']}", json={"enabled": False})
    assert r.json()["enabled"] is False and r.json()["next_fire_at"] is None
    time.sleep(0.3)  # a tick already under way may still land
    count = len(schedule_runs(api, s["id"]))
    time.sleep(1.5)
    assert len(schedule_runs(api, s["id"])) == count
    assert api.get(f"/v1/schedules/{s['id']}").json()["enabled"] is False


def test_delete_schedule(api: httpx.Client) -> None:
    job = create_job(api)
    s = create_schedule(api, job["id"], every="1s")
    wait_for(lambda: schedule_runs(api, s["id"]), timeout=5)
    r = delete(api, f"/v1/schedules/{s['id']}")
    assert r.status_code == 204
    assert r.content == b""
    assert_error(api.get(f"/v1/schedules/{s['id']}"), 404, "not_found")
    assert_error(api.get(f"/v1/schedules/{s['id']}/next"), 404, "not_found")
    assert_error(api.patch(f"/v1/schedules/{s['id']}", json={"enabled": True}), 404)
    assert_error(delete(api, f"/v1/schedules/{s['id']}"), 404, "not_found")
    listed = api.get(f"/v1/jobs/{job['id']}/schedules").json()["items"]
    assert s["id"] not in [x["id"] for x in listed]
    time.sleep(0.3)
    count = len(schedule_runs(api, s["id"]))
    assert count >= 1  # its runs stay readable
    time.sleep(1.5)
    assert len(schedule_runs(api, s["id"])) == count


def test_deleting_the_job_stops_its_schedules(api: httpx.Client) -> None:
    job = create_job(api)
    s = create_schedule(api, job["id"], every="1s")
    wait_for(lambda: schedule_runs(api, s["id"]), timeout=5)
    assert delete(api, f"/v1/jobs/{job['id']}").status_code == 204
    assert_error(api.get(f"/v1/schedules/{s['id']}"), 404, "not_found")
    time.sleep(0.3)
    count = len(schedule_runs(api, s["id"]))
    time.sleep(1.5)
    assert len(schedule_runs(api, s["id"])) == count


# --- firing ---------------------------------------------------------------------------------


def test_every_second_fills_whole_second_slots_once(api: httpx.Client) -> None:
    job = create_job(api, params={"from": "job", "keep": 1})
    s = create_schedule(api, job["id"], every="1s", params={"from": "schedule"})
    try:
        wait_for(lambda: len(schedule_runs(api, s["id"])) >= 4, timeout=10)
    finally:
        delete(api, f"/v1/schedules/{s['id']}")
    runs = schedule_runs(api, s["id"])
    slots = [r["scheduled_for"] for r in runs]
    assert len(slots) == len(set(slots)), slots
    assert all(whole_second(t) for t in slots), slots
    ordered = sorted(parse_ts(t) for t in slots)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(ordered)]
    assert all(g >= 1 and g == int(g) for g in gaps), gaps
    for r in runs:
        assert r["schedule_id"] == s["id"]
        assert r["params"] == {"from": "schedule", "keep": 1}
        # A run may be created ahead of its slot, but never starts before it.
        assert r["not_before"] == r["scheduled_for"]
        if r["claimed_at"] is not None:
            assert parse_ts(r["claimed_at"]) >= parse_ts(r["scheduled_for"])
    wait_state(api, runs[-1]["id"])


def test_cron_fires_within_a_second_of_its_slot(api: httpx.Client) -> None:
    """A slot's run starts (is claimed) at its slot, not before, and less than a second late.
    (It may be created ahead of the slot: only when it starts counts.)"""
    job = create_job(api)
    s = create_schedule(api, job["id"], cron="* * * * * *")

    def started() -> list[dict[str, Any]]:
        runs = [r for r in schedule_runs(api, s["id"]) if r["claimed_at"] is not None]
        return runs if len(runs) >= 3 else []

    try:
        runs = wait_for(started, timeout=10)
    finally:
        delete(api, f"/v1/schedules/{s['id']}")
    for r in runs:
        assert whole_second(r["scheduled_for"]), r["scheduled_for"]
        late = (parse_ts(r["claimed_at"]) - parse_ts(r["scheduled_for"])).total_seconds()
        assert 0 <= late < 1.0, (r["scheduled_for"], r["claimed_at"])
        assert r["state"] != "cancelled"
    done = wait_state(api, runs[0]["id"])
    assert done["state"] == "succeeded"


def test_overlap_skip_records_skipped_slots(api: httpx.Client) -> None:
    job = create_job(api, noop(sleep_s=2.5))
    s = create_schedule(api, job["id"], every="1s", overlap="skip")
    assert s["overlap"] == "skip"

    def skipped() -> list[dict[str, Any]]:
        r = api.get(f"/v1/schedules/{s['id']}/fires", params={"status": "skipped"})
        assert r.status_code == 200, r.text
        return r.json()["items"]

    try:
        items = wait_for(skipped, timeout=10)
        all_fires = api.get(f"/v1/schedules/{s['id']}/fires").json()["items"]
        assert {f["status"] for f in all_fires} >= {"skipped"}
        bad = api.get(f"/v1/schedules/{s['id']}/fires", params={"status": "late"})
        assert_error(bad, 422, field="status")
    finally:
        delete(api, f"/v1/schedules/{s['id']}")
    for f in items:
        assert f["status"] == "skipped"
        assert f["count"] >= 1
        assert parse_ts(f["until_at"]) >= parse_ts(f["fire_at"])
    runs = schedule_runs(api, s["id"])
    # Never two runs of the schedule at once.
    spans = sorted(
        (parse_ts(r["created_at"]), parse_ts(r["finished_at"]) if r["finished_at"] else None)
        for r in runs
    )
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end is not None and start >= end, spans
    for r in runs:
        wait_state(api, r["id"])


def test_at_schedule_fires_once(api: httpx.Client) -> None:
    job = create_job(api)
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    s = create_schedule(api, job["id"], at=when.isoformat())
    runs = wait_for(lambda: schedule_runs(api, s["id"]), timeout=6)
    assert len(runs) == 1
    assert parse_ts(runs[0]["scheduled_for"]) == when
    time.sleep(0.5)
    assert len(schedule_runs(api, s["id"])) == 1
    after = api.get(f"/v1/schedules/{s['id']}").json()
    assert after["next_fire_at"] is None
    assert upcoming(api, s["id"]) == []


def test_manual_runs_are_not_schedule_runs(api: httpx.Client) -> None:
    job = create_job(api)
    s = create_schedule(api, job["id"], cron="0 0 1 1 *")
    trigger(api, job["id"], at=rfc3339(time.time() + 3600))
    assert schedule_runs(api, s["id"]) == []
