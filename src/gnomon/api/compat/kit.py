"""The faces kit: what every compatibility face is made of, so that a face only translates.

A face module declares `FACE = Face(name, build, dialect, where)`:

- `build(state, settings)` makes its application, usually with `application(state, dialect)`:
  a FastAPI app without API documents that shares the service and answers every error —
  its own `Refusal`, gnomon's errors, the framework's 404/405/422, faults — through the
  dialect;
- `dialect` is how the face says no: a `Dialect` whose `answer(status, message)` is the
  face's one error helper, with its CORS policy if it has one;
- `where(settings)` says where it is served: a path prefix and the hosts it owns.

`install` serves the faces beside the native API, all the same way: each behind the request
guard (which speaks the face's dialect), inside its CORS policy. Callers are identified with
`api.deps` (one reading of a bearer token); who may do what is decided in `service/`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gnomon.api.allow import allowed_methods
from gnomon.api.deps import principal_of
from gnomon.api.guard import RequestGuard
from gnomon.api.present import JSON
from gnomon.config import Settings
from gnomon.domain import Principal
from gnomon.errors import Busy, GnomonError, Invalid

EXPECTED = "expected 'Authorization: Bearer <token>'"  # the faces' word for a missing token
FAULT = "internal error; see the server log"


class Refusal(Exception):
    """A refusal already in the face's words: its status and message, sent by the dialect."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Cors:
    """Open CORS: `headers` on every answer; a preflight (OPTIONS) is answered at once, before
    the guard, with `preflight_status` and the `preflight` headers."""

    headers: dict[str, str]
    preflight: dict[str, str]
    preflight_status: int = 204


class Dialect(ABC):
    """How a face says no. A face subclasses it and gives `answer`, its one error helper; the
    kit sends every refusal through it. The other methods word each kind of refusal as
    (status, message); override those the face's contract words differently."""

    cors: Cors | None = None

    @abstractmethod
    def answer(self, status: int, message: str) -> Response:
        """The face's one error helper: a refusal in its own words."""

    def words(self, exc: GnomonError) -> tuple[int, str]:
        """A refusal of the service (a GnomonError)."""
        return exc.status, exc.message

    def refused(self, status: int, message: str) -> Response:
        """The request guard's refusal (413, NUL, …): its 422 is a 400 in most faces."""
        return self.answer(400 if status == 422 else status, message)

    def http(self, request: Request, exc: HTTPException) -> tuple[int, str]:
        """The framework's refusal: no such route (404), not this method (405)."""
        return exc.status_code, str(exc.detail)

    def fault(self) -> tuple[int, str]:
        """An error of gnomon's own."""
        return 500, FAULT


async def token_holder(request: Request) -> Principal:
    """The caller by its bearer token; without one, Unauthorized in the faces' words."""
    return await principal_of(request, EXPECTED)


def application(state: State, dialect: Dialect) -> FastAPI:
    """A face's application: no API documents, `state` (and so the service) shared, every
    error answered through `dialect` (Retry-After on Busy, Allow on 405)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, default_response_class=JSON)
    app.state = state

    @app.exception_handler(Refusal)
    async def _refusal(_: Request, exc: Refusal) -> Response:
        return dialect.answer(exc.status, exc.message)

    @app.exception_handler(GnomonError)
    async def _gnomon(_: Request, exc: GnomonError) -> Response:
        answer = dialect.answer(*dialect.words(exc))
        if isinstance(exc, Busy):
            answer.headers["Retry-After"] = str(exc.retry_after_s)
        return answer

    async def _invalid(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ValidationError | RequestValidationError)
        first: dict[str, Any] = next(iter(exc.errors()), {})
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        return dialect.answer(*dialect.words(Invalid(where, str(first.get("msg", "invalid")))))

    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(ValidationError, _invalid)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        answer = dialect.answer(*dialect.http(request, exc))
        answer.headers.update(exc.headers or {})
        if exc.status_code == 405:
            answer.headers["Allow"] = allowed_methods(app, request.scope)
        return answer

    @app.exception_handler(Exception)
    async def _fault(_: Request, exc: Exception) -> Response:
        return dialect.answer(*dialect.fault())

    return app


def with_cors(app: ASGIApp, cors: Cors) -> ASGIApp:
    """`app` inside the CORS policy: preflights answered here, the headers on every answer."""
    every = [(k.lower().encode(), v.encode()) for k, v in cors.headers.items()]
    preflight = [(k.lower().encode(), v.encode()) for k, v in cors.preflight.items()]
    names = {k for k, _ in every}

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            start = {"type": "http.response.start", "status": cors.preflight_status}
            await send({**start, "headers": preflight})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + every}
            await send(message)

        await app(scope, receive, send_with_cors)

    return wrapped


# --- where faces are served -----------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    """A face's application at its place: a path prefix ('' for none) and hosts it owns."""

    app: ASGIApp
    prefix: str
    hosts: frozenset[str] = frozenset()
    dialect: Dialect | None = None  # None: the native one


