"""What one process holds for scale-out: the Redis client, its health and the signal bus."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from proxy.config.redis import RedisSettings
from proxy.shared.bus import RedisBus
from proxy.shared.health import RedisHealth


@dataclass
class SharedRedis:
    settings: RedisSettings
    client: aioredis.Redis
    health: RedisHealth
    bus: RedisBus

    def key(self, name: str) -> str:
        return self.settings.prefix + name

    def snapshot(self) -> dict[str, object]:
        return {"url": self.settings.public_url, "prefix": self.settings.prefix,
                **self.health.snapshot(), "signals_connected": self.bus.connected,
                "signals_received": self.bus.received}
