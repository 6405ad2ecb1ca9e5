"""RequestGuard: what every request passes before the application sees it.

- a body over the limit → 413, before it is read whole;
- an untyped (or curl's default form-typed) body is read as JSON: the API only speaks JSON;
- NUL characters in the URL → 400, and in a JSON body → 422 naming the field (PostgreSQL
  cannot store them); integers beyond 64 bits → 422 naming the field (no store keeps them).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FORM = b"application/x-www-form-urlencoded"
JSON_TYPE = (b"content-type", b"application/json")
SUSPECT = re.compile(rb"\\u0000|\d{19}")  # cheap test before the exact one
INT64 = 2**63


def _envelope(status: int, code: str, message: str, field: str | None = None) -> bytes:
    details = [{"field": field, "message": message}] if field else None
    text = f"{field}: {message}" if field else message
    return orjson.dumps({"error": {"code": code, "message": text, "details": details}})


def unportable(body: bytes) -> tuple[str, str] | None:
    """The first value no store can keep, as (field path, problem); None if all is well."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None  # not JSON: the route answers 400

    def walk(value: Any, path: str) -> tuple[str, str] | None:
        if isinstance(value, str):
            return (path or "body", "NUL characters are not accepted") if "\0" in value else None
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return (
                (path or "body", "integer out of the 64-bit range")
                if not (-INT64 <= value < INT64)
                else None
            )
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else key
                found = walk(key, where) or walk(item, where)
                if found:
                    return found
        if isinstance(value, list):
            for i, item in enumerate(value):
                found = walk(item, f"{path}.{i}" if path else str(i))
                if found:
                    return found
        return None

    return walk(doc, "")


class RequestGuard:
    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope.get("raw_path") or scope["path"].encode()
        if b"%00" in raw or b"\0" in raw or b"%00" in scope.get("query_string", b""):
            await _answer(send, 400, _envelope(400, "bad_request", "NUL characters in the URL"))
            return
        headers = []
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _answer(send, 413, self._too_large())
                return
            if name != b"content-type" or not value.startswith(FORM):
                headers.append((name, value))
        if len(headers) != len(scope["headers"]) or not any(
            n == b"content-type" for n, _ in headers
        ):
            scope = {**scope, "headers": [*headers, JSON_TYPE]}
        try:
            body = await read_body(receive, self.limit)
        except OverflowError:
            await _answer(send, 413, self._too_large())
            return
        if body is None:
            return  # the client went away
        if body and SUSPECT.search(body) and (problem := unportable(body)):
            await _answer(send, 422, _envelope(422, "invalid", problem[1], problem[0]))
            return
        await self.app(scope, replay(body, receive), send)

    def _too_large(self) -> bytes:
        return _envelope(413, "too_large", f"request body over {self.limit} bytes")


async def read_body(receive: Receive, limit: int | None = None) -> bytes | None:
    """The whole request body; None if the client went away; OverflowError past `limit`."""
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if limit is not None and len(body) > limit:
            raise OverflowError(limit, body)
    return body


async def _answer(send: Send, status: int, payload: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [JSON_TYPE, (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands over the body already read, then the client's later messages."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
