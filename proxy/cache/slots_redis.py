"""Generation slots shared by every instance: a sorted set in Redis of leases (a random token
scored by when it runs out), taken atomically by a script timed by Redis's clock. The holder
renews its lease while it generates; an instance that dies stops renewing and its slots come free
within ``LEASE`` seconds. While Redis is down, the host's slots (``proxy.cache.slots``) answer."""

from __future__ import annotations

import asyncio
import contextlib
import secrets

from proxy.cache.slots import GenerationSlots, Slot
from proxy.redis.shared import SharedRedis
from proxy.redis.twin import Twin

LEASE = 15.0  # seconds a slot outlives its holder's last renewal

# KEYS[1]: the set; ARGV: token, size, lease (ms). 1 when taken.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""
# KEYS[1]: the set; ARGV: token, lease (ms). Renews a lease that is still there.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
return 0
"""
# KEYS[1]: the set. The leases still running.
_BUSY = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""


class RedisSlot:
    def __init__(self, slots: RedisSlots, token: str):
        self.slots = slots
        self.token = token
        self.heartbeat = asyncio.create_task(self._beat(), name="generation-slot-lease")

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.slots.lease / 3)
            await self.slots.shared_only(lambda: self.slots.renew(self.token))

    async def release(self) -> None:
        self.heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.heartbeat
        await self.slots.shared_only(lambda: self.slots.drop(self.token))


class RedisSlots(Twin[GenerationSlots]):
    namespace = "slots:"

    def __init__(self, shared: SharedRedis, local: GenerationSlots, *, lease: float = LEASE):
        super().__init__(shared, local)
        self.size = local.size
        self.lease = lease
        self.key = self.prefix + "generations"
        self._take = self.client.register_script(_TAKE)
        self._renew = self.client.register_script(_RENEW)
        self._busy = self.client.register_script(_BUSY)

    def _ms(self) -> int:
        return max(1, int(self.lease * 1000))

    async def take(self) -> Slot | None:
        return await self.prefer(self._take_shared, self.local.take)

    async def _take_shared(self) -> Slot | None:
        token = secrets.token_hex(16)
        if await self._take(keys=[self.key], args=[token, self.size, self._ms()]):
            return RedisSlot(self, token)
        return None

    async def renew(self, token: str) -> None:
        await self._renew(keys=[self.key], args=[token, self._ms()])

    async def drop(self, token: str) -> None:
        await self.client.zrem(self.key, token)

    async def busy(self) -> int:
        return await self.prefer(self._busy_shared, self.local.busy)

    async def _busy_shared(self) -> int:
        return int(await self._busy(keys=[self.key]))

    async def close(self) -> None:
        await self.local.close()
