"""POST /analyze in the VisionAI shape: keys, the classification asked of the cascade, the answer's
shape (label, 0-100 confidence, top 5), bad bodies, and CORS for the web app's origin."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import ACCESS_KEY
from tests.support.vision_fakes import scene
from tests.support.vision_rig import ALICE_KEY, SERVER_KEYS, rig_starter

ORIGIN = "https://visionai.example"
PREDICTIONS = [{"label": n, "confidence": c} for n, c in
               [("Granny Smith", 0.81), ("Pear", 0.07), ("Lime", 0.05), ("Tennis Ball", 0.03), ("Lemon", 0.02),
                ("Fig", 0.01)]]


@pytest.fixture
def webapp(iris, serve):
    return rig_starter(iris, serve)


def payload(image: bytes | None = None) -> dict[str, str]:
    return {"image": "data:image/jpeg;base64," + base64.b64encode(image or scene()).decode()}


async def test_classification_in_the_visionai_shape(webapp):
    rig = await webapp()
    rig.fakes["gemini"].answer = "Granny Smith"
    rig.fakes["gemini"].confidence = 0.81
    rig.fakes["gemini"].predictions = PREDICTIONS
    resp = await rig.client.post("/analyze", json=payload(), headers={"X-API-Key": ACCESS_KEY})
    assert resp.status == 200
    body = await resp.json()
    assert body["label"] == "Granny Smith" and body["confidence"] == 81.0
    assert body["mode"] == "real" and body["message"]
    assert body["predictions"] == [{"label": p["label"], "confidence": round(p["confidence"] * 100, 2)}
                                   for p in PREDICTIONS[:5]]
    [call] = rig.fakes["gemini"].calls
    assert "predictions" in call.system and call.text.startswith("Classify")


async def test_label_heads_the_predictions_even_when_the_model_omits_them(webapp):
    rig = await webapp()
    rig.fakes["gemini"].answer = "Cat"
    body = await (await rig.client.post("/analyze", json=payload(), headers={"X-API-Key": ACCESS_KEY})).json()
    assert body["predictions"] == [{"label": "Cat", "confidence": 90.0}]


async def test_a_profile_key_uses_the_profiles_provider_keys(webapp):
    rig = await webapp()
    await rig.db.set_provider_keys("alice", {"gemini_api_key": "sk-alice-gemini-0001"})
    resp = await rig.client.post("/analyze", json=payload(), headers={"X-API-Key": ALICE_KEY})
    assert resp.status == 200
    assert rig.fakes["gemini"].calls[0].headers["Authorization"] == "Bearer sk-alice-gemini-0001"


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong-key-000000000"}])
async def test_keys_are_required(webapp, headers):
    rig = await webapp()
    resp = await rig.client.post("/analyze", json=payload(), headers={"Origin": ORIGIN, **headers})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] in ("missing_key", "invalid_key")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert rig.provider_calls == 0


@pytest.mark.parametrize(("body", "code"), [
    (b"not json", "invalid_json"),
    (b"{}", "missing_image"),
    (b'{"image": 5}', "missing_image"),
    (b'{"image": "data:image/png;base64,!!!"}', "not_an_image"),
    (b'{"image": "data:image/png;base64,aGVsbG8gd29ybGQ="}', "not_an_image"),
])
async def test_bad_bodies_are_400(webapp, body, code):
    rig = await webapp()
    resp = await rig.client.post("/analyze", data=body, headers={"X-API-Key": ACCESS_KEY,
                                                                 "Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == code


async def test_failures_keep_the_error_shape_and_no_secret(webapp):
    rig = await webapp()
    for fake in rig.fakes.values():
        fake.mode = "error401"
    resp = await rig.client.post("/analyze", json=payload(), headers={"X-API-Key": ACCESS_KEY})
    text = await resp.text()
    assert resp.status == 502 and '"upstream_failed"' in text
    assert not any(key in text for key in SERVER_KEYS.values())


async def test_cors_for_the_configured_origin(webapp):
    rig = await webapp(VISION_CORS_ORIGINS=ORIGIN)
    pre = await rig.client.options("/analyze", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-api-key"})
    assert pre.status == 204
    assert pre.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert "X-API-Key" in pre.headers["Access-Control-Allow-Headers"]
    resp = await rig.client.post("/analyze", json=payload(), headers={"X-API-Key": ACCESS_KEY, "Origin": ORIGIN})
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    other = await rig.client.options("/analyze", headers={"Origin": "https://evil.example",
                                                          "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in other.headers
    health = await rig.client.get("/health", headers={"Origin": ORIGIN})
    assert health.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_health_names_no_provider_without_a_key(iris):
    client = await iris()
    body = await (await client.get("/health")).json()
    assert body["status"] == "healthy" and body["providers"] == [] and body["judge"] is None
