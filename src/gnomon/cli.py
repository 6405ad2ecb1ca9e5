"""`gnomon …`: serve, migrate, and talk to a running server."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from gnomon.config import Settings
from gnomon.vocabulary import HELD_STATES

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from gnomon.client import Client, Job, Run, Schedule

app = typer.Typer(
    no_args_is_help=True,
    help="gnomon: a self-hosted scheduler.",
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens.")
job_app = typer.Typer(no_args_is_help=True, help="Jobs: what to run.")
schedule_app = typer.Typer(no_args_is_help=True, help="Schedules: when to run a job.")
app_app = typer.Typer(no_args_is_help=True, help="Apps: where a job's command runs.")
plan_app = typer.Typer(no_args_is_help=True, help="Plans: generated instrument schedules.")
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(job_app, name="job")
app.add_typer(schedule_app, name="schedule")
app.add_typer(app_app, name="app")
app.add_typer(plan_app, name="plan")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the raw JSON.")]
SpaceOpt = Annotated[str | None, typer.Option("--space", help="Space of the job when it is named.")]
ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", "-p", help="A parameter k=v (repeatable).")
]


# --- connection ---------------------------------------------------------------------------


@dataclass
class Target:
    """Where the CLI talks to: from --url/--token, else Settings, else the data dir."""

    url: str | None = None
    token: str | None = None
    token_file: Path | None = field(default=None, init=False)


@app.callback()
def _root(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", help="Server URL (GNOMON_URL; default http://HOST:PORT)."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="API token (GNOMON_TOKEN; default <data dir>/admin.token).",
            show_default=False,
        ),
    ] = None,
) -> None:
    ctx.obj = Target(url, token)


def _settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        _fail(f"invalid setting GNOMON_{where.upper()}: {first.get('msg')}", 2)


def _resolve(target: Target) -> tuple[str, str | None]:
    """The server URL and token, discovered as DESIGN.md describes for a local install."""
    settings = _settings()
    url = target.url or settings.url
    if not url:
        host = settings.host
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        url = (
            f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"
        )
    elif "://" not in url:
        url = f"http://{url}"
    token = target.token or settings.token
    if not token:
        target.token_file = settings.data_dir / "admin.token"
        try:
            token = target.token_file.read_text().strip() or None
        except OSError:
            token = None
    return url, token


@contextmanager
def connect(ctx: typer.Context) -> Iterator[Client]:
    """A client for the target server; client errors become one line on stderr and an exit."""
    from gnomon.client import ApiError, Client, ClientError, Unreachable

    target: Target = ctx.obj or Target()
    url, token = _resolve(target)
    client = Client(url, token)
    try:
        yield client
    except Unreachable as exc:
        _fail(str(exc), 2)
    except ApiError as exc:
        message = exc.message
        if exc.status == 401 and not token:
            message += (
                f"; no token found (looked for {target.token_file}): "
                "pass --token or set GNOMON_TOKEN"
            )
        _fail(f"error: {message}", 1)
    except ClientError as exc:
        _fail(f"error: {exc}", 1)
    finally:
        client.close()


# --- small helpers ------------------------------------------------------------------------


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _note(message: str) -> None:
    typer.echo(message, err=True)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _pairs(values: list[str] | None, option: str, sep: str = "=") -> dict[str, str]:
    """`K=V` strings to a dict; a usage error names the option."""
    out: dict[str, str] = {}
    for item in values or []:
        key, found, value = item.partition(sep)
        if not found or not key.strip():
            raise typer.BadParameter(f"{option} expects KEY{sep}VALUE, got {item!r}")
        out[key.strip()] = value
    return out


def _headers(values: list[str] | None) -> dict[str, str]:
    """`K=V` or `K: V` header strings to a dict."""
    out: dict[str, str] = {}
    for item in values or []:
        eq, colon = item.find("="), item.find(":")
        sep = ":" if colon != -1 and (eq == -1 or colon < eq) else "="
        out.update({k: v.strip() for k, v in _pairs([item], "--header", sep).items()})
    return out


def _when(text: str, zone: str | None = None) -> str:
    """A time for the API: 'now', '+30s'/'in 5m' (relative), or ISO 8601. A time without an
    offset is taken in `zone`, or in this machine's local zone."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from gnomon.cron import TriggerError, parse_interval

    s = text.strip()
    if s.lower() == "now":
        return _iso(datetime.now(UTC))
    rel = s[1:] if s.startswith("+") else s[3:] if s.lower().startswith("in ") else None
    if rel is not None:
        try:
            return _iso(datetime.now(UTC) + timedelta(seconds=parse_interval(rel.strip())))
        except TriggerError as exc:
            raise typer.BadParameter(f"--at: {exc}") from exc
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(
            f"--at: cannot read {text!r}: give 'now', '+10m', or a time like "
            "'2026-03-29T02:30:00Z' or '2026-03-29 09:00'"
        ) from exc
    if dt.tzinfo is None:
        try:
            dt = dt.replace(tzinfo=ZoneInfo(zone)) if zone else dt.astimezone()
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise typer.BadParameter(f"--timezone: unknown time zone {zone!r}") from exc
    return _iso(dt)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")) if iso else None


