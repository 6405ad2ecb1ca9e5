"""Errors the service raises; the API turns each into `{"error": {code, message, details}}`."""

from __future__ import annotations

from typing import Any


class GnomonError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code


class Invalid(GnomonError):
    status = 422
    code = "invalid"

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}", details=[{"field": field, "message": message}])
        self.field = field


class Unauthorized(GnomonError):
    status = 401
    code = "unauthorized"


class Forbidden(GnomonError):
    status = 403
    code = "forbidden"


class NotFound(GnomonError):
    status = 404
    code = "not_found"


class Conflict(GnomonError):
    status = 409
    code = "conflict"


class Unavailable(GnomonError):
    status = 503
    code = "unavailable"


class Busy(GnomonError):
    """Too much at once: the answer carries `Retry-After` (seconds)."""

    status = 503
    code = "busy"

    def __init__(self, message: str, *, retry_after_s: int = 1, status: int | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s
        if status is not None:
            self.status = status
            self.code = "too_many" if status == 429 else self.code
