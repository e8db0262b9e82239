"""GCRA buckets in the SQLite file, shared by every worker, with a per-worker front so that a frame
does not wait for a write.

Each worker keeps, per bucket it has used, the shared TAT as last read plus the hits it admitted
since. A hit is admitted at once, and written in the background (one transaction for every bucket
with hits waiting, which also reads the TATs back, other workers' hits included), when that view
is fresh (``MAX_AGE``), shows at least ``SLACK`` tokens left after the hit, and fewer than
``MAX_PENDING`` of this worker's hits on the bucket are still unwritten. The write starts
``WRITE_DELAY`` after the first hit waiting for it: not while the frame that made the hit is still
being checked (the database thread would compete with it for the interpreter) but while it waits
for its provider, and with the hits of every user who came meanwhile. Otherwise, and always for
small limits (``RATE_LIMIT_AUTH``, ``RATE_LIMIT_PROFILE``), one write transaction decides, as
before: refusals and their ``Retry-After`` always come from the shared row.

The slack: a worker does not see the hits other workers admitted but have not yet written (at most
``MAX_PENDING`` each), nor those written since its last read; ``SLACK`` tokens of margin absorb
them, so near the limit the workers together may admit at most about ``MAX_PENDING`` frames per
worker beyond it, and in practice none. With RATE_LIMIT_PROCESS at 3600/hour a glasses user has
one frame in flight, so its bucket has at most one unwritten hit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from proxy.config.security import Rate
from proxy.db.connection import transaction
from proxy.db.database import Connected, Database
from proxy.security.limits import gcra

log = logging.getLogger(__name__)
SLACK = 8
MAX_PENDING = 2
MAX_AGE = 5.0
WRITE_DELAY = 0.02


@dataclass
class View:
    rate: Rate
    tat: float | None
    synced_at: float
    pending: list[float] = field(default_factory=list)
    writing: list[float] = field(default_factory=list)
    """Hits of this worker in a write under way."""

    def admits(self, now: float) -> bool:
        if len(self.pending) + len(self.writing) >= MAX_PENDING or now - self.synced_at >= MAX_AGE:
            return False
        tat = replay(self.tat, self.writing + self.pending, self.rate)
        new_tat, wait = gcra(tat, now, self.rate)
        left = (self.rate.period - (new_tat - now)) * self.rate.count / self.rate.period
        return wait == 0.0 and left >= SLACK


def replay(tat: float | None, stamps: list[float], rate: Rate) -> float | None:
    for stamp in stamps:
        tat = gcra(tat, stamp, rate)[0]
    return tat


def _tat(ctx: Connected, bucket: str) -> float | None:
    row = ctx.conn.execute("SELECT tat FROM rate_buckets WHERE bucket = ?", (bucket,)).fetchone()
    return row["tat"] if row else None


def _store(ctx: Connected, bucket: str, tat: float | None) -> None:
    if tat is not None:
        ctx.conn.execute("INSERT OR REPLACE INTO rate_buckets VALUES (?, ?)", (bucket, tat))


def _take(ctx: Connected, bucket: str, rate: Rate, pending: list[float]) -> tuple[float, float | None]:
    """The waiting hits, then one more if allowed, in one write transaction: ``(wait, tat)``."""
    with transaction(ctx.conn):
        tat = replay(_tat(ctx, bucket), pending, rate)
        new_tat, wait = gcra(tat, time.time(), rate)
        tat = new_tat if wait == 0.0 else tat
        _store(ctx, bucket, tat)
    return wait, tat


def _peek(ctx: Connected, bucket: str, rate: Rate, pending: list[float]) -> float:
    return gcra(replay(_tat(ctx, bucket), pending, rate), time.time(), rate)[1]


def purge(ctx: Connected, now: float) -> None:
    """Buckets full again (retention calls this)."""
    ctx.conn.execute("DELETE FROM rate_buckets WHERE tat <= ?", (now,))


def _apply(ctx: Connected, batch: dict[str, tuple[Rate, list[float]]]) -> dict[str, float | None]:
    tats = {}
    with transaction(ctx.conn):
        for bucket, (rate, stamps) in batch.items():
            tats[bucket] = replay(_tat(ctx, bucket), stamps, rate)
            _store(ctx, bucket, tats[bucket])
    return tats


class SqliteLimiter:
    def __init__(self, db: Database[Any]):
        self.db = db
        self.views: dict[str, View] = {}
        self.writer: asyncio.Task[None] | None = None

    async def hit(self, bucket: str, rate: Rate) -> float:
        now = time.time()
        view = self.views.get(bucket)
        if view is not None and view.rate == rate and view.admits(now):
            view.pending.append(now)
            self._write_soon()
            return 0.0
        taken = view.pending if view is not None else []
        if view is not None:
            view.pending = []
        try:
            wait, tat = await self.db.run(_take, bucket, rate, taken)
        except BaseException:
            if view is not None:
                view.pending[:0] = taken
            raise
        self._seen(bucket, rate, tat, now)
        return wait

    async def wait(self, bucket: str, rate: Rate) -> float:
        view = self.views.get(bucket)
        return await self.db.run(_peek, bucket, rate, list(view.pending) if view else [])

    def _seen(self, bucket: str, rate: Rate, tat: float | None, now: float) -> None:
        if rate.count <= 2 * SLACK:
            return  # small limits are always decided by the shared row
        view = self.views.setdefault(bucket, View(rate, tat, now))
        view.rate, view.tat, view.synced_at = rate, tat, now

    def _write_soon(self) -> None:
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        await asyncio.sleep(WRITE_DELAY)
        while batch := {b: (v.rate, v.pending) for b, v in self.views.items() if v.pending}:
            for bucket, (_, stamps) in batch.items():
                self.views[bucket].pending = []
                self.views[bucket].writing = stamps
            started = time.time()
            try:
                tats = await self.db.run(_apply, batch)
            except Exception:
                log.exception("could not write %d rate buckets; keeping their hits", len(batch))
                for bucket, (_, stamps) in batch.items():
                    self.views[bucket].pending[:0] = stamps
                    self.views[bucket].writing = []
                return
            for bucket in batch:
                self.views[bucket].writing = []
            for bucket, tat in tats.items():
                self._seen(bucket, batch[bucket][0], tat, started)
            self._forget_stale(time.time())

    def _forget_stale(self, now: float) -> None:
        """Views too old to admit a hit (idle users) are dropped: memory stays bounded. (Not views
        of buckets that are merely full again: under a high limit, one hit's bucket is full again
        before its write ends, and the next hit would then wait for a write transaction.)"""
        for bucket in [b for b, v in self.views.items()
                       if not v.pending and not v.writing and now - v.synced_at >= MAX_AGE]:
            del self.views[bucket]

    async def settle(self) -> None:
        """Writes the hits still waiting (at shutdown)."""
        while self.writer is not None and not self.writer.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self.writer)
