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
text; the dialect `Text`); every answer carries the CORS headers.
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
from ulid import ULID

from gnomon.api import streams
from gnomon.api.compat import kit
from gnomon.api.compat.kit import Refusal
from gnomon.api.present import JSON
from gnomon.config import Settings
from gnomon.domain import Principal, RunState
from gnomon.errors import Forbidden, GnomonError, Invalid, NotFound, Unauthorized
from gnomon.service import Service
from gnomon.service.access import stream_holder
from gnomon.service.sites import KEY_HEADER, SiteFace
from gnomon.specs import SITE, ReportSpec
from gnomon.vocabulary import site_of

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
CORS = {"access-control-allow-origin": "*", "access-control-allow-credentials": "true"}
PREFLIGHT = {
    **CORS,
    "access-control-allow-methods": "OPTIONS,POST",
    "access-control-allow-headers": (
        "Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token,X-Site-Key"
    ),
    "access-control-max-age": "600",
    "content-length": "0",
}

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
        "site": site_of(run["executor"]),
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
        raise Refusal(400, "Error: the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Refusal(400, "Error: the body must be a JSON object")
    return data


def _site(value: Any) -> str:
    if not isinstance(value, str) or not SITE_RE.match(value):
        raise Refusal(400, "Error: site must be a site abbreviation (letters, digits, '_.-')")
    return value


def _ulid(value: Any, site: str) -> str:
    if not isinstance(value, str) or len(value) != 26:
        raise Refusal(404, f"Error: no job {value!r} at site {site}")
    return value.upper()


def _seconds(value: Any, key: str, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Refusal(400, f"Error: {key} must be a number")
    try:
        number = float(value)
    except ValueError:
        raise Refusal(400, f"Error: {key} must be a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise Refusal(400, f"Error: {key} must be a number from {low:g} to {high:g}")
    return number


_user = kit.token_holder  # a gnomon token or a verified external JWT


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
            raise Refusal(400, f"Error: missing required key {key}")
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
        raise Refusal(400, "Error: missing required key site")
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
    return JSON([item({**r, "state": RunState.queued.value, "status": None}) for r in taken])


async def _report(request: Request, word: str | None) -> JSON:
    body = await _body(request)
    if "site" not in body or "ulid" not in body:
        raise Refusal(400, NEEDS_IDS)
    site = _site(body["site"])
    run_id = _ulid(body["ulid"], site)
    if word is None:
        if "newStatus" not in body:
            raise Refusal(400, "Error: missing required key newStatus")
        word = body["newStatus"]
        if not isinstance(word, str) or not word.strip() or len(word) > 200:
            raise Refusal(400, "Error: newStatus must be a word like STARTED or COMPLETE")
    given = body.get("secondsUntilComplete")
    eta = -1.0 if given in (None, "") else _seconds(given, "secondsUntilComplete", low=-1, high=1e9)
    state = state_of(word)
    if state in (RunState.queued, RunState.pending):
        raise Refusal(409, f"Error: a job cannot go back to {word}")
    who = await _site_caller(request, site, acts=True)
    spec = ReportSpec(state=state.value, status=word, eta_s=eta)  # type: ignore[arg-type]
    try:
        await _svc(request).sites.face_report(_face(request), who, run_id, spec, site=site)
    except NotFound:
        raise Refusal(404, f"Error: no job {run_id} at site {site}") from None
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
        raise Refusal(400, "Error: missing required key site")
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
    holder = stream_holder(who)
    release = streams.slot(svc, request, holder)
    check = None if holder is None else streams.caller_check(svc, request, who, ticket=False)
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


class Text(kit.Dialect):
    """The original's errors: their text as a JSON string ("Error: …", "Unauthorized: …")."""

    cors = kit.Cors(CORS, PREFLIGHT, preflight_status=200)

    def answer(self, status: int, message: str) -> Response:
        return JSON(message, status_code=status)

    def words(self, exc: GnomonError) -> tuple[int, str]:
        if isinstance(exc, Forbidden) and exc.code == "reserved":
            return 401, RESERVED
        if isinstance(exc, Unauthorized | Forbidden):
            return 401, f"Unauthorized: {exc.message}"
        if isinstance(exc, Invalid) or exc.status in (400, 422):
            return 400, f"Error: {exc.message}"
        return exc.status, f"Error: {exc.message}"

    def refused(self, status: int, message: str) -> Response:
        return super().refused(status, f"Error: {message}")

    def http(self, request: Request, exc: HTTPException) -> tuple[int, str]:
        return exc.status_code, f"Error: {exc.detail}"

    def fault(self) -> tuple[int, str]:
        return 500, f"Error: {kit.FAULT}"


def create_face(state: State, settings: Settings) -> FastAPI:
    """The face as an application of its own, sharing `state` (and so the service)."""
    face = kit.application(state, DIALECT)
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


DIALECT = Text()
FACE = kit.Face("photonranch", create_face, DIALECT, lambda s: (s.photonranch_prefix, ()))
