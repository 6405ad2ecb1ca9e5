"""The Cloud Foundry scheduler face (Scheduler for PCF, scheduler-for-ocf).

A translator onto gnomon's own objects, with no rules of its own:

- a PCF *job* is a gnomon job bound to an app whose action is `shell`; a *call* is one whose
  action is `http` (POST to the URL, `Authorization: <auth_header>`, no body);
- a *schedule* is a gnomon cron schedule (in the space's time zone, as every schedule made
  without one); an *execution* is a run;
- guids are UUIDs: apps and spaces keep theirs, jobs, schedules and runs show their ULID as
  the UUID with the same 128 bits (and are found by it);
- `space_guid` is the guid of a gnomon space (a space's name is accepted too).

What the face adds is presentation: field order, zero times, numbered pages, and errors
whose body is the JSON empty string with the contract's status codes (its dialect, `Blank`).
"""

from __future__ import annotations

import math
import shlex
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import orjson
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError
from starlette.datastructures import State
from starlette.responses import Response
from ulid import ULID

from gnomon import cron
from gnomon.api.compat import kit
from gnomon.api.present import JSON, iso
from gnomon.config import Settings
from gnomon.domain import Principal, Role, RunState
from gnomon.errors import GnomonError, Invalid, NotFound
from gnomon.service import Service
from gnomon.service.apps import parse_guid
from gnomon.specs import JobSpec, RunRequest, ScheduleSpec

ZERO_TIME = "0001-01-01T00:00:00Z"
DEFAULT_MB = 0  # what the original answered for a job created without sizes
MB_MAX = 2**31 - 1
PAGE_SIZE = 100
PAGE_SIZE_MAX = 1000
PAGE_MAX = 10**7
EMPTY = b'""'

# Run states in the contract's words: a job "follows its latest execution".
STATES = {
    RunState.pending: "PENDING",
    RunState.queued: "PENDING",
    RunState.claimed: "PENDING",
    RunState.running: "RUNNING",
    RunState.succeeded: "SUCCEEDED",
    RunState.failed: "FAILED",
    RunState.timed_out: "FAILED",
    RunState.cancelled: "FAILED",
    RunState.lost: "FAILED",
}

# gnomon's errors in the contract's status codes (it knows 401, 404 and 422).
STATUS = {400: 422, 403: 401, 409: 422}


@dataclass(frozen=True)
class Kind:
    """Jobs and calls: the same ten routes over a different action."""

    plural: str
    action: str
    ref: str  # how an execution or schedule names its executable


JOBS = Kind("jobs", "shell", "job_guid")
CALLS = Kind("calls", "http", "call_guid")


# --- ids ------------------------------------------------------------------------------------


def guid(ulid: str) -> str:
    return str(ULID.from_str(ulid).to_uuid())


def ulid_of(value: str) -> str:
    """The gnomon id behind a guid; NotFound when it is not a guid at all."""
    try:
        return str(ULID.from_uuid(uuid.UUID(value)))
    except (ValueError, TypeError):
        raise NotFound(f"'{value}' is not a guid") from None


# --- request bodies -------------------------------------------------------------------------

_LENIENT = ConfigDict(extra="ignore")  # clients send whole zero-valued objects


class JobIn(BaseModel):
    model_config = _LENIENT
    name: StrictStr
    command: StrictStr
    disk_in_mb: StrictInt | None = Field(default=None, ge=0, le=MB_MAX)
    memory_in_mb: StrictInt | None = Field(default=None, ge=0, le=MB_MAX)


class CallIn(BaseModel):
    model_config = _LENIENT
    name: StrictStr
    url: StrictStr
    auth_header: StrictStr


class ScheduleIn(BaseModel):
    model_config = _LENIENT
    enabled: StrictBool = True
    expression: StrictStr = Field(max_length=200)
    expression_type: Literal["cron_expression"]


M = TypeVar("M", bound=BaseModel)


