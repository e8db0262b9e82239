"""What one process holds for scale-out: the Redis client, its health and the signal bus, opened
together (``SharedRedis.open``) and closed together."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis.asyncio as aioredis

from proxy.config.redis import RedisSettings
from proxy.redis.bus import RedisBus
from proxy.redis.client import open_client
from proxy.redis.health import RedisHealth

log = logging.getLogger(__name__)


@dataclass
class SharedRedis:
    settings: RedisSettings
    client: aioredis.Redis
    health: RedisHealth
    bus: RedisBus

    @classmethod
    async def open(cls, settings: RedisSettings) -> SharedRedis:
        """Connected and listening for signals; Iris starts even while Redis is down."""
        client = open_client(settings)
        health = RedisHealth(client.ping, retry_interval=settings.retry_interval)
        shared = cls(settings, client, health, RedisBus(client, health, settings.prefix))
        if await health.check():
            log.info("sharing cache, limits and signals through Redis at %s", settings.public_url)
        shared.bus.start()
        return shared

    def snapshot(self) -> dict[str, object]:
        return {"url": self.settings.public_url, "prefix": self.settings.prefix,
                **self.health.snapshot(), "signals_connected": self.bus.connected,
                "signals_received": self.bus.received}

    async def close(self) -> None:
        await self.bus.close()
        await self.health.close()
        await self.client.aclose()
