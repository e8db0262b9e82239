"""Is Redis reachable? The first failed call marks it down (and logs it); while down, every
shared part uses its local twin and a probe pings Redis until it answers. Recovery hooks (replaying
deletes made meanwhile) run before Redis is marked up again, resume hooks just after (for what was
written locally while the recovery hooks ran)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from proxy.lifecycle import stop_tasks
from proxy.redis.client import OUTAGE, describe

log = logging.getLogger(__name__)


class RedisHealth:
    def __init__(self, ping: Callable[[], Awaitable[Any]], *, retry_interval: float):
        self.ping = ping
        self.retry_interval = retry_interval
        self.up = True
        self.down_since: float | None = None
        self.outages = 0
        self.last_error = ""
        self.recover_hooks: list[Callable[[], Awaitable[None]]] = []
        self.resume_hooks: list[Callable[[], Awaitable[None]]] = []
        self._probe: asyncio.Task[None] | None = None

    def failed(self, exc: BaseException) -> None:
        """A call to Redis failed with an outage error: fall back to local state until it is back."""
        self.last_error = describe(exc)
        if not self.up:
            return
        self.up = False
        self.down_since = time.time()
        self.outages += 1
        log.warning("Redis is unreachable (%s): serving from local cache and limits until it is back",
                    self.last_error)
        if self._probe is None or self._probe.done() or self._probe is asyncio.current_task():
            self._probe = asyncio.create_task(self._recover())

    async def check(self) -> bool:
        """Ping now; marks Redis down when it does not answer."""
        try:
            await self.ping()
        except OUTAGE as exc:
            self.failed(exc)
            return False
        return True

    async def _recover(self) -> None:
        while True:
            await asyncio.sleep(self.retry_interval)
            try:
                await self.ping()
                for hook in self.recover_hooks:
                    await hook()
            except OUTAGE as exc:
                self.last_error = describe(exc)
                continue
            outage = time.time() - (self.down_since or time.time())
            self.up = True
            self.down_since = None
            log.warning("Redis is back after %.1f s: shared cache and limits resumed", outage)
            for hook in self.resume_hooks:
                try:
                    await hook()
                except OUTAGE as exc:
                    self.failed(exc)
                    break
            return

    def snapshot(self) -> dict[str, object]:
        return {"state": "up" if self.up else "down", "outages": self.outages,
                "down_for": None if self.down_since is None else round(time.time() - self.down_since, 1),
                "last_error": self.last_error}

    async def close(self) -> None:
        if self._probe is not None:
            await stop_tasks([self._probe])
