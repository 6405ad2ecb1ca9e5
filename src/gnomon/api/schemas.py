"""Response models for the OpenAPI document, built from the wire contract (`gnomon.wire`).

Handlers return ready JSON (see present.py); these models only describe it. Each is made from
the TypedDict of the same name: the same fields in the same order, a few given a richer type
(`RICHER`) so the document shows their structure, wire shapes nested inside replaced by their
models, old names marked deprecated.
"""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Field, create_model

from gnomon import wire
from gnomon.domain import Action, ConcurrencyPolicy, RetryPolicy

# Fields whose wire type is a plain dict but whose structure the document should show.
RICHER: dict[str, dict[str, Any]] = {
    "Job": {"action": Action, "retry": RetryPolicy, "concurrency": ConcurrencyPolicy},
}

# What an `Instant` is in the document.
INSTANT = Annotated[str, Field(json_schema_extra={"format": "date-time"})]

MODELS: dict[type, type[BaseModel]] = {}
"""Wire TypedDict → its response model."""


def _swap(tp: Any) -> Any:
    """`tp` with every wire shape in it replaced by its model (they are built in order) and
    every `Instant` by a string of format date-time."""
    if tp is wire.Instant:
        return INSTANT
    if tp in MODELS:
        return MODELS[tp]
    args = get_args(tp)
    if not args:
        return tp
    swapped = tuple(_swap(a) for a in args)
    origin = get_origin(tp)
    if origin in (Union, UnionType):
        return Union[swapped]  # noqa: UP007 - built from a tuple
    return origin[swapped]


def model_of(shape: type) -> type[BaseModel]:
    """The response model of one wire shape (a shape built on another lists all its fields)."""
    richer = RICHER.get(shape.__name__, {})
    old = wire.old_names(shape)
    defs: dict[str, Any] = {}
    for name, tp in wire.fields(shape).items():
        if get_origin(tp) is Annotated:
            tp = tp.__origin__
        info = (
            Field(deprecated=True, description=f"The old name of `{old[name]}`.")
            if name in old
            else Field()
        )
        defs[name] = (richer.get(name, _swap(tp)), info)
    return create_model(  # type: ignore[call-overload,no-any-return]
        shape.__name__, __doc__=shape.__doc__, __module__=__name__, **defs
    )


for _shape in wire.SHAPES:
    MODELS[_shape] = model_of(_shape)

Error = MODELS[wire.Error]
Job = MODELS[wire.Job]
App = MODELS[wire.App]
Run = MODELS[wire.Run]
Schedule = MODELS[wire.Schedule]
Event = MODELS[wire.Event]
Fire = MODELS[wire.Fire]
Space = MODELS[wire.Space]
Token = MODELS[wire.Token]
NewToken = MODELS[wire.NewToken]
JobPage = MODELS[wire.JobPage]
AppPage = MODELS[wire.AppPage]
RunPage = MODELS[wire.RunPage]
SchedulePage = MODELS[wire.SchedulePage]
Events = MODELS[wire.Events]
Fires = MODELS[wire.Fires]
Spaces = MODELS[wire.Spaces]
Tokens = MODELS[wire.Tokens]
RunIds = MODELS[wire.RunIds]
Backfill = MODELS[wire.Backfill]
NextTimes = MODELS[wire.NextTimes]
ClaimedRun = MODELS[wire.ClaimedRun]
Claimed = MODELS[wire.Claimed]
Heartbeat = MODELS[wire.Heartbeat]
Reservation = MODELS[wire.Reservation]
Reservations = MODELS[wire.Reservations]
Site = MODELS[wire.Site]
SiteKey = MODELS[wire.SiteKey]
Sites = MODELS[wire.Sites]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Error, "description": text}
    for code, text in (
        (400, "Malformed request"),
        (401, "Missing or unknown token"),
        (403, "Not allowed in this space"),
        (404, "Not found"),
        (409, "Conflict"),
        (413, "Body too large"),
        (422, "Invalid input; the message names the field"),
    )
}
