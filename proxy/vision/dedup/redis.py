"""The vision dedup state shared by every instance: a frame repeating the last scene is answered
from memory whichever instance the glasses reach. Written through to the local store, which
answers while Redis is down."""

from __future__ import annotations

import orjson

from proxy.redis.shared import SharedRedis
from proxy.redis.twin import Twin
from proxy.vision.dedup.base import DedupStore, Remembered


class RedisDedup(Twin[DedupStore]):
    namespace = "dedup:"

    def __init__(self, shared: SharedRedis, local: DedupStore, *, ttl: float):
        super().__init__(shared, local)
        self.ttl_ms = max(1000, int(ttl * 1000))

    async def recall(self, username: str) -> Remembered | None:
        async def shared() -> Remembered | None:
            raw = await self.client.get(self.prefix + username)
            return None if raw is None else Remembered(**orjson.loads(raw))

        return await self.prefer(shared, lambda: self.local.recall(username))

    async def remember(self, username: str, entry: Remembered) -> None:
        await self.local.remember(username, entry)
        payload = orjson.dumps({"prompt": entry.prompt, "dhash": entry.dhash, "at": entry.at,
                                "result": entry.result})

        async def shared() -> None:
            await self.client.set(self.prefix + username, payload, px=self.ttl_ms)

        await self.shared_only(shared)

    async def close(self) -> None:
        await self.local.close()
