"""Who sees the credentials stored in jobs and apps (http headers, environments, URLs with
passwords, credential fields of bodies and params).

A developer (and up) of the row's space sees them as stored: they can change and run the job,
so hiding would protect nothing from them. Anyone below — a viewer — gets them blotted out,
on every route and face that shows the row. What counts as a credential: gnomon.credentials.
"""

from __future__ import annotations

from typing import Any

from gnomon.credentials import mask_json, mask_mapping, mask_url
from gnomon.domain import Principal, Role

Row = dict[str, Any]


def sees_credentials(who: Principal, space: str) -> bool:
    return who.can(space, Role.developer)


def masked_action(action: dict[str, Any]) -> dict[str, Any]:
    """An action with its credentials blotted out."""
    out = dict(action)
    for key in ("headers", "env"):
        if isinstance(out.get(key), dict):
            out[key] = mask_mapping(out[key])
    if isinstance(out.get("url"), str):
        out["url"] = mask_url(out["url"])
    for key in ("body", "params"):
        if isinstance(out.get(key), dict | list):
            out[key] = mask_json(out[key])
    return out


def job(who: Principal, row: Row) -> Row:
    """A job as `who` may see it."""
    if sees_credentials(who, row["space"]):
        return row
    return {**row, "action": masked_action(row["action"]), "params": mask_json(row["params"])}


def jobs(who: Principal, rows: list[Row]) -> list[Row]:
    return [job(who, r) for r in rows]


def app(who: Principal, row: Row) -> Row:
    """An app as `who` may see it."""
    if sees_credentials(who, row["space"]):
        return row
    return {**row, "env": mask_mapping(row["env"] or {})}
