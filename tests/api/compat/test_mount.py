"""The mount puts every face behind the request guard: a face added later cannot skip it."""

from __future__ import annotations

import asyncio

import httpx
from starlette.types import Receive, Scope, Send

from gnomon.api.compat.kit import FaceMount, face


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    """A face with no checks of its own: it echoes the body it was given."""
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def post(app: FaceMount, path: str, content: bytes, host: str = "gnomon") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as c:
            return await c.post(path, content=content)

    return asyncio.run(go())


def test_every_face_is_guarded() -> None:
    app = FaceMount(bare, [face(bare, "/new"), face(bare, "", ["new.example"])], limit=100)
    for path, host in (("/new/x", "gnomon"), ("/x", "new.example")):
        r = post(app, path, b'{"a": "\\u0000"}', host)
        assert r.status_code == 422 and "NUL" in r.text, r.text
        assert post(app, path, b"x" * 101, host).status_code == 413
        assert post(app, path, b'{"a": 1}', host).content == b'{"a": 1}'
