"""Spaces, tokens and memberships."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.store._sql import mappings, upsert_insert
from gnomon.store.schema import members, spaces, tokens


async def count_tokens(conn: AsyncConnection) -> int:
    return (await conn.execute(sa.select(sa.func.count()).select_from(tokens))).scalar_one()


async def ensure_space(conn: AsyncConnection, name: str, now: float) -> None:
    stmt = upsert_insert(conn, spaces).values(
        name=name, timezone="UTC", created_at=now, guid=str(uuid.uuid4())
    )
    await conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))


async def insert_space(conn: AsyncConnection, row: dict[str, Any]) -> bool:
    stmt = upsert_insert(conn, spaces).values(**row).on_conflict_do_nothing(index_elements=["name"])
    return (await conn.execute(stmt)).rowcount == 1


async def get_space(conn: AsyncConnection, name: str) -> dict[str, Any] | None:
    row = (await conn.execute(sa.select(spaces).where(spaces.c.name == name))).first()
    return dict(row._mapping) if row else None


async def space_by_guid(conn: AsyncConnection, guid: str) -> dict[str, Any] | None:
    row = (await conn.execute(sa.select(spaces).where(spaces.c.guid == guid))).first()
    return dict(row._mapping) if row else None


async def list_spaces(conn: AsyncConnection, names: list[str] | None) -> list[dict[str, Any]]:
    stmt = sa.select(spaces).order_by(spaces.c.name)
    if names is not None:
        stmt = stmt.where(spaces.c.name.in_(names))
    return mappings(await conn.execute(stmt))


async def list_members(conn: AsyncConnection, space_names: list[str]) -> list[dict[str, Any]]:
    stmt = (
        sa.select(members.c.space, members.c.role, tokens.c.id.label("token_id"), tokens.c.name)
        .join(tokens, tokens.c.id == members.c.token_id)
        .where(members.c.space.in_(space_names), tokens.c.revoked_at.is_(None))
        .order_by(members.c.space, tokens.c.name)
    )
    return mappings(await conn.execute(stmt))


async def set_member(conn: AsyncConnection, space: str, token_id: str, role: str) -> None:
    stmt = upsert_insert(conn, members).values(space=space, token_id=token_id, role=role)
    stmt = stmt.on_conflict_do_update(index_elements=["token_id", "space"], set_={"role": role})
    await conn.execute(stmt)


async def delete_member(conn: AsyncConnection, space: str, token_id: str) -> bool:
    stmt = sa.delete(members).where(members.c.space == space, members.c.token_id == token_id)
    return (await conn.execute(stmt)).rowcount > 0


async def insert_token(conn: AsyncConnection, row: dict[str, Any], roles: dict[str, str]) -> None:
    await conn.execute(tokens.insert().values(**row))
    if roles:
        await conn.execute(
            members.insert(),
            [{"token_id": row["id"], "space": s, "role": r} for s, r in roles.items()],
        )


async def token_by_hash(conn: AsyncConnection, digest: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            sa.select(tokens).where(tokens.c.hash == digest, tokens.c.revoked_at.is_(None))
        )
    ).first()
    if row is None:
        return None
    token = dict(row._mapping)
    token["roles"] = await roles_of(conn, token["id"])
    return token


async def roles_of(conn: AsyncConnection, token_id: str) -> dict[str, str]:
    rows = await conn.execute(
        sa.select(members.c.space, members.c.role).where(members.c.token_id == token_id)
    )
    return {r.space: r.role for r in rows}


async def get_token(conn: AsyncConnection, token_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(sa.select(tokens).where(tokens.c.id == token_id))).first()
    if row is None:
        return None
    token = dict(row._mapping)
    token["roles"] = await roles_of(conn, token_id)
    return token


async def list_tokens(conn: AsyncConnection, spaces_in: list[str] | None) -> list[dict[str, Any]]:
    stmt = sa.select(tokens).order_by(tokens.c.id)
    if spaces_in is not None:
        stmt = stmt.where(
            tokens.c.id.in_(sa.select(members.c.token_id).where(members.c.space.in_(spaces_in)))
        )
    items = mappings(await conn.execute(stmt))
    ids = [t["id"] for t in items]
    roles: dict[str, dict[str, str]] = {i: {} for i in ids}
    if ids:
        rows = await conn.execute(
            sa.select(members.c.token_id, members.c.space, members.c.role).where(
                members.c.token_id.in_(ids)
            )
        )
        for r in rows:
            roles[r.token_id][r.space] = r.role
    for t in items:
        t["roles"] = roles[t["id"]]
    return items


async def revoke_token(conn: AsyncConnection, token_id: str, now: float) -> bool:
    stmt = (
        sa.update(tokens)
        .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return (await conn.execute(stmt)).rowcount > 0
