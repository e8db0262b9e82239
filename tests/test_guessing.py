"""Guessing the access key or the admin token is limited like guessing a profile key: one auth
bucket per address (RATE_LIMIT_AUTH), then an automatic block after repeated failures."""

from __future__ import annotations

from tests.conftest import ACCESS_KEY, ADMIN_TOKEN


async def test_access_key_guesses_run_into_the_auth_limit(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, RATE_LIMIT_AUTH="3/minute", BLACKLIST_AUTO_FAILURES="0")
    assert (await client.get(f"/prompt/a?key={ACCESS_KEY}")).status == 200
    statuses = [(await client.get(f"/prompt/a?key=guess{i}")).status for i in range(6)]
    assert statuses[:3] == [401, 401, 401]
    assert set(statuses[3:]) == {429}
    limited = await client.get(f"/prompt/a?key={ACCESS_KEY}")  # even the right key waits now
    assert limited.status == 429
    assert int(limited.headers["Retry-After"]) >= 1


async def test_admin_token_guesses_run_into_the_auth_limit(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, RATE_LIMIT_AUTH="2/minute", BLACKLIST_AUTO_FAILURES="0")
    for _ in range(2):
        assert (await client.post("/cache/delete", json={"description": "x"},
                                  headers={"X-Admin-Token": "guess"})).status == 401
    assert (await client.get("/status", headers={"X-Admin-Token": "guess"})).status == 429
    resp = await client.post("/cache/delete", json={"description": "x"}, headers={"X-Admin-Token": ADMIN_TOKEN})
    assert resp.status == 429


async def test_public_status_without_a_token_is_never_limited(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, RATE_LIMIT_AUTH="1/minute")
    for _ in range(5):
        assert (await client.get("/status")).status == 200


async def test_repeated_wrong_keys_block_the_address(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, RATE_LIMIT_AUTH="1000/minute", BLACKLIST_AUTO_FAILURES="4",
                        TRUSTED_PROXIES="127.0.0.1")
    guesser = {"X-Forwarded-For": "203.0.113.9"}  # loopback itself is never blocked automatically
    for i in range(5):  # more than BLACKLIST_AUTO_FAILURES wrong keys
        assert (await client.get(f"/prompt/a?key=guess{i}", headers=guesser)).status == 401
    blocked = await client.get(f"/prompt/a?key={ACCESS_KEY}", headers=guesser)
    assert blocked.status == 403
    assert set((await blocked.json())["error"]) == {"code", "message"}
