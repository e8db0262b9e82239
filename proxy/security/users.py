"""Each worker's read-through cache of what a frame needs about its user: the session of the
caller's address and the profile with its prompt and provider keys. A glasses frame then costs no
trip to the database thread for them.

Freshness: a write through this process empties the cache at once (``StoreContext.user_changes``);
a write anywhere else on the host (another worker, the CLI) bumps the shared ``users`` counter,
polled every ``refresh`` seconds. A session is used only until its own expiry. A read that was
under way while the cache was emptied is not kept (it may predate the change). Misses are never
cached: a new profile or session is seen at once."""

from __future__ import annotations

import asyncio
import logging
import time

from proxy.store import changes, users
from proxy.store.database import Database
from proxy.store.users import SessionRow, UserState

log = logging.getLogger(__name__)


class UserCache:
    def __init__(self, db: Database):
        self.db = db
        self.states: dict[str, UserState] = {}
        self.sessions: dict[str, SessionRow] = {}
        self.generation = 0
        self.revision = -1
        self.local_seen = db.ctx.user_changes

    def _current(self) -> int:
        """The generation, after emptying the cache if this process wrote since last time."""
        if self.db.ctx.user_changes != self.local_seen:
            self.local_seen = self.db.ctx.user_changes
            self.forget()
        return self.generation

    def forget(self) -> None:
        self.states.clear()
        self.sessions.clear()
        self.generation += 1

    async def state(self, username: str) -> UserState | None:
        generation = self._current()
        if (cached := self.states.get(username)) is not None:
            return cached
        state = await self.db.run(users.load, username)
        if state is not None and self._current() == generation:
            self.states[username] = state
        return state

    async def session(self, address: str) -> SessionRow | None:
        generation = self._current()
        cached = self.sessions.get(address)
        if cached is not None and cached.expires_at > time.time():
            return cached
        row = await self.db.run(users.session, address)
        if row is not None and self._current() == generation:
            self.sessions[address] = row
        return row

    async def check(self) -> None:
        """Empty the cache when the shared counter moved (another process wrote)."""
        revision = await self.db.run(changes.revision)
        if revision != self.revision:
            self.revision = revision
            self.forget()

    async def refresh_forever(self, every: float) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("could not check for profile changes; emptying the cache")
                self.forget()
            await asyncio.sleep(every)
