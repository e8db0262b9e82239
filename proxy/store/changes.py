"""The ``users`` change counter: every write to a profile, its keys, its prompt or a session bumps
it in the same transaction, so each worker's cache of user state (``proxy.security.users``) can
notice a change made anywhere on the host (another worker, the CLI) by polling one row."""

from __future__ import annotations

from proxy.store.models import StoreContext

REVISION = "users"


def bump(ctx: StoreContext) -> None:
    """Call inside the writing transaction; also tells this process's cache at once."""
    ctx.conn.execute("INSERT INTO counters VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1",
                     (REVISION,))
    ctx.user_changes += 1


def revision(ctx: StoreContext) -> int:
    row = ctx.conn.execute("SELECT value FROM counters WHERE name = ?", (REVISION,)).fetchone()
    return row["value"] if row else 0
