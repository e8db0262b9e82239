"""The byte store every cache backend implements. Values are opaque bytes; ``add`` and
``delete_if`` are atomic, which is all single flight needs across processes or hosts.

A store that keeps large values as files of their own (the disk store) can hand one out opened
(``open_value``, a ``ValueFile``), so a large answer is sent from the file with sendfile instead
of being read into memory; a store without files (Redis) answers with the value itself."""

from __future__ import annotations

import os
from typing import Any, BinaryIO, Protocol


class ValueFile:
    """A value the store keeps as a file of its own, opened: its ``size`` and its first bytes
    (``head``, read when it was opened), readable at any offset until ``close``.

    The open descriptor keeps the bytes whatever the store does meanwhile: diskcache writes every
    new value to a new file and unlinks the old one on a delete, an eviction or an overwrite, which
    takes nothing from a reader that holds it open. ``read_at`` blocks (a thread's work)."""

    def __init__(self, file: BinaryIO, size: int, head: bytes):
        self.file = file
        self.size = size
        self.head = head

    def fileno(self) -> int:
        return self.file.fileno()

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset`` (fewer only at the end of the file)."""
        parts, fd = [], self.file.fileno()
        while size > 0:
            part = os.pread(fd, size, offset)
            if not part:
                break
            parts.append(part)
            offset += len(part)
            size -= len(part)
        return b"".join(parts)

    @property
    def closed(self) -> bool:
        return self.file.closed

    def close(self) -> None:
        self.file.close()


class ByteStore(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def open_value(self, key: str, *, whole_to: int, head: int) -> bytes | ValueFile | None:
        """The value as ``get`` gives it when the store keeps no file for it (Redis never does) or
        it is at most ``whole_to`` bytes; else its file, opened with its first ``head`` bytes read.
        The caller closes the file."""
        ...

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None: ...

    async def add(self, key: str, value: bytes, *, ttl: float) -> bool:
        """Store only if absent; True when this call stored it."""
        ...

    async def touch(self, key: str, *, ttl: float) -> bool: ...

    async def delete(self, key: str) -> bool: ...

    async def delete_if(self, key: str, value: bytes) -> bool:
        """Delete only while the key still holds ``value`` (releasing a lock we own)."""
        ...

    async def incr(self, key: str, delta: int = 1) -> int: ...

    async def room(self) -> None:
        """Raises ``StorageFull`` while new entries cannot be stored (a full disk)."""
        ...

    async def stats(self) -> dict[str, Any]: ...

    async def ping(self) -> None:
        """Raises unless the store answers a read now (readiness)."""
        ...

    async def close(self) -> None: ...
