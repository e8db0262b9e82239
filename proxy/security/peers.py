"""Which peers the requests come from, to notice a reverse proxy that TRUSTED_PROXIES does not name.

Behind such a proxy every client has the proxy's address: one glasses session, one rate bucket and
one blacklist entry for everyone. So, while TRUSTED_PROXIES is empty, each worker counts the peers
of the requests that take the full way (the image fast lane's hits are not counted; their peers
are the same; nor are probes and metric scrapes, which come from the operator's own machines
whatever stands in front), and when most of them come from one loopback or private address it
says so: once in the log, as soon as ``LEAST`` requests have been seen, and on the dashboard for
as long as it holds. Old counts are halved every ``WINDOW`` requests, so the picture follows the
traffic."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from proxy.security.address import parse_ip

log = logging.getLogger(__name__)
LEAST = 100
"""Requests seen before anything is said."""
SHARE = 0.5
"""More than this share of the requests from one peer is "most"."""
WINDOW = 10_000
MAX_PEERS = 1_000
UNCOUNTED = frozenset({"healthz", "readyz", "metrics"})
"""Routes (by name) whose peers say nothing about a proxy in front: probes and scrapes."""


@dataclass(frozen=True)
class LonePeer:
    address: str
    requests: int
    total: int

    @property
    def share(self) -> float:
        return self.requests / self.total

    def message(self) -> str:
        return (f"{self.share:.0%} of recent requests came from {self.address}, a loopback or private "
                "address, and TRUSTED_PROXIES is empty: if Iris is behind a reverse proxy, every client "
                "looks like that address (one glasses session, one rate limit and one blacklist entry "
                "for all of them). Set TRUSTED_PROXIES to the proxy's address.")


def loopback_or_private(address: str) -> bool:
    ip = parse_ip(address)
    return ip is not None and (ip.is_loopback or ip.is_private)


class PeerWatch:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        """False when TRUSTED_PROXIES is set: then nothing is counted."""
        self.counts: Counter[str] = Counter()
        self.total = 0
        self.seen = 0
        self.warned = False

    def saw(self, peer: str | None, route: str | None = None) -> None:
        if not self.enabled or not peer or route in UNCOUNTED:
            return
        self.counts[peer] += 1
        self.total += 1
        self.seen += 1
        if self.seen == LEAST:
            self._warn()
        if self.total >= WINDOW or len(self.counts) > MAX_PEERS:
            self._age()

    def lone_peer(self) -> LonePeer | None:
        """The loopback or private peer most requests came from, if there is one (and enough requests)."""
        if not self.enabled or self.seen < LEAST or not self.counts:
            return None
        address, requests = self.counts.most_common(1)[0]
        if requests <= SHARE * self.total or not loopback_or_private(address):
            return None
        return LonePeer(address, requests, self.total)

    def _warn(self) -> None:
        found = self.lone_peer()
        if found is not None and not self.warned:
            self.warned = True
            log.warning("%s", found.message())

    def _age(self) -> None:
        """Halves every count, keeping the busiest peers only; the others stay in the total."""
        top = self.counts.most_common(MAX_PEERS // 10)
        self.counts = Counter({peer: count // 2 for peer, count in top if count >= 2})
        self.total //= 2
