"""A fast lane for the hottest routes: `POST /v1/jobs/{id}/runs` and `POST /v1/runs:batch`.

The happy path runs here, in front of the request guard and without the framework's
per-request machinery, but with the same service calls and the same JSON. Anything else — a
body the guard would look at twice, no or a bad token, a bad body, an unknown job, a database
fault — falls through to the guard and the regular route, which give the canonical answer
(nothing was written: a submission is durable only when `submit` returns).
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from pydantic import TypeAdapter
from starlette.types import ASGIApp, Receive, Scope, Send

from gnomon.api import present
from gnomon.api.deps import bearer
from gnomon.api.guard import read_body, replay, suspect
from gnomon.domain import Principal
from gnomon.specs import RunBatch, RunRequest

RUN_PATH = re.compile(r"^/v1/jobs/([0-9A-HJKMNP-TV-Z]{26})/runs$")
BATCH_PATH = "/v1/runs:batch"
REQUEST = TypeAdapter(RunRequest)
BATCH = TypeAdapter(RunBatch)
HEADERS = [(b"content-type", b"application/json")]


class SubmitFastLane:
    def __init__(self, app: ASGIApp, state: Any, limit: int):
        self.app = app
        self.state = state
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        match = RUN_PATH.match(path)
        if match is None and path != BATCH_PATH:
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(receive, self.limit)
        except OverflowError as exc:
            body = exc.args[1]  # the guard answers 413
        if body is None:
            return  # the client went away
        if len(body) > self.limit or suspect(body):
            await self.app(scope, replay(body, receive), send)
            return
        try:
            who = await self.state.svc.access.authenticate(_bearer(scope))
            if match is not None:
                payload = await self._one(who, match.group(1), body)
            else:
                payload = await self._batch(who, body)
        except Exception:
            await self.app(scope, replay(body, receive), send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [*HEADERS, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _one(self, who: Principal, job_id: str, body: bytes) -> bytes:
        req = REQUEST.validate_json(body) if body.strip() else RunRequest()
        run = (await self.state.svc.runs.submit(who, job_id, [req]))[0]
        return orjson.dumps(present.run(run), option=orjson.OPT_NON_STR_KEYS)

    async def _batch(self, who: Principal, body: bytes) -> bytes:
        batch = BATCH.validate_json(body)
        ids = await self.state.svc.runs.submit_many(who, batch.job, batch.runs)
        return orjson.dumps({"ids": ids})


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bearer(value.decode("latin-1"))
    return None
