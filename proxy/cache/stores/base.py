"""The byte store every cache backend implements. Values are opaque bytes; ``add`` and
``delete_if`` are atomic, which is all single flight needs across processes or hosts."""

from __future__ import annotations

from typing import Any, Protocol


class ByteStore(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...

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
