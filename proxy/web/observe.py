"""Per-request observation: a request id (X-Request-Id, and in every log line), Prometheus
counters, and notes for the recent-generations gallery.

It is the one middleware Iris adds for this, kept to a few dictionary look-ups on the hot path;
everything that touches disk or other processes runs on background tasks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.keys import OBSERVER, SETTINGS, STORE
from proxy.lifecycle import stop_tasks
from proxy.logs import REQUEST_ID
from proxy.web.metrics import Metrics
from proxy.web.observer import Observer
from proxy.web.recent import RecentGenerations
from proxy.web.sync import BreakerSync


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    observer = request.app[OBSERVER]
    rid = observer.request_id(request)
    token = REQUEST_ID.set(rid)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects and 304s raised by handlers pass through here
        exc.headers["X-Request-Id"] = rid
        observer.done(request, exc, started)
        raise
    finally:
        REQUEST_ID.reset(token)
    response.headers["X-Request-Id"] = rid
    observer.done(request, response, started)
    return response


async def observe_ctx(app: web.Application) -> AsyncIterator[None]:
    metrics = Metrics()
    recent = RecentGenerations(app[STORE], app[SETTINGS].web.recent_generations)
    app[OBSERVER] = Observer(metrics, recent, app[SETTINGS].image)
    sync = BreakerSync(app, metrics)
    tasks = [asyncio.create_task(recent.run(), name="recent-generations"),
             asyncio.create_task(sync.run(), name="breaker-metrics")]
    yield
    recent.stop()
    await stop_tasks(tasks)
    sync.once()
