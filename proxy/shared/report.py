"""Redis as /status and /metrics show it: whether it is up, how often it was not, and the
signals heard. ``None``/nothing without REDIS_URL."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from proxy.keys import SHARED


def redis_status(app: web.Application) -> dict[str, object] | None:
    shared = app.get(SHARED)
    return None if shared is None else shared.snapshot()


class _Families:
    def __init__(self, families: list[GaugeMetricFamily]):
        self.families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self.families


def redis_metrics(app: web.Application) -> bytes:
    """Gauges of this worker's view of Redis, built at scrape time (no files in multiprocess mode)."""
    shared = app.get(SHARED)
    if shared is None:
        return b""
    health = shared.health
    families = [
        GaugeMetricFamily("iris_redis_up", "1 while this worker reaches Redis, 0 during an outage "
                          "(local cache and limits meanwhile)", value=1 if health.up else 0),
        GaugeMetricFamily("iris_redis_outages", "Redis outages this worker has seen since it started",
                          value=health.outages),
        GaugeMetricFamily("iris_redis_signals_received", "Signals heard from other instances "
                          "(cache deletes, backend cool-downs)", value=shared.bus.received),
    ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)
