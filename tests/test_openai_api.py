"""The OpenAI Images API, driven by the ``openai`` package itself pointed at Iris (sync on a
thread, since the server shares the test's event loop, and async): the same cache entries,
single flight and limits as /prompt, and errors the SDK turns into its own exceptions."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from PIL import Image
from yarl import URL

from proxy.keys import FLIGHT
from tests.conftest import ACCESS_KEY
from tests.support.fakes import FakeImageBackend, png

T = TypeVar("T")
README = Path(__file__).resolve().parents[1] / "README.md"
BEARER = {"Authorization": f"Bearer {ACCESS_KEY}"}


def base_url(client: Any) -> str:
    return str(client.server.make_url("/v1"))


@pytest.fixture
async def sdk() -> AsyncIterator[Callable[..., Any]]:
    """``sdk(client)`` (async) or ``sdk(client, sync=True)``: OpenAI's clients pointed at Iris,
    without retries, closed after the test."""
    made: list[OpenAI | AsyncOpenAI] = []

    def make(client: Any, key: str = ACCESS_KEY, *, sync: bool = False) -> Any:
        kind = OpenAI if sync else AsyncOpenAI
        made.append(kind(api_key=key, base_url=base_url(client), max_retries=0))
        return made[-1]

    yield make
    for one in made:
        if isinstance(one, AsyncOpenAI):
            await one.close()
        else:
            one.close()


async def off_loop(call: Callable[[], T]) -> T:
    """The sync client blocks: on a thread, while the loop serves Iris."""
    return await asyncio.to_thread(call)


async def test_generate_answers_openais_shape_from_the_same_cache_as_prompt(iris, backend, sdk):
    client = await iris(BACKEND_API_URLS=backend.url)
    answer = await off_loop(lambda: sdk(client, sync=True).images.generate(
        prompt="a red apple", size="512x256", response_format="b64_json"))
    assert len(answer.data) == 1 and answer.created > 0
    image = answer.data[0]
    assert base64.b64decode(image.b64_json or "") == backend.image
    assert image.revised_prompt == "a red apple" and image.url is None
    assert backend.calls[0].json == {"prompt": "a red apple", "n": 1, "size": "512x256", "seed": 42}
    same = await client.get("/prompt/a%20red%20apple?width=512&height=256", headers=BEARER)
    assert same.headers["X-Cache"] == "HIT" and await same.read() == backend.image
    again = await sdk(client).images.generate(prompt="a red apple", size="512x256",
                                                    response_format="b64_json")
    assert base64.b64decode(again.data[0].b64_json or "") == backend.image
    assert len(backend.calls) == 1


async def test_each_of_n_images_has_its_own_seed_and_its_own_entry(iris, backend, sdk):
    client = await iris(BACKEND_API_URLS=backend.url)
    answer = await sdk(client).images.generate(prompt="three pears", n=3, size="256x256")
    assert len(answer.data) == 3
    assert sorted(call.json["seed"] for call in backend.calls) == [42, 43, 44]
    for seed in (42, 43, 44):
        hit = await client.get(f"/prompt/three%20pears?width=256&height=256&seed={seed}", headers=BEARER)
        assert hit.headers["X-Cache"] == "HIT"
    from_43 = await sdk(client).images.generate(prompt="three pears", n=2, size="256x256",
                                                      extra_body={"seed": 43})  # Iris's own field
    assert len(from_43.data) == 2 and len(backend.calls) == 3  # 43 and 44: both cached


async def test_url_answers_are_signed_prompt_urls_that_render_without_a_key(iris, backend, sdk):
    client = await iris(BACKEND_API_URLS=backend.url, REQUIRE_SIGNED="true")
    answer = await off_loop(lambda: sdk(client, sync=True).images.generate(
        prompt="a blue door", size="256x256", response_format="url", quality="hd", style="natural"))
    image = answer.data[0]
    assert image.b64_json is None and image.url is not None
    url = URL(image.url)
    assert url.path == "/prompt/a blue door" and "key" not in url.query and "sig" in url.query
    assert url.host == "127.0.0.1" and url.port == client.server.port
    shown = await client.get(url.path_qs)  # no key: the signature is enough
    assert shown.status == 200 and shown.headers["X-Cache"] == "HIT"
    assert await shown.read() == backend.image and len(backend.calls) == 1
    tampered = await client.get(url.path_qs.replace("natural", "vivid"))
    assert tampered.status == 403


async def test_url_answers_name_the_host_the_client_asked_the_trusted_proxy_for(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, TRUSTED_PROXIES="127.0.0.1")
    forwarded = {"X-Forwarded-Host": "images.example.com", "X-Forwarded-Proto": "https"}
    async with AsyncOpenAI(api_key=ACCESS_KEY, base_url=base_url(client), max_retries=0,
                           default_headers=forwarded) as api:
        url = URL((await api.images.generate(prompt="a gate", response_format="url")).data[0].url or "")
    assert (url.scheme, url.host, url.port) == ("https", "images.example.com", 443)
    assert (await client.get(url.path_qs)).status == 200


async def test_without_response_format_each_item_carries_both(iris, backend, sdk):
    client = await iris(BACKEND_API_URLS=backend.url)
    image = (await sdk(client).images.generate(prompt="a kite")).data[0]
    assert base64.b64decode(image.b64_json or "") == backend.image
    assert image.url is not None and (await client.get(URL(image.url).path_qs)).status == 200


async def test_revised_prompt_is_the_prompt_that_made_the_image(iris, serve, llm, sdk):
    strict = FakeImageBackend(mode="refuse", accept_prefix="SAFE")
    await serve(strict)
    client = await iris(BACKEND_API_URLS=strict.url, LLM_OPTIMIZATION_ENABLED="true", LLM_OPTIMIZATION_API_URL=llm.url,
                        LLM_OPTIMIZATION_TEMPLATE="Improve: <<{ORIGINAL_PROMPT}>>", DE_NSFW_ENABLED="true",
                        DE_NSFW_TEMPLATE="Make safe: <<{ORIGINAL_PROMPT}>>", BLOCKED_RETRY_ATTEMPTS="1")
    llm.prefix = "SAFE"  # enhancement and rewrite both answer "SAFE <prompt>": the backend takes it
    enhanced = await sdk(client).images.generate(prompt="a storm")
    assert enhanced.data[0].revised_prompt == "SAFE a storm"
    strict.accept_prefix = "SAFE SAFE"  # now only a rewritten enhanced prompt is taken
    rewritten = await sdk(client).images.generate(prompt="a tempest", extra_body={"enhance": True})
    assert rewritten.data[0].revised_prompt == "SAFE SAFE a tempest"


async def test_quality_style_and_user_reach_the_backend_and_quality_makes_another_image(iris, backend, sdk):
    client = await iris(BACKEND_API_URLS=backend.url)
    api = sdk(client)
    await api.images.generate(prompt="a fox", quality="hd", style="vivid", user="user-1")
    assert backend.calls[-1].json == {"prompt": "a fox", "n": 1, "size": "1024x1024", "seed": 42,
                                      "quality": "hd", "style": "vivid", "user": "user-1"}
    await api.images.generate(prompt="a fox", quality="hd", style="vivid", user="user-2")  # user: same image
    assert len(backend.calls) == 1
    await api.images.generate(prompt="a fox", quality="standard", style="vivid")
    assert len(backend.calls) == 2
    hd = await client.get("/prompt/a%20fox?quality=hd&style=vivid", headers=BEARER)
    assert hd.headers["X-Cache"] == "HIT"


async def test_output_format_converts_the_image(iris, backend, sdk):
    backend.image = png(64, 64)
    client = await iris(BACKEND_API_URLS=backend.url)
    answer = await sdk(client).images.generate(prompt="a map", size="64x64", response_format="b64_json",
                                                     extra_body={"output_format": "webp", "output_compression": 50})
    image = Image.open(io.BytesIO(base64.b64decode(answer.data[0].b64_json or "")))
    assert image.format == "WEBP" and image.size == (64, 64)
    url = (await sdk(client).images.generate(prompt="a map", size="64x64", response_format="url",
                                                   extra_body={"output_format": "webp",
                                                               "output_compression": 50})).data[0].url
    shown = await client.get(URL(url or "").path_qs)
    assert shown.headers["Content-Type"] == "image/webp"
    assert len(backend.calls) == 1


async def test_errors_become_the_sdks_own_exceptions(iris, serve, sdk):
    broken = FakeImageBackend(mode="error500")
    await serve(broken)
    client = await iris(BACKEND_API_URLS=broken.url, POLLINATIONS_FALLBACK="false")
    with pytest.raises(openai.AuthenticationError) as wrong:
        await sdk(client, key="not-the-key-0123456789").images.generate(prompt="x")
    assert wrong.value.code == "invalid_key" and wrong.value.type == "authentication_error"
    with pytest.raises(openai.BadRequestError) as size:
        await off_loop(lambda: sdk(client, sync=True).images.generate(prompt="x", size="5000x5000"))  # type: ignore[arg-type]
    assert size.value.code == "invalid_size" and size.value.param == "size"
    assert "64 to 2048" in size.value.message
    with pytest.raises(openai.BadRequestError) as many:
        await sdk(client).images.generate(prompt="x", n=9)
    assert many.value.param == "n"
    with pytest.raises(openai.BadRequestError) as empty:
        await sdk(client).images.generate(prompt="  ")
    assert empty.value.code == "bad_prompt" and empty.value.param == "prompt"
    with pytest.raises(openai.InternalServerError) as failed:
        await sdk(client).images.generate(prompt="x")
    assert failed.value.status_code == 502 and failed.value.code == "upstream_failed"
    assert "backend-1: HTTP 500" in failed.value.message
    with pytest.raises(openai.NotFoundError) as missing:
        await sdk(client).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert missing.value.type == "not_found_error"
    raw = await client.post("/v1/images/generations", data=b"{not json", headers=BEARER)
    assert raw.status == 400 and set((await raw.json())["error"]) == {"message", "type", "param", "code"}
    assert raw.headers["Cache-Control"] == "no-store"
    assert broken.calls  # the 502 was real


async def test_new_images_meet_the_same_limits_as_prompt(iris, backend, sdk):
    client = await iris(BACKEND_API_URLS=backend.url, RATE_LIMIT_GENERATE="2/minute")
    assert (await client.get("/prompt/one", headers=BEARER)).status == 200
    await sdk(client).images.generate(prompt="one")  # the same image: a hit, not counted
    await sdk(client).images.generate(prompt="two")
    with pytest.raises(openai.RateLimitError) as limited:
        await off_loop(lambda: sdk(client, sync=True).images.generate(prompt="three"))
    assert limited.value.code == "generate_limited"
    assert 0 < int(limited.value.response.headers["retry-after"]) <= 60
    assert "x-should-retry" not in limited.value.response.headers  # the SDK may wait it out
    also = await client.get("/prompt/four", headers=BEARER)
    assert also.status == 429 and len(backend.calls) == 2


async def test_a_spent_budget_tells_the_sdk_not_to_retry(iris, backend, sdk):
    client = await iris(BACKEND_API_URLS=backend.url, BACKEND_PRICES=f'{{"{backend.url}": 1}}', DAILY_BUDGET="1")
    await sdk(client).images.generate(prompt="one")
    with pytest.raises(openai.RateLimitError) as spent:
        await sdk(client).images.generate(prompt="two")
    assert spent.value.code == "budget_exhausted"
    assert spent.value.response.headers["x-should-retry"] == "false"
    assert int(spent.value.response.headers["retry-after"]) > 120


async def test_identical_generations_through_either_route_are_made_once(iris, backend, sdk):
    backend.delay = 0.3
    client = await iris(BACKEND_API_URLS=backend.url)
    api = sdk(client)
    answers = await asyncio.gather(client.get("/prompt/a%20bell", headers=BEARER),
                                   *(api.images.generate(prompt="a bell", response_format="b64_json")
                                     for _ in range(3)))
    assert answers[0].status == 200
    assert {base64.b64decode(a.data[0].b64_json or "") for a in answers[1:]} == {backend.image}
    assert len(backend.calls) == 1 and client.app[FLIGHT].coalesced >= 3


async def test_models_list_the_names_a_request_may_give(iris, backend, sdk):
    client = await iris(BACKEND_API_URLS=backend.url, IMAGE_MODEL="dall-e-3",
                        MODEL_MAP=f'{{"{backend.url}": {{"flux": "flux-dev", "sdxl": "sdxl-1.0"}}}}')
    api = sdk(client)
    listed = [m async for m in await api.models.list()]
    assert [m.id for m in listed] == ["dall-e-3", "flux", "sdxl"]
    assert {(m.object, m.owned_by) for m in listed} == {("model", "iris")}
    synced = await off_loop(lambda: [m.id for m in sdk(client, sync=True).models.list()])
    assert synced == ["dall-e-3", "flux", "sdxl"]
    assert (await api.models.retrieve("flux")).id == "flux"
    with pytest.raises(openai.NotFoundError) as unknown:
        await api.models.retrieve("gpt-5")
    assert unknown.value.code == "model_not_found"
    with pytest.raises(openai.AuthenticationError):
        await sdk(client, key="wrong-key-0123456789").models.list()
    pollinations = await client.get("/models")  # Pollinations' list: public
    assert pollinations.status == 200 and await pollinations.json() == ["dall-e-3", "flux", "sdxl"]
    await api.images.generate(prompt="a lake", model="flux")
    assert backend.calls[-1].json["model"] == "flux-dev"


async def test_the_snippet_on_docs_and_in_the_readme_runs(iris, backend, tmp_path, monkeypatch):
    from html import unescape

    from proxy.pages.apidoc_openai import OPENAI_PYTHON

    client = await iris(BACKEND_API_URLS=backend.url)
    assert OPENAI_PYTHON in unescape(await (await client.get("/docs")).text())
    readme = README.read_text()
    assert f"```python\n{OPENAI_PYTHON}```" in readme
    code = OPENAI_PYTHON.replace("https://YOUR-HOST/v1", base_url(client)).replace("YOUR-ACCESS-KEY", ACCESS_KEY)
    monkeypatch.chdir(tmp_path)
    printed: list[str] = []
    namespace: dict[str, Any] = {"print": lambda *args: printed.append(" ".join(map(str, args)))}
    await off_loop(lambda: exec(code, namespace))
    namespace["client"].close()
    assert (tmp_path / "lighthouse.png").read_bytes() == backend.image
    assert printed[0] == "a lighthouse at dusk, oil painting"
    shown = await client.get(URL(printed[1]).path_qs)
    assert shown.status == 200 and await shown.read() == backend.image and len(backend.calls) == 1
