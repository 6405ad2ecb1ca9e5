"""What callers ask of plans — make one (`PlanSpec`), revise one (`PlanRevision`), dispatch one
(`DispatchSpec`) — validated; shared by the native API, the CLI and the schedule face. (The
service's other inputs are in `gnomon.specs`.)"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_STRICT = ConfigDict(extra="forbid")
_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def parse_when(value: Any) -> float:
    """ISO 8601 (`2022-01-01 12:00`, `2022-01-01T12:00:00Z`, offsets, date only) to Unix
    time; naive means UTC. ValueError otherwise."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        dt = datetime.fromisoformat(value.strip())
    else:
        raise ValueError("not an ISO 8601 time")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _when(v: Any) -> float:
    try:
        return parse_when(v)
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 time: {v!r}") from exc


class PlanSpec(BaseModel):
    model_config = _STRICT
    policy: str = Field(default="dummy", min_length=1, max_length=64)
    config: dict[str, Any] = Field(default_factory=dict)
    t0: float = Field(description="ISO 8601; naive means UTC.", json_schema_extra=_TIME)
    t1: float = Field(description="ISO 8601; naive means UTC.", json_schema_extra=_TIME)
    space: str | None = Field(default=None, max_length=64)

    @field_validator("t0", "t1", mode="before")
    @classmethod
    def _time(cls, v: Any) -> float:
        return _when(v)


class PlanRevision(BaseModel):
    """A new plan from an old one: `config` is a JSON merge patch on the old overrides
    (null removes a key); t0/t1 replace the window when given."""

    model_config = _STRICT
    config: dict[str, Any] = Field(default_factory=dict)
    t0: float | None = Field(default=None, json_schema_extra=_TIME)
    t1: float | None = Field(default=None, json_schema_extra=_TIME)

    @field_validator("t0", "t1", mode="before")
    @classmethod
    def _time(cls, v: Any) -> float | None:
        return None if v is None else _when(v)


class DispatchSpec(BaseModel):
    """Where a verified plan goes: a site queue (one `task` run per block) or an existing
    job (one run carrying the whole script)."""

    model_config = _STRICT
    site: str | None = Field(default=None, max_length=63)
    job: str | None = Field(default=None, max_length=200, description="Job id or name.")

    @model_validator(mode="after")
    def _one(self) -> DispatchSpec:
        if (self.site is None) == (self.job is None):
            raise ValueError("give exactly one of 'site' or 'job'")
        if self.site is not None and not SITE.match(self.site):
            raise ValueError("site: letters, digits, '_', '.', '-'")
        return self
