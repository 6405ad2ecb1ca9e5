"""create_app(): the ASGI application, with the engine running in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gnomon.api.fastlane import SubmitFastLane
from gnomon.api.present import JSON
from gnomon.api.routes import access, events, jobs, runs, schedules, system
from gnomon.config import Settings
from gnomon.engine.dispatcher import Dispatcher
from gnomon.engine.executors.local import LocalExecutor
from gnomon.engine.scheduler import Scheduler
from gnomon.errors import GnomonError
from gnomon.service import Service

log = structlog.get_logger(__name__)


def error(status: int, code: str, message: str, details: Any = None) -> JSON:
    return JSON(
        {"error": {"code": code, "message": message, "details": details}}, status_code=status
    )


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GnomonError)
    async def _gnomon(_: Request, exc: GnomonError) -> JSON:
        return error(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSON:
        details = []
        for e in exc.errors():
            if e.get("type") == "json_invalid":
                return error(400, "bad_json", "request body is not valid JSON")
            details.append({"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg")})
        first = details[0] if details else {"field": "body", "message": "invalid"}
        return error(422, "invalid", f"{first['field']}: {first['message']}", details)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSON:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        return error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def _fault(request: Request, exc: Exception) -> JSON:
        log.exception("unhandled", path=request.url.path)
        return error(500, "internal", "internal error; see the server log")


FORM = b"application/x-www-form-urlencoded"


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, before the app reads them; read an
    untyped (or curl's default form-typed) body as JSON."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = []
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(scope, receive, send)
                return
            if name != b"content-type" or not value.startswith(FORM):
                headers.append((name, value))
        if len(headers) != len(scope["headers"]) or not any(
            n == b"content-type" for n, _ in headers
        ):
            # No type, or curl's default form type: the API only speaks JSON.
            scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, f"request body over {self.limit} bytes")
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        resp = error(413, "too_large", f"request body over {self.limit} bytes")
        await resp(scope, receive, send)


def create_app(settings: Settings | None = None, *, engine: bool = True) -> FastAPI:
    """The gnomon API. With `engine`, the lifespan also runs scheduler and dispatcher."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = await Service.open(settings)
        app.state.svc = svc
        path = await svc.access.bootstrap(settings.data_dir)
        if path is not None:
            print(f"gnomon: created an admin token in {path}", flush=True)
        svc.start()
        parts: list[Any] = []
        if engine:
            parts = [Scheduler(svc), Dispatcher(svc, [LocalExecutor()])]
            for part in parts:
                part.start()
        try:
            yield
        finally:
            for part in reversed(parts):
                await part.stop()
            await svc.close()

    app = FastAPI(
        title="gnomon",
        version="0.1.0",
        description="A self-hosted scheduler: jobs, schedules and runs with a durable ledger.",
        lifespan=lifespan,
        default_response_class=JSON,
    )
    install_error_handlers(app)
    for module in (jobs, runs, schedules, access, events, system):
        app.include_router(module.router)
    app.add_middleware(SubmitFastLane, state=app.state)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
