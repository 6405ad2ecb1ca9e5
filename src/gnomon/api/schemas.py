"""Response shapes, for the OpenAPI document (handlers return ready JSON; see present.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gnomon.domain import Action, ConcurrencyPolicy, RetryPolicy


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class Error(BaseModel):
    error: ErrorBody


class Job(BaseModel):
    id: str
    space: str
    name: str
    action: Action
    executor: str
    timeout_s: float | None
    retry: RetryPolicy
    concurrency: ConcurrencyPolicy
    params: dict[str, Any]
    app: str | None
    labels: dict[str, Any]
    executor_options: dict[str, Any] = {}
    created_at: str
    updated_at: str


class App(BaseModel):
    guid: str
    space: str
    name: str
    cwd: str | None
    env: dict[str, str]
    executor: str
    created_at: str
    updated_at: str


class Run(BaseModel):
    id: str
    job_id: str
    space: str
    executor: str
    schedule_id: str | None
    scheduled_for: str | None
    state: str
    status: str | None
    eta_s: float | None
    attempt: int
    max_attempts: int
    params: dict[str, Any]
    timeout_s: float | None
    not_before: str
    exit_code: int | None
    message: str | None
    external_id: str | None
    output_size: int
    worker_id: str | None
    lease_expires_at: str | None
    cancel_requested: bool
    created_at: str
    claimed_at: str | None
    started_at: str | None
    finished_at: str | None
    updated_at: str


class Schedule(BaseModel):
    id: str
    job_id: str
    space: str
    kind: str
    cron: str | None
    every: str | None
    at: str | None
    timezone: str
    enabled: bool
    overlap: str
    catchup_window_s: int
    catchup: str
    jitter_s: float
    params: dict[str, Any]
    next_fire_at: str | None
    last_fire_at: str | None
    created_at: str
    updated_at: str


class Event(BaseModel):
    id: int
    run_id: str
    job_id: str
    space: str
    executor: str
    attempt: int
    state: str
    status: str | None
    at: str


class Fire(BaseModel):
    fire_at: str
    until_at: str
    count: int
    status: str
    recorded_at: str


class Member(BaseModel):
    token_id: str
    name: str
    role: str


class Space(BaseModel):
    name: str
    guid: str | None
    timezone: str
    created_at: str
    members: list[Member]


class Token(BaseModel):
    id: str
    name: str
    admin: bool
    roles: dict[str, str]
    created_at: str
    revoked_at: str | None


class NewToken(Token):
    token: str


class JobPage(BaseModel):
    items: list[Job]
    next_cursor: str | None


class AppPage(BaseModel):
    items: list[App]
    next_cursor: str | None


class RunPage(BaseModel):
    items: list[Run]
    next_cursor: str | None


class SchedulePage(BaseModel):
    items: list[Schedule]
    next_cursor: str | None


class Events(BaseModel):
    items: list[Event]


class Fires(BaseModel):
    items: list[Fire]


class Spaces(BaseModel):
    items: list[Space]


class Tokens(BaseModel):
    items: list[Token]


class RunIds(BaseModel):
    ids: list[str]


class Backfill(BaseModel):
    schedule_id: str
    slots: int
    times: list[str]
    created: int
    existing: int
    runs: list[str]


class NextTimes(BaseModel):
    schedule_id: str
    timezone: str
    times: list[str]


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Error, "description": text}
    for code, text in (
        (400, "Malformed request"),
        (401, "Missing or unknown token"),
        (403, "Not allowed in this space"),
        (404, "Not found"),
        (409, "Conflict"),
        (413, "Body too large"),
        (422, "Invalid input; the message names the field"),
    )
}


# --- sites ----------------------------------------------------------------------------------


class ClaimedRun(Run):
    """A run as an agent gets it: with its job's name and action."""

    job_name: str
    action: dict[str, Any]


class Claimed(BaseModel):
    runs: list[ClaimedRun]


class Heartbeat(BaseModel):
    agent: str
    cancel: list[str]
    lease_expires_at: str


class Agent(BaseModel):
    id: str
    first_seen_at: str
    last_contact_at: str
    claimed: int


class Reservation(BaseModel):
    """Another space's reservation shows only its window: space, owner and note are null."""

    id: str
    space: str | None
    site: str
    owner: str | None
    owner_name: str | None
    start: str
    end: str
    note: str | None
    created_at: str


class Reservations(BaseModel):
    items: list[Reservation]


class Site(BaseModel):
    site: str
    queued: int
    claimed: int
    running: int
    last_contact_at: str | None
    agents: list[Agent]
    key_set: bool = False
    reservation: Reservation | None = None


class SiteKey(BaseModel):
    site: str
    key: str
    created_at: str


class Sites(BaseModel):
    items: list[Site]
