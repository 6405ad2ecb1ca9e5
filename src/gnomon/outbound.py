"""Outbound calls (http actions, Cloud Foundry calls): where they may connect, and what of the
answer is kept.

The host of every connection is resolved here, every address it resolves to is checked
against the allow and deny networks (GNOMON_OUTBOUND_ALLOW / GNOMON_OUTBOUND_DENY), and the
connection goes to an address that was checked — a name cannot resolve to one address for the
check and another for the connection. Redirects are not followed, and no proxy from the
environment is used (a proxy would make the check moot).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpcore
import httpx

from gnomon.config import OUTBOUND_DENY_DEFAULT, Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Policy:
    """Where outbound calls may connect: into no denied network (the defaults and `deny`) —
    unless an allowed network narrower than it holds the address — and, when `allow` is not
    empty, into one of its networks."""

    allow: tuple[Network, ...] = ()
    deny: tuple[Network, ...] = tuple(ipaddress.ip_network(n) for n in OUTBOUND_DENY_DEFAULT)

    @classmethod
    def of(cls, allow: Iterable[str], deny: Iterable[str] = ()) -> Policy:
        return cls(
            tuple(ipaddress.ip_network(n, strict=False) for n in allow),
            tuple(ipaddress.ip_network(n, strict=False) for n in (*OUTBOUND_DENY_DEFAULT, *deny)),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls.of(settings.outbound_allow, settings.outbound_deny)

    def refusal(self, address: Address) -> str | None:
        """Why `address` may not be connected to; None when it may."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        denied, allowed = _narrowest(self.deny, address), _narrowest(self.allow, address)
        if denied is not None and (allowed is None or allowed.prefixlen <= denied.prefixlen):
            return f"{address} is in the denied network {denied}"
        if self.allow and allowed is None:
            return f"{address} is in no allowed network (GNOMON_OUTBOUND_ALLOW)"
        return None


def _narrowest(networks: Iterable[Network], address: Address) -> Network | None:
    holding = [n for n in networks if n.version == address.version and address in n]
    return max(holding, key=lambda n: n.prefixlen, default=None)


class Refused(httpcore.ConnectError):
    """A connection the outbound policy does not allow."""


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Connections only to checked addresses of the host asked for."""

    def __init__(self, policy: Policy, inner: httpcore.AsyncNetworkBackend | None = None):
        self.policy = policy
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve(host, port, timeout)
        for address in addresses:
            if why := self.policy.refusal(address):
                shown = host if host == str(address) else f"{host} ({address})"
                raise Refused(f"outbound call to {shown} refused: {why}")
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise Refused("outbound calls do not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


async def resolve(host: str, port: int, timeout: float | None) -> list[Address]:
    """Every address `host` resolves to (an address resolves to itself), in resolver order."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
        )
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"resolving {host} took too long") from None
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
    found: list[Address] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise httpcore.ConnectError(f"{host} resolves to no address")
    return found


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, connecting through a CheckedBackend."""

    def __init__(self, policy: Policy):
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=CheckedBackend(policy),
        )


def client(policy: Policy) -> httpx.AsyncClient:
    """A client for outbound calls: the policy on every connection, no redirects followed, no
    proxy or credentials from the environment, and no cookies kept (one job's cookies must
    not reach another job's calls)."""
    return httpx.AsyncClient(
        transport=CheckedTransport(policy),
        follow_redirects=False,
        trust_env=False,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )


def refused(exc: BaseException) -> Refused | None:
    """The policy's refusal behind an httpx error, if that is what it is."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, Refused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
