"""Apps as execution contexts, and the state a job takes from its latest run."""

from __future__ import annotations

import time

import pytest

from gnomon.domain import RunState, cancel
from gnomon.errors import Conflict, Invalid
from gnomon.service import Service
from gnomon.service.apps import in_context
from gnomon.specs import AppSpec, JobSpec, RunRequest
from tests.service.conftest import ADMIN

APP = {"cwd": "/srv/app", "env": {"A": "app", "B": "app"}, "executor": "slurm"}


def test_a_shell_action_takes_the_apps_context() -> None:
    action = {"type": "shell", "command": "x", "env": {"B": "job"}}
    bound, executor = in_context(APP, action, "local", executor_given=False)
    assert bound == {
        "type": "shell",
        "command": "x",
        "cwd": "/srv/app",
        "env": {"A": "app", "B": "job"},
    }
    assert executor == "slurm"


def test_what_the_job_names_wins() -> None:
    action = {"type": "shell", "command": "x", "cwd": "/own"}
    bound, executor = in_context(APP, action, "celery", executor_given=True)
    assert bound["cwd"] == "/own" and executor == "celery"


def test_other_actions_keep_their_executor() -> None:
    action = {"type": "http", "url": "http://x/", "method": "POST"}
    assert in_context(APP, action, "local", executor_given=False) == (action, "local")


async def test_job_state_follows_the_latest_run(svc: Service) -> None:
    app = await svc.apps.create(ADMIN, AppSpec(name="a"))
    spec = JobSpec.model_validate(
        {"name": "j", "app": app["id"], "action": {"type": "shell", "command": "true"}}
    )
    job = await svc.jobs.create(ADMIN, spec)
    assert await svc.apps.job_states([job["id"]]) == {job["id"]: None}
    first, second = (await svc.runs.submit(ADMIN, job["id"], [RunRequest()]))[0], None
    await svc.execution.apply([cancel(first["id"], time.time(), "cancelled by the test")])
    assert await svc.apps.job_states([job["id"]]) == {job["id"]: RunState.cancelled}
    second = (await svc.runs.submit(ADMIN, job["id"], [RunRequest()]))[0]
    assert await svc.apps.job_states([job["id"]]) == {job["id"]: RunState.queued}
    runs, total = await svc.apps.history(ADMIN, job, offset=0, limit=10)
    assert total == 2 and [r["id"] for r in runs] == [first["id"], second["id"]]
    runs, total = await svc.apps.history(ADMIN, job, offset=1, limit=1)
    assert total == 2 and [r["id"] for r in runs] == [second["id"]]


async def test_binding_rules(svc: Service) -> None:
    app = await svc.apps.create(ADMIN, AppSpec(name="a", cwd="/tmp", executor="site:dome"))
    shell = {"type": "shell", "command": "true"}
    job = await svc.jobs.create(
        ADMIN, JobSpec.model_validate({"name": "j", "app": app["id"], "action": shell})
    )
    assert (job["app_id"], job["executor"], job["action"]["cwd"]) == (
        app["id"],
        "site:dome",
        "/tmp",
    )
    with pytest.raises(Conflict):
        await svc.jobs.create(
            ADMIN, JobSpec.model_validate({"name": "j", "app": app["id"], "action": shell})
        )
    with pytest.raises(Invalid):
        await svc.jobs.create(
            ADMIN,
            JobSpec.model_validate(
                {"name": "k", "app": "00000000-0000-4000-8000-000000000000", "action": shell}
            ),
        )
    native = await svc.jobs.create(ADMIN, JobSpec.model_validate({"name": "j", "action": shell}))
    assert native["app_id"] is None and native["executor"] == "local"
    with pytest.raises(Conflict):
        await svc.apps.delete(ADMIN, app["id"])
