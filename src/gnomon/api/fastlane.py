"""A fast lane for the hottest route, `POST /v1/jobs/{id}/runs`.

The happy path runs here, without the framework's per-request machinery but with the same
service calls and the same JSON. Anything else — no or a bad token, a bad body, an unknown
job, a database fault — falls through to the regular route, which gives the canonical answer
(nothing was written: a submission is durable only when `submit` returns).
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from pydantic import TypeAdapter
from starlette.types import ASGIApp, Receive, Scope, Send

from gnomon.api import present
from gnomon.api.guard import read_body, replay
from gnomon.specs import RunRequest

PATH = re.compile(r"^/v1/jobs/([0-9A-HJKMNP-TV-Z]{26})/runs$")
REQUEST = TypeAdapter(RunRequest)
HEADERS = [(b"content-type", b"application/json")]


class SubmitFastLane:
    def __init__(self, app: ASGIApp, state: Any):
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            PATH.match(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if match is None:
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return  # the client went away
        try:
            run = await self._submit(scope, match.group(1), body)
        except Exception:
            await self.app(scope, replay(body, receive), send)
            return
        payload = orjson.dumps(present.run(run), option=orjson.OPT_NON_STR_KEYS)
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [*HEADERS, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _submit(self, scope: Scope, job_id: str, body: bytes) -> dict[str, Any]:
        svc = self.state.svc
        secret = None
        for name, value in scope["headers"]:
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                secret = value[7:].decode().strip()
        who = await svc.access.authenticate(secret)
        req = REQUEST.validate_json(body) if body.strip() else RunRequest()
        return (await svc.runs.submit(who, job_id, [req]))[0]
