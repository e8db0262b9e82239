"""GET /metrics: the Prometheus exposition of every worker, plus the shared cache's gauges."""

from __future__ import annotations

import asyncio

from aiohttp import web

from proxy.keys import IMAGE_CACHE, OBSERVER, SETTINGS
from proxy.shared.report import redis_metrics
from proxy.web.adminauth import require_admin_page
from proxy.web.metrics import CONTENT_TYPE, render_extra


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    if not app[SETTINGS].web.metrics_public:
        await require_admin_page(request)
    observer = app[OBSERVER]
    observer.metrics.flush()
    cache = await app[IMAGE_CACHE].stats()
    cache["entries"] = cache.get("keys")
    body = await asyncio.get_running_loop().run_in_executor(None, observer.metrics.render)
    return web.Response(body=body + render_extra(cache) + redis_metrics(app),
                        headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})
