"""POST /process as the Frame glasses app sends it, against the real app, the real SQLite store and
fake providers on 127.0.0.1: auth then multipart, the answer's fields, dedup, bad frames, failures,
deadlines, limits, and that no provider key ever reaches the client."""

from __future__ import annotations

import asyncio
import base64

import aiohttp
import orjson
import pytest

from tests.support.vision_fakes import scene
from tests.support.vision_rig import ALICE_KEY, BOB_KEY, NAMES, SERVER_KEYS, rig_starter, settled


@pytest.fixture
def glasses(iris, serve):
    return rig_starter(iris, serve)


async def test_the_glasses_app_flow(glasses):
    rig = await glasses()
    await rig.auth()
    image = scene(seed=7)
    resp = await rig.frame(image)
    assert resp.status == 200
    body = await resp.json()
    assert body["answer"] == "gemini says apple"
    assert body["success"] is True and body["error"] is None
    assert body["ai_responses"] == {"gemini": "gemini says apple"}
    assert body["prompt_used"].startswith("Answer in at most 15 words")
    assert isinstance(body["processing_time"], float) and body["processing_time"] >= 0
    assert (body["provider"], body["confidence"], body["calls"], body["cached"]) == ("gemini", 0.9, 1, False)
    assert body["debug_messages"] and all(m.isascii() for m in body["debug_messages"])
    [call] = rig.fakes["gemini"].calls
    assert call.image_url == "data:image/jpeg;base64," + base64.b64encode(image).decode()
    assert call.text == body["prompt_used"]
    assert call.headers["Authorization"] == f"Bearer {SERVER_KEYS['gemini']}"
    assert await settled(rig, "SELECT COUNT(*) FROM frames WHERE username = 'alice'", 1) == 1
    assert await settled(rig, "SELECT COUNT(*) FROM activity WHERE kind = 'frame'", 1) == 1


async def test_a_providers_cookie_is_not_sent_back(glasses):
    """One shared HTTP session serves every user: a cookie one call got must not ride on the next.
    (By name: aiohttp's cookie jar ignores cookies from IP addresses anyway.)"""
    rig = await glasses(provider_host="localhost")
    rig.fakes["gemini"].cookie = "set-for-alice"
    await rig.auth()
    for seed in (1, 2):
        assert (await rig.frame(scene(seed=seed))).status == 200
    assert [c.headers.get("Cookie") for c in rig.fakes["gemini"].calls] == [None, None]


async def test_process_needs_the_session_or_a_key(glasses):
    rig = await glasses()
    resp = await rig.frame(scene())
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "auth_required"
    assert rig.provider_calls == 0
    form = aiohttp.FormData({"username": "alice", "key": ALICE_KEY})
    form.add_field("image", scene(), filename="frame_image.jpg", content_type="application/octet-stream")
    assert (await rig.client.post("/process", data=form)).status == 200


async def test_a_session_cannot_act_as_another_user(glasses):
    rig = await glasses()
    await rig.auth(BOB_KEY)
    resp = await rig.frame(scene(), username="alice")
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "wrong_user"
    assert rig.provider_calls == 0


async def test_custom_prompt_and_prompt_field(glasses):
    rig = await glasses()
    await rig.auth()
    await rig.db.set_prompt("alice", "Read the sign aloud.")
    body = await (await rig.frame(scene(seed=1))).json()
    assert body["prompt_used"] == "Read the sign aloud."
    assert rig.fakes["gemini"].calls[-1].text == "Read the sign aloud."
    body = await (await rig.frame(scene(seed=2), prompt="Count the cars.")).json()
    assert body["prompt_used"] == "Count the cars."


async def test_repeated_scene_is_answered_from_memory(glasses):
    rig = await glasses(VISION_DEDUP_SECONDS="0.6")
    await rig.auth()
    first = await (await rig.frame(scene(seed=5))).json()
    again = await (await rig.frame(scene(seed=5, shift=2))).json()
    assert again["cached"] is True and again["calls"] == 0
    assert again["answer"] == first["answer"] and again["provider"] == "gemini"
    assert rig.provider_calls == 1
    other = await (await rig.frame(scene(seed=6))).json()
    assert other["cached"] is False and rig.provider_calls == 2
    reprompted = await (await rig.frame(scene(seed=6), prompt="Another question")).json()
    assert reprompted["cached"] is False and rig.provider_calls == 3
    await asyncio.sleep(0.7)
    later = await (await rig.frame(scene(seed=6), prompt="Another question")).json()
    assert later["cached"] is False and rig.provider_calls == 4


async def test_dedup_is_per_user(glasses):
    rig = await glasses()
    await rig.auth()
    await rig.frame(scene(seed=5))
    await rig.client.post(f"/auth-{BOB_KEY}")
    body = await (await rig.frame(scene(seed=5), username="bob")).json()
    assert body["cached"] is False and rig.provider_calls == 2


