"""Limits on new images: misses per address and per credential (RATE_LIMIT_GENERATE), generations
at once (MAX_GENERATIONS_IN_FLIGHT) and the daily budget; hits are never counted and keep
answering while a limit refuses new images. Two apps on one DATA_DIR stand for two workers of one
host (the real two-process case is in tests/test_workers.py, several instances in
tests/test_redis_spending.py)."""

from __future__ import annotations

import asyncio
import calendar
import sys

import pytest

from proxy.cache.slots import FileSlots
from proxy.config import load_settings
from proxy.errors import ConfigError
from proxy.imagegen.lane import FastLane
from proxy.keys import ADMISSION, ALLOWANCE, FLIGHT
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.support.fakes import FakeImageBackend

Q = f"key={ACCESS_KEY}&width=64&height=64"
ADMIN = {"X-Admin-Token": ADMIN_TOKEN}
MIDNIGHT = calendar.timegm((2026, 12, 5, 0, 0, 0))  # a UTC midnight


def lane_of(client) -> FastLane:
    lane = client.server.runner.server.request_handler
    assert isinstance(lane, FastLane)
    return lane


async def code_of(resp) -> str:
    return (await resp.json())["error"]["code"]


@pytest.fixture
async def slow(serve) -> FakeImageBackend:
    fake = FakeImageBackend(delay=0.4)
    await serve(fake)
    return fake


async def test_misses_are_limited_per_address_and_hits_keep_answering(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, RATE_LIMIT_GENERATE="3/minute")
    for n in range(3):
        assert (await client.get(f"/prompt/p{n}?{Q}")).status == 200
    refused = await client.get(f"/prompt/p3?{Q}")
    assert refused.status == 429 and await code_of(refused) == "generate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 20 and refused.headers["Cache-Control"] == "no-store"
    await asyncio.gather(*client.app[FLIGHT].tasks)
    lane = lane_of(client)
    for n in range(3):  # every cached image still answers, by the lane and by the full route
        hit = await client.get(f"/prompt/p{n}?{Q}")
        assert hit.status == 200 and hit.headers["X-Cache"] == "HIT"
        head = await client.head(f"/prompt/p{n}?{Q}")
        assert head.status == 200 and head.headers["X-Cache"] == "HIT"
    assert lane.served == 3
    assert len(backend.calls) == 3


async def test_misses_are_limited_per_credential_whatever_the_address(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, RATE_LIMIT_GENERATE="3/minute", TRUSTED_PROXIES="127.0.0.1")
    signer = client.app[ADMISSION].signer
    for n in range(3):
        resp = await client.get(signer.sign(f"/prompt/s{n}?width=64"), headers={"X-Forwarded-For": f"198.51.100.{n}"})
        assert resp.status == 200
    other_address = await client.get(signer.sign("/prompt/s3?width=64"), headers={"X-Forwarded-For": "198.51.100.9"})
    assert other_address.status == 429 and await code_of(other_address) == "generate_limited"
    assert "credential" in (await other_address.json())["error"]["message"]
    other_credential = await client.get(f"/prompt/s3?{Q}", headers={"X-Forwarded-For": "198.51.100.9"})
    assert other_credential.status == 200  # the access key is another credential
    assert len(backend.calls) == 4


async def test_identical_misses_share_one_generation_and_count_once(iris, slow):
    client = await iris(BACKEND_API_URLS=slow.url, RATE_LIMIT_GENERATE="1/minute")
    answers = await asyncio.gather(*(client.get(f"/prompt/together?{Q}") for _ in range(10)))
    assert [a.status for a in answers] == [200] * 10 and len(slow.calls) == 1
    assert (await client.get(f"/prompt/another?{Q}")).status == 429


async def test_a_waiting_request_is_not_refused_for_the_leaders_own_limit(iris, slow):
    """A (over its address's limit) and B ask for one new image at once: B must not get A's 429."""
    client = await iris(BACKEND_API_URLS=slow.url, RATE_LIMIT_GENERATE="1/minute", TRUSTED_PROXIES="127.0.0.1",
                        DAILY_BUDGET="100", BACKEND_PRICES=f'{{"{slow.url}": 1}}')
    signer = client.app[ADMISSION].signer
    a, b = {"X-Forwarded-For": "198.51.100.1"}, {"X-Forwarded-For": "198.51.100.2"}
    assert (await client.get(f"/prompt/first?{Q}", headers=a)).status == 200  # A's one image this minute
    flight = client.app[FLIGHT]
    for n in range(5):  # until B really joined A's flight (it nearly always does at once)
        url = signer.sign(f"/prompt/shared{n}?width=64")
        before = flight.coalesced
        answer_a, answer_b = await asyncio.gather(client.get(url, headers=a), client.get(url, headers=b))
        if flight.coalesced > before:
            break
    else:
        pytest.fail("B never joined A's flight")
    assert answer_a.status == 429 and await code_of(answer_a) == "generate_limited"
    assert answer_b.status == 200


