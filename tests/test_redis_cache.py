"""Two Iris instances on one real Redis behave as one: shared hits, one backend call for misses
spread over both, deletes seen everywhere, shared backend cool-downs; on a single server, behind
Sentinel and on a cluster alike."""

from __future__ import annotations

import asyncio

import pytest

from proxy.keys import BREAKER, IMAGE_CACHE
from proxy.upstream.breaker import HealthKey
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.support.fakes import png
from tests.support.redis_fakes import eventually
from tests.support.redis_topologies import ON_EVERY_TOPOLOGY

pytest_plugins = ["tests.support.redis_fixtures"]

pytestmark = pytest.mark.redis
ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


def image_url(prompt: str, extra: str = "") -> str:
    return f"/prompt/{prompt}?key={ACCESS_KEY}&width=256&height=256&seed=3{'&' + extra if extra else ''}"


@ON_EVERY_TOPOLOGY
async def test_a_hit_on_one_instance_is_a_hit_on_the_other(instances, backend, redis_reader, redis_prefix):
    a, b = await instances(2, BACKEND_API_URLS=backend.url, REDIS_CACHE_TTL="3600")
    first = await a.get(image_url("shared%20apple"))
    assert first.status == 200 and first.headers["X-Cache"] == "MISS"
    second = await b.get(image_url("shared%20apple"))
    assert second.status == 200 and second.headers["X-Cache"] == "HIT"
    assert await second.read() == backend.image
    assert len(backend.calls) == 1
    key = first.headers["ETag"].strip('"')
    ttl = await redis_reader.ttl(f"{redis_prefix}img:{key}")
    assert 3500 < ttl <= 3600  # REDIS_CACHE_TTL bounds every image entry


@ON_EVERY_TOPOLOGY
async def test_misses_spread_over_two_instances_cost_one_backend_call(instances, backend):
    backend.delay = 0.3
    a, b = await instances(2, BACKEND_API_URLS=backend.url)
    answers = await asyncio.gather(*(client.get(image_url("one%20call")) for client in [a, b] * 5))
    assert [r.status for r in answers] == [200] * 10
    assert {await r.read() for r in answers} == {backend.image}
    assert len(backend.calls) == 1


@ON_EVERY_TOPOLOGY
async def test_a_delete_on_one_instance_is_seen_by_all(instances, backend):
    a, b = await instances(2, BACKEND_API_URLS=backend.url)
    assert (await a.get(image_url("pear"))).headers["X-Cache"] == "MISS"
    assert (await b.get(image_url("pear"))).headers["X-Cache"] == "HIT"  # now in b's memory front too
    assert (await a.get(image_url("pear"))).headers["X-Cache"] == "HIT"
    before = a.app[IMAGE_CACHE].generation.read()
    backend.image = png(color=(1, 2, 3))
    deleted = await b.post("/cache/delete", json={"description": "pear", "width": 256, "height": 256,
                                                  "seed": 3}, headers=ADMIN)
    assert deleted.status == 200
    await eventually(lambda: a.app[IMAGE_CACHE].generation.read() != before)
    for client in (a, b):
        again = await client.get(image_url("pear"))
        assert again.status == 200
        assert await again.read() == backend.image  # the new image, not the deleted one
    assert len(backend.calls) == 2


@ON_EVERY_TOPOLOGY
async def test_a_backend_cooling_down_on_one_instance_cools_down_on_all(instances, backend):
    backend.mode = "error500"
    env = {"BACKEND_API_URLS": backend.url, "BREAKER_THRESHOLD": "1", "BREAKER_COOLDOWN": "60",
           "POLLINATIONS_FALLBACK": "false"}
    a, b = await instances(2, **env)
    assert (await a.get(image_url("down"))).status == 502
    assert len(backend.calls) == 1
    down = HealthKey("image", backend.url, "")
    await eventually(lambda: b.app[BREAKER].of(down).open_until > b.app[BREAKER].clock())
    failed = await b.get(image_url("down%20too"))
    assert failed.status == 502
    assert len(backend.calls) == 1  # b never called the backend it heard was down
    status = await (await b.get("/status", headers=ADMIN)).json()
    assert status["backends"][0]["state"] == "cooling_down"


async def test_a_model_cooling_down_on_one_instance_cools_down_only_that_model_on_all(instances, serve):
    from tests.support.litellm_fakes import FakeLiteLLM

    litellm = FakeLiteLLM(models={"dall-e-3": "ok", "flux": "error500"})
    await serve(litellm)
    url = f"{litellm.url}/v1"
    env = {"BACKEND_API_URLS": url, "IMAGE_MODEL": "dall-e-3", "MODEL_MAP": f'{{"{url}": {{"flux": "flux"}}}}',
           "BREAKER_THRESHOLD": "1", "BREAKER_COOLDOWN": "60", "POLLINATIONS_FALLBACK": "false"}
    a, b = await instances(2, **env)
    assert (await a.get(image_url("down", "model=flux"))).status == 502
    flux = HealthKey("image", url, "flux")
    await eventually(lambda: b.app[BREAKER].of(flux).open_until > b.app[BREAKER].clock())
    assert (await b.get(image_url("down%20too", "model=flux"))).status == 502
    assert (await b.get(image_url("fine"))).status == 200
    assert litellm.models_called("/v1/images/generations") == ["flux", "dall-e-3"]


async def test_status_shows_the_shared_store(instances, backend):
    (a,) = await instances(1, BACKEND_API_URLS=backend.url)
    body = await (await a.get("/status", headers=ADMIN)).json()
    cache = body["cache"]
    assert cache["store"] == "redis"
    assert cache["redis"]["state"] == "up"
    assert "warning" in cache  # the test server has no maxmemory: /status says so
    assert body["redis"]["state"] == "up" and body["redis"]["url"].startswith("redis://127.0.0.1:")
    assert "iris_redis_up 1.0" in await (await a.get("/metrics", headers=ADMIN)).text()


async def test_without_redis_url_the_store_is_local(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    body = await (await client.get("/status", headers=ADMIN)).json()
    assert body["cache"]["store"] == "diskcache"
    assert "redis" not in body["cache"] and body["redis"] is None
    assert "iris_redis_up" not in await (await client.get("/metrics", headers=ADMIN)).text()
