"""Helpers for the Cloud Foundry scheduler contract tests: a world of spaces, apps and tokens,
the contract's field orders, and a tiny HTTP endpoint that records what calls send."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from ulid import ULID

from tests.api.helpers import space_name, uid
from tests.server import wait_for

ZERO = "0001-01-01T00:00:00Z"
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

JOB_FIELDS = [
    "guid",
    "name",
    "command",
    "disk_in_mb",
    "memory_in_mb",
    "state",
    "created_at",
    "updated_at",
    "app_guid",
    "space_guid",
]
CALL_FIELDS = ["guid", "name", "url", "auth_header", "created_at", "updated_at"]
CALL_FIELDS += ["app_guid", "space_guid"]
PAGINATION_FIELDS = ["first", "last", "next", "previous", "total_pages", "total_results"]


def schedule_fields(ref: str) -> list[str]:
    return ["guid", "enabled", "expression", "expression_type", "created_at", "updated_at", ref]


def execution_fields(ref: str, *, task: bool, scheduled: bool) -> list[str]:
    head = (
        ["guid", ref] + (["task_guid"] if task else []) + (["schedule_guid"] if scheduled else [])
    )
    tail = ["scheduled_time", "message", "state", "execution_start_time"]
    return head + tail + ["execution_end_time"]


def zero_job(name: str, command: str) -> dict[str, Any]:
    """What the cf plugin sends for `cf create-job`: a whole object, zero-valued but for
    name and command."""
    return {
        "guid": "",
        "name": name,
        "command": command,
        "disk_in_mb": 0,
        "memory_in_mb": 0,
        "state": "",
        "created_at": ZERO,
        "updated_at": ZERO,
        "app_guid": "",
        "space_guid": "",
    }


def zero_call(name: str, url: str, auth_header: str = "default") -> dict[str, Any]:
    return {
        "guid": "",
        "name": name,
        "url": url,
        "auth_header": auth_header,
        "created_at": ZERO,
        "updated_at": ZERO,
        "app_guid": "",
        "space_guid": "",
    }


def zero_schedule(expression: str, ref: str) -> dict[str, Any]:
    return {
        "guid": "",
        "enabled": True,
        "expression": expression,
        "expression_type": "cron_expression",
        "created_at": ZERO,
        "updated_at": ZERO,
        ref: "",
    }


def ulid_of(guid: str) -> str:
    """The native id behind a face guid."""
    return str(ULID.from_uuid(uuid.UUID(guid)))


def guid_of(ulid: str) -> str:
    """The face guid of a native id."""
    return str(ULID.from_str(ulid).to_uuid())


def is_guid(value: Any) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except (ValueError, TypeError, AttributeError):
        return False


def is_time(value: Any) -> bool:
    return isinstance(value, str) and bool(TIME.match(value))


@dataclass
class Tenant:
    """A space with its guid, two apps and a token per role."""

    space: str
    guid: str
    apps: list[str]
    tokens: dict[str, str] = field(default_factory=dict)


def make_tenant(admin: httpx.Client, timezone: str = "UTC") -> Tenant:
    space, guid = space_name("pcf"), str(uuid.uuid4())
    r = admin.post("/v1/spaces", json={"name": space, "guid": guid, "timezone": timezone})
    assert r.status_code == 201, r.text
    apps = []
    for _ in range(2):
        r = admin.post("/v1/apps", json={"name": uid("app"), "space": space})
        assert r.status_code == 201, r.text
        apps.append(r.json()["guid"])
    tenant = Tenant(space, guid, apps)
    for role in ("viewer", "developer", "manager"):
        r = admin.post("/v1/tokens", json={"name": uid(role), "roles": {space: role}})
        assert r.status_code == 201, r.text
        tenant.tokens[role] = r.json()["token"]
    return tenant


def face(base_url: str, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=30)


def wait_history(
    client: httpx.Client, path: str, done: Any, timeout: float = 20
) -> list[dict[str, Any]]:
    """Poll a history route until `done(resources)` holds; returns the resources."""

    def check() -> list[dict[str, Any]] | None:
        r = client.get(path)
        assert r.status_code == 200, r.text
        items = r.json()["resources"]
        return items if done(items) else None

    return wait_for(check, timeout=timeout, interval=0.1)


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@contextmanager
def endpoint(status: int = 200) -> Iterator[tuple[str, list[Hit]]]:
    """A real HTTP server on a free local port that records every request and answers
    `status`; yields (base URL, hits)."""
    hits: list[Hit] = []

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            hits.append(Hit(self.command, self.path, dict(self.headers.items()), body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET = do_PUT = _record

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    finally:
        httpd.shutdown()
        httpd.server_close()