async def test_generations_in_flight_are_bounded(iris, slow):
    client = await iris(BACKEND_API_URLS=slow.url, MAX_GENERATIONS_IN_FLIGHT="2")
    answers = await asyncio.gather(*(client.get(f"/prompt/many{n}?{Q}") for n in range(6)))
    assert [a.status for a in answers] == [200] * 6
    assert slow.most_in_flight == 2 and len(slow.calls) == 6


async def test_beyond_the_bound_a_miss_waits_then_gets_503_while_hits_answer(iris, slow):
    client = await iris(BACKEND_API_URLS=slow.url, MAX_GENERATIONS_IN_FLIGHT="1", GENERATION_SLOT_WAIT="0.1")
    slow.delay = 0.0
    assert (await client.get(f"/prompt/cached?{Q}")).status == 200
    slow.delay = 0.6
    first = asyncio.create_task(client.get(f"/prompt/busy1?{Q}"))
    await asyncio.sleep(0.2)
    second = await client.get(f"/prompt/busy2?{Q}")
    assert second.status == 503 and await code_of(second) == "generations_busy"
    assert int(second.headers["Retry-After"]) >= 1
    hit = await client.get(f"/prompt/cached?{Q}")
    assert hit.status == 200 and hit.headers["X-Cache"] == "HIT"
    assert (await first).status == 200
    assert len(slow.calls) == 2


async def test_two_workers_on_one_host_share_the_slots_and_the_limits(iris, slow):
    env = {"BACKEND_API_URLS": slow.url, "MAX_GENERATIONS_IN_FLIGHT": "1", "GENERATION_SLOT_WAIT": "0.1",
           "RATE_LIMIT_GENERATE": "3/minute"}
    one, two = await iris(**env), await iris(**env)  # one DATA_DIR
    first = asyncio.create_task(one.get(f"/prompt/w1?{Q}"))
    await asyncio.sleep(0.2)
    busy = await two.get(f"/prompt/w2?{Q}")  # admitted, so counted, but no slot came free in time
    assert busy.status == 503
    assert (await first).status == 200
    slow.delay = 0.0
    assert (await two.get(f"/prompt/w3?{Q}")).status == 200
    limited = await one.get(f"/prompt/w4?{Q}")  # the fourth miss of this address over both workers
    assert limited.status == 429 and await code_of(limited) == "generate_limited"


HOLD_A_SLOT = """
import asyncio, sys, time
from proxy.cache.slots import FileSlots
slots = FileSlots.open(__import__("pathlib").Path(sys.argv[1]), 1)
assert asyncio.run(slots.take()) is not None
print("held", flush=True)
time.sleep(60)
"""


async def test_a_worker_that_dies_frees_its_slot(tmp_path):
    path = tmp_path / "generations.lock"
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", HOLD_A_SLOT, str(path),
                                                  stdout=asyncio.subprocess.PIPE)
    assert holder.stdout is not None
    assert await asyncio.wait_for(holder.stdout.readline(), 20) == b"held\n"
    slots = FileSlots.open(path, 1)
    assert slots is not None
    assert await slots.take() is None and await slots.busy() == 1
    holder.kill()
    await holder.wait()
    slot = await slots.take()
    assert slot is not None and await slots.busy() == 1
    await slot.release()
    assert await slots.busy() == 0
    await slots.close()


