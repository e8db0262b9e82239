"""A small per-process LRU in front of the store, for hits that never touch the disk.

Workers share one store but each has its own front. A delete anywhere bumps a shared
generation counter (an 8-byte memory-mapped file, or Redis); a front that sees the counter move
forgets everything before it answers, so a deleted entry is gone from every worker at once."""

from __future__ import annotations

import asyncio
import fcntl
import mmap
import os
import struct
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

V = TypeVar("V")
_COUNTER = struct.Struct("<Q")


class Generation:
    """A counter shared by the processes on one host; reading it is a memory load."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < _COUNTER.size:
                os.ftruncate(fd, mmap.PAGESIZE)
            self._map = mmap.mmap(fd, mmap.PAGESIZE)
        finally:
            os.close(fd)
        self._lock_path = path.with_suffix(".lock")

    def read(self) -> int:
        return _COUNTER.unpack_from(self._map, 0)[0]

    async def bump(self) -> int:
        return await asyncio.to_thread(self._bump)

    def _bump(self) -> int:
        """Increment under a file lock, so two deleters never write the same value."""
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            value = self.read() + 1
            _COUNTER.pack_into(self._map, 0, value)
            return value

    def close(self) -> None:
        self._map.close()


class MemoryFront(Generic[V]):
    def __init__(self, max_bytes: int, max_item_bytes: int,
                 on_drop: Callable[[str, V], None] | None = None):
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes
        self.on_drop = on_drop  # told of every value that leaves (evicted, discarded, cleared)
        self.items: OrderedDict[str, tuple[V, int]] = OrderedDict()
        self.size = 0
        self.generation = 0

    def sync(self, generation: int) -> None:
        if generation != self.generation:
            self.clear()
            self.generation = generation

    def get(self, key: str) -> V | None:
        found = self.items.get(key)
        if found is None:
            return None
        self.items.move_to_end(key)
        return found[0]

    def put(self, key: str, value: V, size: int) -> None:
        if size > self.max_item_bytes or size > self.max_bytes:
            return
        self.discard(key)
        self.items[key] = (value, size)
        self.size += size
        while self.size > self.max_bytes:
            old_key, (old_value, old) = self.items.popitem(last=False)
            self.size -= old
            self._dropped(old_key, old_value)

    def discard(self, key: str) -> None:
        found = self.items.pop(key, None)
        if found is not None:
            self.size -= found[1]
            self._dropped(key, found[0])

    def clear(self) -> None:
        dropped = list(self.items.items())
        self.items.clear()
        self.size = 0
        for key, (value, _) in dropped:
            self._dropped(key, value)

    def _dropped(self, key: str, value: V) -> None:
        if self.on_drop is not None:
            self.on_drop(key, value)
