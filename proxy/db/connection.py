"""Opening the database: WAL, foreign keys, a busy timeout, the file readable by its owner only."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from proxy.db.schema import SCHEMA


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode; use ``transaction`` for multi-statement writes."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.row_factory = sqlite3.Row
    _to_wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    with contextlib.suppress(PermissionError):  # another user's file: theirs to protect
        os.chmod(path, 0o600)  # also a file an older version left 0644
    # the write lock first (waiting for it is allowed), so processes creating the tables at once
    # queue up instead of one of them getting "database is locked"
    conn.executescript(f"BEGIN IMMEDIATE;\n{SCHEMA}\nCOMMIT;")
    return conn


def _to_wal(conn: sqlite3.Connection, *, tries: int = 200) -> None:
    """Switching a new database to WAL needs it to itself for a moment; SQLite does not wait for
    that (no busy handler), so a process starting beside another one tries again."""
    for attempt in range(tries):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE``: the write lock up front, so concurrent processes never deadlock."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
