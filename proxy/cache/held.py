"""Stored files of large images kept open between hits, as nginx's ``open_file_cache`` keeps them:
a hit of an image too large for the memory front is sent from the store's own file of it
(``StoredBody``), and opening that file costs a hop to the store's thread, a SQLite read, an open
and a read of the entry's header, about a tenth of sending 6 MB. A worker keeps the last
``HELD_FILES`` such files open with their entry's header, for ``HELD_FOR`` seconds; each answer
sends from a duplicate of the descriptor, which it closes when it ends.

What is kept is what the store held for that key: a delete bumps the cache generation and this
worker drops everything it holds before it answers again (``sync``), as the memory front does.
An entry the store evicted meanwhile is still the right image for its key; it is served until its
``HELD_FOR`` runs out, and its disk space is freed when it is let go."""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from proxy.cache.entry import CacheEntry
from proxy.cache.stores.base import ValueFile

HELD_FILES = 64  # files a worker keeps open
HELD_FOR = 30.0  # seconds a file is kept before the store is asked again (and its access recorded)


class Held(NamedTuple):
    entry: CacheEntry  # the header: no body, no file
    value: ValueFile
    offset: int  # where the body starts in the file
    since: float


class HeldFiles:
    def __init__(self, size: int = HELD_FILES, hold_for: float = HELD_FOR,
                 clock: Callable[[], float] = time.monotonic):
        self.size = size
        self.hold_for = hold_for
        self.clock = clock
        self.items: OrderedDict[str, Held] = OrderedDict()
        self.generation: int | None = None

    def sync(self, generation: int) -> None:
        """Everything let go when the cache generation moved (a delete somewhere)."""
        if generation != self.generation:
            self.clear()
            self.generation = generation

    def get(self, key: str) -> tuple[CacheEntry, ValueFile, int] | None:
        """The header, a duplicate of the file (the caller closes it) and the body's offset."""
        held = self.items.get(key)
        if held is None:
            return None
        if self.clock() - held.since >= self.hold_for:
            self.discard(key)
            return None
        self.items.move_to_end(key)
        return held.entry, duplicate(held.value), held.offset

    def keep(self, key: str, entry: CacheEntry, value: ValueFile, offset: int, generation: int) -> None:
        """A duplicate of ``value`` kept, if the cache generation is still the one it was read under."""
        if self.size <= 0 or generation != self.generation:
            return
        self.discard(key)
        self.items[key] = Held(entry, duplicate(value), offset, self.clock())
        while len(self.items) > self.size:
            _, oldest = self.items.popitem(last=False)
            oldest.value.close()

    def discard(self, key: str) -> None:
        held = self.items.pop(key, None)
        if held is not None:
            held.value.close()

    def clear(self) -> None:
        while self.items:
            _, held = self.items.popitem()
            held.value.close()


def duplicate(value: ValueFile) -> ValueFile:
    """The same open file through a descriptor of its own (sendfile and pread take offsets: the
    two never share a position)."""
    fd = os.dup(value.fileno())
    try:
        return ValueFile(open(fd, "rb", buffering=0), value.size, value.head)
    except BaseException:
        os.close(fd)
        raise
