"""Who uses a site: the spaces with a live job on its executor `site:<name>`. What that
decides is told in service/sites.py; this is the one place that answers it."""

from __future__ import annotations

import re

from gnomon.config import Settings
from gnomon.domain import Principal, Role
from gnomon.errors import Forbidden, Invalid, NotFound
from gnomon.service.access import readable_spaces
from gnomon.service.cache import TtlCache
from gnomon.specs import SITE
from gnomon.store import sites as store
from gnomon.store.db import Database
from gnomon.vocabulary import site_executor

SITE_RE = re.compile(SITE)


def executor_of(site: str) -> str:
    if not SITE_RE.match(site):
        raise Invalid("site", "letters, digits, '_', '.', '-' (at most 63), starting alnum")
    return site_executor(site)


class SiteUsers:
    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self._users: TtlCache[str, frozenset[str]] = TtlCache(settings.token_cache_s)

    async def of(self, site: str, *, fresh: bool = False) -> frozenset[str]:
        """The spaces that use the site (a live job on it), read at most once per
        token_cache_s unless `fresh`."""
        if fresh:
            self._users.forget(site)
        return await self._users.get(site, lambda: self._load_users(site))

    async def _load_users(self, site: str) -> tuple[frozenset[str], None]:
        async with self.db.read() as conn:
            return frozenset(await store.site_users(conn, site)), None

    async def acting_spaces(self, who: Principal, site: str) -> list[str]:
        """The spaces an agent of `who` polls the site for: those that use it where `who` is
        a developer (an admin: all that use it). 403 for none, unless admin."""
        users = await self.of(site)
        if who.admin:
            return sorted(users)
        mine = sorted(s for s in users if who.can(s, Role.developer))
        if not mine:  # a job made a moment ago is seen at once
            mine = sorted(s for s in await self.of(site, fresh=True) if who.can(s, Role.developer))
        if not mine:
            raise Forbidden(
                f"token '{who.name}' needs the developer role in a space that uses site "
                f"'{site}' (has a job on it) to act as its agent"
            )
        return mine

    async def visible(self, who: Principal, site: str) -> bool:
        """Whether the caller's spaces use the site (always, for an admin); 404 when they
        neither use it nor hold a reservation there: the site is none of theirs."""
        executor_of(site)
        spaces = readable_spaces(who, None)
        if spaces is None:
            return True
        if set(spaces) & await self.of(site):
            return True
        if set(spaces) & await self.of(site, fresh=True):
            return True
        async with self.db.read() as conn:
            held = await store.list_reservations(
                conn, site=site, spaces=spaces, ending_after=None, limit=1
            )
        if not held:
            raise NotFound(f"site '{site}' is not used by any space of token '{who.name}'")
        return False
