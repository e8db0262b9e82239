"""The weighted pool and its circuit breaker, on their own (no HTTP needed to pin the maths)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.config.backends import BackendSpec, public_url
from proxy.config.image import BreakerSettings
from proxy.upstream.breaker import Breaker, HealthKey
from proxy.upstream.errors import HttpStatus, LocalWait, PoolExhausted, PoolRefused, Refusal, UpstreamError
from proxy.upstream.openai import api_url
from proxy.upstream.pool import OTHER_MODELS, BackendPool, health_key, weighted_order


def specs(*weights: int) -> list[BackendSpec]:
    return [BackendSpec(url=f"http://b{i}", weight=w) for i, w in enumerate(weights)]


def key(url: str, model: str = "") -> HealthKey:
    return HealthKey("image", url, model)


def test_weights_steer_the_first_choice():
    rng = random.Random(1234)
    pool = specs(6, 3, 1)
    firsts = Counter(weighted_order(pool, rng)[0].url for _ in range(20_000))
    share = {url: n / 20_000 for url, n in firsts.items()}
    assert share["http://b0"] == pytest.approx(0.6, abs=0.02)
    assert share["http://b1"] == pytest.approx(0.3, abs=0.02)
    assert share["http://b2"] == pytest.approx(0.1, abs=0.02)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=12), st.integers())
def test_order_is_each_positive_weight_backend_once(weights, seed):
    pool = specs(*weights)
    order = weighted_order(pool, random.Random(seed))
    assert len(order) == len({s.url for s in order})
    assert {s.url for s in order} == {s.url for s in pool if s.weight > 0}


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=20), st.integers(min_value=1, max_value=20))
def test_heavier_backend_leads_more_often(heavy, light):
    if heavy <= light:
        heavy, light = light + 1, heavy
    rng = random.Random(heavy * 1000 + light)
    pool = specs(heavy, light)
    leads = sum(weighted_order(pool, rng)[0].url == "http://b0" for _ in range(2000))
    assert leads > 1000


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_failover_then_cool_down_then_probe():
    clock = Clock()
    breaker = Breaker(BreakerSettings(threshold=2, cooldown=10, max_cooldown=40), clock=clock)
    pool = BackendPool("test", specs(1, 1), breaker, rng=random.Random(0))
    calls: list[str] = []
    broken = {"http://b0"}

    async def op(spec: BackendSpec) -> str:
        calls.append(spec.url)
        if spec.url in broken:
            raise UpstreamError("HTTP 500")
        return spec.url

    for _ in range(6):
        assert await pool.run(op) == "http://b1"
    assert calls.count("http://b0") == 2  # then it cools down and is skipped
    assert breaker.of(key("http://b0")).snapshot(clock.now)["state"] == "cooling_down"
    clock.now += 11
    broken.clear()
    calls.clear()
    for _ in range(5):
        await pool.run(op)
    assert "http://b0" in calls  # probed after the cool-down, and healthy again
    assert breaker.of(key("http://b0")).snapshot(clock.now)["state"] == "healthy"


async def test_failed_probe_doubles_the_cool_down():
    clock = Clock()
    breaker = Breaker(BreakerSettings(threshold=1, cooldown=10, max_cooldown=15), clock=clock)
    x = key("x")
    breaker.failure(x, "boom")
    assert not breaker.allow(x)
    clock.now += 10.5
    assert breaker.allow(x)  # the probe
    assert not breaker.allow(x)  # only one probe at a time
    breaker.failure(x, "boom")
    assert breaker.of(x).cooldown == 15  # doubled, capped
    clock.now += 14
    assert not breaker.allow(x)


async def test_refusals_stop_the_pool_and_do_not_trip_the_breaker():
    breaker = Breaker(BreakerSettings(threshold=1))
    pool = BackendPool("test", specs(1, 1, 1), breaker)

    async def op(spec: BackendSpec) -> str:
        raise Refusal("refused")

    with pytest.raises(PoolRefused) as caught:
        await pool.run(op, max_refusals=2)
    assert len(caught.value.errors) == 2
    assert all(breaker.allow(health_key(s)) for s in pool.specs)


async def test_exhausted_pool_names_each_backend():
    pool = BackendPool("test", specs(1, 1), Breaker(BreakerSettings()))

    async def op(spec: BackendSpec) -> str:
        raise UpstreamError("timed out")

    with pytest.raises(PoolExhausted) as caught:
        await pool.run(op)
    assert "b0: timed out" in caught.value.reason and "b1: timed out" in caught.value.reason
    assert caught.value.stage == "test"


@pytest.mark.parametrize(("base", "expected"), [
    ("https://x.io", "https://x.io/v1/images/generations"),
    ("https://x.io/", "https://x.io/v1/images/generations"),
    ("https://x.io/v1", "https://x.io/v1/images/generations"),
    ("https://x.io/v1/", "https://x.io/v1/images/generations"),
    ("https://g.com/v1beta/openai", "https://g.com/v1beta/openai/images/generations"),
    ("https://d.com/compatible-mode/v1", "https://d.com/compatible-mode/v1/images/generations"),
])
def test_api_url_never_doubles_v1(base, expected):
    assert api_url(base, "images/generations") == expected


def test_public_url_drops_credentials_and_query():
    assert public_url("https://user:pw@api.x.io:8443/v1?token=abc") == "https://api.x.io:8443/v1"
    assert public_url("http://[::1]:8080/v1") == "http://[::1]:8080/v1"


# --- the probe window, peers, what counts (issue 14, items 5, 20 and 27) -----------------------------

async def test_a_probe_that_gets_no_answer_lets_another_probe_after_its_window():
    """The probe window is the cool-down (at least a second): while a probe is out, nobody else
    calls; once the window has passed without an outcome, the next caller probes."""
    clock = Clock()
    breaker = Breaker(BreakerSettings(threshold=1, cooldown=10, max_cooldown=40), clock=clock)
    x = key("x")
    breaker.failure(x, "boom")
    clock.now += 10.0
    assert breaker.allow(x)  # the probe goes (and hangs)
    clock.now += 9.9
    assert not breaker.allow(x)
    clock.now += 0.2
    assert breaker.allow(x)  # its window is over: another probe
    assert not breaker.allow(x)
    short = Breaker(BreakerSettings(threshold=1, cooldown=0.2, max_cooldown=1), clock=clock)
    short.failure(x, "boom")
    clock.now += 0.3
    assert short.allow(x)
    clock.now += 0.9
    assert not short.allow(x)  # a window of one second at least, even for a short cool-down
    clock.now += 0.2
    assert short.allow(x)


async def test_an_answer_that_is_not_a_failure_frees_the_probe_at_once():
    clock = Clock()
    breaker = Breaker(BreakerSettings(threshold=1, cooldown=10), clock=clock)
    x = key("x")
    breaker.failure(x, "boom")
    clock.now += 10.5
    for excuse in (breaker.refused, breaker.rejected, breaker.excused):
        assert breaker.allow(x) and not breaker.allow(x)
        excuse(x)  # a refusal, a 4xx about the request, a local wait: no verdict on the backend
    assert breaker.allow(x)
    assert breaker.of(x).cooldown == 10 and breaker.of(x).failures == 1


async def test_a_peers_cool_down_is_kept_and_ended_by_a_peer():
    clock = Clock()
    breaker = Breaker(BreakerSettings(threshold=3, cooldown=10), clock=clock)
    x, y = key("x"), key("x", "other-model")
    breaker.open_from_peer(x, 5.0)
    assert not breaker.allow(x) and breaker.allow(y)
    assert breaker.of(x).snapshot(clock.now)["state"] == "cooling_down"
    assert breaker.of(x).snapshot(clock.now)["cooldown_remaining"] == 5.0
    breaker.open_from_peer(x, 1.0)  # a shorter one does not shorten it
    clock.now += 4.0
    assert not breaker.allow(x)
    breaker.close_from_peer(x)
    assert breaker.allow(x) and breaker.of(x).snapshot(clock.now)["state"] == "healthy"
    long = Breaker(BreakerSettings(threshold=3, cooldown=10, max_cooldown=100), clock=clock)
    long.open_from_peer(x, 25.0)  # the peer is further along: a failed probe here doubles its cool-down
    clock.now += 25.5
    assert long.allow(x)
    long.failure(x, "HTTP 500")
    assert long.of(x).cooldown == 50.0


def test_snapshot_figures():
    clock = Clock()
    breaker = Breaker(BreakerSettings(threshold=2, cooldown=10), clock=clock)
    x = key("x")
    breaker.success(x, 0.100)
    breaker.success(x, 0.200)
    breaker.failure(x, "HTTP 500")
    snap = breaker.of(x).snapshot(clock.now)
    assert snap["state"] == "degraded" and snap["latency_ms"] == 120.0  # 0.8 * 100 + 0.2 * 200
    assert (snap["calls"], snap["failures"], snap["consecutive_failures"], snap["last_error"]) == (3, 1, 1, "HTTP 500")
    breaker.failure(x, "HTTP 502")
    clock.now += 2.54
    snap = breaker.of(x).snapshot(clock.now)
    assert snap["state"] == "cooling_down" and snap["cooldown_remaining"] == 7.5


def test_a_pool_of_zero_weights_is_no_pool():
    breaker = Breaker(BreakerSettings())
    assert not BackendPool("test", specs(0, 0), breaker)
    assert not BackendPool("test", [], breaker)
    assert BackendPool("test", specs(0, 2), breaker)


async def test_only_the_backends_own_failures_count():
    breaker = Breaker(BreakerSettings(threshold=1))
    pool = BackendPool("test", specs(1), breaker)
    raised: list[UpstreamError] = [HttpStatus(400), HttpStatus(404), HttpStatus(422), LocalWait("waited")]

    async def op(spec: BackendSpec) -> str:
        raise raised.pop(0)

    for _ in range(4):
        with pytest.raises(PoolExhausted):
            await pool.run(op)
    health = breaker.of(key("http://b0"))
    assert (health.failures, health.rejected, health.calls) == (0, 3, 3)  # the local wait asked nothing
    assert breaker.allow(key("http://b0"))
    for failure in (HttpStatus(500), HttpStatus(429), HttpStatus(401), UpstreamError("timed out")):
        fresh = Breaker(BreakerSettings(threshold=1))
        raised.append(failure)
        with pytest.raises(PoolExhausted):
            await BackendPool("test", specs(1), fresh).run(op)
        assert not fresh.allow(key("http://b0")), failure.reason


def test_health_is_kept_per_role_url_and_known_model():
    spec = BackendSpec(url="http://lite/v1", model="dall-e-3", model_map={"sdxl": "sdxl-turbo"})
    assert health_key(spec) == HealthKey("image", "http://lite/v1", "dall-e-3")
    assert health_key(spec, "sdxl") == health_key(spec, "sdxl-turbo") == HealthKey("image", "http://lite/v1",
                                                                                  "sdxl-turbo")
    assert health_key(spec, "junk") == health_key(spec, "junk2") == HealthKey("image", "http://lite/v1",
                                                                               OTHER_MODELS)
    llm = BackendSpec(url="http://lite/v1", model="gpt-4o-mini", role="llm")
    assert health_key(llm) == HealthKey("llm", "http://lite/v1", "gpt-4o-mini")


def test_every_figure_of_the_snapshot_is_counted_and_only_changes_are_told():
    """What /status shows of a backend, and what the listeners (the Redis twin's peers) hear: only
    a cool-down starting or ending, not every answer."""
    clock = Clock()
    breaker = Breaker(BreakerSettings(threshold=3, cooldown=10), clock=clock)
    x = key("x")
    told: list[float] = []
    breaker.listeners.append(lambda _key, health: told.append(health.open_until))
    breaker.success(x, 0.01234)
    breaker.refused(x)
    breaker.refused(x)
    breaker.rejected(x)
    breaker.failure(x, "E" * 300)
    assert breaker.of(x).last_error == "E" * 200
    breaker.failure(x, "HTTP 502")
    assert breaker.of(x).snapshot(clock.now) == {
        "state": "degraded", "cooldown_remaining": 0.0, "calls": 6, "failures": 2, "refusals": 2, "rejected": 1,
        "consecutive_failures": 2, "latency_ms": 12.3, "last_error": "HTTP 502"}
    assert told == []
    breaker.failure(x, "HTTP 503")
    assert told == [clock.now + 10]


def test_the_cool_down_ends_and_the_probe_window_closes_on_the_instant():
    clock = Clock()
    breaker = Breaker(BreakerSettings(threshold=1, cooldown=10), clock=clock)
    x = key("x")
    breaker.failure(x, "HTTP 500")
    clock.now = breaker.of(x).open_until
    assert breaker.of(x).snapshot(clock.now)["state"] == "degraded"
    assert breaker.allow(x) and not breaker.allow(x)  # the probe, and only one
    clock.now = breaker.of(x).probing_until  # the probe never answered: another may go
    assert breaker.allow(x)


def test_a_backend_a_peer_found_back_is_whole_again():
    clock = Clock()
    breaker = Breaker(BreakerSettings(threshold=2, cooldown=10), clock=clock)
    x = key("x")
    breaker.failure(x, "HTTP 500")
    breaker.failure(x, "HTTP 500")
    breaker.close_from_peer(x)
    assert breaker.allow(x) and breaker.allow(x), "not a probe: every request may go"
    breaker.failure(x, "HTTP 500")
    assert breaker.of(x).snapshot(clock.now)["state"] == "degraded" and breaker.allow(x)


@pytest.mark.parametrize("max_refusals", [None, 2, 3])
async def test_a_refused_pool_names_its_stage_and_each_backend_that_refused(max_refusals):
    pool = BackendPool("safety", specs(1, 1, 1), Breaker(BreakerSettings()), rng=random.Random(0))

    async def op(spec: BackendSpec) -> str:
        raise Refusal("refused") if spec.url != "http://b2" else UpstreamError("timed out")

    with pytest.raises(PoolRefused) as caught:
        await pool.run(op, max_refusals=max_refusals)
    assert caught.value.stage == "safety"
    named = set(caught.value.reason.split("; "))
    refused = {"http://b0: refused", "http://b1: refused"}
    assert refused <= named <= refused | {"http://b2: timed out"}
    if max_refusals != 2:  # every backend was tried: the one that failed is named too
        assert "http://b2: timed out" in named


async def test_the_latency_of_an_answer_is_its_own():
    breaker = Breaker(BreakerSettings())
    pool = BackendPool("test", specs(1), breaker)

    async def op(spec: BackendSpec) -> str:
        await asyncio.sleep(0.05)
        return "ok"

    assert await pool.run(op) == "ok"
    assert 0.04 < (breaker.of(key("http://b0")).latency_ewma or 0.0) < 5.0


@pytest.mark.parametrize(("status", "warned"), [(401, True), (404, True), (429, False), (408, False),
                                                (499, True), (500, False), (502, False)])
async def test_only_a_4xx_that_says_set_up_wrongly_warns_the_operator(caplog, status, warned):
    spec = BackendSpec(url="http://b0", weight=1)

    async def op(spec: BackendSpec) -> str:
        raise HttpStatus(status)

    with caplog.at_level(logging.WARNING, logger="proxy.upstream.pool"), pytest.raises(PoolExhausted):
        await BackendPool("test", [spec], Breaker(BreakerSettings())).run(op)
    lines = [r.getMessage() for r in caplog.records if r.name == "proxy.upstream.pool"]
    assert lines == ([f"image backend {spec.label} (model none) answered HTTP {status}: if every request gets "
                      "this, check its URL, token and model settings"] if warned else [])
