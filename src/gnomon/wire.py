"""The native API's wire contract: every JSON shape /v1 answers with, written once.

One TypedDict per shape, fields in the order they are sent. Everything else derives from
here: the client's types are these classes, `api/schemas.py` builds the OpenAPI models from
them, and `api/present.py` fills them from rows by these field names (a field typed `Instant`
is a row's epoch seconds shown as RFC 3339). Standard library only, so the client imports it
without the server.

Names follow the database's: a field and the column it shows have one name. An old name a
client may still read is kept as `Annotated[..., OldName("new")]`: sent beside the new one
with the same value, marked deprecated in the OpenAPI document. The compat faces
(`api/compat/`) speak their own platforms' shapes and are not described here.
"""

from __future__ import annotations

from types import UnionType
from typing import (
    Annotated,
    Any,
    NamedTuple,
    NewType,
    TypedDict,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

Instant = NewType("Instant", str)
"""RFC 3339 in UTC to the microsecond, `2031-01-01T09:00:00.000000Z`."""


class OldName(NamedTuple):
    """Marks a field as the old name of the field `of`: same value, still sent."""

    of: str


class ErrorBody(TypedDict):
    code: str
    message: str
    details: Any


class Error(TypedDict):
    error: ErrorBody


class Job(TypedDict):
    id: str
    space: str
    name: str
    action: dict[str, Any]
    executor: str
    timeout_s: float | None
    retry: dict[str, Any]
    concurrency: dict[str, Any]
    params: dict[str, Any]
    app_id: str | None
    labels: dict[str, Any]
    executor_options: dict[str, Any]
    created_at: Instant
    updated_at: Instant
    app: Annotated[str | None, OldName("app_id")]


class App(TypedDict):
    id: str
    space: str
    name: str
    cwd: str | None
    env: dict[str, str]
    executor: str
    created_at: Instant
    updated_at: Instant
    guid: Annotated[str, OldName("id")]


class Run(TypedDict):
    id: str
    job_id: str
    space: str
    executor: str
    schedule_id: str | None
    scheduled_for: Instant | None
    state: str
    status: str | None
    eta_s: float | None
    attempt: int
    max_attempts: int
    params: dict[str, Any]
    timeout_s: float | None
    not_before: Instant
    exit_code: int | None
    message: str | None
    external_id: str | None
    output_size: int
    worker_id: str | None
    lease_expires_at: Instant | None
    cancel_requested: bool
    created_at: Instant
    claimed_at: Instant | None
    started_at: Instant | None
    finished_at: Instant | None
    updated_at: Instant


class Schedule(TypedDict):
    id: str
    job_id: str
    space: str
    kind: str
    cron: str | None
    every: str | None
    at: Instant | None
    timezone: str
    enabled: bool
    overlap: str
    catchup_window_s: int
    catchup: str
    jitter_s: float
    params: dict[str, Any]
    next_fire_at: Instant | None
    last_fire_at: Instant | None
    created_at: Instant
    updated_at: Instant


class Event(TypedDict):
    id: int
    run_id: str
    job_id: str
    space: str
    executor: str
    attempt: int
    state: str
    status: str | None
    at: Instant


class Fire(TypedDict):
    fire_at: Instant
    until_at: Instant
    count: int
    status: str
    recorded_at: Instant


class Member(TypedDict):
    token_id: str
    name: str
    role: str


class Space(TypedDict):
    name: str
    guid: str | None
    timezone: str
    created_at: Instant
    members: list[Member]


class Token(TypedDict):
    id: str
    name: str
    admin: bool
    roles: dict[str, str]
    created_at: Instant
    revoked_at: Instant | None


class NewToken(Token):
    token: str


class JobPage(TypedDict):
    items: list[Job]
    next_cursor: str | None


class AppPage(TypedDict):
    items: list[App]
    next_cursor: str | None


class RunPage(TypedDict):
    items: list[Run]
    next_cursor: str | None


class SchedulePage(TypedDict):
    items: list[Schedule]
    next_cursor: str | None


class Events(TypedDict):
    items: list[Event]


class Fires(TypedDict):
    items: list[Fire]


class Spaces(TypedDict):
    items: list[Space]


class Tokens(TypedDict):
    items: list[Token]


class RunIds(TypedDict):
    ids: list[str]


class Backfill(TypedDict):
    schedule_id: str
    slots: int
    times: list[Instant]
    created: int
    existing: int
    runs: list[str]


class NextTimes(TypedDict):
    schedule_id: str
    timezone: str
    times: list[Instant]


# --- sites ----------------------------------------------------------------------------------


class ClaimedRun(Run):
    """A run as an agent gets it: with its job's name and action."""

    job_name: str
    action: dict[str, Any]


class Claimed(TypedDict):
    runs: list[ClaimedRun]


class Heartbeat(TypedDict):
    agent: str
    cancel: list[str]
    lease_expires_at: Instant


class Agent(TypedDict):
    id: str
    first_seen_at: Instant
    last_contact_at: Instant
    claimed: int


class Reservation(TypedDict):
    """Another space's reservation shows only its window: space, owner and note are null."""

    id: str
    space: str | None
    site: str
    owner: str | None
    owner_name: str | None
    start_at: Instant
    end_at: Instant
    note: str | None
    created_at: Instant
    start: Annotated[Instant, OldName("start_at")]
    end: Annotated[Instant, OldName("end_at")]


class Reservations(TypedDict):
    items: list[Reservation]


class Site(TypedDict):
    site: str
    queued: int
    claimed: int
    running: int
    last_contact_at: Instant | None
    agents: list[Agent]
    key_set: bool
    reservation: Reservation | None


class SiteKey(TypedDict):
    site: str
    key: str
    created_at: Instant


class Sites(TypedDict):
    items: list[Site]


SHAPES: tuple[type, ...] = tuple(
    v for v in list(globals().values()) if isinstance(v, type) and hasattr(v, "__required_keys__")
)
"""Every shape above, in order."""


# --- reading the shapes ---------------------------------------------------------------------


def fields(shape: type) -> dict[str, Any]:
    """Field name → type (with `Annotated` kept), in the order sent."""
    return get_type_hints(shape, include_extras=True)


def old_names(shape: type) -> dict[str, str]:
    """Old field name → the current name it mirrors."""
    return {
        name: mark.of
        for name, tp in fields(shape).items()
        for mark in getattr(tp, "__metadata__", ())
        if isinstance(mark, OldName)
    }


def times(shape: type) -> tuple[str, ...]:
    """The fields that are instants, `Instant` or `Instant | None` (epoch seconds in a row,
    RFC 3339 on the wire); old names left out."""
    old = old_names(shape)
    return tuple(
        name
        for name, tp in get_type_hints(shape).items()
        if name not in old
        and (tp is Instant or (get_origin(tp) in (Union, UnionType) and Instant in get_args(tp)))
    )
