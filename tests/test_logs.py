"""Logs carry one line a request and never a key or token."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import ClientSession, web
from yarl import URL

from proxy.app import create_app
from proxy.config import Settings
from proxy.logs import AccessLogger, redact
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN


def test_redact_hides_every_secret_parameter():
    assert redact("/prompt/a?key=abc&width=5") == "/prompt/a?key=***&width=5"
    assert redact("/x?width=5&key=abc") == "/x?width=5&key=***"
    assert redact("/x?authCode=zz&token=q") == "/x?authCode=***&token=***"
    assert redact("/prompt/monkey=1") == "/prompt/monkey=1"


@contextlib.asynccontextmanager
async def logged_server(settings: Settings) -> AsyncIterator[str]:
    """The real app with the access logger the server uses, on a real port; yields its base URL."""
    runner = web.AppRunner(create_app(settings), access_log_class=AccessLogger,
                           access_log=logging.getLogger("proxy.access"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_access_log_and_app_logs_never_show_secrets(settings_for, backend, caplog):
    settings = settings_for(BACKEND_API_URLS=backend.url, AUTH_TOKEN="sk-BACKEND-SECRET")
    caplog.set_level(logging.DEBUG)
    async with logged_server(settings) as base, ClientSession() as session:
        for path in (f"/prompt/hello?key={ACCESS_KEY}", "/prompt/hello?key=wrong-guess-key",
                     f"/prompt/%zz?key={ACCESS_KEY}"):
            async with session.get(f"{base}{path}") as resp:
                await resp.read()
        async with session.get(f"{base}/status", headers={"X-Admin-Token": ADMIN_TOKEN}):
            pass
    text = caplog.text
    access = [r for r in caplog.records if r.name == "proxy.access"]
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
    async with logged_server(settings_for(BACKEND_API_URLS=backend.url)) as base, ClientSession() as session:
        for method, path in (("GET", f"/prompt/hello?%6bey={ACCESS_KEY}"),
                             ("GET", f"/prompt/hello?seed=1;key={ACCESS_KEY}"),
                             ("POST", f"/%61uth-{ACCESS_KEY}")):
            async with session.request(method, URL(f"{base}{path}", encoded=True)) as resp:  # sent as written
                await resp.read()
    access = [r.getMessage() for r in caplog.records if r.name == "proxy.access"]
    assert len(access) == 3
    assert ACCESS_KEY not in caplog.text
    assert "%6bey=***" in access[0] and "key=***" in access[1] and "/auth-***" in access[2]
