"""The Photon Ranch jobs face (a web UI queues jobs for an observatory site; the site polls).

A translator onto gnomon's site queues, with no rules of its own:

- a Photon Ranch job is a run of the job `photonranch:<site>` (a `task` on the executor
  `site:<site>`, in the face's space, made on first use); `ulid` is the run's id;
- the item's fields (device, instance, action, required/optional params, user and the user's
  roles from the token) are the run's params; the site's own status word is the run's
  `status`, its ETA the run's `eta_s`;
- words map onto run states: UNREAD=queued, RECEIVED=claimed, COMPLETE/COMPLETED/DONE=
  succeeded, FAILED/ERROR=failed, CANCELLED/CANCELED=cancelled, any other word=running;
- `getnewjobs` is a site claim (each job to exactly one poller), `updatejobstatus` and
  `startjob` are reports, `cancel_all_commands` clears the site (its earlier jobs are
  cancelled when unfinished and no longer listed; see service.sites.SiteFace);
- the site routes reach the runs of the job `photonranch:<site>` and no other run of the
  site; who they act as (a token, the site's key from `X-Site-Key` or `?key=`, an open face)
  is the service's decision (see service.sites.SiteFace).

Every answer is JSON, errors too: the original's error text as a JSON string (so clients
that call `.json()` on every answer work, and a browser's JSON-or-text parsing gets the same
text); every answer carries the CORS headers.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import orjson
from fastapi import FastAPI, Request
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from ulid import ULID

from gnomon.api import streams
from gnomon.api.compat.mount import Face, face
from gnomon.api.present import JSON
from gnomon.config import Settings
from gnomon.domain import Principal, RunState
from gnomon.errors import (
    Busy,
    Conflict,
    Forbidden,
    GnomonError,
    Invalid,
    NotFound,
    Unauthorized,
)
from gnomon.service import Service
from gnomon.service.sites import KEY_HEADER, SiteFace
from gnomon.specs import SITE, ReportSpec

AGENT = "photonranch"
SITE_RE = re.compile(SITE)
ACTION = {"type": "task", "name": "photonranch", "params": {}}
NEWJOB_KEYS = (
    "site",
    "device",
    "instance",
    "action",
    "user_name",
    "user_id",
    "optional_params",
    "required_params",
)
CLEAR_ACTION = "cancel_all_commands"
RESERVED = "Someone else has a reservation right now. Please see the calendar for details."
NEEDS_IDS = "Requires 'site' and 'jobId' in the body payload."
DAY_MS = 24 * 3600 * 1000
TAKE_MAX = 1000  # runs per claim; getnewjobs claims again while full
LIST_MAX = 10000
WAIT_MAX_S = 60.0
CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-credentials", b"true"),
]
PREFLIGHT = [
    *CORS,
    (b"access-control-allow-methods", b"OPTIONS,POST"),
    (
        b"access-control-allow-headers",
        b"Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token,X-Site-Key",
    ),
    (b"access-control-max-age", b"600"),
    (b"content-length", b"0"),
]

# The site's words and the run states they stand for; any other word means running.
WORD_STATE = {
    "UNREAD": RunState.queued,
    "RECEIVED": RunState.claimed,
    "COMPLETE": RunState.succeeded,
    "COMPLETED": RunState.succeeded,
    "DONE": RunState.succeeded,
    "FAILED": RunState.failed,
    "ERROR": RunState.failed,
    "CANCELLED": RunState.cancelled,
    "CANCELED": RunState.cancelled,
}
STATE_WORD = {
    RunState.pending: "UNREAD",
    RunState.queued: "UNREAD",
    RunState.claimed: "RECEIVED",
    RunState.running: "STARTED",
    RunState.succeeded: "COMPLETE",
    RunState.failed: "FAILED",
    RunState.timed_out: "FAILED",
    RunState.cancelled: "CANCELLED",
    RunState.lost: "LOST",
}


class Refused(Exception):
    """An answer in the contract's words: a status and the error's text."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status, self.text = status, text