def _ts(iso: str | None) -> str:
    """An API time shown to the second, in UTC."""
    dt = _parse(iso)
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if dt else "-"


def _in_zone(iso: str | None, zone: str) -> str:
    from zoneinfo import ZoneInfo

    dt = _parse(iso)
    if dt is None:
        return "-"
    try:
        return dt.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")
    except (KeyError, ValueError):
        return _ts(iso)


def _seconds(s: float) -> str:
    if s < 10:
        return f"{s:.1f}s"
    s = round(s)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _duration(run: Run) -> str:
    start = _parse(run.get("started_at"))
    if start is None:
        return "-"
    end = _parse(run.get("finished_at")) or datetime.now(UTC)
    return _seconds(max(0.0, (end - start).total_seconds()))


def _action(action: dict[str, Any]) -> str:
    kind = action.get("type")
    if kind == "shell":
        cmd = action.get("command")
        return "$ " + (shlex.join(cmd) if isinstance(cmd, list) else str(cmd))
    if kind == "http":
        return f"{action.get('method', 'POST')} {action.get('url')}"
    if kind == "task":
        return f"task {action.get('name')}"
    return str(kind)


def _trigger(s: Schedule) -> str:
    if s["kind"] == "cron":
        return f"cron {s['cron']}"
    if s["kind"] == "every":
        return f"every {_seconds(float(str(s['every']).rstrip('s')))}"
    return f"at {_ts(s['at'])}"


def _console() -> Console:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 160)
    return console


def _table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", header_style="bold")
    for name in columns:
        table.add_column(name, no_wrap=name in ("id", "run", "job id"))
    for row in rows:
        table.add_row(*(Text("-" if v is None else str(v)) for v in row))
    return table


class JobNames:
    """Job id → name, fetched once per id."""

    def __init__(self, client: Client, known: list[Job] | None = None):
        self.client = client
        self.names = {j["id"]: j["name"] for j in known or []}

    def prefetch(self, ids: set[str]) -> None:
        missing = ids - set(self.names)
        if len(missing) > 20:
            self.names.update({j["id"]: j["name"] for j in self.client.list_jobs()})

    def __call__(self, job_id: str) -> str:
        from gnomon.client import ApiError

        if job_id not in self.names:
            try:
                self.names[job_id] = self.client.get_job(job_id)["name"]
            except ApiError:
                self.names[job_id] = job_id
        return self.names[job_id]


def _runs_table(title: str | None, runs: list[Run], names: JobNames) -> Table:
    names.prefetch({r["job_id"] for r in runs})
    rows = [
        [
            r["id"],
            names(r["job_id"]),
            r["state"],
            f"{r['attempt']}/{r['max_attempts']}",
            r.get("exit_code"),
            _ts(r.get("created_at")),
            _duration(r),
        ]
        for r in runs
    ]
    return _table(title, ["id", "job", "state", "attempt", "exit", "created", "duration"], rows)


def _schedules_table(title: str | None, items: list[Schedule], names: JobNames) -> Table:
    rows = [
        [
            s["id"],
            names(s["job_id"]),
            _trigger(s),
            s["timezone"],
            "yes" if s["enabled"] else "no",
            s["overlap"],
            _in_zone(s["next_fire_at"], s["timezone"]),
            _ts(s["last_fire_at"]),
        ]
        for s in items
    ]
    columns = ["id", "job", "trigger", "timezone", "enabled", "overlap", "next", "last"]
    return _table(title, columns, rows)


# --- serve / db ---------------------------------------------------------------------------


# How `gnomon serve` runs uvicorn (the benchmarks' baseline uses the same).
SERVE_OPTIONS: dict[str, Any] = {
    "log_level": "warning",
    "loop": "uvloop",
    "http": "httptools",
    "lifespan": "on",
    "access_log": False,
    "proxy_headers": False,  # gnomon does not use the client's address
    "timeout_graceful_shutdown": 10,
}


def _unwritable(directory: Path) -> str | None:
    """Why the server could not keep its data in `directory`, if it could not."""
    import tempfile

    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


DATABASE_UNREACHABLE = 69  # EX_UNAVAILABLE: `serve` exits so when the database never answered


