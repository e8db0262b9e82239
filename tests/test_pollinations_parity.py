"""Pollinations parity: /image/{prompt} as an alias of /prompt, image-to-image with image=
(OpenAI's /images/edits on backends that take it), and refused prompts remembered so the next
request for them goes straight to the safety rewrite."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import hdrs
from yarl import URL

from proxy.keys import FLIGHT
from tests.conftest import ACCESS_KEY
from tests.support.fakes import FakeImageBackend, jpeg, noise_png, png
from tests.test_fast_lane import lane_of

pytest_plugins = ["tests.support.redis_fixtures"]

Q = f"key={ACCESS_KEY}"
LOCAL = "127.0.0.0/8"  # the fakes' network: input images must be let in, as any private address


async def test_image_is_an_alias_of_prompt_with_the_same_entries(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    first = await client.get(f"/image/a%20quiet%20street?{Q}&seed=3")
    assert first.status == 200 and first.headers["X-Cache"] == "MISS"
    same = await client.get(f"/prompt/a%20quiet%20street?{Q}&seed=3")
    assert same.headers["X-Cache"] == "HIT" and same.headers["ETag"] == first.headers["ETag"]
    await asyncio.gather(*client.app[FLIGHT].tasks)
    lane = lane_of(client)
    again = await client.get(f"/image/a%20quiet%20street?{Q}&seed=3")
    assert again.headers["X-Cache"] == "HIT" and lane.served == 1
    assert await again.read() == backend.image and len(backend.calls) == 1
    metrics = await client.get("/metrics", headers={"X-Admin-Token": "test-admin-token-0123456789"})
    assert 'route="image"' in await metrics.text()  # counted under its own route, on the lane too
    bad = await client.get(URL(f"/image/a%zz?{Q}", encoded=True))
    assert bad.status == 400 and (await bad.json())["error"]["code"] == "bad_encoding"


async def inputs_server(serve: Any, image: bytes) -> FakeImageBackend:
    """A plain web server holding input images at /files/img.png (and text at /files/text.txt)."""
    server = FakeImageBackend(image=image)
    await serve(server)
    return server


async def test_image_param_edits_through_the_backend_with_the_fetched_images(iris, backend, serve):
    source = await inputs_server(serve, jpeg(32, 24))
    client = await iris(BACKEND_API_URLS=backend.url, IMAGE_FETCH_ALLOW=LOCAL)
    one = await client.get(f"/prompt/make%20it%20blue?{Q}&width=512&height=512&seed=9&image={source.url}/files/img.png")
    assert one.status == 200 and await one.read() == backend.image
    edit = backend.calls[-1]
    assert edit.path == "/v1/images/edits"
    assert edit.json == {"prompt": "make it blue", "n": "1", "size": "512x512", "seed": "9"}
    [upload] = backend.uploads[-1]
    assert upload.field == "image" and upload.data == source.image
    assert upload.content_type == "image/jpeg" and upload.filename == "image-1.jpg"
    two = f"{source.url}/files/img.png|{source.url}/hops/1"  # Pollinations separates with | or ,
    assert (await client.get(f"/prompt/make%20it%20blue?{Q}&width=512&height=512&seed=9&image={two}")).status == 200
    assert [u.field for u in backend.uploads[-1]] == ["image[]", "image[]"]
    plain = await client.get(f"/prompt/make%20it%20blue?{Q}&width=512&height=512&seed=9")
    assert plain.headers["X-Cache"] == "MISS"  # the input images are part of the cache key
    assert backend.calls[-1].path == "/v1/images/generations"
    again = await client.get(f"/prompt/make%20it%20blue?{Q}&width=512&height=512&seed=9&image={source.url}/files/img.png")
    assert again.headers["X-Cache"] == "HIT" and len(backend.calls) == 3
    assert source.fetched == ["/files/img.png", "/files/img.png", "/hops/1", "/hops/0"]


async def test_an_input_image_that_cannot_be_used_is_the_requests_fault(iris, backend, serve):
    source = await inputs_server(serve, noise_png(64, 64))
    private = await iris(BACKEND_API_URLS=backend.url)  # 127.0.0.1 is not public, and not allowed
    refused = await private.get(f"/prompt/x?{Q}&image={source.url}/files/img.png")
    assert refused.status == 400
    error = (await refused.json())["error"]
    assert error["code"] == "bad_input_image" and "private network" in error["message"]
    assert source.fetched == []
    client = await iris(BACKEND_API_URLS=backend.url, IMAGE_FETCH_ALLOW=LOCAL, INPUT_IMAGE_MAX_BYTES="2048")
    cases = {f"{source.url}/files/img.png": "larger than 2048 bytes",  # a 12 KB image
             f"{source.url}/files/text.txt": "not a decodable image",
             f"{source.url}/status/404": "HTTP 404"}
    for url, words in cases.items():
        resp = await client.get(f"/prompt/y?{Q}&image={url}")
        assert resp.status == 400, url
        assert words in (await resp.json())["error"]["message"], url
    assert backend.calls == []
    for bad in ("ftp://example.com/a.png", "not-a-url", ",".join(["http://a.example/x.png"] * 9)):
        resp = await client.get(f"/prompt/y?{Q}&image={bad}")
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_parameter", bad


async def test_an_input_image_of_more_pixels_than_an_answer_may_have_is_refused(iris, backend, serve):
    source = await inputs_server(serve, png(200, 100))  # a few hundred bytes, 20,000 pixels
    client = await iris(BACKEND_API_URLS=backend.url, IMAGE_FETCH_ALLOW=LOCAL, MAX_IMAGE_SIDE="64")
    resp = await client.get(f"/prompt/z?{Q}&width=64&height=64&image={source.url}/files/img.png")
    assert resp.status == 400  # 4 x 64 x 64 = 16,384 pixels at most, as for a backend's answer
    error = (await resp.json())["error"]
    assert error["code"] == "bad_input_image" and "200x100" in error["message"]
    assert backend.calls == []


async def test_backends_that_cannot_edit_are_skipped(iris, serve):
    source = await inputs_server(serve, png(16, 16))
    plain, editor = FakeImageBackend(image=png(color=(1, 1, 1))), FakeImageBackend(image=png(color=(2, 2, 2)))
    await serve(plain)
    await serve(editor)
    weights = f'{{"{plain.url}": 1000, "{editor.url}": 1}}'
    client = await iris(BACKEND_API_URLS=f"{plain.url},{editor.url}", BACKEND_WEIGHTS=weights,
                        EDIT_BACKENDS=editor.url, IMAGE_FETCH_ALLOW=LOCAL)
    for seed in range(3):
        resp = await client.get(f"/prompt/edit%20me?{Q}&seed={seed}&image={source.url}/files/img.png")
        assert resp.status == 200 and await resp.read() == editor.image
    assert plain.calls == [] and len(editor.calls) == 3
    assert (await client.get(f"/prompt/draw%20me?{Q}")).status == 200
    assert len(plain.calls) == 1  # generations still go by weight
    plain.edits = False  # a backend without the route: 404, and the pool moves on
    both = await iris(BACKEND_API_URLS=f"{plain.url},{editor.url}", BACKEND_WEIGHTS=weights, IMAGE_FETCH_ALLOW=LOCAL)
    resp = await both.get(f"/prompt/edit%20me%20too?{Q}&image={source.url}/files/img.png")
    assert resp.status == 200 and await resp.read() == editor.image
    none = await iris(BACKEND_API_URLS=plain.url, EDIT_BACKENDS="none", POLLINATIONS_FALLBACK="false",
                      IMAGE_FETCH_ALLOW=LOCAL)
    failed = await none.get(f"/prompt/edit%20me?{Q}&image={source.url}/files/img.png")
    assert failed.status == 502 and "takes no image edits" in (await failed.json())["error"]["message"]


async def test_pollinations_gets_the_input_urls_itself(iris, pollinations, serve):
    source = await inputs_server(serve, png(16, 16))
    client = await iris(POLLINATIONS_URL=pollinations.url)  # Pollinations is the pool
    url = f"{source.url}/files/img.png"
    resp = await client.get(f"/image/a%20collage?{Q}&image={url}&quality=hd")
    assert resp.status == 200
    assert pollinations.calls[0].query["image"] == url and pollinations.calls[0].query["quality"] == "hd"
    assert source.fetched == []  # Pollinations fetches it, not Iris


async def refusing(serve: Any) -> FakeImageBackend:
    strict = FakeImageBackend(mode="refuse", accept_prefix="SAFE")
    await serve(strict)
    return strict


def rewriting(strict: FakeImageBackend, llm: Any, **extra: str) -> dict[str, str]:
    llm.prefix = "SAFE"
    return {"BACKEND_API_URLS": strict.url, "DE_NSFW_ENABLED": "true", "LLM_OPTIMIZATION_API_URL": llm.url,
            "DE_NSFW_TEMPLATE": "Make safe: <<{ORIGINAL_PROMPT}>>", "BLOCKED_RETRY_ATTEMPTS": "1", **extra}


async def asked(client: Any, strict: FakeImageBackend, query: str, prompt: str = "a%20duel") -> list[str]:
    """The prompts the backend was asked for one request."""
    strict.calls.clear()
    assert (await client.get(f"/prompt/{prompt}?{Q}&{query}")).status == 200
    return [c.json["prompt"] for c in strict.calls]


async def test_a_refused_prompt_goes_straight_to_the_rewrite_next_time(iris, serve, llm):
    strict = await refusing(serve)
    one = await iris(**rewriting(strict, llm))
    two = await iris(**rewriting(strict, llm))  # another worker on the same DATA_DIR
    assert await asked(one, strict, "seed=1") == ["a duel", "SAFE a duel"]
    assert await asked(one, strict, "seed=2") == ["SAFE a duel"]
    assert await asked(two, strict, "width=512") == ["SAFE a duel"]
    # remembered per prompt and model: another model, or another prompt, is asked as it is
    assert await asked(two, strict, "model=other") == ["a duel", "SAFE a duel"]
    assert await asked(one, strict, "seed=1", prompt="a%20truce") == ["a truce", "SAFE a truce"]


async def test_refusals_are_remembered_for_a_bounded_time_or_not_at_all(iris, serve, llm):
    strict = await refusing(serve)
    brief = await iris(**rewriting(strict, llm, REFUSAL_CACHE_TTL="0.5"))
    assert await asked(brief, strict, "seed=1") == ["a duel", "SAFE a duel"]
    assert await asked(brief, strict, "seed=2") == ["SAFE a duel"]
    await asyncio.sleep(0.7)
    assert await asked(brief, strict, "seed=3") == ["a duel", "SAFE a duel"]
    never = await iris(**rewriting(strict, llm, REFUSAL_CACHE_TTL="0"))
    assert await asked(never, strict, "seed=1", prompt="a%20brawl") == ["a brawl", "SAFE a brawl"]
    assert await asked(never, strict, "seed=2", prompt="a%20brawl") == ["a brawl", "SAFE a brawl"]


async def test_refusals_are_remembered_across_instances_on_redis(instances, serve, llm):
    strict = await refusing(serve)
    one, two = await instances(2, **rewriting(strict, llm))
    assert await asked(one, strict, "seed=1") == ["a duel", "SAFE a duel"]
    assert await asked(two, strict, "seed=2") == ["SAFE a duel"]


async def test_the_lane_counts_hits_under_the_route_they_came_by(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    for path in ("/prompt/x", "/image/x"):
        await client.get(f"{path}?{Q}", headers={hdrs.ACCEPT: "*/*"})
    await asyncio.gather(*client.app[FLIGHT].tasks)
    for path in ("/prompt/x", "/image/x"):
        assert (await client.get(f"{path}?{Q}")).status == 200
    assert lane_of(client).served == 2
