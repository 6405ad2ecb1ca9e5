"""Outbound calls (http actions, Cloud Foundry calls) against real local HTTP servers and a real
`gnomon serve`: the allow and deny networks hold on the address connected to, and the run log
keeps a bounded part of the answer without the credentials sent."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from gnomon import outbound
from tests.api.helpers import FINAL, create_job, trigger, wait_state
from tests.server import Server

BIG = 1024 * 1024
SECRET = "s3cr3t-token-value"


@contextmanager
def target() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server: /big answers 1 MiB and a cookie, /echo answers with the request's
    headers, /redirect points at the metadata address; yields (base URL, paths hit)."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path == "/echo":
                body = "".join(f"{k}: {v}\n" for k, v in self.headers.items()).encode()
            else:
                body = b"head-of-the-body " + b"x" * BIG + b" tail-of-the-body"
            self.send_response(200)
            self.send_header("Set-Cookie", "session=very-private")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    finally:
        httpd.shutdown()
        httpd.server_close()


def call(api: httpx.Client, url: str, **action: Any) -> dict[str, Any]:
    job = create_job(api, {"type": "http", "method": "GET", "url": url, **action})
    return wait_state(api, trigger(api, job["id"])["id"], FINAL, timeout=30)


def log_of(api: httpx.Client, run_id: str) -> str:
    return api.get(f"/v1/runs/{run_id}/log").text


# --- the default policy ---------------------------------------------------------------------


def test_the_metadata_address_is_denied_by_default(api: httpx.Client) -> None:
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/"):
        run = call(api, url)
        assert run["state"] == "failed", run
        assert "refused" in run["message"] and "169.254.0.0/16" in run["message"], run
        assert log_of(api, run["id"]) == ""


def test_a_redirect_is_not_followed(api: httpx.Client) -> None:
    with target() as (base, hits):
        run = call(api, base + "/redirect", expect_status=[302])
    assert run["state"] == "succeeded", run
    assert hits == ["/redirect"]
    assert log_of(api, run["id"]).startswith("HTTP 302 Found")


def test_the_log_keeps_a_bounded_part_of_the_answer(api: httpx.Client) -> None:
    with target() as (base, _):
        run = call(api, base + "/big")
    assert run["state"] == "succeeded", run
    log = log_of(api, run["id"])
    assert log.startswith("HTTP 200 OK\nhead-of-the-body ")
    assert "tail-of-the-body" not in log and "very-private" not in log
    assert len(log) < 4096 + 200
    assert "not kept" in log


def test_credentials_sent_are_not_echoed_into_the_log(api: httpx.Client) -> None:
    headers = {"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET + "2", "X-Plain": "ok"}
    with target() as (base, _):
        run = call(api, base + "/echo", headers=headers)
    assert run["state"] == "succeeded", run
    log = log_of(api, run["id"])
    assert "X-Plain: ok" in log and "X-Api-Key: ********\n" in log, log
    assert SECRET not in log
    # A cookie one call was given is not sent by the next.
    with target() as (base, _):
        call(api, base + "/big")
        log = log_of(api, call(api, base + "/echo")["id"])
    assert "Cookie" not in log and "very-private" not in log, log


# --- settings -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def narrowed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that denies loopback, but for one address."""
    srv = Server(
        Path(tmp_path_factory.mktemp("gnomon-outbound")),
        GNOMON_OUTBOUND_DENY="127.0.0.0/8,::1",
        GNOMON_OUTBOUND_ALLOW="127.0.0.2/32,0.0.0.0/0,::/0",
    ).start()
    yield srv
    srv.stop()


def test_a_denied_network_is_never_reached(narrowed: Server) -> None:
    with narrowed.client() as api, target() as (base, hits):
        port = base.rsplit(":", 1)[1]
        for url in (base + "/echo", f"http://localhost:{port}/echo"):
            run = call(api, url)
            assert run["state"] == "failed", run
            assert "denied network 127.0.0.0/8" in run["message"], run
        assert hits == []


def test_a_narrower_allowed_network_opens_a_denied_one(narrowed: Server) -> None:
    with narrowed.client() as api, target() as (base, hits):
        port = base.rsplit(":", 1)[1]
        # The target listens on 127.0.0.1 only: 127.0.0.2 passes the policy and is refused
        # by the kernel — a connection error, not the policy's refusal.
        run = call(api, f"http://127.0.0.2:{port}/echo")
        assert run["state"] == "failed" and "refused:" not in run["message"], run
        assert hits == []


def test_bad_networks_stop_the_server_at_start(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", GNOMON_OUTBOUND_ALLOW="10.0.0.0/33")
    with pytest.raises(RuntimeError, match="not a network"):
        srv.start(timeout=20)


# --- the check and the connection use the same addresses ----------------------------------


def test_every_address_a_name_resolves_to_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name resolving to a harmless and a denied address is refused outright (no choosing
    the harmless one for the check and the other for the connection)."""
    real = socket.getaddrinfo

    def fake(host: str, *args: Any, **kw: Any) -> Any:
        if host == "rebind.test":
            stream = socket.SOCK_STREAM
            return [
                (socket.AF_INET, stream, 6, "", ("127.0.0.1", 80)),
                (socket.AF_INET, stream, 6, "", ("169.254.169.254", 80)),
            ]
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    backend = outbound.CheckedBackend(outbound.Policy())
    with pytest.raises(outbound.Refused, match=r"169\.254\.169\.254"):
        asyncio.run(backend.connect_tcp("rebind.test", 80, timeout=5))


def test_the_connection_goes_to_the_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    class Inner(outbound.httpcore.AsyncNetworkBackend):
        async def connect_tcp(self, host: str, port: int, *args: Any, **kw: Any) -> Any:
            seen.append(host)
            raise outbound.httpcore.ConnectError("stop here")

    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.7", 80))],
    )
    backend = outbound.CheckedBackend(outbound.Policy(), Inner())
    with pytest.raises(outbound.httpcore.ConnectError, match="stop here"):
        asyncio.run(backend.connect_tcp("example.test", 80, timeout=5))
    assert seen == ["192.0.2.7"]


def test_policy_rules() -> None:
    policy = outbound.Policy.of(["10.0.0.0/8", "169.254.7.0/24"], ["10.9.0.0/16"])

    def refused(address: str) -> bool:
        return policy.refusal(ipaddress.ip_address(address)) is not None

    assert not refused("10.1.2.3") and refused("10.9.1.1") and refused("192.168.1.1")
    assert not refused("169.254.7.7") and refused("169.254.169.254")
    assert refused("::ffff:169.254.169.254") and refused("fe80::1")
