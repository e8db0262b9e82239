"""Opens the hosting stage when IMAGE_HOSTING_ENABLED; ``app[HOSTING]`` is None otherwise."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.cache.front import MemoryFront
from proxy.config.backends import public_url
from proxy.hosting.registry import make_uploader
from proxy.hosting.stage import HostingStage
from proxy.keys import FLIGHT, HOSTING, HTTP, IMAGE_CACHE, SETTINGS

log = logging.getLogger(__name__)


async def hosting_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    cfg = settings.hosting
    stage = None
    if cfg.enabled:
        memory = settings.cache
        fetched: MemoryFront[bytes] = MemoryFront(memory.memory_bytes, memory.memory_item_bytes)
        stage = HostingStage(cfg, make_uploader(cfg, app[HTTP]), app[IMAGE_CACHE], app[FLIGHT], app[HTTP],
                             fetch_cap=settings.image.timeouts.fetch_max_bytes,
                             deadline=settings.server.request_deadline,
                             fetched=fetched)
        log.info("image hosting: %s at %s, answering by %s", cfg.provider, public_url(cfg.url), cfg.response)
    app[HOSTING] = stage
    yield


async def hosting_status(app: web.Application) -> dict[str, object]:
    """For the admin /status: the host and the upload counts, never the key or auth code."""
    cfg = app[SETTINGS].hosting
    stage = app[HOSTING]
    if stage is None:
        return {"enabled": False}
    return {"enabled": True, "provider": cfg.provider, "url": public_url(cfg.url), "response": cfg.response,
            "key": bool(cfg.key), "auth_code": bool(cfg.auth_code), "uploads": await stage.stats()}
