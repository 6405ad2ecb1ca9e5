"""RequestGuard: what every request passes before the application sees it.

- a body over the limit → 413, before it is read whole;
- an untyped (or curl's default form-typed) body is read as JSON: the API only speaks JSON;
- NUL characters in the URL → 400, and in a JSON body → 422 naming the field (PostgreSQL
  cannot store them); integers beyond 64 bits and lone UTF-16 surrogates (`"\\ud800"`, not
  text in any encoding) → 422 naming the field (no store keeps them); a body nested deeper
  than a JSON reader goes → 422.

Its refusals are the native error JSON, or a face's own answer when the face gives the guard
its dialect's `speak` (see api/compat/kit.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FORM = b"application/x-www-form-urlencoded"
JSON_TYPE = (b"content-type", b"application/json")
ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")  # an escaped NUL or UTF-16 surrogate
DIGITS = re.compile(rb"\d{19}")
INT64 = 2**63
PATH_MAX = 200  # characters of a field path named in an answer

Speak = Callable[[int, str], Response]  # a refusal (status, message) in a face's words


def _envelope(status: int, code: str, message: str, field: str | None = None) -> bytes:
    details = [{"field": field, "message": message}] if field else None
    text = f"{field}: {message}" if field else message
    return orjson.dumps({"error": {"code": code, "message": text, "details": details}})


def suspect(body: bytes) -> bool:
    """The cheap test before the exact one (`unportable`): an escaped NUL or surrogate, or a
    run of 19 digits, anywhere in the body."""
    return (b"\\u" in body and ESCAPE.search(body) is not None) or DIGITS.search(body) is not None


def unportable(body: bytes) -> tuple[str, str] | None:
    """A value no store can keep, as (field path, problem); None if all is well."""
    try:
        doc = json.loads(body)
    except RecursionError:
        return "body", "nested too deeply"
    except ValueError:
        return None  # not JSON: the route answers 400
    if not isinstance(doc, dict | list):
        return ("body", problem) if (problem := _scalar_problem(doc)) else None
    # Containers depth first, without recursion: (container, its key, its parent's entry).
    stack: list[tuple[Any, str | int | None, Any]] = [(doc, None, None)]
    while stack:
        entry = stack.pop()
        value = entry[0]
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and (problem := _scalar_problem(key)):
                return _path((key, key, entry)), problem
            if isinstance(item, dict | list):
                stack.append((item, key, entry))
            elif problem := _scalar_problem(item):
                return _path((item, key, entry)), problem
    return None


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, str):
        if "\0" in value:
            return "NUL characters are not accepted"
        try:
            value.encode()
        except UnicodeEncodeError:
            return "lone UTF-16 surrogates are not text"
    elif isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
        return "integer out of the 64-bit range"
    return None


def _path(entry: tuple[Any, str | int | None, Any]) -> str:
    """`a.b.0` for the value at `entry` ('body' for the document itself), shortened."""
    keys: list[str] = []
    node: Any = entry
    while node is not None and node[1] is not None:
        keys.append(str(node[1]))
        node = node[2]
    path = ".".join(reversed(keys)) or "body"
    path = path.encode("utf-8", "replace").decode().replace("\0", "\\u0000")
    return path if len(path) <= PATH_MAX else "…" + path[-PATH_MAX:]


class RequestGuard:
    """The guard in front of `app`; `speak` words its refusals (default: the native JSON)."""

    def __init__(self, app: ASGIApp, limit: int, speak: Speak | None = None):
        self.app, self.limit, self.speak = app, limit, speak

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope.get("raw_path") or scope["path"].encode()
        if b"%00" in raw or b"\0" in raw or b"%00" in scope.get("query_string", b""):
            await self._refuse(
                scope, receive, send, 400, "bad_request", "NUL characters in the URL"
            )
            return
        headers = []
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._too_large(scope, receive, send)
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
            await self._too_large(scope, receive, send)
            return
        if body is None:
            return  # the client went away
        if body and suspect(body) and (problem := unportable(body)):
            await self._refuse(scope, receive, send, 422, "invalid", problem[1], problem[0])
            return
        await self.app(scope, replay(body, receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body over {self.limit} bytes"
        await self._refuse(scope, receive, send, 413, "too_large", message)

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
    ) -> None:
        if self.speak is None:
            await _answer(send, status, _envelope(status, code, message, field))
        else:
            await self.speak(status, f"{field}: {message}" if field else message)(
                scope, receive, send
            )


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
