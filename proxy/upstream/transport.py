"""How Iris speaks HTTP to upstreams: the one client session of the app, one timeout policy, capped
reads, and failures that all become ``UpstreamError`` with a reason that never leaks a secret.

The timeout policy: an upstream gets its whole time (``total``) for the call itself, counted while
Iris holds a connection to it. A burst of requests to one host can make calls wait for a free
connection in Iris's own pool (``UPSTREAM_CONNECTIONS_PER_HOST``); that wait is not the upstream's
time, so it is bounded separately (by ``total`` again) and, when it runs out, fails the call as a
``LocalWait``, which never counts against the upstream. The session's connector says when a call
starts and stops waiting (``_Connector``), as aiohttp's tracing signals would: a session with any
``TraceConfig`` awaits every one of its signals on every call (five or six: 55 us of CPU a call here),
for the two this needs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from proxy import __version__
from proxy.config.image import UpstreamTimeouts
from proxy.upstream.errors import ConnectFailed, HttpStatus, LocalWait, UpstreamError, error_detail

if TYPE_CHECKING:
    from aiohttp.client_reqrep import ConnectionKey
    from aiohttp.tracing import Trace

ERROR_CAP = 64 * 1024  # how much of an error answer is read for its type and code


def open_session(timeouts: UpstreamTimeouts) -> aiohttp.ClientSession:
    """One connection pool and one TLS context for every upstream call of the app."""
    return aiohttp.ClientSession(
        connector=_Connector(limit=max(256, timeouts.per_host), limit_per_host=timeouts.per_host,
                             ttl_dns_cache=300),
        timeout=aiohttp.ClientTimeout(total=timeouts.backend, sock_connect=timeouts.connect),
        headers={"User-Agent": f"iris-proxy/{__version__}"},
        raise_for_status=False,
        cookie_jar=aiohttp.DummyCookieJar(),  # a backend's cookies are not sent on anyone's next call
    )


class _Budget:
    """One call's time: ``total`` for the upstream, counted only while the call is not waiting for
    a connection in Iris's own pool; each such wait gets ``total`` of its own."""

    def __init__(self, scope: asyncio.Timeout, total: float | None):
        self.scope = scope
        self.total = total
        self.loop = asyncio.get_running_loop()
        self.since = self.loop.time()
        self.spent = 0.0
        self.queued = False
        self._deadline(self.total)

    def queue_start(self) -> None:
        self.spent += self.loop.time() - self.since
        self.queued = True
        self._deadline(self.total)

    def queue_end(self) -> None:
        self.since = self.loop.time()
        self.queued = False
        self._deadline(None if self.total is None else self.total - self.spent)

    def _deadline(self, seconds: float | None) -> None:
        if not self.scope.expired():
            self.scope.reschedule(None if seconds is None else self.loop.time() + max(0.0, seconds))


_CALL: ContextVar[_Budget | None] = ContextVar("iris_upstream_call", default=None)
"""The budget of the call being made in this task (set by ``request`` around aiohttp's request)."""


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connector, telling the call's ``_Budget`` when it waits for a free connection in
    Iris's own pool and when it got one. (A private method of aiohttp's, the one that sends the
    connection_queued signals: ``tests/test_dependency_internals.py`` checks it is still there.)
    A wait that ends in an exception (the time ran out) leaves the budget queued, as the signals did."""

    async def _wait_for_available_connection(self, key: ConnectionKey, traces: list[Trace]) -> None:
        budget = _CALL.get()
        if budget is not None:
            budget.queue_start()
        await super()._wait_for_available_connection(key, traces)
        if budget is not None:
            budget.queue_end()


def timeout(total: float, connect: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total, sock_connect=connect)


@asynccontextmanager
async def request(session: aiohttp.ClientSession, method: str, url: str, *, label: str,
                  limits: aiohttp.ClientTimeout, allow_redirects: bool = True,
                  **kwargs: Any) -> AsyncIterator[aiohttp.ClientResponse]:
    """``session.request`` whose failures all become ``UpstreamError`` with a safe reason; the
    upstream's time (``limits.total``) does not run while the call waits in Iris's own pool."""
    budget: _Budget | None = None
    calling = None
    try:
        async with asyncio.timeout(None) as scope:
            budget = _Budget(scope, limits.total)
            calling = _CALL.set(budget)  # for the connector, while aiohttp connects (redirects too)
            async with session.request(method, url, timeout=aiohttp.ClientTimeout(
                                           total=None, sock_connect=limits.sock_connect),
                                       allow_redirects=allow_redirects, **kwargs) as resp:
                _CALL.reset(calling)
                calling = None
                yield resp
    except aiohttp.ConnectionTimeoutError:
        raise ConnectFailed("connection timed out", backend=label) from None
    except TimeoutError:
        if budget is not None and budget.queued:
            raise LocalWait("no connection came free in Iris's own pool in time "
                            "(UPSTREAM_CONNECTIONS_PER_HOST)", backend=label) from None
        raise UpstreamError("timed out", backend=label) from None
    except aiohttp.ClientResponseError as exc:
        raise UpstreamError(f"HTTP {exc.status}", backend=label) from None
    except aiohttp.ClientConnectorError as exc:
        raise ConnectFailed(f"connection failed ({type(exc).__name__})", backend=label) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise UpstreamError(f"connection failed ({type(exc).__name__})", backend=label) from None
    finally:
        if calling is not None:
            _CALL.reset(calling)


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


def maybe_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


async def status_error(resp: aiohttp.ClientResponse, *, label: str, own_url: bool = False) -> HttpStatus:
    """The error status, with the type and code of an OpenAI-style error body (never its text);
    ``own_url``: the URL was the upstream's own (its 4xx there is no client's mistake)."""
    body = b""
    try:
        while len(body) < ERROR_CAP and (chunk := await resp.content.read(ERROR_CAP - len(body))):
            body += chunk
    except (aiohttp.ClientError, asyncio.IncompleteReadError, OSError):
        pass  # the status alone will do
    return HttpStatus(resp.status, backend=label, detail=error_detail(maybe_json(body)), own_url=own_url)


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def get_bytes(session: aiohttp.ClientSession, url: str, *, label: str, total: float,
                    connect: float, cap: int) -> bytes:
    """GET ``url``: the body, capped and timed; an HTTP error status is an ``HttpStatus``."""
    async with request(session, "GET", url, label=label, limits=timeout(total, connect)) as resp:
        if resp.status >= 400:
            raise await status_error(resp, label=label)
        return await read_capped(resp, cap, label=label)
