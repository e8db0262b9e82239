"""The admission rule as the image route and its fast lane apply it: another address on the
blacklist, or another address suspected of guessing, does not send everyone the full way; and the
refusals say how to send a key."""

from __future__ import annotations

import time

from proxy.keys import DATABASE, GUARD
from proxy.security import blacklist
from tests.conftest import ACCESS_KEY
from tests.test_fast_lane import URL, warmed


async def test_someone_elses_block_or_guessing_leaves_the_lane_open(iris, backend):
    client, lane = await warmed(iris, backend)
    await client.app[DATABASE].run(blacklist.add, "198.51.100.0/24", "test")
    guard = client.app[GUARD]
    await guard.blacklist.reload()
    assert guard.blacklist.listed
    guard.suspects["198.51.100.7"] = time.monotonic()  # a guesser elsewhere, this very moment
    assert (await client.get(URL)).status == 200
    assert lane.served == 1, "this address is neither blocked nor a suspect: the lane answers"
    assert (await client.get(URL.replace(ACCESS_KEY, "guess-0123456789"))).status == 401
    assert (await client.get(URL)).status == 200
    assert lane.served == 1, "now this address is a suspect: the full way asks its bucket"


async def test_the_key_refusals_say_how_to_send_a_key(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, RATE_LIMIT_AUTH="100/minute", BLACKLIST_AUTO_FAILURES="0")
    missing = await (await client.get("/prompt/apple")).json()
    assert missing["error"] == {"code": "missing_key", "message": "an access key is required: add ?key=... or "
                                                                  "Authorization: Bearer ..."}
    wrong = await (await client.get("/prompt/apple?key=not-the-key-000")).json()
    assert wrong["error"] == {"code": "invalid_key", "message": "the access key is not valid"}
    admin = await (await client.delete("/cache/" + "0" * 64, headers={"X-Admin-Token": "nope"})).json()
    assert admin["error"] == {"code": "admin_required", "message": "a valid X-Admin-Token header is required"}
