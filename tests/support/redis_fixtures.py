"""Real Redis for the scale-out tests.

Test modules load it with ``pytest_plugins = ["tests.support.redis_fixtures"]``.
``redis_url`` is ``IRIS_TEST_REDIS_URL`` (``.ci/run`` starts a server and sets it), else a
redis-server this session starts itself; with neither, the tests skip with the reason, except
under CI=true where they fail. Each test gets its own key prefix, so tests never see each
other's keys. ``RedisServer`` runs a private server a test may kill and restart."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from proxy.app import create_app
from proxy.config import load_settings
from tests.conftest import base_env
from tests.support.redis_fakes import RedisServer, answers

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


Instances = Callable[..., Awaitable[list[TestClient]]]


@pytest.fixture
async def instances(aiohttp_client: Any, tmp_path: Path, redis_url: str, redis_prefix: str) -> Instances:
    """``await instances(2, **env)``: that many real apps, each with its own DATA_DIR, sharing
    one Redis (``REDIS_URL`` in ``env`` overrides the shared test server)."""

    async def start(count: int = 2, **env: str) -> list[TestClient]:
        env = {"REDIS_URL": redis_url, "REDIS_PREFIX": redis_prefix, "REDIS_TIMEOUT": "0.5",
               "REDIS_RETRY_INTERVAL": "0.1", **env}
        apps = [create_app(load_settings(base_env(tmp_path / f"instance{i}", **env))) for i in range(count)]
        return [await aiohttp_client(app) for app in apps]

    return start
