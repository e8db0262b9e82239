"""The cache: single flight, whole entries only, persistence, the size bound, shared invalidation."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import threading
from contextlib import closing
from pathlib import Path

import pytest

from proxy.app import create_app
from proxy.cache.entry import CacheEntry, image_entry
from proxy.cache.flight import SingleFlight
from proxy.cache.generation import Generation
from proxy.cache.locks.base import FlightLock
from proxy.cache.locks.file import FileLock
from proxy.cache.locks.lease import LeaseLock
from proxy.cache.stores.base import ValueFile
from proxy.cache.stores.disk import DiskStore
from proxy.keys import FLIGHT
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.support.fakes import FakeImageBackend, noise_png

Q = f"key={ACCESS_KEY}"


async def test_forty_identical_concurrent_misses_cost_one_backend_call(iris, backend):
    backend.delay = 0.3
    client = await iris(BACKEND_API_URLS=backend.url)
    responses = await asyncio.gather(*(client.get(f"/prompt/same?{Q}") for _ in range(40)))
    bodies = {await r.read() for r in responses}
    assert [r.status for r in responses] == [200] * 40
    assert bodies == {backend.image}
    assert len(backend.calls) == 1


async def test_concurrent_misses_share_the_same_error(iris, backend):
    backend.mode = "error500"
    backend.delay = 0.2
    client = await iris(BACKEND_API_URLS=backend.url, POLLINATIONS_FALLBACK="false")
    responses = await asyncio.gather(*(client.get(f"/prompt/broken?{Q}") for _ in range(10)))
    assert {r.status for r in responses} == {502}
    assert len({(await r.json())["error"]["message"] for r in responses}) == 1
    assert len(backend.calls) == 1


async def test_restart_keeps_the_cache(aiohttp_client, settings_for, backend):
    settings = settings_for(BACKEND_API_URLS=backend.url)
    first = await aiohttp_client(create_app(settings))
    assert (await first.get(f"/prompt/keep?{Q}")).status == 200
    await first.close()
    second = await aiohttp_client(create_app(settings))
    resp = await second.get(f"/prompt/keep?{Q}")
    assert resp.headers["X-Cache"] == "HIT"
    assert await resp.read() == backend.image
    assert len(backend.calls) == 1


async def test_a_reader_racing_a_writer_never_sees_a_partial_entry(tmp_path):
    writer_store = DiskStore(tmp_path / "c", 10**9)
    reader_store = DiskStore(tmp_path / "c", 10**9)
    bodies = [bytes([i]) * (300_000 + i * 7919) for i in range(1, 6)]
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            body = bodies[i % len(bodies)]
            writer_store.cache.set("img:k", image_entry(body, "image/png").encode())
            i += 1
        writer_store.cache.close()  # diskcache's connection for this thread

    await writer_store.set("img:k", image_entry(bodies[0], "image/png").encode())  # then a thread rewrites it
    thread = threading.Thread(target=write)
    thread.start()
    try:
        seen = 0
        for _ in range(300):
            raw = await reader_store.get("img:k")
            if raw is None:
                continue
            entry = CacheEntry.decode(raw)
            assert entry is not None and entry.body in bodies
            seen += 1
        assert seen > 0
    finally:
        stop.set()
        thread.join()
        await writer_store.close()
        await reader_store.close()


async def test_size_limit_evicts_least_recently_used(iris, serve, data_dir):
    """Room for about 33 images; a full cache evicts up to 16 entries at once (diskcache's cull),
    the least recently used first. The limit is well above 16 images: with fewer, one eviction
    could take every entry, the newest included, and which one triggered it would depend on
    timing (background writes under CPU load)."""
    big = FakeImageBackend(image=noise_png(200, 200))  # about 120 kB
    await serve(big)
    limit = 4 * 1024 * 1024
    client = await iris(BACKEND_API_URLS=big.url, CACHE_SIZE_LIMIT=str(limit), CACHE_MEMORY_BYTES="0",
                        RECENT_GENERATIONS="0", RATE_LIMIT_GENERATE="0")  # 40 new images from one client

    async def fetch(n: int) -> str:
        resp = await client.get(f"/prompt/p{n}?{Q}")
        assert resp.status == 200, await resp.text()
        await asyncio.gather(*client.app[FLIGHT].tasks)  # answered before its store write: wait for it
        return resp.headers["X-Cache"]

    for n in range(30):  # 3.6 MB: nothing evicted yet
        assert await fetch(n) == "MISS"
    assert await fetch(0) == "HIT"  # p0 is now the most recently used
    for n in range(30, 40):  # past the limit: the least recently used go
        assert await fetch(n) == "MISS"
    status = await (await client.get("/status", headers={"X-Admin-Token": ADMIN_TOKEN})).json()
    assert status["cache"]["bytes"] <= limit + 256 * 1024
    assert await fetch(39) == "HIT"
    assert await fetch(0) == "HIT"  # used recently: kept
    assert await fetch(1) == "MISS"  # the oldest unused went first


def flight_lock(kind: str, store: DiskStore, directory: Path) -> FlightLock:
    """Each call stands for one worker's lock: a store lock, or its own open of the lock file."""
    return LeaseLock(store, lease=1.0) if kind == "store" else FileLock(directory / "flights.lock")


def access_time(directory: Path, key: str) -> float:
    with closing(sqlite3.connect(directory / "cache.db")) as db:
        return db.execute("SELECT access_time FROM Cache WHERE key = ?", (key,)).fetchone()[0]


async def test_a_worker_records_a_keys_access_once_in_a_while_not_on_every_read(tmp_path):
    """Recording an access is a write transaction (the workers queue for SQLite's write lock):
    the first read records it, the reads right after it do not, and still read the value."""
    store = DiskStore(tmp_path / "c", 10**9)
    try:
        value = os.urandom(200_000)  # kept as a file of its own: opened by open_value
        await store.set("img:k", value)
        await store.set("small", b"v")
        stored = access_time(tmp_path / "c", "img:k")
        await asyncio.sleep(0.05)
        opened = await store.open_value("img:k", whole_to=0, head=16)
        assert isinstance(opened, ValueFile) and opened.read_at(0, len(value)) == value
        opened.close()
        first = access_time(tmp_path / "c", "img:k")
        assert first > stored
        await asyncio.sleep(0.05)
        for _ in range(3):
            again = await store.open_value("img:k", whole_to=0, head=16)
            assert isinstance(again, ValueFile) and again.head == value[:16]
            again.close()
            assert await store.get("small") == b"v"
        assert access_time(tmp_path / "c", "img:k") == first
        small = access_time(tmp_path / "c", "small")
        assert small > stored and await store.get("small") == b"v"
        assert access_time(tmp_path / "c", "small") == small
    finally:
        await store.close()


LOCKS = pytest.mark.parametrize("kind", ["file", "store"])


@LOCKS
async def test_single_flight_across_two_workers_sharing_a_directory(tmp_path, kind):
    """Two stores and locks on one directory stand for two worker processes: one produce."""
    stores = [DiskStore(tmp_path / "c", 10**9) for _ in range(2)]
    locks = [flight_lock(kind, s, tmp_path) for s in stores]
    flights = [SingleFlight(lock, poll=0.01) for lock in locks]
    produced = 0

    async def produce() -> CacheEntry:
        nonlocal produced
        produced += 1
        await asyncio.sleep(0.2)
        return image_entry(b"img", "image/png")

    def lookup(store: DiskStore):
        async def read() -> CacheEntry | None:
            raw = await store.get("img:k")
            return CacheEntry.decode(raw) if raw else None
        return read

    def publish(store: DiskStore):
        async def write(entry: CacheEntry) -> None:
            await store.set("img:k", entry.encode())
        return write

    results = await asyncio.gather(*(
        flights[i % 2].do("k", produce, lookup(stores[i % 2]), publish(stores[i % 2])) for i in range(10)))
    assert produced == 1
    assert {r.body for r in results} == {b"img"}
    for store, lock in zip(stores, locks, strict=True):
        await lock.close()
        await store.close()


async def nothing_found() -> CacheEntry | None:
    return None


async def publish_nowhere(entry: CacheEntry) -> None:
    return None


async def test_a_dead_store_lock_holder_is_taken_over(tmp_path):
    store = DiskStore(tmp_path / "c", 10**9)
    await store.add("flight:k", b"someone-who-died", ttl=0.5)  # a worker died holding the lock
    flight = SingleFlight(LeaseLock(store, lease=0.5), poll=0.01)

    async def produce() -> CacheEntry:
        return image_entry(b"fresh", "image/png")

    result = await asyncio.wait_for(flight.do("k", produce, nothing_found, publish_nowhere), 5)
    assert result.body == b"fresh"
    await store.close()


HOLD_AND_WAIT = """
import asyncio, sys, time
from pathlib import Path
from proxy.cache.locks.file import FileLock
lock = FileLock(Path(sys.argv[1]))
assert asyncio.run(lock.acquire("k")) is not None
print("held", flush=True)
time.sleep(60)
"""


async def test_a_file_lock_held_by_a_process_that_dies_is_taken_over(tmp_path):
    """The kernel frees a dead worker's locks: the waiter leads as soon as the holder is gone."""
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", HOLD_AND_WAIT, str(tmp_path / "flights.lock"),
                                                  stdout=asyncio.subprocess.PIPE)
    assert holder.stdout is not None
    assert await asyncio.wait_for(holder.stdout.readline(), 20) == b"held\n"
    lock = FileLock(tmp_path / "flights.lock")
    flight = SingleFlight(lock, poll=0.01)
    assert await lock.acquire("k") is None
    produced: list[float] = []

    async def produce() -> CacheEntry:
        produced.append(asyncio.get_running_loop().time())
        return image_entry(b"fresh", "image/png")

    waiting = asyncio.create_task(flight.do("k", produce, nothing_found, publish_nowhere))
    await asyncio.sleep(0.3)
    assert produced == [] and not waiting.done()  # the holder is alive: wait
    holder.kill()
    await holder.wait()
    result = await asyncio.wait_for(waiting, 5)
    assert result.body == b"fresh" and len(produced) == 1
    await lock.close()


