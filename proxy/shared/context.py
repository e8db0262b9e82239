"""Cleanup contexts: the Redis connection (only with REDIS_URL), and the breaker's shared
cool-downs once the image pipeline has made its breaker."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.keys import BREAKER, SETTINGS, SHARED
from proxy.shared.breaker import SharedCooldowns
from proxy.shared.bus import RedisBus
from proxy.shared.client import open_client
from proxy.shared.health import RedisHealth
from proxy.shared.state import SharedRedis

log = logging.getLogger(__name__)


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS].redis
    if not settings.enabled:
        yield
        return
    client = open_client(settings)
    health = RedisHealth(client.ping, retry_interval=settings.retry_interval)
    bus = RedisBus(client, health, settings.prefix)
    app[SHARED] = SharedRedis(settings, client, health, bus)
    if await health.check():
        log.info("sharing cache, limits and signals through Redis at %s", settings.public_url)
    bus.start()
    yield
    await bus.close()
    await health.close()
    await client.aclose()


async def cooldowns_ctx(app: web.Application) -> AsyncIterator[None]:
    shared = app.get(SHARED)
    if shared is not None and BREAKER in app:
        SharedCooldowns(app[BREAKER], shared.bus)
    yield
