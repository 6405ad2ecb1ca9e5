"""Schedules: create and change them, list upcoming fire times, and fire due slots.

Firing rules (which slots run is decided by the pure `domain.plan_slots`):
- a slot fires once: runs carry (schedule_id, scheduled_for) under a unique index;
- slots older than `catchup_window_s` (never less than the grace) are recorded `missed`;
- of the slots inside the window, `catchup=latest` runs the newest and records the rest as
  `coalesced`; `catchup=all` runs each;
- `overlap` decides what happens while a run of the schedule is still active;
- a slot's run is created up to the look-ahead before the slot (it starts at the slot); with
  an overlap rule other than allow, only while nothing of the schedule is active — otherwise
  the rule is applied at the slot itself.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from gnomon import cron
from gnomon.config import Settings
from gnomon.domain import Overlap, Principal, Role, cancel, new_run, plan_slots
from gnomon.errors import Invalid, NotFound
from gnomon.ids import new_id, new_ids
from gnomon.service import reads
from gnomon.service.commits import GroupCommit
from gnomon.service.compute import Compute
from gnomon.service.execution import Execution
from gnomon.service.metrics import Metrics
from gnomon.service.signals import Signals
from gnomon.specs import BackfillSpec, SchedulePatch, ScheduleSpec
from gnomon.store import ledger
from gnomon.store import runs as run_store
from gnomon.store import schedules as store
from gnomon.store.db import Database
from gnomon.vocabulary import HELD_STATES, WAITING_STATES, RunState

if TYPE_CHECKING:
    from gnomon.service.access import Access
    from gnomon.service.jobs import Jobs

# `every` slots are whole multiples of the interval since the Unix epoch: `every: "5m"` fires
# at :00, :05, …, the same in every process and after every restart.
EPOCH = 0.0
CANCELLED_BY_NEWER = "cancelled: a newer slot of its schedule fired (overlap=cancel_other)"


def to_dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@lru_cache(maxsize=65536)
def trigger(kind: str, expr: str, timezone: str, anchor_at: float) -> cron.Trigger:
    value: Any = int(expr) if kind == "every" else expr
    return cron.make_trigger(kind, value, timezone, to_dt(anchor_at))


def trigger_of(row: dict[str, Any]) -> cron.Trigger:
    return trigger(row["kind"], row["expr"], row["timezone"], row["anchor_at"])


def _expr(kind: str, value: Any) -> str:
    """The stored form of a trigger value; raises Invalid naming the field."""
    try:
        if kind == "cron":
            return cron.validate_cron(str(value))
        if kind == "every":
            return str(cron.parse_interval(str(value)))
        return cron.parse_at(value).isoformat()
    except cron.TriggerError as exc:
        raise Invalid(exc.field, str(exc)) from exc


def _check_tz(tz: str) -> None:
    try:
        cron.validate_timezone(tz)
    except cron.TriggerError as exc:
        raise Invalid("timezone", str(exc)) from exc


class Schedules:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        signals: Signals,
        compute: Compute,
        metrics: Metrics,
        access: Access,
        jobs: Jobs,
        execution: Execution,
    ):
        self.db = db
        self.settings = settings
        self.signals = signals
        self.compute = compute
        self.metrics = metrics
        self.access = access
        self.jobs = jobs
        self.execution = execution
        self.commits: GroupCommit[dict[str, Any]] = GroupCommit(self._write_new, "schedules")

    async def create(self, who: Principal, job_id: str, spec: ScheduleSpec) -> dict[str, Any]:
        job = await self.jobs.cached(who, job_id, Role.developer)
        kind = spec.kind
        expr = _expr(kind, getattr(spec, kind))
        zone = await self.access.zone(job["space"], spec)  # given, else the space's
        _check_tz(zone)
        now = time.time()
        row = {
            "id": new_id(),
            "job_id": job["id"],
            "space": job["space"],
            "kind": kind,
            "expr": expr,
            "timezone": zone,
            "enabled": spec.enabled,
            "overlap": spec.overlap.value,
            "catchup_window_s": (
                spec.catchup_window_s
                if spec.catchup_window_s is not None
                else self.settings.default_catchup_window_s
            ),
            "catchup": spec.catchup.value,
            "jitter_s": spec.jitter_s,
            "params": spec.params,
            "anchor_at": EPOCH,
            "last_fire_at": None,
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
        }
        row["next_fire_at"] = self._next(row, now) if spec.enabled else None
        row["due_at"] = self._due(row["next_fire_at"])
        await self.commits.add(row)
        return row

    async def _write_new(self, rows: Sequence[dict[str, Any]]) -> None:
        async with self.db.write() as conn:
            await store.insert(conn, rows)
        self.signals.schedules.fire()

    def _next(self, row: dict[str, Any], after: float) -> float | None:
        nxt = trigger_of(row).next_after(to_dt(after))
        return nxt.timestamp() if nxt else None

    def _due(self, next_fire_at: float | None) -> float | None:
        """When to take the schedule up: a look-ahead before its slot, so that the slot's run
        is in the ledger when the slot comes (it still starts at the slot; see fire_due)."""
        if next_fire_at is None:
            return None
        return next_fire_at - self.settings.scheduler_lookahead_s

    async def get(self, who: Principal, schedule_id: str, role: Role = Role.viewer) -> dict:
        return await reads.one(self.db, store.get, schedule_id, "schedule", who, role)

    async def list(
        self,
        who: Principal,
        *,
        job_id: str | None = None,
        space: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> tuple[list[dict[str, Any]], str | None]:
        return await reads.listing(
            self.db, store.list_, who, space=space, cursor=cursor, limit=limit, job_id=job_id
        )

    async def update(self, who: Principal, schedule_id: str, patch: SchedulePatch) -> dict:
        row = await self.get(who, schedule_id, Role.developer)
        given = patch.model_dump(exclude_unset=True, mode="json")
        values: dict[str, Any] = {}
        now = time.time()
        for kind in ("cron", "every", "at"):
            if given.get(kind) is not None:
                values.update(kind=kind, expr=_expr(kind, getattr(patch, kind)))
        if given.get("timezone") is not None:
            _check_tz(patch.timezone or "UTC")
            values["timezone"] = patch.timezone
        for key in ("enabled", "overlap", "catchup_window_s", "catchup", "jitter_s", "params"):
            if given.get(key) is not None:
                values[key] = given[key]
        merged = {**row, **values}
        retimed = bool({"kind", "timezone", "enabled"} & values.keys())
        if retimed:
            merged["next_fire_at"] = values["next_fire_at"] = (
                self._next(merged, now) if merged["enabled"] else None
            )
        if retimed:
            merged["due_at"] = values["due_at"] = self._due(merged["next_fire_at"])
        values["updated_at"] = now
        async with self.db.write() as conn:
            if not await store.update(conn, schedule_id, values):
                raise NotFound(f"schedule '{schedule_id}' not found")
        if retimed:
            await self.execution.withdraw_early([schedule_id], now)
        self.signals.schedules.fire()
        return {**merged, "updated_at": now}

    async def delete(self, who: Principal, schedule_id: str) -> None:
        await self.get(who, schedule_id, Role.developer)
        now = time.time()
        async with self.db.write() as conn:
            await store.update(
                conn,
                schedule_id,
                {
                    "deleted_at": now,
                    "enabled": False,
                    "next_fire_at": None,
                    "due_at": None,
                    "updated_at": now,
                },
            )
        await self.execution.withdraw_early([schedule_id], now)
        self.signals.schedules.fire()

    async def upcoming(self, who: Principal, schedule_id: str, n: int) -> list[datetime]:
        row = await self.get(who, schedule_id)
        if not row["enabled"]:
            return []
        start = row["next_fire_at"]
        if start is None:
            return []
        first = to_dt(start)
        later = await self.compute.run(cron.upcoming, trigger_of(row), first, max(0, n - 1))
        return [first, *later][:n]

    async def fires(
        self, who: Principal, schedule_id: str, status: str | None, limit: int
    ) -> list[dict[str, Any]]:
        await self.get(who, schedule_id)
        async with self.db.read() as conn:
            return await store.list_fires(
                conn, schedule_id, status, max(1, min(limit, reads.PAGE_MAX))
            )

    async def next_due_at(self) -> float | None:
        async with self.db.read() as conn:
            return await store.next_due_at(conn)

    # --- firing ---------------------------------------------------------------------------

    async def fire_due(self, now: float | None = None) -> tuple[int, list[float]]:
        """Fire one batch of due schedules. Returns (schedules handled, slot times run)."""
        now = time.time() if now is None else now
        settings = self.settings
        grace, ahead = settings.catchup_grace_s, now + settings.scheduler_lookahead_s

        def horizon(s: dict[str, Any]) -> float:
            # overlap=allow: every slot up to the look-ahead. The other rules depend on what
            # runs at the slot: one slot at most, taken early only while nothing of the
            # schedule is active (then nothing else can become active before the slot).
            if s["overlap"] == Overlap.allow.value:
                return ahead
            return max(now, s["next_fire_at"])

        async with self.db.write() as conn:
            due = await store.due(conn, now, settings.scheduler_batch)
            if not due:
                return 0, []
            watched = [s["id"] for s in due if s["overlap"] != Overlap.allow.value]
            activity = await run_store.active_for_schedules(conn, watched) if watched else {}
            # Something of the schedule is active before its slot: decide at the slot itself.
            wait = {s["id"] for s in due if s["id"] in activity and s["next_fire_at"] > now}
            to_cancel = [
                s["id"]
                for s in due
                if s["overlap"] == Overlap.cancel_other.value
                and s["id"] in activity
                and s["id"] not in wait
            ]
            cancelled = await self._cancel_active(conn, to_cancel, now) if to_cancel else None
            rows: list[dict[str, Any]] = []
            fires: list[dict[str, Any]] = []
            moves: list[dict[str, Any]] = [
                {
                    "id": s["id"],
                    "next_fire_at": s["next_fire_at"],
                    "due_at": s["next_fire_at"],
                    "last_fire_at": s["last_fire_at"],
                    "enabled": True,
                }
                for s in due
                if s["id"] in wait
            ]
            plans = [
                (
                    s,
                    *plan_slots(
                        s, trigger_of(s), now, horizon(s), grace, activity.get(s["id"]), fires
                    ),
                )
                for s in due
                if s["id"] not in wait
            ]
            ids = iter(new_ids(sum(len(slots) for _, slots, _ in plans)))
            for s, run_slots, held in plans:
                job = {
                    "id": s["job_id"],
                    "space": s["space"],
                    "executor": s["executor"],
                    "retry": s["retry"],
                    "timeout_s": s["timeout_s"],
                    "params": s["job_params"],
                }
                for slot in run_slots:
                    jitter = random.uniform(0, s["jitter_s"]) if s["jitter_s"] else 0.0
                    rows.append(
                        new_run(
                            next(ids),
                            job,
                            s["params"],
                            now,
                            not_before=slot + jitter,
                            schedule_id=s["id"],
                            scheduled_for=slot,
                            state=RunState.pending if held else RunState.queued,
                        )
                    )
                nxt = self._next(s, horizon(s))
                moves.append(
                    {
                        "id": s["id"],
                        "next_fire_at": nxt,
                        "due_at": self._due(nxt),
                        "last_fire_at": max(run_slots, default=s["last_fire_at"]),
                        "enabled": nxt is not None,
                    }
                )
            created = await ledger.insert_slots(conn, rows, now)
            await store.record_fires(conn, fires)
            await store.advance(conn, moves)
        done_at = time.time()
        metrics = self.metrics
        for r in created:
            metrics.fire_lateness.observe(max(0.0, done_at - r["scheduled_for"]))
        for f in fires:
            metrics.slots.labels(f["status"]).inc(f["count"])
        self._announce(created)
        if cancelled:
            self.signals.events.fire()
        return len(due), [r["scheduled_for"] for r in created]

    def _announce(self, created: list[dict[str, Any]]) -> None:
        if created:
            self.signals.runs_queued.fire({r["executor"] for r in created})
            self.signals.events.fire()

    async def backfill(
        self, who: Principal, schedule_id: str, spec: BackfillSpec
    ) -> dict[str, Any]:
        """Run the slots of [start, end) now, each once: a slot that already has a run (fired,
        or backfilled before) is left alone. The overlap rule is not applied. A dry run only
        lists the slots and counts those that already have a run."""
        s = await self.get(who, schedule_id, Role.developer)
        job = await self.jobs.get(who, s["job_id"], Role.developer)
        tick = timedelta(microseconds=1)
        most = self.settings.backfill_max_slots
        slots, total = await self.compute.run(
            cron.slots_between, trigger_of(s), spec.start - tick, spec.end - tick, most, most + 1
        )
        if total > most:
            raise Invalid(
                "end",
                f"the range holds more than {most:,} slots (GNOMON_BACKFILL_MAX_SLOTS); split it",
            )
        times = [t.timestamp() for t in slots]
        out = {"schedule_id": s["id"], "slots": len(times), "times": times}
        if spec.dry_run:
            async with self.db.read() as conn:
                filled = await run_store.filled_slots(conn, s["id"], times)
            return {**out, "created": 0, "existing": len(filled), "runs": []}
        now = time.time()
        rows = [
            new_run(run_id, job, s["params"], now, schedule_id=s["id"], scheduled_for=t)
            for run_id, t in zip(new_ids(len(times)), times, strict=True)
        ]
        async with self.db.write() as conn:
            created = await ledger.insert_slots(conn, rows, now)
        self._announce(created)
        return {
            **out,
            "created": len(created),
            "existing": len(rows) - len(created),
            "runs": [r["id"] for r in created],
        }

    async def _cancel_active(self, conn: Any, schedule_ids: list[str], now: float) -> int:
        """overlap=cancel_other: end the schedule's queued runs, ask running ones to stop."""
        active = await run_store.active_runs_of_schedules(conn, schedule_ids)
        waiting = [r for r in active if r["state"] in WAITING_STATES]
        held = [r for r in active if r["state"] in HELD_STATES]
        await ledger.move(conn, [cancel(r["id"], now, CANCELLED_BY_NEWER) for r in waiting])
        await self.execution.request_cancel(conn, [r["id"] for r in held], now)
        return len(active)
