"""What every event stream (the native ones and the faces') shares: a slot under the stream
limits, a check that its reader may still read, and an answer that gives the slot back
however the stream ends."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from gnomon.api.deps import bearer
from gnomon.domain import Principal
from gnomon.errors import Unauthorized
from gnomon.service import Service
from gnomon.service.access import digest
from gnomon.service.events import Check

PING_S = 15
SEND_TIMEOUT_S = 30.0  # a client that takes no data this long is dropped


class Stream(EventSourceResponse):
    """Server-sent events that give back their slot, and close their feed, when they end."""

    def __init__(self, content: AsyncIterator[dict[str, str]], release: Callable[[], None]):
        super().__init__(content, ping=PING_S, send_timeout=SEND_TIMEOUT_S)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            pass  # the client stopped reading: the stream is over
        finally:
            self._release()
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()


def slot(svc: Service, request: Request, who: Principal | None) -> Callable[[], None]:
    """A slot for one stream of `who` (None: a tokenless caller, counted by address)."""
    if who is not None:
        key = f"token:{who.token_id}"
    else:
        key = f"client:{request.client.host if request.client else '?'}"
    return svc.events.limits.take(key)


def bearer_check(svc: Service, secret: str, who: Principal) -> Check:
    """Whether the bearer secret still stands for `who` (not revoked, same roles)."""

    async def ask() -> bool:
        try:
            return await svc.access.authenticate(secret) == who
        except Unauthorized:
            return False

    return Check(f"bearer:{digest(secret)}:{who.model_dump_json()}", ask)


def token_check(svc: Service, who: Principal) -> Check:
    """Whether `who`'s token is still as it was (a stream opened with a ticket)."""

    async def ask() -> bool:
        return await svc.access.token_principal(who.token_id) == who

    return Check(f"token:{who.model_dump_json()}", ask)


def caller_check(svc: Service, request: Request, who: Principal, ticket: bool) -> Check:
    """The check for a stream opened with a ticket, else with the Authorization header."""
    if ticket:
        return token_check(svc, who)
    return bearer_check(svc, bearer(request.headers.get("authorization")) or "", who)
