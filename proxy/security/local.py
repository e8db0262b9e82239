"""Security state in the SQLite database under DATA_DIR: shared by all worker processes and by
the admin CLI on this host, and surviving restarts."""

from __future__ import annotations

import time

from proxy.config.vision import Rate
from proxy.security.gcra import gcra
from proxy.security.state import SecurityState
from proxy.store import blacklist
from proxy.store.connection import transaction
from proxy.store.database import Database
from proxy.store.models import StoreContext


def _tat(ctx: StoreContext, bucket: str) -> float | None:
    row = ctx.conn.execute("SELECT tat FROM rate_buckets WHERE bucket = ?", (bucket,)).fetchone()
    return row["tat"] if row else None


def _take(ctx: StoreContext, bucket: str, rate: Rate) -> float:
    """Read and update in one write transaction, so concurrent processes never both take the last token."""
    with transaction(ctx.conn):
        new_tat, wait = gcra(_tat(ctx, bucket), time.time(), rate)
        if wait == 0.0:
            ctx.conn.execute("INSERT OR REPLACE INTO rate_buckets VALUES (?, ?)", (bucket, new_tat))
    return wait


def _peek(ctx: StoreContext, bucket: str, rate: Rate) -> float:
    return gcra(_tat(ctx, bucket), time.time(), rate)[1]


def _grant(ctx: StoreContext, address: str, username: str, stamp: str, ttl: float) -> None:
    ctx.conn.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?)",
                     (address, username, stamp, time.time() + ttl))


def _lookup(ctx: StoreContext, address: str) -> tuple[str, str] | None:
    row = ctx.conn.execute("SELECT username, stamp FROM sessions WHERE address = ? AND expires_at > ?",
                           (address, time.time())).fetchone()
    return (row["username"], row["stamp"]) if row else None


class SqliteLimiter:
    def __init__(self, db: Database):
        self.db = db

    async def hit(self, bucket: str, rate: Rate) -> float:
        return await self.db.run(_take, bucket, rate)

    async def wait(self, bucket: str, rate: Rate) -> float:
        return await self.db.run(_peek, bucket, rate)


class SqliteSessions:
    def __init__(self, db: Database):
        self.db = db

    async def grant(self, address: str, username: str, stamp: str, ttl: float) -> None:
        await self.db.run(_grant, address, username, stamp, ttl)

    async def lookup(self, address: str) -> tuple[str, str] | None:
        return await self.db.run(_lookup, address)


class SqliteSignal:
    """The blacklist counter every blacklist write bumps in the same transaction."""

    def __init__(self, db: Database):
        self.db = db

    async def revision(self) -> int:
        return await self.db.run(blacklist.revision)


def build(db: Database) -> SecurityState:
    return SecurityState(SqliteLimiter(db), SqliteSessions(db), SqliteSignal(db))
