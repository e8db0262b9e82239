"""Prometheus: ``GET /metrics`` (every worker's counters, plus gauges read at scrape time from the
shared cache and this worker's view of Redis), and the hand-over that copies what the circuit
breakers and single flight counted into counters, once a second, off the request path. Each
worker adds its own deltas; multiprocess mode sums them."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from proxy.admin.login import require_admin_page
from proxy.cache.flight import SingleFlight
from proxy.config.backends import public_url
from proxy.keys import IMAGE_CACHE, OBSERVER, SETTINGS, SHARED
from proxy.redis.shared import SharedRedis
from proxy.upstream.breaker import Breaker, Health, HealthKey
from proxy.web.metrics import CONTENT_TYPE, Metrics

EVERY = 1.0
log = logging.getLogger(__name__)


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    if not app[SETTINGS].web.metrics_public:
        await require_admin_page(request)
    observer = app[OBSERVER]
    observer.metrics.flush()
    cache = await app[IMAGE_CACHE].stats()
    cache["entries"] = cache.get("keys")
    body = await asyncio.get_running_loop().run_in_executor(None, observer.metrics.render)
    families = cache_gauges(cache) + redis_gauges(app.get(SHARED))
    return web.Response(body=body + render_gauges(families),
                        headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


def cache_gauges(cache: dict[str, object]) -> list[GaugeMetricFamily]:
    """Read from the shared cache at scrape time (the same whichever worker answers)."""
    families = []
    for name, helptext in (("entries", "Entries in the image cache"), ("bytes", "Bytes of the image cache"),
                           ("hit_ratio", "Hits over lookups, all workers")):
        value = cache.get(name)
        if isinstance(value, int | float):
            families.append(GaugeMetricFamily(f"iris_cache_{name}", helptext, value=value))
    return families


def redis_gauges(shared: SharedRedis | None) -> list[GaugeMetricFamily]:
    """This worker's view of Redis (nothing without REDIS_URL)."""
    if shared is None:
        return []
    health = shared.health
    return [
        GaugeMetricFamily("iris_redis_up", "1 while this worker reaches Redis, 0 during an outage "
                          "(local cache and limits meanwhile)", value=1 if health.up else 0),
        GaugeMetricFamily("iris_redis_outages", "Redis outages this worker has seen since it started",
                          value=health.outages),
        GaugeMetricFamily("iris_redis_signals_received", "Signals heard from other instances "
                          "(cache deletes, backend cool-downs)", value=shared.bus.received),
    ]


class _Families:
    def __init__(self, families: list[GaugeMetricFamily]):
        self.families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self.families


def render_gauges(families: list[GaugeMetricFamily]) -> bytes:
    """Built as metric families, not Gauge objects: in multiprocess mode those would write files."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


OUTCOMES = ("ok", "failure", "refused", "rejected")
COUNTED_AS = {"failure": "failures", "refused": "refusals", "rejected": "rejected"}  # /status's names
Totals = dict[tuple[str, str, str], dict[str, int]]


def labels_of(key: HealthKey) -> tuple[str, str, str]:
    """The metric labels of a health key: role, the URL without credentials or query, model."""
    return key.role, public_url(key.url), key.model


class BreakerSync:
    """Hands what the breakers counted to the metrics, and reads the totals of every worker back
    (for /status and the dashboard, which would otherwise show this worker's share only)."""

    def __init__(self, metrics: Metrics, breakers: list[Breaker], flight: SingleFlight | None):
        self.metrics = metrics
        self.breakers = breakers
        self.flight = flight
        self.seen: dict[tuple[int, HealthKey], tuple[int, ...]] = {}
        self.coalesced = 0
        for breaker in breakers:
            breaker.listeners.append(self._changed)

    def once(self) -> None:
        self.metrics.flush()
        for breaker in self.breakers:
            now = breaker.clock()
            for key, health in list(breaker.health.items()):
                self._calls(id(breaker), key, health)
                self.metrics.cooling.labels(*labels_of(key)).set(1 if health.open_until > now else 0)
        if self.flight is not None:
            total = self.flight.coalesced
            if total > self.coalesced:
                self.metrics.coalesced.inc(total - self.coalesced)
                self.metrics.dedup.inc(total - self.coalesced)
                self.coalesced = total

    async def totals(self) -> Totals:
        """Calls by outcome (and all of them, ``calls``) per health key's labels, every worker's."""
        self.once()
        counted = await asyncio.get_running_loop().run_in_executor(
            None, self.metrics.counted, "iris_backend_calls")
        out: Totals = {}
        for labels, value in counted:
            row = out.setdefault((labels["role"], labels["backend"], labels["model"]),
                                 dict.fromkeys(("calls", *COUNTED_AS.values()), 0))
            row["calls"] += int(value)
            if labels["outcome"] in COUNTED_AS:
                row[COUNTED_AS[labels["outcome"]]] += int(value)
        return out

    def _calls(self, owner: int, key: HealthKey, h: Health) -> None:
        before = self.seen.get((owner, key), (0,) * len(OUTCOMES))
        now = (h.calls - h.failures - h.refusals - h.rejected, h.failures, h.refusals, h.rejected)
        for outcome, old, new in zip(OUTCOMES, before, now, strict=True):
            if new > old:
                self.metrics.backend_calls.labels(*labels_of(key), outcome).inc(new - old)
        self.seen[(owner, key)] = now

    def _changed(self, key: HealthKey, h: Health) -> None:
        if h.open_until > 0.0:
            self.metrics.cooldowns.labels(*labels_of(key)).inc()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(EVERY)
            try:
                self.once()
            except Exception:  # keep counting: one bad hand-over must not end the metrics
                log.exception("could not hand the metrics over; trying again in %g s", EVERY)
