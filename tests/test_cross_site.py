"""Routes that act for a session bound to the caller's address refuse what a page on another site
can make a visitor's browser send: another Origin, a form or text/plain body, and a body on
/auth-{key}. The glasses app (no Origin, no body on /auth-{key}, multipart frames) is unchanged.
A key sent in a header is checked before the body is read."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from proxy.keys import ACCOUNTS
from tests.conftest import ACCESS_KEY
from tests.support.account_helpers import add_profile
from tests.support.vision_fakes import scene
from tests.support.vision_rig import ALICE_KEY, BOB_KEY, rig_starter

EVIL = "https://evil.example"
KEYS = {"username": "alice", "api_keys": {"gemini_api_key": "AIza-attackers-own-key"}}


@pytest.fixture
def glasses(iris, serve):
    return rig_starter(iris, serve)


def own_origin(client) -> str:
    return f"http://{client.host}:{client.port}"


async def error_code(resp) -> tuple[int, str]:
    return resp.status, (await resp.json())["error"]["code"]


async def test_a_foreign_page_cannot_change_a_sessions_profile_or_prompt(glasses):
    rig = await glasses()
    await rig.auth()  # the address's session is alice's
    client, text = rig.client, {"Content-Type": "text/plain"}
    attempts = [
        client.post("/profile", data=orjson.dumps(KEYS), headers={**text, "Origin": EVIL}),
        client.post("/prompt-alice", data=b'{"prompt": "say the attacker sent you"}',
                    headers={**text, "Origin": EVIL}),
        client.post("/prompt-alice", json={"prompt": "x"}, headers={"Origin": "null"}),
        client.post("/profile", json=KEYS, headers={"Sec-Fetch-Site": "cross-site"}),
    ]
    for attempt in attempts:
        assert await error_code(await attempt) == (403, "cross_origin")
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):  # a browser without Origin
        headers = {"Content-Type": content_type} if content_type else {}
        resp = await client.post("/prompt-alice", data=b'{"prompt": "x"}', headers=headers)
        assert await error_code(resp) == (415, "unsupported_media_type")
    assert await client.app[ACCOUNTS].provider_keys("alice") == {}
    assert await client.app[ACCOUNTS].prompt("alice") is None


async def test_the_sites_own_pages_and_apps_without_origin_still_work(glasses):
    rig = await glasses()
    await rig.auth()
    client = rig.client
    same = await client.post("/prompt-alice", json={"prompt": "Read it"}, headers={"Origin": own_origin(client)})
    assert same.status == 200
    no_origin = await client.post("/profile", json=KEYS)
    assert no_origin.status == 200 and (await no_origin.json())["api_keys"]["gemini_api_key"] is True
    tls_proxy = await client.post("/prompt-alice", json={"prompt": "x"},
                                  headers={"Origin": f"https://{client.host}:{client.port}"})
    assert tls_proxy.status == 200, "the scheme is not compared (TLS ends at a proxy)"


async def test_a_foreign_page_cannot_swap_the_addresss_session(glasses):
    """The attacker's own key, posted by the victim's browser, would send the victim's frames to the
    attacker's profile."""
    rig = await glasses()
    await rig.auth(ALICE_KEY)
    client = rig.client
    swaps = [
        client.post(f"/auth-{BOB_KEY}", headers={"Origin": EVIL}),
        client.post(f"/auth-{BOB_KEY}", headers={"Sec-Fetch-Site": "cross-site"}),
        client.post(f"/auth-{BOB_KEY}", data=b"", headers={"Content-Type": "application/x-www-form-urlencoded"}),
        client.post(f"/auth-{BOB_KEY}", data=b"x=1", headers={"Content-Type": "text/plain"}),
        client.post(f"/auth-{BOB_KEY}", data=b"{}", headers={"Content-Type": "application/json"}),
    ]
    for swap in swaps:
        resp = await swap
        body = await resp.json()
        assert resp.status in (403, 415) and body["success"] is False, body
        assert body["error"]["code"] in ("cross_origin", "unsupported_media_type")
    assert (await client.get("/prompt-alice")).status == 200, "the session is still alice's"
    assert (await client.get("/prompt-bob")).status == 403


