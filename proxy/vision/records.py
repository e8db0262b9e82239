"""What the vision routes write in the store, in as few trips to the database thread as possible:
after answering, the frames and activity rows of every request that finished meanwhile, in one trip
per batch. (What they read about the user comes from ``proxy.accounts.users``.)"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from proxy.accounts import activity, frames
from proxy.accounts.models import AccountsContext
from proxy.db.database import Database
from proxy.lifecycle import stop_tasks

log = logging.getLogger(__name__)
MAX_BATCH = 64


@dataclass(frozen=True)
class Record:
    """An activity row, with the frame it is about when there is one to store."""

    username: str
    kind: str
    fields: dict[str, Any]
    jpeg: bytes | None = None
    meta: dict[str, Any] | None = None


class Recorder:
    """Writes records after the answers went out; ``close`` writes what is still queued."""

    def __init__(self, db: Database[AccountsContext]):
        self.db = db
        self.queue: asyncio.Queue[Record] = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    def add(self, record: Record) -> None:
        self.queue.put_nowait(record)

    async def settle(self) -> None:
        await self.queue.join()

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.settle(), 10)
        await stop_tasks([self.task])

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < MAX_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self.db.run(_write, batch)
            except Exception:
                log.exception("could not store %d vision records", len(batch))
            finally:
                for _ in batch:
                    self.queue.task_done()


def _write(ctx: AccountsContext, batch: list[Record]) -> None:
    for record in batch:
        if record.jpeg is not None:
            frames.store(ctx, record.username, record.jpeg, record.meta or {})
        activity.record(ctx, record.username, record.kind, record.fields)
