"""Firing rules driven with a chosen clock: DST transitions, catch-up, overlap."""

from datetime import UTC, datetime

import sqlalchemy as sa

from gnomon.service import Service
from gnomon.service.schedules import trigger_of
from gnomon.specs import JobSpec, SchedulePatch, ScheduleSpec
from gnomon.store.schema import runs, schedules
from tests.service.conftest import ADMIN


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S")


async def make(svc: Service, start: str, **spec: object) -> str:
    job = await svc.jobs.create(
        ADMIN,
        JobSpec.model_validate(
            {"name": f"j{id(spec)}", "executor": "site:t", "action": {"type": "noop"}}
        ),
    )
    sched = await svc.schedules.create(ADMIN, job["id"], ScheduleSpec.model_validate(spec))
    # Rewind the schedule as if it had been created at `start`.
    row = {**sched, "next_fire_at": None}
    first = trigger_of(row).next_after(datetime.fromtimestamp(ts(start), UTC))
    async with svc.db.write() as conn:
        await conn.execute(
            sa.update(schedules)
            .where(schedules.c.id == sched["id"])
            .values(next_fire_at=first.timestamp(), due_at=first.timestamp())
        )
    return sched["id"]


async def run_clock(svc: Service, start: str, end: str) -> None:
    """Call the scheduler as a punctual process would: at each next fire time until `end`."""
    now = ts(start)
    while now <= ts(end):
        await svc.schedules.fire_due(now)
        nxt = await svc.schedules.next_due_at()
        if nxt is None:
            return
        now = max(nxt, now + 0.001)


async def slots(svc: Service, schedule_id: str) -> list[str]:
    async with svc.db.read() as conn:
        rows = await conn.execute(
            sa.select(runs.c.scheduled_for)
            .where(runs.c.schedule_id == schedule_id)
            .order_by(runs.c.scheduled_for)
        )
        return [iso(r[0]) for r in rows]


async def test_berlin_spring_forward_gap_fires_at_first_valid_instant(svc: Service) -> None:
    sid = await make(svc, "2026-03-27T12:00:00", cron="30 2 * * *", timezone="Europe/Berlin")
    await run_clock(svc, "2026-03-27T12:00:00", "2026-03-30T12:00:00")
    # 02:30 CET = 01:30Z; on 03-29 02:30 does not exist → 03:00 CEST = 01:00Z; then 00:30Z.
    assert await slots(svc, sid) == [
        "2026-03-28T01:30:00",
        "2026-03-29T01:00:00",
        "2026-03-30T00:30:00",
    ]


async def test_berlin_fall_back_repeated_hour_fires_once(svc: Service) -> None:
    sid = await make(svc, "2026-10-24T12:00:00", cron="30 2 * * *", timezone="Europe/Berlin")
    await run_clock(svc, "2026-10-24T12:00:00", "2026-10-26T12:00:00")
    assert await slots(svc, sid) == ["2026-10-25T00:30:00", "2026-10-26T01:30:00"]


async def test_new_york_spring_forward(svc: Service) -> None:
    sid = await make(svc, "2026-03-07T12:00:00", cron="30 2 * * *", timezone="America/New_York")
    await run_clock(svc, "2026-03-07T12:00:00", "2026-03-09T12:00:00")
    # 02:30 on 03-08 does not exist → 03:00 EDT = 07:00Z.
    assert await slots(svc, sid) == ["2026-03-08T07:00:00", "2026-03-09T06:30:00"]


async def test_new_york_fall_back(svc: Service) -> None:
    sid = await make(svc, "2026-10-31T12:00:00", cron="30 1 * * *", timezone="America/New_York")
    await run_clock(svc, "2026-10-31T12:00:00", "2026-11-02T12:00:00")
    # 01:30 happens twice on 11-01: it fires once, at 01:30 EDT = 05:30Z.
    assert await slots(svc, sid) == ["2026-11-01T05:30:00", "2026-11-02T06:30:00"]


async def test_downtime_records_missed_and_coalesces(svc: Service) -> None:
    sid = await make(svc, "2026-05-01T00:00:00", every="1m", catchup_window_s=300)
    # The scheduler was down from 00:00 to 01:00; it comes back at 01:00:00.5.
    await svc.schedules.fire_due(ts("2026-05-01T01:00:00") + 0.5)
    assert await slots(svc, sid) == ["2026-05-01T01:00:00"]
    fires = {f["status"]: f for f in await svc.schedules.fires(ADMIN, sid, None, 10)}
    # 00:01 … 00:55 are older than 5 minutes: 55 missed; 00:56 … 00:59 coalesced into 01:00.
    assert fires["missed"]["count"] == 55
    assert fires["coalesced"]["count"] == 4
    # Firing again at the same instant does nothing more.
    await svc.schedules.fire_due(ts("2026-05-01T01:00:00") + 0.5)
    assert await slots(svc, sid) == ["2026-05-01T01:00:00"]


