"""Helpers for the profile, security and CLI tests: profiles made through the real store, and the
admin CLI run as a real subprocess on the same DATA_DIR."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from aiohttp.test_utils import TestClient

from proxy.accounts import profiles
from proxy.keys import ACCOUNTS, GUARD
from proxy.security.guard import Guard

ROOT = Path(__file__).resolve().parent.parent


async def add_profile(client: TestClient, name: str, key: str | None = None) -> str:
    return await client.app[ACCOUNTS].run(profiles.add, name, key)


async def cli(data_dir: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """``python -m proxy ARGS`` in a clean environment over ``data_dir``; (code, stdout, stderr)."""
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATA_DIR": str(data_dir), **env}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", *args, cwd=data_dir.parent, env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def wait_until_blocked(client: TestClient, blocked: bool, path: str = "/prompt-nobody",
                             within: float = 3.0, headers: dict[str, str] | None = None) -> float:
    """Polls ``path`` until the blacklist answer (403 blocked) is ``blocked``; returns seconds taken."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < within:
        resp = await client.get(path, headers=headers)
        body = await resp.json()
        if (resp.status == 403 and body["error"]["code"] == "blocked") == blocked:
            return loop.time() - start
        await asyncio.sleep(0.05)
    raise AssertionError(f"the server did not become {'blocked' if blocked else 'open'} in {within} s")


def guard_of(client: TestClient) -> Guard:
    return client.app[GUARD]
