"""Image formats: format= and Accept choose a variant of the cached image, converted once with
Pillow, cached beside the original, served by the fast lane like any hit, and deleted with it."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from proxy.keys import FLIGHT, IMAGE_CACHE, STORE, VARIANTS
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.support.fakes import png
from tests.test_fast_lane import lane_of

PATH = "/prompt/a%20harbour%20at%20noon"
URL = f"{PATH}?key={ACCESS_KEY}&width=64&height=64"
BROWSER = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"  # Chrome's <img> Accept
VARYING = {"date", "x-request-id"}


def decoded(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


async def settled(client) -> None:
    await asyncio.gather(*client.app[FLIGHT].tasks)


async def test_format_converts_once_and_each_variant_has_its_own_etag(iris, backend):
    backend.image = png(64, 64, (200, 30, 30))
    client = await iris(BACKEND_API_URLS=backend.url)
    original = await client.get(URL)
    assert original.status == 200 and original.headers["Content-Type"] == "image/png"
    assert await original.read() == backend.image
    etags = {original.headers["ETag"]}
    for fmt, mime in (("webp", "image/webp"), ("avif", "image/avif"), ("jpeg", "image/jpeg")):
        resp = await client.get(f"{URL}&format={fmt}")
        assert resp.status == 200 and resp.headers["Content-Type"] == mime, fmt
        image = decoded(await resp.read())
        assert image.format == fmt.upper() and image.size == (64, 64)
        red, green, blue = image.convert("RGB").getpixel((32, 32))
        assert red > 150 and green < 80 and blue < 80, (fmt, red, green, blue)
        assert resp.headers["X-Cache"] == "HIT"  # the image was cached: only its format is new
        assert "Vary" not in resp.headers  # format= decides, not Accept
        etags.add(resp.headers["ETag"])
    assert len(etags) == 4
    assert client.app[VARIANTS].converted == 3
    again = await client.get(f"{URL}&format=avif")
    assert again.headers["ETag"] in etags and decoded(await again.read()).format == "AVIF"
    assert client.app[VARIANTS].converted == 3 and len(backend.calls) == 1


async def test_accept_negotiates_avif_then_webp_then_the_original(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    cases = {BROWSER: "image/avif", "image/webp,*/*": "image/webp", "*/*": "image/png",
             "image/avif;q=0, image/webp": "image/webp", "": "image/png"}
    etags = set()
    for accept, mime in cases.items():
        resp = await client.get(URL, headers={"Accept": accept})
        assert resp.status == 200 and resp.headers["Content-Type"] == mime, accept
        assert resp.headers["Vary"] == "Accept"
        etags.add(resp.headers["ETag"])
    assert len(etags) == 3 and len(backend.calls) == 1


async def test_negotiation_can_be_turned_off(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, NEGOTIATE_FORMATS="")
    resp = await client.get(URL, headers={"Accept": BROWSER})
    assert resp.headers["Content-Type"] == "image/png" and "Vary" not in resp.headers
    webp = await client.get(f"{URL}&format=webp", headers={"Accept": BROWSER})
    assert webp.headers["Content-Type"] == "image/webp"  # format= still converts


async def test_quality_is_bounded_and_changes_the_bytes(iris, backend):
    from tests.support.fakes import noise_png

    backend.image = noise_png(96, 96)
    client = await iris(BACKEND_API_URLS=backend.url)
    low = await client.get(f"{URL}&format=webp&quality=20")
    high = await client.get(f"{URL}&format=webp&quality=95")
    assert low.status == high.status == 200
    assert len(await low.read()) < len(await high.read())
    assert low.headers["ETag"] != high.headers["ETag"]
    for bad in ("quality=0", "quality=101", "format=gif", "format=webp&quality=-5"):
        resp = await client.get(f"{URL}&{bad}")
        assert resp.status == 400, bad
        assert (await resp.json())["error"]["code"] == "bad_parameter"
    assert len(backend.calls) == 1


async def test_the_original_format_is_never_converted_into_itself(iris, backend):
    from tests.support.fakes import jpeg

    backend.image = jpeg(64, 64)
    client = await iris(BACKEND_API_URLS=backend.url)
    plain = await client.get(URL)
    same = await client.get(f"{URL}&format=jpg&quality=10")
    assert await same.read() == backend.image and same.headers["ETag"] == plain.headers["ETag"]
    as_png = await client.get(f"{URL}&format=png")
    assert as_png.headers["Content-Type"] == "image/png" and decoded(await as_png.read()).mode == "RGB"
    assert client.app[VARIANTS].converted == 1


async def test_transparency_is_laid_on_white_for_jpeg_and_kept_for_webp(iris, backend):
    clear = io.BytesIO()
    Image.new("RGBA", (32, 32), (0, 0, 0, 0)).save(clear, "PNG")
    backend.image = clear.getvalue()
    client = await iris(BACKEND_API_URLS=backend.url)
    as_jpeg = decoded(await (await client.get(f"{URL}&format=jpeg")).read())
    assert as_jpeg.mode == "RGB" and min(as_jpeg.getpixel((5, 5))) > 240
    as_webp = decoded(await (await client.get(f"{URL}&format=webp")).read())
    assert as_webp.mode == "RGBA" and as_webp.getpixel((5, 5))[3] == 0


async def test_identical_requests_convert_once_across_workers(iris, backend):
    backend.image = png(256, 256, (10, 200, 10))
    one = await iris(BACKEND_API_URLS=backend.url)
    two = await iris(BACKEND_API_URLS=backend.url)  # another worker on the same DATA_DIR
    assert (await one.get(URL)).status == 200
    await settled(one)
    answers = await asyncio.gather(*(client.get(f"{URL}&format=avif") for client in (one, two) for _ in range(4)))
    bodies = {await resp.read() for resp in answers}
    assert len(bodies) == 1 and decoded(bodies.pop()).format == "AVIF"
    assert one.app[VARIANTS].converted + two.app[VARIANTS].converted == 1


async def test_a_variant_hit_takes_the_fast_lane_with_the_full_routes_answer(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    lane = lane_of(client)
    first = await client.get(URL, headers={"Accept": BROWSER})  # miss, then converted
    assert first.headers["Content-Type"] == "image/avif"
    await settled(client)
    fast = await client.get(URL, headers={"Accept": BROWSER})
    assert lane.served == 1
    full = await client.get(URL, headers={"Accept": BROWSER, "If-None-Match": '"another-etag"'})  # not for the lane
    assert lane.served == 1
    assert await fast.read() == await full.read() == await first.read()
    fast_headers, full_headers = ({k.lower(): v for k, v in r.headers.items()} for r in (fast, full))
    assert {k: v for k, v in fast_headers.items() if k not in VARYING} == \
        {k: v for k, v in full_headers.items() if k not in VARYING}
    assert fast.headers["Vary"] == "Accept" and fast.headers["ETag"].endswith('~avif-q60"')
    webp = await client.get(f"{URL}&format=webp")  # a new target: parsed and converted the full way
    webp_again = await client.get(f"{URL}&format=webp")
    assert lane.served == 2 and await webp.read() == await webp_again.read()
    revalidated = await client.get(URL, headers={"Accept": BROWSER, "If-None-Match": fast.headers["ETag"]})
    assert revalidated.status == 304 and revalidated.headers["ETag"] == fast.headers["ETag"]


async def test_a_delete_removes_every_variant(iris, backend):
    backend.image = png(64, 64, (200, 30, 30))
    client = await iris(BACKEND_API_URLS=backend.url)
    key = (await client.get(URL)).headers["ETag"].strip('"')
    for query in ("format=webp", "format=webp&quality=30", "format=avif"):
        assert (await client.get(f"{URL}&{query}")).status == 200
    await settled(client)
    store = client.app[STORE]
    suffixes = await client.app[IMAGE_CACHE].variants(key)
    assert sorted(suffixes) == ["avif-q60", "webp-q30", "webp-q80"]
    assert all([await store.get(f"img:{key}~{suffix}") for suffix in suffixes])
    variant_etag = (await client.get(f"{URL}&format=webp")).headers["ETag"].strip('"')
    deleted = await client.delete(f"/cache/{variant_etag}", headers={"X-Admin-Token": ADMIN_TOKEN})
    assert deleted.status == 200 and (await deleted.json())["key"] == key  # a variant's ETag names its entry
    for suffix in suffixes:
        assert await store.get(f"img:{key}~{suffix}") is None
    assert await client.app[IMAGE_CACHE].variants(key) == []
    backend.image = png(64, 64, (30, 30, 200))  # made again: a variant of the old image must not come back
    again = await client.get(f"{URL}&format=webp")
    assert again.headers["X-Cache"] == "MISS" and len(backend.calls) == 2
    red, _, blue = decoded(await again.read()).convert("RGB").getpixel((32, 32))
    assert blue > 150 and red < 80


async def test_a_variant_written_after_its_original_was_deleted_is_never_served(iris, backend):
    backend.image = png(64, 64, (200, 30, 30))
    client = await iris(BACKEND_API_URLS=backend.url)
    key = (await client.get(URL)).headers["ETag"].strip('"')
    old = await client.get(f"{URL}&format=webp")
    await settled(client)
    stale = await client.app[STORE].get(f"img:{key}~webp-q80")
    assert (await client.post("/cache/delete", json={"description": "a harbour at noon", "width": 64, "height": 64},
                              headers={"X-Admin-Token": ADMIN_TOKEN})).status == 200
    await client.app[STORE].set(f"img:{key}~webp-q80", stale)  # a conversion that landed after the delete
    backend.image = png(64, 64, (30, 30, 200))
    fresh = await client.get(f"{URL}&format=webp")
    assert await fresh.read() != await old.read()
    _, _, blue = decoded(await fresh.read()).convert("RGB").getpixel((32, 32))
    assert blue > 150


async def test_a_signature_covers_the_format(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    bearer = {"Authorization": f"Bearer {ACCESS_KEY}"}
    url = (await (await client.post("/sign", json={"path": f"{PATH}?format=webp&quality=50"},
                                    headers=bearer)).json())["url"]
    ok = await client.get(url)
    assert ok.status == 200 and ok.headers["Content-Type"] == "image/webp"
    changed = await client.get(url.replace("format=webp", "format=avif"))
    assert changed.status == 403
    refused = await client.post("/sign", json={"path": f"{PATH}?format=gif"}, headers=bearer)
    assert refused.status == 400


async def test_variants_made_at_once_by_several_workers_are_all_listed_for_the_delete(iris, backend):
    from proxy.cache.entry import image_entry

    one = await iris(BACKEND_API_URLS=backend.url)
    two = await iris(BACKEND_API_URLS=backend.url)  # another worker on the same DATA_DIR
    key = (await one.get(URL)).headers["ETag"].strip('"')
    await settled(one)
    original = await one.app[IMAGE_CACHE].get(key)
    suffixes = [f"webp-q{q}" for q in range(10, 90, 10)]
    made = image_entry(b"variant bytes", "image/webp", of=original.meta["created"])
    await asyncio.gather(*(client.app[IMAGE_CACHE].put_variant(key, suffix, made)
                           for suffix in suffixes for client in (one, two)))
    assert sorted(await two.app[IMAGE_CACHE].variants(key)) == sorted(suffixes)
    assert (await one.delete(f"/cache/{key}", headers={"X-Admin-Token": ADMIN_TOKEN})).status == 200
    for suffix in suffixes:
        assert await one.app[STORE].get(f"img:{key}~{suffix}") is None
