"""Event streams: limited per token or client address and in all, ended when their token is
revoked, and leaving nothing open behind when their clients vanish."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import struct
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.api.helpers import create_job, space_name, sse_events, trigger, uid
from tests.api.test_events import SSE_TIMEOUT
from tests.server import Server, wait_for

PER_CLIENT, TOTAL = 2, 3


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(
        tmp_path_factory.mktemp("streams"),
        GNOMON_EVENTS_STREAMS_PER_CLIENT=str(PER_CLIENT),
        GNOMON_EVENTS_STREAMS_MAX=str(TOTAL),
    ).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def unlimited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(
        tmp_path_factory.mktemp("streams-open"),
        GNOMON_EVENTS_STREAMS_PER_CLIENT="0",
        GNOMON_EVENTS_STREAMS_MAX="0",
    ).start()
    yield srv
    srv.stop()


def viewer(api: httpx.Client) -> tuple[str, str]:
    """A new viewer token of a new space: (its id, its secret)."""
    space = space_name()
    assert api.post("/v1/spaces", json={"name": space}).status_code == 201
    made = api.post("/v1/tokens", json={"name": uid("tok"), "roles": {space: "viewer"}}).json()
    return made["id"], made["token"]


def test_streams_are_limited_per_token_per_address_and_in_all(limited: Server) -> None:
    with limited.client() as api, ExitStack() as open_:
        _, other = viewer(api)
        for _ in range(PER_CLIENT):
            s = open_.enter_context(api.stream("GET", "/v1/events", timeout=SSE_TIMEOUT))
            assert s.status_code == 200
        r = api.get("/v1/events", timeout=SSE_TIMEOUT)
        assert r.status_code == 429, r.text
        assert "GNOMON_EVENTS_STREAMS_PER_CLIENT" in r.json()["error"]["message"]
        assert int(r.headers["retry-after"]) >= 1
        theirs = {"Authorization": f"Bearer {other}"}
        s = open_.enter_context(
            api.stream("GET", "/v1/events", headers=theirs, timeout=SSE_TIMEOUT)
        )
        assert s.status_code == 200
        r = api.get("/v1/events", headers=theirs, timeout=SSE_TIMEOUT)
        assert r.status_code == 503, r.text
        assert "GNOMON_EVENTS_STREAMS_MAX" in r.json()["error"]["message"]
        assert "retry-after" in r.headers
    # Closed streams give their slots back; tokenless face streams count per address.
    with httpx.Client(base_url=limited.url, timeout=SSE_TIMEOUT) as anon, ExitStack() as open_:

        def opened() -> httpx.Response:
            return open_.enter_context(anon.stream("GET", "/jobs/events/dome"))

        assert wait_for(lambda: opened().status_code == 200, timeout=5)
        assert opened().status_code == 200
        r = anon.get("/jobs/events/dome")
        assert r.status_code == 429, r.text
        assert "GNOMON_EVENTS_STREAMS_PER_CLIENT" in r.text
        assert "retry-after" in r.headers


def _db_fds(pid: int) -> int:
    """Descriptors of the server open on its database (one closed while counting is not)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += "gnomon.db" in os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
    return count


async def _aborted(port: int, token: str, path: str) -> None:
    """Open a stream and drop it (RST) a moment later, mid-answer or before."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
        await writer.drain()
        await asyncio.sleep(random.uniform(0, 0.3))
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    except OSError:
        pass


async def _health_s(url: str) -> float:
    async with httpx.AsyncClient(timeout=30) as client:
        t0 = time.monotonic()
        assert (await client.get(url + "/healthz")).status_code == 200
        return time.monotonic() - t0


async def _hold(port: int, token: str, n: int, url: str) -> float:
    """Hold `n` streams open; the slowest /healthz meanwhile."""
    conns = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        auth = f"Authorization: Bearer {token}\r\n"
        writer.write(f"GET /v1/events HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
        conns.append((reader, writer))
    for reader, _ in conns:
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    worst = max([await _health_s(url) for _ in range(10)])
    for _, writer in conns:
        writer.close()
    return worst


def test_aborted_streams_leave_no_descriptors_behind(unlimited: Server) -> None:
    assert unlimited.proc is not None
    pid, token = unlimited.proc.pid, unlimited.token
    with unlimited.client() as api:
        job = create_job(api)
        trigger(api, job["id"])
    paths = ["/v1/events", "/v1/sites/dome/events", "/jobs/events/dome"]

    async def bursts() -> None:
        for path in paths:
            anonymous = path.startswith("/jobs")
            await asyncio.gather(
                *(_aborted(unlimited.port, "" if anonymous else token, path) for _ in range(500))
            )

    asyncio.run(bursts())
    # At most the pools' connections stay open: the writer and 8 readers, with their logs.
    most = 2 * 9 + 1
    wait_for(lambda: _db_fds(pid) <= most, timeout=10, interval=0.5)
    worst = asyncio.run(_hold(unlimited.port, token, 500, unlimited.url))
    assert worst < 2.0, f"/healthz took {worst:.2f} s with 500 streams open"
    wait_for(lambda: _db_fds(pid) <= most, timeout=10, interval=0.5)


def test_a_stream_ends_when_its_token_is_revoked(api: httpx.Client, server: Server) -> None:
    token_id, secret = viewer(api)
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=SSE_TIMEOUT) as mine:
        ticket = mine.post("/v1/events/ticket").json()["ticket"]
        with (
            mine.stream("GET", "/v1/events") as by_header,
            httpx.Client(base_url=server.url, timeout=SSE_TIMEOUT) as anon,
            anon.stream("GET", "/v1/events", params={"ticket": ticket}) as by_ticket,
        ):
            assert by_header.status_code == by_ticket.status_code == 200
            assert api.delete(f"/v1/tokens/{token_id}").status_code == 204
            revoked = time.monotonic()
            for stream in (by_header, by_ticket):
                events = list(sse_events(stream, time.monotonic() + 10))
                assert [e.get("event") for e in events] == ["closed"], events
                assert "revoked" in events[0]["data"]["reason"]
            assert time.monotonic() - revoked < 5


def test_a_revocation_reaches_other_processes_within_the_token_cache_time(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cache_s = 1.0
    env = {"GNOMON_TOKEN_CACHE_S": str(cache_s)}
    a = Server(tmp_path_factory.mktemp("a"), postgres_url, **env).start()
    b = Server(tmp_path_factory.mktemp("b"), postgres_url, **env).start()
    try:
        with a.client(a.token) as api:
            token_id, secret = viewer(api)
            with (
                httpx.Client(base_url=b.url, headers={"Authorization": f"Bearer {secret}"}) as on_b,
                on_b.stream("GET", "/v1/events", timeout=SSE_TIMEOUT) as stream,
            ):
                assert on_b.get("/v1/jobs").status_code == 200  # cached on b now
                assert api.delete(f"/v1/tokens/{token_id}").status_code == 204
                revoked = time.monotonic()
                wait_for(lambda: on_b.get("/v1/jobs").status_code == 401, timeout=5)
                refused = time.monotonic() - revoked
                events = list(sse_events(stream, time.monotonic() + 10))
                closed = time.monotonic() - revoked
        assert refused <= cache_s + 0.5, refused
        assert [e.get("event") for e in events] == ["closed"]
        assert closed <= cache_s + 1 + 1, closed
    finally:
        a.stop()
        b.stop()
