"""One question to one provider, asked through the pool machinery (a circuit breaker per key owner,
safe errors, the same health and counts for every kind of provider), with a ledger of what it cost.
How a provider answers is its kind's (``proxy.vision.kinds``)."""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from proxy.config.backends import BackendSpec
from proxy.config.image import BreakerSettings
from proxy.upstream.breaker import Breaker
from proxy.upstream.errors import PoolExhausted, UpstreamError
from proxy.upstream.pool import BackendPool
from proxy.vision.answers import Reading
from proxy.vision.kinds.base import ProviderKind, scrub
from proxy.vision.providers import Provider
from proxy.vision.questions import Question


class Breakers:
    """Circuit breakers per key owner: a user's bad key must not cool a provider down for everyone."""

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


@dataclass
class Ledger:
    """What one request cost and what happened, in plain ASCII without secrets."""

    secrets: list[str]
    calls: int = 0
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(scrub(text, self.secrets).encode("ascii", "replace").decode("ascii"))


class Asker:
    def __init__(self, kinds: Mapping[str, ProviderKind], breakers: Breakers):
        self.kinds = kinds
        self.breakers = breakers
        self.rng = random.Random()  # one for every pool: seeding a new one costs more than the rest

    async def ask(self, provider: Provider, question: Question, limit: float,
                  ledger: Ledger) -> Reading | None:
        """The provider's reading, or ``None`` (noted in the ledger) on any failure."""
        kind = self.kinds[provider.spec.kind]

        async def op(spec: BackendSpec) -> Reading:
            ledger.calls += 1
            return await kind.ask(spec, question, limit, ledger.secrets)

        pool = BackendPool(provider.name, [provider.spec], self.breakers.of(provider.owner), self.rng)
        try:
            return await pool.run(op)
        except PoolExhausted as exc:
            ledger.note(exc.reason)
        except UpstreamError as exc:
            ledger.note(exc.describe())
        return None

    async def close(self) -> None:
        for kind in self.kinds.values():
            await kind.close()
