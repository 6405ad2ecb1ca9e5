"""The observatory schedule API (scheduler-server) face: `POST /api/v1/schedule/`.

Translates the original contract onto the plans service: a window and a policy in, the
policy's command script out, in the original `{status, commands, message}` envelope — always
JSON, open CORS, no auth unless GNOMON_SCHEDULE_API_AUTH is set. Nothing is stored; the
verifier's verdict travels in the `X-Gnomon-Verified` header (true/false). Config keys the
policy does not know are ignored, as the original ignored them, and named in `message`.
Errors, the request guard's too, are `{status: "error", message}` (the dialect `Envelope`).
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from fastapi import FastAPI, Request
from starlette.datastructures import State
from starlette.exceptions import HTTPException

from gnomon.api.compat import kit
from gnomon.api.compat.kit import Refusal
from gnomon.api.deps import principal_of
from gnomon.api.present import JSON
from gnomon.config import Settings
from gnomon.errors import GnomonError
from gnomon.plans.requests import parse_when
from gnomon.service.plans import PlanInvalid

log = structlog.get_logger(__name__)
PREFIX = "/api/v1/schedule"
PATHS = ("/", "")  # under PREFIX: with and without the trailing slash
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization",
    "Access-Control-Expose-Headers": "X-Gnomon-Verified",
    "Access-Control-Max-Age": "86400",
}
DATE_MESSAGE = "Invalid date format, needs to be ISO format"
POLICY_MESSAGE = "Invalid policy, needs to be a json string"


class Envelope(kit.Dialect):
    """The original's `{status: "error", message}`; bad input is a 400."""

    cors = kit.Cors(CORS, CORS)

    def answer(self, status: int, message: str) -> JSON:
        return JSON({"status": "error", "message": message}, status_code=status)

    def words(self, exc: GnomonError) -> tuple[int, str]:
        return (400 if isinstance(exc, PlanInvalid) else exc.status), exc.message

    def http(self, request: Request, exc: HTTPException) -> tuple[int, str]:
        if exc.status_code == 405:
            return 405, "Method not allowed; use POST"
        return exc.status_code, str(exc.detail)


def _window(doc: dict[str, Any]) -> tuple[float, float]:
    for field in ("t0", "t1"):
        if doc.get(field) is None:
            raise Refusal(400, f"Missing {field} field")
    try:
        return parse_when(doc["t0"]), parse_when(doc["t1"])
    except (ValueError, TypeError, OverflowError) as exc:
        raise Refusal(400, DATE_MESSAGE) from exc


def _policy(doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """`policy` as a JSON string (the original) or an object; `dummy` when absent."""
    raw = doc.get("policy")
    if raw is None:
        return "dummy", {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise Refusal(400, POLICY_MESSAGE) from exc
    if not isinstance(raw, dict):
        raise Refusal(400, POLICY_MESSAGE)
    name = raw.get("policy", "dummy")
    config = raw.get("config") or {}
    if not isinstance(name, str):
        raise Refusal(400, POLICY_MESSAGE)
    if not isinstance(config, dict):
        raise Refusal(400, "Invalid policy config, needs to be a json object")
    return name, config


async def schedule(request: Request) -> JSON:
    svc = request.app.state.svc
    if svc.settings.schedule_api_auth:
        await principal_of(request)
    try:
        doc = json.loads(await request.body() or b"null")
    except (ValueError, RecursionError):
        doc = None
    if not isinstance(doc, dict):
        raise Refusal(400, "Invalid input, needs to be a JSON object")
    t0, t1 = _window(doc)
    name, config = _policy(doc)
    try:
        made = await svc.plans.preview(name, config, t0, t1, ignore_unknown=True)
    except GnomonError:
        raise
    except Exception:
        log.exception("schedule policy failed")
        raise Refusal(500, "Internal error in the policy; see the server log") from None
    verified = "true" if made["verification"]["ok"] else "false"
    message = "Success"
    if made["ignored"]:
        names = ", ".join(repr(k) for k in made["ignored"])
        message += f"; ignored config key(s) the policy '{name}' does not know: {names}"
    return JSON(
        {"status": "ok", "commands": made["commands"], "message": message},
        headers={"X-Gnomon-Verified": verified},
    )


def create_face(state: State, settings: Settings) -> FastAPI:
    """The face as an application of its own, sharing `state` (and so the service)."""
    face = kit.application(state, DIALECT)
    for path in PATHS:
        face.add_api_route(path, schedule, methods=["POST"])
    return face


DIALECT = Envelope()
FACE = kit.Face("schedule_api", create_face, DIALECT, lambda s: (PREFIX, ()))
