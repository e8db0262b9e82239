"""Repeated scenes: the last answer given to each user, and whether a new frame repeats it.

The state lives behind ``DedupStore`` (per process in memory; a shared store can implement the same
two methods). Times are wall-clock seconds so that the state may be shared between processes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from proxy.vision.frames import distance


@dataclass(frozen=True)
class Remembered:
    """The answer last given to a user: for which prompt, for which frame (dHash), when."""

    prompt: str
    dhash: int
    at: float
    result: dict[str, Any]


class DedupStore(Protocol):
    async def recall(self, username: str) -> Remembered | None: ...

    async def remember(self, username: str, entry: Remembered) -> None: ...

    async def close(self) -> None: ...


def repeats(last: Remembered | None, prompt: str, dhash: int, now: float, *, seconds: float,
            max_distance: int) -> bool:
    """Is this frame, asked with this prompt now, the scene ``last`` answered?"""
    return (last is not None and last.prompt == prompt and 0.0 <= now - last.at <= seconds
            and distance(last.dhash, dhash) <= max_distance)
