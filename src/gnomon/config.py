"""One Settings object, read from `GNOMON_*` environment variables.

Nothing else reads os.environ."""

from __future__ import annotations

import ipaddress
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Outbound calls never reach these (unless a narrower GNOMON_OUTBOUND_ALLOW network opens one):
# link-local (169.254.169.254 is the metadata service of most clouds), other clouds' metadata
# and host addresses, "this host" (0.0.0.0 reaches loopback), multicast and broadcast.
OUTBOUND_DENY_DEFAULT = (
    "169.254.0.0/16",
    "fe80::/10",
    "100.100.100.200/32",
    "168.63.129.16/32",
    "fd00:ec2::254/128",
    "0.0.0.0/8",
    "::/128",
    "224.0.0.0/4",
    "ff00::/8",
    "255.255.255.255/32",
)


class NamedSecret(BaseModel):
    """A named secret: its value, and the spaces whose jobs may use it (None: every space)."""

    model_config = ConfigDict(extra="forbid")
    value: SecretStr
    spaces: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, v: Any) -> Any:
        """A plain string is a secret for every space."""
        return {"value": v} if isinstance(v, str) else v


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GNOMON_", extra="ignore")

    data_dir: Path = Path("gnomon-data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; SQLite in the data dir when unset."
    )
    database_wait_s: float = Field(
        default=60.0,
        ge=0,
        description="How long `serve` waits for a database server to answer before giving up.",
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

    # --- the local executor: who runs shell commands, where, with what -------------------
    local_spaces: Annotated[list[str] | None, NoDecode] = Field(
        default=None,
        description="Spaces whose jobs may use the local executor (shell commands and HTTP "
        "calls made by this server), comma-separated or a JSON list; unset: every space, '' "
        "for none. No-op jobs run nothing and are allowed everywhere.",
    )
    sandbox: Literal["auto", "bwrap", "none"] = Field(
        default="auto",
        description="How local shell commands are confined: 'bwrap' (bubblewrap: own pid and "
        "IPC namespaces, private /tmp, the data dir and other runs hidden; the server does not "
        "start without it), 'none', or 'auto' (bwrap when it is installed and works, else none "
        "with a warning in the log).",
    )
    run_user: str = Field(
        default="gnomon-run",
        description="When the server runs as root, the user (a name, or uid[:gid]) local shell "
        "commands run as; a missing name is made with useradd (falling back to nobody, with a "
        "warning, when that fails). '' runs them as root. Ignored when the server is not root.",
    )
    work_dir: Path | None = Field(
        default=None,
        description="Where each attempt of a local shell command gets its own working "
        "directory, removed when it ends (unset: a new directory in the system's temp dir).",
    )
    local_cwd_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Directories (with what is below them) a local shell job may name as its "
        "`cwd`, comma-separated or a JSON list; unset: none, every attempt runs in its own "
        "directory.",
    )
    local_env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment (a JSON object) every local shell command starts with, on top "
        "of PATH, HOME, LANG, USER, LOGNAME and SHELL; nothing else of the server's passes.",
    )
    sandbox_hide: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="More paths the bwrap sandbox hides (the data dir, the working "
        "directories, the secrets file and, for a server not run as root, its user's home "
        "are always hidden).",
    )

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
    token_cache_s: float = Field(
        default=1.0,
        ge=0,
        description="How long a process trusts what it read about a token. A revoked token (or "
        "changed roles) counts at once in the process that changed it, and within this long in "
        "other processes sharing the database; open event streams close within this plus 1 s.",
    )
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
        "getrecentjobs, the event stream) work without a token, as in the original. They "
        "reach only the face's own jobs.",
    )
    photonranch_require_site_key: bool = Field(
        default=False,
        description="Tokenless callers that take jobs or report (getnewjobs, updatejobstatus, "
        "startjob) must show the site's key (X-Site-Key header or ?key=); a site that has a "
        "key always requires it there.",
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
    secrets: dict[str, NamedSecret] = Field(
        default_factory=dict,
        description="Named secrets (a JSON object) that templates and shell actions reference "
        'by name: `{"name": "value"}` for every space, or `{"name": {"value": "...", '
        '"spaces": ["a", "b"]}}` for jobs of those spaces only. Prefer secrets_file.',
    )
    secrets_file: Path | None = Field(
        default=None,
        description="A JSON or TOML file of named secrets (the same form as `secrets`), read at "
        "start-up; it must not be readable by group or others (chmod 600). Its entries win "
        "over `secrets`.",
    )
    tsm_prefix: str = Field(
        default="/tsm", description="Where the TSM batch face is served ('' for nowhere)."
    )
    tsm_space: str = Field(default="default", description="The space the TSM face works in.")
    tsm_auth: bool = Field(
        default=False,
        description="Whether the TSM face needs a bearer token (the original API had none); "
        "with one, the token's roles apply instead of the face's developer role.",
    )

    # --- bounds on one request, stream or connection ----------------------------------------
    compute_workers: int = Field(
        default=2,
        ge=1,
        description="Threads for the CPU-heavy part of requests (backfill and next-slot "
        "enumeration, plan generation).",
    )
    compute_queue: int = Field(
        default=8,
        ge=0,
        description="Such requests that may wait for a thread; more at once get 503 with "
        "Retry-After.",
    )
    backfill_max_slots: int = Field(
        default=10_000, ge=1, description="Most slots one backfill request covers (else 422)."
    )
    plan_window_max_s: float = Field(
        default=7 * 86400.0,
        gt=0,
        description="Longest plan window (t1 - t0) of any policy, on every route and face.",
    )
    events_streams_max: int = Field(
        default=1000,
        ge=0,
        description="Event streams open at once in this process (else 503; 0: no limit).",
    )
    events_streams_per_client: int = Field(
        default=16,
        ge=0,
        description="Event streams open at once per token, or per client address for "
        "tokenless streams (else 429; 0: no limit).",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key that signs event-stream tickets; unset: a random key kept in "
        "<data dir>/secret.key (0600), made at first start. Servers sharing one database "
        "must share it.",
    )
    request_read_timeout_s: float = Field(
        default=20.0,
        gt=0,
        description="A request's line, headers and body must arrive within this long (from "
        "the connection's start, or the request's first byte); else 408 and the connection "
        "is closed.",
    )
    request_head_max_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest request line plus headers (else 431)."
    )
    keep_alive_s: float = Field(
        default=5.0, gt=0, description="An idle keep-alive connection is closed after this."
    )

    # --- outbound calls: http actions, Cloud Foundry calls ----------------------------------
    outbound_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Networks (CIDR, comma-separated or a JSON list) outbound calls may "
        "connect to; unset: any address not denied. An allowed network narrower than a "
        "denied one it lies in opens it (e.g. one link-local device).",
    )
    outbound_deny: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Networks outbound calls may not connect to, on top of those always "
        "denied (link-local and cloud metadata addresses, unspecified, multicast, broadcast).",
    )
    http_log_bytes: int = Field(
        default=4096,
        ge=0,
        le=1024 * 1024,
        description="How much of an outbound call's response body its run log keeps (after "
        "the status line; no headers).",
    )

    @field_validator(
        "plan_schedule_dirs",
        "pcf_hosts",
        "jwt_algorithms",
        "jwt_admin_roles",
        "local_spaces",
        "local_cwd_roots",
        "sandbox_hide",
        "outbound_allow",
        "outbound_deny",
        mode="before",
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

    @field_validator("outbound_allow", "outbound_deny")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        """CIDR networks, normalised (`10.1.2.3/8` is `10.0.0.0/8`; an address alone is /32)."""
        try:
            return [str(ipaddress.ip_network(n, strict=False)) for n in v]
        except ValueError as exc:
            raise ValueError(f"not a network: {exc}") from None

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

    @model_validator(mode="after")
    def _secrets_file(self) -> Settings:
        """Named secrets from `secrets_file`, over those of `secrets`."""
        if self.secrets_file is not None:
            self.secrets = {**self.secrets, **read_secrets_file(self.secrets_file)}
        return self

    def secret_values(self) -> dict[str, str]:
        """Every named secret's value, whatever spaces it is granted to."""
        return {k: v.value.get_secret_value() for k, v in self.secrets.items()}

    def secret_granted(self, name: str, space: str | None) -> bool:
        """Whether jobs of `space` may use the secret `name` (True for a secret not held here:
        whoever runs the job may hold it)."""
        secret = self.secrets.get(name)
        return secret is None or secret.spaces is None or space in secret.spaces

    def secrets_for(self, space: str | None) -> dict[str, str]:
        """The named secrets jobs of `space` may use, by name."""
        return {
            k: v.value.get_secret_value()
            for k, v in self.secrets.items()
            if v.spaces is None or space in v.spaces
        }

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


def read_secrets_file(path: Path) -> dict[str, NamedSecret]:
    """The named secrets in a JSON or TOML file that only its owner may read."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"secrets_file {path}: {exc.strerror or exc}") from None
    if mode & 0o077:
        raise ValueError(
            f"secrets_file {path} is readable by others (mode {mode & 0o777:o}): chmod 600 it"
        )
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"secrets_file {path}: not JSON or TOML ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"secrets_file {path}: not an object of named secrets")
    return {str(k): NamedSecret.model_validate(v) for k, v in data.items()}
