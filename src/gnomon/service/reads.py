"""The two reads every concept has: one row its caller may see, and a page of rows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gnomon.domain import Principal, Role
from gnomon.errors import NotFound
from gnomon.service.access import readable_spaces, require

if TYPE_CHECKING:
    from gnomon.store.db import Database

PAGE_MAX = 1000
Row = dict[str, Any]


async def one(
    db: Database,
    fetch: Callable[..., Awaitable[Row | None]],
    key: str,
    kind: str,
    who: Principal,
    role: Role = Role.viewer,
    **options: Any,
) -> Row:
    """`fetch(conn, key, **options)`, refused unless `who` holds `role` in the row's space."""
    async with db.read() as conn:
        row = await fetch(conn, key, **options)
    if row is None:
        raise NotFound(f"{kind} '{key}' not found")
    require(who, row["space"], role)
    return row


async def listing(
    db: Database,
    fetch: Callable[..., Awaitable[list[Row]]],
    who: Principal,
    *,
    space: str | None,
    cursor: str | None,
    limit: int,
    **filters: Any,
) -> tuple[list[Row], str | None]:
    """A page of `fetch(conn, spaces=…, cursor=…, limit=…, **filters)` over the spaces `who`
    may read, and the cursor of the next page (None on the last)."""
    limit = max(1, min(limit, PAGE_MAX))
    async with db.read() as conn:
        items = await fetch(
            conn, spaces=readable_spaces(who, space), cursor=cursor, limit=limit + 1, **filters
        )
    return page(items, limit)


def page(items: list[Row], limit: int, key: str = "id") -> tuple[list[Row], str | None]:
    """Trim a limit+1 fetch to a page and its next cursor."""
    if len(items) > limit:
        return items[:limit], items[limit - 1][key]
    return items, None
