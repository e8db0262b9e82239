"""Per-process dedup state: a bounded, least-recently-used map of username -> last answer."""

from __future__ import annotations

from collections import OrderedDict

from proxy.vision.dedup.base import Remembered


class MemoryDedup:
    def __init__(self, max_users: int = 10_000):
        self.max_users = max_users
        self.entries: OrderedDict[str, Remembered] = OrderedDict()

    def recall_here(self, username: str) -> Remembered | None:
        return self.entries.get(username)

    async def recall(self, username: str) -> Remembered | None:
        return self.entries.get(username)

    async def remember(self, username: str, entry: Remembered) -> None:
        self.entries[username] = entry
        self.entries.move_to_end(username)
        while len(self.entries) > self.max_users:
            self.entries.popitem(last=False)

    async def close(self) -> None:
        self.entries.clear()
