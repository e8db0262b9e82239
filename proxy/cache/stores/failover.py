"""A byte store that is Redis while Redis answers and the local diskcache while it does not.

Nothing here raises an outage error: the call that finds Redis gone is answered locally, and so
is every call until the health probe sees Redis again. What Redis missed meanwhile (deletes, so
an admin delete is never lost, and writes, so an image made during the outage is shared once it
is back) is kept in a bounded journal (``replay``) and made again on Redis before it is used
again. So is a write no replica confirmed (``REDIS_WAIT_REPLICAS``, behind Sentinel): it is made
again on the new master after Sentinel moves it, so an image Iris cached survives the failover."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from proxy.cache.stores.base import ByteStore, ValueFile
from proxy.cache.stores.redis import RedisStore
from proxy.cache.stores.replay import NEVER_WRITTEN, Pending, Replay
from proxy.redis.client import OUTAGE
from proxy.redis.health import RedisHealth
from proxy.redis.twin import prefer_shared, stay_cancelled

T = TypeVar("T")
REPLAY_BATCH_BYTES = 4 * 1024 * 1024  # written again in pipelines of about this much


class FailoverStore:
    name = "redis"

    def __init__(self, primary: RedisStore, fallback: ByteStore, health: RedisHealth):
        self.primary = primary
        self.fallback = fallback
        self.health = health
        self.topology = primary.topology
        self.replay = Replay()
        self.replay_hooks: list[Callable[[], Awaitable[None]]] = []  # after deletes reached Redis again
        health.recover_hooks.append(self.catch_up)
        health.resume_hooks.append(self.leftovers)
        self.topology.switch_hooks.append(self.after_move)

    async def _run(self, call: Callable[[ByteStore], Awaitable[T]]) -> T:
        return await prefer_shared(self.health, lambda: call(self.primary), lambda: call(self.fallback))

    async def get(self, key: str) -> bytes | None:
        return await self._run(lambda s: s.get(key))

    async def open_value(self, key: str, *, whole_to: int, head: int) -> bytes | ValueFile | None:
        """Redis's value; while Redis is out, the disk store's (a large one as its file)."""
        return await self._run(lambda s: s.open_value(key, whole_to=whole_to, head=head))

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """On Redis (kept in the journal until a replica confirms it), else on the disk and in the
        journal, to be written to Redis once it is back."""
        ttl = self.primary.ttl(ttl)
        if self.health.up:
            entry = self.replay.write(key, value, ttl, self.topology.switches)
            try:
                await self._send([(key, entry)])
                return
            except OUTAGE as exc:
                stay_cancelled(exc)
                self.health.failed(exc)
        else:
            self.replay.write(key, value, ttl, NEVER_WRITTEN)
        await self.fallback.set(key, value, ttl=ttl)

    async def _send(self, batch: list[tuple[str, Pending]]) -> None:
        """Write journal entries to Redis in one round trip and forget them once a replica
        confirms them; unconfirmed, they stay, marked with the master's moves. A batch under way
        while the master moved may have reached the old one after its replica left: sent again."""
        for _ in range(3):
            batch = [(key, entry) for key, entry in batch if self.replay.current(key, entry)]
            if not batch:
                return  # written or deleted again meanwhile
            moves = self.topology.switches
            now = self.replay.clock()
            items = [(key, entry.value or b"", entry.ttl(now)) for key, entry in batch]
            confirmed = await self.primary.write(items)
            for key, entry in batch:
                entry.moves = moves
                if confirmed:
                    self.replay.settled(key, entry)
            if confirmed or self.topology.switches == moves:
                return

    async def add(self, key: str, value: bytes, *, ttl: float) -> bool:
        return await self._run(lambda s: s.add(key, value, ttl=ttl))

    async def touch(self, key: str, *, ttl: float) -> bool:
        return await self._run(lambda s: s.touch(key, ttl=ttl))

    async def delete(self, key: str) -> bool:
        """Deletes from both, so an entry written locally during an earlier outage goes too."""
        deleted = await self._run(lambda s: s.delete(key))
        if not self.health.up:
            self.replay.delete(key)
            return deleted
        self.replay.settled(key)
        return await self.fallback.delete(key) or deleted

    async def delete_if(self, key: str, value: bytes) -> bool:
        return await self._run(lambda s: s.delete_if(key, value))

    async def incr(self, key: str, delta: int = 1) -> int:
        return await self._run(lambda s: s.incr(key, delta))

    async def room(self) -> None:
        await self._run(lambda s: s.room())

    async def catch_up(self) -> None:
        """Before Redis is used again after an outage: make what it missed (raises while it is
        still out, so the probe tries again)."""
        await self._make_again(None)

    async def leftovers(self) -> None:
        """Just after Redis is marked up: what was written locally while ``catch_up`` ran."""
        await self._make_again(NEVER_WRITTEN + 1)

    async def after_move(self) -> None:
        """Sentinel moved the master: write again what the old one may have taken with it."""
        if not self.health.up:
            return  # the outage's catch-up makes them all
        try:
            await self._make_again(self.topology.switches)
        except OUTAGE as exc:
            self.health.failed(exc)

    async def _make_again(self, moves: int | None) -> None:
        now = self.replay.clock()
        deleted, batch, size = False, [], 0
        for key, entry in self.replay.due(moves):
            ttl = entry.ttl(now)
            if not self.replay.current(key, entry):
                continue  # written or deleted again meanwhile
            if entry.value is None:
                await self.primary.delete(key)
                self.replay.settled(key, entry)
                deleted = True
            elif ttl is not None and ttl <= 0:
                self.replay.settled(key, entry)  # expired meanwhile: nothing to bring back
            else:
                batch.append((key, entry))
                size += len(entry.value)
                if size >= REPLAY_BATCH_BYTES:
                    await self._send(batch)
                    batch, size = [], 0
        if batch:
            await self._send(batch)
        if deleted:
            for hook in self.replay_hooks:
                await hook()

    async def stats(self) -> dict[str, Any]:
        found = await self._run(lambda s: s.stats())
        counts = self.replay.counts()
        return {**found, "redis": self.health.snapshot(), "pending_deletes": counts["deletes"],
                "pending_writes": counts["writes"], "pending_bytes": counts["bytes"],
                "pending_dropped": counts["dropped"]}

    async def ping(self) -> None:
        """The local store: it answers while Redis is out (whose reachability is checked apart)."""
        await self.fallback.ping()

    async def close(self) -> None:
        await self.fallback.close()