def _invalid(exc: ValidationError) -> Invalid:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return Invalid(field, str(first.get("msg", "invalid")))


async def _body(request: Request, model: type[M]) -> M:
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise Invalid("body", "not a JSON document") from None
    if not isinstance(data, dict):
        raise Invalid("body", "expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _spec(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _not_blank(field: str, value: str) -> str:
    if not value.strip():
        raise Invalid(field, "must not be blank")
    return value


# --- plumbing -------------------------------------------------------------------------------


def _svc(request: Request) -> Service:
    return request.app.state.svc


_who = kit.token_holder


def _paging(request: Request) -> tuple[int, int]:
    q = request.query_params
    try:
        page, size = int(q.get("page", 1)), int(q.get("per_page", PAGE_SIZE))
    except ValueError:
        raise Invalid("page", "page and per_page are whole numbers") from None
    if not 1 <= page <= PAGE_MAX:
        raise Invalid("page", f"from 1 to {PAGE_MAX}")
    if not 1 <= size <= PAGE_SIZE_MAX:
        raise Invalid("per_page", f"from 1 to {PAGE_SIZE_MAX}")
    return page, size


def _listing(
    request: Request, resources: list[dict[str, Any]], total: int, page: int, size: int
) -> dict[str, Any]:
    pages = max(1, math.ceil(total / size))

    def link(n: int) -> dict[str, str]:
        return {"href": str(request.url.include_query_params(page=n, per_page=size))}

    return {
        "pagination": {
            "first": link(1),
            "last": link(pages),
            "next": link(page + 1) if page < pages else None,
            "previous": link(min(page - 1, pages)) if page > 1 else None,
            "total_pages": pages,
            "total_results": total,
        },
        "resources": resources,
    }


def _time(t: float | None) -> str:
    return ZERO_TIME if t is None else str(iso(t))


# --- presentation ---------------------------------------------------------------------------


def _command(action: dict[str, Any]) -> str:
    command = action.get("command", "")
    return shlex.join(command) if isinstance(command, list) else str(command)


def _mb(labels: dict[str, Any], key: str) -> int:
    value = labels.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else DEFAULT_MB


async def _executables(
    svc: Service, kind: Kind, rows: list[dict[str, Any]], fresh: bool = False
) -> list[dict[str, Any]]:
    spaces = await svc.access.spaces([r["space"] for r in rows])
    states = {} if fresh or kind is CALLS else await svc.apps.job_states([r["id"] for r in rows])
    out = []
    for r in rows:
        space = spaces.get(r["space"], {})
        head: dict[str, Any] = {"guid": guid(r["id"]), "name": r["name"]}
        if kind is JOBS:
            state = states.get(r["id"])
            head |= {
                "command": _command(r["action"]),
                "disk_in_mb": _mb(r["labels"], "disk_in_mb"),
                "memory_in_mb": _mb(r["labels"], "memory_in_mb"),
                "state": STATES[state] if state else "PENDING",
            }
        else:
            head |= {
                "url": r["action"].get("url", ""),
                "auth_header": (r["action"].get("headers") or {}).get("Authorization", ""),
            }
        out.append(
            head
            | {
                "created_at": _time(r["created_at"]),
                "updated_at": _time(r["updated_at"]),
                "app_guid": r["app_id"],
                "space_guid": space.get("guid") or "",
            }
        )
    return out


def _schedule(kind: Kind, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "guid": guid(row["id"]),
        "enabled": row["enabled"],
        "expression": row["expr"],
        "expression_type": "cron_expression",
        "created_at": _time(row["created_at"]),
        "updated_at": _time(row["updated_at"]),
        kind.ref: guid(row["job_id"]),
    }


def _execution(kind: Kind, run: dict[str, Any]) -> dict[str, Any]:
    out = {"guid": guid(run["id"]), kind.ref: guid(run["job_id"])}
    if kind is JOBS:
        out["task_guid"] = guid(run["id"])
    if run["schedule_id"]:
        out["schedule_guid"] = guid(run["schedule_id"])
    return out | {
        "scheduled_time": _time(run["scheduled_for"]) if run["schedule_id"] else ZERO_TIME,
        "message": run["message"] or "",
        "state": STATES[RunState(run["state"])],
        "execution_start_time": _time(run["started_at"]),
        "execution_end_time": _time(run["finished_at"]),
    }


# --- routes ---------------------------------------------------------------------------------

router = APIRouter()


@router.get("/")
async def health() -> JSON:
    return JSON("")


async def _executable(
    request: Request, who: Principal, kind: Kind, ref: str, role: Role = Role.viewer
) -> dict[str, Any]:
    """A job of this kind (bound to an app, with this action); NotFound for any other."""
    job = await _svc(request).jobs.get(who, ulid_of(ref), role)
    if job["app_id"] is None or job["action"].get("type") != kind.action:
        raise NotFound(f"no {kind.plural[:-1]} '{ref}'")
    return job


async def _space_of_query(request: Request) -> tuple[str | None, bool]:
    """The space `space_guid` names (None: every space readable); False when none exists."""
    ref = request.query_params.get("space_guid")
    if not ref:
        return None, True
    access = _svc(request).access
    canonical = parse_guid(ref)
    space = await access.space_by_guid(canonical) if canonical else None
    if space is None:
        space = await access.space(ref)
    return (space["name"], True) if space else (None, False)


def _routes(kind: Kind) -> None:
    base = f"/{kind.plural}"
    one = f"{base}/{{ref}}"

    async def list_all(request: Request) -> JSON:
        who = await _who(request)
        page, size = _paging(request)
        space, exists = await _space_of_query(request)
        rows, total = [], 0
        if exists:
            rows, total = await _svc(request).apps.jobs(
                who,
                space=space,
                action_type=kind.action,
                offset=(page - 1) * size,
                limit=size,
            )
        resources = await _executables(_svc(request), kind, rows)
        return JSON(_listing(request, resources, total, page, size))

    async def create(request: Request) -> JSON:
        who = await _who(request)
        svc = _svc(request)
        app_guid = request.query_params.get("app_guid")
        if not app_guid:
            raise Invalid("app_guid", "required")
        await svc.apps.context(who, app_guid, None)
        if kind is JOBS:
            job = await _body(request, JobIn)
            action: dict[str, Any] = {
                "type": "shell",
                "command": _not_blank("command", job.command),
            }
            labels = {
                "disk_in_mb": job.disk_in_mb or None,
                "memory_in_mb": job.memory_in_mb or None,
            }
            name = job.name
        else:
            call = await _body(request, CallIn)
            action = {
                "type": "http",
                "method": "POST",
                "url": call.url,
                "headers": {"Authorization": _not_blank("auth_header", call.auth_header)},
            }
            labels, name = {}, call.name
        spec = _spec(
            JobSpec,
            {
                "name": _not_blank("name", name),
                "action": action,
                "app": app_guid,
                "labels": {k: v for k, v in labels.items() if v is not None},
            },
        )
        row = await svc.jobs.create(who, spec)
        return JSON((await _executables(svc, kind, [row], fresh=True))[0], status_code=201)

    async def get(request: Request, ref: str) -> JSON:
        who = await _who(request)
        job = await _executable(request, who, kind, ref)
        return JSON((await _executables(_svc(request), kind, [job]))[0])

    async def delete(request: Request, ref: str) -> Response:
        who = await _who(request)
        job = await _executable(request, who, kind, ref, Role.developer)
        await _svc(request).jobs.delete(who, job["id"])
        return Response(status_code=204)

    async def execute(request: Request, ref: str) -> JSON:
        who = await _who(request)
        job = await _executable(request, who, kind, ref, Role.developer)
        runs = await _svc(request).runs.submit(who, job["id"], [RunRequest()])
        return JSON(_execution(kind, runs[0]), status_code=201)

    async def history(request: Request, ref: str) -> JSON:
        return await _history(request, kind, ref, None)

    async def schedule_history(request: Request, ref: str, sref: str) -> JSON:
        return await _history(request, kind, ref, sref)

    async def schedules(request: Request, ref: str) -> JSON:
        who = await _who(request)
        page, size = _paging(request)
        job = await _executable(request, who, kind, ref)
        rows: list[dict[str, Any]] = []
        cursor = None
        while True:
            items, cursor = await _svc(request).schedules.list(
                who, job_id=job["id"], cursor=cursor, limit=1000
            )
            rows += items
            if cursor is None:
                break
        shown = rows[(page - 1) * size : page * size]
        return JSON(_listing(request, [_schedule(kind, r) for r in shown], len(rows), page, size))

    async def schedule(request: Request, ref: str) -> JSON:
        who = await _who(request)
        svc = _svc(request)
        job = await _executable(request, who, kind, ref, Role.developer)
        body = await _body(request, ScheduleIn)
        try:
            expr = cron.validate_cron5(body.expression)
        except cron.TriggerError as exc:
            raise Invalid("expression", exc.message) from None
        spec = ScheduleSpec(cron=expr, enabled=body.enabled)  # in the space's time zone
        row = await svc.schedules.create(who, job["id"], spec)
        return JSON(_schedule(kind, row), status_code=201)

    async def unschedule(request: Request, ref: str, sref: str) -> Response:
        who = await _who(request)
        svc = _svc(request)
        job = await _executable(request, who, kind, ref, Role.developer)
        row = await svc.apps.schedule_of(who, job, ulid_of(sref))
        await svc.schedules.delete(who, row["id"])
        return Response(status_code=204)

    add: Callable[..., Any] = router.add_api_route
    add(base, list_all, methods=["GET"])
    add(base, create, methods=["POST"])
    add(one, get, methods=["GET"])
    add(one, delete, methods=["DELETE"])
    add(f"{one}/execute", execute, methods=["POST"])
    add(f"{one}/history", history, methods=["GET"])
    add(f"{one}/schedules", schedules, methods=["GET"])
    add(f"{one}/schedules", schedule, methods=["POST"])
    add(f"{one}/schedules/{{sref}}", unschedule, methods=["DELETE"])
    add(f"{one}/schedules/{{sref}}/history", schedule_history, methods=["GET"])


async def _history(request: Request, kind: Kind, ref: str, sref: str | None) -> JSON:
    who = await _who(request)
    page, size = _paging(request)
    job = await _executable(request, who, kind, ref)
    runs, total = await _svc(request).apps.history(
        who,
        job,
        schedule_id=None if sref is None else ulid_of(sref),
        offset=(page - 1) * size,
        limit=size,
    )
    return JSON(_listing(request, [_execution(kind, r) for r in runs], total, page, size))


_routes(JOBS)
_routes(CALLS)


# --- the application ------------------------------------------------------------------------


class Blank(kit.Dialect):
    """The contract's errors: its status codes (it knows 401, 404 and 422), the body `""`."""

    def answer(self, status: int, message: str = "") -> Response:
        return Response(EMPTY, status_code=status, media_type="application/json")

    def words(self, exc: GnomonError) -> tuple[int, str]:
        return STATUS.get(exc.status, exc.status), exc.message

    def refused(self, status: int, message: str) -> Response:
        return self.answer(status)


def create_face(state: State, settings: Settings) -> FastAPI:
    """The face as an application of its own, sharing `state` (and so the service)."""
    face = kit.application(state, DIALECT)
    face.include_router(router)
    return face


DIALECT = Blank()
FACE = kit.Face("pcf", create_face, DIALECT, lambda s: (s.pcf_prefix, s.pcf_hosts))
