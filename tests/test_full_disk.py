"""A full disk under the image cache: Iris keeps serving what it has cached, answers misses with a
clear 503, logs why, and stores again once space is freed. It must never die of it (a page of a
memory-mapped file first written on a full disk kills the process with SIGBUS).

The full disk is a small tmpfs mounted in a mount namespace of the process under test
(``unshare --mount --map-root-user``: no root needed where user namespaces are allowed, and nothing
is left mounted afterwards); the test process fills it through ``/proc/PID/root``."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import orjson
import pytest

from bench.harness import free_port
from proxy.cache.stores.presence import HEADER, SLOTS, PresenceMap
from tests.conftest import ACCESS_KEY
from tests.support.fakes import FakeImageBackend, noise_png

REPO = Path(__file__).resolve().parents[1]


def namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c",
                            "mount -t tmpfs -o size=1m tmpfs /mnt"], capture_output=True, check=False)
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(not namespaces_work(),
                                  reason="cannot mount a tmpfs in a user and mount namespace here")


def on_small_disk(mount: Path, size: str, *command: str) -> list[str]:
    """``command`` run with a ``size`` tmpfs mounted at ``mount`` (seen by it alone)."""
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
    return ["unshare", "--mount", "--map-root-user", "sh", "-c", script, "sh", size, str(mount), *command]


def fill(path: Path) -> None:
    with open(path, "wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass


def test_the_presence_map_owns_its_disk_blocks_from_the_start(tmp_path):
    """Marks write to the map's memory; pages without blocks would need the disk at that moment."""
    presence = PresenceMap(tmp_path / "presence")
    try:
        assert os.stat(tmp_path / "presence").st_blocks * 512 >= HEADER + SLOTS
    finally:
        presence.close()


STORE_ON_A_FULL_DISK = """
import asyncio, os, sys
from pathlib import Path
from proxy.cache.stores.disk import DiskStore

root = Path(sys.argv[1])

async def main():
    store = DiskStore(root / "cache", 10**9)
    kept = {f"img:{i}": os.urandom(100_000) for i in range(3)}
    for key, value in kept.items():
        await store.set(key, value)
    with open(root / "filler", "wb") as filler:
        try:
            while True:
                filler.write(b"\\0" * 65536)
                filler.flush()
        except OSError:
            pass
    for key, value in kept.items():
        assert await store.get(key) == value, key
    refused = set()
    for i in range(400):  # new keys mark slots all over the presence map, then fail to be written
        try:
            await store.set(f"new:{i}", os.urandom(2000))
        except Exception as exc:
            refused.add((i, type(exc).__name__, getattr(exc, "status", None)))
    try:
        await store.room()
        print("room")
    except Exception as exc:
        print("full", type(exc).__name__)
    print("refused", len(refused), *sorted({(name, status) for _, name, status in refused}))
    await store.close()

asyncio.run(main())
"""


@needs_mounts
def test_a_store_on_a_full_disk_serves_what_it_has_and_refuses_new_entries(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(on_small_disk(mount, "12m", sys.executable, "-c", STORE_ON_A_FULL_DISK, str(mount)),
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"status {done.returncode} (-7 or 135: SIGBUS)\n{done.stderr[-2000:]}"
    lines = done.stdout.split("\n")
    assert "full StorageFull" in lines
    _, refused, *kinds = next(line for line in lines if line.startswith("refused")).split(" ", 2)
    assert int(refused) > 300 and kinds == ["('StorageFull', 503)"]
    assert done.stderr.count("the disk holding the image cache") == 1  # logged, once


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str | None, bytes]:
    async with session.get(url) as resp:
        return resp.status, resp.headers.get("X-Cache"), await resp.read()


async def cache_state(session: aiohttp.ClientSession, base: str) -> dict[str, object]:
    async with session.get(f"{base}/status", headers={"X-Admin-Token": "t" * 32}) as resp:
        body = await resp.json()
        assert "cache" in body, body
        return body["cache"]


@needs_mounts
async def test_a_server_on_a_full_disk_serves_hits_and_answers_misses_with_503(tmp_path, serve):
    backend = FakeImageBackend(image=noise_png(120, 120))
    await serve(backend)
    mount = tmp_path / "disk"
    mount.mkdir()
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": str(port), "WORKERS": "1",
           "DATA_DIR": str(tmp_path / "data"), "CACHE_DIR": str(mount / "cache"), "CACHE_MEMORY_BYTES": "0",
           "PROXY_ACCESS_KEY": ACCESS_KEY, "ADMIN_TOKEN": "t" * 32, "BACKEND_API_URLS": backend.url,
           "POLLINATIONS_FALLBACK": "false", "ACCESS_LOG": "false", "LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(*on_small_disk(mount, "12m", sys.executable, "-m", "proxy", "serve"),
                                                cwd=REPO, env=env, stderr=asyncio.subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/prompt/{{}}?key={ACCESS_KEY}&width=64&height=64"
    try:
        async with aiohttp.ClientSession() as session:
            async with asyncio.timeout(60):
                while True:
                    assert proc.returncode is None, "Iris exited while starting"
                    try:
                        await get(session, f"{base}/status")
                        break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.1)
            assert (await get(session, url.format("kept")))[0] == 200
            await asyncio.sleep(0.5)  # stored just after the answer
            assert (await get(session, url.format("kept")))[1] == "HIT"
            fill(Path(f"/proc/{proc.pid}/root") / mount.relative_to("/") / "filler")

            status, state, _ = await get(session, url.format("kept"))
            assert (status, state) == (200, "HIT")
            calls = len(backend.calls)
            first = await get(session, url.format("new%201"))  # may be made (its store write fails)
            assert first[0] in (200, 503)
            await asyncio.sleep(1.0)  # a made image is stored after its answer: that write finds the disk full
            calls_before = len(backend.calls)
            status, _, body = await get(session, url.format("new%202"))
            assert status == 503
            assert orjson.loads(body)["error"]["code"] == "storage_full"
            assert (await cache_state(session, base))["disk_full"] is True  # what operators see
            assert len(backend.calls) == calls_before  # refused before any backend call
            assert calls_before - calls <= 1
            status, state, _ = await get(session, url.format("kept"))
            assert (status, state) == (200, "HIT")

            (Path(f"/proc/{proc.pid}/root") / mount.relative_to("/") / "filler").unlink()
            for _ in range(40):  # the free space is looked at again within RECHECK seconds
                if (await get(session, url.format("new%203")))[0] == 200:
                    break
                await asyncio.sleep(0.5)
            else:
                raise AssertionError("new images were still refused after space was freed")
            assert (await cache_state(session, base))["disk_full"] is False
        assert proc.returncode is None, "Iris died on the full disk"
    finally:
        if proc.returncode is None:
            proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    log = err.decode()
    assert "is full" in log and "has room again" in log
    assert proc.returncode in (0, -15)