async def test_file_locks_exclude_each_other_and_settle_waits_for_the_holder(tmp_path):
    one, two = FileLock(tmp_path / "l"), FileLock(tmp_path / "l")
    lease = await one.acquire("k")
    assert lease is not None
    assert await one.acquire("k") is None  # not even the same worker takes it twice
    assert await two.acquire("k") is None
    assert await two.publishing("k") and await one.publishing("k")
    other = await two.acquire("other key")
    assert other is not None
    await lease.release(finished=True)
    assert not await two.publishing("k")
    again = await two.acquire("k")
    assert again is not None
    await again.release(finished=False)
    await other.release(finished=False)
    await one.close()
    await two.close()


async def test_generation_counter_is_shared_through_the_file(tmp_path):
    a, b = Generation(tmp_path / "gen"), Generation(tmp_path / "gen")
    assert a.read() == b.read() == 0
    await asyncio.gather(*(a.bump() for _ in range(20)), *(b.bump() for _ in range(20)))
    assert a.read() == b.read() == 40
    a.close()
    b.close()


async def test_delete_through_one_app_is_seen_by_another(aiohttp_client, settings_for, backend):
    """Two apps on one DATA_DIR stand for two workers with their own memory fronts."""
    settings = settings_for(BACKEND_API_URLS=backend.url)
    one = await aiohttp_client(create_app(settings))
    two = await aiohttp_client(create_app(settings))
    await one.get(f"/prompt/gone?{Q}")
    await asyncio.gather(*one.app[FLIGHT].tasks)  # the answer goes out before the store write lands
    assert (await two.get(f"/prompt/gone?{Q}")).headers["X-Cache"] == "HIT"  # now in two's memory
    resp = await one.post("/cache/delete", json={"description": "gone"}, headers={"X-Admin-Token": ADMIN_TOKEN})
    assert resp.status == 200
    again = await two.get(f"/prompt/gone?{Q}")
    assert again.headers["X-Cache"] == "MISS"
    assert len(backend.calls) == 2


