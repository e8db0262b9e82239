"""Fetching the image a backend answered with as a URL, without opening a way into the network
behind Iris (server-side request forgery).

A backend - a third party, or one with a bug - may answer ``{"url": "http://169.254.169.254/..."}``
or a URL on the LAN, and Iris would fetch it from the inside. So the URL's host is resolved first,
and every address it has must be public (``ipaddress``'s ``is_global``), one of the backend's own
addresses (a self-hosted backend serving its own files), or inside ``IMAGE_FETCH_ALLOW``. The
request then goes to the address that was checked (the name kept for the Host header and TLS), so
a second DNS answer cannot swap it, and redirects are followed here, each one checked the same way.
When an address takes no connection, the next one the name has is tried, as a browser would."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

import aiohttp
from yarl import URL

from proxy.config.env import Network
from proxy.config.image import UpstreamTimeouts
from proxy.upstream import transport
from proxy.upstream.errors import ConnectFailed, UpstreamError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], Awaitable[list[str]]]
MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})


async def system_resolver(host: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class AnswerFetcher:
    def __init__(self, session: aiohttp.ClientSession, timeouts: UpstreamTimeouts,
                 resolve: Resolver = system_resolver):
        self.session = session
        self.timeouts = timeouts
        self.resolve = resolve
        self.allowed: tuple[Network, ...] = timeouts.fetch_allow

    async def fetch(self, url: str, backend_url: str, *, label: str) -> bytes:
        """The bytes at ``url`` (capped and timed), fetched only from addresses allowed above."""
        trusted = set(await self._addresses(URL(backend_url).host or "", label, strict=False))
        target = URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            addresses = await self._checked(target, trusted, label)
            location, body = await self._get(target, addresses, label)
            if location is None:
                return body
            target = target.join(URL(location))
        raise UpstreamError(f"the image URL redirects more than {MAX_REDIRECTS} times", backend=label)

    async def _get(self, target: URL, addresses: list[Address], label: str) -> tuple[str | None, bytes]:
        """``(location, b"")`` for a redirect, else ``(None, body)``; the checked addresses are
        tried in turn until one takes the connection."""
        for address in addresses[:-1]:
            try:
                return await self._get_from(target, address, label)
            except ConnectFailed:
                continue
        return await self._get_from(target, addresses[-1], label)

    async def _get_from(self, target: URL, address: Address, label: str) -> tuple[str | None, bytes]:
        async with transport.request(self.session, "GET", str(_pinned(target, address)), label=label,
                                limits=transport.timeout(self.timeouts.backend, self.timeouts.connect),
                                allow_redirects=False, headers={"Host": _host_header(target)},
                                server_hostname=target.raw_host if target.scheme == "https" else None,
                                ) as resp:
            location = resp.headers.get("Location")
            if resp.status in REDIRECTS and location:
                return location, b""
            if resp.status >= 400:
                raise UpstreamError(f"HTTP {resp.status} for the image URL", backend=label)
            return None, await transport.read_capped(resp, self.timeouts.fetch_max_bytes, label=label)

    async def _checked(self, target: URL, trusted: set[Address], label: str) -> list[Address]:
        if target.scheme not in ("http", "https") or not target.raw_host:
            raise UpstreamError("the image URL is not an http(s) URL", backend=label)
        addresses = await self._addresses(target.raw_host, label, strict=True)
        for address in addresses:
            if not (address.is_global or address in trusted or any(address in n for n in self.allowed)):
                raise UpstreamError("the image URL points into a private network (IMAGE_FETCH_ALLOW "
                                    "lets chosen networks in)", backend=label)
        return addresses

    async def _addresses(self, host: str, label: str, *, strict: bool) -> list[Address]:
        """The host's addresses (an IP literal is its own); ``strict``: failing to resolve is an error."""
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            pass
        try:
            async with asyncio.timeout(self.timeouts.connect):
                found = await self.resolve(host)
            addresses = list(dict.fromkeys(ipaddress.ip_address(a.split("%")[0]) for a in found))
        except (OSError, TimeoutError, ValueError):
            addresses = []
        if not addresses and strict:
            raise UpstreamError("the image URL's host does not resolve", backend=label)
        return addresses


def _pinned(target: URL, address: Address) -> URL:
    return target if target.raw_host == str(address) else target.with_host(str(address))


def _host_header(target: URL) -> str:
    host = target.raw_host or ""
    host = f"[{host}]" if ":" in host else host
    return host if target.is_default_port() else f"{host}:{target.port}"
