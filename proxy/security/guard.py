"""Rate limits, failed-login accounting and auto-blocking, over the limiter and the blacklist.

A loopback address and a trusted proxy (TRUSTED_PROXIES) are never blocked automatically: many
clients may stand behind them (a reverse proxy on the host that TRUSTED_PROXIES does not name,
the operator's own tools), and one guesser would lock every one of them out. Their wrong keys
still take from the address's auth bucket (RATE_LIMIT_AUTH)."""

from __future__ import annotations

import logging
import time
from typing import Any

from proxy.config.security import Rate, SecuritySettings
from proxy.db.database import Database
from proxy.errors import RateLimited
from proxy.security import blacklist
from proxy.security.address import parse_ip
from proxy.security.blacklist import BlacklistSignal, BlacklistView
from proxy.security.limits import RateLimiter
from proxy.security.peers import PeerWatch

log = logging.getLogger(__name__)


class Guard:
    def __init__(self, settings: SecuritySettings, db: Database[Any], limiter: RateLimiter,
                 signal: BlacklistSignal):
        self.settings = settings
        self.db = db
        self.limiter = limiter
        self.blacklist = BlacklistView(db, signal)
        self.trusted_proxies = settings.trusted_proxies
        self.peers = PeerWatch(enabled=not settings.trusted_proxies)
        self.suspects: dict[str, float] = {}  # address -> when it last sent a wrong key (this process)

    def suspect(self, address: str) -> bool:
        """Did this address send a wrong key lately? Only then is a key check worth a limiter trip."""
        since = self.suspects.get(address)
        return since is not None and time.monotonic() - since < self.settings.rate_auth.period

    async def limit(self, bucket: str, rate: Rate, what: str) -> None:
        wait = await self.limiter.hit(bucket, rate)
        if wait > 0:
            raise RateLimited(f"too many {what}: at most {rate.count} per {rate.period:g} s",
                              retry_after=wait)

    async def auth_attempt(self, address: str) -> None:
        """Every /auth-* attempt of an address takes from one bucket, whatever the path."""
        await self.limit(f"auth:{address}", self.settings.rate_auth, "authentication attempts")

    async def key_check_allowed(self, address: str) -> None:
        """Before checking a key sent on another route: refused while the address's auth bucket is empty."""
        wait = await self.limiter.wait(f"auth:{address}", self.settings.rate_auth)
        if wait > 0:
            raise RateLimited("too many failed authentication attempts", retry_after=wait)

    async def key_failed(self, address: str, *, counted: bool) -> None:
        """A wrong key: take from the auth bucket (unless already taken), maybe block the address."""
        if len(self.suspects) > 10_000:
            self.suspects.clear()
        self.suspects[address] = time.monotonic()
        if not counted:
            await self.limiter.hit(f"auth:{address}", self.settings.rate_auth)
        failures = self.settings.autoblock_failures
        if not failures or self.never_blocked(address):
            return
        window = Rate(failures, self.settings.autoblock_window)
        if await self.limiter.hit(f"authfail:{address}", window) > 0:
            await self.block(address, "auto: repeated failed logins", self.settings.autoblock_seconds)
            log.warning("blocked %s for %g s after %d failed logins", address,
                        self.settings.autoblock_seconds, failures)

    def never_blocked(self, address: str) -> bool:
        """A loopback address or a trusted proxy: not blocked automatically, whatever it sends."""
        ip = parse_ip(address)
        return ip is not None and (ip.is_loopback or any(ip in net for net in self.trusted_proxies))

    async def block(self, network: str, reason: str, ttl: float | None = None) -> str:
        """Add to the blacklist; this process applies it at once, the others within BLACKLIST_REFRESH."""
        added = await self.db.run(blacklist.add, network, reason, ttl)
        await self.blacklist.reload()
        return added

    async def unblock(self, network: str) -> bool:
        removed = await self.db.run(blacklist.remove, network)
        await self.blacklist.reload()
        return removed

    async def profile_update(self, username: str) -> None:
        await self.limit(f"profile:{username}", self.settings.rate_profile, "profile and prompt updates")

    async def process(self, username: str) -> None:
        await self.limit(f"process:{username}", self.settings.rate_process, "frames")
