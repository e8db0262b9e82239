"""What a request needs to know about its user, each read in one trip to the database thread:
the session of an address (with its expiry, so a cache can honour it) and the profile with its
prompt and provider keys. Writes bump the ``users`` change counter (``proxy.store.changes``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from proxy.store import changes, profiles
from proxy.store.connection import transaction
from proxy.store.models import Profile, StoreContext


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


def load(ctx: StoreContext, username: str) -> UserState | None:
    profile = profiles.by_name(ctx, username)
    if profile is None:
        return None
    return UserState(profile, profiles.prompt(ctx, username), profiles.provider_keys(ctx, username))


def session(ctx: StoreContext, address: str) -> SessionRow | None:
    row = ctx.conn.execute("SELECT username, stamp, expires_at FROM sessions WHERE address = ? "
                           "AND expires_at > ?", (address, time.time())).fetchone()
    return SessionRow(row["username"], row["stamp"], row["expires_at"]) if row else None


def grant(ctx: StoreContext, address: str, username: str, stamp: str, ttl: float) -> None:
    with transaction(ctx.conn):
        ctx.conn.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?)",
                         (address, username, stamp, time.time() + ttl))
        changes.bump(ctx)
