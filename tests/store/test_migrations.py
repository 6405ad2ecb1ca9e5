"""The Alembic migrations build exactly the tables of store/schema.py, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gnomon.store.db import Database
from gnomon.store.schema import metadata


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_migrations_match_schema(backend: str, tmp_path: Path, request) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    else:
        url = request.getfixturevalue("postgres_url").replace(
            "postgresql://", "postgresql+asyncpg://"
        )
    db = Database(url)
    await db.upgrade()
    await db.connect()
    try:
        async with db.reader.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), metadata)
            )
    finally:
        await db.close()
    assert diff == []
