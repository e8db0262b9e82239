"""The persisted IP blacklist: single addresses and CIDR ranges, some with an expiry (auto-blocks).

Each change bumps the ``blacklist`` counter, which running servers poll to reload the list."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from proxy.errors import BadRequest
from proxy.store.connection import transaction
from proxy.store.models import StoreContext

REVISION = "blacklist"


@dataclass(frozen=True)
class Entry:
    network: str
    reason: str
    created_at: float
    expires_at: float | None


def normalize(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise BadRequest(f"{text!r} is not an IP address or CIDR range", code="invalid_network") from None


def add(ctx: StoreContext, text: str, reason: str = "", ttl: float | None = None) -> str:
    network = normalize(text)
    now = time.time()
    with transaction(ctx.conn):
        ctx.conn.execute("INSERT OR REPLACE INTO blacklist VALUES (?, ?, ?, ?)",
                         (network, reason, now, None if ttl is None else now + ttl))
        bump(ctx)
    return network


def remove(ctx: StoreContext, text: str) -> bool:
    with transaction(ctx.conn):
        gone = ctx.conn.execute("DELETE FROM blacklist WHERE network = ?", (normalize(text),)).rowcount
        bump(ctx)
    return bool(gone)


def entries(ctx: StoreContext, now: float | None = None) -> list[Entry]:
    now = time.time() if now is None else now
    rows = ctx.conn.execute("SELECT * FROM blacklist WHERE expires_at IS NULL OR expires_at > ? "
                            "ORDER BY created_at", (now,))
    return [Entry(r["network"], r["reason"], r["created_at"], r["expires_at"]) for r in rows]


def bump(ctx: StoreContext) -> None:
    ctx.conn.execute("INSERT INTO counters VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1",
                     (REVISION,))


def revision(ctx: StoreContext) -> int:
    row = ctx.conn.execute("SELECT value FROM counters WHERE name = ?", (REVISION,)).fetchone()
    return row["value"] if row else 0
