"""The one ``aiohttp.ClientSession`` the whole app shares (one connection pool, one TLS context)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from proxy import __version__
from proxy.keys import HTTP, SETTINGS


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    timeouts = app[SETTINGS].image.timeouts
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=64, ttl_dns_cache=300)
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeouts.backend, sock_connect=timeouts.connect),
        headers={"User-Agent": f"iris-proxy/{__version__}"},
        raise_for_status=False,
        cookie_jar=aiohttp.DummyCookieJar(),  # a backend's cookies are not sent on anyone's next call
    )
    app[HTTP] = session
    yield
    await session.close()
