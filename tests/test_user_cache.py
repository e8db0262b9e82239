"""Each worker caches sessions and user state (``proxy.accounts.users``): what it must still honour.
Writes by "another process" go through a second connection to the same SQLite file, exactly as the
CLI and the other workers write."""

from __future__ import annotations

import asyncio

import pytest

from proxy.accounts import profiles, users
from proxy.accounts.service import Accounts, open_context
from proxy.keys import ACCOUNTS, SETTINGS
from tests.support.vision_fakes import scene
from tests.support.vision_rig import ALICE_KEY, rig_starter

SEEN_WITHIN = 3.0


@pytest.fixture
def glasses(iris, serve):
    return rig_starter(iris, serve)


async def elsewhere(rig, fn, *args):
    """``fn(ctx, *args)`` on a connection of its own, as another process would run it."""

    def run():
        ctx = open_context(rig.client.app[SETTINGS])
        try:
            return fn(ctx, *args)
        finally:
            ctx.conn.close()

    return await asyncio.to_thread(run)


async def until(rig, check, seed: int = 100):
    """Sends distinct frames until ``check(status, body)`` holds; returns the seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < SEEN_WITHIN:
        resp = await rig.frame(scene(seed=seed))
        seed += 1
        if check(resp.status, await resp.json()):
            return loop.time() - start
        await asyncio.sleep(0.03)
    raise AssertionError(f"not seen within {SEEN_WITHIN} s")


async def test_a_prompt_changed_by_another_process_is_used_within_the_refresh(glasses):
    rig = await glasses(PROFILE_REFRESH="0.1")
    await rig.auth()
    assert (await rig.frame(scene(seed=1))).status == 200
    await elsewhere(rig, profiles.set_prompt, "alice", "Name the colour.")
    await until(rig, lambda status, body: status == 200 and body["prompt_used"] == "Name the colour.")


async def test_a_prompt_changed_through_this_worker_is_used_at_once(glasses):
    rig = await glasses(PROFILE_REFRESH="10")
    await rig.auth()
    assert (await rig.frame(scene(seed=1))).status == 200
    resp = await rig.client.post("/prompt-alice", json={"prompt": "Count the cups."})
    assert resp.status == 200
    body = await (await rig.frame(scene(seed=2))).json()
    assert body["prompt_used"] == "Count the cups."


async def test_provider_keys_set_by_another_process_are_used_within_the_refresh(glasses):
    rig = await glasses(PROFILE_REFRESH="0.1")
    await rig.auth()
    assert (await rig.frame(scene(seed=1))).status == 200
    await elsewhere(rig, profiles.set_provider_keys, "alice", {"gemini_api_key": "sk-alice-own-gemini-77"})

    def own_key_used(status: int, body: dict) -> bool:
        return status == 200 and rig.fakes["gemini"].calls[-1].headers["Authorization"] == \
            "Bearer sk-alice-own-gemini-77"

    await until(rig, own_key_used)


async def test_a_profile_deleted_by_another_process_stops_working(glasses):
    rig = await glasses(PROFILE_REFRESH="0.1")
    await rig.auth()
    assert (await rig.frame(scene(seed=1))).status == 200
    assert await elsewhere(rig, profiles.delete, "alice")
    await until(rig, lambda status, body: status == 401)
    await asyncio.sleep(0.3)
    assert (await rig.frame(scene(seed=50))).status == 401, "and stays refused"


async def test_a_key_rotated_by_another_process_ends_the_cached_session(glasses):
    rig = await glasses(PROFILE_REFRESH="0.1")
    await rig.auth()
    assert (await rig.frame(scene(seed=1))).status == 200
    new_key = await elsewhere(rig, profiles.rotate_key, "alice")
    await until(rig, lambda status, body: status == 401 and body["error"]["code"] == "auth_required")
    assert (await rig.client.post(f"/auth-{ALICE_KEY}")).status == 401
    await rig.auth(new_key)
    assert (await rig.frame(scene(seed=60))).status == 200


async def test_a_cached_session_ends_at_its_expiry(glasses):
    rig = await glasses(AUTH_SESSION_TTL="0.6", PROFILE_REFRESH="10")
    await rig.auth()
    assert (await rig.frame(scene(seed=1))).status == 200
    await asyncio.sleep(0.7)
    resp = await rig.frame(scene(seed=2))
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "auth_required"


async def test_a_session_granted_by_another_process_works_at_once(glasses):
    rig = await glasses(PROFILE_REFRESH="10")
    assert (await rig.frame(scene(seed=1))).status == 401, "no session yet (and the miss is not kept)"
    alice = await rig.db.profile("alice")
    await elsewhere(rig, users.grant, "127.0.0.1", "alice", alice.stamp, 60.0)
    assert (await rig.frame(scene(seed=2))).status == 200


async def test_a_session_regranted_to_another_user_through_this_worker_applies_at_once(glasses):
    rig = await glasses(PROFILE_REFRESH="10")
    await rig.auth()
    assert (await rig.frame(scene(seed=1), username="alice")).status == 200
    await rig.auth(key="bob-auth-key-0123456789")
    resp = await rig.frame(scene(seed=2), username="alice")
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "wrong_user"
    assert (await rig.frame(scene(seed=3), username="bob")).status == 200


async def test_a_read_under_way_when_the_cache_empties_is_not_kept(glasses):
    rig = await glasses(PROFILE_REFRESH="10")
    cache = rig.client.app[ACCOUNTS].users
    db: Accounts = rig.db
    release = asyncio.Event()
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    def hold(ctx) -> None:  # keeps the database thread busy so the read below waits behind it
        loop.call_soon_threadsafe(started.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(5)

    blocker = asyncio.create_task(db.run(hold))
    await started.wait()
    reading = asyncio.create_task(cache.state("alice"))
    await asyncio.sleep(0.05)
    cache.forget()  # a change arrives while the read is queued: its answer may predate the change
    release.set()
    await blocker
    state = await reading
    assert state is not None and state.profile.username == "alice"
    assert "alice" not in cache.states
    assert await cache.state("alice") == state
    assert "alice" in cache.states, "a read that started after the change is kept"
