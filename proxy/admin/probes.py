"""Probes for load balancers, orchestrators and the container health check.

``GET /healthz`` (liveness): the process and its event loop answer; no I/O, so it stays cheap
and never fails because of a dependency. ``GET /readyz`` (readiness): this worker can take
traffic - it is not stopping (``shutdown``: ``draining`` from SIGTERM on), its cache store answers
a read, its database answers a query, Redis answers when REDIS_URL is set. Each check is bounded by
``CHECK_TIMEOUT``; the body names every check and its result, and the status is 503 when one
failed. No secret and no URL appears in either."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from proxy import __version__
from proxy.keys import DATABASE, DRAIN, SHARED, STORE
from proxy.web.responses import json_response

CHECK_TIMEOUT = 2.0
NO_STORE = {"Cache-Control": "no-store"}


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "alive", "version": __version__}, headers=NO_STORE)


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    checks: dict[str, Callable[[], Awaitable[object]]] = {
        "cache": app[STORE].ping,
        "database": lambda: app[DATABASE].run(lambda ctx: ctx.conn.execute("SELECT 1").fetchone()),
    }
    if (shared := app.get(SHARED)) is not None:
        checks["redis"] = shared.topology.ping
    results = {"shutdown": "draining" if app[DRAIN].draining else "ok"}
    results.update(zip(checks, await asyncio.gather(*(_outcome(check) for check in checks.values())),
                       strict=True))
    ready = all(result == "ok" for result in results.values())
    return json_response({"status": "ready" if ready else "not_ready", "checks": results},
                         status=200 if ready else 503, headers=NO_STORE)


async def _outcome(check: Callable[[], Awaitable[object]]) -> str:
    """``ok``, or what went wrong in a few words (the error's kind, never its text: it may hold a URL)."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await check()
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT:g} s"
    except Exception as exc:  # noqa: BLE001 - a probe reports every failure instead of failing itself
        return f"failed ({type(exc).__name__})"
    return "ok"
