"""The async face of the store: every call runs on one dedicated thread owning the connection,
so the event loop never waits on SQLite or on frame files. The CLI uses the same functions
synchronously through ``open_context``."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from proxy.config import Settings
from proxy.errors import ConfigError
from proxy.security.keyring import Keyring, master_secret
from proxy.store import activity, blacklist, frames, profiles, retention
from proxy.store.blacklist import Entry
from proxy.store.connection import connect
from proxy.store.models import Profile, StoreContext

T = TypeVar("T")


def open_context(settings: Settings) -> StoreContext:
    """Connects, creates the tables, and refuses a master secret other than the database's."""
    accounts = settings.accounts
    keyring = Keyring.from_master(master_secret(accounts.secret_key, settings.server.data_dir))
    conn = connect(accounts.database)
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('keyring', ?)", (keyring.fingerprint(),))
    stored = conn.execute("SELECT value FROM meta WHERE name = 'keyring'").fetchone()["value"]
    if not hmac.compare_digest(stored, keyring.fingerprint()):
        conn.close()
        raise ConfigError("PROXY_SECRET_KEY", f"{accounts.database} was created under another master secret "
                          "(its auth and provider keys cannot be read with this one)",
                          "set the PROXY_SECRET_KEY the server uses (or keep DATA_DIR/secrets/master-key)")
    return StoreContext(conn, keyring, accounts)


class Database:
    def __init__(self, ctx: StoreContext):
        self.ctx = ctx
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iris-db")

    @classmethod
    async def open(cls, settings: Settings) -> Database:
        return cls(await asyncio.to_thread(open_context, settings))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(ctx, *args)`` on the database thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.thread, fn, self.ctx, *args)

    async def close(self) -> None:
        await self.run(lambda ctx: ctx.conn.close())
        self.thread.shutdown(wait=True)

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

    async def blacklist(self) -> list[Entry]:
        return await self.run(blacklist.entries)

    async def block(self, network: str, reason: str, ttl: float | None = None) -> str:
        return await self.run(blacklist.add, network, reason, ttl)

    async def blacklist_revision(self) -> int:
        return await self.run(blacklist.revision)

    async def sweep(self) -> retention.Swept:
        """Rows on the database thread, then the files off it."""
        swept = await self.run(retention.collect)
        await asyncio.to_thread(frames.remove_files, self.ctx.frames_dir, swept.paths)
        return swept
