"""Serve the faces beside the native API: each at its path prefix, and at the root for hosts
of its own — one layer for all of them, so the native routes pay a few string tests.

Every face is put behind the request guard here, when it is mounted: a face cannot be served
without it. A face's own presentation (CORS headers, its error envelope) wraps the guard, so
the guard's refusals reach clients in the face's words."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from gnomon.api.guard import RequestGuard

Wrap = Callable[[ASGIApp], ASGIApp]


@dataclass(frozen=True)
class Face:
    app: ASGIApp
    prefix: str  # '' for none
    hosts: frozenset[str] = frozenset()
    present: Wrap | None = None  # the face's presentation, around the guard


def face(
    app: ASGIApp, prefix: str, hosts: Sequence[str] = (), present: Wrap | None = None
) -> Face | None:
    """A face to mount, or None when it has neither a prefix nor hosts (switched off)."""
    prefix = prefix.rstrip("/")
    if not (prefix or hosts):
        return None
    return Face(app, prefix, frozenset(h.lower() for h in hosts), present)


def guarded(f: Face, limit: int) -> ASGIApp:
    """The face's application behind the request guard, inside its presentation."""
    app = RequestGuard(f.app, limit=limit)
    return f.present(app) if f.present else app


class FaceMount:
    """Requests for a face's hosts (by their Host header) go to that face whole; requests under
    a face's prefix go to it with the prefix as their root path; the rest go to `app`. Each
    face is served behind the request guard, with a body limit of `limit` bytes."""

    def __init__(self, app: ASGIApp, faces: Sequence[Face | None], *, limit: int):
        self.app = app
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
