"""The cache generation shared by every instance: a delete anywhere clears every memory front.

``read()`` stays a memory load for the hot path: it is the host's counter (workers on one host,
a memory-mapped file) plus the number of changes this process has heard of on the bus. Both only
grow, so the sum moves whenever either does. Reconnecting to the bus counts as a change, since
deletes may have been missed meanwhile."""

from __future__ import annotations

from proxy.cache.generation import SharedGeneration
from proxy.redis.bus import RedisBus

CHANNEL = "generation"


class RedisGeneration:
    def __init__(self, local: SharedGeneration, bus: RedisBus):
        self.local = local
        self.bus = bus
        self.heard = 0
        bus.subscribe(CHANNEL, self._changed)
        bus.connect_hooks.append(self._moved)

    def _changed(self, _payload: bytes) -> None:
        self.heard += 1

    def _moved(self) -> None:
        self.heard += 1

    def read(self) -> int:
        return self.local.read() + self.heard

    async def bump(self) -> int:
        await self.local.bump()
        await self.announce()
        return self.read()

    async def announce(self) -> None:
        """Tell the other instances (while Redis is down, the delete is replayed and announced later)."""
        await self.bus.publish(CHANNEL)