async def test_the_daily_budget_refuses_new_images_until_the_next_utc_day(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, BACKEND_PRICES=f'{{"{backend.url}": 0.5}}', DAILY_BUDGET="1")
    now = MIDNIGHT - 60.0
    client.app[ALLOWANCE].budget.clock = lambda: now
    assert (await client.get(f"/prompt/b1?{Q}")).status == 200
    assert (await client.get(f"/prompt/b2?{Q}")).status == 200
    spent = await client.get(f"/prompt/b3?{Q}")
    assert spent.status == 429 and await code_of(spent) == "budget_exhausted"
    assert spent.headers["Retry-After"] == "60"  # until midnight UTC
    hit = await client.get(f"/prompt/b1?{Q}")
    assert hit.status == 200 and hit.headers["X-Cache"] == "HIT"
    assert len(backend.calls) == 2
    now = MIDNIGHT + 1.0
    assert (await client.get(f"/prompt/b3?{Q}")).status == 200
    status = await (await client.get("/status", headers=ADMIN)).json()
    budget = status["spending"]["budget"]
    assert budget["today"] == "2026-12-05" and budget["spent_today"] == 0.5 and budget["left_today"] == 0.5
    label = "backend-1"  # the backend's label, as /status and the metrics name it
    assert budget["days"][:2] == [
        {"day": "2026-12-05", "images": 1, "spent": 0.5, "backends": {label: {"images": 1, "spent": 0.5}}},
        {"day": "2026-12-04", "images": 2, "spent": 1.0, "backends": {label: {"images": 2, "spent": 1.0}}}]
    metrics = await (await client.get("/metrics", headers=ADMIN)).text()
    assert f'iris_spend_total{{backend="{label}"}} 1.5' in metrics
    assert f'iris_generated_images_total{{backend="{label}"}} 3.0' in metrics
    assert 'iris_generations_refused_total{reason="budget_exhausted"} 1.0' in metrics


async def test_misses_that_waited_while_the_budget_was_spent_are_refused(iris, slow):
    client = await iris(BACKEND_API_URLS=slow.url, BACKEND_PRICES=f'{{"{slow.url}": 1}}', DAILY_BUDGET="1",
                        MAX_GENERATIONS_IN_FLIGHT="1")
    answers = await asyncio.gather(*(client.get(f"/prompt/rush{n}?{Q}") for n in range(3)))
    assert sorted(a.status for a in answers) == [200, 429, 429]
    assert len(slow.calls) == 1


async def test_the_dashboard_shows_the_spend(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, BACKEND_PRICES=f'{{"{backend.url}": 0.25}}', DAILY_BUDGET="2")
    assert (await client.get(f"/prompt/shown?{Q}")).status == 200
    login = await client.post("/admin/login", data={"token": ADMIN_TOKEN}, allow_redirects=False)
    assert login.status == 303
    page = await (await client.get("/admin")).text()
    assert 'id="spend"' in page and '<strong id="spent-today">0.25</strong>' in page
    assert '<span id="left-today">1.75</span>' in page and "backend-1" in page


@pytest.mark.parametrize(("env", "variable"), [
    ({"BACKEND_API_URLS": "http://a", "DAILY_BUDGET": "5"}, "BACKEND_PRICES"),
    ({"BACKEND_API_URLS": "http://a", "BACKEND_PRICES": '{"http://b": 1}'}, "BACKEND_PRICES"),
    ({"BACKEND_API_URLS": "http://a", "BACKEND_PRICES": '{"http://a": -1}'}, "BACKEND_PRICES"),
    ({"DAILY_BUDGET": "0"}, "DAILY_BUDGET"),
    ({"DAILY_BUDGET": "lots"}, "DAILY_BUDGET"),
    ({"RATE_LIMIT_GENERATE": "many"}, "RATE_LIMIT_GENERATE"),
    ({"MAX_GENERATIONS_IN_FLIGHT": "-1"}, "MAX_GENERATIONS_IN_FLIGHT"),
    ({"IMAGE_SIGNING_KEYS": "short"}, "IMAGE_SIGNING_KEYS"),
])
def test_bad_settings_name_the_variable(env, variable):
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert caught.value.variable == variable


def test_settings_for_new_images():
    cfg = load_settings({"BACKEND_API_URLS": "http://a/v1/", "BACKEND_PRICES": '{"http://a/v1": 0.04, "Pollinations": 0}',
                         "DAILY_BUDGET": "20", "RATE_LIMIT_GENERATE": "100/hour"}).spending
    assert cfg.prices == {"backend-1": 0.04, "pollinations": 0.0} and cfg.daily_budget == 20.0
    assert (cfg.rate_generate.count, cfg.rate_generate.period) == (100, 3600.0)
    off = load_settings({"RATE_LIMIT_GENERATE": "0", "MAX_GENERATIONS_IN_FLIGHT": "0"}).spending
    assert off.rate_generate is None and off.max_in_flight == 0 and not off.counts_spend
