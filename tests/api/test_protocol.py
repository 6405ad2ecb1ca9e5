"""Slow and oversized requests: a client that trickles its request is cut off in bounded
time, and the server answers others meanwhile."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.server import Server

READ_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(
        tmp_path_factory.mktemp("slow"), GNOMON_REQUEST_READ_TIMEOUT_S=str(READ_TIMEOUT_S)
    ).start()
    yield srv
    srv.stop()


def _connect(server: Server) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.setblocking(False)
    return s


def _closed(s: socket.socket) -> bool:
    """Whether the server has closed the connection (after what it had to say)."""
    try:
        while s.recv(65536):
            pass
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_trickled_headers_are_cut_off_while_others_are_served(strict: Server) -> None:
    conns = [_connect(strict) for _ in range(100)]
    for s in conns:
        s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    worst = 0.0
    open_ = list(conns)
    while open_ and time.monotonic() - started < READ_TIMEOUT_S + 5:
        for s in open_:
            with contextlib.suppress(OSError):
                s.send(b"X-Slow: 1\r\n")
        t0 = time.monotonic()
        assert httpx.get(strict.url + "/healthz", timeout=5).status_code == 200
        worst = max(worst, time.monotonic() - t0)
        time.sleep(0.25)
        open_ = [s for s in open_ if not _closed(s)]
    took = time.monotonic() - started
    for s in conns:
        s.close()
    assert not open_, f"{len(open_)} trickling connections still open after {took:.1f} s"
    assert took < READ_TIMEOUT_S + 3
    assert worst < 2.0, f"/healthz took {worst:.2f} s while 100 connections trickled"


def test_a_silent_connection_gets_408_and_is_closed(strict: Server) -> None:
    s = socket.create_connection(("127.0.0.1", strict.port), timeout=READ_TIMEOUT_S + 5)
    s.send(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\n")
    answer = b""
    while chunk := s.recv(65536):
        answer += chunk
    s.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_a_body_that_never_ends_is_cut_off(strict: Server) -> None:
    s = socket.create_connection(("127.0.0.1", strict.port), timeout=READ_TIMEOUT_S + 5)
    s.send(
        b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    t0 = time.monotonic()
    while s.recv(65536):
        pass
    s.close()
    assert time.monotonic() - t0 < READ_TIMEOUT_S + 3


def test_oversized_headers_are_refused_with_431(strict: Server) -> None:
    s = socket.create_connection(("127.0.0.1", strict.port), timeout=10)
    s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    try:
        for _ in range(100):
            s.send(b"X-Big: " + b"a" * 8000 + b"\r\n")
    except OSError:
        pass  # closed under the sender: what came back still says why
    answer = s.recv(65536)
    s.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]


def test_kept_alive_connections_still_serve_requests(strict: Server) -> None:
    with strict.client() as api:
        for _ in range(3):
            assert api.get("/v1/jobs").status_code == 200
            time.sleep(READ_TIMEOUT_S / 2)
        big = {"name": "big", "action": {"type": "noop"}, "description": "x" * 200_000}
        assert api.post("/v1/jobs", json=big).status_code in (201, 422)
