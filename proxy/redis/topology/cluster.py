"""Redis Cluster (``REDIS_CLUSTER=true``): keys spread over the primaries by slot.

Every key Iris uses stands alone (each Lua script touches one key), so no hash tags are needed.
A dead node costs one short retry, not redis-py's default backoff of seconds. Pub/sub: a PUBLISH
on any node reaches the subscribers of every node, so the bus listens on one live node, chosen
afresh after each outage (redis-py's cluster pub/sub picks its node from the pattern's slot and
stays there even when that node is dead). Memory and key counts are summed over the primaries."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster

from proxy.config.redis import RedisSettings
from proxy.redis.client import OUTAGE, connection_options
from proxy.redis.topology.base import NodeMemory, SwitchHook, Write, node_memory, set_all


class ClusterTopology:
    name = "cluster"

    def __init__(self, settings: RedisSettings):
        self.settings = settings
        self.client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in settings.nodes],
            username=settings.username, password=settings.password, ssl=settings.tls,
            require_full_coverage=False,  # uncovered slots fail their own commands (an outage), not start-up
            health_check_interval=30, **connection_options(settings))
        self.switches = 0
        self.switch_hooks: list[SwitchHook] = []
        self._listening: aioredis.Redis | None = None

    def start(self) -> None:
        return None

    async def ping(self) -> None:
        await self.client.ping(target_nodes=RedisCluster.PRIMARIES)

    async def subscriber(self) -> PubSub:
        """A pub/sub connection on the first node of the cluster, in random order, that answers."""
        await self.client.initialize()
        await self._forget_listening()
        nodes = self.client.get_nodes()
        random.shuffle(nodes)
        failure: BaseException | None = None
        for node in nodes:
            client = aioredis.Redis(host=node.host, port=int(node.port), username=self.settings.username,
                                    password=self.settings.password, ssl=self.settings.tls,
                                    **connection_options(self.settings))
            try:
                await client.ping()
            except OUTAGE as exc:
                failure = exc
                await client.aclose()
                continue
            self._listening = client
            return client.pubsub(ignore_subscribe_messages=True)
        raise failure or ConnectionError("the cluster names no node")

    async def write(self, items: list[Write]) -> bool:
        """No replica is waited for (REDIS_WAIT_REPLICAS is refused with a cluster)."""
        await set_all(self.client, items)
        return True

    async def memory(self) -> list[NodeMemory]:
        await self.client.initialize()
        primaries = self.client.get_primaries()
        infos = await asyncio.gather(*(self.client.info("memory", target_nodes=node) for node in primaries))
        keys = await asyncio.gather(*(self.client.dbsize(target_nodes=node) for node in primaries))
        return [node_memory(node.name, info, count)
                for node, info, count in zip(primaries, infos, keys, strict=True)]

    def snapshot(self) -> dict[str, Any]:
        return {"topology": self.name, "primaries": sorted(node.name for node in self.client.get_primaries())}

    async def _forget_listening(self) -> None:
        if self._listening is not None:
            client, self._listening = self._listening, None
            await client.aclose()

    async def close(self) -> None:
        await self._forget_listening()
        await self.client.aclose()
