"""A small per-process LRU in front of the store, for hits that never touch the disk.

Workers share one store but each has its own front. A delete anywhere bumps the shared cache
generation (``proxy.cache.generation``); a front that sees it move forgets everything before it
answers, so a deleted entry is gone from every worker at once."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class MemoryFront(Generic[V]):
    def __init__(self, max_bytes: int, max_item_bytes: int,
                 on_drop: Callable[[str, V], None] | None = None):
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes
        self.on_drop = on_drop  # told of every value that leaves (evicted, discarded, cleared)
        self.items: OrderedDict[str, tuple[V, int]] = OrderedDict()
        self.size = 0
        self.generation = 0

    @property
    def largest(self) -> int:
        """The largest size ``put`` takes."""
        return min(self.max_item_bytes, self.max_bytes)

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
        if size > self.largest:
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
