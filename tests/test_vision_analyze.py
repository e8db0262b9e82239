"""POST /analyze in the VisionAI shape: keys (profile keys; the image access key only when allowed),
the classification asked of the cascade, the answer's shape (label, 0-100 confidence, top 5), bad
bodies, and CORS for the web app's origin only."""

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
    resp = await rig.client.post("/analyze", json=payload(), headers={"X-API-Key": ALICE_KEY})
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
    body = await (await rig.client.post("/analyze", json=payload(), headers={"X-API-Key": ALICE_KEY})).json()
    assert body["predictions"] == [{"label": "Cat", "confidence": 90.0}]


async def test_a_profile_key_uses_the_profiles_provider_keys(webapp):
    rig = await webapp()
    await rig.db.set_provider_keys("alice", {"gemini_api_key": "sk-alice-gemini-0001"})
    resp = await rig.client.post("/analyze", json=payload(), headers={"X-API-Key": ALICE_KEY})
    assert resp.status == 200
    assert rig.fakes["gemini"].calls[0].headers["Authorization"] == "Bearer sk-alice-gemini-0001"


@pytest.mark.parametrize(("headers", "code"), [({}, "missing_key"),
                                               ({"X-API-Key": "wrong-key-000000000"}, "invalid_key"),
                                               ({"X-API-Key": ACCESS_KEY}, "profile_key_required")])
async def test_keys_are_required(webapp, headers, code):
    rig = await webapp(ANALYZE_ORIGINS=ORIGIN)
    resp = await rig.client.post("/analyze", json=payload(), headers={"Origin": ORIGIN, **headers})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == code
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN  # the page can read why
    assert resp.headers["Cache-Control"] == "no-store"
    assert rig.provider_calls == 0


async def test_the_image_access_key_spends_the_providers_only_when_allowed(webapp):
    """The access key may sit in a page's <img> URLs: copied from there, it must not buy vision calls."""
    rig = await webapp()
    refused = await rig.client.post("/analyze", json=payload(), headers={"X-API-Key": ACCESS_KEY})
    assert refused.status == 401 and (await refused.json())["error"]["code"] == "profile_key_required"
    assert rig.provider_calls == 0


async def test_the_image_access_key_works_with_analyze_access_key(webapp):
    rig = await webapp(ANALYZE_ACCESS_KEY="true")
    resp = await rig.client.post("/analyze", json=payload(), headers={"X-API-Key": ACCESS_KEY})
    assert resp.status == 200 and (await resp.json())["label"] == "gemini says apple"


@pytest.mark.parametrize(("body", "code"), [
    (b"not json", "invalid_json"),
    (b"{}", "missing_image"),
    (b'{"image": 5}', "missing_image"),
    (b'{"image": "data:image/png;base64,!!!"}', "not_an_image"),
    (b'{"image": "data:image/png;base64,aGVsbG8gd29ybGQ="}', "not_an_image"),
])
async def test_bad_bodies_are_400(webapp, body, code):
    rig = await webapp()
    resp = await rig.client.post("/analyze", data=body, headers={"X-API-Key": ALICE_KEY,
                                                                 "Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == code


async def test_failures_keep_the_error_shape_and_no_secret(webapp):
    rig = await webapp()
    for fake in rig.fakes.values():
        fake.mode = "error401"
    resp = await rig.client.post("/analyze", json=payload(), headers={"X-API-Key": ALICE_KEY})
    text = await resp.text()
    assert resp.status == 502 and '"upstream_failed"' in text
    assert not any(key in text for key in SERVER_KEYS.values())


async def test_cors_for_the_configured_origin(webapp):
    rig = await webapp(ANALYZE_ORIGINS=ORIGIN, VISION_CORS_ORIGINS=ORIGIN)
    pre = await rig.client.options("/analyze", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-api-key"})
    assert pre.status == 204
    assert pre.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert "X-API-Key" in pre.headers["Access-Control-Allow-Headers"]
    resp = await rig.client.post("/analyze", json=payload(), headers={"X-API-Key": ALICE_KEY, "Origin": ORIGIN})
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    other = await rig.client.options("/analyze", headers={"Origin": "https://evil.example",
                                                          "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in other.headers
    health = await rig.client.get("/health", headers={"Origin": ORIGIN})
    assert health.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_analyze_is_closed_to_pages_elsewhere_by_default(webapp):
    """No ANALYZE_ORIGINS: no page on any origin may call /analyze (VISION_CORS_ORIGINS=* is /health's)."""
    rig = await webapp()
    pre = await rig.client.options("/analyze", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert pre.status == 204 and "Access-Control-Allow-Origin" not in pre.headers
    resp = await rig.client.post("/analyze", json=payload(), headers={"X-API-Key": ALICE_KEY, "Origin": ORIGIN})
    assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers  # the browser hides it
    health = await rig.client.get("/health", headers={"Origin": ORIGIN})
    assert health.headers["Access-Control-Allow-Origin"] == "*"


async def test_health_names_no_provider_without_a_key(iris):
    client = await iris()
    body = await (await client.get("/health")).json()
    assert body["status"] == "healthy" and body["providers"] == [] and body["judge"] is None
