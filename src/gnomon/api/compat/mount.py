"""Serve the faces beside the native API: each at its path prefix, and at the root for hosts
of its own — one layer for all of them, so the native routes pay a few string tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass(frozen=True)
class Face:
    app: ASGIApp
    prefix: str  # '' for none
    hosts: frozenset[str] = frozenset()


def face(app: ASGIApp, prefix: str, hosts: Sequence[str] = ()) -> Face | None:
    """A face to mount, or None when it has neither a prefix nor hosts (switched off)."""
    prefix = prefix.rstrip("/")
    if not (prefix or hosts):
        return None
    return Face(app, prefix, frozenset(h.lower() for h in hosts))


class FaceMount:
    """Requests for a face's hosts (by their Host header) go to that face whole; requests under
    a face's prefix go to it with the prefix as their root path; the rest go to `app`."""

    def __init__(self, app: ASGIApp, faces: Sequence[Face | None]):
        self.app = app
        self.faces = [f for f in faces if f is not None]
        self.hosts = {h: f for f in self.faces for h in f.hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.hosts and (host := self._host(scope)):
                await self.hosts[host].app(scope, receive, send)
                return
            root = scope.get("root_path", "")
            path = scope["path"].removeprefix(root) if root else scope["path"]
            for f in self.faces:
                if f.prefix and (path == f.prefix or path.startswith(f.prefix + "/")):
                    await f.app({**scope, "root_path": root + f.prefix}, receive, send)
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
