"""Decompression bombs: a few kB of PNG declaring tens of millions of pixels. A frame is refused by
its header past the pixel cap, never decoded once the rate limit refuses it, decoded at most
VISION_DECODE_THREADS at a time, and the memory it took is given back; an image a backend sends
is refused past the size Iris could have asked for."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from bench.harness import free_port
from proxy.config import load_settings
from tests.conftest import ACCESS_KEY
from tests.support.fakes import FakeImageBackend
from tests.support.vision_rig import rig_starter
from tests.test_vision_frames import scene

REPO = Path(__file__).resolve().parents[1]
Q = f"key={ACCESS_KEY}"


def bomb(side: int = 6300, mode: str = "RGB") -> bytes:
    """A PNG of ``side`` x ``side`` pixels that compresses to almost nothing (131 kB at 6300)."""
    out = io.BytesIO()
    Image.new(mode, (side, side), (10, 200, 30) if mode == "RGB" else 0).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def glasses(iris, serve):
    return rig_starter(iris, serve)


def test_the_default_pixel_cap_is_lower():
    assert load_settings({}).vision.max_pixels == 16_000_000


async def test_a_bomb_past_the_pixel_cap_is_refused_from_its_header(glasses):
    rig = await glasses()
    await rig.auth()
    image = bomb()
    started = time.process_time()
    resp = await rig.frame(image)
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "too_many_pixels"
    assert time.process_time() - started < 0.3  # decoding it costs 0.7-1 s of CPU
    assert rig.provider_calls == 0


async def test_a_frame_over_the_rate_limit_is_never_decoded(glasses):
    """The rate limit answers first, also for frames that arrive together (which used to be
    decoded on the thread pool while the limit was being checked)."""
    rig = await glasses(RATE_LIMIT_PROCESS="1/hour", VISION_MAX_PIXELS="50000000")
    await rig.auth()
    assert (await rig.frame(scene())).status == 200
    image = bomb()
    started = time.process_time()
    answers = await asyncio.gather(*(rig.frame(image) for _ in range(3)))
    assert [resp.status for resp in answers] == [429, 429, 429]
    assert time.process_time() - started < 0.4


async def test_an_image_a_backend_sends_is_refused_past_twice_the_largest_side(iris, serve):
    huge, good = FakeImageBackend(image=bomb()), FakeImageBackend()
    await serve(huge)
    await serve(good)
    client = await iris(BACKEND_API_URLS=f"{huge.url},{good.url}", BACKEND_WEIGHTS=f'{{"{huge.url}": 1000, "{good.url}": 1}}')
    resp = await client.get(f"/prompt/a%20bomb?{Q}")
    assert resp.status == 200
    assert await resp.read() == good.image  # the pool moved on
    assert len(huge.calls) == 1


def worker_memory(pid: int) -> tuple[int, int]:
    """(resident, peak resident) in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


@pytest.mark.slow
async def test_bombs_decode_a_few_at_a_time_and_their_memory_is_given_back(tmp_path):
    """Four 6300 x 6300 frames at once (allowed by a raised cap): at most two are decoded at a
    time, and afterwards the worker is about as large as before (it kept 60-350 MB)."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "WORKERS": "1", "DATA_DIR": str(tmp_path / "data"),
           "PROXY_ACCESS_KEY": ACCESS_KEY, "ADMIN_TOKEN": "t" * 32, "POLLINATIONS_URL": "http://127.0.0.1:9",
           "LOG_LEVEL": "ERROR", "ACCESS_LOG": "false", "VISION_MAX_PIXELS": "50000000",
           "VISION_DECODE_THREADS": "2",
           "VISION_PROVIDERS": '[{"name": "none", "base_url": "http://127.0.0.1:9/v1", "model": "m", "keyless": true}]'}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "proxy", "serve", env=env, cwd=REPO)
    image, key = bomb(), "alice-key-0123456789abcdef"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/status"):
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            added = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "proxy", "profiles", "add",
                                            "alice", "--key", key], env=env, cwd=REPO, capture_output=True)
            assert added.returncode == 0, added.stderr

            async def frame() -> int:
                form = aiohttp.FormData()
                form.add_field("username", "alice")
                form.add_field("image", image, filename="frame_image.jpg", content_type="application/octet-stream")
                async with session.post(f"http://127.0.0.1:{port}/process", data=form,
                                        headers={"Authorization": f"Bearer {key}"}) as resp:
                    return resp.status  # 502: no provider answers; the frame was decoded before that

            await asyncio.sleep(1)
            base, _ = worker_memory(proc.pid)
            assert await frame() == 502
            _, one = worker_memory(proc.pid)
            assert await asyncio.gather(*(frame() for _ in range(4))) == [502] * 4
            await asyncio.sleep(0.5)
            resident, four = worker_memory(proc.pid)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    single = one - base
    assert single > 60, "the frame was not decoded: the test proves nothing"
    assert four - base < 2.6 * single, f"peak {four - base} MB for four, {single} MB for one"
    assert resident - base < 48, f"the worker kept {resident - base} MB"
