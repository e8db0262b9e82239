"""The weighted backend pool. It knows nothing of images: it orders backends by weighted random
choice without repetition, skips those cooling down, and fails over until one answers.

Image generation, prompt LLM calls and the vision cascade all run through ``BackendPool.run``."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from proxy.config.backends import BackendSpec
from proxy.upstream.breaker import Breaker
from proxy.upstream.errors import PoolExhausted, PoolRefused, Refusal, UpstreamError

T = TypeVar("T")


def weighted_order(specs: Sequence[BackendSpec], rng: random.Random) -> list[BackendSpec]:
    """Weighted sampling without replacement (Efraimidis-Spirakis): each position is drawn with
    probability proportional to weight among those not yet drawn. Weight 0 is never drawn."""
    keyed = [(rng.random() ** (1.0 / s.weight), s) for s in specs if s.weight > 0]
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [spec for _, spec in keyed]


class BackendPool:
    def __init__(self, name: str, specs: Sequence[BackendSpec], breaker: Breaker,
                 rng: random.Random | None = None):
        self.name = name
        self.specs = tuple(specs)
        self.breaker = breaker
        self.rng = rng or random.Random()

    def __bool__(self) -> bool:
        return any(s.weight > 0 for s in self.specs)

    async def run(self, op: Callable[[BackendSpec], Awaitable[T]], *,
                  max_refusals: int | None = None) -> T:
        """Call ``op`` on backends in weighted order until one succeeds.

        Raises ``PoolRefused`` after ``max_refusals`` content refusals, else ``PoolExhausted``."""
        errors: list[UpstreamError] = []
        refusals = 0
        for spec in weighted_order(self.specs, self.rng):
            if not self.breaker.allow(spec.url):
                errors.append(UpstreamError("cooling down", backend=spec.label))
                continue
            started = time.monotonic()
            try:
                result = await op(spec)
            except Refusal as exc:
                exc.backend = exc.backend or spec.label
                self.breaker.refused(spec.url)
                errors.append(exc)
                refusals += 1
                if max_refusals is not None and refusals >= max_refusals:
                    raise PoolRefused(self.name, errors) from None
            except UpstreamError as exc:
                exc.backend = exc.backend or spec.label
                self.breaker.failure(spec.url, exc.reason)
                errors.append(exc)
            else:
                self.breaker.success(spec.url, time.monotonic() - started)
                return result
        if refusals:
            raise PoolRefused(self.name, errors)
        raise PoolExhausted(self.name, errors)