async def test_catchup_all_runs_every_slot_in_the_window(svc: Service) -> None:
    sid = await make(svc, "2026-05-01T00:00:00", every="1m", catchup_window_s=300, catchup="all")
    await svc.schedules.fire_due(ts("2026-05-01T01:00:00") + 0.5)
    assert await slots(svc, sid) == [f"2026-05-01T00:{m}:00" for m in (56, 57, 58, 59)] + [
        "2026-05-01T01:00:00"
    ]


async def test_overlap_skip_and_buffer_one(svc: Service) -> None:
    skip = await make(svc, "2026-05-01T00:00:00", every="1m", overlap="skip")
    buffer = await make(svc, "2026-05-01T00:00:00", every="1m", overlap="buffer_one")
    await run_clock(svc, "2026-05-01T00:01:00", "2026-05-01T00:04:00")
    # Nothing consumes the runs (executor site:t): the first stays queued.
    assert await slots(svc, skip) == ["2026-05-01T00:01:00"]
    skipped = await svc.schedules.fires(ADMIN, skip, "skipped", 10)
    assert sum(f["count"] for f in skipped) == 3
    assert await slots(svc, buffer) == ["2026-05-01T00:01:00", "2026-05-01T00:02:00"]
    async with svc.db.read() as conn:
        states = [
            r[0]
            for r in await conn.execute(
                sa.select(runs.c.state)
                .where(runs.c.schedule_id == buffer)
                .order_by(runs.c.scheduled_for)
            )
        ]
    assert states == ["queued", "pending"]


async def test_allow_runs_are_created_ahead_and_withdrawn_when_the_schedule_changes(
    svc: Service,
) -> None:
    job = await svc.jobs.create(
        ADMIN,
        JobSpec.model_validate({"name": "ahead", "executor": "site:t", "action": {"type": "noop"}}),
    )
    sched = await svc.schedules.create(ADMIN, job["id"], ScheduleSpec(every="1h"))
    slot = sched["next_fire_at"]
    assert sched["due_at"] == slot - svc.settings.scheduler_lookahead_s
    await svc.schedules.fire_due(sched["due_at"])
    async with svc.db.read() as conn:
        run = (await conn.execute(sa.select(runs).where(runs.c.schedule_id == sched["id"]))).one()
    assert run.state == "queued" and run.scheduled_for == run.not_before == slot
    # Disabled before its slot came: the early run is withdrawn.
    await svc.schedules.update(ADMIN, sched["id"], SchedulePatch(enabled=False))
    async with svc.db.read() as conn:
        row = (await conn.execute(sa.select(runs).where(runs.c.id == run.id))).one()
    assert row.state == "cancelled"


async def test_other_overlaps_take_a_slot_early_only_while_nothing_is_active(
    svc: Service,
) -> None:
    ahead = svc.settings.scheduler_lookahead_s
    made = {}
    for overlap in ("skip", "buffer_one", "cancel_other"):
        job = await svc.jobs.create(
            ADMIN,
            JobSpec.model_validate(
                {"name": f"early-{overlap}", "executor": "site:t", "action": {"type": "noop"}}
            ),
        )
        spec = ScheduleSpec.model_validate({"every": "1h", "overlap": overlap})
        made[overlap] = await svc.schedules.create(ADMIN, job["id"], spec)
    slot = made["skip"]["next_fire_at"]
    assert {s["next_fire_at"] for s in made.values()} == {slot}
    assert {s["due_at"] for s in made.values()} == {slot - ahead}

    async def of(sid: str) -> list[tuple[str, float]]:
        async with svc.db.read() as conn:
            rows = await conn.execute(
                sa.select(runs.c.state, runs.c.scheduled_for)
                .where(runs.c.schedule_id == sid)
                .order_by(runs.c.scheduled_for)
            )
            return [(r.state, r.scheduled_for) for r in rows]

    # Nothing of theirs is active: each slot's run is in the ledger before the slot.
    await svc.schedules.fire_due(slot - ahead)
    for s in made.values():
        assert await of(s["id"]) == [("queued", slot)]

    # The next slot's look-ahead: their runs are still queued, so the rule waits for the slot.
    nxt = slot + 3600
    await svc.schedules.fire_due(nxt - ahead)
    for s in made.values():
        row = await svc.schedules.get(ADMIN, s["id"])
        assert (row["next_fire_at"], row["due_at"]) == (nxt, nxt)
        assert await of(s["id"]) == [("queued", slot)]
        assert await svc.schedules.fires(ADMIN, s["id"], None, 10) == []

    # At the slot, each rule decides with what is active then.
    await svc.schedules.fire_due(nxt)
    assert await of(made["skip"]["id"]) == [("queued", slot)]
    skipped = await svc.schedules.fires(ADMIN, made["skip"]["id"], "skipped", 10)
    assert [f["count"] for f in skipped] == [1]
    assert await of(made["buffer_one"]["id"]) == [("queued", slot), ("pending", nxt)]
    assert await of(made["cancel_other"]["id"]) == [("cancelled", slot), ("queued", nxt)]
