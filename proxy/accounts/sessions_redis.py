"""Auth sessions shared by every instance: the glasses authenticate on one instance and send
frames to another. Grants are written through to the local store too, so the sessions this host
granted keep working while Redis is down (sessions granted elsewhere then need a new /auth-*)."""

from __future__ import annotations

import orjson

from proxy.accounts.sessions import SessionStore
from proxy.redis.twin import Twin


class RedisSessions(Twin[SessionStore]):
    namespace = "session:"

    async def grant(self, address: str, username: str, stamp: str, ttl: float) -> None:
        await self.local.grant(address, username, stamp, ttl)

        async def shared() -> None:
            await self.client.set(self.prefix + address, orjson.dumps([username, stamp]),
                                  px=max(1, int(ttl * 1000)))

        await self.shared_only(shared)

    async def lookup(self, address: str) -> tuple[str, str] | None:
        async def shared() -> tuple[str, str] | None:
            raw = await self.client.get(self.prefix + address)
            if raw is None:
                return None
            username, stamp = orjson.loads(raw)
            return str(username), str(stamp)

        return await self.prefer(shared, lambda: self.local.lookup(address))
