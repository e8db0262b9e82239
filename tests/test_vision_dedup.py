"""Repeated scenes across workers: the last answer per user is shared through the host's disk
cache, so an identical frame costs one provider call whichever worker each frame reaches."""

from __future__ import annotations

import asyncio

import pytest

from proxy.app import create_app
from proxy.keys import SETTINGS, VISION
from tests.conftest import IrisTestServer
from tests.support.vision_rig import Rig, rig_starter
from tests.test_vision_frames import scene


@pytest.fixture
def glasses(iris, serve):
    return rig_starter(iris, serve)


async def another_worker(rig: Rig, aiohttp_client) -> Rig:
    """A second app on the same DATA_DIR and providers: another worker of the same server."""
    client = await aiohttp_client(IrisTestServer(create_app(rig.client.app[SETTINGS])))
    return Rig(client, rig.fakes)


async def shared(rig: Rig) -> None:
    """The answer is shared just after it went out."""
    await asyncio.gather(*getattr(rig.client.app[VISION].dedup, "writes", ()))


async def test_a_repeated_frame_on_another_worker_costs_no_provider_call(glasses, aiohttp_client):
    one = await glasses()
    two = await another_worker(one, aiohttp_client)
    await one.auth()
    first = await (await one.frame(scene(seed=5))).json()
    assert first["cached"] is False and one.provider_calls == 1
    await shared(one)
    again = await (await two.frame(scene(seed=5, shift=2))).json()
    assert again["cached"] is True and again["calls"] == 0
    assert again["answer"] == first["answer"]
    assert one.provider_calls == 1
    other = await (await two.frame(scene(seed=6))).json()  # a new scene is asked, and then shared back
    assert other["cached"] is False and one.provider_calls == 2
    await shared(two)
    back = await (await one.frame(scene(seed=6))).json()
    assert back["cached"] is True and one.provider_calls == 2


async def test_shared_answers_expire_and_follow_the_prompt(glasses, aiohttp_client):
    one = await glasses(VISION_DEDUP_SECONDS="0.5")
    two = await another_worker(one, aiohttp_client)
    await one.auth()
    await one.frame(scene(seed=7))
    await shared(one)
    reprompted = await (await two.frame(scene(seed=7), prompt="Another question")).json()
    assert reprompted["cached"] is False and one.provider_calls == 2
    await asyncio.sleep(0.6)
    later = await (await one.frame(scene(seed=7), prompt="Another question")).json()
    assert later["cached"] is False and one.provider_calls == 3


async def test_dedup_off_asks_every_time(glasses, aiohttp_client):
    one = await glasses(VISION_DEDUP_SECONDS="0")
    await one.auth()
    for _ in range(2):
        assert (await (await one.frame(scene(seed=8))).json())["cached"] is False
    assert one.provider_calls == 2