async def test_escalation_and_judge_through_the_route(glasses):
    rig = await glasses()
    for fake in rig.fakes.values():
        fake.confidence = 0.3
    await rig.auth()
    body = await (await rig.frame(scene())).json()
    assert body["success"] is True
    assert body["judged"] is True and body["calls"] == 4
    assert body["answer"] == "A red apple on a table"
    assert set(body["ai_responses"]) == set(NAMES)


@pytest.mark.parametrize(("image", "status", "code"), [
    (b"this is not a jpeg", 400, "not_an_image"),
    (b"", 400, "not_an_image"),
    (b"\xff\xd8" + b"x" * 30_000, 413, "image_too_large"),
    (b"\xff\xd8" + b"x" * 200_000, 413, "payload_too_large"),
])
async def test_bad_frames(glasses, image, status, code):
    rig = await glasses(MAX_UPLOAD_BYTES="20000")
    await rig.auth()
    resp = await rig.frame(image)
    assert resp.status == status
    assert (await resp.json())["error"]["code"] == code
    assert rig.provider_calls == 0


async def test_missing_image_is_400(glasses):
    rig = await glasses()
    await rig.auth()
    resp = await rig.client.post("/process", data={"username": "alice"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "missing_image"


async def test_a_provider_error_with_a_key_never_reaches_the_client(glasses):
    rig = await glasses()
    await rig.auth()
    await rig.db.set_provider_keys("alice", {"deepseek_api_key": "sk-alice-own-deepseek-999"})
    rig.fakes["gemini"].mode = "error401"
    resp = await rig.frame(scene())
    text = await resp.text()
    assert resp.status == 200 and (await resp.json())["provider"] == "deepseek"
    assert rig.fakes["deepseek"].calls[0].headers["Authorization"] == "Bearer sk-alice-own-deepseek-999"
    for fake in rig.fakes.values():
        fake.mode = "error500"
    failed = await rig.frame(scene(seed=9))
    failed_text = await failed.text()
    assert failed.status == 502
    body = orjson.loads(failed_text)
    assert body["error"]["code"] == "upstream_failed" and body["success"] is False
    assert "HTTP 500" in body["error"]["message"]
    for secret in [*SERVER_KEYS.values(), "sk-alice-own-deepseek-999"]:
        assert secret not in text and secret not in failed_text


async def test_deadline_gives_504_in_the_error_shape(glasses):
    rig = await glasses(VISION_DEADLINE="0.5", VISION_CALL_TIMEOUT="5")
    for fake in rig.fakes.values():
        fake.mode = "slow"
    await rig.auth()
    resp = await rig.frame(scene())
    body = await resp.json()
    assert resp.status == 504
    assert body["error"]["code"] == "deadline_exceeded" and body["success"] is False
    assert body["answer"] and len(body["answer"]) <= 120


async def test_frames_are_rate_limited_per_user(glasses):
    rig = await glasses(RATE_LIMIT_PROCESS="2/minute")
    await rig.auth()
    for seed in (1, 2):
        assert (await rig.frame(scene(seed=seed))).status == 200
    resp = await rig.frame(scene(seed=3))
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    assert (await resp.json())["error"]["code"] == "rate_limited"
    assert rig.provider_calls == 2


async def test_health(glasses):
    rig = await glasses()
    resp = await rig.client.get("/health")
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "healthy"
    assert body["providers"] == list(NAMES) and body["judge"] == "gemini"
    text = await resp.text()
    assert not any(key in text for key in SERVER_KEYS.values())


async def test_an_overlong_prompt_is_400(glasses):
    rig = await glasses(VISION_MAX_PROMPT_CHARS="20")
    await rig.auth()
    resp = await rig.frame(scene(), prompt="x" * 21)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "prompt_too_long"
    assert rig.provider_calls == 0


async def test_a_failed_frame_is_recorded_without_a_stored_frame(glasses):
    rig = await glasses()
    for fake in rig.fakes.values():
        fake.mode = "error500"
    await rig.auth()
    assert (await rig.frame(scene())).status == 502
    sql = "SELECT COUNT(*) FROM activity WHERE kind = 'frame' AND json_extract(data, '$.success') = 0"
    assert await settled(rig, sql, 1) == 1
    assert await rig.db.run(lambda ctx: ctx.conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0]) == 0


async def test_records_still_queued_are_written_at_shutdown(glasses):
    from proxy.accounts.service import open_context
    from proxy.keys import SETTINGS

    rig = await glasses()
    await rig.auth()
    assert (await rig.frame(scene())).status == 200
    settings = rig.client.app[SETTINGS]
    await rig.client.close()
    ctx = open_context(settings)
    try:
        assert ctx.conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0] == 1
        assert ctx.conn.execute("SELECT COUNT(*) FROM activity WHERE kind = 'frame'").fetchone()[0] == 1
    finally:
        ctx.conn.close()
