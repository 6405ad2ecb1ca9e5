"""Storage faults: driver errors that mean the database cannot write (a full disk, a read-only
or failing device), named the way an operator would look for them.

The write doors of `Database` raise `StorageFault` in their place, so every caller — the API,
the faces, the engine — answers 503 with the cause instead of an internal error, and readiness
can say why the server is not ready.
"""

from __future__ import annotations

import errno
import sqlite3

from gnomon.errors import Unavailable

# sqlite3's primary result codes (sqlite3.h)
SQLITE_CAUSES = {
    8: "the database is read-only",  # SQLITE_READONLY
    10: "the database's disk failed to read or write",  # SQLITE_IOERR
    13: "the disk holding the database is full",  # SQLITE_FULL
    14: "the database file cannot be opened",  # SQLITE_CANTOPEN
}
# PostgreSQL SQLSTATE codes (class 53: insufficient resources; 58030: I/O error)
PG_CAUSES = {
    "53100": "the disk holding the database is full",
    "53200": "the database server is out of memory",
    "58030": "the database's disk failed to read or write",
}
OS_CAUSES = {
    errno.ENOSPC: "the disk holding the database is full",
    errno.EDQUOT: "the disk quota of the database is used up",
    errno.EROFS: "the database is on a read-only file system",
    errno.EIO: "the database's disk failed to read or write",
}


class StorageFault(Unavailable):
    code = "storage_fault"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen) or len(seen) > 10:
            continue
        seen.append(e)
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]
    return seen


def storage_fault(exc: BaseException) -> str | None:
    """What keeps the database from writing, if `exc` says so: "<cause> (<driver's words>)"."""
    for e in _chain(exc):
        cause = None
        if isinstance(e, sqlite3.Error):
            cause = SQLITE_CAUSES.get((getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF)
        elif isinstance(e, OSError):
            cause = OS_CAUSES.get(e.errno or 0)
        elif isinstance(getattr(e, "sqlstate", None), str):
            cause = PG_CAUSES.get(e.sqlstate)  # type: ignore[attr-defined]
        if cause:
            words = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            return f"{cause} ({words})"
    return None
