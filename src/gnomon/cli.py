"""`gnomon …`: serve, migrate, and talk to a running server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from gnomon.config import Settings

app = typer.Typer(no_args_is_help=True, help="gnomon: a self-hosted scheduler.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (./gnomon-data).")] = None,
) -> None:
    """Run API, scheduler, dispatcher and local executor in one process."""
    import uvicorn

    from gnomon.api.app import create_app
    from gnomon.logging import configure

    overrides = {
        k: v for k, v in {"host": host, "port": port, "data_dir": data_dir}.items() if v is not None
    }
    settings = Settings(**overrides)
    configure(settings.log_level)
    print(
        f"gnomon: serving on http://{settings.host}:{settings.port} "
        f"({'SQLite in ' + str(settings.data_dir) if settings.is_sqlite else 'PostgreSQL'})",
        flush=True,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (idempotent)."""
    from gnomon.store.db import Database

    settings = Settings()
    db = Database(settings.resolved_database_url)
    asyncio.run(db.upgrade())
    typer.echo(f"schema at {db.head_revision()}")


def main() -> None:
    app()
