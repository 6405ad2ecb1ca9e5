"""One Settings object, read from `GNOMON_*` environment variables.

Nothing else reads os.environ."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GNOMON_", extra="ignore")

    data_dir: Path = Path("gnomon-data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; SQLite in the data dir when unset."
    )
    host: str = "127.0.0.1"
    port: int = 8080
    url: str | None = Field(default=None, description="Where the CLI finds the server.")
    token: str | None = Field(default=None, description="The CLI's token.")

    workers: int = Field(default=16, description="Shell commands run at once, locally.")
    max_inflight: int = Field(default=1024, description="Light attempts (noop, http) at once.")
    claim_batch: int = 1024
    lease_s: float = 30.0
    heartbeat_s: float = 10.0
    poll_s: float = Field(
        default=0.5,
        description="How often to look for work queued by other processes (local submissions "
        "wake the dispatcher at once).",
    )
    output_limit_kib: int = 1024
    output_flush_s: float = 0.25

    scheduler_batch: int = 5000
    scheduler_max_sleep_s: float = 1.0
    scheduler_lookahead_s: float = Field(
        default=2.0,
        description="Runs of overlap=allow schedules are created up to this long before their "
        "slot (not started before it), so a burst of slots is ready on time.",
    )
    catchup_grace_s: float = 1.0
    default_catchup_window_s: int = 60

    max_body_bytes: int = 1024 * 1024
    token_cache_s: float = 2.0
    metrics_public: bool = True
    sqlite_synchronous: str = "FULL"
    log_level: str = "info"

    schedule_api_auth: bool = Field(
        default=False,
        description="Whether POST /api/v1/schedule/ needs a bearer token (the original API "
        "had none).",
    )
    plan_schedule_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Directories master schedules may be read from by path in a plan's "
        "config (comma-separated or a JSON list); inline text and 'sample' always work.",
    )

    @field_validator("plan_schedule_dirs", mode="before")
    @classmethod
    def _dirs(cls, v: Any) -> Any:
        if isinstance(v, str):
            text = v.strip()
            v = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(v, list):
            return [Path(str(d).strip()) for d in v if str(d).strip()]
        return v

    pcf_prefix: str = Field(
        default="/pcf",
        description="Where the Cloud Foundry scheduler face is served ('' for nowhere).",
    )
    pcf_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts (Host header) that get the Cloud Foundry scheduler face at '/'; "
        "comma-separated or a JSON list.",
    )

    @field_validator("pcf_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if v and (not v.startswith("/") or "//" in v or any(c in v for c in "?#% ")):
            raise ValueError("a URL path like '/pcf', or '' to switch the face off")
        return v

    @field_validator("pcf_hosts", mode="before")
    @classmethod
    def _hosts(cls, v: Any) -> Any:
        if isinstance(v, str):
            text = v.strip()
            v = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(v, list):
            return [str(h).strip().lower() for h in v if str(h).strip()]
        return v

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            for plain, driver in (
                ("postgresql://", "postgresql+asyncpg://"),
                ("postgres://", "postgresql+asyncpg://"),
                ("sqlite://", "sqlite+aiosqlite://"),
            ):
                if url.startswith(plain):
                    return driver + url[len(plain) :]
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'gnomon.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def output_limit_bytes(self) -> int:
        return self.output_limit_kib * 1024
