"""Accounts as the routes see them: the profiles' database opened (and checked against the master
secret), each worker's user cache, the sessions, and async calls that each run on the database
thread. The command line uses the same functions synchronously through ``open_context``."""

from __future__ import annotations

import asyncio
import hmac
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from proxy.accounts import activity, frames, profiles, retention
from proxy.accounts.keyring import Keyring, master_secret
from proxy.accounts.models import AccountsContext, Profile
from proxy.accounts.sessions import SessionStore
from proxy.accounts.users import UserCache
from proxy.config import Settings
from proxy.db.connection import connect
from proxy.db.database import Database
from proxy.errors import ConfigError

T = TypeVar("T")
log = logging.getLogger(__name__)


class NoAccountsData(Exception):
    """The admin commands were pointed at a place where no server ever kept its data."""


def open_context(settings: Settings, *, create: bool = True) -> AccountsContext:
    """Connects, creates the tables, and refuses a master secret other than the database's.
    ``create=False`` (the admin commands) refuses to start a new database or master secret."""
    accounts = settings.accounts
    if not create and not accounts.database.exists():
        raise NoAccountsData(f"there is no Iris data here ({accounts.database} does not exist): run the "
                             "command with the DATA_DIR (or PROFILE_DB) of the server, or start the "
                             "server there first")
    keyring = Keyring.from_master(master_secret(accounts.secret_key, settings.server.data_dir, create=create))
    try:
        conn = connect(accounts.database)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError):
            raise
        raise ConfigError("PROFILE_DB", f"{accounts.database} is damaged ({exc}); unlike the image cache "
                          "it holds profiles and keys, so Iris does not replace it",
                          "restore it from a backup, or move it aside to start with no profiles") from None
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('keyring', ?)", (keyring.fingerprint(),))
    stored = conn.execute("SELECT value FROM meta WHERE name = 'keyring'").fetchone()["value"]
    if not hmac.compare_digest(stored, keyring.fingerprint()):
        conn.close()
        raise ConfigError("PROXY_SECRET_KEY", f"{accounts.database} was created under another master secret "
                          "(its auth and provider keys cannot be read with this one)",
                          "set the PROXY_SECRET_KEY the server uses (or keep DATA_DIR/secrets/master-key)")
    return AccountsContext(conn, keyring, accounts)


async def open_database(settings: Settings) -> Database[AccountsContext]:
    return Database(await asyncio.to_thread(open_context, settings))


class Accounts:
    def __init__(self, db: Database[AccountsContext], users: UserCache, sessions: SessionStore):
        self.db = db
        self.users = users
        self.sessions = sessions

    @property
    def ctx(self) -> AccountsContext:
        return self.db.ctx

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(ctx, *args)`` on the database thread."""
        return await self.db.run(fn, *args)

    async def profile_by_key(self, key: str) -> Profile | None:
        return await self.run(profiles.by_key, key)

    async def profile(self, username: str) -> Profile | None:
        return await self.run(profiles.by_name, username)

    async def provider_keys(self, username: str) -> dict[str, str]:
        return await self.run(profiles.provider_keys, username)

    async def set_provider_keys(self, username: str, keys: dict[str, str | None]) -> None:
        await self.run(profiles.set_provider_keys, username, keys)

    async def prompt(self, username: str) -> str | None:
        return await self.run(profiles.prompt, username)

    async def set_prompt(self, username: str, text: str | None) -> None:
        await self.run(profiles.set_prompt, username, text)

    async def record_activity(self, username: str, kind: str, **fields: Any) -> None:
        await self.run(activity.record, username, kind, fields)

    async def store_frame(self, username: str, jpeg_bytes: bytes, meta: dict[str, Any]) -> Path | None:
        """The stored file, or None when STORE_FRAMES is off or the profile is gone. The file is
        written off the database thread so other requests' queries do not wait for the disk."""
        if not self.ctx.settings.store_frames:
            return None
        now = time.time()
        path = await asyncio.to_thread(frames.write_file, self.ctx.frames_dir, username, jpeg_bytes, now)
        stored = await self.run(frames.insert, username, path, len(jpeg_bytes), meta, now)
        return path if stored else None

    async def sweep(self) -> retention.Swept:
        """Rows on the database thread, then the files off it."""
        swept = await self.run(retention.collect)
        await asyncio.to_thread(frames.remove_files, self.ctx.frames_dir, swept.paths)
        return swept

    async def sweep_forever(self, every: float) -> None:
        while True:
            try:
                swept = await self.sweep()
                if swept.frames or swept.activity:
                    log.info("retention: removed %d frames and %d activity rows (%d bytes)",
                             swept.frames, swept.activity, swept.bytes)
            except Exception:
                log.exception("retention sweep failed; trying again later")
            await asyncio.sleep(every)
