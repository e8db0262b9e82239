"""Admin cache endpoints: the Deno proxy's POST /cache/delete and DELETE /cache/{key}."""

from __future__ import annotations

from yarl import URL

from tests.conftest import ACCESS_KEY, ADMIN_TOKEN

Q = f"key={ACCESS_KEY}"
ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


async def test_delete_by_parameters(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    await client.get(f"/prompt/a%20red%20apple?{Q}&width=512&height=512&seed=7&model=m")
    body = {"description": "a red apple", "width": 512, "height": 512, "seed": 7, "model": "m"}
    resp = await client.post("/cache/delete", json=body, headers=ADMIN)
    assert resp.status == 200
    assert (await resp.json())["deleted"] is True
    again = await client.post("/cache/delete", json=body, headers=ADMIN)
    assert again.status == 404
    assert (await again.json())["error"]["code"] == "not_in_cache"
    regenerated = await client.get(f"/prompt/a%20red%20apple?{Q}&width=512&height=512&seed=7&model=m")
    assert regenerated.headers["X-Cache"] == "MISS"


async def test_delete_accepts_numbers_as_strings_and_defaults(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    await client.get(f"/prompt/pear?{Q}")
    resp = await client.post("/cache/delete", json={"description": "pear", "seed": "42"}, headers=ADMIN)
    assert resp.status == 200


async def test_delete_by_key(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    etag = (await client.get(f"/prompt/plum?{Q}")).headers["ETag"].strip('"')
    assert (await client.delete(f"/cache/{etag}", headers=ADMIN)).status == 200
    assert (await client.delete(f"/cache/{etag}", headers=ADMIN)).status == 404
    bad = await client.delete("/cache/not-a-key", headers=ADMIN)
    assert bad.status == 400


async def test_delete_needs_the_admin_token(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    for headers in ({}, {"X-Admin-Token": "wrong"}, {"X-Admin-Token": ACCESS_KEY}):
        resp = await client.post("/cache/delete", json={"description": "x"}, headers=headers)
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "admin_required"


async def test_delete_rejects_bad_bodies(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    for data in (b"not json", b"[]", b'{"width": 5}', b'{"description": 5}',
                 b'{"description": "x", "width": "wide"}', b'{"description": "x", "seed": true}'):
        resp = await client.post("/cache/delete", data=data, headers=ADMIN)
        assert resp.status == 400, data
        assert set((await resp.json())["error"]) == {"code", "message"}


async def test_head_and_conditional_requests_on_an_admin_deleted_entry(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    etag = (await client.get(f"/prompt/fig?{Q}")).headers["ETag"]
    await client.delete(URL(f"/cache/{etag.strip(chr(34))}"), headers=ADMIN)
    resp = await client.get(f"/prompt/fig?{Q}", headers={"If-None-Match": etag})
    assert resp.headers["X-Cache"] == "MISS"


async def test_a_delete_right_after_the_answer_is_not_undone(iris, backend):
    """The answer goes out before the cache write; a delete racing that write must still win."""
    client = await iris(BACKEND_API_URLS=backend.url)
    for i in range(5):
        resp = await client.get(f"/prompt/race{i}?{Q}")
        assert resp.status == 200
        deleted = await client.post("/cache/delete", json={"description": f"race{i}"}, headers=ADMIN)
        assert deleted.status == 200
        again = await client.get(f"/prompt/race{i}?{Q}")
        assert again.headers["X-Cache"] == "MISS"
    assert len(backend.calls) == 10
