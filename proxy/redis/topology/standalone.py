"""One Redis server (``redis://``, ``rediss://``, ``unix://``), through redis-py's own URL reading."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from proxy.config.redis import RedisSettings
from proxy.redis.client import connection_options
from proxy.redis.topology.base import NodeMemory, SwitchHook, Write, node_memory


class Standalone:
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

    async def ping(self) -> None:
        await self.client.ping()

    async def subscriber(self) -> PubSub:
        return self.client.pubsub(ignore_subscribe_messages=True)

    async def write(self, items: list[Write]) -> bool:
        return await write_and_wait(self.client, self.settings, items)

    async def memory(self) -> list[NodeMemory]:
        info = await self.client.info("memory")
        options = self.client.connection_pool.connection_kwargs
        where = options.get("path") or f"{options.get('host')}:{options.get('port')}"
        return [node_memory(str(where), info, await self.client.dbsize())]

    def snapshot(self) -> dict[str, Any]:
        return {"topology": self.name}

    async def close(self) -> None:
        await self.client.aclose()


async def write_and_wait(client: aioredis.Redis, settings: RedisSettings, items: list[Write]) -> bool:
    """The SETs, then WAIT for ``REDIS_WAIT_REPLICAS``, in one pipeline: WAIT counts only the
    writes made on the connection it is sent on."""
    if len(items) == 1 and not settings.wait_replicas:
        key, value, px = items[0]
        await client.set(key, value, px=px)
        return True
    async with client.pipeline(transaction=False) as pipe:
        for key, value, px in items:
            pipe.set(key, value, px=px)
        if settings.wait_replicas:
            pipe.execute_command("WAIT", settings.wait_replicas, max(1, int(settings.wait_timeout * 1000)))
        answers = await pipe.execute()
    return not settings.wait_replicas or int(answers[-1]) >= settings.wait_replicas
