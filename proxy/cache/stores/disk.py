"""The embedded store: diskcache (SQLite + files) under DATA_DIR, bounded, least-recently-used.

Every call runs on a small dedicated thread pool, so the event loop never waits on disk.
diskcache commits each value in one SQLite transaction after its file is written, so a reader
sees the old value or the new one, never a partial one, across threads and processes.
A presence map beside it answers "certainly absent" for most misses without a thread hop.

A full disk (or quota) does not stop the store: a write that finds it full fails with
``StorageFull`` (503) and is logged once; reads go on, through a second view of the same cache
that does not record access times (that bookkeeping is a write too); ``room()`` then refuses new
entries at once, looking every ``RECHECK`` seconds whether space was freed.
Recording an access is a write transaction, and the workers queue for SQLite's one write lock
(its busy wait sleeps 1-100 ms at a time): a worker records a key's access at most once every
``RECORD_EVERY`` seconds and reads it through the recording-free view in between. Eviction stays
least-recently-used to within that time (hits of the memory front are not seen by the store at all).

Values of ``disk_min_file_size`` and up are files of their own in the directory (diskcache's
design), each holding exactly the value's bytes; ``open_value`` hands a large one out opened, so
it can be sent from there with sendfile.

The cache is disposable: a damaged database found at start-up (not a database, or malformed) is
moved aside with everything beside it, kept for inspection as ``<dir>.damaged-<time>``, and an
empty cache takes its place (``repaired``); the log says so. Workers starting together agree on
one repair (a lock on the directory)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import io
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import diskcache

from proxy.cache.stores.base import ValueFile
from proxy.cache.stores.presence import AllPresent, PresenceMap
from proxy.config.cache import CacheSettings
from proxy.errors import ConfigError, StorageFull

log = logging.getLogger(__name__)
STORE_ID = "meta:store-id"  # names this store in its presence map's header
RECHECK = 5.0  # seconds between looks at the free space while the disk is full
ROOM = 64 * 1024 * 1024  # free bytes (or a twentieth of the disk, if less) that end "full"
RECORD_EVERY = 30.0  # seconds a worker lets pass between two recorded accesses of one key
RECORDED_KEYS = 4096  # keys whose last recorded access a worker remembers (forgotten all at once)


class DiskStore:
    name = "diskcache"

    def __init__(self, directory: Path, size_limit: int, *, threads: int = 4):
        self.directory = directory
        self.size_limit = size_limit
        self.repaired: Path | None = None  # where a damaged cache found at start-up was moved
        self.full: str | None = None  # why the last write failed, while the disk is full
        self.full_checked = 0.0
        self._open_repairing()
        self.threads = threads
        self.closing = False
        self.recorded: dict[str, float] = {}  # key -> when this worker last recorded its access
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="diskcache")
        self._close_here()  # diskcache keeps a connection per thread: the pool's threads open theirs

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        _private(self.directory, 0o700)  # also one an older version made 0755
        self.cache = diskcache.Cache(
            str(self.directory),
            size_limit=self.size_limit,
            eviction_policy="least-recently-used",
            cull_limit=16,
            disk_min_file_size=64 * 1024,
        )
        _private(self.directory / "cache.db", 0o600)
        self.presence: PresenceMap | AllPresent = AllPresent()
        try:
            self.presence = self._presence()
            self._match_presence()
            # the same cache, read without recording access times: what hits use on a full disk
            self.reader = diskcache.Cache(str(self.directory))
            self.reader.reset("eviction_policy", "none", update=False)
        except BaseException:
            self.presence.close()
            self.cache.close()
            raise

    def _presence(self) -> PresenceMap | AllPresent:
        try:
            return PresenceMap(self.directory / "presence")
        except OSError as exc:
            log.warning("no presence map in %s (%s): every miss asks the cache", self.directory, exc.strerror)
            return AllPresent()

    def _open_repairing(self) -> None:
        try:
            return self._open()
        except sqlite3.DatabaseError as exc:
            if not _damaged(exc):
                raise
        with _locked(self.directory):
            try:
                return self._open()  # another worker may have repaired it meanwhile
            except sqlite3.DatabaseError as exc:
                if not _damaged(exc):
                    raise
                self.repaired = _move_aside(self.directory)
                log.warning("the image cache in %s was damaged (%s): moved it to %s for inspection "
                            "(delete it when done) and started an empty cache", self.directory, exc,
                            self.repaired)
            self._open()

    def _match_presence(self) -> None:
        """Blocking, at start-up: mark every key when the map does not describe this store.
        Marks are never cleared, so workers writing meanwhile lose nothing."""
        if isinstance(self.presence, AllPresent):
            return
        store_id = self.cache.get(STORE_ID, retry=True)
        if isinstance(store_id, bytes) and store_id == self.presence.store_id.rstrip(b"\0"):
            return
        if not isinstance(store_id, bytes):
            self.presence.mark(STORE_ID)
            self.cache.add(STORE_ID, secrets.token_hex(16).encode(), retry=True)
            store_id = self.cache.get(STORE_ID, retry=True)  # a worker starting too may have won
        for key in self.cache.iterkeys():
            if isinstance(key, str):
                self.presence.mark(key)
        self.presence.store_id = store_id

    @classmethod
    def from_settings(cls, settings: CacheSettings) -> DiskStore:
        return cls(settings.directory, settings.size_limit)

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, lambda: self._call(fn, args, kwargs))

    def _call(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            if self.closing:  # a call that comes while the store closes closes its thread's connection
                self._close_here()

    def _close_here(self) -> None:
        """Closes this thread's connections (diskcache's ``close`` closes only the caller's)."""
        self.cache.close()
        self.reader.close()

    async def _write(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await self._run(fn, *args, **kwargs)
        except (OSError, sqlite3.OperationalError) as exc:
            if not _disk_full(exc):
                raise
            self._filled(exc)
            raise StorageFull(FULL_MESSAGE) from None

    def _filled(self, exc: BaseException) -> None:
        self.full_checked = time.monotonic()
        if self.full is None:
            self.full = str(exc)
            log.error("the disk holding the image cache (%s) is full (%s): cached images are still "
                      "served, new ones are refused with 503 until space is freed (free some, or lower "
                      "CACHE_SIZE_LIMIT below what the disk holds)", self.directory, exc)

    async def room(self) -> None:
        """``StorageFull`` while the disk is full (the free space is looked at every ``RECHECK`` s)."""
        if self.full is None:
            return
        now = time.monotonic()
        if now - self.full_checked >= RECHECK:
            self.full_checked = now
            if await self._run(self._has_room):
                self.full = None
                log.warning("the disk holding the image cache (%s) has room again: new images are "
                            "stored again", self.directory)
                return
        raise StorageFull(FULL_MESSAGE)

    def _has_room(self) -> bool:
        disk = os.statvfs(self.directory)
        if disk.f_files and not disk.f_favail:
            return False  # no inode left
        return disk.f_bavail * disk.f_frsize >= min(ROOM, disk.f_blocks * disk.f_frsize // 20)

    async def get(self, key: str) -> bytes | None:
        return await self._read(key, lambda cache, _: cache.get(key, None, retry=True))

    async def open_value(self, key: str, *, whole_to: int, head: int) -> bytes | ValueFile | None:
        """diskcache keeps values of ``disk_min_file_size`` and up as files of their own, holding
        exactly the value's bytes: such a file is opened (inside diskcache's read of the entry,
        so it is the file of the value read) and, when larger than ``whole_to``, handed out."""
        return await self._read(key, lambda cache, first: _open_value(cache, key, whole_to, head,
                                                                      ahead=first))

    async def _read(self, key: str, read: Callable[[diskcache.Cache, bool], Any]) -> Any:
        """``read`` of the cache, on the pool; of the view that records no access on a full disk,
        or when this worker recorded the key's access a moment ago. ``read``'s second argument
        says whether this is the first read of the key in that while."""
        if not self.presence.might_have(key):
            return None  # most misses end here, with no thread hop
        first = self._records(key)
        if self.full is None and first:
            try:
                return await self._run(read, self.cache, True)
            except sqlite3.OperationalError as exc:  # recording the access time needs room
                if not _disk_full(exc):
                    raise
                self._filled(exc)
        return await self._run(read, self.reader, first)

    def _records(self, key: str) -> bool:
        """Whether this read of ``key`` records its access (not if it did a moment ago)."""
        now, recorded = time.monotonic(), self.recorded
        last = recorded.get(key)
        if last is not None and now - last < RECORD_EVERY:
            return False
        if len(recorded) >= RECORDED_KEYS:
            recorded.clear()
        recorded[key] = now
        return True

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self.presence.mark(key)  # before the value lands: an unmarked key is certainly absent
        await self._write(self.cache.set, key, value, expire=ttl, retry=True)

    async def add(self, key: str, value: bytes, *, ttl: float) -> bool:
        self.presence.mark(key)
        return await self._write(self.cache.add, key, value, expire=ttl, retry=True)

    async def touch(self, key: str, *, ttl: float) -> bool:
        return await self._write(self.cache.touch, key, expire=ttl, retry=True)

    async def delete(self, key: str) -> bool:
        return await self._write(self.cache.delete, key, retry=True)

    async def delete_if(self, key: str, value: bytes) -> bool:
        return await self._write(self._delete_if, key, value)

    def _delete_if(self, key: str, value: bytes) -> bool:
        with self.cache.transact(retry=True):
            if self.cache.get(key) == value:
                return bool(self.cache.delete(key))
        return False

    async def incr(self, key: str, delta: int = 1) -> int:
        self.presence.mark(key)
        return await self._write(self.cache.incr, key, delta, 0, retry=True)

    async def stats(self) -> dict[str, Any]:
        return await self._run(self._stats)

    def _stats(self) -> dict[str, Any]:
        return {"store": self.name, "keys": len(self.cache), "bytes": self.cache.volume(),
                "size_limit": self.cache.size_limit, "disk_full": self.full is not None}

    async def ping(self) -> None:
        await self._run(self.cache.get, STORE_ID, None, retry=True)  # a real read, on the pool

    async def close(self) -> None:
        """Closes the SQLite connection of every pool thread: diskcache's ``close`` closes only the
        calling thread's, so each thread runs it, held at a barrier until all have a task."""
        self.closing = True
        barrier = threading.Barrier(self.threads, timeout=10)

        def close_here() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
            self._close_here()

        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self.pool, close_here) for _ in range(self.threads)))
        self.pool.shutdown(wait=True)
        self.presence.close()


