"""The vision dedup state every worker on the host shares: the last answer per user in the disk
cache (``dedup:<username>``, kept twice ``VISION_DEDUP_SECONDS``), so a repeated frame costs no
provider call whichever worker it reaches. This worker's own last answers are also kept in memory
(``recall_here``): a repeat of them needs no lookup at all. The write to the disk cache happens
after the answer went out (a frame that follows within a millisecond on another worker may miss
it); ``close`` waits for the writes still running."""

from __future__ import annotations

import asyncio
import logging

from proxy.cache.stores.base import ByteStore
from proxy.lifecycle import stop_tasks
from proxy.vision.dedup.base import Remembered, decode, encode
from proxy.vision.dedup.memory import MemoryDedup

log = logging.getLogger(__name__)


class DiskDedup:
    namespace = "dedup:"

    def __init__(self, store: ByteStore, *, ttl: float):
        self.store = store
        self.ttl = max(1.0, ttl)
        self.front = MemoryDedup()
        self.writes: set[asyncio.Task[None]] = set()

    def recall_here(self, username: str) -> Remembered | None:
        return self.front.recall_here(username)

    async def recall(self, username: str) -> Remembered | None:
        raw = await self.store.get(self.namespace + username)
        shared = None if raw is None else decode(raw)
        here = self.front.recall_here(username)
        if shared is None or (here is not None and here.at > shared.at):
            return here
        return shared

    async def remember(self, username: str, entry: Remembered) -> None:
        await self.front.remember(username, entry)
        task = asyncio.create_task(self._write(username, entry))
        self.writes.add(task)
        task.add_done_callback(self.writes.discard)

    async def _write(self, username: str, entry: Remembered) -> None:
        try:
            await self.store.set(self.namespace + username, encode(entry), ttl=self.ttl)
        except Exception as exc:  # noqa: BLE001 - only the other workers' dedup is lost
            log.debug("could not share the last answer for %s: %s", username, exc)

    async def close(self) -> None:
        if self.writes:
            await asyncio.wait(list(self.writes), timeout=5)
        await stop_tasks(self.writes)
        await self.front.close()
