"""The Redis parts on a real server: the store's contract (on every topology), shared cool-downs
opening and closing across instances, and the settings."""

from __future__ import annotations

import asyncio

import pytest

from proxy.cache.stores.redis import RedisStore
from proxy.config import load_settings
from proxy.config.image import BreakerSettings
from proxy.errors import ConfigError
from proxy.redis.bus import RedisBus
from proxy.redis.health import RedisHealth
from proxy.redis.topology.registry import open_topology
from proxy.upstream.breaker import Breaker
from proxy.upstream.breaker_redis import RedisCooldowns
from tests.support.redis_fakes import eventually
from tests.support.redis_topologies import ON_EVERY_TOPOLOGY

pytest_plugins = ["tests.support.redis_fixtures"]


@pytest.fixture
async def topology(redis_topology):
    found = open_topology(load_settings(redis_topology).redis)
    yield found
    await found.close()


@pytest.mark.redis
@ON_EVERY_TOPOLOGY
async def test_store_contract(topology, redis_reader, redis_prefix):
    client = redis_reader
    store = RedisStore(topology, prefix=redis_prefix, default_ttl=100.0)
    assert await store.get("k") is None
    await store.set("k", b"v1")
    assert await store.get("k") == b"v1"
    assert 99 < await client.ttl(redis_prefix + "k") <= 100  # the default TTL bounds what has none
    await store.set("short", b"x", ttl=5)
    assert await client.ttl(redis_prefix + "short") <= 5
    assert await store.add("lock", b"me", ttl=5) is True
    assert await store.add("lock", b"you", ttl=5) is False
    assert await store.touch("lock", ttl=50) is True
    assert await client.ttl(redis_prefix + "lock") > 5
    assert await store.touch("absent", ttl=5) is False
    assert await store.delete_if("lock", b"you") is False
    assert await store.get("lock") == b"me"
    assert await store.delete_if("lock", b"me") is True
    assert await store.get("lock") is None
    assert await store.incr("n") == 1
    assert await store.incr("n", 4) == 5
    assert await store.delete("k") is True
    assert await store.delete("k") is False
    stats = await store.stats()
    assert stats["store"] == "redis" and stats["bytes"] > 0


@pytest.mark.redis
async def test_store_add_expires(topology, redis_prefix):
    store = RedisStore(topology, prefix=redis_prefix, default_ttl=0)
    assert await store.add("lease", b"a", ttl=0.05)
    await asyncio.sleep(0.1)
    assert await store.add("lease", b"b", ttl=5)  # a dead holder's lock lapses


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.redis
async def test_cooldowns_open_and_close_across_instances(topology, redis_prefix):
    settings = BreakerSettings(threshold=1, cooldown=30.0, max_cooldown=60.0)
    clocks, breakers, buses = [Clock(), Clock()], [], []
    for clock in clocks:
        health = RedisHealth(topology.ping, retry_interval=0.1)
        bus = RedisBus(topology, health, redis_prefix)
        breaker = Breaker(settings, clock=clock)
        RedisCooldowns(breaker, bus)
        bus.start()
        buses.append(bus)
        breakers.append(breaker)
    try:
        await eventually(lambda: all(bus.connected for bus in buses))
        a, b = breakers
        a.failure("http://backend", "HTTP 500")
        await eventually(lambda: not b.allow("http://backend"))
        assert b.of("http://backend").last_error.startswith("peer:")
        clocks[0].now += 31  # a's cool-down is over: its probe gets through
        assert a.allow("http://backend")
        a.success("http://backend", 0.1)
        await eventually(lambda: b.allow("http://backend"))  # b's clock never moved: the peer closed it
    finally:
        for bus in buses:
            await bus.close()


def test_settings():
    assert load_settings({}).redis.enabled is False
    cfg = load_settings({"REDIS_URL": "redis://user:s3cret@cache.internal:6380/2", "REDIS_PREFIX": "x:"}).redis
    assert cfg.enabled and cfg.prefix == "x:"
    assert cfg.public_url == "redis://cache.internal:6380/2"
    assert "s3cret" not in repr(cfg)
    with pytest.raises(ConfigError, match="REDIS_URL"):
        load_settings({"REDIS_URL": "http://cache:6379"})
    with pytest.raises(ConfigError, match="REDIS_TIMEOUT"):
        load_settings({"REDIS_URL": "redis://cache", "REDIS_TIMEOUT": "0"})
