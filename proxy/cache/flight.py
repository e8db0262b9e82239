"""Single flight: identical concurrent misses cost one trip through the pipeline.

Within a process, callers share one task. Across processes (or hosts, with Redis) the leader
holds a lock in the shared store, kept alive by a heartbeat; others poll the store for the
result and take over if the lock vanishes without one (the holder died)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from proxy.cache.base import ByteStore

T = TypeVar("T")
DONE = b"done"  # left in place of a released lock for a moment: "finished, read the result"


class SingleFlight(Generic[T]):
    def __init__(self, store: ByteStore, *, lease: float = 10.0, poll: float = 0.02,
                 max_poll: float = 0.2, done_ttl: float = 1.0):
        self.store = store
        self.done_ttl = done_ttl
        self.lease = lease
        self.poll = poll
        self.max_poll = max_poll
        self.inflight: dict[str, asyncio.Future[T]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.leading: dict[str, asyncio.Task[None]] = {}
        self.coalesced = 0

    async def do(self, key: str, produce: Callable[[], Awaitable[T]],
                 lookup: Callable[[], Awaitable[T | None]],
                 publish: Callable[[T], Awaitable[None]], *, recheck: bool = True) -> T:
        """The result for ``key``: looked up, waited for, or produced here (then published).

        ``recheck=False`` skips the lookup after taking the lock, for callers that read the store
        just before: a process finishing in between leaves a DONE marker, so the lock is not free."""
        fut = self.inflight.get(key)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self.inflight[key] = fut
            task = asyncio.create_task(self._lead(key, fut, produce, lookup if recheck else None,
                                                  lookup, publish))
            self.tasks.add(task)
            self.leading[key] = task
            task.add_done_callback(self.tasks.discard)
        else:
            self.coalesced += 1
        return await asyncio.shield(fut)

    async def _lead(self, key: str, fut: asyncio.Future[T], produce: Callable[[], Awaitable[T]],
                    recheck: Callable[[], Awaitable[T | None]] | None,
                    lookup: Callable[[], Awaitable[T | None]],
                    publish: Callable[[T], Awaitable[None]]) -> None:
        try:
            result = await self._obtain(key, fut, produce, recheck, lookup, publish)
            if not fut.done():
                fut.set_result(result)
        except BaseException as exc:
            if not fut.done():
                fut.set_exception(exc)
            fut.exception()  # consumed here: nobody may be waiting any more
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self.inflight.pop(key, None)
            self.leading.pop(key, None)

    async def _obtain(self, key: str, fut: asyncio.Future[T], produce: Callable[[], Awaitable[T]],
                      recheck: Callable[[], Awaitable[T | None]] | None,
                      lookup: Callable[[], Awaitable[T | None]],
                      publish: Callable[[T], Awaitable[None]]) -> T:
        lock_key = f"flight:{key}"
        token = secrets.token_bytes(16)
        delay = self.poll
        while True:
            if await self.store.add(lock_key, token, ttl=self.lease):
                return await self._produce(lock_key, token, fut, produce, recheck or _nothing, publish)
            recheck = lookup  # someone else held it: whatever happens next, look before producing
            while True:
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, self.max_poll)
                found = await lookup()
                if found is not None:
                    return found
                if await self.store.get(lock_key) is None:
                    break  # the holder finished without a result, or died: try to lead

    async def _produce(self, lock_key: str, token: bytes, fut: asyncio.Future[T],
                       produce: Callable[[], Awaitable[T]], lookup: Callable[[], Awaitable[T | None]],
                       publish: Callable[[T], Awaitable[None]]) -> T:
        heartbeat = asyncio.create_task(self._heartbeat(lock_key))
        published = False
        try:
            found = await lookup()  # another process may have finished just before we locked
            if found is not None:
                return found
            result = await produce()
            if not fut.done():
                fut.set_result(result)  # answer now; waiters elsewhere read it once published
            await publish(result)
            published = True
            return result
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            if published:
                await self.store.set(lock_key, DONE, ttl=self.done_ttl)
            else:
                await self.store.delete_if(lock_key, token)

    async def _heartbeat(self, lock_key: str) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            await self.store.touch(lock_key, ttl=self.lease)

    async def settle(self, key: str, *, limit: float = 2.0) -> None:
        """Wait (at most ``limit`` s) until no flight for ``key`` is still publishing, here or in
        another process, so an admin delete cannot be undone by a write that lands after it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        task = self.leading.get(key)
        if task is not None:
            await asyncio.wait([task], timeout=limit)
        while loop.time() < deadline:
            if await self.store.get(f"flight:{key}") in (None, DONE):
                break
            await asyncio.sleep(self.poll)  # the lock is in another process: nothing to wait on here
        await self.store.delete_if(f"flight:{key}", DONE)  # the next miss may lead at once

    async def close(self, grace: float = 5.0) -> None:
        """Let flights finish publishing (answers may already be out), then cancel stragglers."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=grace)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _nothing() -> None:
    return None
