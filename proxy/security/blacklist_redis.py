"""The blacklist change signal across instances. The local signal (a counter in SQLite, bumped
with every blacklist write on this host: the CLI, an auto-block, another worker) still counts;
when it moves, this instance bumps a counter in Redis, which every instance reads when it polls
(every BLACKLIST_REFRESH seconds). The revision is the sum of both: it moves when either does."""

from __future__ import annotations

from proxy.redis.shared import SharedRedis
from proxy.redis.twin import Twin
from proxy.security.blacklist import BlacklistSignal


class RedisBlacklistSignal(Twin[BlacklistSignal]):
    namespace = "blacklist:"

    def __init__(self, shared: SharedRedis, local: BlacklistSignal):
        super().__init__(shared, local)
        self.key = self.prefix + "revision"
        self.seen_local: int | None = None
        self.unannounced = False
        self.remote = 0

    async def revision(self) -> int:
        local = await self.local.revision()
        if self.seen_local is not None and local != self.seen_local:
            self.unannounced = True
        self.seen_local = local
        self.remote = await self.prefer(self._remote, self._last_remote)
        return local + self.remote

    async def _remote(self) -> int:
        if self.unannounced:
            value = int(await self.client.incr(self.key))
            self.unannounced = False
            return value
        return int(await self.client.get(self.key) or 0)

    async def _last_remote(self) -> int:
        return self.remote
