"""A LiteLLM proxy as the one upstream of images, the prompt LLM and vision (issue 14, items 17 and
20-25): one URL, many models and roles, and LiteLLM's own error bodies, through the real app."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest

from proxy.upstream.openai import refusal_in
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.support.fakes import FakePollinations
from tests.support.litellm_fakes import NO_DB, REFUSAL_DEBUG, REFUSAL_SHORT, FakeLiteLLM, invalid_model
from tests.support.vision_fakes import scene
from tests.support.vision_rig import ALICE_KEY, Rig

ADMIN = {"X-Admin-Token": ADMIN_TOKEN}
TEMPLATE = "Improve <<{ORIGINAL_PROMPT}>> and answer in <prompt></prompt>"


@pytest.fixture
async def litellm(serve: Any) -> FakeLiteLLM:
    fake = FakeLiteLLM(models={"dall-e-3": "ok", "flux": "error500", "nodb": "nodb", "gpt-4o-mini": "prompt",
                               "strict": "refuse_short"})
    await serve(fake)
    return fake


def image(prompt: str, query: str = "") -> str:
    return f"/prompt/{prompt}?key={ACCESS_KEY}{'&' + query if query else ''}"


async def start(iris: Any, litellm: FakeLiteLLM, **env: str) -> Any:
    settings = {"BACKEND_API_URLS": f"{litellm.url}/v1", "IMAGE_MODEL": "dall-e-3",
                "POLLINATIONS_FALLBACK": "false", **env}
    return await iris(**settings)


async def message(resp: Any) -> str:
    body = await resp.json()
    return str(body["error"]["message"])


# --- refusals (item 23) -----------------------------------------------------------------------------

@pytest.mark.parametrize("body", [REFUSAL_DEBUG, REFUSAL_SHORT], ids=["debug", "short"])
def test_litellms_refusals_are_refusals(body):
    assert refusal_in(400, body)


@pytest.mark.parametrize("body", [
    {"error": {"message": "Your request was rejected by the safety system.", "type": "image_generation_user_error",
               "param": None, "code": "moderation_blocked"}},
    {"error": {"message": "blocked", "type": "invalid_request_error", "param": None,
               "code": "content_policy_violation"}},
    {"error": {"message": "blocked", "type": "content_policy_violation", "param": None, "code": None}},
], ids=["moderation_blocked", "code", "type"])
def test_openais_type_and_code_forms_are_refusals(body):
    assert refusal_in(400, body)


@pytest.mark.parametrize("body", [invalid_model("/images/generations", "junk"), NO_DB,
                                  {"error": {"message": "size must be 1024x1024", "type": "invalid_request_error",
                                             "param": "size", "code": "400"}}])
def test_other_400s_are_not_refusals(body):
    assert not refusal_in(400, body)


async def test_a_short_litellm_refusal_starts_the_safety_rewrite(iris, litellm):
    """Debug suffix off: ``Request blocked.`` is still a refusal, so the rewrite runs."""
    client = await start(iris, litellm, IMAGE_MODEL="strict", BLOCKED_RETRY_ATTEMPTS="1",
                         DE_NSFW_ENABLED="true", LLM_OPTIMIZATION_API_URL=f"{litellm.url}/v1",
                         LLM_OPTIMIZATION_MODEL="gpt-4o-mini", DE_NSFW_TEMPLATE=TEMPLATE, DE_NSFW_MAX_ATTEMPTS="1")
    resp = await client.get(image("a%20fight"))
    assert resp.status == 502
    text = await message(resp)
    assert "refused" in text and "rewrite 1: refused" in text
    assert litellm.models_called("/v1/chat/completions") == ["gpt-4o-mini"]


# --- IMAGE_MODEL, and configuration errors in the log (item 22) --------------------------------------

async def test_image_model_is_sent_when_the_request_names_none(iris, litellm, serve):
    pollinations = FakePollinations()
    await serve(pollinations)
    client = await start(iris, litellm, POLLINATIONS_FALLBACK="true", POLLINATIONS_URL=pollinations.url,
                         MODEL_MAP=orjson.dumps({f"{litellm.url}/v1": {"sdxl": "dall-e-3"}}).decode())
    resp = await client.get(image("a%20red%20apple"))
    assert resp.status == 200 and await resp.read() == litellm.image
    resp = await client.get(image("a%20red%20pear", "model=sdxl"))  # mapped like any model
    assert resp.status == 200 and await resp.read() == litellm.image
    assert litellm.models_called("/v1/images/generations") == ["dall-e-3", "dall-e-3"]
    assert pollinations.calls == []


async def test_image_model_is_mapped_per_backend(iris, litellm):
    client = await start(iris, litellm, IMAGE_MODEL="default-model",
                         MODEL_MAP=orjson.dumps({f"{litellm.url}/v1": {"default-model": "dall-e-3"}}).decode())
    assert (await client.get(image("a%20plum"))).status == 200
    assert litellm.models_called("/v1/images/generations") == ["dall-e-3"]


async def test_a_backends_configuration_error_is_logged_naming_it(iris, litellm, caplog):
    """No IMAGE_MODEL: LiteLLM answers 400 "Invalid model name". Iris says so in its log, naming
    the backend as /status does, with the error's code but never its text."""
    client = await start(iris, litellm, IMAGE_MODEL="")
    with caplog.at_level(logging.WARNING, logger="proxy"):
        resp = await client.get(image("a%20red%20apple"))
    assert resp.status == 502
    warnings = [r.getMessage() for r in caplog.records if r.name == "proxy.upstream.pool"]
    assert len(warnings) == 1
    assert "backend-1" in warnings[0] and "HTTP 400 (code 400)" in warnings[0]
    assert "check its URL, token and model" in warnings[0]
    assert "Invalid model name" not in caplog.text


