"""Repeated scenes: the last answer given to each user, and whether a new frame repeats it.

The state lives behind ``DedupStore``: this process's memory (``memory``), the host's disk cache that
every worker shares (``disk``), and, with REDIS_URL, Redis (``redis``). Times are wall-clock
seconds so that the state may be shared between processes; ``encode``/``decode`` are how it is
written there."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

import orjson

from proxy.vision.frames import distance


@dataclass(frozen=True)
class Remembered:
    """The answer last given to a user: for which prompt, for which frame (dHash), when."""

    prompt: str
    dhash: int
    at: float
    result: dict[str, Any]


class DedupStore(Protocol):
    def recall_here(self, username: str) -> Remembered | None:
        """What this process answered last for the user (no I/O): a repeat of it needs no lookup."""
        ...

    async def recall(self, username: str) -> Remembered | None:
        """The last answer given to the user by any worker (or instance) sharing the state."""
        ...

    async def remember(self, username: str, entry: Remembered) -> None: ...

    async def close(self) -> None: ...


def encode(entry: Remembered) -> bytes:
    return orjson.dumps(asdict(entry))


def decode(raw: bytes | str) -> Remembered:
    return Remembered(**orjson.loads(raw))


def repeats(last: Remembered | None, prompt: str, dhash: int, now: float, *, seconds: float,
            max_distance: int) -> bool:
    """Is this frame, asked with this prompt now, the scene ``last`` answered?"""
    return (last is not None and last.prompt == prompt and 0.0 <= now - last.at <= seconds
            and distance(last.dhash, dhash) <= max_distance)
