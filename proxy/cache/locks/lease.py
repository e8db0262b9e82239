"""Flight locks in the shared store (Redis across hosts): a key added only if absent, with a
lease kept alive by a heartbeat; a holder that dies lets the lease run out. A leader that
published leaves DONE in place of its lock for a moment, so a worker that looked the result up
just before cannot take the lock and produce it again."""

from __future__ import annotations

import asyncio
import contextlib
import secrets

from proxy.cache.stores.base import ByteStore

DONE = b"done"


class StoreLease:
    def __init__(self, lock: LeaseLock, name: str, token: bytes):
        self.lock = lock
        self.name = name
        self.token = token
        self.heartbeat = asyncio.create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.lock.lease / 3)
            await self.lock.store.touch(self.name, ttl=self.lock.lease)

    async def release(self, *, finished: bool) -> None:
        self.heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.heartbeat
        if finished:
            await self.lock.store.set(self.name, DONE, ttl=self.lock.done_ttl)
        else:
            await self.lock.store.delete_if(self.name, self.token)


class LeaseLock:
    marks_finish = True

    def __init__(self, store: ByteStore, *, lease: float = 10.0, done_ttl: float = 1.0):
        self.store = store
        self.lease = lease
        self.done_ttl = done_ttl

    @staticmethod
    def name(key: str) -> str:
        return f"flight:{key}"

    async def acquire(self, key: str) -> StoreLease | None:
        token = secrets.token_bytes(16)
        if await self.store.add(self.name(key), token, ttl=self.lease):
            return StoreLease(self, self.name(key), token)
        return None

    async def may_lead(self, key: str) -> bool:
        return await self.store.get(self.name(key)) is None

    async def publishing(self, key: str) -> bool:
        return await self.store.get(self.name(key)) not in (None, DONE)

    async def forget(self, key: str) -> None:
        await self.store.delete_if(self.name(key), DONE)

    async def close(self) -> None:
        return None