def state_of(word: str) -> RunState:
    return WORD_STATE.get(word.upper(), RunState.running)


def word_of(run: dict[str, Any]) -> str:
    """The site's own word while it still describes the run's state, else the state's."""
    state = RunState(run["state"])
    status = run.get("status")
    return status if status and state_of(status) == state else STATE_WORD[state]


def job_name(site: str) -> str:
    return f"photonranch:{site}"


def item(run: dict[str, Any]) -> dict[str, Any]:
    p = run.get("params") or {}
    out = {
        "site": run["executor"].removeprefix("site:"),
        "ulid": run["id"],
        "statusId": f"{word_of(run)}#{run['id']}",
        "action": p.get("action"),
        "deviceType": p.get("device"),
        "deviceInstance": p.get("instance"),
        "required_params": p.get("required_params", {}),
        "optional_params": p.get("optional_params", {}),
        "user_name": p.get("user_name"),
        "user_id": p.get("user_id"),
        "user_roles": p.get("user_roles") or [],
        "timestamp_ms": ULID.from_str(run["id"]).milliseconds,
    }
    if run.get("eta_s") is not None:
        out["secondsUntilComplete"] = _number(run["eta_s"])
    return out


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


# --- reading requests -----------------------------------------------------------------------


def _svc(request: Request) -> Service:
    return request.app.state.svc


def _settings(request: Request) -> Settings:
    return _svc(request).settings


