"""The fast lane answers repeated hits before the router, with exactly the full route's answer, and
steps aside whenever the full route could answer otherwise."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from proxy.imagegen.lane import FastLane
from proxy.keys import DATABASE, FLIGHT
from proxy.security import blacklist
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.support.account_helpers import wait_until_blocked

PATH = "/prompt/a%20lighthouse%20at%20dusk"
URL = f"{PATH}?key={ACCESS_KEY}&width=64&height=64"
VARYING = {"date", "x-request-id"}


def lane_of(client: TestClient) -> FastLane:
    runner = client.server.runner
    assert runner is not None and runner.server is not None
    lane = runner.server.request_handler
    assert isinstance(lane, FastLane)
    return lane


async def warmed(iris, backend, **env: str) -> tuple[TestClient, FastLane]:
    """A client whose cache holds the image (one miss through the full route, stored)."""
    client = await iris(BACKEND_API_URLS=backend.url, **env)
    first = await client.get(URL)
    assert first.status == 200 and first.headers["X-Cache"] == "MISS"
    await asyncio.gather(*client.app[FLIGHT].tasks)
    lane = lane_of(client)
    assert lane.served == 0
    return client, lane


async def test_a_repeated_hit_takes_the_lane_and_answers_as_the_full_route_does(iris, backend):
    client, lane = await warmed(iris, backend)
    fast = await client.get(URL)
    assert lane.served == 1
    full = await client.get(URL, headers={"If-None-Match": '"some-other-etag"'})  # not for the lane
    assert lane.served == 1
    assert fast.status == full.status == 200
    assert await fast.read() == await full.read() == backend.image
    fast_headers, full_headers = ({k.lower(): v for k, v in r.headers.items()} for r in (fast, full))
    assert fast_headers.keys() == full_headers.keys()
    assert {k: v for k, v in fast_headers.items() if k not in VARYING} == \
        {k: v for k, v in full_headers.items() if k not in VARYING}
    assert fast.headers["X-Cache"] == "HIT" and fast.headers["Content-Type"] == "image/png"
    assert len(backend.calls) == 1


async def test_the_lane_takes_a_bearer_key_and_keeps_a_sane_request_id(iris, backend):
    client, lane = await warmed(iris, backend)
    bare = URL.replace(f"key={ACCESS_KEY}&", "")
    await client.get(bare, headers={"Authorization": f"Bearer {ACCESS_KEY}"})  # a new target: parsed once
    resp = await client.get(bare, headers={"Authorization": f"Bearer {ACCESS_KEY}", "X-Request-Id": "trace-42"})
    assert resp.status == 200 and lane.served == 1
    assert resp.headers["X-Request-Id"] == "trace-42"
    odd = await client.get(URL, headers={"X-Request-Id": "no spaces allowed"})
    assert odd.headers["X-Request-Id"] != "no spaces allowed" and lane.served == 2


async def test_the_lane_leaves_wrong_keys_heads_and_conditional_requests_to_the_route(iris, backend):
    client, lane = await warmed(iris, backend)
    etag = (await client.get(URL)).headers["ETag"]
    assert lane.served == 1
    wrong = await client.get(URL.replace(ACCESS_KEY, "not-the-key-0123456789"))
    assert wrong.status == 401 and (await wrong.json())["error"]["code"] == "invalid_key"
    head = await client.head(URL)
    assert head.status == 200 and head.headers["X-Cache"] == "HIT" and await head.read() == b""
    cached = await client.get(URL, headers={"If-None-Match": etag})
    assert cached.status == 304
    assert lane.served == 1


async def test_a_suspect_address_goes_the_full_way_even_with_the_right_key(iris, backend):
    client, lane = await warmed(iris, backend, RATE_LIMIT_AUTH="2/minute")
    for _ in range(2):
        assert (await client.get(URL.replace(ACCESS_KEY, "guess-0123456789"))).status == 401
    limited = await client.get(URL)  # the address's auth bucket is empty: no more tries, right or wrong
    assert limited.status == 429 and "Retry-After" in limited.headers
    assert lane.served == 0


async def test_a_blacklisted_address_is_refused_before_the_lane(iris, backend):
    client, lane = await warmed(iris, backend, BLACKLIST_REFRESH="0.1")
    assert (await client.get(URL)).status == 200 and lane.served == 1
    await client.app[DATABASE].run(blacklist.add, "127.0.0.0/8", "test")
    await wait_until_blocked(client, True)
    resp = await client.get(URL)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "blocked"
    assert lane.served == 1


async def test_a_delete_through_another_worker_empties_the_lane_at_once(iris, backend):
    one, lane = await warmed(iris, backend)
    two = await iris(BACKEND_API_URLS=backend.url)  # another worker on the same DATA_DIR
    assert (await one.get(URL)).headers["X-Cache"] == "HIT" and lane.served == 1
    resp = await two.post("/cache/delete", json={"description": "a lighthouse at dusk", "width": 64, "height": 64},
                          headers={"X-Admin-Token": ADMIN_TOKEN})
    assert resp.status == 200
    again = await one.get(URL)
    assert again.headers["X-Cache"] == "MISS" and lane.served == 1
    assert len(backend.calls) == 2
