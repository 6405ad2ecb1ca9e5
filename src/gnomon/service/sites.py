"""Sites: pull queues drained by remote agents, their reports, reservations, live updates.

A site is the executor `site:<name>`: runs of its jobs stay `queued` until an agent claims
them. An agent is known by its token and a name it gives (`worker_id` = `name@token`); only
the holder of a run's lease (or an admin) may report on it, and every report extends the
lease. Leases that run out make runs `lost` (see Runs.reap_expired).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from gnomon.domain import (
    FINAL_STATES,
    Principal,
    Role,
    RunState,
    can_transition,
    clip_output,
    retry_policy,
)
from gnomon.errors import Conflict, Forbidden, Invalid, NotFound
from gnomon.ids import new_id
from gnomon.service import ledger
from gnomon.service.access import DEFAULT_SPACE, readable_spaces, require
from gnomon.service.runs import settle
from gnomon.service.signals import Signal
from gnomon.specs import SITE, JobSpec, ReportSpec, ReservationSpec
from gnomon.store import access as access_store
from gnomon.store import events as event_store
from gnomon.store import jobs as job_store
from gnomon.store import runs as run_store
from gnomon.store import sites as store

if TYPE_CHECKING:
    from gnomon.service import Service

PREFIX = "site:"
SITE_RE = re.compile(SITE)
FINAL = frozenset(s.value for s in FINAL_STATES)
HELD = ("claimed", "running")
ACTIVE = ("pending", "queued", "claimed", "running")
SEEN_EVERY_S = 1.0  # agents' last contact is written at most this often per agent
BUSY_S = 0.5  # after a full claim, the next one skips the look at whether work is due
SYSTEM = Principal(token_id="system", name="gnomon", admin=True)


def executor_of(site: str) -> str:
    if not SITE_RE.match(site):
        raise Invalid("site", "letters, digits, '_', '.', '-' (at most 63), starting alnum")
    return PREFIX + site


def owner_key(who: Principal) -> str:
    """A short stable key for the token (or JWT subject) behind a principal."""
    tid = who.token_id
    return tid if len(tid) <= 26 else "h" + hashlib.sha256(tid.encode()).hexdigest()[:25]


def worker_id(who: Principal, agent: str) -> str:
    return f"{agent}@{owner_key(who)}"


def holds(who: Principal, run: dict[str, Any]) -> bool:
    return (run.get("worker_id") or "").endswith("@" + owner_key(who))


class Sites:
    def __init__(self, svc: Service):
        self.svc = svc
        self._signals: dict[str, Signal] = {}
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}
        self._busy: dict[str, float] = {}  # executors whose last claim came back full
        self._fields: dict[str, tuple[float, dict[str, Any]]] = {}
        self._reserved: tuple[float, dict[str, list[dict[str, Any]]]] = (0.0, {})
        self._reserved_lock = asyncio.Lock()
        self._jobs: dict[tuple[str, str, str], dict[str, Any]] = {}

    # --- claim ----------------------------------------------------------------------------

    def _signal(self, executor: str) -> Signal:
        signal = self._signals.get(executor)
        if signal is None:
            if len(self._signals) > 10000:  # names are the caller's: keep the map bounded
                self._signals.clear()
            signal = self.svc.signals.runs_queued.subscribe([executor])
            self._signals[executor] = signal
        return signal

    async def claim(
        self,
        who: Principal,
        site: str,
        *,
        max: int = 1,
        wait_s: float = 0.0,
        agent: str = "agent",
        lease_s: float | None = None,
    ) -> list[dict[str, Any]]:
        """Up to `max` due runs of the site, each delivered to exactly one caller; with
        `wait_s`, wait that long for one to arrive (in-process wake-ups, and a re-check every
        poll_s for runs queued by other processes)."""
        executor = executor_of(site)
        spaces = _developer_spaces(who)
        worker = worker_id(who, agent)
        lease = lease_s or self.svc.settings.lease_s
        deadline = time.monotonic() + min(wait_s, self.svc.settings.site_claim_wait_max_s)
        signal = self._signal(executor)
        first = True
        while True:
            armed = signal.armed()
            claimed = await self._claim_once(executor, site, spaces, max, worker, lease, first)
            first = False
            left = deadline - time.monotonic()
            if claimed or left <= 0:
                return claimed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(armed.wait(), min(left, self.svc.settings.poll_s))

    async def _claim_once(
        self,
        executor: str,
        site: str,
        spaces: list[str] | None,
        limit: int,
        worker: str,
        lease_s: float,
        contact: bool,
    ) -> list[dict[str, Any]]:
        now = time.time()
        if self._busy.get(executor, 0.0) < time.monotonic():  # else: skip the cheap look
            async with self.svc.db.read() as conn:
                due = await run_store.next_not_before(conn, [executor])
            if due is None or due > now:
                if contact:
                    await self._contact(site, worker, now, 0)
                return []
        async with self.svc.db.write() as conn:
            lease_until = now + lease_s
            claimed = await store.claim(
                conn,
                executor=executor,
                spaces=spaces,
                limit=limit,
                worker_id=worker,
                lease_until=lease_until,
                now=now,
                jobs_known=self._job_fields,
            )
            if len(claimed) < limit:  # runs of jobs with a concurrency limit
                limited = await run_store.claim(
                    conn,
                    executors=[executor],
                    lanes=[(None, limit - len(claimed))],
                    worker_id=worker,
                    lease_until=lease_until,
                    now=now,
                    spaces=spaces,
                )
                await event_store.append(
                    conn, [ledger.event_for(r, "claimed", now) for r in limited]
                )
                claimed += limited
            self._remember_fields(claimed)
            if len(claimed) == limit:
                self._busy[executor] = time.monotonic() + BUSY_S
            else:
                self._busy.pop(executor, None)
            await self._contact(site, worker, now, len(claimed), conn)
        if claimed:
            self.svc.signals.events.fire()
        return claimed

    async def _contact(
        self, site: str, worker: str, now: float, claimed: int, conn: Any = None
    ) -> None:
        """Record an agent's contact, at most once per SEEN_EVERY_S (counts add up meanwhile)."""
        key = (site, worker)
        mono = time.monotonic()
        last, count = self._seen.get(key, (0.0, 0))
        count += claimed
        if mono - last < SEEN_EVERY_S:
            self._seen[key] = (last, count)
            return
        if len(self._seen) > 10000:
            self._seen.clear()
        self._seen[key] = (mono, 0)
        if conn is not None:
            await store.seen(conn, site, worker, now, count)
            return
        async with self.svc.db.write() as conn:
            await store.seen(conn, site, worker, now, count)

    def _remember_fields(self, claimed: list[dict[str, Any]]) -> None:
        until = time.monotonic() + self.svc.settings.token_cache_s
        if len(self._fields) > 10000:
            self._fields.clear()
        for r in {r["job_id"]: r for r in claimed}.values():
            fields = {"action": r["action"], "retry": r["retry"], "job_name": r["job_name"]}
            self._fields[r["job_id"]] = (until, fields)

    def _job_fields(self, job_id: str) -> dict[str, Any] | None:
        """What a claimed run carries of its job, cached for a moment (SQLite's claim)."""
        hit = self._fields.get(job_id)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    async def heartbeat(self, who: Principal, site: str, agent: str) -> dict[str, Any]:
        """Extend every lease the agent holds; say which of its runs should be cancelled."""
        executor_of(site)
        worker = worker_id(who, agent)
        now = time.time()
        lease_until = now + self.svc.settings.lease_s
        async with self.svc.db.write() as conn:
            cancel = await run_store.heartbeat(conn, worker, lease_until, now)
            await self._contact(site, worker, now, 0, conn)
        return {"agent": worker, "cancel": cancel, "lease_expires_at": lease_until}

    async def resume_leases(self) -> int:
        """At start-up: give site agents a full lease to reach this server again, so runs
        are not declared lost for the time no server was there to hear them."""
        until = time.time() + self.svc.settings.lease_s
        async with self.svc.db.write() as conn:
            return await store.extend_leases(conn, PREFIX, until)

    # --- report ---------------------------------------------------------------------------

    async def report(
        self,
        who: Principal,
        run_id: str,
        spec: ReportSpec,
        *,
        take: bool = False,
        lease_s: float | None = None,
        agent: str = "agent",
        site: str | None = None,
    ) -> dict[str, Any]:
        """Apply an agent's report to a run it holds (see ReportSpec). With `take`, a
        queued run is claimed first (a site reporting on a job it never polled for); with
        `site`, a run of another site is not found."""
        now = time.time()
        lease = lease_s or self.svc.settings.lease_s
        async with self.svc.db.write() as conn:
            run = await store.get_for_report(conn, run_id)
            if (
                run is None
                or not run["executor"].startswith(PREFIX)
                or (site is not None and run["executor"] != PREFIX + site)
            ):
                where = f"site '{site}'" if site is not None else "a site"
                raise NotFound(f"no run '{run_id}' on {where}")
            require(who, run["space"], Role.viewer)
            state = run["state"]
            if spec.attempt is not None and spec.attempt != run["attempt"]:
                raise Conflict(
                    f"attempt {spec.attempt} of run '{run_id}' is over "
                    f"(it is at attempt {run['attempt']}, {state})"
                )
            if state in FINAL:
                if spec.state == state and (who.admin or holds(who, run)):
                    return await self._present(conn, run_id)  # a repeated final report
                raise Conflict(f"run '{run_id}' already ended ({state})")
            if state in ("pending", "queued"):
                if not take:
                    raise Conflict(f"run '{run_id}' is {state}: claim it before reporting")
                require(who, run["space"], Role.developer)
                worker = worker_id(who, agent)
                if not await store.take(
                    conn, run_id, worker_id=worker, lease_until=now + lease, now=now
                ):
                    raise Conflict(f"run '{run_id}' changed meanwhile; try again")
                await event_store.append(conn, [ledger.event_for(run, "claimed", now)])
                run.update(state="claimed", worker_id=worker, output="", output_size=0)
                state = "claimed"
            if not (who.admin or holds(who, run)):
                raise Forbidden(f"run '{run_id}' is held by another agent")
            change = _change(run, spec, now, lease, self.svc.settings.output_limit_bytes)
            done = await ledger.move(conn, [change], from_states=[state])
            if not done:
                raise Conflict(f"run '{run_id}' changed meanwhile; try again")
            released = await self.svc.runs.release_buffered(conn, done)
            await self._contact(run["executor"][len(PREFIX) :], run["worker_id"], now, 0, conn)
            out = await self._present(conn, run_id)
        self.svc.signals.events.fire()
        if released:
            self.svc.signals.runs_queued.fire()
        elif out["state"] == "queued":
            self.svc.signals.runs_queued.fire([out["executor"]])
        return out

    async def _present(self, conn: Any, run_id: str) -> dict[str, Any]:
        run = await run_store.get(conn, run_id, output=False)
        assert run is not None
        return run

    # --- cancel many ----------------------------------------------------------------------

    async def cancel_active(
        self, who: Principal, site: str, *, space: str, job_id: str | None, status: str
    ) -> int:
        """End every unfinished run of the site in `space` (of one job, when given) as
        cancelled, held ones included: the site is told by the caller's own means."""
        executor = executor_of(site)
        require(who, space, Role.developer)
        async with self.svc.db.read() as conn:
            active = await store.active_runs(conn, executor, [space], job_id)
        if not active:
            return 0
        now = time.time()
        changes = [
            {
                "id": r["id"],
                "state": "cancelled",
                "status": status,
                "finished_at": now,
                "lease_expires_at": None,
                "updated_at": now,
                "message": f"cancelled by {who.name}",
            }
            for r in active
        ]
        return len(await self.svc.runs.apply(changes, from_states=ACTIVE))

    # --- site view ------------------------------------------------------------------------

    async def view(self, who: Principal, site: str | None = None) -> list[dict[str, Any]]:
        """Per site: queue depth, claimed and running runs, agents and their last contact,
        and who holds it now. Counts cover the spaces the caller may read."""
        spaces = readable_spaces(who, None)
        if site is not None:
            executor_of(site)
        async with self.svc.db.read() as conn:
            names = [site] if site is not None else await store.site_names(conn, spaces)
            counts = await store.counts(conn, names, spaces)
            agents = await store.agents_of(conn, names)
        reserved = await self._reservations()
        now = time.time()
        by_site: dict[str, list[dict[str, Any]]] = {}
        for a in agents:
            by_site.setdefault(a["site"], []).append(a)
        out = []
        for name in names:
            seen = by_site.get(name, [])
            held = [r for r in reserved.get(name, ()) if r["start_at"] <= now < r["end_at"]]
            c = counts.get(name, {})
            out.append(
                {
                    "site": name,
                    "queued": c.get("queued", 0),
                    "claimed": c.get("claimed", 0),
                    "running": c.get("running", 0),
                    "last_contact_at": max((a["last_contact_at"] for a in seen), default=None),
                    "agents": seen,
                    "reservation": held[0] if held else None,
                }
            )
        return out

    # --- reservations ---------------------------------------------------------------------

    async def reserve(self, who: Principal, site: str, spec: ReservationSpec) -> dict[str, Any]:
        executor_of(site)
        space = spec.space or DEFAULT_SPACE
        require(who, space, Role.developer)
        owner = spec.owner or who.token_id
        if owner != who.token_id:
            require(who, space, Role.manager)
        row = {
            "id": new_id(),
            "space": space,
            "site": site,
            "owner": owner,
            "owner_name": spec.owner_name or (who.name if owner == who.token_id else None),
            "start_at": spec.start.timestamp(),
            "end_at": spec.end.timestamp(),
            "note": spec.note,
            "created_at": time.time(),
        }
        async with self.svc.db.write() as conn:
            if await access_store.get_space(conn, space) is None:
                raise NotFound(f"space '{space}' not found")
            await store.lock_site(conn, site)
            clash = await store.overlapping(conn, site, row["start_at"], row["end_at"])
            if clash:
                raise Conflict(
                    f"site '{site}' is already reserved in that window "
                    f"(reservation '{clash[0]['id']}')",
                    details=[{"reservation": c["id"]} for c in clash],
                )
            await store.insert_reservation(conn, row)
        self._forget_reservations()
        return row

    async def reservations(
        self, who: Principal, site: str, *, past: bool = False
    ) -> list[dict[str, Any]]:
        executor_of(site)
        async with self.svc.db.read() as conn:
            return await store.list_reservations(
                conn,
                site=site,
                spaces=readable_spaces(who, None),
                ending_after=None if past else time.time(),
            )

    async def unreserve(self, who: Principal, site: str, res_id: str) -> None:
        async with self.svc.db.write() as conn:
            row = await store.get_reservation(conn, res_id)
            if row is None or row["site"] != site:
                raise NotFound(f"reservation '{res_id}' not found at site '{site}'")
            if row["owner"] != who.token_id:
                require(who, row["space"], Role.manager)
            await store.delete_reservation(conn, res_id)
        self._forget_reservations()

    def _forget_reservations(self) -> None:
        self._reserved = (0.0, {})

    async def _reservations(self) -> dict[str, list[dict[str, Any]]]:
        """Reservations not yet over, by site: read at most once per token_cache_s."""
        expires, by_site = self._reserved
        if expires > time.monotonic():
            return by_site
        async with self._reserved_lock:
            expires, by_site = self._reserved
            if expires > time.monotonic():
                return by_site
            async with self.svc.db.read() as conn:
                rows = await store.list_reservations(
                    conn, site=None, spaces=None, ending_after=time.time(), limit=100_000
                )
            by_site = {}
            for r in rows:
                by_site.setdefault(r["site"], []).append(r)
            self._reserved = (time.monotonic() + self.svc.settings.token_cache_s, by_site)
            return by_site

    async def check_reservation(self, who: Principal, site: str) -> None:
        """While someone else's reservation holds, only its owner (or an admin) may queue
        work for the site. Costs a dictionary look-up between cache refreshes."""
        if who.admin:
            return
        rows = (await self._reservations()).get(site)
        if not rows:
            return
        now = time.time()
        for r in rows:
            if r["start_at"] <= now < r["end_at"] and r["owner"] != who.token_id:
                holder = r["owner_name"] or r["owner"]
                raise Forbidden(
                    f"site '{site}' is reserved by {holder} until "
                    f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(r['end_at']))}",
                    code="reserved",
                )

    # --- live updates ---------------------------------------------------------------------

    async def follow(
        self, spaces: list[str] | None, site: str, after: int | None = None
    ) -> AsyncIterator[tuple[dict[str, Any], dict[str, Any]]]:
        """Every change of the site's runs, in order: (event, the run as the event left it)."""
        executor = executor_of(site)
        async for event in self.svc.events.follow(spaces=spaces, after=after, executor=executor):
            async with self.svc.db.read() as conn:
                run = await run_store.get(conn, event["run_id"], output=False)
            if run is None:
                continue
            run.update(state=event["state"], status=event["status"], attempt=event["attempt"])
            yield event, run

    # --- jobs a face keeps for a site -----------------------------------------------------

    async def site_job(
        self, space: str, site: str, name: str, action: dict[str, Any]
    ) -> dict[str, Any]:
        """The job `name` in `space` on the site, created on first use."""
        key = (space, site, name)
        job = self._jobs.get(key)
        if job is not None:
            return job
        executor = executor_of(site)
        async with self.svc.db.read() as conn:
            job = await job_store.get_by_name(conn, space, name, None)
        if job is None:
            spec = JobSpec(name=name, action=action, executor=executor, space=space)  # type: ignore[arg-type]
            try:
                job = await self.svc.jobs.create(SYSTEM, spec)
            except Conflict:  # made meanwhile by another request or process
                async with self.svc.db.read() as conn:
                    job = await job_store.get_by_name(conn, space, name, None)
        if job is None or job["executor"] != executor:
            raise Conflict(f"job '{name}' in space '{space}' is not on site '{site}'")
        if len(self._jobs) > 10000:
            self._jobs.clear()
        self._jobs[key] = job
        return job

    def face_agent(self, space: str, name: str) -> Principal:
        """Who a face's unauthenticated site routes act as: a developer in its space."""
        return Principal(token_id=name, name=f"{name} site", roles={space: Role.developer})


