"""Named counters that a write bumps in its own transaction, so that every process on the host
notices a change by polling one row (the blacklist, the users' state)."""

from __future__ import annotations

import sqlite3


def bump(conn: sqlite3.Connection, name: str) -> None:
    """Call inside the writing transaction."""
    conn.execute("INSERT INTO counters VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1",
                 (name,))


def revision(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
    return row["value"] if row else 0