async def _database_answers(url: str, wait_s: float) -> str | None:
    """Wait up to `wait_s` for the database server at `url` to answer; why not, if it never did."""
    import time

    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, poolclass=sa.pool.NullPool)
    deadline = time.monotonic() + wait_s
    delay = 0.25
    try:
        while True:
            try:
                async with asyncio.timeout(max(1.0, min(5.0, wait_s))):
                    async with engine.connect() as conn:
                        await conn.execute(sa.text("SELECT 1"))
                return None
            except Exception as exc:
                cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if time.monotonic() + delay > deadline:
                return cause
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    finally:
        await engine.dispose()


def _wait_for_database(settings: Settings) -> None:
    """A database server may still be starting (a compose stack): wait, boundedly, for it."""
    if settings.is_sqlite:
        return
    import sqlalchemy as sa

    url = sa.engine.make_url(settings.resolved_database_url)
    where = f"{url.host or 'localhost'}:{url.port or 'default port'}/{url.database or ''}"
    cause = asyncio.run(_database_answers(settings.resolved_database_url, settings.database_wait_s))
    if cause is not None:
        _fail(
            f"gnomon: the database at {where} did not answer within "
            f"{settings.database_wait_s:g} s (GNOMON_DATABASE_WAIT_S): {cause}",
            DATABASE_UNREACHABLE,
        )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (./gnomon-data).")] = None,
) -> None:
    """Run API, scheduler, dispatcher and local executor in one process."""
    import uvicorn

    from gnomon.api.app import asgi_app
    from gnomon.api.protocol import guarded_http
    from gnomon.logging import configure

    overrides = {
        k: v for k, v in {"host": host, "port": port, "data_dir": data_dir}.items() if v is not None
    }
    os.umask(0o077)  # what the server makes (database, keys, output) is its user's alone
    settings = Settings(**overrides)
    configure(settings.log_level)
    if problem := _unwritable(settings.data_dir):
        _fail(f"gnomon: cannot use the data directory {settings.data_dir}: {problem}")
    _wait_for_database(settings)
    print(
        f"gnomon: serving on http://{settings.host}:{settings.port} "
        f"({'SQLite in ' + str(settings.data_dir) if settings.is_sqlite else 'PostgreSQL'})",
        flush=True,
    )
    options = {
        **SERVE_OPTIONS,
        "http": guarded_http(settings.request_read_timeout_s, settings.request_head_max_bytes),
        "timeout_keep_alive": settings.keep_alive_s,
    }
    uvicorn.run(asgi_app(settings), host=settings.host, port=settings.port, **options)


