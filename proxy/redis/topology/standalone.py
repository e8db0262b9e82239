"""One Redis server (``redis://``, ``rediss://``, ``unix://``), through redis-py's own URL reading."""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from proxy.config.redis import RedisSettings
from proxy.redis.client import connection_options
from proxy.redis.topology.base import NodeMemory, SwitchHook, Write, node_memory, set_all

REWAIT_AFTER = 1.0


class OneMaster:
    """What a deployment with one master to write to does alike, wherever that master is."""

    client: aioredis.Redis
    settings: RedisSettings
    _no_wait_until = 0.0

    def where(self) -> str:
        """The master's address, for /status."""
        raise NotImplementedError

    async def ping(self) -> None:
        await self.client.ping()

    async def write(self, items: list[Write]) -> bool:
        """The SETs, then WAIT for ``REDIS_WAIT_REPLICAS``, in one pipeline: WAIT counts only the
        writes made on the connection it is sent on. After a WAIT that fell short (the master has
        lost its replica, or is no longer the master), writes do not wait for ``REWAIT_AFTER``
        seconds and count as unconfirmed, so a master without replicas costs one wait a second,
        not one a write."""
        replicas = self.settings.wait_replicas
        if not replicas:
            await set_all(self.client, items)
            return True
        if time.monotonic() < self._no_wait_until:
            await set_all(self.client, items)
            return False
        wait_ms = max(1, int(self.settings.wait_timeout * 1000))
        if await set_all(self.client, items, (replicas, wait_ms)) >= replicas:
            return True
        self._no_wait_until = time.monotonic() + REWAIT_AFTER
        return False

    async def memory(self) -> list[NodeMemory]:
        info = await self.client.info("memory")
        return [node_memory(self.where(), info, await self.client.dbsize())]


class Standalone(OneMaster):
    name = "standalone"

    def __init__(self, settings: RedisSettings):
        assert settings.url is not None
        self.settings = settings
        self.client = aioredis.Redis.from_url(settings.url, health_check_interval=30,
                                              **connection_options(settings))
        self.switches = 0
        self.switch_hooks: list[SwitchHook] = []

    def start(self) -> None:
        return None

    async def subscriber(self) -> PubSub:
        return self.client.pubsub(ignore_subscribe_messages=True)

    def where(self) -> str:
        options = self.client.connection_pool.connection_kwargs
        return str(options.get("path") or f"{options.get('host')}:{options.get('port')}")

    def snapshot(self) -> dict[str, Any]:
        return {"topology": self.name}

    async def close(self) -> None:
        await self.client.aclose()
