"""Single flight: identical concurrent misses cost one trip through the pipeline.

Within a process, callers share one task. Across processes (or hosts, with Redis) the leader
holds a flight lock (``proxy.cache.locks``); the others poll the store for the result and take
over if the lock comes free without one (the holder failed or died)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from proxy.cache.locks.base import FlightLock, Lease

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self, lock: FlightLock, *, poll: float = 0.02, max_poll: float = 0.2):
        self.lock = lock
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
        just before, where the lock itself tells of a flight that finished in between
        (``FlightLock.marks_finish``); other locks look again, which is cheap when absent."""
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
        delay = self.poll
        if not self.lock.marks_finish:
            recheck = lookup  # nothing says "finished": look after locking (cheap when absent)
        while True:
            lease = await self.lock.acquire(key)
            if lease is not None:
                return await self._produce(lease, fut, produce, recheck or _nothing, publish)
            recheck = lookup  # someone else held it: whatever happens next, look before producing
            while True:
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, self.max_poll)
                found = await lookup()
                if found is not None:
                    return found
                if await self.lock.may_lead(key):
                    break  # the holder finished without a result, or died: try to lead

    async def _produce(self, lease: Lease, fut: asyncio.Future[T], produce: Callable[[], Awaitable[T]],
                       lookup: Callable[[], Awaitable[T | None]],
                       publish: Callable[[T], Awaitable[None]]) -> T:
        published = False
        try:
            found = await lookup()  # another process may have finished just before we locked
            if found is not None:
                return found
            result = await produce()
            if not fut.done():
                fut.set_result(result)  # answer now; waiters elsewhere read it once published
                await _let_waiters_answer()
            await publish(result)
            published = True
            return result
        finally:
            await lease.release(finished=published)

    async def settle(self, key: str, *, limit: float = 2.0) -> None:
        """Wait (at most ``limit`` s) until no flight for ``key`` is still publishing, here or in
        another process, so an admin delete cannot be undone by a write that lands after it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        task = self.leading.get(key)
        if task is not None:
            await asyncio.wait([task], timeout=limit)
        while loop.time() < deadline:
            if not await self.lock.publishing(key):
                break
            await asyncio.sleep(self.poll)  # the lock is in another process: nothing to wait on here
        await self.lock.forget(key)  # the next miss may lead at once

    async def close(self, grace: float = 5.0) -> None:
        """Let flights finish publishing (answers may already be out), then cancel stragglers."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=grace)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _nothing() -> None:
    return None


async def _let_waiters_answer() -> None:
    """Two turns of the loop: the waiters on the future wake (the shield's callback, then their
    own step) and send their answers before the store write starts. That write runs on a thread
    and would compete with them for the GIL, delaying every miss's answer by a few tenths of a ms."""
    for _ in range(2):
        await asyncio.sleep(0)
