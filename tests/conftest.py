"""Shared fixtures: settings over a temp DATA_DIR, fake upstreams as real servers, the real app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from proxy.app import create_app
from proxy.config import Settings, load_settings
from proxy.imagegen.lane import FastLaneRunner
from tests.support.fakes import FakeImageBackend, FakeLLM, FakePollinations

ACCESS_KEY = "test-access-key-0123456789"
ADMIN_TOKEN = "test-admin-token-0123456789"


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {"DATA_DIR": str(data_dir), "PROXY_ACCESS_KEY": ACCESS_KEY, "ADMIN_TOKEN": ADMIN_TOKEN,
           "WORKERS": "1", "LOG_LEVEL": "WARNING", "POLLINATIONS_URL": "http://127.0.0.1:9",
           "SAFETY_CHECK": "off"}  # loading its model costs a third of a second: its tests turn it on
    env.update(extra)
    return env


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def serve(aiohttp_server: Any) -> Callable[[Any], Awaitable[TestServer]]:
    """Start a fake (anything with ``.app()``) on 127.0.0.1; sets ``fake.base`` when it has one."""

    async def start(fake: Any) -> TestServer:
        server = await aiohttp_server(fake.app())
        base = str(server.make_url("")).rstrip("/")
        if hasattr(fake, "base"):
            fake.base = base
        fake.url = base
        return server

    return start


@pytest.fixture
async def backend(serve: Any) -> FakeImageBackend:
    fake = FakeImageBackend()
    await serve(fake)
    return fake


@pytest.fixture
async def llm(serve: Any) -> FakeLLM:
    fake = FakeLLM()
    await serve(fake)
    return fake


@pytest.fixture
async def pollinations(serve: Any) -> FakePollinations:
    fake = FakePollinations()
    await serve(fake)
    return fake


@pytest.fixture
def settings_for(data_dir: Path) -> Callable[..., Settings]:
    def make(**env: str) -> Settings:
        return load_settings(base_env(data_dir, **env))

    return make


class IrisTestServer(TestServer):
    """The app behind the runner ``python -m proxy serve`` uses: the image fast lane in front."""

    async def _make_runner(self, **kwargs: Any) -> FastLaneRunner:
        return FastLaneRunner(self.app, **kwargs)


@pytest.fixture
async def iris(aiohttp_client: Any, settings_for: Callable[..., Settings]) -> Callable[..., Awaitable[TestClient]]:
    """``await iris(BACKEND_API_URLS=..., ...)``: the real app on a real port, as a test client."""

    async def start(**env: str) -> TestClient:
        return await aiohttp_client(IrisTestServer(create_app(settings_for(**env))))

    return start
