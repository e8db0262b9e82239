"""Every way to authenticate and its refusal, the rate limits with honest Retry-After, the
blacklist on every route and the automatic block after repeated failed logins."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import FormData, web

from proxy.accounts import profiles
from proxy.accounts.identity import authenticate
from proxy.app import create_app
from proxy.config.security import Rate, parse_rate
from proxy.errors import ConfigError, RateLimited
from proxy.keys import ACCOUNTS, DATABASE
from proxy.security import blacklist
from proxy.security.limits import gcra
from tests.support.account_helpers import add_profile, guard_of, wait_until_blocked


async def whoami(request: web.Request) -> web.Response:
    profile = await authenticate(request)
    return web.json_response({"username": profile.username})


@pytest.fixture
async def app_with_whoami(aiohttp_client, settings_for):
    """The real app plus one route that only calls ``authenticate`` (as /process does)."""

    async def start(**env: str):
        app = create_app(settings_for(**env))
        app.router.add_post("/whoami", whoami)
        return await aiohttp_client(app)

    return start


async def test_bearer_form_field_and_session_all_authenticate(app_with_whoami):
    client = await app_with_whoami()
    key = await add_profile(client, "alice")
    resp = await client.post("/whoami", headers={"Authorization": f"Bearer {key}"})
    assert (await resp.json()) == {"username": "alice"}
    form = FormData()
    form.add_field("username", "alice")
    form.add_field("key", key)
    form.add_field("image", b"\xff\xd8\xff", filename="frame_image.jpg", content_type="application/octet-stream")
    assert (await (await client.post("/whoami", data=form)).json()) == {"username": "alice"}
    assert (await client.post("/whoami", data={"key": key})).status == 200
    assert (await client.post("/whoami")).status == 401
    assert (await client.post(f"/auth-{key}")).status == 200
    form = FormData()
    form.add_field("username", "alice")
    form.add_field("image", b"\xff\xd8\xff", filename="frame_image.jpg", content_type="application/octet-stream")
    resp = await client.post("/whoami", data=form)
    assert resp.status == 200 and (await resp.json()) == {"username": "alice"}


async def test_each_refusal_has_its_code_and_the_error_shape(app_with_whoami):
    client = await app_with_whoami()
    key = await add_profile(client, "alice")
    await add_profile(client, "bob", "bob-key-0123456789")
    cases = [
        (client.post("/whoami"), 401, "auth_required"),
        (client.post("/whoami", headers={"Authorization": "Bearer wrong-key-000"}), 401, "invalid_key"),
        (client.post("/whoami", data={"key": "wrong-key-000"}), 401, "invalid_key"),
        (client.get("/prompt-bob", headers={"Authorization": f"Bearer {key}"}), 403, "wrong_user"),
        (client.post("/prompt-bob", json={"prompt": "x"}, headers={"Authorization": f"Bearer {key}"}),
         403, "wrong_user"),
        (client.post("/profile", json={"username": "bob", "api_keys": {}},
                      headers={"Authorization": f"Bearer {key}"}), 403, "wrong_user"),
        (client.post("/profile", json={"username": "alice", "api_keys": {}}), 401, "auth_required"),
        (client.post("/profile", json={"api_keys": {}}), 400, "missing_username"),
        (client.post("/profile", json=["x"]), 400, "invalid_json"),
    ]
    for call, status, code in cases:
        resp = await call
        body = await resp.json()
        assert (resp.status, body["error"]["code"]) == (status, code)
        assert set(body["error"]) == {"code", "message"}
    assert await client.app[ACCOUNTS].provider_keys("bob") == {}


async def test_a_session_expires_and_dies_with_a_key_rotation(app_with_whoami):
    client = await app_with_whoami(AUTH_SESSION_TTL="1")
    key = await add_profile(client, "alice")
    await client.post(f"/auth-{key}")
    assert (await client.post("/whoami")).status == 200
    await asyncio.sleep(1.1)
    assert (await client.post("/whoami")).status == 401
    await client.close()

    client = await app_with_whoami()
    key = await add_profile(client, "carol")
    await client.post(f"/auth-{key}")
    assert (await client.post("/whoami")).status == 200
    new_key = await client.app[ACCOUNTS].run(profiles.rotate_key, "carol")
    assert (await client.post("/whoami")).status == 401
    assert (await client.post(f"/auth-{key}")).status == 401
    assert (await client.post(f"/auth-{new_key}")).status == 200
    assert (await client.post("/whoami")).status == 200


async def test_guessing_keys_on_different_auth_paths_hits_one_bucket(iris):
    client = await iris(BLACKLIST_AUTO_FAILURES="0")
    key = await add_profile(client, "alice")
    for guess in range(5):
        resp = await client.post(f"/auth-guess-number-{guess:04d}")
        assert resp.status == 401
    resp = await client.post("/auth-guess-number-9999")
    body = await resp.json()
    assert resp.status == 429 and body["success"] is False and body["error"]["code"] == "rate_limited"
    assert 1 <= int(resp.headers["Retry-After"]) <= 12
    resp = await client.post(f"/auth-{key}")
    assert resp.status == 429, "the right key is refused too while the bucket is empty"
    resp = await client.get("/prompt-alice", headers={"Authorization": f"Bearer {key}"})
    assert resp.status == 429, "keys sent on other routes are not a way around the limit"


async def test_the_auth_bucket_refills_at_the_configured_rate(iris):
    client = await iris(RATE_LIMIT_AUTH="2/2second", BLACKLIST_AUTO_FAILURES="0")
    key = await add_profile(client, "alice")
    assert [(await client.post(f"/auth-bad-guess-{i:03d}")).status for i in range(3)] == [401, 401, 429]
    await asyncio.sleep(1.1)
    assert (await client.post(f"/auth-{key}")).status == 200


async def test_wrong_bearer_keys_count_as_failed_logins(iris):
    client = await iris(RATE_LIMIT_AUTH="3/minute", BLACKLIST_AUTO_FAILURES="0")
    key = await add_profile(client, "alice")
    for _ in range(3):
        resp = await client.get("/prompt-alice", headers={"Authorization": "Bearer not-the-key-00"})
        assert resp.status == 401
    resp = await client.get("/prompt-alice", headers={"Authorization": f"Bearer {key}"})
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1


async def test_profile_and_prompt_updates_share_a_per_user_limit(iris):
    client = await iris(RATE_LIMIT_PROFILE="3/minute")
    key = await add_profile(client, "alice")
    bob = await add_profile(client, "bob")
    auth = {"Authorization": f"Bearer {key}"}
    assert (await client.post("/prompt-alice", json={"prompt": "a"}, headers=auth)).status == 200
    assert (await client.post("/profile", json={"username": "alice", "api_keys": {}}, headers=auth)).status == 200
    assert (await client.post("/prompt-alice", json={"prompt": "b"}, headers=auth)).status == 200
    resp = await client.post("/profile", json={"username": "alice", "api_keys": {}}, headers=auth)
    assert resp.status == 429 and 1 <= int(resp.headers["Retry-After"]) <= 20
    assert (await resp.json())["error"]["code"] == "rate_limited"
    assert (await client.get("/prompt-alice", headers=auth)).status == 200, "reading is not limited"
    resp = await client.post("/prompt-bob", json={"prompt": "b"}, headers={"Authorization": f"Bearer {bob}"})
    assert resp.status == 200, "another user has their own bucket"


async def test_process_limit_is_per_user_with_an_honest_wait(iris):
    client = await iris(RATE_LIMIT_PROCESS="3/hour")
    guard = guard_of(client)
    for _ in range(3):
        await guard.process("alice")
    with pytest.raises(RateLimited) as refused:
        await guard.process("alice")
    assert 1190 <= refused.value.retry_after <= 1201
    await guard.process("bob")


def test_gcra_allows_the_burst_then_one_per_interval():
    rate, now, tat = Rate(5, 60.0), 1000.0, None
    for _ in range(5):
        tat, wait = gcra(tat, now, rate)
        assert wait == 0.0
    _, wait = gcra(tat, now, rate)
    assert wait == pytest.approx(12.0)
    _, wait = gcra(tat, now + 12.0, rate)
    assert wait == 0.0


def test_rates_parse_and_bad_ones_name_the_variable():
    assert parse_rate("X", "5/minute") == Rate(5, 60.0)
    assert parse_rate("X", "3600/hour") == Rate(3600, 3600.0)
    assert parse_rate("X", "10 / 30 seconds") == Rate(10, 30.0)
    for bad in ("five/minute", "5 per minute", "0/minute", "5/fortnight"):
        with pytest.raises(ConfigError) as error:
            parse_rate("RATE_LIMIT_AUTH", bad)
        assert "RATE_LIMIT_AUTH" in str(error.value)


async def test_blacklist_blocks_every_route_including_the_image_route(iris):
    client = await iris(BLACKLIST_REFRESH="0.1")
    await client.app[DATABASE].run(blacklist.add, "127.0.0.0/8", "test")
    await wait_until_blocked(client, True)
    for method, path in (("GET", "/prompt/a-red-cat"), ("POST", "/auth-anything-at-all"),
                         ("POST", "/profile"), ("GET", "/status"), ("GET", "/no-such-route")):
        resp = await client.request(method, path)
        body = await resp.json()
        assert resp.status == 403 and body == {"error": {"code": "blocked", "message": body["error"]["message"]}}


async def test_other_addresses_and_ranges_do_not_block_this_one(iris):
    client = await iris(BLACKLIST_REFRESH="0.1")
    for network in ("10.0.0.0/8", "127.0.0.2", "::2/128"):
        await client.app[DATABASE].run(blacklist.add, network, "test")
    await guard_of(client).blacklist.reload()
    view = guard_of(client).blacklist
    assert view.blocked("10.200.3.4") and view.blocked("127.0.0.2") and view.blocked("::ffff:10.0.0.1")
    assert not view.blocked("127.0.0.1") and not view.blocked("11.0.0.1") and not view.blocked("garbage")
    assert (await client.get("/prompt-x")).status == 401


async def test_repeated_failed_logins_block_the_address_for_a_while(iris):
    client = await iris(RATE_LIMIT_AUTH="100/minute", BLACKLIST_AUTO_FAILURES="3",
                        BLACKLIST_AUTO_SECONDS="2", BLACKLIST_REFRESH="0.1", TRUSTED_PROXIES="127.0.0.1")
    guesser = {"X-Forwarded-For": "203.0.113.9"}  # a client behind the trusted proxy
    key = await add_profile(client, "alice")
    for guess in range(3):
        assert (await client.post(f"/auth-wrong-guess-{guess:03d}", headers=guesser)).status == 401
    resp = await client.post("/auth-wrong-guess-999", headers=guesser)
    assert resp.status == 401
    resp = await client.post(f"/auth-{key}", headers=guesser)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "blocked"
    entries = await client.app[DATABASE].run(blacklist.entries)
    assert [e.network for e in entries] == ["203.0.113.9/32"] and entries[0].expires_at is not None
    assert (await client.post(f"/auth-{key}", headers={"X-Forwarded-For": "203.0.113.10"})).status == 200
    await wait_until_blocked(client, False, within=4.0, headers=guesser)
    assert (await client.post(f"/auth-{key}", headers=guesser)).status == 200


def test_forwarded_for_is_believed_only_from_trusted_proxies():
    from proxy.config.env import Env
    from proxy.security.address import client_address

    trusted = Env({"TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"}).networks("TRUSTED_PROXIES")
    assert client_address("127.0.0.1", "203.0.113.7", trusted) == "203.0.113.7"
    assert client_address("127.0.0.1", "198.51.100.1, 203.0.113.7, 10.1.2.3", trusted) == "203.0.113.7"
    assert client_address("198.51.100.9", "203.0.113.7", trusted) == "198.51.100.9"
    assert client_address("127.0.0.1", "not-an-ip", trusted) == "127.0.0.1"
    assert client_address("127.0.0.1", "10.0.0.1, 10.0.0.2", trusted) == "10.0.0.1"
    assert client_address("127.0.0.1", "203.0.113.7", ()) == "127.0.0.1"


async def test_behind_a_trusted_proxy_each_client_has_its_own_session_bucket_and_block(iris):
    client = await iris(TRUSTED_PROXIES="127.0.0.1", BLACKLIST_AUTO_FAILURES="0", BLACKLIST_REFRESH="0.1")
    key = await add_profile(client, "alice")
    phone, stranger = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.1"}
    assert (await client.post(f"/auth-{key}", headers=phone)).status == 200
    assert (await client.get("/prompt-alice", headers=phone)).status == 200
    assert (await client.get("/prompt-alice", headers=stranger)).status == 401
    for guess in range(5):
        await client.post(f"/auth-wrong-guess-{guess:03d}", headers=stranger)
    assert (await client.post(f"/auth-{key}", headers=stranger)).status == 429
    assert (await client.post(f"/auth-{key}", headers=phone)).status == 200
    await client.app[DATABASE].run(blacklist.add, "198.51.100.0/24", "test")
    await guard_of(client).blacklist.reload()
    assert (await client.get("/prompt-alice", headers=stranger)).status == 403
    assert (await client.get("/prompt-alice", headers=phone)).status == 200


async def test_without_trusted_proxies_forwarded_for_cannot_dodge_a_block(iris):
    client = await iris(BLACKLIST_REFRESH="0.1")
    await client.app[DATABASE].run(blacklist.add, "127.0.0.1", "test")
    await guard_of(client).blacklist.reload()
    resp = await client.get("/prompt-alice", headers={"X-Forwarded-For": "203.0.113.7"})
    assert resp.status == 403


async def test_no_auth_key_or_provider_key_reaches_the_logs(aiohttp_client, settings_for, caplog):
    import logging

    from aiohttp.test_utils import TestServer

    from proxy.logs import AccessLog, AccessLogger

    written: list[str] = []
    access = AccessLog("text", written.append)
    server = TestServer(create_app(settings_for(BLACKLIST_AUTO_FAILURES="2", TRUSTED_PROXIES="127.0.0.1")))
    await server.start_server(access_log_class=AccessLogger, access_log=access)
    client = await aiohttp_client(server)
    key = await add_profile(client, "alice")
    with caplog.at_level(logging.DEBUG):
        await client.post(f"/auth-{key}")
        await client.post("/profile", json={"username": "alice", "api_keys": {"gemini_api_key": "AIza-SECRET"}},
                          headers={"Authorization": f"Bearer {key}"})
        for guess in range(4):
            await client.post(f"/auth-wrong-guess-{guess:03d}", headers={"X-Forwarded-For": "203.0.113.9"})
        await asyncio.sleep(0.05)
    access.flush()
    text = "\n".join(record.getMessage() + repr(getattr(record, "fields", "")) for record in caplog.records)
    text += "".join(written)
    assert "/auth-***" in text and "blocked" in text
    assert key not in text and "wrong-guess" not in text and "AIza-SECRET" not in text


async def test_concurrent_guesses_get_exactly_the_allowed_number_of_tries(iris):
    client = await iris(BLACKLIST_AUTO_FAILURES="0")
    responses = await asyncio.gather(*[client.post(f"/auth-concurrent-guess-{i:03d}") for i in range(20)])
    statuses = sorted(resp.status for resp in responses)
    assert statuses == [401] * 5 + [429] * 15


async def test_a_malformed_form_is_a_400_not_a_500(app_with_whoami):
    client = await app_with_whoami()
    for content_type, body in (("multipart/form-data", b"garbage"),
                               ("multipart/form-data; boundary=xyz", b"--xyz\r\nnot a header")):
        resp = await client.post("/whoami", data=body, headers={"Content-Type": content_type})
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_form"
