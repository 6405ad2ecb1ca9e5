"""The vocabulary: states, roles, policies and the rules between them. Pure, no I/O."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal, get_args

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gnomon import cron
from gnomon.vocabulary import (
    ACTIVE_STATES as ACTIVE_STATES,  # re-exported until every caller names the vocabulary
)
from gnomon.vocabulary import FINAL_STATES as FINAL_STATES
from gnomon.vocabulary import HELD_STATES as HELD_STATES
from gnomon.vocabulary import TRANSITIONS, WAITING_STATES, Retryable
from gnomon.vocabulary import RunState as RunState


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


SLURM_FLAG_RE = re.compile(r"^--[a-z][a-z-]*(=[^\s]*)?$")
# sbatch flags a job may add beyond the named options: none of them changes who runs the job,
# where its output goes or what runs.
SLURM_ALLOWED_FLAGS = frozenset(
    {
        "--account",
        "--qos",
        "--nodes",
        "--ntasks",
        "--ntasks-per-node",
        "--gres",
        "--constraint",
        "--exclusive",
        "--nice",
        "--comment",
        "--mem-per-cpu",
        "--reservation",
        "--requeue",
        "--no-requeue",
        "--hold",
    }
)


class SlurmOptions(BaseModel):
    """How a job is submitted with `sbatch`."""

    model_config = ConfigDict(extra="forbid")
    partition: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.,-]{1,64}$")
    time_limit: str | None = Field(
        default=None,
        pattern=r"^(\d+|\d+:\d{2}(:\d{2})?|\d+-\d+(:\d{2}(:\d{2})?)?)$",
        description="Slurm's --time: minutes, MM:SS, HH:MM:SS or D-HH[:MM[:SS]].",
    )
    cpus: int | None = Field(default=None, ge=1, le=4096)
    memory: str | None = Field(default=None, pattern=r"^\d+[KMGT]?$", description="--mem")
    job_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,100}$")
    extra: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="More sbatch flags, `--flag` or `--flag=value`, from an allow-list.",
    )

    @field_validator("extra")
    @classmethod
    def _allowed(cls, v: list[str]) -> list[str]:
        for flag in v:
            if not SLURM_FLAG_RE.match(flag) or flag.split("=", 1)[0] not in SLURM_ALLOWED_FLAGS:
                allowed = ", ".join(sorted(SLURM_ALLOWED_FLAGS))
                raise ValueError(f"sbatch flag {flag!r} is not allowed (allowed: {allowed})")
        return v

    def sbatch_flags(self) -> list[str]:
        flags = [f"--partition={self.partition}"] if self.partition else []
        if self.time_limit:
            flags.append(f"--time={self.time_limit}")
        if self.cpus:
            flags.append(f"--cpus-per-task={self.cpus}")
        if self.memory:
            flags.append(f"--mem={self.memory}")
        if self.job_name:
            flags.append(f"--job-name={self.job_name}")
        return flags + self.extra


# Environment variables that steer `sbatch` itself (its options, its configuration, the
# loader that starts it) rather than the job: a job's env may not set them on the slurm
# executor — the flag allow-list would mean nothing otherwise.
SLURM_ENV_PREFIXES = ("SBATCH_", "SLURM_", "SALLOC_", "SRUN_", "SPANK_", "LD_")


def slurm_env_refused(action: dict[str, Any]) -> str | None:
    """The first variable of a shell action's env or secrets that sbatch would obey."""
    names = [*(action.get("env") or {}), *(action.get("secrets") or {})]
    return next((n for n in names if n.upper().startswith(SLURM_ENV_PREFIXES)), None)


def slurm_safe_env(env: dict[str, str]) -> dict[str, str]:
    """`env` without the variables sbatch would obey."""
    return {k: v for k, v in env.items() if not k.upper().startswith(SLURM_ENV_PREFIXES)}


class CeleryOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    queue: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,200}$")


