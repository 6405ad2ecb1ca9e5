"""Request dependencies: the service, and who is calling (the one reading of a bearer token,
for the native routes and the faces alike)."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from gnomon.domain import Principal
from gnomon.errors import Unauthorized
from gnomon.service import Service

MISSING = "missing bearer token (Authorization: Bearer <token>)"
MALFORMED = "Authorization header must be 'Bearer <token>'"


def bearer(header: str | None) -> str | None:
    """The secret of an `Authorization: Bearer <secret>` header; None for any other header."""
    scheme, _, secret = (header or "").partition(" ")
    secret = secret.strip()
    return secret if secret and scheme.lower() == "bearer" else None


class _Bearer(HTTPBearer):
    """The bearer scheme of the API document, read with `bearer`."""

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        return bearer(request.headers.get("authorization"))


_scheme = _Bearer(auto_error=False, description="A gnomon token: `Bearer gn_…`")


def service(request: Request) -> Service:
    return request.app.state.svc


async def holder(request: Request, secret: str | None, refusal: str | None = None) -> Principal:
    """Who the bearer `secret` stands for; without one, Unauthorized saying `refusal` (by
    default: what is missing or malformed)."""
    if secret is None:
        header = request.headers.get("authorization")
        raise Unauthorized(refusal or (MALFORMED if header else MISSING))
    return await request.app.state.svc.access.authenticate(secret)


async def principal(request: Request, secret: str | None = Depends(_scheme)) -> Principal:
    return await holder(request, secret)


async def principal_of(request: Request, refusal: str | None = None) -> Principal:
    """The caller, outside FastAPI's dependency injection (a face's, with its `refusal`)."""
    return await holder(request, bearer(request.headers.get("authorization")), refusal)