@app.command()
def agent(
    ctx: typer.Context,
    site: Annotated[str, typer.Option("--site", help="The site whose queue to drain.")],
    handlers: Annotated[
        str, typer.Option("--handlers", help="module:object with the task handlers.")
    ],
    name: Annotated[str, typer.Option("--name", help="This agent's name at the site.")] = "agent",
    url: Annotated[str | None, typer.Option("--url", help="Server URL.")] = None,
    token: Annotated[str | None, typer.Option("--token", help="API token.")] = None,
    wait_s: Annotated[float, typer.Option("--wait-s", help="Long-poll this long.")] = 20.0,
    state_file: Annotated[
        Path | None,
        typer.Option("--state-file", help="Remember runs started here across agent restarts."),
    ] = None,
) -> None:
    """Run a site agent: poll the site's queue, run handlers, report back (outbound only)."""
    import logging
    import sys

    from gnomon.agent import Agent, load_handlers

    target: Target = ctx.obj or Target()
    found_url, found_token = _resolve(Target(url or target.url, token or target.token))
    if "" not in sys.path:
        sys.path.insert(0, "")  # handlers may live beside where the agent starts
    try:
        lookup = load_handlers(handlers)
    except (ImportError, AttributeError, ValueError) as exc:
        _fail(f"--handlers: {exc}", 2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    runner = Agent(
        found_url, found_token, site, lookup, name=name, wait_s=wait_s, state_file=state_file
    )
    try:
        runner.run_forever()
    except KeyboardInterrupt:
        runner.stop()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (idempotent)."""
    from gnomon.store.db import Database

    settings = Settings()
    db = Database(settings.resolved_database_url)
    asyncio.run(db.upgrade())
    typer.echo(f"schema at {db.head_revision()}")


def _sqlite_file(settings: Settings, what: str) -> Path:
    from gnomon.store.db import Database

    path = Database(settings.resolved_database_url).sqlite_path
    if path is None:
        _fail(
            f"gnomon {what} copies a SQLite database; back up PostgreSQL with pg_dump "
            "(see the README)",
            2,
        )
    return path


@app.command()
def backup(
    path: Annotated[Path, typer.Argument(help="Where to write the copy.")],
) -> None:
    """Copy the SQLite database to PATH, consistently, while the server keeps running."""
    from gnomon.store import backup as store

    db = _sqlite_file(_settings(), "backup")
    try:
        revision = store.backup(db, path)
    except (OSError, store.NotABackup) as exc:
        _fail(f"gnomon backup: {exc}")
    typer.echo(f"backed up {db} to {path} (schema {revision})")


@app.command()
def restore(
    path: Annotated[Path, typer.Argument(help="A copy made by `gnomon backup`.")],
) -> None:
    """Put a backup in place of the SQLite database (refused while a server uses it)."""
    from gnomon.store import backup as store

    db = _sqlite_file(_settings(), "restore")
    try:
        revision = store.restore(path, db)
    except (OSError, store.NotABackup, store.ServerRunning) as exc:
        _fail(f"gnomon restore: {exc}")
    typer.echo(f"restored {path} to {db} (schema {revision}; the server upgrades it on start)")


# --- tokens -------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name to recognise the token by.")],
    admin: Annotated[bool, typer.Option("--admin", help="Global administrator.")] = False,
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help="SPACE=ROLE (viewer, developer, manager); repeatable."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token. Its secret is printed once, on stdout; keep it."""
    roles = _pairs(role, "--role")
    with connect(ctx) as client:
        tok = client.create_token(name, admin=admin, roles=roles)
    if as_json:
        _print_json(tok)
        return
    grants = "admin" if tok["admin"] else ", ".join(f"{s}={r}" for s, r in tok["roles"].items())
    _note(f"created token {tok['id']} '{tok['name']}' ({grants or 'no roles'})")
    _note("its secret, shown only this once:")
    typer.echo(tok["token"])


# --- jobs ---------------------------------------------------------------------------------


@job_app.command("create")
def job_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Job name, unique in its space.")],
    shell: Annotated[str | None, typer.Option("--shell", help="Run a shell command.")] = None,
    http: Annotated[str | None, typer.Option("--http", help="Call this URL.")] = None,
    noop: Annotated[bool, typer.Option("--noop", help="Do nothing (for tests).")] = False,
    method: Annotated[str | None, typer.Option("--method", help="HTTP method (POST).")] = None,
    header: Annotated[
        list[str] | None, typer.Option("--header", "-H", help="HTTP header K=V (repeatable).")
    ] = None,
    body: Annotated[str | None, typer.Option("--body", help="HTTP request body.")] = None,
    executor: Annotated[str, typer.Option("--executor", help="Who runs it.")] = "local",
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds before a run times out.")
    ] = None,
    retries: Annotated[int, typer.Option("--retries", help="Retries after a failure.")] = 0,
    backoff: Annotated[
        float | None, typer.Option("--backoff", help="Seconds before the first retry.")
    ] = None,
    param: ParamOpt = None,
    space: Annotated[str | None, typer.Option("--space", help="Space (default).")] = None,
    cwd: Annotated[str | None, typer.Option("--cwd", help="Working directory (shell).")] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", "-e", help="Environment K=V (shell).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Define a job: exactly one of --shell, --http or --noop."""
    if sum((shell is not None, http is not None, noop)) != 1:
        raise typer.BadParameter("give exactly one of --shell, --http or --noop")
    if shell is None and (cwd or env):
        raise typer.BadParameter("--cwd and --env apply to --shell jobs only")
    if http is None and (method or header or body is not None):
        raise typer.BadParameter("--method, --header and --body apply to --http jobs only")
    action: dict[str, Any]
    if shell is not None:
        action = {"type": "shell", "command": shell, "env": _pairs(env, "--env")}
        if cwd:
            action["cwd"] = cwd
    elif http is not None:
        action = {"type": "http", "url": http, "headers": _headers(header)}
        if method:
            action["method"] = method.upper()
        if body is not None:
            action["body"] = body
    else:
        action = {"type": "noop"}
    spec: dict[str, Any] = {
        "name": name,
        "action": action,
        "executor": executor,
        "params": _pairs(param, "--param"),
    }
    if timeout is not None:
        spec["timeout_s"] = timeout
    if retries < 0:
        raise typer.BadParameter("--retries must be 0 or more")
    if retries or backoff is not None:
        spec["retry"] = {"max_attempts": retries + 1}
        if backoff is not None:
            spec["retry"]["backoff_s"] = backoff
    if space:
        spec["space"] = space
    with connect(ctx) as client:
        job = client.create_job(spec)
    if as_json:
        _print_json(job)
    else:
        typer.echo(f"created job {job['name']} ({job['id']}) in space {job['space']}")


@job_app.command("list")
def job_list(
    ctx: typer.Context,
    space: Annotated[str | None, typer.Option("--space", help="Only this space.")] = None,
    search: Annotated[str | None, typer.Option("--search", help="Names containing this.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List jobs."""
    with connect(ctx) as client:
        jobs = client.list_jobs(space=space, search=search)
    if as_json:
        _print_json(jobs)
        return
    rows = [
        [j["id"], j["name"], j["space"], j["executor"], _action(j["action"]), _ts(j["created_at"])]
        for j in jobs
    ]
    _console().print(_table(None, ["id", "name", "space", "executor", "action", "created"], rows))


