"""The observatory schedule API (scheduler-server) face: `POST /api/v1/schedule/`.

Translates the original contract onto the plans service: a window and a policy in, the
policy's command script out, in the original `{status, commands, message}` envelope — always
JSON, open CORS, no auth unless GNOMON_SCHEDULE_API_AUTH is set. Nothing is stored; the
verifier's verdict travels in the `X-Gnomon-Verified` header (true/false). Config keys the
policy does not know are ignored, as the original ignored them, and named in `message`.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from fastapi import APIRouter, Request
from starlette.responses import Response

from gnomon.api.deps import principal_of
from gnomon.api.present import JSON
from gnomon.errors import Busy, GnomonError
from gnomon.plans.specs import parse_when
from gnomon.service.plans import PlanInvalid

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)
PATHS = ("/api/v1/schedule/", "/api/v1/schedule")
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization",
    "Access-Control-Expose-Headers": "X-Gnomon-Verified",
    "Access-Control-Max-Age": "86400",
}
DATE_MESSAGE = "Invalid date format, needs to be ISO format"
POLICY_MESSAGE = "Invalid policy, needs to be a json string"


class FaceError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


def reply(status: int, body: dict[str, Any], **headers: str) -> JSON:
    return JSON(body, status_code=status, headers={**CORS, **headers})


def error(message: str, status: int = 400) -> JSON:
    return reply(status, {"status": "error", "message": message})


def _window(doc: dict[str, Any]) -> tuple[float, float]:
    for field in ("t0", "t1"):
        if doc.get(field) is None:
            raise FaceError(f"Missing {field} field")
    try:
        return parse_when(doc["t0"]), parse_when(doc["t1"])
    except (ValueError, TypeError, OverflowError) as exc:
        raise FaceError(DATE_MESSAGE) from exc


def _policy(doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """`policy` as a JSON string (the original) or an object; `dummy` when absent."""
    raw = doc.get("policy")
    if raw is None:
        return "dummy", {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise FaceError(POLICY_MESSAGE) from exc
    if not isinstance(raw, dict):
        raise FaceError(POLICY_MESSAGE)
    name = raw.get("policy", "dummy")
    config = raw.get("config") or {}
    if not isinstance(name, str):
        raise FaceError(POLICY_MESSAGE)
    if not isinstance(config, dict):
        raise FaceError("Invalid policy config, needs to be a json object")
    return name, config


@router.options(PATHS[0])
@router.options(PATHS[1])
async def preflight() -> Response:
    return Response(status_code=204, headers=CORS)


@router.api_route(PATHS[0], methods=["GET", "PUT", "PATCH", "DELETE"])
@router.api_route(PATHS[1], methods=["GET", "PUT", "PATCH", "DELETE"])
async def other_methods() -> JSON:
    return error("Method not allowed; use POST", 405)


@router.post(PATHS[0])
@router.post(PATHS[1])
async def schedule(request: Request) -> JSON:
    svc = request.app.state.svc
    try:
        if svc.settings.schedule_api_auth:
            await principal_of(request)
        try:
            doc = json.loads(await request.body() or b"null")
        except (ValueError, RecursionError):
            doc = None
        if not isinstance(doc, dict):
            raise FaceError("Invalid input, needs to be a JSON object")
        t0, t1 = _window(doc)
        name, config = _policy(doc)
        made = await svc.plans.preview(name, config, t0, t1, ignore_unknown=True)
    except FaceError as exc:
        return error(exc.message, exc.status)
    except PlanInvalid as exc:
        return error(exc.message, 400)
    except Busy as exc:
        return reply(
            exc.status,
            {"status": "error", "message": exc.message},
            **{"Retry-After": str(exc.retry_after_s)},
        )
    except GnomonError as exc:
        return error(exc.message, exc.status)
    except Exception:
        log.exception("schedule policy failed")
        return error("Internal error in the policy; see the server log", 500)
    verified = "true" if made["verification"]["ok"] else "false"
    message = "Success"
    if made["ignored"]:
        names = ", ".join(repr(k) for k in made["ignored"])
        message += f"; ignored config key(s) the policy '{name}' does not know: {names}"
    return reply(
        200,
        {"status": "ok", "commands": made["commands"], "message": message},
        **{"X-Gnomon-Verified": verified},
    )
