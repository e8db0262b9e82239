"""Glasses sessions: after ``POST /auth-{key}``, an address is that profile for AUTH_SESSION_TTL,
so the glasses' frames need no key. Kept in the SQLite file and read through each worker's user
cache; with REDIS_URL, ``sessions_redis`` shares them with every instance."""

from __future__ import annotations

from typing import Protocol

from proxy.accounts import users
from proxy.accounts.models import AccountsContext
from proxy.accounts.users import UserCache
from proxy.db.database import Database


class SessionStore(Protocol):
    async def grant(self, address: str, username: str, stamp: str, ttl: float) -> None: ...

    async def lookup(self, address: str) -> tuple[str, str] | None:
        """``(username, stamp)`` of the live session of this address, if any."""
        ...


class SqliteSessions:
    """Sessions in SQLite, read through this worker's ``UserCache`` (no trip per frame)."""

    def __init__(self, db: Database[AccountsContext], cache: UserCache):
        self.db = db
        self.cache = cache

    async def grant(self, address: str, username: str, stamp: str, ttl: float) -> None:
        await self.db.run(users.grant, address, username, stamp, ttl)

    async def lookup(self, address: str) -> tuple[str, str] | None:
        row = await self.cache.session(address)
        return (row.username, row.stamp) if row else None
