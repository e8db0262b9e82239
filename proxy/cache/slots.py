"""Generations in flight at once over the whole server (MAX_GENERATIONS_IN_FLIGHT): a counting
semaphore that every worker sees, so a burst of new prompts cannot start more backend calls than
the owner allows; a miss beyond it waits a short while for a slot (``wait_for_slot``), then gets
a 503.

Here the host's twin: slot ``i`` is byte ``i`` of a lock file beside the cache, taken with a
non-blocking open-file-description lock (``proxy.cache.locks.file.ByteLocks``). The kernel drops
the locks of a worker that dies, so a crash never keeps a slot. ``slots_redis`` shares the slots
across instances (leases that run out). Where the file system refuses such locks, each worker
counts its own (``WorkerSlots``, the bound then holds per worker)."""

from __future__ import annotations

import asyncio
import logging
import math
import random
from pathlib import Path
from typing import Protocol

from proxy.cache.locks.file import ByteLocks
from proxy.errors import ServiceUnavailable

log = logging.getLogger(__name__)


class Slot(Protocol):
    async def release(self) -> None: ...


class GenerationSlots(Protocol):
    size: int

    async def take(self) -> Slot | None:
        """A free slot, or None at once when all are taken."""
        ...

    async def busy(self) -> int:
        """How many slots are taken now, over everyone who shares them."""
        ...

    async def close(self) -> None: ...


class FileSlot:
    def __init__(self, slots: FileSlots, offset: int):
        self.slots = slots
        self.offset = offset

    async def release(self) -> None:
        self.slots.locks.unlock(self.offset)


class FileSlots:
    """Slots shared by the workers of one host: one byte of a lock file each."""

    def __init__(self, locks: ByteLocks, size: int):
        self.locks = locks
        self.size = size

    @classmethod
    def open(cls, path: Path, size: int) -> FileSlots | None:
        locks = ByteLocks.probe(path)
        return None if locks is None else cls(locks, size)

    async def take(self) -> FileSlot | None:
        start = random.randrange(self.size)  # waiters of several workers do not all try byte 0 first
        for n in range(self.size):
            offset = (start + n) % self.size
            if self.locks.lock(offset):
                return FileSlot(self, offset)
        return None

    async def busy(self) -> int:
        return sum(self.locks.taken(offset) for offset in range(self.size))

    async def close(self) -> None:
        self.locks.close()


class WorkerSlot:
    def __init__(self, slots: WorkerSlots):
        self.slots = slots

    async def release(self) -> None:
        self.slots.taken -= 1


class WorkerSlots:
    """This worker's own count, where no lock file can be shared."""

    def __init__(self, size: int):
        self.size = size
        self.taken = 0

    async def take(self) -> WorkerSlot | None:
        if self.taken >= self.size:
            return None
        self.taken += 1
        return WorkerSlot(self)

    async def busy(self) -> int:
        return self.taken

    async def close(self) -> None:
        return None


def open_slots(path: Path, size: int) -> GenerationSlots:
    """The host's slots in the lock file at ``path``, or each worker's own where files refuse locks."""
    slots = FileSlots.open(path, size)
    if slots is not None:
        return slots
    log.warning("this file system refuses byte-range locks: MAX_GENERATIONS_IN_FLIGHT holds per worker")
    return WorkerSlots(size)


async def wait_for_slot(slots: GenerationSlots, wait: float, *, poll: float = 0.02,
                        max_poll: float = 0.25) -> Slot:
    """A slot, waiting at most ``wait`` seconds for one; then ``ServiceUnavailable`` (503) with
    a Retry-After."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    delay = poll
    while True:
        slot = await slots.take()
        if slot is not None:
            return slot
        left = deadline - loop.time()
        if left <= 0:
            retry = max(1, math.ceil(wait))
            raise ServiceUnavailable(f"{slots.size} new images are being made already; try again in a "
                                     "moment", code="generations_busy", headers={"Retry-After": str(retry)})
        await asyncio.sleep(min(delay, left))
        delay = min(delay * 1.5, max_poll)
