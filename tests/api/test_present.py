"""What the API shows: times as RFC 3339 UTC exactly as datetime would, and every shape exactly
the wire contract's (`gnomon.wire`), which the OpenAPI models and the client's types are too."""

import random
import subprocess
import sys
import typing
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gnomon import client, wire
from gnomon.api import present, schemas
from gnomon.api.present import iso
from tests.api.helpers import create_job, noop, trigger, uid

T = 1_700_000_000.25
T_ISO = "2023-11-14T22:13:20.250000Z"


def test_iso_matches_datetime_over_the_whole_range() -> None:
    rng = random.Random(11)
    samples = [0.0, 1.5, -62135596800.0, 253402300799.5, 1795327274.9999996]
    samples += [rng.uniform(-6.2e10, 2.5e11) for _ in range(20000)]
    for t in samples:
        expected = datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")
        assert iso(t) == expected.replace("+00:00", "Z"), t
    assert iso(None) is None


# --- one contract -------------------------------------------------------------------------


def test_every_response_model_is_its_wire_shape() -> None:
    """The OpenAPI models are built from the wire TypedDicts: same names, fields, order."""
    assert set(schemas.MODELS) == set(wire.SHAPES)
    for shape, model in schemas.MODELS.items():
        assert model.__name__ == shape.__name__
        assert list(model.model_fields) == list(wire.fields(shape)), shape.__name__
        for old in wire.old_names(shape):
            assert model.model_fields[old].deprecated, (shape.__name__, old)
    assert schemas.Run is schemas.MODELS[wire.Run]


def test_the_clients_types_are_the_wire_contract() -> None:
    for name in ("Job", "Run", "Schedule", "App", "Backfill", "NextTimes", "NewToken"):
        assert getattr(client, name) is getattr(wire, name)
        keys = list(typing.get_type_hints(getattr(client, name)))
        assert keys == list(getattr(schemas, name).model_fields), name
    assert client.Upcoming is wire.NextTimes and client.Token is wire.NewToken  # old names


def test_the_client_does_not_load_the_server() -> None:
    code = (
        "import sys, gnomon.client; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('gnomon', 'pydantic', 'sqlalchemy', 'fastapi', 'starlette')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['gnomon', 'gnomon.client', 'gnomon.vocabulary', 'gnomon.wire']"


def row_of(shape: type, **given: Any) -> dict[str, Any]:
    """A row with a column for every field of `shape` (instants as epoch seconds)."""
    times = wire.times(shape)
    old = wire.old_names(shape)
    row = {k: T if k in times else f"<{k}>" for k in wire.fields(shape) if k not in old}
    return {**row, **given}


RESERVATION = row_of(wire.Reservation)
ROWS: dict[str, tuple[type, dict[str, Any]]] = {
    "run": (wire.Run, row_of(wire.Run, output="not shown", scheduled_for=None)),
    "claimed_run": (wire.ClaimedRun, row_of(wire.ClaimedRun, output="not shown")),
    "event": (wire.Event, row_of(wire.Event)),
    "fire": (wire.Fire, row_of(wire.Fire)),
    "job": (wire.Job, row_of(wire.Job, deleted_at=None, labels=None)),
    "app": (wire.App, row_of(wire.App, deleted_at=None)),
    "schedule": (wire.Schedule, {**row_of(wire.Schedule), "kind": "every", "expr": "30"}),
    "token": (wire.Token, row_of(wire.Token, secret_hash="not shown")),
    "space": (wire.Space, {"name": "s", "timezone": "UTC", "created_at": T}),
    "reservation": (wire.Reservation, RESERVATION),
    "site": (
        wire.Site,
        {
            **row_of(wire.Site),
            "agents": [{"agent_id": "a", "first_seen_at": T, "last_contact_at": T, "claimed": 1}],
            "reservation": RESERVATION,
        },
    ),
    "site_key": (wire.SiteKey, row_of(wire.SiteKey)),
}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_each_presenter_fills_exactly_its_wire_shape(name: str) -> None:
    shape, row = ROWS[name]
    shown = getattr(present, name)(row)
    assert list(shown) == list(wire.fields(shape))
    for k in wire.times(shape):
        assert shown[k] in (T_ISO, None), (k, shown[k])
    for old, new in wire.old_names(shape).items():
        assert shown[old] == shown[new]


def test_present_run_leaves_columns_out_and_formats_instants() -> None:
    shown = present.run(ROWS["run"][1])
    assert "output" not in shown
    assert shown["scheduled_for"] is None and shown["created_at"] == T_ISO
    assert present.schedule(ROWS["schedule"][1])["every"] == "30s"
    assert present.site(ROWS["site"][1])["agents"][0]["id"] == "a"


def test_shown_refuses_a_field_the_shape_lacks() -> None:
    with pytest.raises(TypeError, match="no field"):
        present.shown(wire.Fire, nope=lambda row: None)


# --- on a server: the served document, old names --------------------------------------------


def test_the_served_document_has_the_wire_fields(api: httpx.Client) -> None:
    doc = api.get("/openapi.json").json()["components"]["schemas"]
    for shape in (wire.Run, wire.Job, wire.App, wire.Reservation, wire.Schedule):
        props = doc[shape.__name__]["properties"]
        assert list(props) == list(wire.fields(shape))
        assert sorted(doc[shape.__name__]["required"]) == sorted(wire.fields(shape))
        for old in wire.old_names(shape):
            assert props[old]["deprecated"] is True
    assert doc["Run"]["properties"]["created_at"]["format"] == "date-time"


def test_a_run_as_submitted_and_as_read_is_the_wire_run(api: httpx.Client) -> None:
    job = create_job(api, noop(), executor=f"site:{uid('wire')}")
    made = trigger(api, job["id"], params={"n": 1})
    assert list(made) == list(wire.fields(wire.Run))
    read = api.get(f"/v1/runs/{made['id']}").json()
    assert list(read) == list(made)
    assert {k: v for k, v in read.items() if k != "updated_at"} == {
        k: v for k, v in made.items() if k != "updated_at"
    }


def test_reservations_take_start_at_and_end_at_and_still_the_old_names(
    api: httpx.Client,
) -> None:
    site = uid("wsite")
    create_job(api, noop(), executor=f"site:{site}")
    url = f"/v1/sites/{site}/reservations"
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(days=400)
    hour = timedelta(hours=1)
    new = api.post(url, json={"start_at": t0.isoformat(), "end_at": (t0 + hour).isoformat()})
    assert new.status_code == 201, new.text
    old = api.post(
        url, json={"start": (t0 + 2 * hour).isoformat(), "end": (t0 + 3 * hour).isoformat()}
    )
    assert old.status_code == 201, old.text
    for r, start in ((new.json(), t0), (old.json(), t0 + 2 * hour)):
        assert list(r) == list(wire.fields(wire.Reservation))
        assert r["start_at"] == r["start"] == iso(start.timestamp())
        assert r["end_at"] == r["end"] == iso((start + hour).timestamp())
    for r in (new, old):
        assert api.delete(f"{url}/{r.json()['id']}").status_code == 204
