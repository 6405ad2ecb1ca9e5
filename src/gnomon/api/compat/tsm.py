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

import orjson
from fastapi import FastAPI, Request
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gnomon.api.compat.mount import Face, face
from gnomon.api.deps import principal_of
from gnomon.api.present import JSON
from gnomon.config import Settings
from gnomon.domain import Principal, Role, RunState
from gnomon.errors import GnomonError
from gnomon.service import Service

FACE = "tsm"
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


def create_face(state: State, settings: Settings) -> FastAPI:
    face = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    face.state = state
    who = Principal(token_id="face:tsm", name="tsm", roles={settings.tsm_space: Role.developer})

    @face.get("/health")
    async def health() -> JSON:
        return JSON({"status": "ok"})

    @face.post("/{name}/run")
    async def run(name: str, request: Request) -> JSON:
        svc: Service = request.app.state.svc
        try:
            caller = await principal_of(request) if settings.tsm_auth else who
        except GnomonError as exc:
            return envelope(exc.status, err=exc.message)
        template = svc.templates.by_name.get(name)
        if template is None or FACE not in template.faces:
            return envelope(404, err=f"no endpoint /{name}/run")
        body = await request.body()  # the guard has read it, within the limit
        try:
            params: Any = json.loads(body) if body.strip() else None
        except (ValueError, RecursionError):
            return envelope(400, err="the body is not valid JSON")
        if not isinstance(params, dict):
            return envelope(400, err="the body must be a JSON object of parameters")
        try:
            run = await svc.templates.trigger(caller, name, params)
        except GnomonError as exc:
            status = 400 if exc.status in (400, 422) else exc.status
            return envelope(status, err=exc.message)
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

    @face.exception_handler(404)
    async def _missing(request: Request, exc: Exception) -> JSON:
        return envelope(404, err=f"no route {request.method} {request.url.path}")

    @face.exception_handler(405)
    async def _method(request: Request, exc: Exception) -> JSON:
        return envelope(405, err=f"method {request.method} not allowed here")

    return face


def guard_envelope(app: ASGIApp) -> ASGIApp:
    """The request guard's refusals (the native error JSON) in the face's envelope: bad input
    is a 400 here, as the face's own."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        start: Message | None = None

        async def translate(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message  # held until the body shows whose answer it is
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            if message.get("more_body", False):  # streamed: not the guard's answer
                await send(start)
                start = None
                await send(message)
                return
            status, body = start["status"], message.get("body", b"")
            try:
                refusal = orjson.loads(body)["error"]["message"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                refusal = None
            held, start = start, None
            if refusal is None:
                await send(held)
                await send(message)
                return
            reply = envelope(400 if status == 422 else status, err=str(refusal))
            await reply(scope, receive, send)

        await app(scope, receive, translate)

    return wrapped


def mounted(state: State, settings: Settings) -> Face | None:
    """The TSM face at its prefix (None when the prefix is '')."""
    return face(create_face(state, settings), settings.tsm_prefix, present=guard_envelope)
