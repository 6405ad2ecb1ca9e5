"""Job templates as a use case: list them, trigger one (validate, then a run of its job through
the normal submission path), and wait until the executor has handed the run on (Slurm's job id)
— what the TSM face answers with. The file and its format are `gnomon.template_file`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from gnomon.config import Settings
from gnomon.credentials import mask_mapping
from gnomon.domain import Principal, Role
from gnomon.errors import Conflict, GnomonError, NotFound
from gnomon.service import secrecy
from gnomon.service.access import readable_spaces, require
from gnomon.service.signals import Signals
from gnomon.specs import JobSpec, RunRequest
from gnomon.store import jobs as job_store
from gnomon.store import runs as run_store
from gnomon.store.db import Database
from gnomon.template_file import Template, describe_error, load
from gnomon.vocabulary import FINAL_STATES

if TYPE_CHECKING:
    from gnomon.service.jobs import Jobs
    from gnomon.service.runs import Runs

JOB_PREFIX = "template:"


class BadParams(GnomonError):
    status = 422
    code = "invalid"


class Templates:
    def __init__(self, db: Database, settings: Settings, signals: Signals, jobs: Jobs, runs: Runs):
        self.db = db
        self.settings = settings
        self.signals = signals
        self.jobs = jobs
        self.runs = runs
        path = settings.templates_file
        self.by_name: dict[str, Template] = load(path) if path else {}
        self._jobs: dict[str, str] = {}  # template name -> id of its current job

    def get(self, who: Principal, name: str) -> Template:
        template = self.by_name.get(name)
        if template is None:
            raise NotFound(f"template '{name}' not found")
        require(who, template.space, Role.viewer)
        return template

    def shown(self, who: Principal, template: Template) -> dict[str, Any]:
        """A template as `who` may see it (credentials in its env blotted out below
        developer)."""
        public = template.public()
        if not secrecy.sees_credentials(who, template.space):
            public["env"] = mask_mapping(public["env"])
        return public

    def list(self, who: Principal, face: str | None = None) -> list[Template]:
        spaces = readable_spaces(who, None)
        return [
            t
            for t in self.by_name.values()
            if (spaces is None or t.space in spaces) and (face is None or face in t.faces)
        ]

    def check(self, template: Template, params: Any) -> dict[str, Any]:
        """The parameters, validated against the template; BadParams names the first problem."""
        if not isinstance(params, dict):
            raise BadParams("the parameters must be a JSON object")
        try:
            return template.validate_params(params)
        except ValidationError as exc:
            raise BadParams(
                describe_error(exc),
                details=[
                    {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                    for e in exc.errors()
                ],
            ) from None

    async def trigger(self, who: Principal, name: str, params: Any) -> dict[str, Any]:
        """Validate `params` and create a run of the template's job; the run."""
        template = self.get(who, name)
        require(who, template.space, Role.developer)
        values = self.check(template, params)
        job_id = await self._job(who, template)
        (run,) = await self.runs.submit(who, job_id, [RunRequest(params=values)])
        return run

    async def _job(self, who: Principal, template: Template) -> str:
        """The job behind a template, created or replaced when its definition changed."""
        known = self._jobs.get(template.name)
        if known is not None:
            return known
        name = JOB_PREFIX + template.name
        async with self.db.read() as conn:
            job = await job_store.get_by_name(conn, template.space, name)
        if job is not None and (job.get("labels") or {}).get("template") == template.digest:
            self._jobs[template.name] = job["id"]
            return job["id"]
        if job is not None:  # an older definition: keep its history, start a new job
            await self.jobs.delete(who, job["id"])
        spec = JobSpec(
            name=name,
            action=template.action(),
            executor=template.executor,
            executor_options=template.executor_options,
            timeout_s=template.timeout_s,
            retry=template.retry,
            params=dict(template.constants),
            space=template.space,
            labels={"template": template.digest},
        )
        try:
            job = await self.jobs.create(who, spec)
        except Conflict:  # another process made it first
            async with self.db.read() as conn:
                job = await job_store.get_by_name(conn, template.space, name)
            if job is None:
                raise
        self._jobs[template.name] = job["id"]
        return job["id"]

    async def handed_on(self, run_id: str, timeout: float) -> dict[str, Any] | None:
        """Wait until the run's executor has taken it on (it has an external id) or it ended;
        the run then, or None if neither happened in `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            async with self.db.read() as conn:
                run = await run_store.get(conn, run_id, output=True)
            if run is None:
                raise NotFound(f"run '{run_id}' not found")
            if run["external_id"] or run["state"] in FINAL_STATES:
                return run
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await self.signals.events.wait(min(left, 0.05))
