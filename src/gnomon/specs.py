"""Validated inputs the service accepts — shared by the API, the CLI and the compat faces."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gnomon import cron
from gnomon.domain import (
    Action,
    Catchup,
    ConcurrencyPolicy,
    Overlap,
    RetryPolicy,
    Role,
    validate_executor,
    validate_executor_options,
)
from gnomon.vocabulary import Reportable

_STRICT = ConfigDict(extra="forbid")
NAME = r"^[A-Za-z0-9][A-Za-z0-9 _.:@/-]*$"
SPACE = r"^[a-z0-9][a-z0-9_-]*$"


class JobSpec(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1, max_length=200, pattern=NAME)
    action: Action
    executor: str = "local"
    timeout_s: float | None = Field(default=None, gt=0, le=30 * 86400)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    concurrency: ConcurrencyPolicy = Field(default_factory=ConcurrencyPolicy)
    params: dict[str, Any] = Field(default_factory=dict)
    space: str | None = Field(default=None, max_length=64, pattern=SPACE)
    app: str | None = Field(
        default=None,
        validation_alias=AliasChoices("app_id", "app"),  # `app`: the old name
        max_length=36,
        description="Run in this app's context (its space, working directory, environment "
        "and executor).",
    )
    labels: dict[str, StrictStr | StrictInt | bool | None] = Field(
        default_factory=dict,
        max_length=32,
        description="Fields kept for clients; gnomon does not interpret them.",
    )
    executor_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Per executor: slurm {partition, time_limit, cpus, memory, job_name, "
        "extra}; celery {queue}.",
    )

    @field_validator("executor")
    @classmethod
    def _executor(cls, v: str) -> str:
        return validate_executor(v)

    @model_validator(mode="after")
    def _options(self) -> JobSpec:
        self.executor_options = validate_executor_options(self.executor, self.executor_options)
        return self


class AppSpec(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1, max_length=200, pattern=NAME)
    space: str | None = Field(default=None, max_length=64, pattern=SPACE)
    guid: UUID | None = Field(
        default=None,
        validation_alias=AliasChoices("id", "guid"),  # `guid`: the old name
        description="Keep this id (e.g. the platform's).",
    )
    cwd: str | None = Field(default=None, min_length=1, max_length=1000)
    env: dict[str, str] = Field(default_factory=dict)
    executor: str = "local"

    @field_validator("executor")
    @classmethod
    def _executor(cls, v: str) -> str:
        return validate_executor(v)


class JobPatch(BaseModel):
    model_config = _STRICT
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NAME)
    action: Action | None = None
    executor: str | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=30 * 86400)
    retry: RetryPolicy | None = None
    concurrency: ConcurrencyPolicy | None = None
    params: dict[str, Any] | None = None
    executor_options: dict[str, Any] | None = None

    @field_validator("executor")
    @classmethod
    def _executor(cls, v: str | None) -> str | None:
        return None if v is None else validate_executor(v)


class RunRequest(BaseModel):
    model_config = _STRICT
    params: dict[str, Any] | None = None
    at: AwareDatetime | None = Field(
        default=None, description="Run at this instant (RFC 3339 with an offset or Z)."
    )

    @field_validator("at")
    @classmethod
    def _in_range(cls, v: datetime | None) -> datetime | None:
        if v is not None:
            try:
                v.astimezone(UTC)
            except OverflowError:
                raise ValueError("at is outside the years 1 to 9999 in UTC") from None
        return v


class RunBatch(BaseModel):
    model_config = _STRICT
    job: str = Field(min_length=1, max_length=200)
    runs: list[RunRequest] = Field(min_length=1, max_length=100_000)


class ScheduleSpec(BaseModel):
    model_config = _STRICT
    cron: str | None = Field(default=None, max_length=200)
    every: StrictStr | StrictInt | None = None
    at: str | datetime | None = None
    timezone: str = Field(default="UTC", max_length=64)
    enabled: bool = True
    overlap: Overlap = Overlap.allow
    catchup_window_s: int | None = Field(default=None, ge=0, le=366 * 86400)
    catchup: Catchup = Catchup.latest
    jitter_s: float = Field(default=0.0, ge=0, le=86400)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleSpec:
        given = [k for k in ("cron", "every", "at") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of cron, every or at")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("cron", "every", "at") if getattr(self, k) is not None)


class BackfillSpec(BaseModel):
    """Slots of a schedule in [start, end) to run now (slots already run are left alone)."""

    model_config = _STRICT
    start: AwareDatetime = Field(description="First instant of the range (RFC 3339, inclusive).")
    end: AwareDatetime = Field(description="End of the range (RFC 3339, exclusive).")
    dry_run: bool = Field(default=False, description="List the slots; queue nothing.")

    @field_validator("start", "end")
    @classmethod
    def _in_range(cls, v: datetime, info: ValidationInfo) -> datetime:
        try:
            v = v.astimezone(UTC)
        except OverflowError:
            raise ValueError("outside the years 1 to 9999 in UTC") from None
        if v.year < 1970:
            raise ValueError("before 1970-01-01T00:00:00Z")
        start = info.data.get("start")
        if info.field_name == "end" and start is not None and v <= start:
            raise ValueError("end must be after start")
        return v


class SchedulePatch(BaseModel):
    model_config = _STRICT
    cron: str | None = Field(default=None, max_length=200)
    every: StrictStr | StrictInt | None = None
    at: str | datetime | None = None
    timezone: str | None = Field(default=None, max_length=64)
    enabled: bool | None = None
    overlap: Overlap | None = None
    catchup_window_s: int | None = Field(default=None, ge=0, le=366 * 86400)
    catchup: Catchup | None = None
    jitter_s: float | None = Field(default=None, ge=0, le=86400)
    params: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _at_most_one_trigger(self) -> SchedulePatch:
        if sum(getattr(self, k) is not None for k in ("cron", "every", "at")) > 1:
            raise ValueError("give at most one of cron, every or at")
        return self


class TokenSpec(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1, max_length=200)
    admin: bool = False
    roles: dict[str, Role] = Field(default_factory=dict, description="space → role")


class SpaceSpec(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1, max_length=64, pattern=SPACE)
    timezone: str = Field(default="UTC", max_length=64)
    guid: UUID | None = Field(default=None, description="Keep this id (e.g. the platform's).")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        cron.validate_timezone(v)
        return v


class MemberSpec(BaseModel):
    model_config = _STRICT
    role: Role


# --- sites ----------------------------------------------------------------------------------

SITE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"  # what `site:<name>` allows
AGENT = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,36}$"


class ClaimSpec(BaseModel):
    model_config = _STRICT
    max: int = Field(default=1, ge=1, le=1000, description="At most this many runs.")
    wait_s: float = Field(
        default=0.0, ge=0, le=3600, description="Long-poll up to this long when none is due."
    )
    agent: str = Field(
        default="agent",
        pattern=AGENT,
        description="Which agent of the token polls (shown in the site view).",
    )


class HeartbeatSpec(BaseModel):
    model_config = _STRICT
    agent: str = Field(default="agent", pattern=AGENT)


class ReportSpec(BaseModel):
    """What an agent reports about a run it holds. Without `state`: an `exit_code` ends the
    attempt (0 succeeded, else failed); anything else moves a claimed run to running."""

    model_config = _STRICT
    state: Reportable | None = None
    status: str | None = Field(default=None, max_length=200, description="The site's own word.")
    eta_s: float | None = Field(default=None, ge=-1, le=10**9, description="-1: unknown.")
    output: str | None = Field(default=None, max_length=1024 * 1024, description="Appended.")
    exit_code: StrictInt | None = Field(default=None, ge=-(2**31), lt=2**31)
    message: str | None = Field(default=None, max_length=10000)
    attempt: StrictInt | None = Field(
        default=None, ge=1, description="The attempt reported on; a later one refuses it (409)."
    )


class ReservationSpec(BaseModel):
    model_config = _STRICT
    # Named as the columns (`start_at`, `end_at`); `start` and `end` are the old names.
    start: AwareDatetime = Field(validation_alias=AliasChoices("start_at", "start"))
    end: AwareDatetime = Field(validation_alias=AliasChoices("end_at", "end"))
    space: str | None = Field(default=None, max_length=64, pattern=SPACE)
    owner: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Who holds it (a token id, or `jwt:<sub>` for an external JWT's "
        "subject); default the caller. Another owner needs the manager role.",
    )
    owner_name: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _window(self) -> ReservationSpec:
        try:
            start, end = self.start.timestamp(), self.end.timestamp()
        except (OverflowError, ValueError):
            raise ValueError("start and end must be real instants") from None
        if end <= start:
            raise ValueError("end must be after start")
        if end - start > 366 * 86400:
            raise ValueError("a reservation lasts at most 366 days")
        return self
