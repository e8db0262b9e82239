"""The weighted backend pool. It knows nothing of images: it orders backends by weighted random
choice without repetition, skips those cooling down, and fails over until one answers.

Image generation, prompt LLM calls and the vision cascade all run through ``BackendPool.run``.
Health is kept per ``health_key``: the backend's role, URL and model (a model the settings do not
name shares one key per backend, so clients naming models cannot grow it)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from proxy.config.backends import BackendSpec
from proxy.upstream.breaker import Breaker, HealthKey
from proxy.upstream.errors import CoolingDown, HttpStatus, PoolExhausted, PoolRefused, Refusal, UpstreamError

T = TypeVar("T")
log = logging.getLogger(__name__)
OTHER_MODELS = "(other)"
NOT_CONFIGURATION = frozenset({408, 429})  # 4xx that say "busy", not "set up wrongly"


def weighted_order(specs: Sequence[BackendSpec], rng: random.Random) -> list[BackendSpec]:
    """Weighted sampling without replacement (Efraimidis-Spirakis): each position is drawn with
    probability proportional to weight among those not yet drawn. Weight 0 is never drawn."""
    keyed = [(rng.random() ** (1.0 / s.weight), s) for s in specs if s.weight > 0]
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [spec for _, spec in keyed]


def health_key(spec: BackendSpec, requested: str | None = None) -> HealthKey:
    """Whose health a call with model ``requested`` (before ``MODEL_MAP``) is part of."""
    model = spec.map_model(requested) or ""
    known = {spec.map_model(None) or "", *spec.model_map.values()}
    return HealthKey(spec.role, spec.url, model if model in known else OTHER_MODELS)


class BackendPool:
    def __init__(self, name: str, specs: Sequence[BackendSpec], breaker: Breaker,
                 rng: random.Random | None = None):
        self.name = name
        self.specs = tuple(specs)
        self.breaker = breaker
        self.rng = rng or random.Random()

    def __bool__(self) -> bool:
        return any(s.weight > 0 for s in self.specs)

    async def run(self, op: Callable[[BackendSpec], Awaitable[T]], *, model: str | None = None,
                  max_refusals: int | None = None) -> T:
        """Call ``op`` on backends in weighted order until one succeeds (``model``: the model the
        request names, if any).

        Raises ``PoolRefused`` after ``max_refusals`` content refusals, else ``PoolExhausted``."""
        errors: list[UpstreamError] = []
        refusals = 0
        for spec in weighted_order(self.specs, self.rng):
            key = health_key(spec, model)
            if not self.breaker.allow(key):
                errors.append(CoolingDown(backend=spec.label))
                continue
            started = time.monotonic()
            try:
                result = await op(spec)
            except Refusal as exc:
                exc.backend = exc.backend or spec.label
                self.breaker.refused(key)
                errors.append(exc)
                refusals += 1
                if max_refusals is not None and refusals >= max_refusals:
                    raise PoolRefused(self.name, errors) from None
            except UpstreamError as exc:
                exc.backend = exc.backend or spec.label
                self._count(key, exc)
                errors.append(exc)
            else:
                self.breaker.success(key, time.monotonic() - started)
                return result
        if refusals:
            raise PoolRefused(self.name, errors)
        raise PoolExhausted(self.name, errors)

    def _count(self, key: HealthKey, exc: UpstreamError) -> None:
        if exc.backend_fault:
            self.breaker.failure(key, exc.reason)
        elif exc.sent:  # it answered: about the request (a 4xx), or with nothing usable in it
            self.breaker.rejected(key)
        else:
            self.breaker.excused(key)  # nothing was asked of the backend (a wait in Iris's own pool)
        if isinstance(exc, HttpStatus) and 400 <= exc.status < 500 and exc.status not in NOT_CONFIGURATION:
            log.warning("%s backend %s (model %s) answered %s: if every request gets this, check its "
                        "URL, token and model settings", key.role, exc.backend, key.model or "none",
                        exc.reason)