@job_app.command("show")
def job_show(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(help="Job id or name.")],
    space: SpaceOpt = None,
    runs: Annotated[int, typer.Option("--runs", help="How many recent runs to show.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """A job's definition, schedules and recent runs."""
    with connect(ctx) as client:
        found = client.find_job(job, space)
        schedules = client.job_schedules(found["id"])
        recent = client.list_runs(job=found["id"], limit=runs) if runs > 0 else []
        if as_json:
            _print_json({"job": found, "schedules": schedules, "runs": recent})
            return
        from rich.table import Table
        from rich.text import Text

        retry = found["retry"]
        facts: list[tuple[str, Any]] = [
            ("id", found["id"]),
            ("name", found["name"]),
            ("space", found["space"]),
            ("executor", found["executor"]),
            ("action", _action(found["action"])),
        ]
        action = found["action"]
        if action.get("cwd"):
            facts.append(("cwd", action["cwd"]))
        for key in ("env", "headers"):
            if action.get(key):
                facts.append((key, " ".join(f"{k}={v}" for k, v in action[key].items())))
        if action.get("body") is not None:
            facts.append(("body", json.dumps(action["body"])))
        facts += [
            ("timeout", f"{found['timeout_s']:g}s" if found["timeout_s"] else "none"),
            (
                "retry",
                f"{retry.get('max_attempts', 1)} attempts, backoff {retry.get('backoff_s')}s"
                if retry.get("max_attempts", 1) > 1
                else "no retries",
            ),
            ("params", json.dumps(found["params"]) if found["params"] else "-"),
            ("created", _ts(found["created_at"])),
            ("updated", _ts(found["updated_at"])),
        ]
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        for key, value in facts:
            grid.add_row(key, Text(str(value)))
        console = _console()
        console.print(grid)
        names = JobNames(client, [found])
        console.print()
        if schedules:
            console.print(_schedules_table("Schedules", schedules, names))
        else:
            console.print("Schedules: none")
        console.print()
        if recent:
            console.print(_runs_table("Last runs", recent, names))
        else:
            console.print("Last runs: none")


# --- runs ---------------------------------------------------------------------------------


def _finish(client: Client, run_id: str, run: Run | None = None) -> NoReturn:
    """Wait for the run to end, say how it ended (stderr) and exit with its code."""
    from gnomon.client import FINAL_STATES, exit_code_of

    try:
        if run is None or run["state"] not in FINAL_STATES:
            run = client.wait_run(run_id)
    except KeyboardInterrupt:
        _fail(f"\nstopped waiting; run {run_id} goes on (stop it: gnomon cancel {run_id})", 130)
    code = exit_code_of(run)
    detail = f"exit {run['exit_code']}" if run.get("exit_code") is not None else run.get("message")
    _note(
        f"run {run_id} {run['state']}"
        + (f" ({detail})" if detail else "")
        + (f" after {_duration(run)}" if run.get("started_at") else "")
    )
    raise typer.Exit(code)


def _stream(client: Client, run_id: str) -> None:
    """Copy the run's log to stdout as it arrives, until the run ends."""
    out = sys.stdout.buffer
    try:
        for chunk in client.follow_log(run_id):
            out.write(chunk)
            out.flush()
    except KeyboardInterrupt:
        _fail(f"\nstopped following; run {run_id} goes on (stop it: gnomon cancel {run_id})", 130)


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(help="Job id or name.")],
    param: ParamOpt = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="When: 'now', '+10m', or ISO 8601 (local time without an offset)."
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="Wait for the end; exit with its code.")
    ] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Stream the output; exit with its code.")
    ] = False,
    space: SpaceOpt = None,
) -> None:
    """Run a job now (or --at a time) and print the run id.

    With --wait or --follow, exit with the run's exit code:
    1 for a failure without one, 124 for a timeout, 130 for a cancel.
    --follow streams the output to stdout and prints the run id on stderr.
    """
    params = _pairs(param, "--param")
    when = _when(at) if at else None
    with connect(ctx) as client:
        found = client.find_job(job, space)
        run = client.submit_run(found["id"], params=params, at=when)
        if follow:
            _note(f"run {run['id']} of {found['name']}")
        else:
            typer.echo(run["id"])
        if when:
            _note(f"run {run['id']} starts at {_ts(run.get('not_before'))} or later")
        if follow:
            _stream(client, run["id"])
            _finish(client, run["id"])
        if wait:
            _finish(client, run["id"])


