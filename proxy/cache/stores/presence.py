"""Which keys the local store might hold, readable without I/O: a miss skips the store lookup.

A memory-mapped file of one-byte slots shared by the processes on one host (a Bloom filter with
one hash). Every write marks its key's slot before the value lands, so an unmarked slot means
"certainly absent"; a marked one means "maybe": deleted or evicted keys leave their mark, which
costs only a lookup. One byte per slot keeps marks from different processes from clobbering each
other. The header names the store the marks describe: a map that does not match its store (new,
or the cache directory was replaced) is filled from the store's keys before it is trusted.

The file's blocks are allocated when it is opened: a mark writes to memory the kernel must back
with disk, and a page first written on a full disk would kill the process (SIGBUS). Where they
cannot be allocated (the disk is full already), ``AllPresent`` stands in: every key "maybe".

Its pages are mapped when it is opened (``MAP_POPULATE``, 3.5 ms for the 8 MiB here): otherwise a
new worker's first look at each page is a page fault, 13 us on a miss's path, and new keys land on
pages at random, so that is most misses of a worker's first ten thousand. The pages are the page
cache's, shared by the workers (each one's RSS counts them)."""

from __future__ import annotations

import hashlib
import mmap
import os
from pathlib import Path

SLOTS = 8 * 1024 * 1024  # 8 MiB: about 1 % of slots marked, so 1 % needless lookups, per 80,000 keys
HEADER = 64
_ID = slice(0, 32)
POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux


class PresenceMap:
    def __init__(self, path: Path, slots: int = SLOTS):
        self.slots = slots
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < HEADER + slots:
                os.ftruncate(fd, HEADER + slots)
            os.posix_fallocate(fd, 0, HEADER + slots)  # OSError (ENOSPC) here, not SIGBUS on a mark
            self._map = mmap.mmap(fd, HEADER + slots, flags=mmap.MAP_SHARED | POPULATE)
        finally:
            os.close(fd)

    def _slot(self, key: str) -> int:
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        return HEADER + int.from_bytes(digest, "little") % self.slots

    def might_have(self, key: str) -> bool:
        return self._map[self._slot(key)] != 0

    def mark(self, key: str) -> None:
        self._map[self._slot(key)] = 1

    @property
    def store_id(self) -> bytes:
        return bytes(self._map[_ID])

    @store_id.setter
    def store_id(self, value: bytes) -> None:
        self._map[_ID] = value.ljust(32, b"\0")[:32]

    def close(self) -> None:
        self._map.close()


class AllPresent:
    """No map: every key might be present (each miss asks the store)."""

    store_id = b""

    def might_have(self, key: str) -> bool:
        return True

    def mark(self, key: str) -> None:
        return None

    def close(self) -> None:
        return None
