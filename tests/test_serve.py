"""`python -m proxy` with no configuration at all, as a new user would first run it."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import sys
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_up(url: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            if proc.returncode is not None:
                raise AssertionError("the server exited during start-up")
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
        raise AssertionError("the server did not come up")


async def test_zero_configuration_start(tmp_path: Path):
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": str(port), "WORKERS": "1",
           "POLLINATIONS_URL": "http://127.0.0.1:9"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await wait_up(f"http://127.0.0.1:{port}/status", proc)
        secrets_dir = tmp_path / "data" / "secrets"
        for name in ("access-key", "admin-token"):
            path = secrets_dir / name
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert len(path.read_text().strip()) >= 40
        key = (secrets_dir / "access-key").read_text().strip()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/prompt/x") as resp:
                assert resp.status == 401
            async with session.get(f"http://127.0.0.1:{port}/prompt/x?key={key}") as resp:
                assert resp.status == 502  # the Pollinations stand-in is unreachable here
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    text = err.decode()
    assert "cat data/secrets/access-key" in text and "cat data/secrets/admin-token" in text
    assert "Pollinations" in text
    assert key not in text  # the key itself is never printed or logged
    assert proc.returncode in (0, -15)


async def test_second_start_reuses_the_secrets(tmp_path: Path):
    from proxy.config import load_settings
    from proxy.security.auth import resolve_secrets

    server = load_settings({"DATA_DIR": str(tmp_path)}).server
    first = resolve_secrets(server)
    second = resolve_secrets(server)
    assert first.access_key == second.access_key and first.admin_token == second.admin_token
    assert first.generated and not second.generated
    assert first.access_key != first.admin_token
