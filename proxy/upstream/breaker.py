"""A circuit breaker per backend: after repeated failures a backend cools down, then one probe
request decides whether it is back. State is per process unless a shared store is attached.

Health is kept per ``HealthKey``: a role (image, llm, vision), a URL and a model. One URL (a
LiteLLM proxy, say) may serve many models and roles, and one model failing there says nothing about
the others. Only the backend's own failures count (``UpstreamError.backend_fault``): a content
refusal, or a 4xx about the request, is an answer that shows the backend is up."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from proxy.config.image import BreakerSettings


class HealthKey(NamedTuple):
    role: str
    url: str
    model: str = ""


@dataclass
class Health:
    calls: int = 0
    failures: int = 0
    refusals: int = 0
    rejected: int = 0
    consecutive_failures: int = 0
    open_until: float = 0.0
    cooldown: float = 0.0
    probing_until: float = 0.0
    latency_ewma: float | None = None
    last_error: str = ""

    def snapshot(self, now: float) -> dict[str, object]:
        cooling = self.open_until > now
        return {
            "state": "cooling_down" if cooling else ("degraded" if self.consecutive_failures else "healthy"),
            "cooldown_remaining": round(max(0.0, self.open_until - now), 1),
            "calls": self.calls,
            "failures": self.failures,
            "refusals": self.refusals,
            "rejected": self.rejected,
            "consecutive_failures": self.consecutive_failures,
            "latency_ms": None if self.latency_ewma is None else round(self.latency_ewma * 1000, 1),
            "last_error": self.last_error,
        }


class Breaker:
    def __init__(self, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.clock = clock
        self.health: dict[HealthKey, Health] = {}
        self.listeners: list[Callable[[HealthKey, Health], None]] = []

    def of(self, key: HealthKey) -> Health:
        return self.health.setdefault(key, Health())

    def allow(self, key: HealthKey) -> bool:
        """May a request go to ``key`` now? Past its cool-down, one caller gets to probe."""
        h = self.of(key)
        now = self.clock()
        if h.open_until <= 0.0:
            return True
        if now < h.open_until or now < h.probing_until:
            return False
        h.probing_until = now + max(self.settings.cooldown, 1.0)
        return True

    def success(self, key: HealthKey, latency: float) -> None:
        h = self.of(key)
        h.calls += 1
        h.latency_ewma = latency if h.latency_ewma is None else 0.8 * h.latency_ewma + 0.2 * latency
        was_open = h.open_until > 0.0
        h.consecutive_failures = 0
        h.open_until = h.probing_until = h.cooldown = 0.0
        if was_open:
            self._changed(key, h)

    def refused(self, key: HealthKey) -> None:
        """The backend refused the content: an answer, not a failure."""
        h = self.of(key)
        h.calls += 1
        h.refusals += 1
        self.excused(key)

    def rejected(self, key: HealthKey) -> None:
        """The backend answered, but not usefully for this request (a 4xx about the request, a
        reply with no answer in it): not its failure."""
        h = self.of(key)
        h.calls += 1
        h.rejected += 1
        self.excused(key)

    def excused(self, key: HealthKey) -> None:
        """A call that decided nothing about the backend's health: a probe it was may go again."""
        self.of(key).probing_until = 0.0

    def failure(self, key: HealthKey, reason: str) -> None:
        h = self.of(key)
        h.calls += 1
        h.failures += 1
        h.consecutive_failures += 1
        h.last_error = reason[:200]
        if h.consecutive_failures >= self.settings.threshold or h.open_until > 0.0:
            base = self.settings.cooldown
            h.cooldown = base if h.cooldown == 0.0 else min(h.cooldown * 2, self.settings.max_cooldown)
            h.open_until = self.clock() + h.cooldown
            h.probing_until = 0.0
            self._changed(key, h)

    def open_from_peer(self, key: HealthKey, remaining: float) -> None:
        """Another instance found ``key`` down: spare ourselves the discovery."""
        h = self.of(key)
        h.open_until = max(h.open_until, self.clock() + remaining)
        h.cooldown = max(h.cooldown, remaining)

    def close_from_peer(self, key: HealthKey) -> None:
        """Another instance's probe got through: ``key`` is back."""
        h = self.of(key)
        h.consecutive_failures = 0
        h.open_until = h.probing_until = h.cooldown = 0.0

    def _changed(self, key: HealthKey, h: Health) -> None:
        for listener in self.listeners:
            listener(key, h)
