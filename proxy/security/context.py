"""Opens the security state chosen by SECURITY_STATE, the guard, and the blacklist refresher."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.keys import DATABASE, GUARD, SETTINGS
from proxy.security.guard import Guard
from proxy.security.state import build_state


async def security_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS].vision
    db = app[DATABASE]
    guard = Guard(settings, db, build_state(settings, db))
    await guard.blacklist.reload()
    app[GUARD] = guard
    refresher = asyncio.create_task(guard.blacklist.refresh_forever(settings.blacklist_refresh))
    yield
    refresher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await refresher
