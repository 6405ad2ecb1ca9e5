"""The TSM face behind the request guard, on both stores, with a local-executor template: a
body over the limit is refused before it is read, NUL and lone surrogates never reach argv,
and no parameter reads as an option."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import Server, drop_postgres, fresh_postgres

TEMPLATES = """
[templates.echo]
executor = "local"
faces = ["tsm"]
argv = ["echo", "{msg}", "{n}", "--count={m}"]
params.msg = { type = "string" }
params.n = { type = "int", required = false, default = 1 }
params.m = { type = "int", required = false, default = 1 }
"""
ENVELOPE = {"code", "err", "out", "job_id", "run_id"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    data = tmp_path_factory.mktemp(f"gnomon-tsm-guard-{request.param}")
    templates = Path(data) / "templates.toml"
    templates.write_text(TEMPLATES)
    url = fresh_postgres() if request.param == "postgresql" else None
    srv = Server(data / "data", url, GNOMON_TEMPLATES_FILE=str(templates)).start()
    yield srv
    srv.stop()
    if url:
        drop_postgres(url)


@pytest.fixture
def tsm(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/tsm", timeout=60) as c:
        yield c


def refusal(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == ENVELOPE and body["run_id"] is None, body
    return body["err"]


def test_a_good_request_still_runs(tsm: httpx.Client) -> None:
    r = tsm.post("/echo/run", json={"msg": "hello", "n": 3})
    assert r.status_code == 200, r.text
    assert r.json()["code"] == 0 and r.json()["run_id"]


def test_nul_in_a_parameter_is_refused_by_the_guard(tsm: httpx.Client) -> None:
    err = refusal(tsm.post("/echo/run", json={"msg": "a\x00b"}), 400)
    assert "msg" in err and "NUL" in err


def test_a_lone_surrogate_is_refused(tsm: httpx.Client) -> None:
    body = b'{"msg": "a\\ud800"}'
    err = refusal(tsm.post("/echo/run", content=body), 400)
    assert "msg" in err and "surrogate" in err


def test_a_huge_integer_is_refused(tsm: httpx.Client) -> None:
    err = refusal(tsm.post("/echo/run", content=b'{"msg": "x", "n": 99999999999999999999}'), 400)
    assert "n" in err and "64-bit" in err


def test_an_oversized_body_is_refused_before_it_is_read(server: Server) -> None:
    """Content-Length announces 400 MiB and nothing follows: the answer comes at once."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(
            b"POST /tsm/echo/run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 419430400\r\n\r\n{"
        )
        answer = b""
        while b'"run_id":null}' not in answer and (chunk := s.recv(65536)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"run_id":null' in answer


def test_a_streamed_oversized_body_is_cut_off(tsm: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"msg": "'
        for _ in range(64):
            yield b"x" * 65536  # 4 MiB in all: over the 1 MiB limit

    err = refusal(tsm.post("/echo/run", content=chunks()), 413)
    assert "over" in err


def test_a_negative_integer_never_becomes_an_option(tsm: httpx.Client, server: Server) -> None:
    err = refusal(tsm.post("/echo/run", json={"msg": "x", "n": -5}), 400)
    assert "parameter 'n'" in err and "option" in err
    with server.client() as api:
        r = api.post("/v1/templates/echo/runs", json={"params": {"msg": "x", "n": -5}})
        assert r.status_code == 422 and "option" in r.text, r.text
    # Inside an item (`--count={m}`) a negative number is only a value.
    r = tsm.post("/echo/run", json={"msg": "x", "m": -5})
    assert r.status_code == 200, r.text