@app.command("runs")
def runs_cmd(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Option("--job", help="Only runs of this job.")] = None,
    state: Annotated[
        str | None, typer.Option("--state", help="Only these states (comma-separated).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.", min=1)] = 20,
    space: SpaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recent runs, newest first."""
    with connect(ctx) as client:
        found = client.find_job(job, space) if job else None
        items = client.list_runs(
            job=found["id"] if found else None,
            state=state,
            space=space if not found else None,
            limit=limit,
        )
        if as_json:
            _print_json(items)
            return
        table = _runs_table(None, items, JobNames(client, [found] if found else None))
    _console().print(table)


@app.command("cancel")
def cancel_cmd(ctx: typer.Context, run_id: Annotated[str, typer.Argument(help="Run id.")]) -> None:
    """Cancel a run: queued runs end at once, running ones are stopped."""
    with connect(ctx) as client:
        run = client.cancel_run(run_id)
    typer.echo(
        f"run {run['id']}: {run['state']}" + (" (stopping)" if run["state"] in HELD_STATES else "")
    )


@app.command("log")
def log_cmd(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep streaming until the run ends.")
    ] = False,
) -> None:
    """A run's output (the last part kept by the server)."""
    with connect(ctx) as client:
        if follow:
            _stream(client, run_id)
        else:
            sys.stdout.write(client.log(run_id))
            sys.stdout.flush()


# --- apps ---------------------------------------------------------------------------------


@app_app.command("create")
def app_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="App name, unique in its space.")],
    space: Annotated[str | None, typer.Option("--space", help="Space (default).")] = None,
    app_id: Annotated[
        str | None,
        typer.Option("--id", "--guid", help="Keep this UUID (e.g. the platform's app guid)."),
    ] = None,
    cwd: Annotated[str | None, typer.Option("--cwd", help="Working directory.")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="K=V (repeatable).")] = None,
    executor: Annotated[str, typer.Option("--executor", help="Who runs its jobs.")] = "local",
    as_json: JsonOpt = False,
) -> None:
    """Register an app: the context (directory, environment, executor) its jobs run in."""
    spec: dict[str, Any] = {"name": name, "env": _pairs(env, "--env"), "executor": executor}
    for key, value in (("space", space), ("id", app_id), ("cwd", cwd)):
        if value:
            spec[key] = value
    with connect(ctx) as client:
        made = client.create_app(spec)
    if as_json:
        _print_json(made)
    else:
        typer.echo(f"created app {made['name']} ({made['id']}) in space {made['space']}")


