"""Tokens, spaces and roles: who may do what, where — for the native routes and the faces
alike (a face or a route asks here; it decides nothing itself)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
import structlog

from gnomon.config import Settings
from gnomon.domain import Principal, Role
from gnomon.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from gnomon.ids import new_id
from gnomon.service.cache import TtlCache
from gnomon.service.jwt_auth import ExternalJwt, expiry, looks_like_jwt
from gnomon.specs import ScheduleSpec, SpaceSpec, TokenSpec
from gnomon.store import access as store
from gnomon.store.db import Database

log = structlog.get_logger(__name__)

DEFAULT_SPACE = "default"
TOKEN_PREFIX = "gn_"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def require(principal: Principal, space: str, role: Role) -> None:
    if not principal.can(space, role):
        raise Forbidden(f"token '{principal.name}' needs role {role.value} in space '{space}'")


def readable_spaces(who: Principal, space: str | None) -> list[str] | None:
    """The spaces a listing for `who` covers (None: all); 403 for a space not theirs."""
    if space is None:
        return who.visible_spaces()
    require(who, space, Role.viewer)
    return [space]


def require_admin(principal: Principal) -> None:
    if not principal.admin:
        raise Forbidden("this needs an admin token")


# --- streams: what a caller may follow ------------------------------------------------------


def stream_holder(who: Principal) -> Principal | None:
    """Whose open streams a stream of `who` counts against, and whose token is checked while
    it lasts: the token's holder; None for a site's own software on a face (it holds no
    token: counted by its address, nothing to revoke)."""
    return None if who.site is not None else who


# --- faces: who an open face acts as, and what it reaches -----------------------------------


def open_face(face: str, space: str) -> Principal:
    """Who a face that asks for no token acts as: a developer in its own space, no more."""
    return Principal(token_id=f"face:{face}", name=face, roles={space: Role.developer})


class _Exposed(Protocol):
    faces: Any


T = TypeVar("T", bound=_Exposed)


def face_template(templates: Mapping[str, T], face: str, name: str) -> T | None:
    """The template `name` when it lists `face` among its faces; a face reaches no other."""
    template = templates.get(name)
    return template if template is not None and face in template.faces else None


class Access:
    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings
        self._cache: TtlCache[str, Principal | None] = TtlCache(settings.token_cache_s)
        self._by_id: TtlCache[str, Principal | None] = TtlCache(settings.token_cache_s)
        self._ticket_key: bytes | None = None
        self.jwt = ExternalJwt(settings)

    async def bootstrap(self, data_dir: Path) -> Path | None:
        """On an empty database: create the default space and an admin token.

        Returns the path the token was written to, or None when tokens already exist. The
        ticket key is made here too, when there is none yet.
        """
        self.ticket_key()
        if self.settings.secret_key is None and not self.settings.is_sqlite:
            log.info(
                "access.key_file",
                note="event-stream tickets are signed with this server's key file; servers "
                "sharing the database accept each other's tickets only with one "
                "GNOMON_SECRET_KEY (or the same key file)",
            )
        now = time.time()
        async with self.db.write() as conn:
            await store.ensure_space(conn, DEFAULT_SPACE, now)
            if await store.count_tokens(conn):
                return None
            secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
            await store.insert_token(
                conn,
                {
                    "id": new_id(),
                    "name": "admin",
                    "hash": digest(secret),
                    "admin": True,
                    "created_at": now,
                },
                {},
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / "admin.token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secret + "\n")
        os.chmod(path, 0o600)
        return path

    async def authenticate(self, secret: str | None) -> Principal:
        if not secret:
            raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
        who = await self._cache.get(secret, lambda: self._identify(secret))
        if who is None:
            raise Unauthorized("unknown or revoked token")
        return who

    async def _identify(self, secret: str) -> tuple[Principal | None, float | None]:
        """Who a bearer secret stands for (None: nobody), and until when that may be cached."""
        if self.jwt.enabled and looks_like_jwt(secret):
            who, exp = self.jwt.verify(secret)  # Unauthorized when it does not verify
            return who, expiry(time.monotonic(), exp, self.settings.token_cache_s)
        async with self.db.read() as conn:
            row = await store.token_by_hash(conn, digest(secret))
        if row is None:
            return None, None
        return Principal(
            token_id=row["id"],
            name=row["name"],
            admin=row["admin"],
            roles={s: Role(r) for s, r in row["roles"].items()},
        ), None

    def forget(self) -> None:
        self._cache.forget()
        self._by_id.forget()

    async def token_principal(self, token_id: str) -> Principal | None:
        """A token's principal as it stands now (None: unknown or revoked), cached like a
        bearer secret: what an open event stream asks now and then."""
        return await self._by_id.get(token_id, lambda: self._load_by_id(token_id))

    async def _load_by_id(self, token_id: str) -> tuple[Principal | None, float | None]:
        async with self.db.read() as conn:
            row = await store.get_token(conn, token_id)
        if row is None or row["revoked_at"] is not None:
            return None, None
        return _principal(row), None

    # --- tokens ---------------------------------------------------------------------------

    async def create_token(self, who: Principal, spec: TokenSpec) -> tuple[dict[str, Any], str]:
        if spec.admin:
            require_admin(who)
        if not spec.roles and not spec.admin:
            raise Invalid("roles", "give at least one space role, or admin: true")
        for space in spec.roles:
            require(who, space, Role.manager)
        now = time.time()
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = {
            "id": new_id(),
            "name": spec.name,
            "hash": digest(secret),
            "admin": spec.admin,
            "created_at": now,
        }
        async with self.db.write() as conn:
            for space in spec.roles:
                if await store.get_space(conn, space) is None:
                    raise NotFound(f"space '{space}' not found")
            await store.insert_token(conn, row, {s: r.value for s, r in spec.roles.items()})
        return {
            **row,
            "revoked_at": None,
            "roles": {s: r.value for s, r in spec.roles.items()},
        }, secret

    async def list_tokens(self, who: Principal) -> list[dict[str, Any]]:
        managed = None if who.admin else [s for s, r in who.roles.items() if r == Role.manager]
        if managed == []:
            raise Forbidden("listing tokens needs the manager role in a space, or admin")
        async with self.db.read() as conn:
            return await store.list_tokens(conn, managed)

    async def revoke_token(self, who: Principal, token_id: str) -> None:
        async with self.db.write() as conn:
            token = await store.get_token(conn, token_id)
            if token is None:
                raise NotFound(f"token '{token_id}' not found")
            if not who.admin and (
                token["admin"]
                or not token["roles"]
                or not all(who.can(s, Role.manager) for s in token["roles"])
            ):
                raise Forbidden("revoking this token needs manager of all its spaces, or admin")
            await store.revoke_token(conn, token_id, time.time())
        self.forget()

    # --- spaces ---------------------------------------------------------------------------

    async def create_space(self, who: Principal, spec: SpaceSpec) -> dict[str, Any]:
        require_admin(who)
        row = {
            "name": spec.name,
            "timezone": spec.timezone,
            "created_at": time.time(),
            "guid": str(spec.guid or uuid.uuid4()),
        }
        try:
            async with self.db.write() as conn:
                if not await store.insert_space(conn, row):
                    raise Conflict(f"space '{spec.name}' already exists")
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"another space has the guid '{row['guid']}'") from exc
        return {**row, "members": []}

    async def list_spaces(self, who: Principal) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            items = await store.list_spaces(conn, who.visible_spaces())
            members = await store.list_members(conn, [s["name"] for s in items])
        by_space: dict[str, list[dict[str, Any]]] = {s["name"]: [] for s in items}
        for m in members:
            by_space[m["space"]].append(
                {"token_id": m["token_id"], "name": m["name"], "role": m["role"]}
            )
        return [{**s, "members": by_space[s["name"]]} for s in items]

    async def get_space(self, who: Principal, name: str) -> dict[str, Any]:
        require(who, name, Role.viewer)
        async with self.db.read() as conn:
            space = await store.get_space(conn, name)
            if space is None:
                raise NotFound(f"space '{name}' not found")
            members = await store.list_members(conn, [name])
        return {
            **space,
            "members": [
                {"token_id": m["token_id"], "name": m["name"], "role": m["role"]} for m in members
            ],
        }

    async def set_member(self, who: Principal, space: str, token_id: str, role: Role) -> None:
        """Give a token a role in `space`. A manager may change the role of a member of the
        space, or bring in a token that holds roles only in spaces they manage too (so every
        manager of the token's spaces can still revoke it); an admin token is an admin's to
        place. An admin may place any token."""
        require(who, space, Role.manager)
        async with self.db.write() as conn:
            if await store.get_space(conn, space) is None:
                raise NotFound(f"space '{space}' not found")
            token = await store.get_token(conn, token_id)
            if token is None:
                raise NotFound(f"token '{token_id}' not found")
            if not who.admin and space not in token["roles"]:
                if token["admin"]:
                    raise Forbidden("only an admin may give an admin token a role in a space")
                if not all(who.can(s, Role.manager) for s in token["roles"]):
                    raise Forbidden(
                        f"token '{token_id}' holds roles in spaces you do not manage: only "
                        "a manager of all of them, or an admin, may add it here"
                    )
            await store.set_member(conn, space, token_id, role.value)
        self.forget()

    async def remove_member(self, who: Principal, space: str, token_id: str) -> None:
        require(who, space, Role.manager)
        async with self.db.write() as conn:
            if not await store.delete_member(conn, space, token_id):
                raise NotFound(f"token '{token_id}' is not a member of space '{space}'")
        self.forget()

    async def space_by_guid(self, guid: str) -> dict[str, Any] | None:
        """A space by its guid (any caller: a guid alone reveals nothing)."""
        async with self.db.read() as conn:
            return await store.space_by_guid(conn, guid)

    async def space(self, name: str) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            return await store.get_space(conn, name)

    async def spaces(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """Spaces by name, for presenting rows already read."""
        async with self.db.read() as conn:
            return {s["name"]: s for s in await store.list_spaces(conn, sorted(set(names)))}

    async def zone(self, space: str, spec: ScheduleSpec) -> str:
        """The time zone a schedule's times mean: the one its spec gives, else its space's
        (the zone the space's cron expressions mean; UTC unless the space was given another).
        Every face's schedules follow this one rule."""
        if "timezone" in spec.model_fields_set:
            return spec.timezone
        row = await self.space(space)
        return row["timezone"] if row and row.get("timezone") else "UTC"

    async def space_exists(self, name: str) -> bool:
        async with self.db.read() as conn:
            return await store.get_space(conn, name) is not None

    # --- event-stream tickets -------------------------------------------------------------

    def ticket_key(self) -> bytes:
        """The key that signs event-stream tickets: GNOMON_SECRET_KEY, else the data
        directory's key file (made at first use). Nothing in the database can forge one."""
        if self._ticket_key is None:
            configured = self.settings.secret_key
            if configured is not None:
                self._ticket_key = configured.get_secret_value().encode()
            else:
                self._ticket_key = load_key(self.settings.data_dir / KEY_FILE)
        return self._ticket_key

    async def issue_ticket(self, who: Principal) -> tuple[str, float]:
        """A short-lived ticket that opens GET /v1/events as `who`, for clients that cannot
        send headers (a browser's EventSource). Signed with the server's key (processes
        sharing the database must share it); revoking the token voids it."""
        async with self.db.read() as conn:
            row = await store.get_token(conn, who.token_id)
        if row is None or row["revoked_at"] is not None:
            raise Unauthorized("unknown or revoked token")
        expires = int(time.time() + TICKET_S)
        mac = ticket_mac(self.ticket_key(), who.token_id, expires)
        return f"{who.token_id}.{expires}.{mac}", expires

    async def redeem_ticket(self, ticket: str) -> Principal:
        """The principal a ticket from issue_ticket stands for, while it is fresh."""
        token_id, _, rest = ticket.partition(".")
        expires, _, mac = rest.partition(".")
        if not (token_id and expires.isdigit() and mac) or len(expires) > 12:
            raise Unauthorized("malformed ticket")
        if int(expires) < time.time():
            raise Unauthorized("ticket expired; get a new one from POST /v1/events/ticket")
        if not hmac.compare_digest(ticket_mac(self.ticket_key(), token_id, int(expires)), mac):
            raise Unauthorized("invalid ticket")
        async with self.db.read() as conn:
            row = await store.get_token(conn, token_id)
        if row is None or row["revoked_at"] is not None:
            raise Unauthorized("unknown or revoked token")
        return _principal(row)


TICKET_S = 60
KEY_FILE = "secret.key"


def _principal(row: dict[str, Any]) -> Principal:
    return Principal(
        token_id=row["id"],
        name=row["name"],
        admin=row["admin"],
        roles={s: Role(r) for s, r in row["roles"].items()},
    )


def ticket_mac(key: bytes, token_id: str, expires: int) -> str:
    msg = f"gnomon-events:{token_id}:{expires}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def load_key(path: Path) -> bytes:
    """The key in `path`; a new random one (0600) when there is none. Processes starting
    together agree: the file appears whole or not at all."""
    for _ in range(50):
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            text = ""
        if text:
            return text.encode()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # atomic; another process's key wins a race
        finally:
            tmp.unlink(missing_ok=True)
        time.sleep(0.01)
    raise RuntimeError(f"cannot read or create the key file {path}")
