"""Opens the database at start-up (tables created) and runs retention in the background."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.keys import DATABASE, SETTINGS
from proxy.lifecycle import stop_tasks
from proxy.store.database import Database

log = logging.getLogger(__name__)


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    db = await Database.open(app[SETTINGS])
    app[DATABASE] = db
    sweeper = asyncio.create_task(sweep_forever(db, app[SETTINGS].accounts.retention_interval))
    yield
    await stop_tasks([sweeper])
    await db.close()


async def sweep_forever(db: Database, every: float) -> None:
    while True:
        try:
            swept = await db.sweep()
            if swept.frames or swept.activity:
                log.info("retention: removed %d frames and %d activity rows (%d bytes)",
                         swept.frames, swept.activity, swept.bytes)
        except Exception:
            log.exception("retention sweep failed; trying again later")
        await asyncio.sleep(every)
