"""What Iris keeps on disk (cached images, databases, frames, secrets) is readable by its user alone:
files 0600, directories 0700, whatever the umask it was started with, and also where an older
version left DATA_DIR 0755."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from bench.harness import free_port
from proxy.accounts.frames import write_file
from tests.conftest import ACCESS_KEY
from tests.support.fakes import FakeImageBackend, jpeg, noise_png

REPO = Path(__file__).resolve().parents[1]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def loose(root: Path) -> list[str]:
    """Everything under ``root`` (itself included) that others could read."""
    found = [] if mode(root) == 0o700 else [f"{root} {mode(root):o}"]
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            if mode(Path(folder, name)) != 0o700:
                found.append(f"{Path(folder, name)} {mode(Path(folder, name)):o}")
        for name in files:
            if mode(Path(folder, name)) != 0o600:
                found.append(f"{Path(folder, name)} {mode(Path(folder, name)):o}")
    return found


@pytest.mark.slow
async def test_what_the_server_writes_is_its_users_alone(tmp_path, serve):
    backend = FakeImageBackend(image=noise_png(200, 200))  # large enough to be kept as a file
    await serve(backend)
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)  # as an older version made it
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": str(port), "WORKERS": "2",
           "DATA_DIR": str(data), "PROXY_ACCESS_KEY": ACCESS_KEY, "BACKEND_API_URLS": backend.url,
           "POLLINATIONS_FALLBACK": "false", "ACCESS_LOG": "false", "LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "proxy", "serve", cwd=REPO, env=env,
                                                umask=0o022)
    try:
        async with aiohttp.ClientSession() as session, asyncio.timeout(60):
            while True:
                assert proc.returncode is None, "Iris exited while starting"
                try:
                    async with session.get(f"http://127.0.0.1:{port}/prompt/kept?key={ACCESS_KEY}") as resp:
                        assert resp.status == 200
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
        for _ in range(300):  # the entry is stored just after the answer (a loaded machine: up to 30 s)
            if any(data.glob("cache/**/*.val")):
                break
            await asyncio.sleep(0.1)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    assert any(data.glob("cache/**/*.val")), "the image was not kept as a file"
    assert (data / "iris.db").exists() and (data / "secrets" / "admin-token").exists()
    assert loose(data) == []


def test_a_stored_frame_is_its_users_alone(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_file(tmp_path / "frames", "alice", jpeg(), time.time())
    finally:
        os.umask(old)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700
