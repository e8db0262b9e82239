"""Dashboard logouts shared by every instance: a revoked session id is a Redis key that expires
with the cookie. Revocations are written through to the local store, and both are asked: a
logout made on this host while Redis was down still counts once Redis is back."""

from __future__ import annotations

from proxy.admin.revocations import Revocations
from proxy.redis.twin import Twin


class RedisRevocations(Twin[Revocations]):
    namespace = "admin-revoked:"

    async def revoke(self, sid: str, ttl: float) -> None:
        await self.local.revoke(sid, ttl)

        async def shared() -> None:
            await self.client.set(self.prefix + sid, b"1", px=max(1, int(ttl * 1000)))

        await self.shared_only(shared)

    async def revoked(self, sid: str) -> bool:
        if await self.local.revoked(sid):
            return True

        async def shared() -> bool:
            return bool(await self.client.exists(self.prefix + sid))

        async def unknown() -> bool:
            return False  # Redis is down: only this host's revocations are known

        return await self.prefer(shared, unknown)
