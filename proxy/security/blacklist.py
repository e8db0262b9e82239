"""The blacklist as each server process sees it: an in-memory copy, reloaded within
BLACKLIST_REFRESH seconds of any change (the CLI, another worker, an auto-block)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time

from proxy.config.env import Network
from proxy.security.state import BlacklistSignal
from proxy.store.database import Database

log = logging.getLogger(__name__)
IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def _live(expires: float | None, now: float) -> bool:
    return expires is None or expires > now


class BlacklistView:
    def __init__(self, db: Database, signal: BlacklistSignal):
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
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        now = time.time() if now is None else now
        if ip in self.exact and _live(self.exact[ip], now):
            return True
        return any(ip in net for net, expires in self.ranges if _live(expires, now))

    async def reload(self) -> None:
        revision = await self.signal.revision()
        entries = await self.db.blacklist()
        networks = [(ipaddress.ip_network(e.network), e.expires_at) for e in entries]
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
