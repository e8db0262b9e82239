"""How Iris speaks HTTP to upstreams: the one client session of the app, one timeout policy, capped
reads, and failures that all become ``UpstreamError`` with a reason that never leaks a secret."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

from proxy import __version__
from proxy.config.image import UpstreamTimeouts
from proxy.upstream.errors import ConnectFailed, HttpStatus, UpstreamError


def open_session(timeouts: UpstreamTimeouts) -> aiohttp.ClientSession:
    """One connection pool and one TLS context for every upstream call of the app."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=256, limit_per_host=64, ttl_dns_cache=300),
        timeout=aiohttp.ClientTimeout(total=timeouts.backend, sock_connect=timeouts.connect),
        headers={"User-Agent": f"iris-proxy/{__version__}"},
        raise_for_status=False,
        cookie_jar=aiohttp.DummyCookieJar(),  # a backend's cookies are not sent on anyone's next call
    )


def timeout(total: float, connect: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total, sock_connect=connect)


@asynccontextmanager
async def request(session: aiohttp.ClientSession, method: str, url: str, *, label: str,
                  limits: aiohttp.ClientTimeout, allow_redirects: bool = True,
                  **kwargs: Any) -> AsyncIterator[aiohttp.ClientResponse]:
    """``session.request`` whose failures all become ``UpstreamError`` with a safe reason."""
    try:
        async with session.request(method, url, timeout=limits, allow_redirects=allow_redirects,
                                   **kwargs) as resp:
            yield resp
    except aiohttp.ConnectionTimeoutError:
        raise ConnectFailed("connection timed out", backend=label) from None
    except TimeoutError:
        raise UpstreamError("timed out", backend=label) from None
    except aiohttp.ClientResponseError as exc:
        raise UpstreamError(f"HTTP {exc.status}", backend=label) from None
    except aiohttp.ClientConnectorError as exc:
        raise ConnectFailed(f"connection failed ({type(exc).__name__})", backend=label) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise UpstreamError(f"connection failed ({type(exc).__name__})", backend=label) from None


async def read_capped(resp: aiohttp.ClientResponse, cap: int, *, label: str) -> bytes:
    """The body, or ``UpstreamError`` once it passes ``cap`` bytes (checked as it streams)."""
    if resp.content_length is not None and resp.content_length > cap:
        raise UpstreamError(f"answer larger than {cap} bytes", backend=label)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in resp.content.iter_chunked(256 * 1024):
            size += len(chunk)
            if size > cap:
                raise UpstreamError(f"answer larger than {cap} bytes", backend=label)
            chunks.append(chunk)
    except (aiohttp.ClientError, asyncio.IncompleteReadError) as exc:
        raise UpstreamError(f"connection broke ({type(exc).__name__})", backend=label) from None
    return b"".join(chunks)


def parse_json(body: bytes, *, label: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError("answer is not JSON", backend=label) from None


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def get_bytes(session: aiohttp.ClientSession, url: str, *, label: str, total: float,
                    connect: float, cap: int) -> bytes:
    """GET ``url``: the body, capped and timed; an HTTP error status is an ``UpstreamError``."""
    async with request(session, "GET", url, label=label, limits=timeout(total, connect)) as resp:
        if resp.status >= 400:
            raise HttpStatus(resp.status, backend=label)
        return await read_capped(resp, cap, label=label)
