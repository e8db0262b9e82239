"""One question to one provider, through the pool machinery (circuit breaker, safe errors)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from proxy.config.backends import BackendSpec
from proxy.upstream.errors import PoolExhausted, UpstreamError
from proxy.upstream.openai import OpenAIClient
from proxy.upstream.pool import BackendPool
from proxy.vision.answers import Reading, Unparsable, parse_reply
from proxy.vision.breakers import Breakers
from proxy.vision.providers import Provider


@dataclass
class Ledger:
    """What one request cost and what happened, in plain ASCII without secrets."""

    secrets: list[str]
    calls: int = 0
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(scrub(text, self.secrets).encode("ascii", "replace").decode("ascii"))


class Asker:
    def __init__(self, client: OpenAIClient, breakers: Breakers, max_tokens: int):
        self.client = client
        self.breakers = breakers
        self.max_tokens = max_tokens
        self.rng = random.Random()  # one for every pool: seeding a new one costs more than the rest

    async def ask(self, provider: Provider, messages: list[dict[str, Any]], limit: float,
                  ledger: Ledger) -> Reading | None:
        """The provider's reading, or ``None`` (noted in the ledger) on any failure."""

        async def op(spec: BackendSpec) -> Reading:
            ledger.calls += 1
            text = await self.client.chat(spec, messages, total=limit, max_tokens=self.max_tokens,
                                          temperature=0.2)
            try:
                return parse_reply(scrub(text, ledger.secrets))
            except Unparsable as exc:
                raise UpstreamError(f"unusable answer ({exc})", backend=spec.label) from None

        pool = BackendPool(provider.name, [provider.spec], self.breakers.of(provider.owner), self.rng)
        try:
            return await pool.run(op)
        except PoolExhausted as exc:
            ledger.note(exc.reason)
        except UpstreamError as exc:
            ledger.note(exc.describe())
        return None


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text
