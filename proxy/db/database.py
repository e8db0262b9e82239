"""The database's async face: one dedicated thread owns the connection and runs every call, so
the event loop never waits on SQLite. ``run(fn, *args)`` calls ``fn(ctx, *args)`` there, where
``ctx`` carries the connection (and whatever else its opener put beside it)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


class Connected(Protocol):
    """What every function run on the database thread gets: at least the connection."""

    conn: sqlite3.Connection


C = TypeVar("C", bound=Connected)


class Database(Generic[C]):
    def __init__(self, ctx: C):
        self.ctx = ctx
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iris-db")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(ctx, *args)`` on the database thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.thread, fn, self.ctx, *args)

    async def close(self) -> None:
        await self.run(lambda ctx: ctx.conn.close())
        self.thread.shutdown(wait=True)
