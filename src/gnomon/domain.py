"""The vocabulary: states, roles, policies and the rules between them. Pure, no I/O."""

from __future__ import annotations

import random
import re
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator


class RunState(StrEnum):
    pending = "pending"
    queued = "queued"
    claimed = "claimed"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    timed_out = "timed_out"
    cancelled = "cancelled"
    lost = "lost"


ACTIVE_STATES = (RunState.queued, RunState.claimed, RunState.running)
HELD_STATES = (RunState.claimed, RunState.running)
FINAL_STATES = (
    RunState.succeeded,
    RunState.failed,
    RunState.timed_out,
    RunState.cancelled,
    RunState.lost,
)

# The state machine of DESIGN.md. A retry moves a failed/timed_out/lost run back to queued.
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.pending: frozenset({RunState.queued, RunState.cancelled}),
    RunState.queued: frozenset({RunState.claimed, RunState.cancelled}),
    RunState.claimed: frozenset(
        {
            RunState.running,
            RunState.succeeded,
            RunState.failed,
            RunState.timed_out,
            RunState.cancelled,
            RunState.lost,
            RunState.queued,
        }
    ),
    RunState.running: frozenset(
        {RunState.succeeded, RunState.failed, RunState.timed_out, RunState.cancelled, RunState.lost}
    ),
    RunState.succeeded: frozenset(),
    RunState.failed: frozenset({RunState.queued}),
    RunState.timed_out: frozenset({RunState.queued}),
    RunState.cancelled: frozenset(),
    RunState.lost: frozenset({RunState.queued}),
}


def can_transition(src: RunState, dst: RunState) -> bool:
    return dst in TRANSITIONS[src]


def states_leading_to(dst: RunState) -> tuple[RunState, ...]:
    """Every state from which `dst` may be entered."""
    return tuple(s for s, targets in TRANSITIONS.items() if dst in targets)


class Role(StrEnum):
    viewer = "viewer"
    developer = "developer"
    manager = "manager"


ROLE_RANK = {Role.viewer: 1, Role.developer: 2, Role.manager: 3}


class Overlap(StrEnum):
    allow = "allow"
    skip = "skip"
    buffer_one = "buffer_one"
    cancel_other = "cancel_other"


class Catchup(StrEnum):
    latest = "latest"
    all = "all"


class FireStatus(StrEnum):
    """What became of a schedule slot that did not simply produce a run."""

    missed = "missed"  # older than the catch-up window: recorded, not run
    coalesced = "coalesced"  # inside the window but folded into a later slot
    skipped = "skipped"  # overlap=skip while a run of the schedule was active


# --- executors ------------------------------------------------------------------------------

EXECUTOR_RE = re.compile(r"^(local|celery|slurm|site:[A-Za-z0-9][A-Za-z0-9_.-]{0,62})$")


def validate_executor(value: str) -> str:
    if not EXECUTOR_RE.match(value):
        raise ValueError(
            "executor must be 'local', 'celery', 'slurm' or 'site:<name>' "
            "(name: letters, digits, '_', '.', '-')"
        )
    return value


# --- actions --------------------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid")


class ShellAction(BaseModel):
    model_config = _STRICT
    type: Literal["shell"]
    command: str | list[str] = Field(
        description="A shell line, or an argv list run without a shell."
    )
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("command")
    @classmethod
    def _non_empty(cls, v: str | list[str]) -> str | list[str]:
        if not v or (isinstance(v, list) and not all(isinstance(a, str) for a in v)):
            raise ValueError("command must be a non-empty string or list of strings")
        return v


class HttpAction(BaseModel):
    model_config = _STRICT
    type: Literal["http"]
    url: str = Field(pattern=r"^https?://", max_length=4096)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | dict[str, Any] | list[Any] | None = None
    expect_status: list[int] | None = Field(
        default=None, description="Status codes that count as success; default any 2xx."
    )


class TaskAction(BaseModel):
    model_config = _STRICT
    type: Literal["task"]
    name: str = Field(min_length=1, max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)


class NoopAction(BaseModel):
    model_config = _STRICT
    type: Literal["noop"]
    sleep_s: float = Field(default=0.0, ge=0, le=86400)
    fail: bool = False


Action = Annotated[ShellAction | HttpAction | TaskAction | NoopAction, Field(discriminator="type")]


# --- policies -------------------------------------------------------------------------------


class RetryPolicy(BaseModel):
    model_config = _STRICT
    max_attempts: int = Field(default=1, ge=1, le=100)
    backoff_s: float = Field(default=1.0, ge=0, le=86400)
    backoff_max_s: float = Field(default=300.0, ge=0, le=604800)
    jitter: float = Field(default=0.2, ge=0, le=1, description="Fraction of the delay.")
    on: list[Literal["failed", "timed_out", "lost"]] = Field(
        default_factory=lambda: ["failed", "timed_out", "lost"]
    )

    def delay_before(self, next_attempt: int, rng: random.Random | None = None) -> float:
        """Exponential backoff with jitter before attempt `next_attempt` (2, 3, …)."""
        base = min(self.backoff_max_s, self.backoff_s * 2 ** max(0, next_attempt - 2))
        spread = base * self.jitter
        return max(0.0, base + (rng or random).uniform(-spread, spread))


class ConcurrencyPolicy(BaseModel):
    model_config = _STRICT
    max_running: int | None = Field(
        default=None, ge=1, le=100000, description="At most this many runs claimed at once."
    )


@lru_cache(maxsize=1024)
def _retry_policy(text: bytes) -> RetryPolicy:
    return RetryPolicy.model_validate_json(text)


def retry_policy(data: dict[str, Any]) -> RetryPolicy:
    """A job's stored retry policy, parsed once per distinct policy."""
    return _retry_policy(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))


def should_retry(policy: RetryPolicy, outcome: RunState, attempt: int) -> bool:
    return outcome.value in policy.on and attempt < policy.max_attempts


def merge_params(defaults: dict[str, Any] | None, given: dict[str, Any] | None) -> dict[str, Any]:
    return {**(defaults or {}), **(given or {})}


def clip_output(data: bytes, limit: int) -> bytes:
    """Keep the last `limit` bytes."""
    return data if len(data) <= limit else data[-limit:]


# --- who is asking -------------------------------------------------------------------------


class Principal(BaseModel):
    """An authenticated token: global admin, or roles per space."""

    model_config = ConfigDict(frozen=True)
    token_id: str
    name: str
    admin: bool = False
    roles: dict[str, Role] = Field(default_factory=dict)

    def can(self, space: str, role: Role) -> bool:
        if self.admin:
            return True
        held = self.roles.get(space)
        return held is not None and ROLE_RANK[held] >= ROLE_RANK[role]

    def visible_spaces(self) -> list[str] | None:
        """Spaces this principal may read; None means all (admin)."""
        return None if self.admin else sorted(self.roles)
