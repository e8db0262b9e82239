"""The cache generation: a counter that every delete bumps and every memory front reads before
it answers, so a deleted entry is gone from every worker (and, with Redis, every instance) at once.

Here the host's twin: an 8-byte memory-mapped file the workers on one host share, read with a
memory load and written with ``pwrite`` (the same page: a full disk fails that write with an
error, where a store through the map would kill the process with SIGBUS).
``proxy.cache.generation_redis`` adds what other instances announce."""

from __future__ import annotations

import asyncio
import fcntl
import mmap
import os
import struct
from pathlib import Path
from typing import Protocol

_COUNTER = struct.Struct("<Q")


class SharedGeneration(Protocol):
    def read(self) -> int: ...

    async def bump(self) -> int: ...


class Generation:
    """A counter shared by the processes on one host; reading it is a memory load."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(self._fd).st_size < _COUNTER.size:
                os.ftruncate(self._fd, mmap.PAGESIZE)
            self._map = mmap.mmap(self._fd, mmap.PAGESIZE, prot=mmap.PROT_READ)
        except BaseException:
            os.close(self._fd)
            raise
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
            os.pwrite(self._fd, _COUNTER.pack(value), 0)
            return value

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)
