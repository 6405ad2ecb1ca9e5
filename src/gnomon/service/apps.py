"""Apps: execution contexts (space, working directory, environment, executor) for jobs; the jobs
bound to them, and those jobs' history (by numbered page, and the state each job takes from its
latest run) — what the PCF face shows."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from gnomon.domain import Principal, Role, RunState, slurm_env_refused
from gnomon.errors import Conflict, Invalid, NotFound
from gnomon.service import reads, secrecy
from gnomon.service.access import DEFAULT_SPACE, readable_spaces, require
from gnomon.specs import AppSpec
from gnomon.store import access as access_store
from gnomon.store import apps as store
from gnomon.store import history as history_store
from gnomon.store import schedules as schedule_store

if TYPE_CHECKING:
    from gnomon.store.db import Database

HISTORY_PAGE_MAX = 5000


def in_context(
    app: dict[str, Any], action: dict[str, Any], executor: str, executor_given: bool
) -> tuple[dict[str, Any], str]:
    """A job's action and executor in its app's context.

    A shell command runs in the app's working directory (unless it names its own), with the
    app's environment under its own, on the app's executor (unless the job names one). Other
    actions are not the app's to run: they keep their executor.
    """
    if action.get("type") != "shell":
        return action, executor
    bound = {
        **action,
        "cwd": action.get("cwd") or app["cwd"],
        "env": {**app["env"], **(action.get("env") or {})},
    }
    return bound, executor if executor_given else app["executor"]


def check_slurm_env(executor: str, action: dict[str, Any]) -> None:
    """On the slurm executor a job's environment may not steer sbatch (422 naming it)."""
    if executor == "slurm" and action.get("type") == "shell":
        name = slurm_env_refused(action)
        if name is not None:
            raise Invalid(
                "action.env",
                f"{name}: variables that steer sbatch (SBATCH_*, SLURM_*, SALLOC_*, SRUN_*, "
                "SPANK_*, LD_*) are not accepted with the slurm executor",
            )


def parse_guid(value: str) -> str | None:
    """The canonical form of a UUID, or None when `value` is not one."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None


class Apps:
    def __init__(self, db: Database):
        self.db = db

    async def create(self, who: Principal, spec: AppSpec) -> dict[str, Any]:
        space = spec.space or DEFAULT_SPACE
        require(who, space, Role.developer)
        check_slurm_env(spec.executor, {"type": "shell", "env": spec.env})
        now = time.time()
        row = {
            "id": str(spec.guid or uuid.uuid4()),
            "space": space,
            "name": spec.name,
            "cwd": spec.cwd,
            "env": spec.env,
            "executor": spec.executor,
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
        }
        try:
            async with self.db.write() as conn:
                if await access_store.get_space(conn, space) is None:
                    raise NotFound(f"space '{space}' not found")
                if await store.id_taken(conn, row["id"]):
                    raise Conflict(f"an app with the guid '{row['id']}' exists or existed")
                if await store.get_by_name(conn, space, spec.name):
                    raise Conflict(f"an app named '{spec.name}' already exists in '{space}'")
                await store.insert(conn, row)
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"an app named '{spec.name}' already exists in '{space}'") from exc
        return row

    async def get(self, who: Principal, app_id: str, role: Role = Role.viewer) -> dict[str, Any]:
        guid = parse_guid(app_id)
        app = None
        if guid is not None:
            async with self.db.read() as conn:
                app = await store.get(conn, guid)
        if app is None:
            raise NotFound(f"app '{app_id}' not found")
        require(who, app["space"], role)
        return secrecy.app(who, app)

    async def context(self, who: Principal, app_id: str, space: str | None) -> dict[str, Any]:
        """The app a new job binds to: it must exist, and be in `space` when one is given."""
        try:
            app = await self.get(who, app_id, Role.developer)
        except NotFound as exc:
            raise Invalid("app", f"no app with the guid '{app_id}'") from exc
        if space is not None and space != app["space"]:
            raise Invalid("space", f"app '{app_id}' is in space '{app['space']}'")
        return app

    async def list(
        self,
        who: Principal,
        *,
        space: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> tuple[list[dict[str, Any]], str | None]:
        items, next_cursor = await reads.listing(
            self.db, store.list_, who, space=space, cursor=cursor, limit=limit
        )
        return [secrecy.app(who, a) for a in items], next_cursor

    async def by_ids(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Apps by id, deleted ones included; for presenting jobs already read."""
        async with self.db.read() as conn:
            return await store.by_ids(conn, sorted(set(ids)))

    async def delete(self, who: Principal, app_id: str) -> None:
        app = await self.get(who, app_id, Role.developer)
        async with self.db.write() as conn:
            if n := await store.count_jobs(conn, app["id"]):
                raise Conflict(f"app '{app['id']}' still has {n} job(s): delete them first")
            if not await store.soft_delete(conn, app["id"], time.time()):
                raise NotFound(f"app '{app_id}' not found")

    async def jobs(
        self,
        who: Principal,
        *,
        space: str | None,
        action_type: str,
        offset: int,
        limit: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the jobs bound to apps (in `space`, or every space `who` may read) whose
        action is `action_type`, by name; and the total."""
        spaces = readable_spaces(who, space)
        async with self.db.read() as conn:
            rows, total = await store.bound_jobs(
                conn,
                spaces=spaces,
                action_type=action_type,
                offset=offset,
                limit=max(1, min(limit, reads.PAGE_MAX * 5)),
            )
        return secrecy.jobs(who, rows), total

    # --- the history of an app's jobs: `job` as its caller read it (access checked) ---------

    async def schedule_of(
        self, who: Principal, job: dict[str, Any], schedule_id: str
    ) -> dict[str, Any]:
        """One of the job's live schedules; NotFound also when it belongs to another job."""
        row = await reads.one(self.db, schedule_store.get, schedule_id, "schedule", who)
        if row["job_id"] != job["id"]:
            raise NotFound(f"schedule '{schedule_id}' not found for job '{job['id']}'")
        return row

    async def history(
        self,
        who: Principal,
        job: dict[str, Any],
        *,
        schedule_id: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the job's runs (of one of its schedules, if given), in the order they
        start; and how many there are in all. A schedule's run is not there before its slot
        (runs are made a little ahead of it)."""
        if schedule_id is not None:
            await self.schedule_of(who, job, schedule_id)
        async with self.db.read() as conn:
            return await history_store.page(
                conn,
                job_id=job["id"],
                schedule_id=schedule_id,
                offset=max(0, offset),
                limit=max(1, min(limit, HISTORY_PAGE_MAX)),
                now=time.time(),
            )

    async def job_states(self, job_ids: list[str]) -> dict[str, RunState | None]:
        """Each job's state: that of its latest run (a schedule's from its slot on), or None
        when it never ran. Callers have read the jobs already (and checked access to them)."""
        async with self.db.read() as conn:
            latest = await history_store.latest(conn, job_ids, now=time.time())
        return {j: RunState(latest[j]["state"]) if j in latest else None for j in job_ids}