def _developer_spaces(who: Principal) -> list[str] | None:
    if who.admin:
        return None
    spaces = sorted(s for s in who.roles if who.can(s, Role.developer))
    if not spaces:
        raise Forbidden(f"token '{who.name}' needs the developer role in a space to claim runs")
    return spaces


def _change(
    run: dict[str, Any], spec: ReportSpec, now: float, lease_s: float, limit: int
) -> dict[str, Any]:
    """The guarded change a report makes (see ReportSpec for the target state)."""
    state = RunState(run["state"])
    if spec.state is not None:
        target = RunState(spec.state)
    elif spec.exit_code is not None:
        target = RunState.succeeded if spec.exit_code == 0 else RunState.failed
    else:
        target = RunState.running
    if target != state and not can_transition(state, target):
        raise Conflict(f"run '{run['id']}' cannot go from {state.value} to {target.value}")
    fields: dict[str, Any] = {}
    for key in ("status", "eta_s", "exit_code", "message"):
        value = getattr(spec, key)
        if value is not None:
            fields[key] = value
    if spec.output:
        data = (run["output"] or "").encode() + spec.output.encode()
        fields["output"] = clip_output(data, limit).decode("utf-8", errors="ignore")
        fields["output_size"] = (run["output_size"] or 0) + len(spec.output.encode())
    if target.value in FINAL:
        change = settle(run, target, retry_policy(run["retry"]), now, **fields)
        change.setdefault("_states", [(change["state"], run["attempt"])])
        return change
    change = {"id": run["id"], "updated_at": now, "lease_expires_at": now + lease_s, **fields}
    if target != state:
        change["state"] = target.value
        if target == RunState.running:
            change["started_at"] = now
        change["_states"] = [(target.value, run["attempt"])]
    elif any(k in fields and fields[k] != run[k] for k in ("status", "eta_s")):
        change["_states"] = [(state.value, run["attempt"])]  # a status change is an event too
    else:
        change["_states"] = []
    return change
