"""The presence map beside the disk store: misses skip the lookup, and it never hides a key."""

from __future__ import annotations

import resource
import shutil

from proxy.cache.stores.disk import DiskStore
from proxy.cache.stores.presence import PresenceMap


async def test_a_written_key_is_marked_in_every_worker_and_an_unwritten_one_is_not(tmp_path):
    one, two = DiskStore(tmp_path / "c", 10**9), DiskStore(tmp_path / "c", 10**9)
    await one.set("img:a", b"A")
    assert two.presence.might_have("img:a")
    assert await two.get("img:a") == b"A"
    assert not two.presence.might_have("img:never-written")
    assert await two.get("img:never-written") is None
    await one.close()
    await two.close()


async def test_a_lost_presence_map_is_rebuilt_from_the_store(tmp_path):
    store = DiskStore(tmp_path / "c", 10**9)
    for i in range(50):
        await store.set(f"img:{i}", b"x")
    await store.close()
    (tmp_path / "c" / "presence").unlink()
    reopened = DiskStore(tmp_path / "c", 10**9)
    assert [await reopened.get(f"img:{i}") for i in range(50)] == [b"x"] * 50
    await reopened.close()


async def test_a_map_describing_another_store_is_refilled(tmp_path):
    """A cache directory copied in over an older one: its map must not hide the new keys."""
    old = DiskStore(tmp_path / "old", 10**9)
    await old.set("img:old", b"o")
    await old.close()
    new = DiskStore(tmp_path / "new", 10**9)
    await new.set("img:new", b"n")
    await new.close()
    shutil.copy(tmp_path / "old" / "presence", tmp_path / "new" / "presence")  # the wrong map
    wrong = PresenceMap(tmp_path / "new" / "presence")
    assert not wrong.might_have("img:new")
    wrong.close()
    reopened = DiskStore(tmp_path / "new", 10**9)
    assert await reopened.get("img:new") == b"n"
    await reopened.close()


def test_marks_from_two_maps_on_one_file_meet(tmp_path):
    a, b = PresenceMap(tmp_path / "p", slots=1024), PresenceMap(tmp_path / "p", slots=1024)
    keys = [f"k{i}" for i in range(100)]
    for key in keys[::2]:
        a.mark(key)
    for key in keys[1::2]:
        b.mark(key)
    assert all(a.might_have(k) and b.might_have(k) for k in keys)
    a.close()
    b.close()


def test_a_new_maps_pages_are_mapped_when_it_is_opened(tmp_path):
    """A miss's look at the map takes no page fault, also in a worker that has just started."""
    fresh = PresenceMap(tmp_path / "p")
    keys = [f"img:{i}" for i in range(200)]  # on about 200 different pages
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    assert not any(fresh.might_have(key) for key in keys)
    faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before
    assert faults < 20, f"{faults} page faults for 200 looks"
    fresh.close()
