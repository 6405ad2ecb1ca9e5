"""Serve a face at a path prefix, and at the root for hosts of its own."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class FaceMount:
    """Requests for `hosts` (by their Host header) go to `face` whole; requests under
    `prefix` go to `face` with the prefix as their root path; the rest go to `app`."""

    def __init__(self, app: ASGIApp, face: ASGIApp, *, prefix: str, hosts: list[str]):
        self.app, self.face = app, face
        self.prefix = prefix.rstrip("/")
        self.hosts = frozenset(h.lower() for h in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.hosts and self._host(scope) in self.hosts:
                await self.face(scope, receive, send)
                return
            root = scope.get("root_path", "")
            path = scope["path"].removeprefix(root) if root else scope["path"]
            if self.prefix and (path == self.prefix or path.startswith(self.prefix + "/")):
                await self.face({**scope, "root_path": root + self.prefix}, receive, send)
                return
        await self.app(scope, receive, send)

    def _host(self, scope: Scope) -> str:
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1").lower()
                return host if host in self.hosts else host.rsplit(":", 1)[0]
        return ""
