"""The vision dedup state shared by every instance: a frame repeating the last scene is answered
from memory whichever instance the glasses reach. Written through to the local twin (the host's,
``disk``), which answers while Redis is down."""

from __future__ import annotations

from proxy.redis.shared import SharedRedis
from proxy.redis.twin import Twin
from proxy.vision.dedup.base import DedupStore, Remembered, decode, encode


class RedisDedup(Twin[DedupStore]):
    namespace = "dedup:"

    def __init__(self, shared: SharedRedis, local: DedupStore, *, ttl: float):
        super().__init__(shared, local)
        self.ttl_ms = max(1000, int(ttl * 1000))

    def recall_here(self, username: str) -> Remembered | None:
        return self.local.recall_here(username)

    async def recall(self, username: str) -> Remembered | None:
        async def shared() -> Remembered | None:
            raw = await self.client.get(self.prefix + username)
            return None if raw is None else decode(raw)

        return await self.prefer(shared, lambda: self.local.recall(username))

    async def remember(self, username: str, entry: Remembered) -> None:
        await self.local.remember(username, entry)
        payload = encode(entry)

        async def shared() -> None:
            await self.client.set(self.prefix + username, payload, px=self.ttl_ms)

        await self.shared_only(shared)

    async def close(self) -> None:
        await self.local.close()
