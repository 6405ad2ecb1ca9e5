"""Rows to JSON: each wire shape (`gnomon.wire`) filled from a row by its field names, times as
RFC 3339 UTC, internal columns left out."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

import orjson
from starlette.responses import Response

from gnomon import wire


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


Row = dict[str, Any]
Presenter = Callable[[Row], dict[str, Any]]


def shown(shape: type, **computed: Callable[[Row], Any]) -> Presenter:
    """The function that fills `shape` from a row: a field takes the row's column of the same
    name, an `Instant` formatted by `iso`, an old name the value of its new one; `computed`
    gives the fields that are not simply a column (each a function of the row)."""
    names = tuple(wire.fields(shape))
    if unknown := set(computed) - set(names):
        raise TypeError(f"{shape.__name__} has no field {sorted(unknown)}")
    old = wire.old_names(shape)
    times = tuple(k for k in wire.times(shape) if k not in computed)

    if not computed and not old:
        # The common case, and the hot one (a run, an event): copy, then format the times.
        def fill(row: Row) -> dict[str, Any]:
            out = {k: row[k] for k in names}
            for k in times:
                v = out[k]
                if v is not None:
                    out[k] = iso(v)
            return out

        return fill

    steps: list[tuple[str, Callable[[Row], Any] | None, str]] = []
    for name in names:
        if name in computed:
            steps.append((name, computed[name], ""))
        elif name in old:
            steps.append((name, None, old[name]))
        elif name in times:
            steps.append((name, lambda row, k=name: iso(row[k]), ""))
        else:
            steps.append((name, itemgetter(name), ""))

    def fill_steps(row: Row) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, get, same in steps:
            out[name] = out[same] if get is None else get(row)
        return out

    return fill_steps


run = shown(wire.Run)
"""A run as the API shows it (hot: one per submission)."""

claimed_run = shown(wire.ClaimedRun)

event = shown(wire.Event)

fire = shown(wire.Fire)

job = shown(
    wire.Job,
    app_id=lambda row: row.get("app_id"),
    labels=lambda row: row.get("labels") or {},
    executor_options=lambda row: row.get("executor_options") or {},
)

app = shown(wire.App)


def _trigger(kind: str) -> Callable[[Row], Any]:
    """A schedule's `expr` under the name of its kind (the other two are null)."""
    if kind == "cron":
        return lambda row: row["expr"] if row["kind"] == "cron" else None
    if kind == "every":
        return lambda row: f"{row['expr']}s" if row["kind"] == "every" else None
    return lambda row: (
        iso(datetime.fromisoformat(row["expr"]).timestamp()) if row["kind"] == "at" else None
    )


schedule = shown(wire.Schedule, cron=_trigger("cron"), every=_trigger("every"), at=_trigger("at"))

token = shown(
    wire.Token,
    roles=lambda row: row.get("roles", {}),
    revoked_at=lambda row: iso(row.get("revoked_at")),
)

space = shown(
    wire.Space,
    guid=lambda row: row.get("guid"),
    members=lambda row: row.get("members", []),
)

reservation = shown(wire.Reservation)

agent = shown(wire.Agent, id=itemgetter("agent_id"))

site = shown(
    wire.Site,
    agents=lambda row: [agent(a) for a in row["agents"]],
    key_set=lambda row: row.get("key_set", False),
    reservation=lambda row: reservation(row["reservation"]) if row.get("reservation") else None,
)

site_key = shown(wire.SiteKey)


def page(items: list[Row], next_cursor: str | None, fn: Presenter) -> dict[str, Any]:
    return {"items": [fn(i) for i in items], "next_cursor": next_cursor}
