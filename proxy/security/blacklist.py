"""The IP blacklist: single addresses and CIDR ranges, some with an expiry (auto-blocks), kept in
the SQLite file; and each process's in-memory copy, reloaded within BLACKLIST_REFRESH seconds of
any change (the CLI, the dashboard, another worker, an auto-block).

Every change bumps the ``blacklist`` counter in the same transaction: that is the change signal
(``SqliteSignal``) the copies poll. With REDIS_URL its twin (``blacklist_redis``) carries the
signal to every instance."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from proxy.config.env import Network
from proxy.db import counters
from proxy.db.connection import transaction
from proxy.db.database import Connected, Database
from proxy.errors import BadRequest
from proxy.security.address import IP, parse_ip

log = logging.getLogger(__name__)
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


def add(ctx: Connected, text: str, reason: str = "", ttl: float | None = None) -> str:
    network = normalize(text)
    now = time.time()
    with transaction(ctx.conn):
        ctx.conn.execute("INSERT OR REPLACE INTO blacklist VALUES (?, ?, ?, ?)",
                         (network, reason, now, None if ttl is None else now + ttl))
        counters.bump(ctx.conn, REVISION)
    return network


def remove(ctx: Connected, text: str) -> bool:
    with transaction(ctx.conn):
        gone = ctx.conn.execute("DELETE FROM blacklist WHERE network = ?", (normalize(text),)).rowcount
        counters.bump(ctx.conn, REVISION)
    return bool(gone)


def entries(ctx: Connected, now: float | None = None) -> list[Entry]:
    now = time.time() if now is None else now
    rows = ctx.conn.execute("SELECT * FROM blacklist WHERE expires_at IS NULL OR expires_at > ? "
                            "ORDER BY created_at", (now,))
    return [Entry(r["network"], r["reason"], r["created_at"], r["expires_at"]) for r in rows]


def purge(ctx: Connected, now: float) -> None:
    """Expired auto-blocks (retention calls this)."""
    ctx.conn.execute("DELETE FROM blacklist WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))


def revision(ctx: Connected) -> int:
    return counters.revision(ctx.conn, REVISION)


class BlacklistSignal(Protocol):
    async def revision(self) -> int:
        """A number that changes whenever the blacklist changes, from any process."""
        ...


class SqliteSignal:
    """The counter every blacklist write bumps in the same transaction."""

    def __init__(self, db: Database[Any]):
        self.db = db

    async def revision(self) -> int:
        return await self.db.run(revision)


def _live(expires: float | None, now: float) -> bool:
    return expires is None or expires > now


class BlacklistView:
    def __init__(self, db: Database[Any], signal: BlacklistSignal):
        self.db = db
        self.signal = signal
        self.revision = -1
        self.exact: dict[IP, float | None] = {}
        self.ranges: list[tuple[Network, float | None]] = []
        self.listed = False  # anything at all: an empty list costs the hot path one attribute read

    def blocked(self, address: str | None, now: float | None = None) -> bool:
        """Single addresses are a dictionary look-up; only ranges are scanned."""
        if not (self.exact or self.ranges) or not address:
            return False
        ip = parse_ip(address)
        if ip is None:
            return False
        now = time.time() if now is None else now
        if ip in self.exact and _live(self.exact[ip], now):
            return True
        return any(ip in net for net, expires in self.ranges if _live(expires, now))

    async def reload(self) -> None:
        revision = await self.signal.revision()
        found = await self.db.run(entries)
        networks = [(ipaddress.ip_network(e.network), e.expires_at) for e in found]
        self.exact = {net.network_address: exp for net, exp in networks if net.num_addresses == 1}
        self.ranges = [(net, exp) for net, exp in networks if net.num_addresses > 1]
        self.listed = bool(networks)
        self.revision = revision

    async def refresh_forever(self, every: float) -> None:
        while True:
            try:
                if await self.signal.revision() != self.revision:
                    await self.reload()
            except Exception:
                log.exception("could not reload the blacklist; keeping the last copy")
            await asyncio.sleep(every)
