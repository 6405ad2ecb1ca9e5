"""Rows to JSON: times as RFC 3339 UTC, internal columns left out."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from starlette.responses import Response


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def no_content() -> Response:
    return Response(status_code=204)


@lru_cache(maxsize=4096)
def _second(s: int) -> str:
    tm = time.gmtime(s)
    return (
        f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}"
        f"T{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
    )


_last_iso: tuple[float, str] = (math.nan, "")


def iso(t: float | None) -> str | None:
    """RFC 3339 UTC to the microsecond (hot: several per run shown, often the same instant)."""
    global _last_iso
    if t is None:
        return None
    if _last_iso[0] == t:
        return _last_iso[1]
    s = math.floor(t)
    us = round((t - s) * 1e6)
    if us == 1_000_000:
        s, us = s + 1, 0
    text = f"{_second(s)}.{us:06d}Z"
    _last_iso = (t, text)
    return text


def parse_time(value: str | None, field: str) -> float | None:
    from gnomon.errors import Invalid

    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Invalid(field, f"not an RFC 3339 time: {value!r}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


RUN_TIMES = (
    "scheduled_for",
    "not_before",
    "lease_expires_at",
    "created_at",
    "claimed_at",
    "started_at",
    "finished_at",
    "updated_at",
)


_RUN_TIMES = frozenset(RUN_TIMES)
_RUN_HIDDEN = frozenset(("output", "action", "retry", "job_name"))


def run(row: dict[str, Any]) -> dict[str, Any]:
    """A run as the API shows it (hot: one pass over the row)."""
    return {
        k: iso(v) if v is not None and k in _RUN_TIMES else v
        for k, v in row.items()
        if k not in _RUN_HIDDEN
    }


def job(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "space": row["space"],
        "name": row["name"],
        "action": row["action"],
        "executor": row["executor"],
        "timeout_s": row["timeout_s"],
        "retry": row["retry"],
        "concurrency": row["concurrency"],
        "params": row["params"],
        "app": row.get("app_id"),
        "labels": row.get("labels") or {},
        "executor_options": row.get("executor_options") or {},
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def app(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "guid": row["id"],
        "space": row["space"],
        "name": row["name"],
        "cwd": row["cwd"],
        "env": row["env"],
        "executor": row["executor"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def schedule(row: dict[str, Any]) -> dict[str, Any]:
    kind, expr = row["kind"], row["expr"]
    return {
        "id": row["id"],
        "job_id": row["job_id"],
        "space": row["space"],
        "kind": kind,
        "cron": expr if kind == "cron" else None,
        "every": f"{expr}s" if kind == "every" else None,
        "at": iso(datetime.fromisoformat(expr).timestamp()) if kind == "at" else None,
        "timezone": row["timezone"],
        "enabled": row["enabled"],
        "overlap": row["overlap"],
        "catchup_window_s": row["catchup_window_s"],
        "catchup": row["catchup"],
        "jitter_s": row["jitter_s"],
        "params": row["params"],
        "next_fire_at": iso(row["next_fire_at"]),
        "last_fire_at": iso(row["last_fire_at"]),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def fire(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "fire_at": iso(row["fire_at"]),
        "until_at": iso(row["until_at"]),
        "count": row["count"],
        "status": row["status"],
        "recorded_at": iso(row["recorded_at"]),
    }


def event(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "at": iso(row["at"])}


def token(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "admin": row["admin"],
        "roles": row.get("roles", {}),
        "created_at": iso(row["created_at"]),
        "revoked_at": iso(row.get("revoked_at")),
    }


def space(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "guid": row.get("guid"),
        "timezone": row["timezone"],
        "created_at": iso(row["created_at"]),
        "members": row.get("members", []),
    }


def page(items: list[dict[str, Any]], next_cursor: str | None, fn: Any) -> dict[str, Any]:
    return {"items": [fn(i) for i in items], "next_cursor": next_cursor}


def claimed_run(row: dict[str, Any]) -> dict[str, Any]:
    return {**run(row), "job_name": row["job_name"], "action": row["action"]}


def reservation(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "space": row["space"],
        "site": row["site"],
        "owner": row["owner"],
        "owner_name": row["owner_name"],
        "start": iso(row["start_at"]),
        "end": iso(row["end_at"]),
        "note": row["note"],
        "created_at": iso(row["created_at"]),
    }


def site(row: dict[str, Any]) -> dict[str, Any]:
    held = row.get("reservation")
    return {
        "site": row["site"],
        "queued": row["queued"],
        "claimed": row["claimed"],
        "running": row["running"],
        "last_contact_at": iso(row["last_contact_at"]),
        "agents": [
            {
                "id": a["agent_id"],
                "first_seen_at": iso(a["first_seen_at"]),
                "last_contact_at": iso(a["last_contact_at"]),
                "claimed": a["claimed"],
            }
            for a in row["agents"]
        ],
        "key_set": row.get("key_set", False),
        "reservation": reservation(held) if held else None,
    }


def site_key(row: dict[str, Any]) -> dict[str, Any]:
    return {"site": row["site"], "key": row["key"], "created_at": iso(row["created_at"])}
