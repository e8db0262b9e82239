"""Two instances on one Redis share the limits on new images: misses per address and credential,
the generation slots (leases that run out when an instance dies) and the daily budget, on the
single server, behind Sentinel and on a cluster."""

from __future__ import annotations

import asyncio
import calendar

import pytest

from proxy.cache.slots import WorkerSlots
from proxy.cache.slots_redis import RedisSlots
from proxy.keys import ADMISSION, ALLOWANCE, SHARED
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.support.fakes import FakeImageBackend
from tests.support.redis_fakes import eventually
from tests.support.redis_topologies import ON_EVERY_TOPOLOGY

pytest_plugins = ["tests.support.redis_fixtures"]
pytestmark = pytest.mark.redis
Q = f"key={ACCESS_KEY}&width=64&height=64"
SIGNING = {"IMAGE_SIGNING_KEYS": "shared-signing-key-0123456789"}


async def code_of(resp) -> str:
    return (await resp.json())["error"]["code"]


@ON_EVERY_TOPOLOGY
async def test_misses_are_limited_across_instances_and_hits_keep_answering(instances, backend):
    a, b = await instances(2, BACKEND_API_URLS=backend.url, RATE_LIMIT_GENERATE="3/minute", **SIGNING)
    signer = a.app[ADMISSION].signer
    statuses = [(await client.get(signer.sign(f"/prompt/n{i}?width=64"))).status
                for i, client in enumerate([a, b, a, b])]
    assert statuses == [200, 200, 200, 429]
    for i, client in enumerate([b, a, b]):  # the images are shared: hits on either instance
        hit = await client.get(signer.sign(f"/prompt/n{i}?width=64"))
        assert hit.status == 200 and hit.headers["X-Cache"] == "HIT"
    assert len(backend.calls) == 3


@ON_EVERY_TOPOLOGY
async def test_generation_slots_are_shared_across_instances(instances, serve):
    slow = FakeImageBackend(delay=0.5)
    await serve(slow)
    a, b = await instances(2, BACKEND_API_URLS=slow.url, MAX_GENERATIONS_IN_FLIGHT="1",
                           GENERATION_SLOT_WAIT="0.1")
    first = asyncio.create_task(a.get(f"/prompt/one?{Q}"))
    await eventually(lambda: slow.in_flight == 1)
    busy = await b.get(f"/prompt/two?{Q}")
    assert busy.status == 503 and await code_of(busy) == "generations_busy"
    assert (await first).status == 200
    assert await b.app[ALLOWANCE].slots.busy() == 0
    assert (await b.get(f"/prompt/two?{Q}")).status == 200
    assert slow.most_in_flight == 1


@ON_EVERY_TOPOLOGY
async def test_a_slot_of_an_instance_that_died_comes_free_when_its_lease_runs_out(instances):
    a, b = await instances(2, MAX_GENERATIONS_IN_FLIGHT="1")
    dying = RedisSlots(a.app[SHARED], WorkerSlots(1), lease=0.3)
    slot = await dying.take()
    assert slot is not None
    slot.heartbeat.cancel()  # the instance is gone: nobody renews its lease
    others = b.app[ALLOWANCE].slots
    assert await others.take() is None and await others.busy() == 1
    await asyncio.sleep(0.4)
    taken = await others.take()
    assert taken is not None
    await taken.release()


@ON_EVERY_TOPOLOGY
async def test_a_held_slot_is_renewed_past_its_lease(instances):
    (a,) = await instances(1)
    slots = RedisSlots(a.app[SHARED], WorkerSlots(1), lease=0.3)
    slot = await slots.take()
    assert slot is not None
    await asyncio.sleep(0.7)  # more than two leases: the heartbeat kept it
    assert await slots.take() is None and await slots.busy() == 1
    await slot.release()
    assert await slots.busy() == 0


@ON_EVERY_TOPOLOGY
async def test_the_daily_budget_is_shared_across_instances_and_days(instances, backend):
    prices = {"BACKEND_PRICES": f'{{"{backend.url}": 0.5}}', "DAILY_BUDGET": "1"}
    a, b = await instances(2, BACKEND_API_URLS=backend.url, **prices)
    midnight = calendar.timegm((2026, 12, 5, 0, 0, 0))
    clock = {"now": midnight - 30.0}
    for client in (a, b):
        client.app[ALLOWANCE].budget.clock = lambda: clock["now"]
    assert (await a.get(f"/prompt/d1?{Q}")).status == 200
    assert (await b.get(f"/prompt/d2?{Q}")).status == 200
    spent = await a.get(f"/prompt/d3?{Q}")
    assert spent.status == 429 and await code_of(spent) == "budget_exhausted" and spent.headers["Retry-After"] == "30"
    assert (await b.get(f"/prompt/d1?{Q}")).status == 200  # a hit, made by the other instance
    clock["now"] = midnight + 5.0
    assert (await b.get(f"/prompt/d3?{Q}")).status == 200
    status = await (await a.get("/status", headers={"X-Admin-Token": ADMIN_TOKEN})).json()
    days = status["spending"]["budget"]["days"]
    assert [(d["day"], d["images"], d["spent"]) for d in days[:2]] == [("2026-12-05", 1, 0.5),
                                                                       ("2026-12-04", 2, 1.0)]


async def test_while_redis_is_down_the_hosts_slots_and_ledger_answer(instances, private_redis, backend):
    (a,) = await instances(1, REDIS_URL=private_redis.url, BACKEND_API_URLS=backend.url,
                           MAX_GENERATIONS_IN_FLIGHT="1", BACKEND_PRICES=f'{{"{backend.url}": 2}}',
                           DAILY_BUDGET="3")
    await private_redis.astop()
    assert (await a.get(f"/prompt/offline1?{Q}")).status == 200
    assert not a.app[SHARED].health.up
    assert (await a.get(f"/prompt/offline2?{Q}")).status == 200
    refused = await a.get(f"/prompt/offline3?{Q}")  # the host's ledger counted both
    assert refused.status == 429 and await code_of(refused) == "budget_exhausted"
    await private_redis.astart()
    await eventually(lambda: a.app[SHARED].health.up)