def face(
    app: ASGIApp, prefix: str, hosts: Sequence[str] = (), dialect: Dialect | None = None
) -> Placed | None:
    """`app` placed at `prefix` and on `hosts`; None when it has neither (switched off)."""
    prefix = prefix.rstrip("/")
    if not (prefix or hosts):
        return None
    return Placed(app, prefix, frozenset(h.lower() for h in hosts), dialect)


def guarded(f: Placed, limit: int) -> ASGIApp:
    """The face's application behind the request guard (in its words), inside its CORS."""
    if f.dialect is None:
        return RequestGuard(f.app, limit=limit)
    app: ASGIApp = RequestGuard(f.app, limit=limit, speak=f.dialect.refused)
    return with_cors(app, f.dialect.cors) if f.dialect.cors else app


@dataclass(frozen=True)
class Face:
    """A face as its module declares it (`FACE`); see the module's docstring."""

    name: str
    build: Callable[[State, Settings], ASGIApp]
    dialect: Dialect
    where: Callable[[Settings], tuple[str, Sequence[str]]]

    def place(self, state: State, settings: Settings) -> Placed | None:
        prefix, hosts = self.where(settings)
        if not (prefix.rstrip("/") or hosts):
            return None
        return face(self.build(state, settings), prefix, hosts, self.dialect)


class FaceMount:
    """Requests for a face's hosts (by their Host header) go to that face whole; requests under
    a face's prefix go to it with the prefix as their root path; the rest go to `app`. Every
    one of them passes the request guard first (bodies up to `limit` bytes)."""

    def __init__(self, app: ASGIApp, faces: Sequence[Placed | None], *, limit: int):
        self.app = RequestGuard(app, limit=limit)
        mounted = [(f, guarded(f, limit)) for f in faces if f is not None]
        self.prefixes = [(f.prefix, app) for f, app in mounted if f.prefix]
        self.hosts = {h: app for f, app in mounted for h in f.hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.hosts and (host := self._host(scope)):
                await self.hosts[host](scope, receive, send)
                return
            root = scope.get("root_path", "")
            path = scope["path"].removeprefix(root) if root else scope["path"]
            for prefix, app in self.prefixes:
                if path == prefix or path.startswith(prefix + "/"):
                    await app({**scope, "root_path": root + prefix}, receive, send)
                    return
        await self.app(scope, receive, send)

    def _host(self, scope: Scope) -> str | None:
        """The request's host if a face serves it (with or without the port)."""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1").lower()
                if host in self.hosts:
                    return host
                bare = host.rsplit(":", 1)[0]
                return bare if bare in self.hosts else None
        return None


def install(app: FastAPI, faces: Sequence[Face], settings: Settings) -> None:
    """Serve `faces` beside `app`'s own routes, and put `app`'s routes behind the guard too:
    the one way every face is mounted."""
    placed = [f.place(app.state, settings) for f in faces]
    app.add_middleware(FaceMount, faces=placed, limit=settings.max_body_bytes)
