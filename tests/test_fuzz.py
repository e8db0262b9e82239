"""A seeded run of hostile requests over every route (``tests/support/hostile.py``) against the real
server, its fast lane included, with real fake upstreams behind it: no answer may be a 5xx other
than 502/504, none may carry a secret, and nothing may log a traceback.

10,000 requests by default (``IRIS_FUZZ_REQUESTS``; ``IRIS_FUZZ_SEED`` to replay another run)."""

from __future__ import annotations

import asyncio
import logging
import os

import aiohttp
import pytest
from yarl import URL

from proxy.keys import SECRETS
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.support.account_helpers import add_profile
from tests.support.fakes import FakeImageBackend
from tests.support.hostile import Credentials, Hostile, HostileRequests
from tests.support.vision_fakes import FakeProvider

pytestmark = pytest.mark.slow
COUNT = int(os.environ.get("IRIS_FUZZ_REQUESTS", "10000"))
SEED = int(os.environ.get("IRIS_FUZZ_SEED", "20261205"))
BACKEND_TOKEN = "sk-backend-secret-0123456789"
PROVIDER_KEY = "sk-server-gemini-0123456789"
PROFILE_KEY = "fuzz-profile-key-0123456789"


async def send(session: aiohttp.ClientSession, base: URL, request: Hostile) -> tuple[int, bytes, str]:
    url = URL(str(base) + request.path.lstrip("/"), encoded=True)
    async with session.request(request.method, url, headers=request.headers, data=request.body,
                               allow_redirects=False) as resp:
        return resp.status, await resp.read(), "\n".join(f"{k}: {v}" for k, v in resp.headers.items())


async def send_raw(host: str, port: int, request: Hostile) -> tuple[int, bytes, str]:
    assert request.raw is not None
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request.raw)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
    return status, body, head.decode("latin-1")


async def test_hostile_requests_get_no_5xx_no_secret_and_no_traceback(iris, serve, caplog):
    caplog.set_level(logging.WARNING)
    backend = FakeImageBackend()
    await serve(backend)
    provider = FakeProvider(name="gemini")
    await serve(provider)
    providers = f'[{{"name": "gemini", "base_url": "{provider.url}/v1", "model": "m", "token": "{PROVIDER_KEY}"}}]'
    client = await iris(BACKEND_API_URLS=backend.url, AUTH_TOKEN=BACKEND_TOKEN, VISION_PROVIDERS=providers,
                        POLLINATIONS_FALLBACK="false", RATE_LIMIT_GENERATE="0", BLACKLIST_AUTO_FAILURES="0",
                        VISION_DEADLINE="5", REQUEST_DEADLINE="10")
    await add_profile(client, "alice", PROFILE_KEY)
    secrets = client.app[SECRETS]
    credentials = Credentials(ACCESS_KEY, ADMIN_TOKEN, PROFILE_KEY, others=secrets.signing_keys)
    forbidden = [*credentials.all(), BACKEND_TOKEN, PROVIDER_KEY]
    requests = HostileRequests(client.app, credentials, SEED)
    base = client.make_url("/")
    statuses: dict[int, int] = {}
    failures: list[str] = []
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as session:
        for index in range(COUNT):
            request = requests.request(index)
            try:
                if request.raw is not None:
                    status, body, head = await send_raw(client.host, client.port, request)
                else:
                    status, body, head = await send(session, base, request)
            except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                status, body, head = -1, b"", type(exc).__name__  # the server hung up: allowed, counted
            statuses[status] = statuses.get(status, 0) + 1
            text = body.decode("latin-1") + head
            if status >= 500 and status not in (502, 504):
                failures.append(f"#{index} {request.method} {request.path[:120]}: {status} {body[:200]!r}")
            if any(secret in text for secret in forbidden):
                failures.append(f"#{index} {request.method} {request.path[:120]}: a secret was echoed")
    tracebacks = [r.getMessage() for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert failures == [], f"seed {SEED}: {failures[:10]}"
    assert tracebacks == [], f"seed {SEED}: {tracebacks[:5]}"
    print(f"seed {SEED}: answers by status {sorted(statuses.items())}")
    assert sum(statuses.values()) == COUNT and statuses.get(200, 0) > 0 and statuses.get(400, 0) > 0
