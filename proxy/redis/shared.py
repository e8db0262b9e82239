"""What one process holds for scale-out: the Redis topology (its client), its health and the
signal bus, opened together (``SharedRedis.open``) and closed together."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from proxy.config.redis import RedisSettings
from proxy.redis.bus import RedisBus
from proxy.redis.client import RedisClient
from proxy.redis.health import RedisHealth
from proxy.redis.topology.base import Topology
from proxy.redis.topology.registry import open_topology

log = logging.getLogger(__name__)


@dataclass
class SharedRedis:
    settings: RedisSettings
    topology: Topology
    health: RedisHealth
    bus: RedisBus

    @property
    def client(self) -> RedisClient:
        return self.topology.client

    @classmethod
    async def open(cls, settings: RedisSettings) -> SharedRedis:
        """Connected and listening for signals; Iris starts even while Redis is down."""
        topology = open_topology(settings)
        health = RedisHealth(topology.ping, retry_interval=settings.retry_interval)
        shared = cls(settings, topology, health, RedisBus(topology, health, settings.prefix))
        if await health.check():
            log.info("sharing cache, limits and signals through Redis (%s) at %s", topology.name,
                     settings.public_url)
        topology.start()
        shared.bus.start()
        return shared

    def snapshot(self) -> dict[str, object]:
        return {"url": self.settings.public_url, "prefix": self.settings.prefix, **self.topology.snapshot(),
                **self.health.snapshot(), "signals_connected": self.bus.connected,
                "signals_received": self.bus.received}

    async def close(self) -> None:
        await self.bus.close()
        await self.health.close()
        await self.topology.close()
