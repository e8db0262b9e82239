"""The weighted pool and its circuit breaker, on their own (no HTTP needed to pin the maths)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.config.backends import BackendSpec, public_url
from proxy.config.image import BreakerSettings
from proxy.upstream.breaker import Breaker
from proxy.upstream.errors import PoolExhausted, PoolRefused, Refusal, UpstreamError
from proxy.upstream.openai import api_url
from proxy.upstream.pool import BackendPool, weighted_order


def specs(*weights: int) -> list[BackendSpec]:
    return [BackendSpec(url=f"http://b{i}", weight=w) for i, w in enumerate(weights)]


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
    assert breaker.of("http://b0").snapshot(clock.now)["state"] == "cooling_down"
    clock.now += 11
    broken.clear()
    calls.clear()
    for _ in range(5):
        await pool.run(op)
    assert "http://b0" in calls  # probed after the cool-down, and healthy again
    assert breaker.of("http://b0").snapshot(clock.now)["state"] == "healthy"


async def test_failed_probe_doubles_the_cool_down():
    clock = Clock()
    breaker = Breaker(BreakerSettings(threshold=1, cooldown=10, max_cooldown=15), clock=clock)
    breaker.failure("x", "boom")
    assert not breaker.allow("x")
    clock.now += 10.5
    assert breaker.allow("x")  # the probe
    assert not breaker.allow("x")  # only one probe at a time
    breaker.failure("x", "boom")
    assert breaker.of("x").cooldown == 15  # doubled, capped
    clock.now += 14
    assert not breaker.allow("x")


async def test_refusals_stop_the_pool_and_do_not_trip_the_breaker():
    breaker = Breaker(BreakerSettings(threshold=1))
    pool = BackendPool("test", specs(1, 1, 1), breaker)

    async def op(spec: BackendSpec) -> str:
        raise Refusal("refused")

    with pytest.raises(PoolRefused) as caught:
        await pool.run(op, max_refusals=2)
    assert len(caught.value.errors) == 2
    assert all(breaker.allow(s.url) for s in pool.specs)


async def test_exhausted_pool_names_each_backend():
    pool = BackendPool("test", specs(1, 1), Breaker(BreakerSettings()))

    async def op(spec: BackendSpec) -> str:
        raise UpstreamError("timed out")

    with pytest.raises(PoolExhausted) as caught:
        await pool.run(op)
    assert "b0: timed out" in caught.value.reason and "b1: timed out" in caught.value.reason


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
