"""Fetching a URL an upstream answered with, without opening a way into the network behind Iris
(server-side request forgery): the image a backend answered as a ``url``, and in proxy mode the
image an image host gave the address of.

Such a URL may say ``http://169.254.169.254/...``, a service on the LAN, or another port of the
upstream's own host, and Iris would fetch it from the inside. So a URL is fetched only when

* it is on the upstream's own configured origin (scheme, host and port, exactly as configured):
  Iris talks to that origin anyway, and reaches it the way it reaches the upstream; or
* every address its host resolves to is public (``ipaddress``'s ``is_global``) or inside
  ``IMAGE_FETCH_ALLOW``. The request then goes to an address that was checked (the name kept for
  the Host header and TLS), so a second DNS answer cannot swap it; when an address takes no
  connection, the next one the name has is tried, as a browser would.

Redirects are followed here, at most ``MAX_REDIRECTS``, each one checked the same way."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

import aiohttp
from yarl import URL

from proxy.config.env import Network
from proxy.upstream import transport
from proxy.upstream.errors import ConnectFailed, UpstreamError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], Awaitable[list[str]]]
Origin = tuple[str, str, int | None]
MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})


async def system_resolver(host: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def origin_of(url: URL) -> Origin:
    return url.scheme.lower(), (url.raw_host or "").lower(), url.port


class GuardedFetcher:
    def __init__(self, session: aiohttp.ClientSession, *, total: float, connect: float, cap: int,
                 allow: tuple[Network, ...] = (), resolve: Resolver = system_resolver):
        self.session = session
        self.limits = transport.timeout(total, connect)
        self.connect = connect
        self.cap = cap
        self.allowed = allow
        self.resolve = resolve

    async def fetch(self, url: str, *, trusted: str, label: str) -> bytes:
        """The bytes at ``url`` (capped and timed), fetched only as described above; ``trusted`` is
        the upstream's configured URL, whose origin is its own."""
        home = origin_of(URL(trusted))
        try:
            target = URL(url)
        except ValueError:
            raise UpstreamError("the image URL is not an http(s) URL", backend=label) from None
        for _ in range(MAX_REDIRECTS + 1):
            location, body = await self._get(target, home, label)
            if location is None:
                return body
            try:
                target = target.join(URL(location))
            except ValueError:
                raise UpstreamError("the image URL redirects to something that is no URL",
                                    backend=label) from None
        raise UpstreamError(f"the image URL redirects more than {MAX_REDIRECTS} times", backend=label)

    async def _get(self, target: URL, home: Origin, label: str) -> tuple[str | None, bytes]:
        """``(location, b"")`` for a redirect, else ``(None, body)``."""
        if target.scheme not in ("http", "https") or not target.raw_host:
            raise UpstreamError("the image URL is not an http(s) URL", backend=label)
        if origin_of(target) == home:
            return await self._get_from(target, None, label)  # as Iris reaches the upstream itself
        addresses = await self._checked(target, label)
        for address in addresses[:-1]:  # checked, all of them: tried in turn until one connects
            try:
                return await self._get_from(target, address, label)
            except ConnectFailed:
                continue
        return await self._get_from(target, addresses[-1], label)

    async def _get_from(self, target: URL, address: Address | None,
                        label: str) -> tuple[str | None, bytes]:
        pinned = {} if address is None else {
            "headers": {"Host": _host_header(target)},
            "server_hostname": target.raw_host if target.scheme == "https" else None}
        url = target if address is None else _pinned(target, address)
        async with transport.request(self.session, "GET", str(url), label=label, limits=self.limits,
                                     allow_redirects=False, **pinned) as resp:
            location = resp.headers.get("Location")
            if resp.status in REDIRECTS and location:
                return location, b""
            if not 200 <= resp.status < 300:
                raise await transport.status_error(resp, label=label, own_url=True)
            return None, await transport.read_capped(resp, self.cap, label=label)

    async def _checked(self, target: URL, label: str) -> list[Address]:
        addresses = await self._addresses(target.raw_host or "", label)
        for address in addresses:
            if not (address.is_global or any(address in n for n in self.allowed)):
                raise UpstreamError("the image URL points into a private network (IMAGE_FETCH_ALLOW "
                                    "lets chosen networks in)", backend=label)
        return addresses

    async def _addresses(self, host: str, label: str) -> list[Address]:
        """The host's addresses (an IP literal is its own); failing to resolve is an error."""
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            pass
        try:
            async with asyncio.timeout(self.connect):
                found = await self.resolve(host)
            addresses = list(dict.fromkeys(ipaddress.ip_address(a.split("%")[0]) for a in found))
        except (OSError, TimeoutError, ValueError):
            addresses = []
        if not addresses:
            raise UpstreamError("the image URL's host does not resolve", backend=label)
        return addresses


def _pinned(target: URL, address: Address) -> URL:
    return target if target.raw_host == str(address) else target.with_host(str(address))


def _host_header(target: URL) -> str:
    host = target.raw_host or ""
    host = f"[{host}]" if ":" in host else host
    return host if target.is_default_port() else f"{host}:{target.port}"
