"""The trimmed miss path keeps every promise of the plain one: what a miss leaves for later (the
dashboard's notes) is still done, just not on the heels of the answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from proxy.cache.stores.disk import DiskStore
from proxy.imagegen.recent import StoreRing


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
