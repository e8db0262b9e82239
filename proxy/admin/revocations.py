"""Dashboard sessions ended by a logout: their ids, kept until the cookie would have expired anyway.

The cookie itself needs no server state (``proxy.admin.cookie``); only its revocation does, and
every worker must see it: the ids are kept in the SQLite file under DATA_DIR, which every worker
on the host shares. With REDIS_URL, ``revocations_redis`` shares them with every instance."""

from __future__ import annotations

import time
from typing import Any, Protocol

from proxy.db.connection import transaction
from proxy.db.database import Connected, Database


class Revocations(Protocol):
    async def revoke(self, sid: str, ttl: float) -> None:
        """The session ``sid`` is refused from now on, for ``ttl`` seconds (its cookie's lifetime)."""
        ...

    async def revoked(self, sid: str) -> bool: ...


def revoke(ctx: Connected, sid: str, ttl: float, now: float) -> None:
    with transaction(ctx.conn):
        ctx.conn.execute("DELETE FROM admin_revocations WHERE expires_at <= ?", (now,))
        ctx.conn.execute("INSERT OR REPLACE INTO admin_revocations VALUES (?, ?)", (sid, now + ttl))


def revoked(ctx: Connected, sid: str, now: float) -> bool:
    row = ctx.conn.execute("SELECT 1 FROM admin_revocations WHERE sid = ? AND expires_at > ?",
                           (sid, now)).fetchone()
    return row is not None


class SqliteRevocations:
    """In the SQLite file: every worker on the host sees a logout at once."""

    def __init__(self, db: Database[Any]):
        self.db = db

    async def revoke(self, sid: str, ttl: float) -> None:
        await self.db.run(revoke, sid, ttl, time.time())

    async def revoked(self, sid: str) -> bool:
        return await self.db.run(revoked, sid, time.time())
