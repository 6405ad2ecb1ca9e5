"""Job definitions: create, read, change, delete."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from gnomon import permits
from gnomon.config import Settings
from gnomon.domain import Principal, Role, validate_executor_options
from gnomon.errors import Conflict, Forbidden, Invalid, NotFound
from gnomon.ids import new_id
from gnomon.service import reads, secrecy
from gnomon.service.access import DEFAULT_SPACE, require
from gnomon.service.apps import check_slurm_env, in_context
from gnomon.service.cache import TtlCache
from gnomon.service.execution import Execution
from gnomon.service.executors import require_enabled
from gnomon.service.signals import Signals
from gnomon.specs import JobPatch, JobSpec
from gnomon.store import access as access_store
from gnomon.store import jobs as store
from gnomon.store import schedules as schedule_store
from gnomon.store.db import Database

if TYPE_CHECKING:
    from gnomon.service.apps import Apps


def executor_options(executor: str, options: dict[str, Any]) -> dict[str, Any]:
    """`options` checked against the executor the job ends up with."""
    try:
        return validate_executor_options(executor, options)
    except ValueError as exc:
        raise Invalid("executor_options", str(exc)) from None


def check_permits(settings: Settings, space: str, executor: str, action: dict[str, Any]) -> None:
    """What the admin's settings permit a job: the local executor in its space (403), the
    secrets it names that this server holds (403 when not granted to its space; one it does
    not hold may be a worker's), its local working directory (422)."""
    local = executor == "local"
    if local and (refused := permits.local_space_refusal(settings, space, action)):
        raise Forbidden(refused)
    if secrets := permits.secret_refusals(settings, space, action):
        raise Forbidden(f"secret {', '.join(secrets)} is not granted to space '{space}'")
    shell = local and action.get("type") == "shell"
    if shell and (refused := permits.cwd_refusal(settings, action.get("cwd"))):
        raise Invalid("action.cwd", refused)


class Jobs:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        signals: Signals,
        apps: Apps,
        execution: Execution,
    ):
        self.db = db
        self.settings = settings
        self.signals = signals
        self.apps = apps
        self.execution = execution
        self._cache: TtlCache[str, dict[str, Any]] = TtlCache(settings.token_cache_s)

    async def create(self, who: Principal, spec: JobSpec) -> dict[str, Any]:
        space = spec.space or DEFAULT_SPACE
        action, executor, app_id = spec.action.model_dump(mode="json"), spec.executor, None
        if spec.app is not None:
            app = await self.apps.context(who, spec.app, spec.space)
            space, app_id = app["space"], app["id"]
            action, executor = in_context(
                app, action, executor, "executor" in spec.model_fields_set
            )
        require(who, space, Role.developer)
        require_enabled(self.settings, executor)
        check_slurm_env(executor, action)
        check_permits(self.settings, space, executor, action)
        now = time.time()
        row = {
            "id": new_id(),
            "space": space,
            "name": spec.name,
            "action": action,
            "executor": executor,
            "timeout_s": spec.timeout_s,
            "retry": spec.retry.model_dump(mode="json"),
            "concurrency": spec.concurrency.model_dump(mode="json"),
            "params": spec.params,
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
            "app_id": app_id,
            "labels": spec.labels,
            "executor_options": executor_options(executor, spec.executor_options),
        }
        async with self.db.write() as conn:
            if await access_store.get_space(conn, space) is None:
                raise NotFound(f"space '{space}' not found")
            if await store.get_by_name(conn, space, spec.name, app_id):
                where = f"app '{app_id}'" if app_id else f"space '{space}'"
                raise Conflict(f"a job named '{spec.name}' already exists in {where}")
            try:
                await store.insert(conn, row)
            except sa.exc.IntegrityError as exc:
                raise Conflict(f"a job named '{spec.name}' already exists") from exc
        return row

    async def get(self, who: Principal, job_id: str, role: Role = Role.viewer) -> dict[str, Any]:
        async with self.db.read() as conn:
            job = await store.get(conn, job_id)
        if job is None:
            raise NotFound(f"job '{job_id}' not found")
        require(who, job["space"], role)
        return secrecy.job(who, job)

    async def cached(self, who: Principal, job_id: str, role: Role) -> dict[str, Any]:
        """A job definition for the hot submission path, cached for a moment."""
        job = await self._cache.get(job_id, lambda: self._load(job_id))
        require(who, job["space"], role)
        return job

    async def _load(self, job_id: str) -> tuple[dict[str, Any], None]:
        async with self.db.read() as conn:
            job = await store.get(conn, job_id)
        if job is None:
            raise NotFound(f"job '{job_id}' not found")
        return job, None

    async def find(self, who: Principal, ref: str, space: str | None = None) -> dict[str, Any]:
        """A job by id, or by name within a space."""
        async with self.db.read() as conn:
            job = await store.get(conn, ref)
            if job is None:
                job = await store.get_by_name(conn, space or DEFAULT_SPACE, ref)
        if job is None:
            raise NotFound(f"job '{ref}' not found")
        require(who, job["space"], Role.viewer)
        return secrecy.job(who, job)

    async def list(
        self,
        who: Principal,
        *,
        space: str | None = None,
        name: str | None = None,
        search: str | None = None,
        executor: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> tuple[list[dict[str, Any]], str | None]:
        items, next_cursor = await reads.listing(
            self.db,
            store.list_,
            who,
            space=space,
            cursor=cursor,
            limit=limit,
            name=name,
            search=search,
            executor=executor,
        )
        return secrecy.jobs(who, items), next_cursor

    async def update(self, who: Principal, job_id: str, patch: JobPatch) -> dict[str, Any]:
        job = await self.get(who, job_id, Role.developer)
        values: dict[str, Any] = {}
        for key, value in patch.model_dump(exclude_unset=True, mode="json").items():
            if value is None and key != "timeout_s":
                continue
            values[key] = value
        if "action" in values and job["app_id"]:
            app = (await self.apps.by_ids([job["app_id"]]))[job["app_id"]]
            values["action"] = in_context(app, values["action"], job["executor"], True)[0]
        if "executor" in values:
            require_enabled(self.settings, values["executor"])
        if "executor" in values or "executor_options" in values:
            values["executor_options"] = executor_options(
                values.get("executor", job["executor"]),
                values.get("executor_options", {}),  # a new executor starts without options
            )
        check_slurm_env(
            values.get("executor", job["executor"]), values.get("action", job["action"])
        )
        if "action" in values or "executor" in values:
            check_permits(
                self.settings,
                job["space"],
                values.get("executor", job["executor"]),
                values.get("action", job["action"]),
            )
        values["updated_at"] = time.time()
        async with self.db.write() as conn:
            renamed = "name" in values and values["name"] != job["name"]
            if renamed and await store.get_by_name(
                conn, job["space"], values["name"], job["app_id"]
            ):
                raise Conflict(f"a job named '{values['name']}' already exists")
            if not await store.update(conn, job_id, values):
                raise NotFound(f"job '{job_id}' not found")
            job = await store.get(conn, job_id)
        self._cache.forget(job_id)
        assert job is not None
        return job

    async def delete(self, who: Principal, job_id: str) -> None:
        await self.get(who, job_id, Role.developer)
        now = time.time()
        async with self.db.write() as conn:
            schedule_ids = await schedule_store.ids_for_job(conn, job_id)
            if not await store.soft_delete(conn, job_id, now):
                raise NotFound(f"job '{job_id}' not found")
        await self.execution.withdraw_early(schedule_ids, now)
        self._cache.forget(job_id)
        self.signals.schedules.fire()
