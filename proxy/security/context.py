"""Opens the security state chosen by SECURITY_STATE, the guard, the user cache, and the
refreshers of the blacklist and of the user cache."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.keys import DATABASE, GUARD, SETTINGS
from proxy.lifecycle import stop_tasks
from proxy.security.buckets import SqliteLimiter
from proxy.security.guard import Guard
from proxy.security.state import build_state
from proxy.security.users import UserCache
from proxy.shared.security import shared_security


async def security_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS].security
    db = app[DATABASE]
    users = UserCache(db)
    local = build_state(db, users)
    state = shared_security(app, local)  # REDIS_URL: shared
    guard = Guard(settings, db, state, users)
    await guard.blacklist.reload()
    await users.check()
    app[GUARD] = guard
    refreshers = [asyncio.create_task(guard.blacklist.refresh_forever(settings.blacklist_refresh)),
                  asyncio.create_task(users.refresh_forever(app[SETTINGS].accounts.profile_refresh))]
    yield
    await stop_tasks(refreshers)
    if isinstance(local.limiter, SqliteLimiter):
        await local.limiter.settle()  # hits admitted but not yet written
