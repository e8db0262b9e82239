"""Small indexes of recent events for the dashboard: the gallery of recent generations, and (in
``safety``) the last images the safety check refused.

Bounded: a ring of ``size`` slots in the shared byte store (``recent:0`` ...), so every worker
writes to the same ring. Off the hot path: the write happens on a background task fed by a
bounded queue (a note never waits; a full queue drops it), ``GATHER`` seconds after the note, with
every note made meanwhile. A note is made as an image's answer goes out: written at once, its store
calls (a thread hop each, which wakes the store's thread and then this one) competed with that
answer and with the requests right behind it for the CPU and the interpreter; gathered, a burst of
new images costs one slot counter update instead of one each."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson

from proxy.cache.stores.base import ByteStore
from proxy.imagegen.params import ImageRequest

log = logging.getLogger(__name__)
GATHER = 0.25  # seconds a note waits for the notes after it, to be written with them
FINISH = 2.0  # seconds a stopping writer has to write the notes already made


class StoreRing:
    def __init__(self, store: ByteStore, size: int, prefix: str, *, gather: float = GATHER):
        self.store = store
        self.size = size
        self.prefix = prefix
        self.gather = gather
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=256)
        self.stopping = False
        self.wake = asyncio.Event()

    def add(self, item: dict[str, Any]) -> None:
        """Never waits. A full queue drops the item (it is only for the dashboard)."""
        if self.size <= 0 or self.stopping:
            return
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(item)

    async def write(self, items: list[dict[str, Any]]) -> None:
        """Into the next slots of the ring, oldest first: one counter update takes them all."""
        items = items[-self.size:]
        last = await self.store.incr(f"{self.prefix}:next", len(items))
        for slot, item in enumerate(items, start=last - len(items) + 1):
            await self.store.set(f"{self.prefix}:{slot % self.size}", orjson.dumps(item))

    def stop(self) -> None:
        """Ends ``run`` once the notes already made are written: the gathering wait is cut short."""
        self.stopping = True
        self.wake.set()
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)

    async def run(self) -> None:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.gather)
            batch, last = self.take(item)
            try:
                await self.write(batch)
            except Exception:
                log.warning("could not note %d item(s) for the dashboard (%s)", len(batch), self.prefix,
                            exc_info=True)
            if last or (self.stopping and self.queue.empty()):
                return

    def take(self, first: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """``first`` and the notes queued behind it; True when the end mark was among them."""
        batch = [first]
        while not self.queue.empty():
            more = self.queue.get_nowait()
            if more is None:
                return batch, True
            batch.append(more)
        return batch, False

    async def items(self) -> list[dict[str, Any]]:
        """Newest first (each item has a ``time``)."""
        raws = await asyncio.gather(*(self.store.get(f"{self.prefix}:{i}") for i in range(self.size)))
        items = [orjson.loads(raw) for raw in raws if raw]
        items.sort(key=lambda item: item["time"], reverse=True)
        return items


class RecentGenerations(StoreRing):
    def __init__(self, store: ByteStore, size: int):
        super().__init__(store, size, "recent")

    def note(self, key: str, req: ImageRequest, used_prompt: str | None = None) -> None:
        """Called on a miss. ``used_prompt``: the prompt the image was made from (after enhancement
        or the safety rewrite), shown beside the one asked for."""
        self.add({"key": key, "prompt": req.prompt, "used_prompt": used_prompt or req.prompt,
                  "width": req.width, "height": req.height, "seed": req.seed, "model": req.model,
                  "time": time.time()})

    async def latest(self, limit: int) -> list[dict[str, Any]]:
        """Newest first, one per image."""
        seen: set[str] = set()
        unique = []
        for item in await self.items():
            if item["key"] not in seen:
                seen.add(item["key"])
                unique.append(item)
        return unique[:limit]

    async def forget(self, key: str) -> None:
        for i in range(self.size):
            raw = await self.store.get(f"{self.prefix}:{i}")
            if raw and orjson.loads(raw)["key"] == key:
                await self.store.delete(f"{self.prefix}:{i}")
