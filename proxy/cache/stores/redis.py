"""The shared store: Redis, for several Iris instances behind one load balancer.

Every key carries ``REDIS_PREFIX``. Values written without a TTL of their own (the images) get
``REDIS_CACHE_TTL``, so an unbounded Redis still forgets old images; the hard size bound is
Redis's own ``maxmemory`` with ``maxmemory-policy volatile-lru`` (see the README), which /status
reads back and warns about when it is missing. Errors propagate: ``FailoverStore`` decides."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
EVICTING = ("volatile-lru", "volatile-lfu")  # only keys with a TTL: the images, never the counters


class RedisStore:
    name = "redis"

    def __init__(self, client: aioredis.Redis, *, prefix: str, default_ttl: float):
        self.client = client
        self.prefix = prefix
        self.default_ttl = default_ttl
        self._delete_if = client.register_script(_DELETE_IF)

    def _ms(self, ttl: float | None) -> int | None:
        ttl = ttl if ttl is not None else (self.default_ttl or None)
        return None if ttl is None else max(1, int(ttl * 1000))

    async def room(self) -> None:
        return None  # a full Redis evicts (allkeys-lru) or refuses writes, which counts as an outage

    async def get(self, key: str) -> bytes | None:
        value = await self.client.get(self.prefix + key)
        return value.encode() if isinstance(value, str) else value  # the client never decodes

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await self.client.set(self.prefix + key, value, px=self._ms(ttl))

    async def add(self, key: str, value: bytes, *, ttl: float) -> bool:
        return bool(await self.client.set(self.prefix + key, value, px=self._ms(ttl), nx=True))

    async def touch(self, key: str, *, ttl: float) -> bool:
        return bool(await self.client.pexpire(self.prefix + key, max(1, int(ttl * 1000))))

    async def delete(self, key: str) -> bool:
        return bool(await self.client.delete(self.prefix + key))

    async def delete_if(self, key: str, value: bytes) -> bool:
        return bool(await self._delete_if(keys=[self.prefix + key], args=[value]))

    async def incr(self, key: str, delta: int = 1) -> int:
        return int(await self.client.incrby(self.prefix + key, delta))

    async def stats(self) -> dict[str, Any]:
        memory = await self.client.info("memory")
        maxmemory = int(memory.get("maxmemory", 0))
        policy = str(memory.get("maxmemory_policy", "unknown"))
        stats: dict[str, Any] = {
            "store": self.name, "keys": await self.client.dbsize(), "bytes": int(memory["used_memory"]),
            "size_limit": maxmemory or None, "eviction_policy": policy, "default_ttl": self.default_ttl,
        }
        if not maxmemory or policy not in EVICTING:
            stats["warning"] = ("Redis has no maxmemory with a volatile-lru or volatile-lfu policy: set "
                                "maxmemory and maxmemory-policy volatile-lru, or it grows until images "
                                "expire or evicts keys Iris needs")
        return stats

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        """The client belongs to the app's Redis context, which closes it."""
