"""What single flight needs from a lock shared by every worker (and, with Redis, every host)."""

from __future__ import annotations

from typing import Protocol


class Lease(Protocol):
    async def release(self, *, finished: bool) -> None:
        """Give the lock back; ``finished`` when the result was published."""
        ...


class FlightLock(Protocol):
    marks_finish: bool
    """True when a lock released after publishing stays taken for a moment, so a caller that
    looked the result up just before locking need not look again."""

    async def acquire(self, key: str) -> Lease | None:
        """The lock for ``key``, or None at once when someone holds it."""
        ...

    async def may_lead(self, key: str) -> bool:
        """Worth trying ``acquire`` again: the holder finished without a result, or died."""
        ...

    async def publishing(self, key: str) -> bool:
        """Someone holds the lock for ``key`` and has not finished publishing."""
        ...

    async def forget(self, key: str) -> None:
        """After an admin delete: the next miss for ``key`` may lead at once."""
        ...

    async def close(self) -> None: ...
