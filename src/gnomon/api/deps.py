"""Request dependencies: the service, and who is calling."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gnomon.domain import Principal
from gnomon.errors import Unauthorized
from gnomon.service import Service

_bearer = HTTPBearer(auto_error=False, description="A gnomon token: `Bearer gn_…`")


def service(request: Request) -> Service:
    return request.app.state.svc


async def principal(
    request: Request, creds: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    if creds is None:
        header = request.headers.get("authorization")
        if header:
            raise Unauthorized("Authorization header must be 'Bearer <token>'")
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
    return await request.app.state.svc.access.authenticate(creds.credentials)


async def principal_of(request: Request) -> Principal:
    """The caller, outside FastAPI's dependency injection."""
    return await principal(request, await _bearer(request))
