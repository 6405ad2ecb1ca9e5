"""The TSM batch face (tsm-basic-demo-scheduler): `POST /<template>/run`, `GET /health`.

A thin translator onto job templates: the body's keys are the template's parameters; the
answer is the original envelope `{code, err, out}` — sbatch's exit code, its stderr and its
stdout — plus `job_id` (Slurm's) and `run_id` (gnomon's), always JSON. It answers once the
executor has submitted the job. Bad input is a 400 in the same envelope naming the problem;
an sbatch refusal is a 500 carrying sbatch's own message; a template on an executor without
job ids (local) answers when its run has ended. Like the original it asks for no token: it acts
in `GNOMON_TSM_SPACE` as a developer, on templates that list the face (`faces = ["tsm"]`)
only — unless `GNOMON_TSM_AUTH` asks for a bearer token, whose roles then apply. The request
guard's refusals (body too large, NUL, surrogates, huge integers) come in the same envelope.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from starlette.datastructures import State
from starlette.exceptions import HTTPException

from gnomon.api.compat import kit
from gnomon.api.compat.kit import Refusal
from gnomon.api.deps import principal_of
from gnomon.api.present import JSON
from gnomon.config import Settings
from gnomon.domain import RunState
from gnomon.errors import GnomonError
from gnomon.service import Service
from gnomon.service.access import face_template, open_face

FACE_NAME = "tsm"
SUBMIT_WAIT_S = 30.0


def envelope(
    status: int,
    *,
    code: int = -1,
    err: str = "",
    out: str = "",
    job_id: int | str | None = None,
    run_id: str | None = None,
) -> JSON:
    body = {"code": code, "err": err, "out": out, "job_id": job_id, "run_id": run_id}
    return JSON(body, status_code=status)


class Envelope(kit.Dialect):
    """The original's envelope for every refusal; bad input is a 400."""

    def answer(self, status: int, message: str) -> JSON:
        return envelope(status, err=message)

    def words(self, exc: GnomonError) -> tuple[int, str]:
        return (400 if exc.status in (400, 422) else exc.status), exc.message

    def http(self, request: Request, exc: HTTPException) -> tuple[int, str]:
        if exc.status_code == 405:
            return 405, f"method {request.method} not allowed here"
        return exc.status_code, f"no route {request.method} {request.url.path}"


def create_face(state: State, settings: Settings) -> FastAPI:
    face = kit.application(state, DIALECT)
    anyone = open_face(FACE_NAME, settings.tsm_space)

    @face.get("/health")
    async def health() -> JSON:
        return JSON({"status": "ok"})

    @face.post("/{name}/run")
    async def run(name: str, request: Request) -> JSON:
        svc: Service = request.app.state.svc
        caller = await principal_of(request) if settings.tsm_auth else anyone
        template = face_template(svc.templates.by_name, FACE_NAME, name)
        if template is None:
            raise Refusal(404, f"no endpoint /{name}/run")
        body = await request.body()  # the guard has read it, within the limit
        try:
            params: Any = json.loads(body) if body.strip() else None
        except (ValueError, RecursionError):
            raise Refusal(400, "the body is not valid JSON") from None
        if not isinstance(params, dict):
            raise Refusal(400, "the body must be a JSON object of parameters")
        run = await svc.templates.trigger(caller, name, params)
        done = await svc.templates.handed_on(run["id"], SUBMIT_WAIT_S)
        if done is None:
            return envelope(
                503,
                err=f"the run is queued but no {template.executor} executor submitted it "
                f"within {SUBMIT_WAIT_S:g}s",
                run_id=run["id"],
            )
        if done["external_id"]:
            job = done["external_id"]
            return envelope(
                200,
                code=0,
                out=f"Submitted batch job {job}\n",
                job_id=int(job) if job.isdigit() else job,
                run_id=run["id"],
            )
        if done["state"] == RunState.succeeded:
            return envelope(200, code=0, run_id=run["id"])
        return envelope(
            500,
            code=done["exit_code"] if done["exit_code"] is not None else 1,
            err=done["message"] or f"the run ended {done['state']}",
            run_id=run["id"],
        )

    return face


DIALECT = Envelope()
FACE = kit.Face("tsm", create_face, DIALECT, lambda s: (s.tsm_prefix, ()))
