"""Migration 0006 up and down, with data: site keys, the spaces an agent polls for, and JWT
owners of reservations renamed `jwt:<sub>` (and back)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from gnomon.store.db import Database

TOKEN = "01HZZZZZZZZZZZZZZZZZZZZZZZ"


async def migrate(url: str, action: str, revision: str) -> None:
    cfg = Database(url)._alembic_config()
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:

            def run(sync_conn: sa.Connection) -> None:
                cfg.attributes["connection"] = sync_conn
                getattr(command, action)(cfg, revision)

            await conn.run_sync(run)
    finally:
        await engine.dispose()


async def execute(url: str, sql: str) -> list[tuple]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(sa.text(sql))
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        await engine.dispose()


async def tables(url: str) -> set[str]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def columns(url: str, table: str) -> set[str]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            cols = await conn.run_sync(lambda c: sa.inspect(c).get_columns(table))
            return {c["name"] for c in cols}
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_0006_up_and_down(backend: str, tmp_path: Path, request) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    else:
        url = request.getfixturevalue("postgres_url").replace(
            "postgresql://", "postgresql+asyncpg://"
        )
    await migrate(url, "upgrade", "0005")
    await execute(url, "INSERT INTO spaces (name, timezone, created_at) VALUES ('s', 'UTC', 0)")
    await execute(
        url,
        "INSERT INTO tokens (id, name, hash, admin, created_at) "
        f"VALUES ('{TOKEN}', 't', 'h', false, 0)",
    )
    for res_id, owner in (("r1", TOKEN), ("r2", "auth0|bob"), ("r3", "jwt:auth0|eve")):
        await execute(
            url,
            "INSERT INTO reservations (id, space, site, owner, start_at, end_at, created_at) "
            f"VALUES ('{res_id}', 's', 'dome', '{owner}', 0, 1, 0)",
        )

    await migrate(url, "upgrade", "0006")
    owners = dict(await execute(url, "SELECT id, owner FROM reservations"))
    assert owners == {"r1": TOKEN, "r2": "jwt:auth0|bob", "r3": "jwt:auth0|eve"}
    assert "site_keys" in await tables(url)
    assert "spaces" in await columns(url, "agents")

    await migrate(url, "downgrade", "0005")
    owners = dict(await execute(url, "SELECT id, owner FROM reservations"))
    assert owners == {"r1": TOKEN, "r2": "auth0|bob", "r3": "auth0|eve"}
    assert "site_keys" not in await tables(url)
    assert "spaces" not in await columns(url, "agents")
