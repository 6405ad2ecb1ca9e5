"""Sites: pull queues drained by remote agents, their reports, keys, live updates.

A site is the executor `site:<name>`: runs of its jobs stay `queued` until an agent claims
them. An agent is known by its principal and a name it gives (`worker_id` = `name@key`, the
key being the token id, `jwt:<sub>` or a face's name, hashed when long); only the holder of
a run's lease (or an admin) may report on it, and every report extends the lease. Leases
that run out make runs `lost` (see Runs.reap_expired).

A space *uses* a site while it has a live (not deleted) job on the executor `site:<name>`.
What that decides:

- agents: claiming and heartbeats need the developer role in a space that uses the site (or
  admin); an agent is recorded with the spaces it polls for, and only those spaces see it;
- reservations (service/reservations.py): a developer may reserve a site for a space that
  uses it, or a site no space uses yet. A reservation holds the site for everyone, so its
  owner, a manager of its space, a manager of any space that uses the site, or an admin may
  remove it;
- views: a site is shown to callers whose spaces use it or hold a reservation there (else
  404); counts cover the caller's spaces; reservations of the caller's spaces are shown
  whole, other spaces' only as a window (no space, owner or note), and only to callers whose
  spaces use the site;
- keys: a site may have a key (kept as its SHA-256), set and removed by an admin or a manager
  of a space that uses the site; a face's site routes take it as the site's proof (SiteFace).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gnomon.config import Settings
from gnomon.domain import (
    Principal,
    Role,
    RunChange,
    can_transition,
    cancel,
    clip_output,
    retry_policy,
    settle,
)
from gnomon.errors import Conflict, Forbidden, NotFound, Unauthorized
from gnomon.service.access import digest, readable_spaces, require
from gnomon.service.cache import TtlCache
from gnomon.service.events import Check, detached
from gnomon.service.execution import Execution
from gnomon.service.jwt_auth import JWT_PREFIX
from gnomon.service.signals import Signal, Signals
from gnomon.service.site_users import SiteUsers, executor_of
from gnomon.specs import JobSpec, ReportSpec, RunRequest
from gnomon.store import jobs as job_store
from gnomon.store import ledger
from gnomon.store import runs as run_store
from gnomon.store import sites as store
from gnomon.store.db import Database
from gnomon.vocabulary import (
    ACTIVE_STATES,
    FINAL_STATES,
    LIVE_STATES,
    SITE_PREFIX,
    WAITING_STATES,
    RunState,
    site_executor,
    site_of,
)

if TYPE_CHECKING:
    from gnomon.service.events import Events
    from gnomon.service.jobs import Jobs
    from gnomon.service.reservations import Reservations
    from gnomon.service.runs import Runs

FINAL = frozenset(s.value for s in FINAL_STATES)
SEEN_EVERY_S = 1.0  # agents' last contact is written at most this often per agent
BUSY_S = 0.5  # after a full claim, the next one skips the look at whether work is due
SYSTEM = Principal(token_id="system", name="gnomon", admin=True)
KEY_PREFIX = "sk_"
KEY_HEADER = "X-Site-Key"


def owner_key(who: Principal) -> str:
    """A short stable key for the principal (token id, `jwt:<sub>` or a face's name)."""
    tid = who.token_id
    return tid if len(tid) <= 26 else "h" + hashlib.sha256(tid.encode()).hexdigest()[:25]


def worker_id(who: Principal, agent: str) -> str:
    return f"{agent}@{owner_key(who)}"


def holds(who: Principal, run: dict[str, Any]) -> bool:
    """Whether the run's lease is the principal's (agent names hold no '@')."""
    return (run.get("worker_id") or "").partition("@")[2] == owner_key(who)


@dataclass(frozen=True)
class SiteFace:
    """A face that queues work for sites as runs of one job per site: `<agent>:<site>` in
    `space`, an `action` on the executor `site:<site>`. Its site routes (the site's own
    software taking jobs and reporting on them, the UI listing and following them) reach the
    runs of that job and no others.

    Who a site route acts as (Sites.face_caller):

    - a key, when shown, must be the site's: a wrong key is refused whatever else is sent;
    - a token acts as itself: the developer role in `space` to take jobs and report, viewer
      to list and follow;
    - without a token, the site's own software (bound to the site, no role). To take jobs or
      report it needs the site's key when the site has one or `require_key` is set; without
      a key, the face must be `open` and the request may not come from a web page (an
      `Origin` header): another site's page cannot act for a site. Listing and following
      need the key or an `open` face.

    A job whose params' `action` is `clear_action` clears the site: every earlier job of the
    face there that has not finished is cancelled (its status `clear_status`), and every
    earlier job drops out of the face's listing (Sites.face_recent); the ledger keeps them.
    """

    agent: str
    space: str
    action: dict[str, Any]
    open: bool = True
    require_key: bool = False
    lease_s: float | None = None
    clear_action: str | None = None
    clear_status: str = "CANCELLED"

    def job_name(self, site: str) -> str:
        return f"{self.agent}:{site}"


class Sites:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        signals: Signals,
        users: SiteUsers,
        events: Events,
        jobs: Jobs,
        runs: Runs,
        execution: Execution,
        reservations: Reservations,
    ):
        self.db = db
        self.settings = settings
        self.signals = signals
        self.users = users
        self.events = events
        self.jobs = jobs
        self.runs = runs
        self.execution = execution
        self.reservations = reservations
        self._signals: dict[str, Signal] = {}
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}
        self._busy: dict[str, float] = {}  # executors whose last claim came back full
        self._fields: dict[str, tuple[float, dict[str, Any]]] = {}
        self._jobs: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._keys: TtlCache[str, str | None] = TtlCache(settings.token_cache_s)

    # --- claim ----------------------------------------------------------------------------

    def _signal(self, executor: str) -> Signal:
        signal = self._signals.get(executor)
        if signal is None:
            if len(self._signals) > 10000:  # names are the caller's: keep the map bounded
                self._signals.clear()
            signal = self.signals.runs_queued.subscribe([executor])
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
        poll_s for runs queued by other processes). The caller needs the developer role in a
        space that uses the site."""
        executor = executor_of(site)
        spaces = _developer_spaces(who)
        acting = await self.users.acting_spaces(who, site)
        return await self._claim(
            executor,
            site,
            spaces=spaces,
            job_ids=None,
            worker=worker_id(who, agent),
            lease_s=lease_s or self.settings.lease_s,
            max=max,
            wait_s=wait_s,
            acting=acting,
        )

    async def _claim(
        self,
        executor: str,
        site: str,
        *,
        spaces: list[str] | None,
        job_ids: list[str] | None,
        worker: str,
        lease_s: float,
        max: int,
        wait_s: float,
        acting: list[str],
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + min(wait_s, self.settings.site_claim_wait_max_s)
        signal = self._signal(executor)
        first = True
        while True:
            armed = signal.armed()
            claimed = await self._claim_once(
                executor, site, spaces, job_ids, max, worker, lease_s, acting, first
            )
            first = False
            left = deadline - time.monotonic()
            if claimed or left <= 0:
                return claimed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(armed.wait(), min(left, self.settings.poll_s))

    async def _claim_once(
        self,
        executor: str,
        site: str,
        spaces: list[str] | None,
        job_ids: list[str] | None,
        limit: int,
        worker: str,
        lease_s: float,
        acting: list[str],
        contact: bool,
    ) -> list[dict[str, Any]]:
        """One claim by an agent polling for the spaces `acting`; with `contact`, its contact
        is recorded even when nothing is due."""
        now = time.time()
        if self._busy.get(executor, 0.0) < time.monotonic():  # else: skip the cheap look
            async with self.db.read() as conn:
                due = await run_store.next_not_before(conn, [executor])
            if due is None or due > now:
                if contact:
                    await self._contact(site, worker, now, 0, spaces=acting)
                return []
        async with self.db.write() as conn:
            lease_until = now + lease_s
            claimed = await ledger.claim(
                conn,
                executors=[executor],
                lanes=[(None, limit)],
                worker_id=worker,
                lease_until=lease_until,
                now=now,
                spaces=spaces,
                job_ids=job_ids,
                jobs_known=self._job_fields,
            )
            self._remember_fields(claimed)
            if len(claimed) == limit:
                self._busy[executor] = time.monotonic() + BUSY_S
            else:
                self._busy.pop(executor, None)
            await self._contact(site, worker, now, len(claimed), conn, spaces=acting)
        if claimed:
            self.signals.events.fire()
        return claimed

    async def _contact(
        self,
        site: str,
        worker: str,
        now: float,
        claimed: int,
        conn: Any = None,
        *,
        spaces: list[str] | None = None,
    ) -> None:
        """Record an agent's contact, at most once per SEEN_EVERY_S (counts add up meanwhile);
        `spaces`: the spaces it polls for, when known."""
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
            await store.seen(conn, site, worker, now, count, spaces)
            return
        async with self.db.write() as conn:
            await store.seen(conn, site, worker, now, count, spaces)

    def _remember_fields(self, claimed: list[dict[str, Any]]) -> None:
        until = time.monotonic() + self.settings.token_cache_s
        if len(self._fields) > 10000:
            self._fields.clear()
        for r in {r["job_id"]: r for r in claimed}.values():
            fields = {k: r[k] for k in ("action", "retry", "executor_options", "job_name")}
            self._fields[r["job_id"]] = (until, fields)

    def _job_fields(self, job_id: str) -> dict[str, Any] | None:
        """What a claimed run carries of its job, cached for a moment (SQLite's claim)."""
        hit = self._fields.get(job_id)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    async def heartbeat(self, who: Principal, site: str, agent: str) -> dict[str, Any]:
        """Extend every lease the agent holds; say which of its runs should be cancelled.
        Like a claim, it needs the developer role in a space that uses the site."""
        executor_of(site)
        acting = await self.users.acting_spaces(who, site)
        worker = worker_id(who, agent)
        now = time.time()
        lease_until = now + self.settings.lease_s
        async with self.db.write() as conn:
            stop = await ledger.heartbeat(conn, worker, lease_until, now)
            await self._contact(site, worker, now, 0, conn, spaces=acting)
        return {"agent": worker, "cancel": stop, "lease_expires_at": lease_until}

    async def resume_leases(self) -> int:
        """At start-up: give site agents a full lease to reach this server again, so runs
        are not declared lost for the time no server was there to hear them."""
        until = time.time() + self.settings.lease_s
        async with self.db.write() as conn:
            return await ledger.extend_leases(conn, SITE_PREFIX, until)

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
        return await self._report(
            who, run_id, spec, take=take, lease_s=lease_s, agent=agent, site=site, job_id=None
        )

    async def _report(
        self,
        who: Principal,
        run_id: str,
        spec: ReportSpec,
        *,
        take: bool,
        lease_s: float | None,
        agent: str,
        site: str | None,
        job_id: str | None,
    ) -> dict[str, Any]:
        """`report`; with `job_id`, only a run of that job is found, and the caller's right to
        act on that job's runs was checked before (a face's site routes)."""
        now = time.time()
        lease = lease_s or self.settings.lease_s
        async with self.db.write() as conn:
            run = await store.get_for_report(conn, run_id)
            if (
                run is None
                or site_of(run["executor"]) is None
                or (site is not None and run["executor"] != site_executor(site))
                or (job_id is not None and run["job_id"] != job_id)
            ):
                where = f"site '{site}'" if site is not None else "a site"
                raise NotFound(f"no run '{run_id}' on {where}")
            if job_id is None:  # reporting is an agent's act: a developer's
                require(who, run["space"], Role.developer)
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
            if state in WAITING_STATES:
                if not take:
                    raise Conflict(f"run '{run_id}' is {state}: claim it before reporting")
                worker = worker_id(who, agent)
                if not await ledger.take(
                    conn, run, worker_id=worker, lease_until=now + lease, now=now
                ):
                    raise Conflict(f"run '{run_id}' changed meanwhile; try again")
                state = RunState.claimed.value
                run.update(state=state, worker_id=worker, output="", output_size=0)
            if not (who.admin or holds(who, run)):
                raise Forbidden(f"run '{run_id}' is held by another agent")
            change = _change(run, spec, now, lease, self.settings.output_limit_bytes)
            done = await ledger.move(conn, [change])
            if not done:
                raise Conflict(f"run '{run_id}' changed meanwhile; try again")
            released = await self.execution.release_buffered(conn, done)
            await self._contact(site_of(run["executor"]) or "", run["worker_id"], now, 0, conn)
            out = await self._present(conn, run_id)
        self.signals.events.fire()
        if released:
            self.signals.runs_queued.fire()
        elif out["state"] == RunState.queued:
            self.signals.runs_queued.fire([out["executor"]])
        return out

    async def _present(self, conn: Any, run_id: str) -> dict[str, Any]:
        run = await run_store.get(conn, run_id, output=False)
        assert run is not None
        return run

    # --- cancel many ----------------------------------------------------------------------

    async def cancel_active(
        self,
        who: Principal,
        site: str,
        *,
        space: str,
        job_id: str | None,
        status: str,
        before: str | None = None,
    ) -> int:
        """End every unfinished run of the site in `space` (of one job, when given; made
        before the run `before`, when given) as cancelled, held ones included: the site is
        told by the caller's own means."""
        executor = executor_of(site)
        require(who, space, Role.developer)
        async with self.db.read() as conn:
            active = await store.active_runs(conn, executor, [space], job_id)
        if before is not None:
            active = [r for r in active if r["id"] < before]
        if not active:
            return 0
        now = time.time()
        message = f"cancelled by {who.name}"
        changes = [
            cancel(r["id"], now, message, within=LIVE_STATES, status=status, lease_expires_at=None)
            for r in active
        ]
        return len(await self.execution.apply(changes))

    # --- site view ------------------------------------------------------------------------

    async def view(self, who: Principal, site: str | None = None) -> list[dict[str, Any]]:
        """Per site: queue depth, claimed and running runs, the agents polling for the
        caller's spaces and their last contact, whether the site has a key, and the
        reservation holding it now. A non-admin's listing holds the sites its spaces use;
        counts cover the spaces the caller may read (see the module's rules)."""
        spaces = readable_spaces(who, None)
        uses = True  # an admin's, or the sites the caller's own jobs name
        if site is not None:
            uses = await self.users.visible(who, site)
        async with self.db.read() as conn:
            names = [site] if site is not None else await store.site_names(conn, spaces)
            counts = await store.counts(conn, names, spaces)
            agents = await store.agents_of(conn, names)
            keyed = await store.keyed(conn, names)
        used = set(names) if uses else set()
        reservations = self.reservations
        reserved = await reservations.current()
        now = time.time()
        by_site: dict[str, list[dict[str, Any]]] = {}
        for a in agents:
            if spaces is None or set(a["spaces"] or ()) & set(spaces):
                by_site.setdefault(a["site"], []).append(a)
        out = []
        for name in names:
            seen = by_site.get(name, [])
            held = [r for r in reserved.get(name, ()) if r["start_at"] <= now < r["end_at"]]
            shown = [
                reservations.shown_to(r, spaces)
                for r in held
                if name in used or reservations.mine(r, spaces)
            ]
            c = counts.get(name, {})
            out.append(
                {
                    "site": name,
                    **{s.value: c.get(s.value, 0) for s in ACTIVE_STATES},
                    "last_contact_at": max((a["last_contact_at"] for a in seen), default=None),
                    "agents": seen,
                    "key_set": name in keyed and name in used,
                    "reservation": shown[0] if shown else None,
                }
            )
        return out

    # --- keys -----------------------------------------------------------------------------

    async def set_key(self, who: Principal, site: str) -> dict[str, Any]:
        """A new key for the site, replacing any: returned once, kept as its SHA-256."""
        await self._require_keeper(who, site)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        async with self.db.write() as conn:
            await store.set_key(conn, site, digest(key), now)
        self._keys.forget(site)
        return {"site": site, "key": key, "created_at": now}

    async def delete_key(self, who: Principal, site: str) -> None:
        await self._require_keeper(who, site)
        async with self.db.write() as conn:
            if not await store.delete_key(conn, site):
                raise NotFound(f"site '{site}' has no key")
        self._keys.forget(site)

    async def _require_keeper(self, who: Principal, site: str) -> None:
        executor_of(site)
        if who.admin:
            return
        if not any(who.can(s, Role.manager) for s in await self.users.of(site, fresh=True)):
            raise Forbidden(
                f"a site's key needs the manager role in a space that uses site '{site}', or admin"
            )

    async def _key_hash(self, site: str) -> str | None:
        """The site's key hash (None: no key), read at most once per token_cache_s."""
        return await self._keys.get(site, lambda: self._load_key(site))

    async def _load_key(self, site: str) -> tuple[str | None, None]:
        async with self.db.read() as conn:
            return await store.key_hash(conn, site), None

    # --- live updates ---------------------------------------------------------------------

    async def changes(
        self, who: Principal, site: str, after: int | None, check: Check | None
    ) -> AsyncGenerator[tuple[dict[str, Any], dict[str, Any]], None]:
        """Every change of the site's runs in `who`'s spaces (see `follow`); 404 at once
        when the site is none of theirs (SiteUsers.visible)."""
        await self.users.visible(who, site)
        return self.follow(readable_spaces(who, None), site, after, check)

    async def follow(
        self,
        spaces: list[str] | None,
        site: str,
        after: int | None = None,
        check: Check | None = None,
    ) -> AsyncIterator[tuple[dict[str, Any], dict[str, Any]]]:
        """Every change of the site's runs, in order: (event, the run as the event left it),
        until `check` says no (see Events.open)."""
        feed = await self.events.open(
            spaces=spaces, after=after, executor=executor_of(site), check=check
        )
        try:
            async for event in feed:
                run = await detached(self._run_of(event["run_id"]))
                if run is None:
                    continue
                run.update(state=event["state"], status=event["status"], attempt=event["attempt"])
                yield event, run
        finally:
            feed.close()

    async def _run_of(self, run_id: str) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            return await run_store.get(conn, run_id, output=False)

    # --- a face's site routes (see SiteFace) ----------------------------------------------

    async def face_caller(
        self,
        face: SiteFace,
        site: str,
        *,
        key: str | None,
        holder: Principal | None,
        origin: str | None,
        acts: bool,
    ) -> Principal:
        """Who a face's site route for `site` acts as: `holder` (the token's), else the
        site's own software. `acts`: the route takes jobs or reports on them; `origin`: the
        web page that sent the request, if any."""
        executor_of(site)
        if key is not None:
            stored = await self._key_hash(site)
            if stored is None or len(key) > 200 or not hmac.compare_digest(stored, digest(key)):
                raise Unauthorized(f"wrong key for site '{site}'")
        if holder is not None:
            return holder
        if key is None:
            if acts and (face.require_key or await self._key_hash(site) is not None):
                raise Unauthorized(f"site '{site}' needs its key ({KEY_HEADER} header or ?key=)")
            if not face.open:
                raise Unauthorized("expected 'Authorization: Bearer <token>' or the site's key")
            if acts and origin is not None:
                raise Forbidden("a web page cannot act for a site without the site's key")
        return Principal(token_id=face.agent, name=f"{face.agent} at {site}", site=site)

    def _face_access(self, face: SiteFace, who: Principal, site: str, role: Role) -> None:
        if who.site is not None:
            if who.site != site:
                raise Forbidden(f"this caller acts for site '{who.site}' only")
            return
        require(who, face.space, role)

    async def face_job(
        self, face: SiteFace, site: str, *, create: bool = False
    ) -> dict[str, Any] | None:
        """The face's job for the site; None while there is none, unless `create`."""
        name = face.job_name(site)
        key = (face.space, site, name)
        job = self._jobs.get(key)
        if job is not None:
            return job
        executor = executor_of(site)
        async with self.db.read() as conn:
            job = await job_store.get_by_name(conn, face.space, name, None)
        if job is None:
            if not create:
                return None
            spec = JobSpec(name=name, action=face.action, executor=executor, space=face.space)  # type: ignore[arg-type]
            try:
                job = await self.jobs.create(SYSTEM, spec)
            except Conflict:  # made meanwhile by another request or process
                async with self.db.read() as conn:
                    job = await job_store.get_by_name(conn, face.space, name, None)
        if job is None or job["executor"] != executor:
            raise Conflict(f"job '{name}' in space '{face.space}' is not on site '{site}'")
        if len(self._jobs) > 10000:
            self._jobs.clear()
        self._jobs[key] = job
        return job

    async def face_submit(
        self,
        face: SiteFace,
        who: Principal,
        site: str,
        params: dict[str, Any],
        *,
        user: str | None = None,
    ) -> dict[str, Any]:
        """Queue a job of the face at the site (its job made on first use). Needs the
        developer role in the face's space, and no one else's reservation holding the site;
        `user`: the user the request names (see face_owners). A job of the face's
        `clear_action` clears the site first (see SiteFace)."""
        executor_of(site)
        require(who, face.space, Role.developer)
        owners = face_owners(who, user)
        job = await self.face_job(face, site, create=True)
        assert job is not None
        clears = face.clear_action is not None and params.get("action") == face.clear_action
        if clears:
            await self.reservations.check(who, site, owners=owners)
            await self.cancel_active(
                who, site, space=face.space, job_id=job["id"], status=face.clear_status
            )
        request = RunRequest(params=params)
        run = (await self.runs.submit(who, job["id"], [request], owners=owners))[0]
        if clears:  # a job queued meanwhile, before this one, is cleared too
            await self.cancel_active(
                who,
                site,
                space=face.space,
                job_id=job["id"],
                status=face.clear_status,
                before=run["id"],
            )
        return run

    async def face_claim(
        self, face: SiteFace, who: Principal, site: str, *, max: int, wait_s: float = 0.0
    ) -> list[dict[str, Any]]:
        """Up to `max` of the face's due jobs at the site, each to exactly one caller, leased
        for the face's lease; waits up to `wait_s` for one."""
        executor = executor_of(site)
        self._face_access(face, who, site, Role.developer)
        deadline = time.monotonic() + min(wait_s, self.settings.site_claim_wait_max_s)
        job = await self.face_job(face, site)
        while job is None:  # none yet: nothing to take; wait as asked
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            await asyncio.sleep(min(left, self.settings.poll_s))
            job = await self.face_job(face, site)
        return await self._claim(
            executor,
            site,
            spaces=[face.space],
            job_ids=[job["id"]],
            worker=worker_id(who, face.agent),
            lease_s=face.lease_s or self.settings.lease_s,
            max=max,
            wait_s=max_zero(deadline - time.monotonic()),
            acting=[face.space],
        )

    async def face_report(
        self, face: SiteFace, who: Principal, run_id: str, spec: ReportSpec, *, site: str
    ) -> dict[str, Any]:
        """A report on one of the face's jobs at the site; a queued one is taken first."""
        executor_of(site)
        self._face_access(face, who, site, Role.developer)
        job = await self.face_job(face, site)
        if job is None:
            raise NotFound(f"no run '{run_id}' on site '{site}'")
        return await self._report(
            who,
            run_id,
            spec,
            take=True,
            lease_s=face.lease_s,
            agent=face.agent,
            site=site,
            job_id=job["id"],
        )

    async def face_recent(
        self, face: SiteFace, who: Principal, site: str, *, since: float, limit: int
    ) -> list[dict[str, Any]]:
        """The face's jobs at the site made since `since`, newest first, at most `limit`;
        none made before the newest job that cleared the site (see SiteFace)."""
        executor_of(site)
        self._face_access(face, who, site, Role.viewer)
        job = await self.face_job(face, site)
        rows: list[dict[str, Any]] = []
        cursor = None
        while job is not None and len(rows) < limit:
            page, cursor = await self.runs.list(
                SYSTEM,
                space=face.space,
                job_id=job["id"],
                since=since,
                cursor=cursor,
                limit=min(1000, limit - len(rows)),
            )
            for i, run in enumerate(page):
                if face.clear_action is not None and _action(run) == face.clear_action:
                    return rows + page[: i + 1]
            rows += page
            if cursor is None:
                break
        return rows

    def face_watch(
        self,
        face: SiteFace,
        who: Principal,
        site: str,
        check: Check | None = None,
    ) -> AsyncGenerator[tuple[dict[str, Any], dict[str, Any]], None]:
        """Every change of the face's jobs at the site, from now: (event, the run as the
        event left it), as `follow`. The caller is checked here, before anything streams."""
        executor_of(site)
        self._face_access(face, who, site, Role.viewer)
        return self._face_changes(face, site, check)

    async def _face_changes(
        self, face: SiteFace, site: str, check: Check | None
    ) -> AsyncGenerator[tuple[dict[str, Any], dict[str, Any]], None]:
        job_id = None
        async with contextlib.aclosing(self.follow([face.space], site, check=check)) as changes:
            async for event, run in changes:
                if job_id is None:
                    job = await detached(self.face_job(face, site))
                    job_id = job["id"] if job is not None else None
                if event["job_id"] == job_id:
                    yield event, run


def face_owners(who: Principal, user: str | None) -> tuple[str, ...]:
    """The identities besides the caller's own that a reservation may name for a face's
    request that names `user` (an external JWT subject), as the Photon Ranch original matched
    reservations against the user its request body names: that user's, for a gnomon token;
    for an external JWT, `user` must be its own subject (Forbidden otherwise), adding
    nothing."""
    if not user:
        return ()
    named = JWT_PREFIX + user
    if who.token_id.startswith(JWT_PREFIX):
        if who.token_id != named:
            subject = who.token_id.removeprefix(JWT_PREFIX)
            raise Forbidden(
                f"user_id '{user}' is not the token's subject '{subject}'", code="not_the_user"
            )
        return ()
    return (named,)


def _action(run: dict[str, Any]) -> Any:
    params = run.get("params")
    return params.get("action") if isinstance(params, dict) else None


def max_zero(value: float) -> float:
    return value if value > 0 else 0.0


def _developer_spaces(who: Principal) -> list[str] | None:
    if who.admin:
        return None
    spaces = sorted(s for s in who.roles if who.can(s, Role.developer))
    if not spaces:
        raise Forbidden(f"token '{who.name}' needs the developer role in a space to claim runs")
    return spaces


def _change(
    run: dict[str, Any], spec: ReportSpec, now: float, lease_s: float, limit: int
) -> RunChange:
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
    within = (state,)  # the run must still be as it was read
    if target.value in FINAL:
        change = settle(run, target, retry_policy(run["retry"]), now, **fields)
        return dataclasses.replace(change, within=within)
    fields["lease_expires_at"] = now + lease_s
    if target != state:
        if target == RunState.running:
            fields["started_at"] = now
        return RunChange(run["id"], now, (target,), fields, within=within)
    news = any(k in fields and fields[k] != run[k] for k in ("status", "eta_s"))
    return RunChange(run["id"], now, values=fields, within=within, log=news)
