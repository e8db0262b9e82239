"""A clean stop: on SIGTERM ``/readyz`` answers 503 at once, the requests in flight finish (within
SHUTDOWN_GRACE), then new connections are refused and the process exits 0, each step logged. A
request that outlives the grace is cut, and the process still exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import ACCESS_KEY
from tests.support.fakes import FakeImageBackend
from tests.support.redis_fakes import eventually
from tests.test_serve import free_port, wait_up

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


async def start(tmp_path: Path, backend: FakeImageBackend, **env: str) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": str(port), "DATA_DIR": str(tmp_path / "data"),
               "PROXY_ACCESS_KEY": ACCESS_KEY, "BACKEND_API_URLS": backend.url, "POLLINATIONS_FALLBACK": "false",
               "LOG_LEVEL": "INFO", "ACCESS_LOG": "false", **env}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "proxy", "serve", cwd=REPO, env=environ,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    await wait_up(f"{base}/readyz", proc)
    return proc, base



@pytest.mark.parametrize("workers", ["1", "2"])
async def test_sigterm_drains_the_requests_in_flight_then_refuses_then_exits_0(tmp_path, serve, workers):
    backend = FakeImageBackend(delay=1.5)
    await serve(backend)
    proc, base = await start(tmp_path, backend, WORKERS=workers, SHUTDOWN_GRACE="20")
    async with aiohttp.ClientSession() as session:
        slow = asyncio.create_task(session.get(f"{base}/prompt/slow?key={ACCESS_KEY}"))
        await eventually(lambda: backend.in_flight > 0)  # the miss reached the backend: in flight in Iris
        proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        async with session.get(f"{base}/readyz") as ready:  # the listener is still open meanwhile
            body = await ready.json()
        assert ready.status == 503 and body["checks"]["shutdown"] == "draining"
        answer = await slow
        assert answer.status == 200 and answer.headers["X-Cache"] == "MISS" and await answer.read() == backend.image
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"{base}/healthz")
    assert proc.stderr is not None
    log = (await proc.stderr.read()).decode()
    assert "/readyz answers 503" in log and "no request in flight; closing the listener" in log
    assert "stopped" in log and "Traceback" not in log


async def test_a_request_that_outlives_the_grace_is_cut_and_the_stop_stays_clean(tmp_path, serve):
    backend = FakeImageBackend(delay=30.0)
    await serve(backend)
    proc, base = await start(tmp_path, backend, WORKERS="1", SHUTDOWN_GRACE="0.5", REQUEST_DEADLINE="60")
    async with aiohttp.ClientSession() as session:
        stuck = asyncio.create_task(session.get(f"{base}/prompt/stuck?key={ACCESS_KEY}"))
        await eventually(lambda: backend.in_flight > 0)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
        with pytest.raises(aiohttp.ClientError):
            await stuck
    assert proc.stderr is not None
    log = (await proc.stderr.read()).decode()
    assert "SHUTDOWN_GRACE is over with 1 request(s) still in flight" in log and "Traceback" not in log
