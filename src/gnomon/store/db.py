"""Engines and transactions for SQLite and PostgreSQL; migrations through Alembic."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util import greenlet_spawn

from gnomon.store.faults import StorageFault, storage_fault

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")


def private_dir(path: Path) -> None:
    """A directory only the server's user may enter (0700), made when missing."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        with contextlib.suppress(OSError):  # not ours to change: the admin's choice
            os.chmod(path, 0o700)


def private_sqlite_file(path: Path) -> None:
    """The database file (and its -wal and -shm files, which SQLite makes with the same mode)
    readable and writable by the server's user only; its directory made 0700 when new."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            if each.stat().st_mode & 0o077:
                os.chmod(each, 0o600)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Database:
    """Two doors: `write()` for read-write transactions, `read()` for consistent reads.

    On SQLite the write door is one connection that begins with BEGIN IMMEDIATE, so writers
    queue in-process instead of failing with "database is locked"; readers use WAL snapshots.
    On PostgreSQL both doors share one pool.
    """

    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 10):
        self.url = url
        self.dialect = sa.engine.make_url(url).get_backend_name()
        self._sync = sqlite_synchronous
        self._pool_size = pool_size
        self.writer: AsyncEngine
        self.reader: AsyncEngine
        self.fault: str | None = None  # why the last write failed, while no write has succeeded
        self._held: int | None = None  # the running server's lock on a SQLite file

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, if this is one (not in memory)."""
        path = sa.engine.make_url(self.url).database if self.is_sqlite else None
        return Path(path) if path and path != ":memory:" else None

    def hold(self) -> None:
        """Say that a server uses this database until close() (SQLite files only)."""
        from gnomon.store import backup

        if self._held is None and (path := self.sqlite_path) is not None:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._held = backup.hold(path)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def _engine(self, **kw: Any) -> AsyncEngine:
        return create_async_engine(
            self.url, json_serializer=_json_dumps, json_deserializer=orjson.loads, **kw
        )

    async def connect(self) -> None:
        if self.is_sqlite:
            path = sa.engine.make_url(self.url).database
            if path and path != ":memory:":
                private_sqlite_file(Path(path))
            # Every use of the writer ends its own transaction (begin() blocks, or
            # driver_call's own COMMIT/ROLLBACK), so no rollback round trip on return.
            self.writer = self._engine(pool_size=1, max_overflow=0, pool_reset_on_return=None)
            self.reader = self._engine(pool_size=4, max_overflow=4)
            for engine, immediate in ((self.writer, True), (self.reader, False)):
                self._sqlite_hooks(engine, immediate)
        else:
            self.writer = self._engine(pool_size=self._pool_size, max_overflow=10)
            self.reader = self.writer

    def _sqlite_hooks(self, engine: AsyncEngine, immediate: bool) -> None:
        sync = self._sync

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _rec: Any) -> None:
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            for pragma in (
                "journal_mode=WAL",
                f"synchronous={sync}",
                "busy_timeout=30000",
                "foreign_keys=ON",
                "cache_size=-65536",
            ):
                cur.execute(f"PRAGMA {pragma}")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    async def close(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()
        if self._held is not None:
            from gnomon.store import backup

            backup.release(self._held)
            self._held = None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.writer.begin() as conn:
                yield conn
        except Exception as exc:
            self._reraise(exc)
        self.fault = None

    def _reraise(self, exc: Exception) -> NoReturn:
        """A write failed: raise a StorageFault naming the cause when the storage is to blame
        (and remember it until a write succeeds), else the error itself."""
        cause = storage_fault(exc)
        if cause is None:
            raise exc
        self.fault = cause
        raise StorageFault(f"cannot write: {cause}") from exc

    async def probe_write(self) -> str | None:
        """After a storage fault: try one small real write; the fault that remains, if any."""
        if self.fault is not None:
            with contextlib.suppress(StorageFault):
                async with self.write() as conn:
                    await conn.exec_driver_sql(
                        "UPDATE alembic_version SET version_num = version_num"
                    )
        return self.fault

    async def driver_call(
        self,
        sqlite_fn: Callable[..., T],
        pg_fn: Callable[..., Awaitable[T]],
        *args: Any,
    ) -> T:
        """One call to the driver on the writer connection, outside SQLAlchemy — no round trip
        per statement: `sqlite_fn(sqlite3_connection, *args)` runs in aiosqlite's thread (one
        hop; it must end its own transaction), `pg_fn(asyncpg_connection, *args)` on the loop."""
        pooled = await self.writer.raw_connection()  # the pool still serialises writers
        try:
            driver: Any = pooled.driver_connection
            if self.is_sqlite:
                done = await driver._execute(sqlite_fn, driver._conn, *args)
            else:
                done = await pg_fn(driver, *args)
        except Exception as exc:
            self._reraise(exc)
        finally:
            await greenlet_spawn(pooled.close)
        self.fault = None
        return done

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.reader.connect() as conn:
            yield conn

    # --- migrations -----------------------------------------------------------------------

    def _alembic_config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    async def upgrade(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        from alembic import command

        engine = self._engine(poolclass=NullPool)
        if self.is_sqlite:
            path = sa.engine.make_url(self.url).database
            if path and path != ":memory:":
                private_sqlite_file(Path(path))
        cfg = self._alembic_config()
        try:
            async with engine.begin() as conn:
                if self.dialect == "postgresql":
                    # Several processes may start together: migrate one at a time.
                    await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(74290311)")

                def _run(sync_conn: Any) -> None:
                    cfg.attributes["connection"] = sync_conn
                    command.upgrade(cfg, "head")

                await conn.run_sync(_run)
        finally:
            await engine.dispose()

    async def current_revision(self) -> str | None:
        async with self.read() as conn:
            try:
                row = (
                    await conn.exec_driver_sql("SELECT version_num FROM alembic_version")
                ).first()
            except sa.exc.DBAPIError:
                return None
        return row[0] if row else None

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()
