"""The trimmed miss path keeps every promise of the plain one: what a miss leaves for later (the
dashboard's notes) is still done, just not on the heels of the answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from proxy.cache.stores.disk import DiskStore
from proxy.imagegen.recent import RecentGenerations, StoreRing
from tests.conftest import ACCESS_KEY
from tests.support.fakes import FakeImageBackend


async def test_dashboard_notes_are_written_together_a_moment_after_they_were_made(tmp_path: Path):
    store = DiskStore(tmp_path / "cache", 10**8)
    ring = StoreRing(store, 4, "recent", gather=0.3)
    writer = asyncio.create_task(ring.run())
    try:
        for n in range(3):
            ring.add({"n": n, "time": n})
        await asyncio.sleep(0.1)
        assert await store.get("recent:next") is None, "written on the heels of the answers"
        await asyncio.sleep(0.5)
        assert [item["n"] for item in await ring.items()] == [2, 1, 0]
        assert int(await store.get("recent:next") or 0) == 3  # one slot each, in the order made
        for n in range(3, 9):  # more than the ring holds, in one batch: the newest 4 are kept
            ring.add({"n": n, "time": n})
        await asyncio.sleep(0.6)
        assert [item["n"] for item in await ring.items()] == [8, 7, 6, 5]
    finally:
        ring.stop()
        await asyncio.wait_for(writer, 2)
        await store.close()


async def test_a_stopping_writer_writes_the_notes_already_made_at_once(tmp_path: Path):
    store = DiskStore(tmp_path / "cache", 10**8)
    ring = StoreRing(store, 4, "recent", gather=30)  # longer than the test: only the stop can cut it
    writer = asyncio.create_task(ring.run())
    try:
        ring.add({"n": 1, "time": 1})
        ring.add({"n": 2, "time": 2})
        await asyncio.sleep(0.05)
        ring.stop()
        await asyncio.wait_for(writer, 2)
        assert [item["n"] for item in await ring.items()] == [2, 1]
        ring.add({"n": 3, "time": 3})  # after the stop: refused, never waits
        assert ring.queue.empty()
    finally:
        writer.cancel()
        await store.close()


async def test_the_notes_of_the_last_moment_before_shutdown_are_kept(iris, serve, data_dir):
    backend = FakeImageBackend()
    await serve(backend)
    client = await iris(BACKEND_API_URLS=backend.url)
    assert (await client.get(f"/prompt/last%20words?key={ACCESS_KEY}")).headers["X-Cache"] == "MISS"
    await client.close()  # at once: the note is still gathering
    store = DiskStore(data_dir / "cache", 10**9)
    try:
        [note] = await RecentGenerations(store, 8).latest(8)
        assert note["prompt"] == "last words"
    finally:
        await store.close()
