"""Every failure a client can see has the same JSON shape, and never a trace or a secret."""

from __future__ import annotations

import pytest
from yarl import URL

from tests.conftest import ACCESS_KEY

CASES = [
    ("GET", "/prompt/x", 401),
    ("GET", f"/prompt/%zz?key={ACCESS_KEY}", 400),
    ("GET", f"/prompt/x?key={ACCESS_KEY}&width=0", 400),
    ("GET", "/no/such/route", 404),
    ("PUT", "/status", 405),
    ("POST", "/cache/delete", 401),
    ("DELETE", "/cache/abc", 401),
]


@pytest.mark.parametrize(("method", "path", "status"), CASES)
async def test_error_shape(iris, backend, method, path, status):
    client = await iris(BACKEND_API_URLS=backend.url)
    resp = await client.request(method, URL(path, encoded=True))
    assert resp.status == status
    assert resp.headers["Content-Type"].startswith("application/json")
    body = await resp.json()
    assert list(body) == ["error"]
    assert set(body["error"]) == {"code", "message"}
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"  # neither a browser nor a CDN keeps an error


async def test_oversized_body_is_a_json_413(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, MAX_UPLOAD_BYTES="2048")
    resp = await client.post("/cache/delete", data=b"x" * 200_000, headers={"X-Admin-Token": "t"})
    assert resp.status in (401, 413)
    body = await resp.json()
    assert set(body["error"]) == {"code", "message"}
