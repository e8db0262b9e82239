"""Rate limits shared by every instance: the same GCRA as the local limiter, in one Lua script
so that taking a token is atomic, timed by Redis's clock (instances' clocks may differ).
While Redis is down, the local limiter (SQLite under DATA_DIR) answers."""

from __future__ import annotations

from proxy.config.security import Rate
from proxy.redis.shared import SharedRedis
from proxy.redis.twin import Twin
from proxy.security.limits import RateLimiter

# KEYS[1]: the bucket; ARGV: count, period (s), consume (1/0). Returns the wait in seconds.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local count, period = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + period / count
local wait = new_tat - period - now
if wait > 0 then return tostring(wait) end
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000))
end
return '0'
"""


class RedisLimiter(Twin[RateLimiter]):
    namespace = "rate:"

    def __init__(self, shared: SharedRedis, local: RateLimiter):
        super().__init__(shared, local)
        self._gcra = self.client.register_script(_GCRA)

    async def _take(self, bucket: str, rate: Rate, consume: bool) -> float:
        wait = await self._gcra(keys=[self.prefix + bucket], args=[rate.count, rate.period, int(consume)])
        return float(wait)

    async def hit(self, bucket: str, rate: Rate) -> float:
        return await self.prefer(lambda: self._take(bucket, rate, True), lambda: self.local.hit(bucket, rate))

    async def wait(self, bucket: str, rate: Rate) -> float:
        return await self.prefer(lambda: self._take(bucket, rate, False),
                                 lambda: self.local.wait(bucket, rate))
