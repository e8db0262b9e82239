"""The pages: playground, docs, admin login, session cookie, CSRF, dashboard and its actions."""

from __future__ import annotations

import asyncio
import time

import pytest

from proxy.admin.cookie import COOKIE, AdminSessions
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.support.pages_fakes import dashboard, login


async def test_playground_is_self_contained_and_keyless(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, MODEL_MAP=f'{{"{backend.url}": {{"flux": "flux-pro"}}}}')
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    html = await resp.text()
    assert ACCESS_KEY not in html and ADMIN_TOKEN not in html
    assert 'id="prompt"' in html and 'id="snippet"' in html and '<option value="flux">' in html
    assert "http://" not in html and "https://" not in html  # nothing from another host
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    for asset in ("iris.css", "playground.js", "iris.svg"):
        assert f"/static/{asset}?v=" in html
        static = await client.get(f"/static/{asset}")
        assert static.status == 200, asset
        assert b"http://" not in await static.read() or asset == "iris.svg"


async def test_docs_page_lists_every_route_of_the_app(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    html = await (await client.get("/docs")).text()
    for resource in client.app.router.resources():
        path = resource.canonical
        if path.startswith("/static"):
            continue
        assert f"<code>{path}</code>" in html, path
    assert "An image for a prompt" in html


async def test_admin_without_session_is_the_login_form(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    resp = await client.get("/admin")
    html = await resp.text()
    assert resp.status == 200
    assert 'name="token"' in html and backend.url.split("//")[1] not in html


async def test_login_sets_a_strict_httponly_expiring_cookie(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, ADMIN_SESSION_TTL="600")
    wrong = await login(client, "not-the-token")
    assert wrong.status == 401
    assert "not the admin token" in await wrong.text()
    assert COOKIE not in wrong.cookies
    resp = await login(client)
    assert resp.status == 303 and resp.headers["Location"] == "/admin"
    morsel = resp.cookies[COOKIE]
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["max-age"] == "600"
    assert ADMIN_TOKEN not in morsel.value
    html = await (await client.get("/admin")).text()
    assert "Backends and providers" in html and backend.url.split("//")[1] in html


async def test_forged_or_expired_cookies_are_refused(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    client.session.cookie_jar.update_cookies({COOKIE: "gAAAAforged"})
    assert 'name="token"' in await (await client.get("/admin")).text()
    other = AdminSessions("another-admin-token-000000", 600)
    client.session.cookie_jar.update_cookies({COOKIE: other.issue()[0]})
    assert 'name="token"' in await (await client.get("/admin")).text()
    sessions = AdminSessions(ADMIN_TOKEN, 600)
    cookie, session = sessions.issue()
    assert sessions.read(cookie) == session
    assert sessions.read(cookie, now=time.time() + 601) is None
    thumb = await client.get("/admin/thumb/" + "0" * 64)
    assert thumb.status == 401 and (await thumb.json())["error"]["code"] == "admin_required"


async def test_dashboard_gallery_thumbnail_and_delete_with_csrf(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    made = await client.get(f"/prompt/a%20blue%20whale?key={ACCESS_KEY}&width=256&height=256&seed=3")
    assert made.headers["X-Cache"] == "MISS"
    key = made.headers["ETag"].strip('"')
    html, csrf = "", ""
    for _ in range(50):  # the gallery note is written on a background task
        html, csrf = await dashboard(client)
        if "a blue whale" in html:
            break
        await asyncio.sleep(0.05)
    assert "a blue whale" in html and f"/admin/thumb/{key}" in html
    thumb = await client.get(f"/admin/thumb/{key}")
    assert thumb.status == 200 and thumb.headers["Content-Type"] == "image/jpeg"

    no_csrf = await client.post("/admin/cache/delete", data={"key": key}, allow_redirects=False)
    assert no_csrf.status == 403 and (await no_csrf.json())["error"]["code"] == "bad_csrf"
    cross = await client.post("/admin/cache/delete", data={"key": key, "csrf": csrf},
                              headers={"Origin": "http://evil.example"}, allow_redirects=False)
    assert cross.status == 403
    null = await client.post("/admin/cache/delete", data={"key": key, "csrf": csrf},
                             headers={"Origin": "null"}, allow_redirects=False)
    assert null.status == 403
    assert (await client.get(f"/prompt/a%20blue%20whale?key={ACCESS_KEY}&width=256&height=256&seed=3"
                             )).headers["X-Cache"] == "HIT"

    behind_tls = {"Origin": f"https://{client.host}:{client.port}"}  # a TLS proxy in front: same host
    deleted = await client.post("/admin/cache/delete", data={"key": key, "csrf": csrf}, headers=behind_tls,
                                allow_redirects=False)
    assert deleted.status == 303 and "done=deleted" in deleted.headers["Location"]
    page = await (await client.get(deleted.headers["Location"])).text()
    assert "cache entry was deleted" in page and "a blue whale" not in page
    again = await client.post("/admin/cache/delete", data={"key": key, "csrf": csrf}, allow_redirects=False)
    assert "done=missing" in again.headers["Location"]
    remade = await client.get(f"/prompt/a%20blue%20whale?key={ACCESS_KEY}&width=256&height=256&seed=3")
    assert remade.headers["X-Cache"] == "MISS" and len(backend.calls) == 2


async def test_the_gallery_shows_the_prompt_the_image_was_made_from(iris, backend, llm):
    """After enhancement (or the safety rewrite) the prompt sent is not the one asked for: the
    dashboard shows both."""
    client = await iris(BACKEND_API_URLS=backend.url, LLM_OPTIMIZATION_ENABLED="true", LLM_OPTIMIZATION_API_URL=llm.url,
                        LLM_OPTIMIZATION_TEMPLATE="Improve <<{ORIGINAL_PROMPT}>>")
    assert (await client.get(f"/prompt/a%20grey%20heron?key={ACCESS_KEY}")).status == 200
    assert (await client.get(f"/prompt/a%20red%20fox?key={ACCESS_KEY}&enhance=false")).status == 200
    html = ""
    for _ in range(50):  # the gallery note is written on a background task
        html, _ = await dashboard(client)
        if "a grey heron" in html and "a red fox" in html:
            break
        await asyncio.sleep(0.05)
    assert "Sent as:</span> enhanced: a grey heron" in html
    assert html.count("Sent as:") == 1  # not for the image made from the prompt as asked


async def test_the_dashboard_names_backends_and_models(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, IMAGE_MODEL="dall-e-3")
    assert (await client.get(f"/prompt/a%20moth?key={ACCESS_KEY}")).status == 200
    html, _ = await dashboard(client)
    assert "backend-1 · dall-e-3" in html


async def test_logout_needs_csrf_and_ends_the_session(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    _, csrf = await dashboard(client)
    refused = await client.post("/admin/logout", data={}, allow_redirects=False)
    assert refused.status == 403
    out = await client.post("/admin/logout", data={"csrf": csrf}, allow_redirects=False)
    assert out.status == 303
    assert 'name="token"' in await (await client.get("/admin")).text()


async def test_request_ids_are_unique_echoed_or_replaced(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    ids = {(await client.get("/status")).headers["X-Request-Id"] for _ in range(5)}
    assert len(ids) == 5
    echoed = await client.get("/status", headers={"X-Request-Id": "trace-abc.123"})
    assert echoed.headers["X-Request-Id"] == "trace-abc.123"
    unsafe = await client.get("/status", headers={"X-Request-Id": "bad id\twith spaces"})
    assert unsafe.headers["X-Request-Id"] not in ("bad id\twith spaces", "")
    missing = await client.get("/no/such/page")
    assert missing.status == 404 and missing.headers["X-Request-Id"]
    error = await client.get("/prompt/x")
    assert error.status == 401 and error.headers["X-Request-Id"]


async def test_dashboard_adds_a_profile_and_shows_its_key_once(iris, backend):
    import re

    client = await iris(BACKEND_API_URLS=backend.url)
    _, csrf = await dashboard(client)
    resp = await client.post("/admin/profiles", data={"username": "alice", "csrf": csrf})
    html = await resp.text()
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    key = re.search(r'<code id="new-key">([^<]+)</code>', html).group(1)
    auth = await client.post(f"/auth-{key}")
    assert auth.status == 200 and (await auth.json())["success"] is True
    page = await (await client.get("/admin")).text()
    assert "alice" in page and key not in page  # listed with its activity, the key never again
    assert "auth 1" in page
    dup = await client.post("/admin/profiles", data={"username": "alice", "csrf": csrf})
    assert dup.status in (400, 409) and "new-key" not in await dup.text()
    bad = await client.post("/admin/profiles", data={"username": "no spaces allowed", "csrf": csrf})
    assert bad.status == 400
    forged = await client.post("/admin/profiles", data={"username": "mallory", "csrf": "x" * 32})
    assert forged.status == 403


async def test_dashboard_blocks_and_unblocks_addresses(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    _, csrf = await dashboard(client)
    blocked = await client.post("/admin/blacklist", data={"address": "203.0.113.7", "reason": "abuse",
                                                          "csrf": csrf}, allow_redirects=False)
    assert blocked.status == 303
    page = await (await client.get("/admin")).text()
    assert "203.0.113.7/32" in page and "abuse" in page
    yourself = await client.post("/admin/blacklist", data={"address": "127.0.0.0/8", "csrf": csrf})
    assert yourself.status == 400 and "your own address" in await yourself.text()
    assert (await client.get("/status")).status == 200  # not locked out
    invalid = await client.post("/admin/blacklist", data={"address": "not-an-ip", "csrf": csrf})
    assert invalid.status == 400
    removed = await client.post("/admin/blacklist/remove", data={"address": "203.0.113.7", "csrf": csrf},
                                allow_redirects=False)
    assert "done=unblocked" in removed.headers["Location"]
    assert "203.0.113.7/32" not in await (await client.get("/admin")).text()


async def test_failed_logins_are_limited_per_address(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, RATE_LIMIT_AUTH="3/minute")
    statuses = [(await login(client, f"wrong-{n}")).status for n in range(4)]
    assert statuses == [401, 401, 401, 429]
    limited = await login(client)  # even the right token waits until the bucket refills
    assert limited.status == 429 and "Too many failed attempts" in await limited.text()


async def test_behind_a_trusted_tls_proxy_the_session_cookie_is_secure(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, TRUSTED_PROXIES="127.0.0.1/32")
    resp = await client.post("/admin/login", data={"token": ADMIN_TOKEN}, allow_redirects=False,
                             headers={"X-Forwarded-Proto": "https"})
    assert resp.status == 303 and resp.cookies[COOKIE]["secure"]


@pytest.mark.parametrize("proxies", ["", "10.0.0.0/8"])
async def test_x_forwarded_proto_is_believed_from_trusted_proxies_only(iris, backend, proxies):
    """Over plain HTTP the cookie is not Secure (the browser would not send it back), whatever a
    client that is not a trusted proxy claims."""
    client = await iris(BACKEND_API_URLS=backend.url, TRUSTED_PROXIES=proxies)
    for headers in ({}, {"X-Forwarded-Proto": "https"}):
        resp = await client.post("/admin/login", data={"token": ADMIN_TOKEN}, allow_redirects=False,
                                 headers=headers)
        assert resp.status == 303 and not resp.cookies[COOKIE]["secure"]
