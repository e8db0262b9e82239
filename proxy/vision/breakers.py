"""Circuit breakers per key owner: a user's bad key must not cool a provider down for everyone."""

from __future__ import annotations

from collections import OrderedDict

from proxy.config.image import BreakerSettings
from proxy.upstream.breaker import Breaker


class Breakers:
    def __init__(self, settings: BreakerSettings, shared: Breaker | None = None, max_owners: int = 10_000):
        self.settings = settings
        self.shared = shared or Breaker(settings)
        self.max_owners = max_owners
        self.owned: OrderedDict[str, Breaker] = OrderedDict()

    def of(self, owner: str) -> Breaker:
        """The server's breaker for ``""``, else the one for that user's own keys."""
        if not owner:
            return self.shared
        breaker = self.owned.get(owner)
        if breaker is None:
            breaker = self.owned[owner] = Breaker(self.settings)
            while len(self.owned) > self.max_owners:
                self.owned.popitem(last=False)
        self.owned.move_to_end(owner)
        return breaker