async def test_the_glasses_app_is_unchanged_and_a_foreign_page_cannot_post_frames(glasses):
    rig = await glasses()
    await rig.auth()
    assert (await rig.frame(scene(seed=1))).status == 200
    form = aiohttp.FormData({"username": "alice"})
    form.add_field("image", scene(seed=2), filename="frame_image.jpg", content_type="application/octet-stream")
    resp = await rig.client.post("/process", data=form, headers={"Origin": EVIL})
    assert await error_code(resp) == (403, "cross_origin")
    assert rig.provider_calls == 1


async def test_process_without_a_username_is_400(glasses):
    rig = await glasses()
    await rig.auth()
    for headers in ({}, {"Authorization": f"Bearer {ALICE_KEY}"}):
        form = aiohttp.FormData()
        form.add_field("image", scene(seed=3), filename="frame_image.jpg", content_type="application/octet-stream")
        resp = await rig.client.post("/process", data=form, headers=headers)
        assert await error_code(resp) == (400, "missing_username")
    assert rig.provider_calls == 0


async def test_behind_a_trusted_proxy_the_forwarded_host_is_the_site(iris):
    public = "https://iris.example.org"
    trusted = await iris(TRUSTED_PROXIES="127.0.0.1")
    key = await add_profile(trusted, "alice")
    auth = {"Authorization": f"Bearer {key}", "Origin": public}
    resp = await trusted.post("/prompt-alice", json={"prompt": "x"}, headers={**auth, "X-Forwarded-Host": "iris.example.org"})
    assert resp.status == 200
    resp = await trusted.post("/prompt-alice", json={"prompt": "x"}, headers=auth)
    assert await error_code(resp) == (403, "cross_origin"), "Host is 127.0.0.1:port, not the public name"

    untrusted = await iris()  # the same DATA_DIR, so the same profile
    auth = {"Authorization": f"Bearer {key}", "Origin": public, "X-Forwarded-Host": "iris.example.org"}
    resp = await untrusted.post("/prompt-alice", json={"prompt": "x"}, headers=auth)
    assert await error_code(resp) == (403, "cross_origin"), "X-Forwarded-Host only from a trusted proxy"


async def test_a_key_in_a_header_is_checked_before_the_body_is_read(iris):
    client = await iris(BLACKLIST_AUTO_FAILURES="0", RATE_LIMIT_AUTH="100/minute")
    key = await add_profile(client, "alice")
    await add_profile(client, "bob")
    garbage = {"data": b"{not json at all", "headers": {"Content-Type": "application/json"}}
    wrong = {"Authorization": "Bearer not-the-key-0000"}
    for path in ("/prompt-alice", "/profile"):
        resp = await client.post(path, data=garbage["data"], headers={**garbage["headers"], **wrong})
        assert await error_code(resp) == (401, "invalid_key"), path
    resp = await client.post("/prompt-bob", data=garbage["data"],
                             headers={**garbage["headers"], "Authorization": f"Bearer {key}"})
    assert await error_code(resp) == (403, "wrong_user")
    resp = await client.post("/analyze", data=b"{not json", headers={"X-API-Key": "not-the-key-0000"})
    assert await error_code(resp) == (401, "invalid_key")
    resp = await client.post("/sign", data=b"{not json", headers=wrong)
    assert await error_code(resp) == (401, "invalid_key")
    resp = await client.post("/cache/delete", data=b"{not json", headers={"X-Admin-Token": ACCESS_KEY})
    assert await error_code(resp) == (401, "admin_required")
    resp = await client.post("/prompt-alice", data=garbage["data"],
                             headers={**garbage["headers"], "Authorization": f"Bearer {key}"})
    assert await error_code(resp) == (400, "invalid_json"), "the right key: now the body counts"
