"""Real Redis for the scale-out tests.

Test modules load it with ``pytest_plugins = ["tests.support.redis_fixtures"]``.
``redis_url`` is ``IRIS_TEST_REDIS_URL`` (``.ci/run`` starts a server and sets it), else a
redis-server this session starts itself; with neither, the tests skip with the reason, except
under CI=true where they fail. Each test gets its own key prefix, so tests never see each
other's keys. ``RedisServer`` runs a private server a test may kill and restart.

``redis_topology`` is the Redis the ``instances`` share: the single server unless a test is
marked ``@ON_EVERY_TOPOLOGY``, which runs it on the single server, behind Sentinel (a master, a
replica, three sentinels) and on a three-node cluster, each started once per session."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from redis.asyncio.cluster import RedisCluster

from proxy.app import create_app
from proxy.config import load_settings
from tests.conftest import base_env
from tests.support.redis_fakes import RedisServer, answers
from tests.support.redis_topologies import ClusterSetup, SentinelSetup

NO_REDIS = ("no Redis for the scale-out tests: set IRIS_TEST_REDIS_URL=redis://127.0.0.1:PORT/0 or "
            "install redis-server (Debian: apt-get install redis-server); .ci/run does both")


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("IRIS_TEST_REDIS_URL")
    if given:
        if not answers(given):
            unavailable(f"IRIS_TEST_REDIS_URL={given} does not answer PING")
        yield given
        return
    if shutil.which("redis-server") is None:
        unavailable(NO_REDIS)
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


def topology_of(request: pytest.FixtureRequest) -> str:
    """The topology this test runs on (``ON_EVERY_TOPOLOGY``), else the single server."""
    callspec = getattr(request.node, "callspec", None)
    return str(callspec.params.get("redis_topology", "standalone")) if callspec else "standalone"


Setup = TypeVar("Setup", SentinelSetup, ClusterSetup)


def running(setup: Setup) -> Iterator[Setup]:
    """Started (skipped without redis-server and redis-cli), and stopped after."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        unavailable(NO_REDIS)
    try:
        yield setup.start()
    finally:
        setup.stop()


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSetup]:
    """A master, its replica and three sentinels for the session (tests must not move the master)."""
    yield from running(SentinelSetup(tmp_path_factory.mktemp("sentinel")))


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterSetup]:
    """A three-node cluster for the session (tests must not stop a node)."""
    yield from running(ClusterSetup(tmp_path_factory.mktemp("cluster")))


@pytest.fixture
def redis_topology(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment naming the Redis the instances share (parametrised by ``ON_EVERY_TOPOLOGY``)."""
    name = topology_of(request)
    if name == "sentinel":
        return {"REDIS_URL": request.getfixturevalue("redis_sentinel").url}
    if name == "cluster":
        return {"REDIS_URL": request.getfixturevalue("redis_cluster").url, "REDIS_CLUSTER": "true"}
    return {"REDIS_URL": request.getfixturevalue("redis_url")}


@pytest.fixture
async def redis_reader(redis_topology: dict[str, str], request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A plain redis-py client on the same Redis, to look at what Iris wrote (the master, behind
    Sentinel; any node of a cluster, which finds each key's node itself)."""
    name = topology_of(request)
    if name == "sentinel":
        client: Any = aioredis.Redis(host="127.0.0.1", port=request.getfixturevalue("redis_sentinel").master_port())
    elif name == "cluster":
        client = RedisCluster.from_url(redis_topology["REDIS_URL"].split(",")[0])
    else:
        client = aioredis.Redis.from_url(redis_topology["REDIS_URL"])
    yield client
    await client.aclose()


@pytest.fixture
def redis_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server this test alone uses, to kill and restart."""
    if shutil.which("redis-server") is None:
        unavailable(NO_REDIS)
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_sentinel(tmp_path: Path) -> Iterator[SentinelSetup]:
    """A master, a replica and three sentinels this test alone uses, to fail over."""
    yield from running(SentinelSetup(tmp_path / "sentinel"))


@pytest.fixture
def private_cluster(tmp_path: Path) -> Iterator[ClusterSetup]:
    """A three-node cluster this test alone uses, to kill a node of."""
    yield from running(ClusterSetup(tmp_path / "cluster"))


Instances = Callable[..., Awaitable[list[TestClient]]]


@pytest.fixture
async def instances(aiohttp_client: Any, tmp_path: Path, redis_topology: dict[str, str],
                    redis_prefix: str) -> Instances:
    """``await instances(2, **env)``: that many real apps, each with its own DATA_DIR, sharing
    one Redis (``REDIS_URL`` in ``env`` overrides the shared test server)."""

    async def start(count: int = 2, **env: str) -> list[TestClient]:
        where = {} if "REDIS_URL" in env else redis_topology
        env = {**where, "REDIS_PREFIX": redis_prefix, "REDIS_TIMEOUT": "0.5", "REDIS_RETRY_INTERVAL": "0.1",
               **env}
        apps = [create_app(load_settings(base_env(tmp_path / f"instance{i}", **env))) for i in range(count)]
        return [await aiohttp_client(app) for app in apps]

    return start
