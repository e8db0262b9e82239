"""Security state in the SQLite database under DATA_DIR: shared by all worker processes and by
the admin CLI on this host, and surviving restarts."""

from __future__ import annotations

from proxy.security.buckets import SqliteLimiter
from proxy.security.state import SecurityState
from proxy.security.users import UserCache
from proxy.store import blacklist, users
from proxy.store.database import Database


class SqliteSessions:
    """Sessions in SQLite, read through this worker's ``UserCache`` (no trip per frame)."""

    def __init__(self, db: Database, cache: UserCache):
        self.db = db
        self.cache = cache

    async def grant(self, address: str, username: str, stamp: str, ttl: float) -> None:
        await self.db.run(users.grant, address, username, stamp, ttl)

    async def lookup(self, address: str) -> tuple[str, str] | None:
        row = await self.cache.session(address)
        return (row.username, row.stamp) if row else None


class SqliteSignal:
    """The blacklist counter every blacklist write bumps in the same transaction."""

    def __init__(self, db: Database):
        self.db = db

    async def revision(self) -> int:
        return await self.db.run(blacklist.revision)


def build(db: Database, cache: UserCache) -> SecurityState:
    return SecurityState(SqliteLimiter(db), SqliteSessions(db, cache), SqliteSignal(db))
