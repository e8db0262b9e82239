"""Logging out of the dashboard revokes the session server-side: a copy of the cookie is refused
by every worker of the host (the SQLite file) and, with REDIS_URL, by every instance."""

from __future__ import annotations

import pytest

from proxy.admin.cookie import COOKIE
from tests.support.pages_fakes import CSRF, login
from tests.support.redis_fakes import free_port
from tests.support.redis_topologies import ON_EVERY_TOPOLOGY

pytest_plugins = ["tests.support.redis_fixtures"]


async def logged_in(client) -> tuple[str, str]:
    """Logs in; the cookie's value and the dashboard's CSRF token."""
    resp = await login(client)
    cookie = resp.cookies[COOKIE].value
    html = await (await client.get("/admin")).text()
    return cookie, CSRF.search(html).group(1)


async def refused(client, cookie: str) -> bool:
    """Whether ``client`` with (only) this cookie is treated as logged out, on a page and the API."""
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({COOKIE: cookie})
    page = await (await client.get("/admin")).text()
    thumb = await client.get("/admin/thumb/" + "0" * 64)
    return 'name="token"' in page and thumb.status == 401


async def logout(client, cookie: str, csrf: str) -> None:
    client.session.cookie_jar.update_cookies({COOKIE: cookie})
    resp = await client.post("/admin/logout", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303


async def test_a_copy_of_the_cookie_is_refused_after_logout(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    cookie, csrf = await logged_in(client)
    other, _ = await logged_in(client)
    assert not await refused(client, cookie)
    await logout(client, cookie, csrf)
    assert await refused(client, cookie)
    client.session.cookie_jar.update_cookies({COOKIE: cookie})
    form = await client.post("/admin/blacklist", data={"address": "198.51.100.1", "csrf": csrf},
                             allow_redirects=False)
    assert form.status == 401 and (await form.json())["error"]["code"] == "admin_required"
    assert not await refused(client, other), "another session is not ended by this logout"


async def test_every_worker_on_the_host_refuses_a_logged_out_cookie(iris, backend):
    """Two apps on one DATA_DIR, as two worker processes are."""
    one = await iris(BACKEND_API_URLS=backend.url)
    two = await iris(BACKEND_API_URLS=backend.url)
    cookie, csrf = await logged_in(one)
    assert not await refused(two, cookie)
    await logout(one, cookie, csrf)
    assert await refused(two, cookie)


async def test_a_cookie_without_a_session_id_is_refused(iris, backend):
    """Cookies made before logouts were revocable carry no id: they cannot be revoked, so they
    are not accepted."""
    import orjson

    from proxy.keys import ADMIN_SESSIONS

    client = await iris(BACKEND_API_URLS=backend.url)
    fernet = client.app[ADMIN_SESSIONS].fernet
    old = fernet.encrypt(orjson.dumps({"csrf": "x" * 32})).decode()
    assert await refused(client, old)


@pytest.mark.redis
@ON_EVERY_TOPOLOGY
async def test_every_instance_refuses_a_logged_out_cookie(instances):
    one, two = await instances(2)
    cookie, csrf = await logged_in(one)
    assert not await refused(two, cookie)
    await logout(one, cookie, csrf)
    assert await refused(two, cookie)


async def test_a_logout_while_redis_is_down_is_kept_locally(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
                        REDIS_TIMEOUT="0.2", REDIS_RETRY_INTERVAL="60")
    cookie, csrf = await logged_in(client)
    await logout(client, cookie, csrf)
    assert await refused(client, cookie)
