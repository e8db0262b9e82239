"""One question to one provider: what the cascade asks (a question about an image, and the JSON
shape the answer must take), asked through the pool machinery (a circuit breaker per key owner,
safe errors), with a ledger of what it cost."""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from proxy.config.backends import BackendSpec
from proxy.config.image import BreakerSettings
from proxy.upstream.breaker import Breaker
from proxy.upstream.errors import PoolExhausted, UpstreamError
from proxy.upstream.openai import OpenAIClient
from proxy.upstream.pool import BackendPool
from proxy.vision.answers import Reading, Unparsable, parse_reply
from proxy.vision.providers import Provider

ANSWER_FORMAT = (
    'Reply with JSON only, exactly {"answer": "<your answer>", "confidence": <a number from 0 to 1>}. '
    "The confidence is how sure you are that the answer is correct and complete; "
    "be honest, a lower number lets a stronger model help."
)
CLASSIFY_QUESTION = "Classify the main subject of this image."
CLASSIFY_FORMAT = (
    'Reply with JSON only, exactly {"answer": "<the most likely label>", "confidence": <0 to 1>, '
    '"predictions": [{"label": "<label>", "confidence": <0 to 1>}, ...]} with up to 5 predictions, '
    "most likely first, labels of one to three words in Title Case."
)


class Unusable(UpstreamError):
    """The provider answered, but with no answer in it: escalate, but the provider is up (its
    reply does not cool it down, so the next call, or a probe, can succeed)."""

    backend_fault = False


@dataclass(frozen=True)
class Task:
    question: str
    reply_format: str = ANSWER_FORMAT

    def messages(self, data_url: str, text: str | None = None, intro: str = "") -> list[dict[str, Any]]:
        return [
            {"role": "system", "content": f"{intro}{self.reply_format}"},
            {"role": "user", "content": [
                {"type": "text", "text": text if text is not None else self.question},
                {"type": "image_url", "image_url": {"url": data_url}},
            ]},
        ]


def classification() -> Task:
    return Task(CLASSIFY_QUESTION, CLASSIFY_FORMAT)


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
                raise Unusable(f"unusable answer ({exc})", backend=spec.label) from None

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
