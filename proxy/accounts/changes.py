"""The ``users`` change counter: every write to a profile, its keys, its prompt or a session bumps
it in the same transaction, so each worker's cache of user state (``proxy.accounts.users``) can
notice a change made anywhere on the host (another worker, the CLI) by polling one row."""

from __future__ import annotations

from proxy.accounts.models import AccountsContext
from proxy.db import counters

REVISION = "users"


def bump(ctx: AccountsContext) -> None:
    """Call inside the writing transaction; also tells this process's cache at once."""
    counters.bump(ctx.conn, REVISION)
    ctx.user_changes += 1


def revision(ctx: AccountsContext) -> int:
    return counters.revision(ctx.conn, REVISION)
