"""The embedded store: diskcache (SQLite + files) under DATA_DIR, bounded, least-recently-used.

Every call runs on a small dedicated thread pool, so the event loop never waits on disk.
diskcache commits each value in one SQLite transaction after its file is written, so a reader
sees the old value or the new one, never a partial one, across threads and processes."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import diskcache

from proxy.config.cache import CacheSettings


class DiskStore:
    name = "diskcache"

    def __init__(self, directory: Path, size_limit: int, *, threads: int = 4):
        directory.mkdir(parents=True, exist_ok=True)
        self.cache = diskcache.Cache(
            str(directory),
            size_limit=size_limit,
            eviction_policy="least-recently-used",
            cull_limit=16,
            disk_min_file_size=64 * 1024,
        )
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="diskcache")

    @classmethod
    def from_settings(cls, settings: CacheSettings) -> DiskStore:
        return cls(settings.directory, settings.size_limit)

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, lambda: fn(*args, **kwargs))

    async def get(self, key: str) -> bytes | None:
        return await self._run(self.cache.get, key, None, retry=True)

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await self._run(self.cache.set, key, value, expire=ttl, retry=True)

    async def add(self, key: str, value: bytes, *, ttl: float) -> bool:
        return await self._run(self.cache.add, key, value, expire=ttl, retry=True)

    async def touch(self, key: str, *, ttl: float) -> bool:
        return await self._run(self.cache.touch, key, expire=ttl, retry=True)

    async def delete(self, key: str) -> bool:
        return await self._run(self.cache.delete, key, retry=True)

    async def delete_if(self, key: str, value: bytes) -> bool:
        return await self._run(self._delete_if, key, value)

    def _delete_if(self, key: str, value: bytes) -> bool:
        with self.cache.transact(retry=True):
            if self.cache.get(key) == value:
                return bool(self.cache.delete(key))
        return False

    async def incr(self, key: str, delta: int = 1) -> int:
        return await self._run(self.cache.incr, key, delta, 0, retry=True)

    async def stats(self) -> dict[str, Any]:
        return await self._run(self._stats)

    def _stats(self) -> dict[str, Any]:
        return {"store": self.name, "keys": len(self.cache), "bytes": self.cache.volume(),
                "size_limit": self.cache.size_limit}

    async def close(self) -> None:
        await self._run(self.cache.close)
        self.pool.shutdown(wait=True)