FULL_MESSAGE = ("the disk holding the image cache is full: new images cannot be stored, cached ones "
                "are still served; try again later")


def _open_value(cache: diskcache.Cache, key: str, whole_to: int, head: int, *,
                ahead: bool) -> bytes | ValueFile | None:
    """``ahead``: ask the kernel to read the file ahead (75 us for 6 MB already in the page cache:
    only on the first read in a while)."""
    found = cache.get(key, None, read=True, retry=True)  # a value kept as a file comes open
    if not isinstance(found, io.BufferedReader):
        return found  # kept in the database itself (small), or absent
    try:
        size = os.fstat(found.fileno()).st_size
        if size <= whole_to:
            with found:
                return found.read()
        if ahead and hasattr(os, "posix_fadvise"):  # read ahead, for sendfile (a hint: may be refused)
            with contextlib.suppress(OSError):
                os.posix_fadvise(found.fileno(), 0, size, os.POSIX_FADV_WILLNEED)
        return ValueFile(found, size, found.read(head))
    except BaseException:
        found.close()
        raise


def _disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.OperationalError):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "is full" in str(exc)
    return False


def _private(path: Path, mode: int) -> None:
    with contextlib.suppress(PermissionError, FileNotFoundError):  # another user's: theirs to protect
        os.chmod(path, mode)


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """Corruption ("file is not a database", "malformed"), not a lock, a permission or a full disk."""
    return not isinstance(exc, sqlite3.OperationalError)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on the directory itself, so workers starting together repair it once."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _move_aside(directory: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = directory.with_name(f"{directory.name}.damaged-{stamp}")
    if target.exists():
        target = target.with_name(f"{target.name}-{os.getpid()}")
    try:
        directory.rename(target)
    except OSError as exc:
        raise ConfigError("CACHE_DIR", f"the image cache in {directory} is damaged and cannot be moved aside "
                          f"({exc.strerror})", f"move or delete {directory} (it is only a cache)") from None
    return target
