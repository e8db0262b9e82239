"""Flight locks for the workers of one host: Linux open-file-description byte-range locks.

One byte of a lock file per key, at an offset taken from the key's hash. Taking or testing a
lock is one non-blocking system call on a file that is never read or written: no thread hop,
no disk. The kernel drops the locks of a process that dies, so no lease or heartbeat is needed.
Open-file-description locks (unlike classic POSIX ones) belong to this open file, so two
``FileLock`` objects in one process exclude each other as two processes do."""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
from pathlib import Path

_FLOCK = struct.Struct("hhqqi4x")  # struct flock: l_type, l_whence, l_start, l_len, l_pid
AVAILABLE = hasattr(fcntl, "F_OFD_SETLK")


class ByteLocks:
    """Non-blocking locks on the bytes of one open file (``FileLock``'s flights, and the
    generation slots of ``proxy.cache.slots``). Each call is one system call; the kernel drops
    the locks of a process that dies."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.held: set[int] = set()  # ours: testing one of them would succeed, and unlocking it free it

    @classmethod
    def probe(cls, path: Path) -> ByteLocks | None:
        """Locks on ``path``, or None where the file system or the kernel refuses such locks."""
        if not AVAILABLE:
            return None
        try:
            locks = cls(path)
        except OSError:
            return None
        try:
            if locks._set(fcntl.F_WRLCK, 0):
                locks._set(fcntl.F_UNLCK, 0)
        except OSError:  # EINVAL or ENOLCK, say: locks are not supported here
            os.close(locks.fd)
            return None
        return locks

    def _set(self, kind: int, offset: int) -> bool:
        try:
            fcntl.fcntl(self.fd, fcntl.F_OFD_SETLK, _FLOCK.pack(kind, os.SEEK_SET, offset, 1, 0))
        except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: another holder
            return False
        return True

    def lock(self, offset: int) -> bool:
        """Takes the byte at ``offset``; False when anyone holds it (this object included)."""
        if offset in self.held or not self._set(fcntl.F_WRLCK, offset):
            return False
        self.held.add(offset)
        return True

    def unlock(self, offset: int) -> None:
        self.held.discard(offset)
        self._set(fcntl.F_UNLCK, offset)

    def taken(self, offset: int) -> bool:
        """Held by anyone, this object included."""
        if offset in self.held:
            return True
        if not self._set(fcntl.F_WRLCK, offset):
            return True
        self._set(fcntl.F_UNLCK, offset)
        return False

    def close(self) -> None:
        os.close(self.fd)  # releases whatever is still held


class FileLease:
    def __init__(self, lock: FileLock, offset: int):
        self.lock = lock
        self.offset = offset

    async def release(self, *, finished: bool) -> None:
        self.lock.bytes.unlock(self.offset)


class FileLock:
    marks_finish = False  # a finished leader marked the store first: the lookup after locking sees it

    def __init__(self, path: Path, locks: ByteLocks | None = None):
        self.bytes = locks or ByteLocks(path)

    @classmethod
    def open(cls, path: Path) -> FileLock | None:
        """A lock on ``path``, or None where the file system or the kernel refuses such locks."""
        locks = ByteLocks.probe(path)
        return None if locks is None else cls(path, locks)

    @staticmethod
    def offset(key: str) -> int:
        return 1 + (int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") >> 2)

    async def acquire(self, key: str) -> FileLease | None:
        offset = self.offset(key)
        return FileLease(self, offset) if self.bytes.lock(offset) else None

    async def may_lead(self, key: str) -> bool:
        return True  # trying costs one system call

    async def publishing(self, key: str) -> bool:
        return self.bytes.taken(self.offset(key))

    async def forget(self, key: str) -> None:
        return None

    async def close(self) -> None:
        self.bytes.close()
