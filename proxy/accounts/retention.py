"""Retention: frames and activity older than RETENTION_DAYS go, then each profile is trimmed to
PROFILE_QUOTA_BYTES (stored frame files plus activity rows), oldest first. Expired sessions,
rate buckets, auto-blocks and spend older than its history are purged on the way."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from proxy.accounts import frames
from proxy.accounts.models import AccountsContext
from proxy.db.connection import transaction
from proxy.security import blacklist, limits_sqlite, spend

ROW_OVERHEAD = 64
"""Bytes counted for an activity row beyond its JSON data."""


@dataclass
class Swept:
    frames: int = 0
    activity: int = 0
    bytes: int = 0
    paths: list[str] = field(default_factory=list, repr=False)
    """Frame files (relative to the frames directory) whose rows are gone: delete them next."""


def sweep(ctx: AccountsContext, now: float | None = None) -> Swept:
    """``collect`` and delete the files, all on the calling thread."""
    swept = collect(ctx, now)
    frames.remove_files(ctx.frames_dir, swept.paths)
    return swept


def collect(ctx: AccountsContext, now: float | None = None) -> Swept:
    """Delete the rows past retention or quota; the files to delete are in ``paths``."""
    now = time.time() if now is None else now
    cutoff = now - ctx.settings.retention_days * 86400
    swept = Swept()
    _drop_frames(ctx, "at < ?", (cutoff,), swept)
    with transaction(ctx.conn):
        swept.activity += ctx.conn.execute("DELETE FROM activity WHERE at < ?", (cutoff,)).rowcount
        ctx.conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
        limits_sqlite.purge(ctx, now)
        blacklist.purge(ctx, now)
        spend.purge(ctx, now)
    for username in [row[0] for row in ctx.conn.execute("SELECT username FROM profiles")]:
        _trim(ctx, username, ctx.settings.profile_quota_bytes, swept)
    return swept


def usage(ctx: AccountsContext, username: str) -> int:
    row = ctx.conn.execute(
        "SELECT (SELECT COALESCE(SUM(bytes), 0) FROM frames WHERE username = ?) + "
        "(SELECT COALESCE(SUM(LENGTH(data) + ?), 0) FROM activity WHERE username = ?)",
        (username, ROW_OVERHEAD, username)).fetchone()
    return int(row[0])


def _trim(ctx: AccountsContext, username: str, quota: int, swept: Swept) -> None:
    excess = usage(ctx, username) - quota
    if excess <= 0:
        return
    rows = ctx.conn.execute("SELECT id, bytes size FROM frames WHERE username = ? ORDER BY at, id",
                            (username,)).fetchall()
    ids, freed = _oldest(rows, excess)
    if ids:
        _drop_frames(ctx, f"id IN ({','.join('?' * len(ids))})", tuple(ids), swept)
    if freed < excess:
        _trim_activity(ctx, username, excess - freed, swept)


def _trim_activity(ctx: AccountsContext, username: str, excess: int, swept: Swept) -> None:
    rows = ctx.conn.execute("SELECT id, LENGTH(data) + ? size FROM activity WHERE username = ? "
                            "ORDER BY at, id", (ROW_OVERHEAD, username)).fetchall()
    ids, freed = _oldest(rows, excess)
    with transaction(ctx.conn):
        ctx.conn.executemany("DELETE FROM activity WHERE id = ?", [(i,) for i in ids])
    swept.activity += len(ids)
    swept.bytes += freed


def _oldest(rows: Iterable[sqlite3.Row], excess: int) -> tuple[list[int], int]:
    """The ids of the oldest rows whose sizes add up to at least ``excess``."""
    ids, freed = [], 0
    for row in rows:
        if freed >= excess:
            break
        ids.append(row["id"])
        freed += row["size"]
    return ids, freed


def _drop_frames(ctx: AccountsContext, where: str, params: tuple[object, ...], swept: Swept) -> None:
    rows = ctx.conn.execute(f"SELECT id, path, bytes FROM frames WHERE {where}", params).fetchall()
    if not rows:
        return
    with transaction(ctx.conn):
        ctx.conn.executemany("DELETE FROM frames WHERE id = ?", [(row["id"],) for row in rows])
    swept.frames += len(rows)
    swept.bytes += sum(row["bytes"] for row in rows)
    swept.paths.extend(row["path"] for row in rows)
