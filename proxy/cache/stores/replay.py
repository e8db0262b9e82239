"""What Redis may be missing, kept to be made again: writes and deletes made while it was out,
and cache writes no replica confirmed (``REDIS_WAIT_REPLICAS``), which a master replaced by
Sentinel would take with it.

Each entry remembers how many times the master had moved when it was made (``moves``; -1 for one
that never reached Redis). After a move, the entries made before it are due again; after an
outage, all are. A later write or delete of the same key replaces its entry. The journal is
bounded: ``MAX_BYTES`` of values and ``MAX_ENTRIES`` keys (the oldest go first), an entry whose
TTL has run out is not written again, and a write that reached the current master but no replica
is kept ``KEEP_UNCONFIRMED`` seconds (long enough for Sentinel to notice a lost master and
promote its replica; after that, a replica either has it or never will)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)
MAX_BYTES = 32 * 1024 * 1024
MAX_ENTRIES = 10_000
KEEP_UNCONFIRMED = 120.0
NEVER_WRITTEN = -1


@dataclass(eq=False)
class Pending:
    value: bytes | None  # None: a delete
    expires: float | None  # monotonic time its TTL ends; None: no TTL
    moves: int  # the master's moves when it was made; NEVER_WRITTEN: Redis never took it
    made: float = field(default_factory=time.monotonic)

    def ttl(self, now: float) -> float | None:
        """Seconds left (None: no TTL); 0 or less once it has expired."""
        return None if self.expires is None else self.expires - now


class Replay:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.entries: dict[str, Pending] = {}  # oldest first
        self.bytes = 0
        self.dropped = 0

    def write(self, key: str, value: bytes, ttl: float | None, moves: int) -> Pending:
        now = self.clock()
        return self._put(key, Pending(value, None if ttl is None else now + ttl, moves, now))

    def delete(self, key: str) -> Pending:
        return self._put(key, Pending(None, None, NEVER_WRITTEN, self.clock()))

    def current(self, key: str, entry: Pending) -> bool:
        """Is ``entry`` still what the journal holds for ``key``?"""
        return self.entries.get(key) is entry

    def settled(self, key: str, entry: Pending | None = None) -> None:
        """Redis has it for sure: forget the key (only ``entry``, when given and still current)."""
        current = self.entries.get(key)
        if current is not None and (entry is None or current is entry):
            self._remove(key)

    def due(self, moves: int | None) -> list[tuple[str, Pending]]:
        """Entries made before the master's ``moves``-th move (all of them: ``None``)."""
        self._prune()
        return [(key, entry) for key, entry in self.entries.items() if moves is None or entry.moves < moves]

    def counts(self) -> dict[str, int]:
        deletes = sum(1 for entry in self.entries.values() if entry.value is None)
        return {"writes": len(self.entries) - deletes, "deletes": deletes, "bytes": self.bytes,
                "dropped": self.dropped}

    def _put(self, key: str, entry: Pending) -> Pending:
        self._remove(key)
        if len(entry.value or b"") > MAX_BYTES:
            return entry  # too large to keep: written once, as without a journal
        self.entries[key] = entry
        self.bytes += len(entry.value or b"")
        self._prune()
        return entry

    def _remove(self, key: str) -> None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            self.bytes -= len(entry.value or b"")

    def _prune(self) -> None:
        now = self.clock()
        while self.entries:
            key, oldest = next(iter(self.entries.items()))
            stale = oldest.moves != NEVER_WRITTEN and now - oldest.made > KEEP_UNCONFIRMED
            if not (stale or self.bytes > MAX_BYTES or len(self.entries) > MAX_ENTRIES):
                return
            self._remove(key)
            if not stale:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning("too much for Redis to catch up on: %d writes or deletes will not be "
                                "made again there", self.dropped)
