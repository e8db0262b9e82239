"""``POST /analyze``: VisionAI's web app. JSON ``{"image": "data:image/...;base64,..."}`` with
``X-API-Key`` (a profile key; the server's image access key only with ANALYZE_ACCESS_KEY=true, as
that key may be published in pages); the cascade is asked for a classification and the answer has
VisionAI's shape: ``{label, confidence 0-100, predictions (top 5), mode, message}``. Browsers may
call it from the ANALYZE_ORIGINS only (``proxy.vision.cors``)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from proxy.errors import BadRequest, Unauthorized
from proxy.keys import ACCOUNTS, GUARD, SECRETS, SETTINGS, VISION
from proxy.security.credentials import bearer_of, same
from proxy.security.gate import address_of
from proxy.vision.answers import Prediction
from proxy.vision.cascade import Outcome
from proxy.vision.providers import providers_for
from proxy.vision.questions import classification
from proxy.vision.records import Record
from proxy.vision.uploads import frame_from_data_url
from proxy.web.responses import json_response

ACCESS_KEY_USER = "@access-key"


async def analyze(request: web.Request) -> web.Response:
    app = request.app
    username = await _caller(request)
    await app[GUARD].process(username)
    image = _image_field(await _json(request))
    settings = app[SETTINGS]
    frame = await frame_from_data_url(image, settings.vision, settings.server.max_upload_bytes,
                                      pool=app[VISION].checks.pool)
    own_keys = {} if username == ACCESS_KEY_USER else await app[ACCOUNTS].provider_keys(username)
    cfg = settings.vision
    outcome = await app[VISION].cascade.run(classification(), frame, providers_for(cfg, username, own_keys))
    body = visionai_body(outcome)
    if username != ACCESS_KEY_USER:
        app[VISION].later.add(Record(username, "analyze", {
            "provider": outcome.provider, "calls": outcome.ledger.calls,
            "confidence": round(outcome.reading.confidence, 3)}))
    return json_response(body)


async def _caller(request: web.Request) -> str:
    """The profile owning the key, or ``@access-key`` for the server's access key (when allowed)."""
    app = request.app
    given = request.headers.get("X-API-Key") or bearer_of(request)
    if not given:
        raise Unauthorized("send X-API-Key: a profile key", code="missing_key")
    if same(given, app[SECRETS].access_key):
        if app[SETTINGS].vision.analyze_access_key:
            return ACCESS_KEY_USER
        raise Unauthorized("the image access key is not taken here (it may be published in pages): send a "
                           "profile key, or set ANALYZE_ACCESS_KEY=true", code="profile_key_required")
    guard, address = app[GUARD], address_of(request)
    await guard.key_check_allowed(address)
    profile = await app[ACCOUNTS].profile_by_key(given)
    if profile is None:
        await guard.key_failed(address, counted=False)
        raise Unauthorized("the key is not valid", code="invalid_key")
    return profile.username


async def _json(request: web.Request) -> Any:
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise BadRequest("the body must be JSON: {\"image\": \"data:image/...;base64,...\"}",
                         code="invalid_json") from None


def _image_field(body: Any) -> str:
    image = body.get("image") if isinstance(body, dict) else None
    if not isinstance(image, str) or not image:
        raise BadRequest("No image provided", code="missing_image")
    return image


TOP = 5


def visionai_body(outcome: Outcome) -> dict[str, Any]:
    reading = outcome.reading
    label = reading.answer
    others = [p for p in reading.predictions if p.label.casefold() != label.casefold()]
    top = [Prediction(label, reading.confidence), *others][:TOP]
    return {
        "label": label,
        "confidence": _percent(reading.confidence),
        "predictions": [{"label": p.label, "confidence": _percent(p.confidence)} for p in top],
        "mode": "real",
        "message": _message(outcome),
        "provider": outcome.provider,
        "calls": outcome.ledger.calls,
    }


def _message(outcome: Outcome) -> str:
    via = outcome.via
    if via is not None and via.spec.kind == "onnx":
        return f"Classified by the local model {via.spec.model} ({outcome.provider}, on this server)"
    how = "judged from several providers" if outcome.judged else f"answered by {outcome.provider}"
    return f"Classified by the Iris vision cascade ({how})"


def _percent(confidence: float) -> float:
    return round(confidence * 100.0, 2)