EXECUTOR_OPTIONS: dict[str, type[BaseModel]] = {"slurm": SlurmOptions, "celery": CeleryOptions}


def validate_executor_options(executor: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options of `executor`, checked and normalised; executors without options take none."""
    model = EXECUTOR_OPTIONS.get(executor)
    if model is None:
        if options:
            raise ValueError(f"executor '{executor}' takes no executor_options")
        return {}
    try:
        return model.model_validate(options).model_dump(exclude_defaults=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ValueError(f"{where}: {first['msg']}" if where else first["msg"]) from None


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
    secrets: dict[str, str] = Field(
        default_factory=dict,
        exclude_if=lambda v: not v,
        description="Environment variables set from secrets named in the server's settings "
        "(variable -> secret name); the values are never stored or placed in argv.",
    )
    argv_params: bool = Field(
        default=False,
        exclude_if=lambda v: not v,
        description="Replace `{name}` in the items of an argv command with the run's params.",
    )

    @field_validator("command")
    @classmethod
    def _non_empty(cls, v: str | list[str]) -> str | list[str]:
        if not v or (isinstance(v, list) and not all(isinstance(a, str) for a in v)):
            raise ValueError("command must be a non-empty string or list of strings")
        return v


ARGV_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render_argv(argv: list[str], params: dict[str, Any]) -> list[str]:
    """`{name}` in each item replaced by the param's text; a missing param is an error."""

    def one(m: re.Match[str]) -> str:
        if m.group(1) not in params:
            raise KeyError(f"param '{m.group(1)}'")
        value = params[m.group(1)]
        return value if isinstance(value, str) else orjson.dumps(value).decode()

    return [ARGV_PLACEHOLDER.sub(one, item) for item in argv]


def shell_command(action: dict[str, Any], params: dict[str, Any]) -> str | list[str]:
    """What a shell action runs: its command, with params placed into argv when it asks."""
    command = action["command"]
    if isinstance(command, list) and action.get("argv_params"):
        return render_argv(command, params)
    return command


def secret_env(action: dict[str, Any], secrets: dict[str, str]) -> dict[str, str]:
    """The environment a shell action's `secrets` ask for, from the server's named secrets."""
    wanted = action.get("secrets") or {}
    missing = sorted({name for name in wanted.values() if name not in secrets})
    if missing:
        raise KeyError(f"secret {', '.join(missing)} (not in the server's settings)")
    return {var: secrets[name] for var, name in wanted.items()}


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
    on: list[Retryable] = Field(default_factory=lambda: list(get_args(Retryable)))

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


# --- the run ledger's changes ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunChange:
    """One guarded change of one run, and the events it logs (the ledger applies it).

    - `path`: the states the run enters, in order, each logged as an event (a retry: the
      outcome at this attempt, then `queued` at the next); empty for a change of fields only.
    - `values`: the other columns to set.
    - `attempt`: apply only while the run is still at this attempt (an attempt settles itself
      and no other).
    - `within`: the states the run may be in when the change applies. By default, every state
      from which the state machine lets it enter `path[0]`; a narrower set must lie inside
      that one. A change without a path must name it.
    - `log`: with an empty path, log one event at the run's state (a new status is news).
    """

    run_id: str
    at: float  # the run's new `updated_at`: also tells which changes took
    path: tuple[RunState, ...] = ()
    values: dict[str, Any] = field(default_factory=dict)
    attempt: int | None = None
    within: tuple[RunState, ...] | None = None
    log: bool = False

    def __post_init__(self) -> None:
        for src, dst in zip(self.path, self.path[1:], strict=False):
            if not can_transition(src, dst):
                raise ValueError(f"a run cannot go from {src.value} to {dst.value}")
        if self.path:
            allowed = states_leading_to(self.path[0])
            if self.within is not None and not set(self.within) <= set(allowed):
                raise ValueError(f"{self.path[0].value} cannot be entered from {self.within}")
        elif self.within is None:
            raise ValueError("a change that enters no state must say which states it applies in")

    @property
    def from_states(self) -> tuple[RunState, ...]:
        if self.within is not None:
            return self.within
        return states_leading_to(self.path[0])

    def then(self, later: RunChange) -> RunChange:
        """This change followed by `later`, written as one (a start and an end that meet in
        one flush): the states and values of both, from this one's states."""
        within = self.within
        if not self.path and later.path:  # fields noted first: the later path decides too
            within = tuple(s for s in self.from_states if s in later.from_states)
        return RunChange(
            self.run_id,
            later.at,
            self.path + later.path,
            {**self.values, **later.values},
            self.attempt if self.attempt is not None else later.attempt,
            within,
            self.log or later.log,
        )

    def logged(self, state_now: str, attempt_now: int) -> list[tuple[str, int]]:
        """The (state, attempt) of each event, given the run's state and attempt after it:
        states entered after a final one (a retry's `queued`) are at the new attempt."""
        if not self.path:
            return [(state_now, attempt_now)] if self.log else []
        retry = next(
            (i for i, s in enumerate(self.path) if i and self.path[i - 1] in FINAL_STATES), None
        )
        if retry is None:
            return [(s.value, attempt_now) for s in self.path]
        return [(s.value, attempt_now - (i < retry)) for i, s in enumerate(self.path)]


def settle(
    run: dict[str, Any], outcome: RunState, policy: RetryPolicy, now: float, **values: Any
) -> RunChange:
    """The change that ends an attempt: final, or on to `queued` for the next attempt."""
    attempt = run["attempt"]
    if (
        outcome != RunState.cancelled
        and not run.get("cancel_requested")
        and should_retry(policy, outcome, attempt)
    ):
        nxt = attempt + 1
        values.update(
            attempt=nxt,
            not_before=now + policy.delay_before(nxt),
            worker_id=None,
            lease_expires_at=None,
            finished_at=None,
        )
        return RunChange(run["id"], now, (outcome, RunState.queued), values, attempt)
    values.update(finished_at=now, lease_expires_at=None)
    return RunChange(run["id"], now, (outcome,), values, attempt)


def cancel(
    run_id: str,
    now: float,
    message: str,
    *,
    within: tuple[RunState, ...] = WAITING_STATES,
    **values: Any,
) -> RunChange:
    """The change that cancels a run (by default only while no worker holds it)."""
    values.update(finished_at=now, message=message)
    return RunChange(run_id, now, (RunState.cancelled,), values, within=within)


def new_run(
    run_id: str,
    job: dict[str, Any],
    params: dict[str, Any] | None,
    now: float,
    *,
    not_before: float | None = None,
    schedule_id: str | None = None,
    scheduled_for: float | None = None,
    state: RunState = RunState.queued,
) -> dict[str, Any]:
    """A fresh run of `job` (attempt 1), as its row."""
    return {
        "id": run_id,
        "job_id": job["id"],
        "space": job["space"],
        "executor": job["executor"],
        "schedule_id": schedule_id,
        "scheduled_for": scheduled_for,
        "state": state.value,
        "status": None,
        "eta_s": None,
        "attempt": 1,
        "max_attempts": job["retry"]["max_attempts"],
        "params": merge_params(job["params"], params),
        "timeout_s": job["timeout_s"],
        "not_before": now if not_before is None else not_before,
        "exit_code": None,
        "message": None,
        "external_id": None,
        "output": "",
        "output_size": 0,
        "worker_id": None,
        "lease_expires_at": None,
        "cancel_requested": False,
        "created_at": now,
        "claimed_at": None,
        "started_at": None,
        "finished_at": None,
        "updated_at": now,
    }


# --- who is asking -------------------------------------------------------------------------


class Principal(BaseModel):
    """An authenticated caller: global admin, or roles per space.

    `token_id` names the caller: a token's id (a ULID), `jwt:<sub>` for an external JWT,
    or a face's own name; the three never collide. `site` is set for a site's own software
    on a face (known by the site's key, or by an open face): it holds no role and acts only
    on that face's jobs at that site. `jwt_roles` are the roles an external JWT's roles claim
    lists, as written (none for gnomon's own tokens): what a face shows as the user's roles.
    """

    model_config = ConfigDict(frozen=True)
    token_id: str
    name: str
    admin: bool = False
    roles: dict[str, Role] = Field(default_factory=dict)
    site: str | None = None
    jwt_roles: tuple[str, ...] = ()

    def can(self, space: str, role: Role) -> bool:
        if self.admin:
            return True
        held = self.roles.get(space)
        return held is not None and ROLE_RANK[held] >= ROLE_RANK[role]

    def visible_spaces(self) -> list[str] | None:
        """Spaces this principal may read; None means all (admin)."""
        return None if self.admin else sorted(self.roles)


# --- schedule slots -------------------------------------------------------------------------

CATCHUP_LIMIT = 1000  # most slots one schedule runs in one catch-up (catchup=all)
EPS = 1e-6


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def plan_slots(
    s: dict[str, Any],
    trig: cron.Trigger,
    now: float,
    horizon: float,
    grace: float,
    active: dict[str, int] | None,
    fires: list[dict[str, Any]],
) -> tuple[list[float], bool]:
    """Which slots of schedule `s` (its trigger `trig`) up to `horizon` run; the rest are
    recorded in `fires` (missed, coalesced, skipped). Returns (slots, held: the one slot's run
    waits as `pending` for the active run to end, overlap=buffer_one).

    Slots before `now` are due (catch-up rules apply); slots after it are created early.
    `active`: how many runs of the schedule are active and buffered.
    """
    first = s["next_fire_at"]
    cutoff = now - max(float(s["catchup_window_s"]), grace)
    if first < cutoff:
        _, n_older = cron.slots_between(trig, _utc(first), _utc(cutoff - EPS), 0)
        fires.append(slot_record(s["id"], first, cutoff, 1 + n_older, FireStatus.missed, now))
        later, _ = cron.slots_between(trig, _utc(cutoff - EPS), _utc(horizon), CATCHUP_LIMIT)
        candidates = [t.timestamp() for t in later]
    else:
        following = trig.next_after(_utc(first))  # cached per slot: shared by many
        if following is None or following.timestamp() > horizon:
            candidates = [first]  # the common case: exactly one slot
        else:
            later, _ = cron.slots_between(trig, _utc(first), _utc(horizon), CATCHUP_LIMIT)
            candidates = [first, *(t.timestamp() for t in later)]
    past = [t for t in candidates if t <= now]
    if s["catchup"] == Catchup.latest.value and len(past) > 1:
        fires.append(
            slot_record(s["id"], past[0], past[-2], len(past) - 1, FireStatus.coalesced, now)
        )
        past = past[-1:]
    recent = past + [t for t in candidates if t > now]
    if not recent:
        return [], False
    overlap = s["overlap"]
    busy = bool(active and active["active"])
    if busy and overlap == Overlap.skip.value:
        fires.append(
            slot_record(s["id"], recent[0], recent[-1], len(recent), FireStatus.skipped, now)
        )
        return [], False
    if busy and overlap == Overlap.buffer_one.value:
        if active and active["buffered"]:
            fires.append(
                slot_record(s["id"], recent[0], recent[-1], len(recent), FireStatus.skipped, now)
            )
            return [], False
        if len(recent) > 1:
            fires.append(
                slot_record(
                    s["id"], recent[0], recent[-2], len(recent) - 1, FireStatus.skipped, now
                )
            )
        return recent[-1:], True
    return recent, False


def slot_record(
    sid: str, first: float, until: float, count: int, status: FireStatus, now: float
) -> dict[str, Any]:
    """What is recorded of `count` slots from `first` to `until` that did not simply run."""
    return {
        "schedule_id": sid,
        "fire_at": first,
        "until_at": until,
        "count": count,
        "status": status.value,
        "recorded_at": now,
    }
