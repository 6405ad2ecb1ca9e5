"""create_app(): the ASGI application, with the engine running in its lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp

from gnomon.api import ui
from gnomon.api.allow import allowed_methods
from gnomon.api.compat import kit, pcf, photonranch, schedule_api, tsm
from gnomon.api.fastlane import SubmitFastLane
from gnomon.api.present import JSON
from gnomon.api.routes import access, apps, events, jobs, plans, runs, schedules, system
from gnomon.api.routes import sites as site_routes
from gnomon.api.routes import stats as stats_routes
from gnomon.api.routes import templates as template_routes
from gnomon.config import Settings
from gnomon.engine.scheduler import Scheduler
from gnomon.engine.setup import dispatchers
from gnomon.errors import Busy, GnomonError
from gnomon.service import Service

log = structlog.get_logger(__name__)

# The compatibility faces, each served beside the native API (see api/compat/kit.py).
FACES: tuple[kit.Face, ...] = (pcf.FACE, photonranch.FACE, tsm.FACE, schedule_api.FACE)


def error(status: int, code: str, message: str, details: Any = None) -> JSON:
    return JSON(
        {"error": {"code": code, "message": message, "details": details}}, status_code=status
    )


# Pydantic names the member of a union it tried (`every.str`); the field is what users know.
UNION_TAGS = {"str", "int", "float", "bool", "list", "dict", "none", "datetime"}


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not (str(p) in UNION_TAGS or "[" in str(p))]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GnomonError)
    async def _gnomon(_: Request, exc: GnomonError) -> JSON:
        answer = error(exc.status, exc.code, exc.message, exc.details)
        if isinstance(exc, Busy):
            answer.headers["Retry-After"] = str(exc.retry_after_s)
        return answer

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
    async def _http(request: Request, exc: HTTPException) -> JSON:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        answer = error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))
        if exc.status_code == 405:
            answer.headers["Allow"] = allowed_methods(app, request.scope)
        return answer

    @app.exception_handler(Exception)
    async def _fault(request: Request, exc: Exception) -> JSON:
        log.exception("unhandled", path=request.url.path)
        return error(500, "internal", "internal error; see the server log")


def settle_heap() -> None:
    """After start-up: move what start-up allocated out of the collector's sight and collect
    young objects less often — a request allocates many short-lived containers, and the default
    threshold (700) ran a collection every few requests."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def create_app(settings: Settings | None = None, *, engine: bool = True) -> FastAPI:
    """The gnomon API, with the faces beside it and all of it behind the request guard. With
    `engine`, the lifespan also runs scheduler and dispatcher."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = await Service.open(settings)
        app.state.svc = svc
        path = await svc.access.bootstrap(settings.data_dir)
        if path is not None:
            print(f"gnomon: created an admin token in {path}", flush=True)
        svc.start()
        await svc.sites.resume_leases()
        settle_heap()
        parts: list[Any] = []
        if engine:
            parts = [Scheduler(svc), *dispatchers(svc)]
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
    for module in (jobs, runs, schedules, apps, plans, access, events, system):
        app.include_router(module.router)
    app.include_router(stats_routes.router)
    app.include_router(site_routes.router)
    app.include_router(template_routes.router)
    ui.install(app)
    kit.install(app, FACES, settings)
    return app


def asgi_app(settings: Settings | None = None) -> ASGIApp:
    """What `gnomon serve` runs: the submission fast lane in front of the app — outside the
    framework's own middleware, so the hottest route pays for none of it; anything it does not
    answer goes on to the guard and the regular route."""
    settings = settings or Settings()
    app = create_app(settings)
    return SubmitFastLane(app, state=app.state, limit=settings.max_body_bytes)
