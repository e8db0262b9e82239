"""Two instances on one Redis share rate limits (the /auth-* guard, profile updates, frames),
auth sessions, the blacklist change signal and the vision dedup state, on every topology; with
Redis gone, the local limits answer instead."""

from __future__ import annotations

import time

import pytest

from proxy.accounts import profiles
from proxy.errors import RateLimited
from proxy.keys import ACCOUNTS, DATABASE, GUARD, SHARED, VISION
from proxy.security import blacklist
from proxy.vision.dedup import Remembered
from tests.support.redis_fakes import eventually
from tests.support.redis_topologies import ON_EVERY_TOPOLOGY

pytest_plugins = ["tests.support.redis_fixtures"]
pytestmark = pytest.mark.redis
SECRET = {"PROXY_SECRET_KEY": "scale-out-test-master-secret-0123456789", "BLACKLIST_AUTO_FAILURES": "0"}
KEY = "alice-key-0123456789"


async def with_alice(clients) -> None:
    """The same profile on each instance (one SQLite each here, as on separate hosts)."""
    for client in clients:
        await client.app[ACCOUNTS].run(profiles.add, "alice", KEY)


@ON_EVERY_TOPOLOGY
async def test_auth_attempts_are_limited_across_instances(instances):
    a, b = await instances(2, RATE_LIMIT_AUTH="3/minute", **SECRET)
    statuses = [(await c.post(f"/auth-bad-guess-{i:03d}")).status for i, c in enumerate([a, b, a, b])]
    assert statuses == [401, 401, 401, 429]


@ON_EVERY_TOPOLOGY
async def test_profile_updates_and_frames_are_limited_across_instances(instances):
    a, b = await instances(2, RATE_LIMIT_PROFILE="2/minute", RATE_LIMIT_PROCESS="2/hour", **SECRET)
    await with_alice([a, b])
    auth = {"Authorization": f"Bearer {KEY}"}
    assert (await a.post("/prompt-alice", json={"prompt": "one"}, headers=auth)).status == 200
    assert (await b.post("/prompt-alice", json={"prompt": "two"}, headers=auth)).status == 200
    refused = await a.post("/prompt-alice", json={"prompt": "three"}, headers=auth)
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    await a.app[GUARD].process("alice")
    await b.app[GUARD].process("alice")
    with pytest.raises(RateLimited):
        await a.app[GUARD].process("alice")


@ON_EVERY_TOPOLOGY
async def test_a_session_granted_on_one_instance_works_on_the_other(instances):
    a, b = await instances(2, **SECRET)
    await with_alice([a, b])
    assert (await b.get("/prompt-alice")).status == 401  # no session yet
    assert (await a.post(f"/auth-{KEY}")).status == 200
    resp = await b.get("/prompt-alice")
    assert resp.status == 200 and (await resp.json())["username"] == "alice"


@ON_EVERY_TOPOLOGY
async def test_a_blacklist_change_on_one_instance_is_signalled_to_the_other(instances):
    a, b = await instances(2, **SECRET)
    signal_a, signal_b = a.app[GUARD].blacklist.signal, b.app[GUARD].blacklist.signal
    before = await signal_b.revision()
    await signal_a.revision()
    await a.app[DATABASE].run(blacklist.add, "203.0.113.7", "test")
    await signal_a.revision()  # a's refresher notices its local change and announces it
    assert await signal_b.revision() != before


@ON_EVERY_TOPOLOGY
async def test_the_vision_dedup_state_is_shared(instances):
    a, b = await instances(2, **SECRET)
    entry = Remembered("what is this?", 0xFFFF_0000_1234_5678, time.time(), {"answer": "a cat"})
    await a.app[VISION].dedup.remember("alice", entry)
    assert await b.app[VISION].dedup.recall("alice") == entry
    assert await b.app[VISION].dedup.recall("bob") is None


async def test_limits_fall_back_to_local_while_redis_is_down(instances, private_redis):
    (a,) = await instances(1, REDIS_URL=private_redis.url, RATE_LIMIT_AUTH="2/minute", **SECRET)
    await private_redis.astop()
    statuses = [(await a.post(f"/auth-guess-{i}")).status for i in range(3)]
    assert statuses == [401, 401, 429]  # the local limiter, not a 500
    assert not a.app[SHARED].health.up
    await private_redis.astart()
    await eventually(lambda: a.app[SHARED].health.up)
