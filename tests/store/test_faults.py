"""Which driver errors are storage faults, and how they are named."""

from __future__ import annotations

import errno
import sqlite3

import asyncpg
import pytest

from gnomon.store.faults import storage_fault


def sqlite_error(code: int, text: str) -> sqlite3.Error:
    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (sqlite_error(13, "database or disk is full"), "the disk holding the database is full"),
        (sqlite_error(8, "attempt to write a readonly database"), "the database is read-only"),
        (sqlite_error(10 | (13 << 8), "disk I/O error"), "failed to read or write"),
        (OSError(errno.ENOSPC, "No space left on device"), "is full"),
        (asyncpg.exceptions.DiskFullError("could not extend file"), "is full"),
    ],
)
def test_storage_faults_are_named(exc: Exception, cause: str) -> None:
    found = storage_fault(exc)
    assert found is not None and cause in found


def test_a_fault_inside_a_wrapper_is_found() -> None:
    try:
        try:
            raise sqlite_error(13, "database or disk is full")
        except sqlite3.Error as inner:
            raise RuntimeError("commit failed") from inner
    except RuntimeError as outer:
        assert "full (database or disk is full)" in (storage_fault(outer) or "")


@pytest.mark.parametrize(
    "exc",
    [sqlite_error(19, "UNIQUE constraint failed"), ValueError("x"), OSError(errno.EPIPE, "pipe")],
)
def test_other_errors_are_not_storage_faults(exc: Exception) -> None:
    assert storage_fault(exc) is None
