"""Prometheus metrics: what each worker counts, and GET /metrics.

With WORKERS > 1 the supervisor points prometheus-client's multiprocess mode at
``DATA_DIR/metrics`` before the workers start (``prepare_multiprocess``), so every worker writes
its counters there and any worker answering /metrics sums them all."""

from __future__ import annotations

import os
import shutil
from bisect import bisect_left
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
SAFETY_OUTCOMES = ("passed", "refused", "error")


def prepare_multiprocess(data_dir: Path) -> Path:
    """Called by the supervisor before it starts workers: a fresh directory, named in the
    environment the workers inherit (prometheus-client reads it when they import it)."""
    directory = data_dir / "metrics"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def worker_exited(pid: int) -> None:
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)


class Metrics:
    """The metric families of one app; hot-path children are cached per label set."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter("iris_http_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=reg)
        self.latency = Histogram("iris_http_request_duration_seconds", "Time to answer, by route",
                                 ["route"], buckets=BUCKETS, registry=reg)
        self.cache = Counter("iris_cache_lookups", "Image cache lookups by result", ["result"], registry=reg)
        health = ["role", "backend", "model"]  # a backend's health is kept per role, URL and model
        self.backend_calls = Counter("iris_backend_calls", "Calls to image backends, LLMs and vision "
                                     "providers, by outcome (ok, failure, refused, rejected)",
                                     [*health, "outcome"], registry=reg)
        self.cooldowns = Counter("iris_backend_cooldowns", "Times a backend started cooling down",
                                 health, registry=reg)
        self.cooling = Gauge("iris_backend_cooling_down", "1 while a backend cools down",
                             health, multiprocess_mode="livemax", registry=reg)
        self.coalesced = Counter("iris_coalesced_requests", "Requests that waited for an identical "
                                 "request already in flight instead of calling a backend", registry=reg)
        self.dedup = Counter("iris_dedup_saved_generations", "Generations avoided: cache hits plus "
                             "coalesced requests", registry=reg)
        self.generated = Counter("iris_generated_images", "New images made, by backend", ["backend"],
                                 registry=reg)
        self.spend = Counter("iris_spend", "What new images cost, at BACKEND_PRICES, by backend",
                             ["backend"], registry=reg)
        self.refused_generations = Counter("iris_generations_refused", "Misses refused before a generation, "
                                           "by reason (generate_limited, budget_exhausted, "
                                           "generations_busy)", ["reason"], registry=reg)
        self.safety_checks = Counter("iris_safety_checks", "Generated images the local safety check "
                                     "looked at, by outcome (passed, refused, error)", ["outcome"],
                                     registry=reg)
        for outcome in SAFETY_OUTCOMES:
            self.safety_checks.labels(outcome)  # shown from the start, at 0
        self.hit = self.cache.labels("hit")
        self.miss = self.cache.labels("miss")
        # The hot path only bumps plain numbers; flush() hands them to prometheus-client, once a
        # second and before every scrape (in multiprocess mode each of its updates takes a lock
        # and writes a memory-mapped file: a tenth of a small cache hit's CPU, done per request).
        self.pending: dict[tuple[str, str, int], int] = {}
        self.latencies: dict[str, list[float]] = {}  # per route: a count per bucket (+Inf last), then the sum
        self.hits = self.misses = 0

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self.pending[key] = self.pending.get(key, 0) + 1
        counts = self.latencies.get(route)
        if counts is None:
            counts = self.latencies[route] = [0.0] * (len(BUCKETS) + 2)
        counts[bisect_left(BUCKETS, seconds)] += 1  # the first bucket with seconds <= its bound
        counts[-1] += seconds

    def cache_result(self, state: str) -> None:
        if state == "HIT":
            self.hits += 1
        elif state == "MISS":
            self.misses += 1

    def flush(self) -> None:
        pending, self.pending = self.pending, {}
        for (route, method, status), count in pending.items():
            self.requests.labels(route, method if method in METHODS else "OTHER", str(status)).inc(count)
        latencies, self.latencies = self.latencies, {}
        for route, counts in latencies.items():
            _add_observations(self.latency.labels(route), counts)
        hits, misses, self.hits, self.misses = self.hits, self.misses, 0, 0
        if hits:
            self.hit.inc(hits)
            self.dedup.inc(hits)
        if misses:
            self.miss.inc(misses)

    def render(self) -> bytes:
        """The exposition text: this worker's registry, or every worker's in multiprocess mode."""
        return generate_latest(self._everyone())

    def counted(self, name: str) -> list[tuple[dict[str, str], float]]:
        """Counter ``name``'s totals (``iris_backend_calls``) by label set, summed over every worker
        in multiprocess mode (file reads there: call it off the event loop)."""
        return [(sample.labels, sample.value) for family in self._everyone().collect()
                if family.name == name for sample in family.samples if sample.name == f"{name}_total"]

    def _everyone(self) -> CollectorRegistry:
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return registry
        return self.registry


def _add_observations(histogram: Histogram, counts: list[float]) -> None:
    """Many observations at once. prometheus-client has no public call for this: its child keeps
    one value per bucket (``_buckets``, +Inf last) and ``_sum``, as ``observe`` updates them;
    tests/test_metrics.py pins the result against the exposition text."""
    for bucket, count in zip(histogram._buckets, counts[:-1], strict=True):
        if count:
            bucket.inc(count)
    histogram._sum.inc(counts[-1])
