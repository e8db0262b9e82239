"""Redis as operators run it: behind Sentinel, where Iris follows the master through a failover
without a restart and loses no cached image, and as a cluster, whose statistics /status and
/metrics sum over the nodes and whose lost node degrades Iris to its local twins until it is back.
The scenarios every feature shares (hits, deletes, single flight, cool-downs, limits, sessions,
the blacklist signal, dedup) run on every topology in test_redis_cache and test_redis_security."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from proxy.config import load_settings
from proxy.errors import ConfigError
from proxy.keys import FLIGHT, SHARED
from proxy.redis.topology.registry import open_topology
from proxy.redis.topology.sentinel import SentinelTopology
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.support.redis_fakes import a_delete_is_heard, eventually, free_port
from tests.support.redis_topologies import HOST

pytest_plugins = ["tests.support.redis_fixtures"]
ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


def image_url(prompt: str) -> str:
    return f"/prompt/{prompt}?key={ACCESS_KEY}&width=256&height=256"


class Traffic:
    """Image misses sent to the instances in turn until stopped: every answer's status, and the
    cache key of every image an instance made (and so wrote to the cache)."""

    def __init__(self, clients, name: str):
        self.clients = clients
        self.name = name
        self.statuses: list[int] = []
        self.made: list[str] = []
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            resp = await self.clients[n % len(self.clients)].get(image_url(f"{self.name}{n}"))
            self.statuses.append(resp.status)
            if resp.status == 200 and resp.headers["X-Cache"] == "MISS":
                self.made.append(resp.headers["ETag"].strip('"'))
            await asyncio.sleep(0.005)

    async def end(self) -> None:
        self.stop.set()
        await self.task


async def missing_on(port: int, prefix: str, keys: list[str], *, cluster: bool = False) -> list[str]:
    server = aioredis.RedisCluster(host=HOST, port=port) if cluster else aioredis.Redis(host=HOST, port=port)
    try:
        return [key for key in keys if not await server.exists(f"{prefix}img:{key}")]
    finally:
        await server.aclose()


async def until_none_missing(port: int, prefix: str, keys: list[str], within: float = 10.0, *,
                             cluster: bool = False) -> None:
    deadline = time.monotonic() + within
    while missing := await missing_on(port, prefix, keys, cluster=cluster):
        assert time.monotonic() < deadline, f"{len(missing)} of {len(keys)} cached images lost: {missing[:5]}"
        await asyncio.sleep(0.1)


@pytest.mark.redis
async def test_a_planned_failover_loses_no_cached_image(instances, private_sentinel, redis_sentinel, backend,
                                                        redis_prefix):
    sentinel = private_sentinel
    a, b = await instances(2, REDIS_URL=sentinel.url, BACKEND_API_URLS=backend.url, CACHE_MEMORY_BYTES="0",
                           RATE_LIMIT_GENERATE="0")  # a miss every few ms: not what the limit is for
    before = [(await a.get(image_url(f"before{i}"))).headers["ETag"].strip('"') for i in range(5)]
    traffic = Traffic([a, b], "during")
    await asyncio.sleep(0.5)
    old = await asyncio.to_thread(sentinel.failover)
    await eventually(lambda: a.app[SHARED].topology.switches == 1 and b.app[SHARED].topology.switches == 1,
                     within=15)
    await asyncio.sleep(0.5)  # traffic goes on, on the new master
    await traffic.end()
    new = await asyncio.to_thread(sentinel.master_port)
    assert new != old
    assert set(traffic.statuses) == {200} and len(traffic.made) > 5
    # every image Iris cached, before the switch, while the old master still took writes, and after
    await until_none_missing(new, redis_prefix, before + traffic.made)

    # Iris follows the new master without a restart: hits, new images and signals are shared again
    calls = len(backend.calls)
    assert [(await b.get(image_url(f"before{i}"))).headers["X-Cache"] for i in range(5)] == ["HIT"] * 5
    assert (await a.get(image_url("after"))).headers["X-Cache"] == "MISS"
    await asyncio.gather(*a.app[FLIGHT].tasks)  # answered before its store write: wait for the write
    assert (await b.get(image_url("after"))).headers["X-Cache"] == "HIT"
    assert len(backend.calls) == calls + 1
    assert await missing_on(new, redis_prefix, [(await a.get(image_url("after"))).headers["ETag"].strip('"')]) == []
    await a_delete_is_heard(b, a, "after")  # signals flow again
    status = await (await a.get("/status", headers=ADMIN)).json()
    assert status["redis"]["topology"] == "sentinel" and status["redis"]["master"] == f"{HOST}:{new}"
    assert status["redis"]["master_moves"] == 1 and status["redis"]["state"] == "up"

    # the newest configuration wins over the first sentinel to answer: here one of another group
    # that knows a master under the same name at an older epoch (as a sentinel that has not heard
    # of the failover yet would)
    stale_first = [*redis_sentinel.sentinels, *sentinel.sentinels]
    url = f"redis+sentinel://{','.join(f'{HOST}:{port}' for port in stale_first)}/iris/0"
    topology = SentinelTopology(load_settings({"REDIS_URL": url}).redis)
    try:
        assert await topology.sentinel.discover_master("iris") == (HOST, new)
    finally:
        await topology.close()


@pytest.mark.redis
async def test_a_killed_master_fails_no_request_and_loses_no_cached_image(instances, private_sentinel, backend,
                                                                         redis_prefix):
    sentinel = private_sentinel
    a, b = await instances(2, REDIS_URL=sentinel.url, BACKEND_API_URLS=backend.url, CACHE_MEMORY_BYTES="0",
                           RATE_LIMIT_GENERATE="0")
    before = [(await a.get(image_url(f"before{i}"))).headers["ETag"].strip('"') for i in range(5)]
    traffic = Traffic([a, b], "during")
    await asyncio.sleep(0.3)
    old = sentinel.master
    await asyncio.to_thread(sentinel.procs.kill, old)
    await eventually(lambda: not a.app[SHARED].health.up)
    await eventually(lambda: a.app[SHARED].health.up and b.app[SHARED].health.up
                     and a.app[SHARED].topology.switches == 1 and b.app[SHARED].topology.switches == 1,
                     within=20)
    await asyncio.sleep(0.3)
    await traffic.end()
    assert set(traffic.statuses) == {200} and traffic.made
    new = await asyncio.to_thread(sentinel.master_port)
    assert new == sentinel.replica
    # the images confirmed before the kill were on the replica; those made while Redis was out
    # (cached locally meanwhile) were written to the new master once it answered
    await until_none_missing(new, redis_prefix, before + traffic.made)
    assert [(await b.get(image_url(f"before{i}"))).headers["X-Cache"] for i in range(5)] == ["HIT"] * 5
    assert (await a.get(image_url("after"))).headers["X-Cache"] == "MISS"
    await asyncio.gather(*a.app[FLIGHT].tasks)  # answered before its store write: wait for the write
    assert (await b.get(image_url("after"))).headers["X-Cache"] == "HIT"


async def until_still(nodes: list[aioredis.Redis], still: float = 1.5, within: float = 10.0) -> None:
    """Until the nodes' key counts have not moved for ``still`` seconds: past the dashboard's notes,
    written in a batch just after the answers, and the flights' done marks, which live a second."""
    loop = asyncio.get_running_loop()
    deadline, last, since = loop.time() + within, None, loop.time()
    while loop.time() < deadline:
        counts = [await node.dbsize() for node in nodes]
        if counts != last:
            last, since = counts, loop.time()
        elif loop.time() - since >= still:
            return
        await asyncio.sleep(0.1)


