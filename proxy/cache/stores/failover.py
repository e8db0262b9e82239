"""A byte store that is Redis while Redis answers and the local diskcache while it does not.

Nothing here raises an outage error: the call that finds Redis gone is answered locally, and so
is every call until the health probe sees Redis again. A delete made during an outage is
remembered and replayed on Redis before it is used again, so an admin delete is never lost."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from proxy.cache.stores.base import ByteStore
from proxy.redis.health import RedisHealth
from proxy.redis.twin import prefer_shared

T = TypeVar("T")
MAX_PENDING_DELETES = 10_000


class FailoverStore:
    name = "redis"

    def __init__(self, primary: ByteStore, fallback: ByteStore, health: RedisHealth):
        self.primary = primary
        self.fallback = fallback
        self.health = health
        self.pending_deletes: set[str] = set()
        self.replay_hooks: list[Callable[[], Awaitable[None]]] = []
        health.recover_hooks.append(self.replay_deletes)

    async def _run(self, call: Callable[[ByteStore], Awaitable[T]]) -> T:
        return await prefer_shared(self.health, lambda: call(self.primary), lambda: call(self.fallback))

    async def get(self, key: str) -> bytes | None:
        return await self._run(lambda s: s.get(key))

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await self._run(lambda s: s.set(key, value, ttl=ttl))

    async def add(self, key: str, value: bytes, *, ttl: float) -> bool:
        return await self._run(lambda s: s.add(key, value, ttl=ttl))

    async def touch(self, key: str, *, ttl: float) -> bool:
        return await self._run(lambda s: s.touch(key, ttl=ttl))

    async def delete(self, key: str) -> bool:
        """Deletes from both, so an entry written locally during an earlier outage goes too."""
        deleted = await self._run(lambda s: s.delete(key))
        if not self.health.up:
            if len(self.pending_deletes) < MAX_PENDING_DELETES:
                self.pending_deletes.add(key)
            return deleted
        return await self.fallback.delete(key) or deleted

    async def delete_if(self, key: str, value: bytes) -> bool:
        return await self._run(lambda s: s.delete_if(key, value))

    async def incr(self, key: str, delta: int = 1) -> int:
        return await self._run(lambda s: s.incr(key, delta))

    async def room(self) -> None:
        await self._run(lambda s: s.room())

    async def replay_deletes(self) -> None:
        """Before Redis is used again: apply the deletes it missed (raises while it is still out)."""
        if not self.pending_deletes:
            return
        for key in sorted(self.pending_deletes):
            await self.primary.delete(key)
        self.pending_deletes.clear()
        for hook in self.replay_hooks:
            await hook()

    async def stats(self) -> dict[str, Any]:
        found = await self._run(lambda s: s.stats())
        return {**found, "redis": self.health.snapshot(), "pending_deletes": len(self.pending_deletes)}

    async def ping(self) -> None:
        """The local store: it answers while Redis is out (whose reachability is checked apart)."""
        await self.fallback.ping()

    async def close(self) -> None:
        await self.fallback.close()
