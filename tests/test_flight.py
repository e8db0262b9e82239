"""Single flight's promises, one test each: settle() waits for a publish still running (here or in
another worker), every waiter gets the leader's failure, a failed lease does not block a takeover,
finished flights are forgotten, and a waiter in another worker backs off while it polls.

Two ``SingleFlight`` objects, each with its own lock over one directory, stand for two workers
(their own open file description of the lock file, or their own store view for leases)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path

from proxy.cache.flight import SingleFlight
from proxy.cache.locks.file import FileLock
from proxy.cache.locks.lease import LeaseLock
from proxy.cache.stores.disk import DiskStore
from proxy.errors import UpstreamFailed


async def nothing() -> str | None:
    return None


async def publish_nowhere(value: str) -> None:
    return None


def slow_publish(release: asyncio.Event, published: list[str]):
    async def publish(value: str) -> None:
        await release.wait()
        published.append(value)

    return publish


async def test_settle_waits_for_a_publish_still_running_in_this_worker(tmp_path: Path):
    """And it ends as soon as that publish does: a flight of this worker is waited on, not polled."""
    flight: SingleFlight[str] = SingleFlight(FileLock(tmp_path / "flights.lock"), poll=1.0)
    release, published = asyncio.Event(), []

    async def produce() -> str:
        return "image"

    assert await flight.do("k", produce, nothing, slow_publish(release, published)) == "image"  # answered
    settling = asyncio.create_task(flight.settle("k", limit=5.0))
    await asyncio.sleep(0.3)
    assert not settling.done(), "settle returned while the entry was still being written"
    release.set()
    await asyncio.wait_for(settling, 0.5)  # not at the next poll, a second later
    assert published == ["image"]
    await flight.close()


async def test_settle_waits_for_a_publish_still_running_in_another_worker(tmp_path: Path):
    leader: SingleFlight[str] = SingleFlight(FileLock(tmp_path / "flights.lock"))
    deleter: SingleFlight[str] = SingleFlight(FileLock(tmp_path / "flights.lock"), poll=0.01)
    release, published = asyncio.Event(), []

    async def produce() -> str:
        return "image"

    await leader.do("k", produce, nothing, slow_publish(release, published))
    settling = asyncio.create_task(deleter.settle("k"))
    await asyncio.sleep(0.3)
    assert not settling.done(), "settle returned while another worker was still writing the entry"
    release.set()
    await asyncio.wait_for(settling, 2)
    assert published == ["image"]
    await leader.close()


async def test_settle_gives_up_after_its_limit(tmp_path: Path):
    leader: SingleFlight[str] = SingleFlight(FileLock(tmp_path / "flights.lock"))
    deleter: SingleFlight[str] = SingleFlight(FileLock(tmp_path / "flights.lock"), poll=0.01)
    release = asyncio.Event()

    async def produce() -> str:
        return "image"

    await leader.do("k", produce, nothing, slow_publish(release, []))
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(deleter.settle("k", limit=0.3), 2)
    assert asyncio.get_running_loop().time() - started >= 0.28
    release.set()
    await leader.close()


async def test_settle_lets_the_next_miss_lead_at_once(tmp_path: Path):
    """A lease lock leaves DONE behind a publish for a moment; after an admin delete it must not
    keep the next miss waiting."""
    store = DiskStore(tmp_path / "c", 10**9)
    lock = LeaseLock(store, done_ttl=30.0)
    flight: SingleFlight[str] = SingleFlight(lock)

    async def produce() -> str:
        return "image"

    await flight.do("k", produce, nothing, publish_nowhere)
    await flight.close()  # published: DONE stands in the lock's place
    assert await lock.acquire("k") is None
    await flight.settle("k")
    lease = await lock.acquire("k")
    assert lease is not None
    await lease.release(finished=False)
    await store.close()


async def test_every_waiter_gets_the_leaders_failure(tmp_path: Path):
    flight: SingleFlight[str] = SingleFlight(FileLock(tmp_path / "flights.lock"))
    go = asyncio.Event()
    calls = 0

    async def produce() -> str:
        nonlocal calls
        calls += 1
        await go.wait()
        raise UpstreamFailed("every stage failed")

    waiters = [asyncio.create_task(flight.do("k", produce, nothing, publish_nowhere)) for _ in range(4)]
    await asyncio.sleep(0.05)
    go.set()
    results = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), 2)
    assert [type(result) for result in results] == [UpstreamFailed] * 4
    assert {str(result) for result in results} == {"every stage failed"} and calls == 1
    await flight.close()


async def test_finished_flights_are_forgotten(tmp_path: Path):
    flight: SingleFlight[str] = SingleFlight(FileLock(tmp_path / "flights.lock"))
    outcomes = iter([UpstreamFailed("first try failed"), "second try"])

    async def produce() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with contextlib.suppress(UpstreamFailed):
        await flight.do("k", produce, nothing, publish_nowhere)
    assert await asyncio.wait_for(flight.do("k", produce, nothing, publish_nowhere), 2) == "second try"
    await asyncio.sleep(0)  # the done callbacks
    assert flight.tasks == set() and flight.inflight == {} and flight.leading == {}
    await flight.close()


async def test_a_failed_leader_lets_a_waiting_worker_take_over_at_once(tmp_path: Path):
    """Its lease is released as unfinished: no DONE mark holds the waiter back until it expires."""
    stores = [DiskStore(tmp_path / "c", 10**9) for _ in range(2)]
    flights: list[SingleFlight[str]] = [SingleFlight(LeaseLock(store, done_ttl=10.0), poll=0.01)
                                        for store in stores]
    go = asyncio.Event()

    async def fail() -> str:
        await go.wait()
        raise UpstreamFailed("the leader failed")

    async def succeed() -> str:
        return "made by the other worker"

    leading = asyncio.create_task(flights[0].do("k", fail, nothing, publish_nowhere))
    await asyncio.sleep(0.1)
    waiting = asyncio.create_task(flights[1].do("k", succeed, nothing, publish_nowhere))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    go.set()
    with contextlib.suppress(UpstreamFailed):
        await leading
    assert await asyncio.wait_for(waiting, 2) == "made by the other worker"
    for flight, store in zip(flights, stores, strict=True):
        await flight.close()
        await store.close()


async def test_a_waiter_in_another_worker_backs_off_while_it_polls(tmp_path: Path):
    """Each wait is half as long again as the one before, up to ``max_poll``. (Counted in lookups,
    not in seconds: a loaded machine makes every wait longer, never shorter.)"""
    holder = FileLock(tmp_path / "flights.lock")
    lease = await holder.acquire("k")  # another worker is making it
    assert lease is not None
    flight: SingleFlight[str] = SingleFlight(FileLock(tmp_path / "flights.lock"), poll=0.01, max_poll=0.1)
    looked: list[float] = []
    loop = asyncio.get_running_loop()

    async def lookup() -> str | None:
        looked.append(loop.time())
        return "made over there" if len(looked) == 16 else None

    async def produce() -> str:
        raise AssertionError("the holder is alive: the waiter must not produce")

    started = loop.time()
    assert await asyncio.wait_for(flight.do("k", produce, lookup, publish_nowhere), 20) == "made over there"
    waits = [min(0.01 * 1.5 ** n, 0.1) for n in range(16)]  # 0.01, 0.015, ... then 0.1 from the 7th on
    gaps = [b - a for a, b in itertools.pairwise([started, *looked])]
    for n, (gap, wait) in enumerate(zip(gaps, waits, strict=True)):
        assert gap >= wait * 0.95, (n, gaps)
    assert looked[-1] - started < sum(waits) + 2.0, f"waits grew beyond max_poll: {gaps}"  # uncapped: 13 s
    await lease.release(finished=False)
    await holder.close()
    await flight.close()


async def test_a_result_another_worker_stored_just_before_the_lock_is_not_made_again(tmp_path: Path):
    flight: SingleFlight[str] = SingleFlight(FileLock(tmp_path / "flights.lock"))

    async def stored() -> str | None:
        return "made by the other worker"

    async def produce() -> str:
        raise AssertionError("made twice")

    assert await asyncio.wait_for(flight.do("k", produce, stored, publish_nowhere), 2) == "made by the other worker"
    await flight.close()


async def test_settle_gives_up_after_its_limit_on_a_publish_of_this_worker_too(tmp_path: Path):
    """An admin delete must not hang behind a store write that never ends."""
    flight: SingleFlight[str] = SingleFlight(FileLock(tmp_path / "flights.lock"), poll=0.01)

    async def produce() -> str:
        return "image"

    assert await flight.do("k", produce, nothing, slow_publish(asyncio.Event(), [])) == "image"
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(flight.settle("k", limit=0.3), 3)
    assert asyncio.get_running_loop().time() - started >= 0.28
    await flight.close(grace=0.1)


async def test_close_cancels_a_flight_that_outlives_its_grace_and_returns_once_it_is_gone(tmp_path: Path):
    flight: SingleFlight[str] = SingleFlight(FileLock(tmp_path / "flights.lock"))

    async def stuck() -> str:
        await asyncio.Event().wait()
        return "never"

    waiter = asyncio.create_task(flight.do("k", stuck, nothing, publish_nowhere))
    await asyncio.sleep(0.05)
    tasks = list(flight.tasks)
    assert tasks
    async with asyncio.timeout(3):
        await flight.close(grace=0.2)  # returns, and does not raise the cancellation
    assert all(task.cancelled() for task in tasks), "close returned before the flights were gone"
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(waiter, 1)
    assert waiter.done()


async def test_with_a_lock_that_marks_a_finish_the_store_is_read_after_locking_unless_the_caller_just_did(
        tmp_path: Path):
    """A lease lock tells of a flight that finished (``marks_finish``): a caller that read the store
    just before may skip the read after locking (``recheck=False``, one store read fewer on every
    miss); by default the leader reads it again, and a result stored meanwhile is not made again."""
    store = DiskStore(tmp_path / "cache", 10**8)
    flight: SingleFlight[str] = SingleFlight(LeaseLock(store))
    lookups: list[str] = []
    made: list[str] = []

    async def stored() -> str | None:
        lookups.append("read")
        return "made by the other worker"

    async def produce() -> str:
        made.append("made")
        return "made here"

    assert await flight.do("a", produce, stored, publish_nowhere) == "made by the other worker"
    assert made == [] and lookups == ["read"]
    lookups.clear()
    assert await flight.do("b", produce, stored, publish_nowhere, recheck=False) == "made here"
    assert made == ["made"] and lookups == []
    await flight.close()
    await store.close()


async def test_identical_calls_joined_to_a_flight_are_counted(tmp_path: Path):
    """``coalesced`` (shown in /status) counts the calls that joined a flight instead of leading one."""
    flight: SingleFlight[str] = SingleFlight(FileLock(tmp_path / "flights.lock"))
    release = asyncio.Event()

    async def produce() -> str:
        await release.wait()
        return "image"

    assert flight.coalesced == 0
    calls = [asyncio.create_task(flight.do("k", produce, nothing, publish_nowhere)) for _ in range(4)]
    await asyncio.sleep(0.05)
    release.set()
    assert await asyncio.gather(*calls) == ["image"] * 4
    assert flight.coalesced == 3
    await flight.close()
