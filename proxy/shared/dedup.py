"""The vision dedup state shared by every instance: a frame repeating the last scene is answered
from memory whichever instance the glasses reach. Written through to the local store, which
answers while Redis is down."""

from __future__ import annotations

import orjson
import redis.asyncio as aioredis
from aiohttp import web

from proxy.keys import SHARED
from proxy.shared.failover import Twin
from proxy.shared.health import RedisHealth
from proxy.vision.dedup.base import DedupStore, Remembered


class SharedDedup(Twin[DedupStore]):
    namespace = "dedup:"

    def __init__(self, client: aioredis.Redis, prefix: str, health: RedisHealth, local: DedupStore,
                 *, ttl: float):
        super().__init__(client, prefix, health, local)
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


def shared_dedup(app: web.Application, local: DedupStore, seconds: float) -> DedupStore:
    """With REDIS_URL, the dedup store chosen by VISION_DEDUP_STORE becomes the local fallback."""
    shared = app.get(SHARED)
    if shared is None:
        return local
    return SharedDedup(shared.client, shared.settings.prefix, shared.health, local, ttl=2 * seconds)
