"""The Redis parts on a real server: the store's contract (on every topology), shared cool-downs
opening and closing across instances, and the settings."""

from __future__ import annotations

import asyncio

import pytest

from proxy.cache.stores.redis import RedisStore
from proxy.cache.stores.replay import KEEP_UNCONFIRMED, MAX_BYTES, MAX_ENTRIES, NEVER_WRITTEN, Replay
from proxy.config import load_settings
from proxy.config.image import BreakerSettings
from proxy.errors import ConfigError
from proxy.redis.bus import RedisBus
from proxy.redis.health import RedisHealth
from proxy.redis.topology.registry import open_topology
from proxy.upstream.breaker import Breaker, HealthKey
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
        flux, other = HealthKey("image", "http://backend", "flux"), HealthKey("image", "http://backend", "sdxl")
        llm = HealthKey("llm", "http://backend", "flux")
        a.failure(flux, "HTTP 500")
        await eventually(lambda: not b.allow(flux))
        assert b.of(flux).last_error.startswith("peer:")
        assert b.allow(other) and b.allow(llm)  # the same URL's other models and roles are not down
        clocks[0].now += 31  # a's cool-down is over: its probe gets through
        assert a.allow(flux)
        a.success(flux, 0.1)
        await eventually(lambda: b.allow(flux))  # b's clock never moved: the peer closed it
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


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_journal_of_what_redis_may_lack():
    clock = Ticks()
    journal = Replay(clock=clock)
    journal.write("a", b"1", None, NEVER_WRITTEN)  # made while Redis was out
    journal.write("b", b"22", 5.0, 0)  # reached the master, no replica confirmed it
    journal.delete("c")
    assert [key for key, _ in journal.due(None)] == ["a", "b", "c"]
    assert [key for key, _ in journal.due(0)] == ["a", "c"]  # b was made after no move: not due yet
    assert [key for key, _ in journal.due(1)] == ["a", "b", "c"]  # after the master moved, it is
    clock.now += 4
    assert journal.entries["b"].ttl(clock.now) == pytest.approx(1.0)  # written again with what is left
    newer = journal.write("a", b"333", None, 0)
    assert journal.current("a", newer) and [key for key, _ in journal.due(None)] == ["b", "c", "a"]
    journal.settled("a", journal.entries["b"])  # another entry's confirmation does not settle a
    assert "a" in journal.entries
    journal.settled("a", newer)
    assert journal.counts() == {"writes": 1, "deletes": 1, "bytes": 2, "dropped": 0}
    clock.now += KEEP_UNCONFIRMED
    assert [key for key, _ in journal.due(None)] == ["c"]  # b stayed unconfirmed too long; c waits for Redis
    journal.write("huge", b"x" * (MAX_BYTES + 1), None, 0)
    assert "huge" not in journal.entries  # too large to keep: written once
    for i in range(MAX_ENTRIES + 5):
        journal.write(f"k{i}", b"v", None, NEVER_WRITTEN)
    assert len(journal.entries) == MAX_ENTRIES and "c" not in journal.entries and "k0" not in journal.entries
    assert journal.counts()["dropped"] == 6
