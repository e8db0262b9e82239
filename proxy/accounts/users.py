"""What a request needs to know about its user, and each worker's cache of it.

Read in one trip to the database thread each: the session of an address (with its expiry, so the
cache can honour it) and the profile with its prompt and provider keys. Writes bump the ``users``
change counter (``proxy.accounts.changes``).

``UserCache``, per worker, keeps both, so a glasses frame costs no trip to the database thread for
them. Freshness: a write through this process empties the cache at once
(``AccountsContext.user_changes``); a write anywhere else on the host (another worker, the CLI)
bumps the shared counter, polled every PROFILE_REFRESH seconds. A session is used only until its
own expiry. A read that was under way while the cache was emptied is not kept (it may predate the
change). Misses are never cached: a new profile or session is seen at once."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from proxy.accounts import changes, profiles
from proxy.accounts.models import AccountsContext, Profile
from proxy.db.connection import transaction
from proxy.db.database import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UserState:
    profile: Profile
    prompt: str | None
    keys: dict[str, str] = field(repr=False)
    """The profile's own provider keys, decrypted."""


@dataclass(frozen=True)
class SessionRow:
    username: str
    stamp: str
    expires_at: float


def load(ctx: AccountsContext, username: str) -> UserState | None:
    profile = profiles.by_name(ctx, username)
    if profile is None:
        return None
    return UserState(profile, profiles.prompt(ctx, username), profiles.provider_keys(ctx, username))


def session(ctx: AccountsContext, address: str) -> SessionRow | None:
    row = ctx.conn.execute("SELECT username, stamp, expires_at FROM sessions WHERE address = ? "
                           "AND expires_at > ?", (address, time.time())).fetchone()
    return SessionRow(row["username"], row["stamp"], row["expires_at"]) if row else None


def grant(ctx: AccountsContext, address: str, username: str, stamp: str, ttl: float) -> None:
    with transaction(ctx.conn):
        ctx.conn.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?)",
                         (address, username, stamp, time.time() + ttl))
        changes.bump(ctx)


class UserCache:
    def __init__(self, db: Database[AccountsContext]):
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
        state = await self.db.run(load, username)
        if state is not None and self._current() == generation:
            self.states[username] = state
        return state

    async def session(self, address: str) -> SessionRow | None:
        generation = self._current()
        cached = self.sessions.get(address)
        if cached is not None and cached.expires_at > time.time():
            return cached
        row = await self.db.run(session, address)
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
