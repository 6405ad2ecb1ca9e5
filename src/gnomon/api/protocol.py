"""HTTP connections that send their request too slowly, or too much of it, are closed.

uvicorn times out only idle keep-alive connections: a client that opens connections and
trickles request lines, headers or bodies (slowloris) holds them as long as it likes. Here a
request must arrive whole within `read_timeout_s` of the connection's start (or, on a
kept-alive connection, of the request's first byte), else it is answered 408 (when nothing
was answered yet) and the connection closed; a request line and headers longer than
`head_max_bytes` are answered 431.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _answer(status: int, reason: str, text: str) -> bytes:
    body = text.encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for reading each request."""

    read_timeout_s: float = 10.0
    head_max_bytes: int = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._head_pending = True  # what comes in is a request line or headers
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.read_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._head_pending:
            text = f"the request did not arrive within {self.read_timeout_s:g} s"
            self.transport.write(_answer(408, "Request Timeout", text))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._head_pending:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._head_pending and self._head_bytes > self.head_max_bytes:
            text = f"request line and headers exceed {self.head_max_bytes} bytes"
            self.transport.write(_answer(431, "Request Header Fields Too Large", text))
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._head_pending = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._head_pending = True
        super().on_message_complete()


def guarded_http(read_timeout_s: float, head_max_bytes: int) -> type[GuardedHttpTools]:
    """The protocol class for uvicorn's `http` option, with these bounds."""
    return type(
        "GuardedHttpTools",
        (GuardedHttpTools,),
        {"read_timeout_s": read_timeout_s, "head_max_bytes": head_max_bytes},
    )