async def _body(request: Request) -> dict[str, Any]:
    """The body as JSON whatever its Content-Type (the site software sends none)."""
    raw = await request.body()
    try:
        data = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise Refused(400, "Error: the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Refused(400, "Error: the body must be a JSON object")
    return data


def _site(value: Any) -> str:
    if not isinstance(value, str) or not SITE_RE.match(value):
        raise Refused(400, "Error: site must be a site abbreviation (letters, digits, '_.-')")
    return value


def _ulid(value: Any, site: str) -> str:
    if not isinstance(value, str) or len(value) != 26:
        raise Refused(404, f"Error: no job {value!r} at site {site}")
    return value.upper()


def _seconds(value: Any, key: str, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Refused(400, f"Error: {key} must be a number")
    try:
        number = float(value)
    except ValueError:
        raise Refused(400, f"Error: {key} must be a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise Refused(400, f"Error: {key} must be a number from {low:g} to {high:g}")
    return number


async def _user(request: Request) -> Principal:
    """The caller of newjob: a gnomon token or a verified external JWT."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("expected 'Authorization: Bearer <token>'")
    return await _svc(request).access.authenticate(secret.strip())


def _face(request: Request) -> SiteFace:
    settings = _settings(request)
    return SiteFace(
        agent=AGENT,
        space=settings.photonranch_space,
        action=ACTION,
        open=settings.photonranch_open,
        require_key=settings.photonranch_require_site_key,
        lease_s=settings.photonranch_lease_s,
        clear_action=CLEAR_ACTION,
        clear_status="CANCELLED",
    )


async def _site_caller(request: Request, site: str, *, acts: bool) -> Principal:
    """Who a site route acts as (the rules are SiteFace's): the token's holder, else the
    site's own software, known by its key (`X-Site-Key` header or `?key=`) or an open face."""
    key = request.headers.get(KEY_HEADER.lower()) or request.query_params.get("key") or None
    holder = await _user(request) if request.headers.get("authorization") else None
    return await _svc(request).sites.face_caller(
        _face(request),
        site,
        key=key,
        holder=holder,
        origin=request.headers.get("origin"),
        acts=acts,
    )


# --- routes ---------------------------------------------------------------------------------


async def newjob(request: Request) -> JSON:
    who = await _user(request)
    body = await _body(request)
    for key in NEWJOB_KEYS:
        if key not in body:
            raise Refused(400, f"Error: missing required key {key}")
    site = _site(body["site"])
    params = {
        "device": body["device"],
        "instance": body["instance"],
        "action": body["action"],
        "required_params": body["required_params"],
        "optional_params": body["optional_params"],
        "user_name": body["user_name"],
        "user_id": body["user_id"],
        "user_roles": list(who.jwt_roles),
    }
    user = body["user_id"] if isinstance(body["user_id"], str) else None
    run = await _svc(request).sites.face_submit(_face(request), who, site, params, user=user)
    return JSON(item(run))


async def getnewjobs(request: Request) -> JSON:
    body = await _body(request)
    if "site" not in body:
        raise Refused(400, "Error: missing required key site")
    site = _site(body["site"])
    wait_s = _seconds(body.get("wait_s", 0), "wait_s", low=0, high=WAIT_MAX_S)
    who = await _site_caller(request, site, acts=True)
    sites, face = _svc(request).sites, _face(request)
    taken: list[dict[str, Any]] = []
    while len(taken) < LIST_MAX:
        wait = 0 if taken else wait_s
        batch = await sites.face_claim(face, who, site, max=TAKE_MAX, wait_s=wait)
        taken += batch
        if len(batch) < TAKE_MAX:
            break
    # Shown as they were when taken, as the original did.
    return JSON([item({**r, "state": "queued", "status": None}) for r in taken])


async def _report(request: Request, word: str | None) -> JSON:
    body = await _body(request)
    if "site" not in body or "ulid" not in body:
        raise Refused(400, NEEDS_IDS)
    site = _site(body["site"])
    run_id = _ulid(body["ulid"], site)
    if word is None:
        if "newStatus" not in body:
            raise Refused(400, "Error: missing required key newStatus")
        word = body["newStatus"]
        if not isinstance(word, str) or not word.strip() or len(word) > 200:
            raise Refused(400, "Error: newStatus must be a word like STARTED or COMPLETE")
    given = body.get("secondsUntilComplete")
    eta = -1.0 if given in (None, "") else _seconds(given, "secondsUntilComplete", low=-1, high=1e9)
    state = state_of(word)
    if state in (RunState.queued, RunState.pending):
        raise Refused(409, f"Error: a job cannot go back to {word}")
    who = await _site_caller(request, site, acts=True)
    spec = ReportSpec(state=state.value, status=word, eta_s=eta)  # type: ignore[arg-type]
    try:
        await _svc(request).sites.face_report(_face(request), who, run_id, spec, site=site)
    except NotFound:
        raise Refused(404, f"Error: no job {run_id} at site {site}") from None
    shown = given if isinstance(given, int | float) and not isinstance(given, bool) else eta
    return JSON(
        {"ulid": run_id, "statusId": f"{word}#{run_id}", "secondsUntilComplete": _number(shown)}
    )


async def updatejobstatus(request: Request) -> JSON:
    return await _report(request, None)


async def startjob(request: Request) -> JSON:
    return await _report(request, "STARTED")


async def getrecentjobs(request: Request) -> JSON:
    body = await _body(request)
    if "site" not in body:
        raise Refused(400, "Error: missing required key site")
    site = _site(body["site"])
    span_ms = _seconds(body.get("timeRange", DAY_MS), "timeRange", low=0, high=1e15)
    who = await _site_caller(request, site, acts=False)
    rows = await _svc(request).sites.face_recent(
        _face(request), who, site, since=time.time() - span_ms / 1000, limit=LIST_MAX
    )
    return JSON([item(r) for r in reversed(rows)])


async def events(request: Request, site: str) -> Response:
    """Every change of the site's jobs, as the original pushed them to the UI. Streams are
    limited per token (per client address without one) and in all; a token's stream ends
    when the token is revoked."""
    site = _site(site)
    who = await _site_caller(request, site, acts=False)
    svc = _svc(request)
    tokenless = not request.headers.get("authorization")
    try:
        release = streams.slot(svc, request, None if tokenless else who)
    except Busy as exc:
        answer = _error(exc.status, f"Error: {exc.message}")
        answer.headers["Retry-After"] = str(exc.retry_after_s)
        return answer
    check = None if tokenless else streams.caller_check(svc, request, who, ticket=False)
    try:
        feed = svc.sites.face_watch(_face(request), who, site, check)
    except BaseException:
        release()
        raise

    async def stream() -> AsyncIterator[dict[str, str]]:
        async with aclosing(feed):
            async for event, run in feed:
                data = {"topic": "jobs", "site": site, "data": item(run)}
                yield {
                    "id": str(event["id"]),
                    "data": orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS).decode(),
                }

    return streams.Stream(stream(), release)


# --- the application ------------------------------------------------------------------------


def _error(status: int, text: str) -> Response:
    return JSON(text, status_code=status)


def _gnomon_text(exc: GnomonError) -> tuple[int, str]:
    if isinstance(exc, Forbidden) and exc.code == "reserved":
        return 401, RESERVED
    if isinstance(exc, Unauthorized | Forbidden):
        return 401, f"Unauthorized: {exc.message}"
    if isinstance(exc, Invalid) or exc.status in (400, 422):
        return 400, f"Error: {exc.message}"
    if isinstance(exc, NotFound | Conflict):
        return exc.status, f"Error: {exc.message}"
    return exc.status, f"Error: {exc.message}"


def create_face(state: State) -> FastAPI:
    """The face as an application of its own, sharing `state` (and so the service)."""
    face = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, default_response_class=JSON)
    face.state = state

    @face.exception_handler(Refused)
    async def _refused(_: Request, exc: Refused) -> Response:
        return _error(exc.status, exc.text)

    @face.exception_handler(GnomonError)
    async def _gnomon(_: Request, exc: GnomonError) -> Response:
        return _error(*_gnomon_text(exc))

    @face.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> Response:
        return _error(exc.status_code, f"Error: {exc.detail}")

    @face.exception_handler(Exception)
    async def _fault(_: Request, exc: Exception) -> Response:
        return _error(500, "Error: internal error; see the server log")

    for path, handler in (
        ("/newjob", newjob),
        ("/getnewjobs", getnewjobs),
        ("/updatejobstatus", updatejobstatus),
        ("/startjob", startjob),
        ("/getrecentjobs", getrecentjobs),
    ):
        face.add_api_route(path, handler, methods=["POST"])
    face.add_api_route("/events/{site}", events, methods=["GET"])
    return face


def cors(app: ASGIApp) -> ASGIApp:
    """CORS headers on every answer; preflights answered here; the request guard's JSON
    envelope (`{"error": {...}}`) turned into the face's error, a JSON string."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 200, "headers": PREFLIGHT})
            await send({"type": "http.response.body", "body": b""})
            return
        held: Message | None = None  # an error's start, until its body shows whose it is
        body = b""

        async def send_with_cors(message: Message) -> None:
            nonlocal held, body
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _CORS]
                message = {**message, "headers": headers + CORS}
                if message["status"] >= 400 and JSON_TYPE in headers:
                    held = message
                    return
                await send(message)
            elif message["type"] == "http.response.body" and held is not None:
                body += message.get("body", b"")
                if message.get("more_body", False):
                    return
                start, held = held, None
                await _send_error(send, start, body)
            else:
                await send(message)

        await app(scope, receive, send_with_cors)

    return wrapped


async def _send_error(send: Send, start: Message, body: bytes) -> None:
    """An error answer as the face gives it: the guard's envelope becomes its message as a
    JSON string (422 becoming 400); the face's own errors pass unchanged."""
    try:
        message = orjson.loads(body)["error"]["message"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        message = None
    if isinstance(message, str):
        body = orjson.dumps(f"Error: {message}")
        status = 400 if start["status"] == 422 else start["status"]
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        start = {**start, "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})


_CORS = {k for k, _ in CORS}
JSON_TYPE = (b"content-type", b"application/json")


def mounted(state: State, settings: Settings) -> Face | None:
    """The face at its prefix (None when the prefix is '')."""
    return face(create_face(state), settings.photonranch_prefix, present=cors)