@pytest.mark.redis
async def test_status_and_metrics_sum_the_cluster_nodes(instances, backend, redis_cluster):
    (a,) = await instances(1, REDIS_URL=redis_cluster.url, REDIS_CLUSTER="true", BACKEND_API_URLS=backend.url)
    for i in range(12):
        assert (await a.get(image_url(f"spread{i}"))).status == 200
    nodes = [aioredis.Redis(host=HOST, port=port) for port in redis_cluster.ports]
    try:
        for node in nodes:
            await node.config_set("maxmemory", "64mb")
            await node.config_set("maxmemory-policy", "volatile-lru")
        await until_still(nodes)
        cache = (await (await a.get("/status", headers=ADMIN)).json())["cache"]
        counts = [await node.dbsize() for node in nodes]
        metrics = await (await a.get("/metrics", headers=ADMIN)).text()
    finally:
        for node in nodes:
            await node.config_set("maxmemory", "0")
            await node.config_set("maxmemory-policy", "noeviction")
            await node.aclose()
    assert all(counts) and cache["keys"] == sum(counts)  # each node holds some; the sum is shown
    assert sorted(row["keys"] for row in cache["nodes"]) == sorted(counts)
    assert cache["bytes"] == sum(row["bytes"] for row in cache["nodes"]) > max(row["bytes"] for row in cache["nodes"])
    assert cache["size_limit"] == 3 * 64 * 1024 * 1024 and cache["eviction_policy"] == "volatile-lru"
    assert "warning" not in cache
    assert f"iris_cache_entries {float(sum(counts))}" in metrics
    assert "iris_redis_up 1.0" in metrics
    status = await (await a.get("/status", headers=ADMIN)).json()
    assert status["redis"]["topology"] == "cluster" and len(status["redis"]["primaries"]) == 3
    assert "on 127.0.0.1:" in status["cache"]["warning"]  # no bound now: the nodes are named


