"""GET/HEAD /prompt/...: auth, validation, headers, caching, conditional requests."""

from __future__ import annotations

import hashlib

from yarl import URL

from tests.conftest import ACCESS_KEY
from tests.support.fakes import png


async def test_generates_then_hits(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    first = await client.get(f"/prompt/a%20red%20apple?key={ACCESS_KEY}&width=512&height=256&seed=7")
    assert first.status == 200
    assert await first.read() == backend.image
    assert first.headers["Content-Type"] == "image/png"
    assert first.headers["X-Cache"] == "MISS"
    assert first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    second = await client.get(f"/prompt/a%20red%20apple?key={ACCESS_KEY}&width=512&height=256&seed=7")
    assert second.headers["X-Cache"] == "HIT"
    assert second.headers["ETag"] == first.headers["ETag"]
    assert await second.read() == backend.image
    assert len(backend.calls) == 1
    sent = backend.calls[0].json
    assert sent == {"prompt": "a red apple", "n": 1, "size": "512x256", "seed": 7}


async def test_content_type_comes_from_the_bytes(iris, backend):
    from tests.support.fakes import jpeg

    backend.image = jpeg()
    client = await iris(BACKEND_API_URLS=backend.url)
    resp = await client.get(f"/prompt/x?key={ACCESS_KEY}")
    assert resp.headers["Content-Type"] == "image/jpeg"


async def test_key_is_required_and_checked(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    missing = await client.get("/prompt/apple")
    assert missing.status == 401
    assert (await missing.json())["error"]["code"] == "missing_key"
    wrong = await client.get("/prompt/apple?key=nope")
    assert wrong.status == 401
    bearer = await client.get("/prompt/apple", headers={"Authorization": f"Bearer {ACCESS_KEY}"})
    assert bearer.status == 200
    assert backend.calls and len(backend.calls) == 1


async def test_description_may_contain_slashes_and_unicode(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    resp = await client.get(f"/prompt/a/b%2Fc%20caf%C3%A9?key={ACCESS_KEY}")
    assert resp.status == 200
    assert backend.calls[0].json["prompt"] == "a/b/c café"


async def test_bad_input_is_a_clear_4xx(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, MAX_PROMPT_LENGTH="50")
    cases = {
        "/prompt/a%zzb": "bad_encoding",
        "/prompt/%ff%fe": "bad_encoding",
        "/prompt/apple?width=abc": "bad_parameter",
        "/prompt/apple?width=99999": "bad_parameter",
        "/prompt/apple?height=-5": "bad_parameter",
        "/prompt/apple?seed=1.5": "bad_parameter",
        "/prompt/apple?seed=99999999999": "bad_parameter",
        "/prompt/apple?enhance=maybe": "bad_parameter",
        "/prompt/" + "a" * 51: "prompt_too_long",
        "/prompt/%20%20": "bad_prompt",
    }
    for path, code in cases.items():
        sep = "&" if "?" in path else "?"
        resp = await client.get(URL(f"{path}{sep}key={ACCESS_KEY}", encoded=True))
        assert resp.status == 400, path
        assert (await resp.json())["error"]["code"] == code, path
    assert backend.calls == []


async def test_seed_zero_absent_and_text_are_distinct(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    etags = set()
    for query in ("seed=0", "", "seed=42&model=a", "seed=42&model=b"):
        resp = await client.get(f"/prompt/apple?key={ACCESS_KEY}&{query}")
        etags.add(resp.headers["ETag"])
    bad = await client.get(f"/prompt/apple?key={ACCESS_KEY}&seed=abc")
    assert bad.status == 400
    assert len(etags) == 4
    # absent means the default seed 42: the same entry as seed=42
    again = await client.get(f"/prompt/apple?key={ACCESS_KEY}&seed=42")
    assert again.headers["X-Cache"] == "HIT"


async def test_prompt_case_matters_and_fields_cannot_collide(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    a = await client.get(f"/prompt/Apple?key={ACCESS_KEY}")
    b = await client.get(f"/prompt/apple?key={ACCESS_KEY}")
    c = await client.get(f"/prompt/a%7C1024?key={ACCESS_KEY}&width=1024")
    d = await client.get(f"/prompt/a?key={ACCESS_KEY}&model=1024%7C1024")
    assert len({r.headers["ETag"] for r in (a, b, c, d)}) == 4


async def test_etag_gives_304_and_head_has_no_body(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    first = await client.get(f"/prompt/pear?key={ACCESS_KEY}")
    etag = first.headers["ETag"]
    assert etag.strip('"') == hashlib.sha256(etag.strip('"').encode()).hexdigest() or len(etag) == 66
    cond = await client.get(f"/prompt/pear?key={ACCESS_KEY}", headers={"If-None-Match": etag})
    assert cond.status == 304
    assert await cond.read() == b""
    head = await client.head(f"/prompt/pear?key={ACCESS_KEY}")
    assert head.status == 200
    assert head.headers["Content-Type"] == "image/png"
    assert await head.read() == b""
    assert len(backend.calls) == 1


async def test_base_url_with_or_without_v1(iris, backend):
    client = await iris(BACKEND_API_URLS=f"{backend.url}/v1/")
    resp = await client.get(f"/prompt/plum?key={ACCESS_KEY}")
    assert resp.status == 200
    assert backend.calls[0].path == "/v1/images/generations"


async def test_url_answers_are_fetched_and_checked(iris, backend):
    backend.mode = "url"
    backend.image = png(16, 16)
    client = await iris(BACKEND_API_URLS=backend.url)
    resp = await client.get(f"/prompt/fig?key={ACCESS_KEY}")
    assert resp.status == 200
    assert await resp.read() == backend.image


async def test_random_seed_is_not_cached_as_one(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    await client.get(f"/prompt/kiwi?key={ACCESS_KEY}&seed=-1")
    await client.get(f"/prompt/kiwi?key={ACCESS_KEY}&seed=-1")
    assert len(backend.calls) == 2
    assert backend.calls[0].json["seed"] != backend.calls[1].json["seed"]
