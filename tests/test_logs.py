"""Logs carry one line a request and never a key or token."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator

import orjson
from aiohttp import ClientSession, web
from yarl import URL

from proxy.app import create_app
from proxy.config import Settings
from proxy.logs import AccessLog, AccessLogger, redact
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.test_serve import free_port, wait_up


def test_redact_hides_every_secret_parameter():
    assert redact("/prompt/a?key=abc&width=5") == "/prompt/a?key=***&width=5"
    assert redact("/x?width=5&key=abc") == "/x?width=5&key=***"
    assert redact("/x?authCode=zz&token=q") == "/x?authCode=***&token=***"
    assert redact("/prompt/monkey=1") == "/prompt/monkey=1"


@contextlib.asynccontextmanager
async def logged_server(settings: Settings, lines: list[str]) -> AsyncIterator[str]:
    """The real app with the access log the server uses, on a real port, its lines written into
    ``lines`` (all of them by the end); yields its base URL."""
    access = AccessLog("text", lines.append)
    runner = web.AppRunner(create_app(settings), access_log_class=AccessLogger, access_log=access)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
        access.close()


async def test_access_log_and_app_logs_never_show_secrets(settings_for, backend, caplog):
    settings = settings_for(BACKEND_API_URLS=backend.url, AUTH_TOKEN="sk-BACKEND-SECRET")
    caplog.set_level(logging.DEBUG)
    written: list[str] = []
    async with logged_server(settings, written) as base, ClientSession() as session:
        for path in (f"/prompt/hello?key={ACCESS_KEY}", "/prompt/hello?key=wrong-guess-key",
                     f"/prompt/%zz?key={ACCESS_KEY}"):
            async with session.get(f"{base}{path}") as resp:
                await resp.read()
        async with session.get(f"{base}/status", headers={"X-Admin-Token": ADMIN_TOKEN}):
            pass
    access = "".join(written).splitlines()
    text = caplog.text + "\n".join(access)
    assert len(access) == 4
    assert "key=***" in text
    for secret in (ACCESS_KEY, ADMIN_TOKEN, "sk-BACKEND-SECRET", "wrong-guess-key"):
        assert secret not in text


def test_redact_reads_parameter_names_as_a_server_decodes_them():
    assert redact("/prompt/a?%6bey=SECRET&width=5") == "/prompt/a?%6bey=***&width=5"
    assert redact("/prompt/a?width=5;key=SECRET") == "/prompt/a?width=5;key=***"
    assert redact("/prompt/a?KEY=SECRET&k%65y=SECRET2&key+=SECRET3") == "/prompt/a?KEY=***&k%65y=***&key+=***"
    assert redact("/x?AUTHCODE=SECRET&%74oken=SECRET") == "/x?AUTHCODE=***&%74oken=***"
    assert redact("/%61uth-SECRET") == "/auth-***"
    assert redact("/prompt/a?keys=1&monkey=2&key") == "/prompt/a?keys=1&monkey=2&key"
    assert redact("/prompt/a?x=%6bey=1") == "/prompt/a?x=%6bey=1"


async def test_the_access_log_hides_a_key_however_it_is_spelled(settings_for, backend, caplog):
    caplog.set_level(logging.INFO)
    written: list[str] = []
    async with logged_server(settings_for(BACKEND_API_URLS=backend.url), written) as base, \
            ClientSession() as session:
        for method, path in (("GET", f"/prompt/hello?%6bey={ACCESS_KEY}"),
                             ("GET", f"/prompt/hello?seed=1;key={ACCESS_KEY}"),
                             ("POST", f"/%61uth-{ACCESS_KEY}")):
            async with session.request(method, URL(f"{base}{path}", encoded=True)) as resp:  # sent as written
                await resp.read()
    access = "".join(written).splitlines()
    assert len(access) == 3
    assert ACCESS_KEY not in caplog.text + "".join(written)
    assert "%6bey=***" in access[0] and "key=***" in access[1] and "/auth-***" in access[2]


async def test_access_lines_are_written_together_and_read_as_before(settings_for, backend):
    writes: list[str] = []
    async with logged_server(settings_for(BACKEND_API_URLS=backend.url), writes) as base, ClientSession() as session:
        for n in range(30):
            async with session.get(f"{base}/status?n={n}") as resp:
                await resp.read()
        await asyncio.sleep(0.3)  # a batch is written within ``every`` (0.1 s)
        batched = len(writes)
    lines = "".join(writes).splitlines()
    assert len(lines) == 30 and batched < 10  # thirty requests, a few writes
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO proxy\.access \[(\S+)\]: \1 127\.0\.0\.1 "
                        r"GET /status\?n=0 200 \d+ [\d.]+ms", lines[0]), lines[0]


async def logged_lines(tmp_path, queries: list[str], *, wait: float = 0.0, **env: str) -> list[dict]:
    """The JSON lines a one-worker server wrote to stderr, up to its stop, after a GET /status?QUERY
    for each query (and ``wait`` seconds)."""
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": str(port), "WORKERS": "1",
           "DATA_DIR": str(tmp_path / "data"), "POLLINATIONS_URL": "http://127.0.0.1:9", "LOG_FORMAT": "json",
           **env}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "proxy", "serve", env=env, cwd=tmp_path,
                                                stderr=asyncio.subprocess.PIPE)
    await wait_up(f"http://127.0.0.1:{port}/healthz", proc)
    async with ClientSession() as session:
        for query in queries:
            async with session.get(f"http://127.0.0.1:{port}/status?{query}") as resp:
                await resp.read()
    await asyncio.sleep(wait)
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    return [orjson.loads(line) for line in err.decode().splitlines() if line.startswith("{")]


async def test_the_last_lines_are_written_when_the_server_stops(tmp_path):
    # nothing is written before the stop; SIGTERM at once: every line is still waiting for its batch
    logged = await logged_lines(tmp_path, [f"last={n}" for n in range(40)], ACCESS_LOG_INTERVAL="60")
    paths = [line["path"] for line in logged if line["logger"] == "proxy.access" and "last=" in line["path"]]
    assert paths == [f"/status?last={n}" for n in range(40)]


async def test_access_lines_are_info_lines_that_a_higher_log_level_leaves_out(tmp_path):
    # ACCESS_LOG is on by default; a batch would be written within ACCESS_LOG_INTERVAL (0.1 s)
    logged = await logged_lines(tmp_path, [f"n={n}" for n in range(5)], wait=0.3, LOG_LEVEL="WARNING")
    assert [line for line in logged if line["logger"] == "proxy.access"] == []
    assert all(line["level"] in ("WARNING", "ERROR") for line in logged)