@pytest.mark.redis
async def test_a_lost_cluster_node_degrades_to_local_and_sharing_resumes(instances, private_cluster, backend,
                                                                          redis_prefix):
    cluster = private_cluster
    a, b = await instances(2, REDIS_URL=cluster.url, REDIS_CLUSTER="true", BACKEND_API_URLS=backend.url,
                           CACHE_MEMORY_BYTES="0", RATE_LIMIT_GENERATE="0")
    assert (await a.get(image_url("before"))).headers["X-Cache"] == "MISS"
    assert (await b.get(image_url("before"))).headers["X-Cache"] == "HIT"
    traffic = Traffic([a, b], "during")
    await asyncio.sleep(0.2)
    lost = cluster.ports[1]
    await asyncio.to_thread(cluster.procs.kill, lost)
    await eventually(lambda: not a.app[SHARED].health.up and not b.app[SHARED].health.up, within=10)
    down = len(traffic.made)  # the lost node kept nothing (no persistence): images made before are gone
    status = await (await a.get("/status", headers=ADMIN)).json()
    assert status["redis"]["state"] == "down" and status["cache"]["store"] == "diskcache"
    await asyncio.sleep(0.3)
    await asyncio.to_thread(cluster.procs.restart, lost)
    await eventually(lambda: a.app[SHARED].health.up and b.app[SHARED].health.up, within=20)
    await asyncio.sleep(0.2)
    await traffic.end()
    assert set(traffic.statuses) == {200} and traffic.made[down:]
    # the images made while a node was out (cached locally meanwhile) are written to the cluster
    # once it is back, before the store is used again: wait until every one is there
    await until_none_missing(cluster.ports[0], redis_prefix, traffic.made[down:], within=20, cluster=True)
    assert (await a.get(image_url("after"))).headers["X-Cache"] == "MISS"
    await asyncio.gather(*a.app[FLIGHT].tasks)  # answered before its store write: wait for the write
    assert (await b.get(image_url("after"))).headers["X-Cache"] == "HIT"  # shared again
    await a_delete_is_heard(b, a, "after")  # signals flow again


@pytest.mark.redis
async def test_a_master_without_replicas_costs_one_wait_a_second_not_one_a_write(redis_url, redis_prefix):
    settings = load_settings({"REDIS_URL": redis_url, "REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT": "0.2"}).redis
    topology = open_topology(settings)  # one server: no replica will ever confirm
    try:
        started = time.monotonic()
        confirmed = [await topology.write([(f"{redis_prefix}k{i}", b"v", 60_000)]) for i in range(8)]
        took = time.monotonic() - started
        assert await topology.client.get(f"{redis_prefix}k7") == b"v"
    finally:
        await topology.close()
    assert confirmed == [False] * 8  # each one kept to be written again after a failover
    assert 0.2 <= took < 0.6  # the first write waited for a replica; the next ones did not


