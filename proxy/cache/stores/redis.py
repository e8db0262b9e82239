"""The shared store: Redis, for several Iris instances behind one load balancer.

Every key carries ``REDIS_PREFIX``. Values written without a TTL of their own (the images) get
``REDIS_CACHE_TTL``, so an unbounded Redis still forgets old images; the hard size bound is
Redis's own ``maxmemory`` with ``maxmemory-policy volatile-lru`` (see the README), which /status
reads back from every node holding data (summed over a cluster's primaries) and warns about when
it is missing. A write says whether the replicas REDIS_WAIT_REPLICAS asks for confirmed it
(``write``). Errors propagate: ``FailoverStore`` decides."""

from __future__ import annotations

from typing import Any

from proxy.redis.topology.base import NodeMemory, Topology

_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
EVICTING = ("volatile-lru", "volatile-lfu")  # only keys with a TTL: the images, never the counters


class RedisStore:
    name = "redis"

    def __init__(self, topology: Topology, *, prefix: str, default_ttl: float):
        self.topology = topology
        self.client = topology.client
        self.prefix = prefix
        self.default_ttl = default_ttl
        self._delete_if = self.client.register_script(_DELETE_IF)

    def ttl(self, ttl: float | None) -> float | None:
        """The TTL a write gets: its own, else REDIS_CACHE_TTL (None: none at all)."""
        return ttl if ttl is not None else (self.default_ttl or None)

    async def room(self) -> None:
        return None  # a full Redis evicts (allkeys-lru) or refuses writes, which counts as an outage

    async def get(self, key: str) -> bytes | None:
        value = await self.client.get(self.prefix + key)
        return value.encode() if isinstance(value, str) else value  # the client never decodes

    async def open_value(self, key: str, *, whole_to: int, head: int) -> bytes | None:
        """Redis keeps no files: the value itself."""
        return await self.get(key)

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await self.write([(key, value, ttl)])

    async def write(self, items: list[tuple[str, bytes, float | None]]) -> bool:
        """``set`` for each (key, value, ttl) in one round trip, saying whether the replicas
        REDIS_WAIT_REPLICAS asks for hold them all."""
        writes = []
        for key, value, ttl in items:
            ttl = self.ttl(ttl)
            writes.append((self.prefix + key, value, None if ttl is None else _ms(ttl)))
        return await self.topology.write(writes)

    async def add(self, key: str, value: bytes, *, ttl: float) -> bool:
        return bool(await self.client.set(self.prefix + key, value, px=_ms(ttl), nx=True))

    async def touch(self, key: str, *, ttl: float) -> bool:
        return bool(await self.client.pexpire(self.prefix + key, _ms(ttl)))

    async def delete(self, key: str) -> bool:
        return bool(await self.client.delete(self.prefix + key))

    async def delete_if(self, key: str, value: bytes) -> bool:
        return bool(await self._delete_if(keys=[self.prefix + key], args=[value]))

    async def incr(self, key: str, delta: int = 1) -> int:
        return int(await self.client.incrby(self.prefix + key, delta))

    async def stats(self) -> dict[str, Any]:
        return memory_stats(await self.topology.memory(), default_ttl=self.default_ttl)

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        """The client belongs to the app's Redis context, which closes it."""


def memory_stats(nodes: list[NodeMemory], *, default_ttl: float) -> dict[str, Any]:
    """Keys and bytes summed over the nodes holding data; the bound is their sum when every node
    has one; one policy when they agree. A cluster also lists each primary."""
    bounded = all(node.maxmemory for node in nodes)
    policies = sorted({node.policy for node in nodes})
    stats: dict[str, Any] = {
        "store": "redis", "keys": sum(node.keys for node in nodes),
        "bytes": sum(node.used_memory for node in nodes),
        "size_limit": sum(node.maxmemory for node in nodes) if bounded and nodes else None,
        "eviction_policy": policies[0] if len(policies) == 1 else ",".join(policies),
        "default_ttl": default_ttl,
    }
    if len(nodes) > 1:
        stats["nodes"] = [{"node": node.node, "keys": node.keys, "bytes": node.used_memory,
                           "size_limit": node.maxmemory or None, "eviction_policy": node.policy}
                          for node in nodes]
    unsafe = [node.node for node in nodes if not node.maxmemory or node.policy not in EVICTING]
    if unsafe:
        where = "" if len(nodes) == 1 else f" (on {', '.join(unsafe)})"
        stats["warning"] = (f"Redis has no maxmemory with a volatile-lru or volatile-lfu policy{where}: set "
                            "maxmemory and maxmemory-policy volatile-lru, or it grows until images "
                            "expire or evicts keys Iris needs")
    return stats


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
