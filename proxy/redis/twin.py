"""Redis twins: a Redis implementation of an interface with the local implementation as its
fallback. ``prefer_shared`` asks Redis while it is up and the local twin while it is not (or when
this very call finds it gone, which marks it down); nothing here raises an outage error."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from proxy.redis.client import OUTAGE, RedisClient
from proxy.redis.health import RedisHealth
from proxy.redis.shared import SharedRedis

T = TypeVar("T")
L = TypeVar("L")


async def prefer_shared(health: RedisHealth, shared: Callable[[], Awaitable[T]],
                        local: Callable[[], Awaitable[T]]) -> T:
    """``shared()`` while Redis is up; ``local()`` while it is down or when this very call finds
    it gone (which marks it down)."""
    if health.up:
        try:
            return await shared()
        except OUTAGE as exc:
            stay_cancelled(exc)
            health.failed(exc)
    return await local()


def stay_cancelled(exc: BaseException) -> None:
    """redis-py may report a cancelled call as a connection error: stay cancelled."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from exc


class Twin(Generic[L]):
    """A Redis implementation of an interface with the local one as its fallback; its keys are
    ``REDIS_PREFIX`` + ``namespace`` + the caller's key."""

    namespace = ""

    def __init__(self, shared: SharedRedis, local: L):
        self.client: RedisClient = shared.client
        self.prefix = shared.settings.prefix + self.namespace
        self.health = shared.health
        self.local = local

    async def prefer(self, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]) -> T:
        return await prefer_shared(self.health, shared, local)

    async def shared_only(self, shared: Callable[[], Awaitable[None]]) -> None:
        """A write Redis alone needs (the local twin was written already)."""
        await prefer_shared(self.health, shared, _nothing)


async def _nothing() -> None:
    return None
