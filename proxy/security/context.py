"""Opens the security state chosen by SECURITY_STATE, the guard, and the blacklist refresher."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.keys import DATABASE, GUARD, SETTINGS
from proxy.security.guard import Guard
from proxy.security.state import build_state
from proxy.shared.security import shared_security


async def security_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS].vision
    db = app[DATABASE]
    guard = Guard(settings, db, shared_security(app, build_state(settings, db)))  # REDIS_URL: shared
    await guard.blacklist.reload()
    app[GUARD] = guard
    refresher = asyncio.create_task(guard.blacklist.refresh_forever(settings.blacklist_refresh))
    yield
    refresher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await refresher
