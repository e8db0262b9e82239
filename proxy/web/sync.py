"""Copies what the circuit breakers, single flight and the request path counted into Prometheus
counters, once a second, off the request path. Each worker adds its own deltas; multiprocess
mode sums them."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from proxy.config.backends import public_url
from proxy.keys import BREAKER, FLIGHT
from proxy.upstream.breaker import Breaker, Health
from proxy.web.metrics import Metrics
from proxy.web.vision_panel import vision_breaker

EVERY = 1.0

log = logging.getLogger(__name__)


class BreakerSync:
    def __init__(self, app: web.Application, metrics: Metrics):
        self.app = app
        self.metrics = metrics
        self.seen: dict[tuple[int, str], tuple[int, int, int]] = {}
        self.coalesced = 0
        self.hooked: set[int] = set()
        for breaker in self.breakers():
            self._hook(breaker)

    def breakers(self) -> list[Breaker]:
        """The image side's breaker and the one of the vision providers' server keys."""
        found = [self.app[BREAKER]] if BREAKER in self.app else []
        vision = vision_breaker(self.app)
        if vision is not None:
            found.append(vision)
        return found

    def once(self) -> None:
        self.metrics.flush()
        for breaker in self.breakers():
            self._hook(breaker)
            now = breaker.clock()
            for url, health in list(breaker.health.items()):
                self._calls(id(breaker), url, health)
                self.metrics.cooling.labels(public_url(url)).set(1 if health.open_until > now else 0)
        if FLIGHT in self.app:
            total = self.app[FLIGHT].coalesced
            if total > self.coalesced:
                self.metrics.coalesced.inc(total - self.coalesced)
                self.metrics.dedup.inc(total - self.coalesced)
                self.coalesced = total

    def _calls(self, owner: int, url: str, h: Health) -> None:
        before = self.seen.get((owner, url), (0, 0, 0))
        now = (h.calls - h.failures - h.refusals, h.failures, h.refusals)
        label = public_url(url)
        for outcome, old, new in zip(("ok", "failure", "refused"), before, now, strict=True):
            if new > old:
                self.metrics.backend_calls.labels(label, outcome).inc(new - old)
        self.seen[(owner, url)] = now

    def _hook(self, breaker: Breaker) -> None:
        if id(breaker) in self.hooked:
            return
        self.hooked.add(id(breaker))
        breaker.listeners.append(self._changed)

    def _changed(self, url: str, h: Health) -> None:
        if h.open_until > 0.0:
            self.metrics.cooldowns.labels(public_url(url)).inc()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(EVERY)
            try:
                self.once()
            except Exception:  # keep counting: one bad hand-over must not end the metrics
                log.exception("could not hand the metrics over; trying again in %g s", EVERY)
