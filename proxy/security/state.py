"""The shared state security needs, as small interfaces. ``local`` keeps it in the SQLite file
under DATA_DIR, shared by every worker process on the host; a Redis implementation can share it
across hosts. ``build_state`` picks one by ``SECURITY_STATE``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from proxy.config.security import Rate
from proxy.security.users import UserCache
from proxy.store.database import Database


class RateLimiter(Protocol):
    async def hit(self, bucket: str, rate: Rate) -> float:
        """Take one token; 0.0 when allowed, else the seconds until one is free (nothing taken)."""
        ...

    async def wait(self, bucket: str, rate: Rate) -> float:
        """Like ``hit`` without taking anything."""
        ...


class SessionStore(Protocol):
    async def grant(self, address: str, username: str, stamp: str, ttl: float) -> None: ...

    async def lookup(self, address: str) -> tuple[str, str] | None:
        """``(username, stamp)`` of the live session of this address, if any."""
        ...


class BlacklistSignal(Protocol):
    async def revision(self) -> int:
        """A number that changes whenever the blacklist changes, from any process."""
        ...


@dataclass(frozen=True)
class SecurityState:
    limiter: RateLimiter
    sessions: SessionStore
    signal: BlacklistSignal


def build_state(db: Database, cache: UserCache) -> SecurityState:
    from proxy.security import local

    backends: dict[str, Callable[[Database, UserCache], SecurityState]] = {"local": local.build}
    return backends["local"](db, cache)