@pytest.mark.redis
async def test_discovering_the_master_at_once_from_many_tasks_keeps_every_sentinel(redis_sentinel):
    """A sentinel that does not answer comes first (redis-py's own discovery then moves the next one
    to the front of its list, by index, across awaits)."""
    hosts = [f"{HOST}:{free_port()}", *(f"{HOST}:{port}" for port in redis_sentinel.sentinels)]
    topology = SentinelTopology(load_settings({"REDIS_URL": f"redis+sentinel://{','.join(hosts)}/iris/0"}).redis)
    clients = list(topology.sentinel.sentinels)
    try:
        found = await asyncio.gather(*(topology.sentinel.discover_master("iris") for _ in range(20)))
        assert {port for _, port in found} == {redis_sentinel.master}
        assert sorted(map(id, topology.sentinel.sentinels)) == sorted(map(id, clients))  # none lost, none twice
    finally:
        await topology.close()


def test_sentinel_and_cluster_settings():
    cfg = load_settings({"REDIS_URL": "redis+sentinel://:s3cr%40t@h1:26379,[::1]:26380,h3/mymaster/2"
                                      "?sentinel_password=sentinel-pw"}).redis
    assert (cfg.topology, cfg.service, cfg.db) == ("sentinel", "mymaster", 2)
    assert cfg.nodes == (("h1", 26379), ("::1", 26380), ("h3", 26379))
    assert (cfg.password, cfg.sentinel_password, cfg.wait_replicas) == ("s3cr@t", "sentinel-pw", 1)
    assert cfg.public_url == "redis+sentinel://h1:26379,[::1]:26380,h3:26379/mymaster/2"
    assert "s3cr" not in repr(cfg) and "sentinel-pw" not in repr(cfg)
    assert load_settings({"REDIS_URL": "rediss+sentinel://h/svc"}).redis.tls is True
    cluster = load_settings({"REDIS_URL": "redis://:pw@a:7000, b:7001,c", "REDIS_CLUSTER": "true"}).redis
    assert (cluster.topology, cluster.password, cluster.wait_replicas) == ("cluster", "pw", 0)
    assert cluster.nodes == (("a", 7000), ("b", 7001), ("c", 6379))
    assert cluster.public_url == "redis://a:7000,b:7001,c:6379"
    for env, variable in [
        ({"REDIS_URL": "redis+sentinel://h1:26379"}, "REDIS_URL"),  # no service
        ({"REDIS_URL": "redis+sentinel://h1:port/svc"}, "REDIS_URL"),
        ({"REDIS_URL": "redis+sentinel://h1/svc/zero"}, "REDIS_URL"),
        ({"REDIS_URL": "redis+sentinel://h1/svc?sentinel_pasword=x"}, "REDIS_URL"),  # a typo is not ignored
        ({"REDIS_URL": "redis://a:7000,b:7001"}, "REDIS_URL"),  # several hosts, no REDIS_CLUSTER
        ({"REDIS_URL": "redis://a:7000/1", "REDIS_CLUSTER": "true"}, "REDIS_URL"),  # a cluster has db 0 only
        ({"REDIS_URL": "redis+sentinel://h/svc", "REDIS_CLUSTER": "true"}, "REDIS_URL"),
        ({"REDIS_CLUSTER": "true"}, "REDIS_CLUSTER"),
        ({"REDIS_URL": "redis://a", "REDIS_CLUSTER": "true", "REDIS_WAIT_REPLICAS": "1"}, "REDIS_WAIT_REPLICAS"),
        ({"REDIS_URL": "redis+sentinel://h/svc", "REDIS_WAIT_TIMEOUT": "1"}, "REDIS_WAIT_TIMEOUT"),
    ]:
        with pytest.raises(ConfigError) as caught:
            load_settings(env)
        assert caught.value.variable == variable, env
