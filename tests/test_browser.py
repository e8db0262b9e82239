"""The pages in a real headless Chromium: a cross-origin <img>, the playground, the dashboard.

Screenshots (laptop and phone width) are saved under tests/screenshots/."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from aiohttp import web

from proxy.keys import IMAGE_CACHE, RECENT
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.support.browser_fakes import (
    LAPTOP,
    PHONE,
    SCREENSHOTS,
    Browser,
    PaintingBackend,
    chromium_path,
    on_ci,
)

pytestmark = pytest.mark.browser


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    if executable is None:
        if on_ci():
            pytest.fail("CI=true but chromium is not installed: the browser tests must run")
        pytest.skip("chromium is not installed (apt-get install chromium); browser tests skipped")
    started = await Browser.start(executable)
    yield started
    await started.close()


@pytest.fixture
async def painter(serve) -> PaintingBackend:
    fake = PaintingBackend()
    await serve(fake)
    return fake


async def shots(page, name: str) -> None:
    for size, label in ((LAPTOP, "laptop"), (PHONE, "phone")):
        await page.viewport(size)
        await page.js("new Promise(r => requestAnimationFrame(() => setTimeout(r, 150)))")
        await page.screenshot(SCREENSHOTS / f"{name}-{label}.png")
    await page.viewport(LAPTOP)


async def test_an_img_on_another_origin_renders(browser, iris, painter, aiohttp_server):
    client = await iris(BACKEND_API_URLS=painter.url)
    base = str(client.make_url("")).rstrip("/")
    good = f"{base}/prompt/{quote('a red apple')}?key={ACCESS_KEY}&width=320&height=240&seed=7"
    bad = f"{base}/prompt/{quote('a red apple')}?key=wrong-key"

    async def page(_: web.Request) -> web.Response:
        html = (f'<!doctype html><title>blog</title><h1>My blog</h1><img id="good" src="{good}">'
                f'<img id="bad" src="{bad}">')
        return web.Response(text=html, content_type="text/html")

    other = web.Application()
    other.router.add_get("/", page)
    site = await aiohttp_server(other)
    assert site.port != client.port
    tab = await browser.new_page()
    await tab.goto(str(site.make_url("/")))
    await tab.wait("['good', 'bad'].every(id => document.getElementById(id).complete)")
    assert await tab.js("document.getElementById('good').naturalWidth") == 320
    assert await tab.js("document.getElementById('good').naturalHeight") == 240
    assert await tab.js("document.getElementById('bad').naturalWidth") == 0
    assert len(painter.calls) == 1


async def test_playground_makes_an_image_and_a_snippet(browser, iris, painter):
    client = await iris(BACKEND_API_URLS=painter.url)
    base = str(client.make_url("")).rstrip("/")
    tab = await browser.new_page()
    await tab.goto(f"{base}/")
    await tab.js("document.getElementById('key').value = 'not-the-key';"
                 "document.getElementById('prompt').value = 'a lighthouse at dusk';"
                 "document.getElementById('go').click()")
    error = await tab.wait("!document.getElementById('error').hidden && document.getElementById('error').textContent")
    assert "access key was refused" in error and "not valid" in error
    assert await tab.js("document.getElementById('image').hidden") is True

    await tab.js(f"document.getElementById('key').value = '{ACCESS_KEY}';"
                 "document.getElementById('width').value = '768'; document.getElementById('height').value = '512';"
                 "document.getElementById('go').click()")
    assert await tab.wait("!document.getElementById('image').hidden && document.getElementById('image').naturalWidth") == 768
    snippet = await tab.wait("!document.getElementById('snippetbox').hidden && "
                             "document.getElementById('snippet').textContent")
    assert snippet.startswith(f'<img src="{base}/prompt/a%20lighthouse%20at%20dusk?width=768&amp;height=512')
    assert "&amp;sig=" in snippet and ACCESS_KEY not in snippet  # signed by the server, no key in it
    src = snippet.split('src="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert (await client.get(src[len(base):])).status == 200  # works without any key
    assert await tab.js("localStorage.getItem('iris.accessKey')") == ACCESS_KEY
    assert ACCESS_KEY not in await tab.js("document.documentElement.outerHTML.replace(/value=\"[^\"]*\"/g, '')")
    assert painter.calls[-1]["size"] == "768x512"
    await shots(tab, "playground")
    await tab.goto(f"{base}/docs")
    await shots(tab, "docs")
    assert tab.console == []


async def test_dashboard_logs_in_shows_backends_and_deletes_an_entry(browser, iris, painter):
    client = await iris(BACKEND_API_URLS=painter.url)
    prompts = ["a red apple on a table", "mountains under snow", "a quiet harbour at night",
               "a field of sunflowers", "an old tram in the rain", "a desert road at noon"]
    for prompt in prompts:
        resp = await client.get(f"/prompt/{quote(prompt)}?key={ACCESS_KEY}&width=512&height=512")
        assert resp.status == 200
    for _ in range(200):  # the gallery's notes are written in a batch a moment after the answers
        if len(await client.app[RECENT].latest(len(prompts))) == len(prompts):
            break
        await asyncio.sleep(0.05)
    base = str(client.make_url("")).rstrip("/")
    tab = await browser.new_page()
    await tab.goto(f"{base}/admin")
    await shots(tab, "login")
    await tab.js(f"document.getElementById('token').value = '{ADMIN_TOKEN}';"
                 "document.querySelector('form[action=\"/admin/login\"] button').click()")
    await tab.wait("document.getElementById('backends') !== null")
    assert await tab.js("document.cookie") == ""  # HttpOnly: scripts cannot read the session
    table = await tab.js("document.getElementById('backends').textContent")
    assert painter.url.split("//")[1] in table and "healthy" in table
    await tab.wait(f"document.querySelectorAll('.gallery .shot').length === {len(prompts)}")
    await tab.wait("[...document.querySelectorAll('.gallery img')].every(i => i.complete && i.naturalWidth > 0)")
    await shots(tab, "dashboard")

    key = await tab.js("document.querySelector('.gallery .shot button[data-key]').dataset.key")
    assert await client.app[IMAGE_CACHE].get(key) is not None
    await tab.js("document.querySelector('.gallery .shot button[data-key]').click()")
    await tab.wait("document.querySelector('.alert.ok') !== null")
    assert "deleted" in await tab.js("document.querySelector('.alert.ok').textContent")
    assert await client.app[IMAGE_CACHE].get(key) is None
    assert await tab.js("document.querySelectorAll('.gallery .shot').length") == len(prompts) - 1


async def test_dashboard_adds_a_profile_and_blocks_an_address(browser, iris, painter):
    client = await iris(BACKEND_API_URLS=painter.url)
    await client.get(f"/prompt/{quote('a lantern in the fog')}?key={ACCESS_KEY}&width=512&height=512")
    base = str(client.make_url("")).rstrip("/")
    tab = await browser.new_page()
    await tab.goto(f"{base}/admin")
    await tab.js(f"document.getElementById('token').value = '{ADMIN_TOKEN}';"
                 "document.querySelector('form[action=\"/admin/login\"] button').click()")
    await tab.wait("document.getElementById('profiles') !== null")
    await tab.js("document.getElementById('username').value = 'alice';"
                 "document.querySelector('form[action=\"/admin/profiles\"] button').click()")
    key = await tab.wait("document.getElementById('new-key') && document.getElementById('new-key').textContent")
    auth = await client.post(f"/auth-{key}")
    assert (await auth.json())["success"] is True
    await tab.js("document.getElementById('address').value = '203.0.113.0/24';"
                 "document.getElementById('reason').value = 'scraping';"
                 "document.querySelector('form[action=\"/admin/blacklist\"] button').click()")
    await tab.wait("document.querySelector('.blocked code') !== null")
    assert await tab.js("document.querySelector('.blocked code').textContent") == "203.0.113.0/24"
    profiles = await tab.js("document.getElementById('profiles').textContent")
    assert "alice" in profiles and "auth 1" in profiles and key not in profiles
    await shots(tab, "dashboard-people")