# --- what a 502 says (items 17 and 24) -------------------------------------------------------------------

async def test_a_502_names_the_backend_by_its_label_with_the_errors_type_and_code(iris, litellm):
    client = await start(iris, litellm, IMAGE_MODEL="nodb")
    resp = await client.get(image("a%20red%20apple"))
    assert resp.status == 502
    text = await message(resp)
    assert "backend-1: HTTP 400 (type no_db_connection, code 400)" in text
    assert litellm.url.removeprefix("http://") not in text  # the URL stays out: /status maps the label
    assert "No connected db" not in text  # the free text may echo anything: never passed on
    status = await (await client.get("/status", headers=ADMIN)).json()
    assert status["backends"][0]["label"] == "backend-1"
    assert status["backends"][0]["url"] == f"{litellm.url}/v1"


# --- health per model and per role (items 5, 20 and 25) ---------------------------------------------------

async def test_a_clients_bad_model_does_not_cool_the_backend_down_for_everyone(iris, litellm):
    client = await start(iris, litellm, BREAKER_THRESHOLD="3")
    for n in range(4):
        resp = await client.get(image(f"junk%20{n}", "model=junk"))
        assert resp.status == 502 and "HTTP 400" in await message(resp)
    assert len(litellm.calls) == 4  # never skipped as "cooling down": a 400 is the client's
    resp = await client.get(image("a%20red%20apple"))
    assert resp.status == 200 and await resp.read() == litellm.image
    status = await (await client.get("/status", headers=ADMIN)).json()
    rows = {row["model"]: row for row in status["backends"]}
    assert rows["dall-e-3"]["state"] == "healthy" and rows["dall-e-3"]["calls"] == 1
    assert rows["(other)"]["state"] == "healthy"
    assert (rows["(other)"]["calls"], rows["(other)"]["rejected"], rows["(other)"]["failures"]) == (4, 4, 0)


async def test_one_model_failing_cools_down_only_that_model(iris, litellm):
    client = await start(iris, litellm, BREAKER_THRESHOLD="2",
                         MODEL_MAP=orjson.dumps({f"{litellm.url}/v1": {"flux": "flux"}}).decode())
    for n in range(3):
        assert (await client.get(image(f"flux%20{n}", "model=flux"))).status == 502
    assert litellm.models_called("/v1/images/generations") == ["flux", "flux"]  # then it cools down
    resp = await client.get(image("a%20red%20apple"))
    assert resp.status == 200 and await resp.read() == litellm.image
    status = await (await client.get("/status", headers=ADMIN)).json()
    rows = {row["model"]: row["state"] for row in status["backends"]}
    assert rows == {"dall-e-3": "healthy", "flux": "cooling_down"}