@LOCKS
async def test_a_stale_miss_after_another_worker_finished_does_not_regenerate(tmp_path, kind):
    """Worker B read the store just before worker A published; B must not produce again."""
    stores = [DiskStore(tmp_path / "c", 10**9) for _ in range(2)]
    locks = [flight_lock(kind, s, tmp_path) for s in stores]
    a, b = (SingleFlight(lock, poll=0.01) for lock in locks)
    produced: list[str] = []

    def produce(name: str):
        async def make() -> CacheEntry:
            produced.append(name)
            return image_entry(name.encode(), "image/png")
        return make

    async def publish(entry: CacheEntry) -> None:
        await stores[0].set("img:k", entry.encode())

    async def lookup_a() -> CacheEntry | None:
        raw = await stores[0].get("img:k")
        return CacheEntry.decode(raw) if raw else None

    await a.do("k", produce("a"), lookup_a, publish, recheck=False)
    result = await b.do("k", produce("b"), lookup_a, publish, recheck=False)  # B's own check was stale
    assert produced == ["a"] and result.body == b"a"
    await a.settle("k")  # an admin delete clears a finish marker: the next miss leads at once
    lease = await locks[1].acquire("k")
    assert lease is not None
    await lease.release(finished=False)
    for store, lock in zip(stores, locks, strict=True):
        await lock.close()
        await store.close()


def test_a_directory_that_refuses_lock_files_falls_back_to_store_locks():
    assert FileLock.open(Path("/proc/self/flights.lock")) is None  # cannot even be created there


async def test_file_lock_open_gives_a_working_lock(tmp_path):
    lock = FileLock.open(tmp_path / "flights.lock")
    assert lock is not None
    lease = await lock.acquire("k")
    assert lease is not None and await lock.acquire("k") is None
    await lease.release(finished=True)
    await lock.close()
