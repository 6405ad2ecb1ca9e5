"""Copies of a SQLite ledger: a consistent backup of a live database (SQLite's online backup
API), a restore that refuses to overwrite the data of a running server, and the lock by which
a server says it is running."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path


class ServerRunning(Exception):
    """A server holds the database: restoring over it would lose what it writes."""


class NotABackup(Exception):
    """The file is not a gnomon SQLite database."""


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


def hold(db: Path) -> int:
    """Take the server's shared lock on `db` (several servers may share one database) and
    return its descriptor; the kernel releases it when the process ends, however it ends."""
    fd = os.open(lock_path(db), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def release(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


@contextlib.contextmanager
def exclusive(db: Path) -> Iterator[None]:
    """Hold `db` against servers for the duration; raise ServerRunning when one holds it."""
    fd = os.open(lock_path(db), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ServerRunning(f"a gnomon server is using {db}: stop it first") from None
        yield
    finally:
        os.close(fd)


def _check(conn: sqlite3.Connection, what: Path) -> str:
    """The schema revision of a gnomon database; NotABackup when it is not one or is damaged."""
    try:
        ok = conn.execute("PRAGMA quick_check").fetchone()
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise NotABackup(f"{what} is not a gnomon database: {exc}") from None
    if not ok or ok[0] != "ok":
        raise NotABackup(f"{what} is damaged: {ok[0] if ok else 'no answer'}")
    if not row:
        raise NotABackup(f"{what} is not a gnomon database: no schema revision")
    return str(row[0])


def _copy(src: sqlite3.Connection, dst: sqlite3.Connection) -> None:
    # One step: a single read snapshot, which in WAL mode never blocks the server's writers
    # (steps of a few pages would start over after each write by another connection).
    src.backup(dst)


def backup(db: Path, dest: Path) -> str:
    """Copy the live database `db` to `dest` (written beside it, then renamed into place);
    returns the copy's schema revision."""
    if not db.exists():
        raise FileNotFoundError(f"no database at {db}")
    tmp = dest.with_name(dest.name + ".part")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(db)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        dst = sqlite3.connect(tmp)
        try:
            _copy(src, dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            revision = _check(dst, dest)
        finally:
            dst.close()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    os.replace(tmp, dest)
    return revision


def restore(source: Path, db: Path) -> str:
    """Put the backup `source` in place of `db`, which no server may be using; returns the
    restored schema revision (a server started on it upgrades it to its own)."""
    if not source.exists():
        raise FileNotFoundError(f"no backup at {source}")
    src = sqlite3.connect(source)
    try:
        revision = _check(src, source)
        db.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with exclusive(db):
            if not db.exists():
                os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            dst = sqlite3.connect(db)
            try:
                _copy(src, dst)
                dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                dst.close()
    finally:
        src.close()
    return revision
