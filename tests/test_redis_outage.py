"""A Redis outage degrades gracefully: requests keep succeeding on local cache and limits, the
outage is logged and shown in /status, and sharing resumes when Redis is back (the deletes and the
images made meanwhile are made again on Redis)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from proxy.keys import FLIGHT, SHARED
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.support.redis_fakes import a_delete_is_heard, eventually

pytest_plugins = ["tests.support.redis_fixtures"]
pytestmark = pytest.mark.redis
ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


def image_url(prompt: str) -> str:
    return f"/prompt/{prompt}?key={ACCESS_KEY}&width=256&height=256"


async def redis_state(client) -> str:
    body = await (await client.get("/status", headers=ADMIN)).json()
    return body["cache"]["redis"]["state"]


async def test_a_redis_restart_fails_no_request(instances, private_redis, backend, caplog):
    caplog.set_level(logging.WARNING)
    a, b = await instances(2, REDIS_URL=private_redis.url, BACKEND_API_URLS=backend.url,
                           CACHE_MEMORY_BYTES="0")
    assert (await a.get(image_url("before"))).headers["X-Cache"] == "MISS"
    assert (await b.get(image_url("before"))).headers["X-Cache"] == "HIT"
    statuses: list[int] = []
    stop = asyncio.Event()

    async def traffic() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            for client in (a, b):
                statuses.append((await client.get(image_url(f"during{n % 5}"))).status)
            await asyncio.sleep(0.01)

    running = asyncio.create_task(traffic())
    await asyncio.sleep(0.1)
    await private_redis.astop()
    await eventually(lambda: not a.app[SHARED].health.up and not b.app[SHARED].health.up)
    assert await redis_state(a) == "down"
    metrics = await (await a.get("/metrics", headers=ADMIN)).text()
    assert "iris_redis_up 0.0" in metrics and "iris_redis_outages 1.0" in metrics
    # an admin delete during the outage is queued and applied when Redis is back
    gone = await b.post("/cache/delete", json={"description": "before", "width": 256, "height": 256},
                        headers=ADMIN)
    assert gone.status in (200, 404)
    # an image made during the outage is cached locally, and written to Redis once it is back
    assert (await a.get(image_url("made%20offline"))).headers["X-Cache"] == "MISS"
    await asyncio.sleep(0.3)
    await private_redis.astart()
    await eventually(lambda: a.app[SHARED].health.up and b.app[SHARED].health.up)
    await asyncio.sleep(0.2)
    stop.set()
    await running
    assert statuses and set(statuses) == {200}
    assert await redis_state(b) == "up"
    assert "Redis is unreachable" in caplog.text and "Redis is back" in caplog.text
    calls = len(backend.calls)
    again = await a.get(image_url("before"))
    assert again.headers["X-Cache"] == "MISS"  # the delete made during the outage reached Redis
    assert len(backend.calls) == calls + 1
    assert (await b.get(image_url("after"))).headers["X-Cache"] == "MISS"
    await asyncio.gather(*b.app[FLIGHT].tasks)  # answered before its store write: wait for the write
    assert (await a.get(image_url("after"))).headers["X-Cache"] == "HIT"  # shared again
    assert (await b.get(image_url("made%20offline"))).headers["X-Cache"] == "HIT"
    await a_delete_is_heard(b, a, "after")  # signals flow again


async def test_iris_starts_while_redis_is_down(instances, private_redis, backend):
    url = private_redis.url
    await private_redis.astop()
    (a,) = await instances(1, REDIS_URL=url, BACKEND_API_URLS=backend.url)
    assert (await a.get(image_url("offline"))).status == 200
    assert await redis_state(a) == "down"
    await private_redis.astart()
    await eventually(lambda: a.app[SHARED].health.up)
    assert (await a.get(image_url("online"))).status == 200