async def test_the_prompt_llm_and_the_image_backend_on_one_url_keep_their_own_health(iris, litellm):
    litellm.models["gpt-4o-mini"] = "error500"
    client = await start(iris, litellm, BREAKER_THRESHOLD="1", LLM_OPTIMIZATION_ENABLED="true",
                         LLM_OPTIMIZATION_API_URL=f"{litellm.url}/v1", LLM_OPTIMIZATION_MODEL="gpt-4o-mini",
                         LLM_OPTIMIZATION_TEMPLATE=TEMPLATE)
    for n in range(2):  # the LLM fails and cools down; the image backend goes on
        resp = await client.get(image(f"a%20red%20apple%20{n}"))
        assert resp.status == 200 and await resp.read() == litellm.image
    assert litellm.models_called("/v1/chat/completions") == ["gpt-4o-mini"]
    status = await (await client.get("/status", headers=ADMIN)).json()
    assert (status["llm"]["state"], status["llm"]["calls"], status["llm"]["failures"]) == ("cooling_down", 1, 1)
    image_row = status["backends"][0]
    assert (image_row["state"], image_row["calls"], image_row["failures"]) == ("healthy", 2, 0)


async def test_each_role_on_one_url_counts_its_own_calls(iris, litellm):
    """The LLM on the image backend's URL: /status counts each role's own calls."""
    client = await start(iris, litellm, LLM_OPTIMIZATION_ENABLED="true", LLM_OPTIMIZATION_API_URL=f"{litellm.url}/v1",
                         LLM_OPTIMIZATION_MODEL="gpt-4o-mini", LLM_OPTIMIZATION_TEMPLATE=TEMPLATE)
    for prompt in ("a%20pear", "a%20plum", "a%20fig"):
        assert (await client.get(image(prompt))).status == 200
    assert [c.json["prompt"] for c in litellm.calls if c.path.endswith("generations")] == [
        "enhanced: a pear", "enhanced: a plum", "enhanced: a fig"]
    status = await (await client.get("/status", headers=ADMIN)).json()
    assert status["llm"]["calls"] == 3 and status["backends"][0]["calls"] == 3


# --- vision: two providers on one URL (item 21) -----------------------------------------------------------

async def test_vision_recovers_when_litellm_comes_back(iris, litellm):
    """Two providers on one LiteLLM URL; the first answers without a confidence. LiteLLM goes
    down, both cool down; it comes back: the first's answer is a low-confidence one (not a
    failure), the second is asked too, and its confident answer is given."""
    litellm.models.update({"quick": "noconfidence", "good": "vision"})
    providers = [{"name": name, "base_url": f"{litellm.url}/v1", "model": name, "token": f"sk-{name}-0123456789"}
                 for name in ("quick", "good")]
    client = await iris(VISION_PROVIDERS=orjson.dumps(providers).decode(), VISION_CALL_TIMEOUT="2",
                        VISION_DEADLINE="5", BREAKER_THRESHOLD="1", BREAKER_COOLDOWN="0.2",
                        VISION_DEDUP_SECONDS="0")
    rig = Rig(client, {})
    from proxy.accounts import profiles

    await rig.db.run(profiles.add, "alice", ALICE_KEY)
    await rig.auth()
    litellm.down = True
    assert (await rig.frame(scene(seed=1))).status == 502
    litellm.down = False
    await asyncio.sleep(1.1)  # past the cool-down (and the one-second probe window)
    for seed in (2, 3):
        resp = await rig.frame(scene(seed=seed))
        assert resp.status == 200
        body = await resp.json()
        assert (body["answer"], body["provider"]) == ("good says apple", "good")
        assert body["ai_responses"] == {"quick": "quick says apple", "good": "good says apple"}
