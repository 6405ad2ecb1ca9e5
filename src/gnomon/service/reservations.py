"""Reservations: windows in which a site takes work from one owner only.

A developer reserves a site for a space that uses it (or a site no space uses yet); while a
reservation holds, only its owner (or an admin) may queue work for the site. Its owner, a
manager of its space or of any space that uses the site (it holds the site for all of them),
or an admin may remove it. Callers whose spaces do not hold a reservation see it only as a
window. Which spaces use a site is service/site_users.py's answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from gnomon.config import Settings
from gnomon.domain import Principal, Role
from gnomon.errors import Conflict, Forbidden, NotFound
from gnomon.ids import new_id
from gnomon.service.access import DEFAULT_SPACE, readable_spaces, require
from gnomon.service.site_users import SiteUsers, executor_of
from gnomon.specs import ReservationSpec
from gnomon.store import access as access_store
from gnomon.store import sites as store
from gnomon.store.db import Database


class Reservations:
    def __init__(self, db: Database, settings: Settings, users: SiteUsers):
        self.db = db
        self.settings = settings
        self.users = users
        self._current: tuple[float, dict[str, list[dict[str, Any]]]] = (0.0, {})
        self._lock = asyncio.Lock()

    @staticmethod
    def mine(row: dict[str, Any], spaces: list[str] | None) -> bool:
        """Whether a caller reading `spaces` (None: all) may see the reservation whole."""
        return spaces is None or row["space"] in spaces

    @staticmethod
    def shown_to(row: dict[str, Any], spaces: list[str] | None) -> dict[str, Any]:
        """A reservation as a caller reading `spaces` sees it: another space's only as a
        window."""
        if Reservations.mine(row, spaces):
            return row
        return {**row, "space": None, "owner": None, "owner_name": None, "note": None}

    async def reserve(self, who: Principal, site: str, spec: ReservationSpec) -> dict[str, Any]:
        """Hold the site for a window, for a space that uses it (or a site no space uses)."""
        executor_of(site)
        space = spec.space or DEFAULT_SPACE
        require(who, space, Role.developer)
        owner = spec.owner or who.token_id
        if owner != who.token_id:
            require(who, space, Role.manager)
        if not who.admin:
            users = await self.users.of(site, fresh=True)
            if users and space not in users:
                raise Forbidden(
                    f"space '{space}' does not use site '{site}' (it has no job there); "
                    "only spaces that use a site may reserve it"
                )
        row = {
            "id": new_id(),
            "space": space,
            "site": site,
            "owner": owner,
            "owner_name": spec.owner_name or (who.name if owner == who.token_id else None),
            "start_at": spec.start.timestamp(),
            "end_at": spec.end.timestamp(),
            "note": spec.note,
            "created_at": time.time(),
        }
        async with self.db.write() as conn:
            if await access_store.get_space(conn, space) is None:
                raise NotFound(f"space '{space}' not found")
            await store.lock_site(conn, site)
            clash = await store.overlapping(conn, site, row["start_at"], row["end_at"])
            if clash:
                raise Conflict(
                    f"site '{site}' is already reserved in that window "
                    f"(reservation '{clash[0]['id']}')",
                    details=[{"reservation": c["id"]} for c in clash],
                )
            await store.insert_reservation(conn, row)
        self._forget()
        return row

    async def listing(
        self, who: Principal, site: str, *, past: bool = False
    ) -> list[dict[str, Any]]:
        """The site's reservations: the caller's spaces' whole; when the caller's spaces use
        the site, the others' too, as windows."""
        uses = await self.users.visible(who, site)
        spaces = readable_spaces(who, None)
        async with self.db.read() as conn:
            rows = await store.list_reservations(
                conn,
                site=site,
                spaces=None if uses else spaces,
                ending_after=None if past else time.time(),
            )
        return [self.shown_to(r, spaces) for r in rows]

    async def unreserve(self, who: Principal, site: str, res_id: str) -> None:
        """Remove a reservation: its owner, a manager of its space or of any space that uses
        the site (a reservation holds the site for all of them), or an admin."""
        async with self.db.write() as conn:
            row = await store.get_reservation(conn, res_id)
            if row is None or row["site"] != site:
                raise NotFound(f"reservation '{res_id}' not found at site '{site}'")
            if row["owner"] != who.token_id and not who.can(row["space"], Role.manager):
                users = await store.site_users(conn, site)
                if not any(who.can(s, Role.manager) for s in users):
                    raise Forbidden(
                        f"removing reservation '{res_id}' needs its owner, the manager role in "
                        f"its space or in a space that uses site '{site}', or admin"
                    )
            await store.delete_reservation(conn, res_id)
        self._forget()

    def _forget(self) -> None:
        self._current = (0.0, {})

    async def current(self) -> dict[str, list[dict[str, Any]]]:
        """Reservations not yet over, by site: read at most once per token_cache_s."""
        expires, by_site = self._current
        if expires > time.monotonic():
            return by_site
        async with self._lock:
            expires, by_site = self._current
            if expires > time.monotonic():
                return by_site
            async with self.db.read() as conn:
                rows = await store.list_reservations(
                    conn, site=None, spaces=None, ending_after=time.time(), limit=100_000
                )
            by_site = {}
            for r in rows:
                by_site.setdefault(r["site"], []).append(r)
            self._current = (time.monotonic() + self.settings.token_cache_s, by_site)
            return by_site

    async def check(self, who: Principal, site: str, *, owners: Sequence[str] = ()) -> None:
        """While someone else's reservation holds, only its owner (or an admin) may queue
        work for the site; `owners`: further identities the caller acts for (see
        face_owners). Costs a dictionary look-up between cache refreshes."""
        if who.admin:
            return
        rows = (await self.current()).get(site)
        if not rows:
            return
        now = time.time()
        selves = {who.token_id, *owners}
        for r in rows:
            if r["start_at"] <= now < r["end_at"] and r["owner"] not in selves:
                mine = who.can(r["space"], Role.viewer)
                holder = (r["owner_name"] or r["owner"]) if mine else "another space"
                raise Forbidden(
                    f"site '{site}' is reserved by {holder} until "
                    f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(r['end_at']))}",
                    code="reserved",
                )
