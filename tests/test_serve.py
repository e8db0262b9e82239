"""`python -m proxy` with no configuration at all, as a new user would first run it."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import sys
from pathlib import Path

import aiohttp
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_up(url: str, proc: asyncio.subprocess.Process, within: float = 60.0) -> None:
    """Until ``url`` answers 200 (a loaded machine may take many seconds to spawn the workers)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            if proc.returncode is not None:
                raise AssertionError("the server exited during start-up")
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
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
    from proxy.security.credentials import resolve_secrets

    server = load_settings({"DATA_DIR": str(tmp_path)}).server
    first = resolve_secrets(server)
    second = resolve_secrets(server)
    assert first.access_key == second.access_key and first.admin_token == second.admin_token
    assert first.generated and not second.generated
    assert first.access_key != first.admin_token


CREATE_SECRET = """
import sys, time
from pathlib import Path
from proxy.security.credentials import load_or_create
start = float(sys.argv[2])
while time.time() < start:
    pass
print(load_or_create(Path(sys.argv[1]))[0])
"""


async def test_processes_creating_one_secret_at_once_all_read_the_same_whole_secret(tmp_path: Path):
    """Workers starting together (and the CLI) must agree: none may read a half-written file."""
    import time

    for attempt in range(3):
        path = tmp_path / f"master-key-{attempt}"
        start = str(time.time() + 1.5)  # every process spins until the same instant
        procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", CREATE_SECRET, str(path), start,
                                                      stdout=asyncio.subprocess.PIPE) for _ in range(6)]
        outputs = [(await asyncio.wait_for(p.communicate(), 30))[0].decode().strip() for p in procs]
        assert len(set(outputs)) == 1 and len(outputs[0]) >= 40, outputs
        assert path.read_text().strip() == outputs[0]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [name for name in os.listdir(tmp_path) if name.startswith(".")] == []  # no leftovers


def test_an_empty_secret_file_is_refused_with_the_fix(tmp_path: Path):
    from proxy.errors import ConfigError
    from proxy.security.credentials import load_or_create

    (tmp_path / "master-key").write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        load_or_create(tmp_path / "master-key")


OPEN_STORE = """
import sys, time
from proxy.config import load_settings
from proxy.accounts.service import open_context
settings = load_settings({"DATA_DIR": sys.argv[1]})
start = float(sys.argv[2])
while time.time() < start:
    pass
ctx = open_context(settings)
print(ctx.keyring.fingerprint().hex())
ctx.conn.close()
"""


async def test_workers_opening_a_new_data_dir_at_once_agree_on_one_master_secret(tmp_path: Path):
    """A first start with several workers: none fails on a locked database or a different secret."""
    import time

    for attempt in range(2):
        data_dir = tmp_path / f"data-{attempt}"
        start = str(time.time() + 1.5)
        procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", OPEN_STORE, str(data_dir), start,
                                                      stdout=asyncio.subprocess.PIPE,
                                                      stderr=asyncio.subprocess.PIPE) for _ in range(4)]
        results = [await asyncio.wait_for(p.communicate(), 60) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err.decode()[-500:] for _, err in results]
        assert len({out for out, _ in results}) == 1