@app_app.command("list")
def app_list(
    ctx: typer.Context,
    space: Annotated[str | None, typer.Option("--space", help="Only this space.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List apps."""
    with connect(ctx) as client:
        apps = client.list_apps(space=space)
    if as_json:
        _print_json(apps)
        return
    rows = [
        [a["id"], a["name"], a["space"], a["executor"], a["cwd"] or "-", _ts(a["created_at"])]
        for a in apps
    ]
    _console().print(_table(None, ["id", "name", "space", "executor", "cwd", "created"], rows))


# --- schedules ----------------------------------------------------------------------------


@schedule_app.command("create")
def schedule_create(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(help="Job id or name.")],
    cron: Annotated[str | None, typer.Option("--cron", help="Cron expression.")] = None,
    every: Annotated[str | None, typer.Option("--every", help="Interval: 30s, 5m, 1h.")] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Once: ISO 8601 (in --timezone without offset).")
    ] = None,
    timezone: Annotated[str, typer.Option("--timezone", "--tz", help="IANA zone.")] = "UTC",
    overlap: Annotated[
        str | None,
        typer.Option("--overlap", help="allow, skip, buffer_one or cancel_other."),
    ] = None,
    catchup_window: Annotated[
        int | None, typer.Option("--catchup-window", help="Seconds of missed slots to run.")
    ] = None,
    catchup: Annotated[
        str | None, typer.Option("--catchup", help="latest or all missed slots.")
    ] = None,
    jitter: Annotated[float | None, typer.Option("--jitter", help="Random delay, s.")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it paused.")] = False,
    param: ParamOpt = None,
    space: SpaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a schedule for a job: exactly one of --cron, --every or --at."""
    if sum(v is not None for v in (cron, every, at)) != 1:
        raise typer.BadParameter("give exactly one of --cron, --every or --at")
    spec: dict[str, Any] = {"timezone": timezone, "enabled": not disabled}
    if cron is not None:
        spec["cron"] = cron
    elif every is not None:
        spec["every"] = every
    else:
        spec["at"] = _when(str(at), timezone)
    for key, value in (
        ("overlap", overlap),
        ("catchup_window_s", catchup_window),
        ("catchup", catchup),
        ("jitter_s", jitter),
    ):
        if value is not None:
            spec[key] = value
    if param:
        spec["params"] = _pairs(param, "--param")
    with connect(ctx) as client:
        found = client.find_job(job, space)
        sched = client.create_schedule(found["id"], spec)
    if as_json:
        _print_json(sched)
        return
    nxt = sched["next_fire_at"]
    when = f"next {_in_zone(nxt, sched['timezone'])} ({_ts(nxt)})" if nxt else "no next time"
    state = "" if sched["enabled"] else ", disabled"
    typer.echo(
        f"created schedule {sched['id']} for {found['name']}: {_trigger(sched)} "
        f"[{sched['timezone']}{state}]; {when}"
    )


# The old name, still accepted (every other group says `create`).
schedule_app.command("add", hidden=True)(schedule_create)


@schedule_app.command("list")
def schedule_list(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Option("--job", help="Only this job's schedules.")] = None,
    space: SpaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List schedules."""
    with connect(ctx) as client:
        found = client.find_job(job, space) if job else None
        items = client.job_schedules(found["id"]) if found else client.list_schedules(space=space)
        if as_json:
            _print_json(items)
            return
        table = _schedules_table(None, items, JobNames(client, [found] if found else None))
    _console().print(table)


@schedule_app.command("next")
def schedule_next(
    ctx: typer.Context,
    schedule_id: Annotated[str, typer.Argument(help="Schedule id.")],
    n: Annotated[int, typer.Option("-n", "--count", help="How many.", min=1, max=1000)] = 10,
    as_json: JsonOpt = False,
) -> None:
    """The next fire times, in the schedule's zone and in UTC."""
    with connect(ctx) as client:
        nxt = client.next_times(schedule_id, n)
    if as_json:
        _print_json(nxt)
        return
    if not nxt["times"]:
        typer.echo("no upcoming fire times (disabled, or a one-off already past)")
        return
    zone = nxt["timezone"]
    rows = [[i, _in_zone(t, zone), _ts(t)] for i, t in enumerate(nxt["times"], 1)]
    _console().print(_table(None, ["#", zone, "UTC"], rows))


@schedule_app.command("backfill")
def schedule_backfill(
    ctx: typer.Context,
    schedule_id: Annotated[str, typer.Argument(help="Schedule id.")],
    start: Annotated[str, typer.Option("--from", help="Start of the range (RFC 3339).")],
    end: Annotated[str, typer.Option("--to", help="End of the range, exclusive (RFC 3339).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the slots; queue nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the schedule's slots in [--from, --to) now; slots that already ran are left alone."""
    with connect(ctx) as client:
        out = client.backfill(schedule_id, start, end, dry_run)
    if as_json:
        _print_json(out)
        return
    if dry_run:
        for t in out["times"]:
            typer.echo(_ts(t))
        typer.echo(
            f"dry run: {out['slots']} slot(s) in the range, {out['existing']} already had a run"
        )
        return
    typer.echo(
        f"{out['slots']} slot(s) in the range: {out['created']} run(s) queued, "
        f"{out['existing']} already had one"
    )


# --- plans --------------------------------------------------------------------------------


def _plan_config(path: Path | None) -> dict[str, Any]:
    """A JSON config file; a `master_schedule` naming a file on this machine is sent inline."""
    if path is None:
        return {}
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"--config: cannot read {path}: {exc}") from exc
    if not isinstance(config, dict):
        raise typer.BadParameter("--config: the file must hold a JSON object")
    source = config.get("master_schedule")
    if isinstance(source, str) and "\n" not in source and source != "sample":
        local = (path.parent / source).expanduser()
        if local.is_file():
            config["master_schedule"] = local.read_text()
    return config


def _plan_summary(plan: dict[str, Any]) -> None:
    v = plan["verification"]
    verdict = "verified" if v["ok"] else f"FAILED verification ({len(v['problems'])} problems)"
    parent = f", revision {plan['revision']} of {plan['parent_id']}" if plan["parent_id"] else ""
    typer.echo(
        f"plan {plan['id']} ({plan['policy']}, {plan['t0']} → {plan['t1']}{parent}): "
        f"{len(plan.get('blocks', []))} blocks, {verdict}"
    )
    for p in v.get("problems", []):
        typer.echo(f"  {p['check']}: block {p['block']} ({p['name']}) at {p['at']}: {p['message']}")


def _blocks_table(title: str | None, blocks: list[dict[str, Any]]) -> Table:
    def deg(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    rows = [
        [
            b["name"],
            b["kind"],
            _ts(b["t0"]),
            _ts(b["t1"]),
            deg(b["az"]),
            deg(b["alt"]),
            deg(b["throw"]) if b["az"] is not None else "-",
        ]
        for b in blocks
    ]
    return _table(title, ["name", "kind", "start", "stop", "az", "alt", "width"], rows)


@plan_app.command("create")
def plan_create(
    ctx: typer.Context,
    t0: Annotated[str, typer.Option("--t0", help="Window start, ISO 8601 (naive: UTC).")],
    t1: Annotated[str, typer.Option("--t1", help="Window end, ISO 8601 (naive: UTC).")],
    policy: Annotated[str, typer.Option("--policy", help="dummy or basic.")] = "basic",
    config: Annotated[
        Path | None, typer.Option("--config", help="JSON file of config overrides.")
    ] = None,
    space: Annotated[str | None, typer.Option("--space", help="Space (default).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate a plan for a window from a policy; it is verified and kept."""
    body: dict[str, Any] = {"policy": policy, "t0": t0, "t1": t1, "config": _plan_config(config)}
    if space:
        body["space"] = space
    with connect(ctx) as client:
        plan = client.request("POST", "/v1/plans", json=body)
    _print_json(plan) if as_json else _plan_summary(plan)


@plan_app.command("revise")
def plan_revise(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(help="The plan to start from.")],
    config: Annotated[
        Path | None, typer.Option("--config", help="JSON merge patch on its overrides.")
    ] = None,
    t0: Annotated[str | None, typer.Option("--t0", help="A new window start.")] = None,
    t1: Annotated[str | None, typer.Option("--t1", help="A new window end.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A new revision of a plan, with config changes and/or another window."""
    body: dict[str, Any] = {"config": _plan_config(config)}
    for key, value in (("t0", t0), ("t1", t1)):
        if value:
            body[key] = value
    with connect(ctx) as client:
        plan = client.request("POST", f"/v1/plans/{plan_id}/revisions", json=body)
    _print_json(plan) if as_json else _plan_summary(plan)


@plan_app.command("show")
def plan_show(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(help="Plan id.")],
    commands: Annotated[
        bool, typer.Option("--commands", help="Print only the command script.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """A plan: its blocks and verification (or its command script)."""
    with connect(ctx) as client:
        plan = client.request("GET", f"/v1/plans/{plan_id}")
    if commands:
        typer.echo(plan["commands"], nl=False)
    elif as_json:
        _print_json(plan)
    else:
        _plan_summary(plan)
        _console().print(_blocks_table(None, plan["blocks"]))


@plan_app.command("list")
def plan_list(
    ctx: typer.Context,
    space: Annotated[str | None, typer.Option("--space", help="Only this space.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Plans, newest first."""
    with connect(ctx) as client:
        plans = list(client.pages("/v1/plans", {"space": space}, limit))
    if as_json:
        _print_json(plans)
        return
    rows = [
        [
            p["id"],
            p["policy"],
            _ts(p["t0"]),
            _ts(p["t1"]),
            p["revision"],
            "yes" if p["verified"] else "NO",
            _ts(p["created_at"]),
        ]
        for p in plans
    ]
    cols = ["id", "policy", "t0", "t1", "rev", "verified", "created"]
    _console().print(_table(None, cols, rows))


@plan_app.command("diff")
def plan_diff(
    ctx: typer.Context,
    old: Annotated[str, typer.Argument(help="A plan id.")],
    new: Annotated[
        str | None, typer.Argument(help="Another plan id (default: OLD against its parent).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Blocks added, removed and moved between two plans."""
    path = f"/v1/plans/{old}/diff" if new is None else f"/v1/plans/{old}/diff/{new}"
    with connect(ctx) as client:
        d = client.request("GET", path)
    if as_json:
        _print_json(d)
        return
    typer.echo(
        f"{d['from']} → {d['to']}: {len(d['added'])} added, {len(d['removed'])} removed, "
        f"{len(d['moved'])} moved, {d['unchanged']} unchanged"
    )
    console = _console()
    if d["added"]:
        console.print(_blocks_table("added", d["added"]))
    if d["removed"]:
        console.print(_blocks_table("removed", d["removed"]))
    if d["moved"]:
        rows = [
            [
                m["to"]["name"],
                f"{_ts(m['from']['t0'])} .. {_ts(m['from']['t1'])}",
                f"{_ts(m['to']['t0'])} .. {_ts(m['to']['t1'])}",
            ]
            for m in d["moved"]
        ]
        console.print(_table("moved", ["name", "was", "now"], rows))


@plan_app.command("dispatch")
def plan_dispatch(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(help="A verified plan.")],
    site: Annotated[
        str | None, typer.Option("--site", help="Queue one task run per block on this site.")
    ] = None,
    job: Annotated[
        str | None, typer.Option("--job", help="Or: one run of this job with the whole script.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn a verified plan into runs at the plan's times (once per site or job: a plan
    dispatched there before queues nothing again)."""
    if (site is None) == (job is None):
        raise typer.BadParameter("give exactly one of --site or --job")
    body = {"site": site} if site else {"job": job}
    with connect(ctx) as client:
        done = client.request("POST", f"/v1/plans/{plan_id}/dispatch", json=body)
    if as_json:
        _print_json(done)
    else:
        typer.echo(done["message"])


def main() -> None:
    app()
