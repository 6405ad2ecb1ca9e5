"""One Settings object, read from `GNOMON_*` environment variables.

Nothing else reads os.environ."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
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
        description="Runs of schedules are created up to this long before their slot (not "
        "started before it), so a burst of slots is ready on time; with an overlap rule other "
        "than allow, only while no run of the schedule is active (else at the slot).",
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

    pcf_prefix: str = Field(
        default="/pcf",
        description="Where the Cloud Foundry scheduler face is served ('' for nowhere).",
    )
    pcf_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts (Host header) that get the Cloud Foundry scheduler face at '/'; "
        "comma-separated or a JSON list.",
    )

    # --- sites, external JWTs, the Photon Ranch face ---------------------------------------
    site_claim_wait_max_s: float = Field(
        default=60.0, description="The longest a site claim may long-poll."
    )
    jwt_public_key_file: Path | None = Field(
        default=None, description="PEM public key (or certificate) that signs external JWTs."
    )
    jwt_jwks_file: Path | None = Field(
        default=None, description="A JWKS document (JSON file) with the keys of external JWTs."
    )
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_algorithms: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["RS256", "ES256"]
    )
    jwt_roles_claim: str = Field(
        default="https://photonranch.org/user_roles",
        description="Claim holding the user's roles: a top-level name, else a dotted path.",
    )
    jwt_space: str = Field(default="default", description="Space the JWT roles apply to.")
    jwt_default_role: str = Field(
        default="developer",
        description="Role in jwt_space of a verified user whose claim names none ('' for none).",
    )
    jwt_admin_roles: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["admin"],
        description="Claimed roles that make the user a gnomon admin.",
    )
    photonranch_prefix: str = Field(
        default="/jobs", description="Where the Photon Ranch jobs face is served ('' for nowhere)."
    )
    photonranch_space: str = Field(default="default", description="Space of the face's jobs.")
    photonranch_open: bool = Field(
        default=True,
        description="Site routes of the face (getnewjobs, updatejobstatus, startjob, "
        "getrecentjobs, the event stream) work without a token, as in the original.",
    )
    photonranch_lease_s: float = Field(
        default=86400.0,
        description="How long a job taken through the face stays the site's without a status "
        "update (the original site software sends no heartbeats).",
    )

    # --- scale-out executors, job templates, the TSM face ---------------------------------
    slurm_enabled: bool = Field(default=False, description="Run jobs with executor 'slurm'.")
    slurm_conf: Path | None = Field(
        default=None, description="SLURM_CONF for the Slurm commands (unset: Slurm's default)."
    )
    slurm_bin_dir: Path | None = Field(
        default=None, description="Where sbatch, squeue, sacct and scancel are (unset: PATH)."
    )
    slurm_output_dir: Path | None = Field(
        default=None,
        description="Where job output files are written; a directory both gnomon and the "
        "compute nodes see (unset: <data dir>/slurm).",
    )
    slurm_poll_s: float = Field(default=0.5, gt=0, description="One squeue per this interval.")
    slurm_submit_parallel: int = Field(default=8, ge=1, le=256)
    celery_broker_url: str | None = Field(
        default=None, description="Run jobs with executor 'celery' through this broker."
    )
    celery_report_url: str | None = Field(
        default=None,
        description="The Redis where workers report beats and results (default: the broker "
        "URL when it is a Redis one).",
    )
    celery_queue: str = "gnomon"
    celery_prefetch: int = Field(default=4, ge=1, description="Messages a worker process holds.")
    celery_visibility_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="Redis broker: a message not acknowledged this long is delivered again "
        "(a delivery of a task already claimed is refused, so this only recovers messages a "
        "dead worker held).",
    )
    celery_poll_s: float = Field(default=0.2, gt=0)
    celery_lost_after_s: float = Field(
        default=15.0, gt=0, description="A running task whose worker is silent this long is lost."
    )
    templates_file: Path | None = Field(
        default=None, description="A TOML file of job templates (see examples/tsm)."
    )
    secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Named secrets (a JSON object) that templates and shell actions reference "
        "by name.",
    )
    tsm_prefix: str = Field(
        default="/tsm", description="Where the TSM batch face is served ('' for nowhere)."
    )
    tsm_space: str = Field(default="default", description="The space the TSM face works in.")

    @field_validator(
        "plan_schedule_dirs", "pcf_hosts", "jwt_algorithms", "jwt_admin_roles", mode="before"
    )
    @classmethod
    def _listed(cls, v: Any) -> Any:
        """A list from the environment: comma-separated, or a JSON list; blanks dropped."""
        if isinstance(v, str):
            text = v.strip()
            v = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(v, list):
            return [item for item in (str(x).strip() for x in v) if item]
        return v

    @field_validator("pcf_hosts")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        return [h.lower() for h in v]

    @field_validator("pcf_prefix", "photonranch_prefix", "tsm_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        """Where a face is served: a URL path, or '' for nowhere."""
        v = v.strip().rstrip("/")
        if v and (not v.startswith("/") or "//" in v or any(c in v for c in "?#% ")):
            raise ValueError("a URL path like '/pcf', or '' to switch the face off")
        return v

    @property
    def celery_report(self) -> str | None:
        if self.celery_report_url:
            return self.celery_report_url
        broker = self.celery_broker_url or ""
        return broker if broker.startswith(("redis://", "rediss://")) else None

    def secret_values(self) -> dict[str, str]:
        return {k: v.get_secret_value() for k, v in self.secrets.items()}

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
