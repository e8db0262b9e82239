"""The admin CLI as a real subprocess (``python -m proxy ...``) on the DATA_DIR of a running server."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from proxy.keys import ACCOUNTS
from tests.support.account_helpers import cli, wait_until_blocked
from tests.support.fakes import jpeg
from tests.test_serve import free_port, wait_up


async def test_blacklist_from_the_cli_is_seen_by_a_running_server(iris, data_dir):
    client = await iris(BLACKLIST_REFRESH="0.2")
    assert (await client.get("/prompt-nobody")).status == 401
    code, out, err = await cli(data_dir, "blacklist", "add", "127.0.0.1", "--reason", "abuse")
    assert code == 0, err
    assert "127.0.0.1/32" in out
    assert await wait_until_blocked(client, True, within=2.0) < 2.0
    resp = await client.get("/prompt/a-red-cat")
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "blocked"
    code, out, _ = await cli(data_dir, "blacklist", "list")
    assert code == 0 and "127.0.0.1/32" in out and "abuse" in out
    code, _, err = await cli(data_dir, "blacklist", "remove", "127.0.0.1")
    assert code == 0, err
    assert await wait_until_blocked(client, False, within=2.0) < 2.0


async def test_blacklist_cli_refuses_what_is_not_an_address(iris, data_dir):
    await iris()
    code, _, err = await cli(data_dir, "blacklist", "add", "not-an-ip")
    assert code == 1 and "not an IP address" in err
    code, _, err = await cli(data_dir, "blacklist", "remove", "10.9.9.9")
    assert code == 1 and "not on the blacklist" in err


async def test_profiles_added_by_the_cli_log_in_on_the_running_server(iris, data_dir):
    client = await iris()
    code, out, err = await cli(data_dir, "profiles", "add", "alice")
    assert code == 0, err
    key = out.strip()
    assert len(key) >= 40 and "shown only now" in err
    resp = await client.post(f"/auth-{key}")
    assert resp.status == 200 and (await resp.json())["success"] is True
    code, out, _ = await cli(data_dir, "profiles", "add", "bob", "--key", "bob-chosen-key-01")
    assert code == 0 and out.strip() == "bob-chosen-key-01"
    assert (await client.post("/auth-bob-chosen-key-01")).status == 200
    code, _, err = await cli(data_dir, "profiles", "add", "alice")
    assert code == 1 and "already exists" in err
    code, _, err = await cli(data_dir, "profiles", "add", "carol", "--key", "short")
    assert code == 1 and "8-256" in err
    code, out, _ = await cli(data_dir, "profiles", "list")
    assert code == 0 and out.splitlines()[0].startswith("alice") and out.splitlines()[1].startswith("bob")
    assert key not in out


async def test_rotate_key_and_delete_from_the_cli(iris, data_dir):
    client = await iris()
    _, out, _ = await cli(data_dir, "profiles", "add", "alice")
    old = out.strip()
    await client.post(f"/auth-{old}")
    await client.app[ACCOUNTS].store_frame("alice", jpeg(), {})
    code, out, err = await cli(data_dir, "profiles", "rotate-key", "alice")
    assert code == 0, err
    new = out.strip()
    assert new != old
    assert (await client.get("/prompt-alice")).status == 401, "the old session ended"
    assert (await client.post(f"/auth-{old}")).status == 401
    assert (await client.post(f"/auth-{new}")).status == 200
    assert (data_dir / "frames" / "alice").is_dir()
    code, _, err = await cli(data_dir, "profiles", "delete", "alice")
    assert code == 0, err
    assert not (data_dir / "frames" / "alice").exists()
    assert (await client.post(f"/auth-{new}")).status == 401
    code, _, err = await cli(data_dir, "profiles", "delete", "alice")
    assert code == 1 and "no profile" in err


async def test_prompt_and_activity_from_the_cli(iris, data_dir):
    client = await iris(VISION_DEFAULT_PROMPT="Default words.")
    _, out, _ = await cli(data_dir, "profiles", "add", "alice", **{"VISION_DEFAULT_PROMPT": "Default words."})
    key = out.strip()
    code, out, _ = await cli(data_dir, "prompt", "alice", "Read", "the", "sign")
    assert code == 0 and "custom" in out and "Read the sign" in out
    resp = await client.get("/prompt-alice", headers={"Authorization": f"Bearer {key}"})
    assert (await resp.json())["prompt"] == "Read the sign"
    code, out, _ = await cli(data_dir, "prompt", "alice", "--default", VISION_DEFAULT_PROMPT="Default words.")
    assert code == 0 and "default prompt): Default words." in out
    await client.post(f"/auth-{key}")
    await client.app[ACCOUNTS].record_activity("alice", "frame", provider="gemini", ms=42)
    code, out, _ = await cli(data_dir, "activity", "alice")
    assert code == 0
    assert "auth" in out and "frame" in out and "ms=42" in out
    assert [line.split() for line in out.splitlines() if line.strip().startswith("gemini")] == [["gemini", "1"]]
    code, _, err = await cli(data_dir, "activity", "nobody")
    assert code == 1 and "no profile" in err


async def test_the_iris_proxy_script_is_the_same_cli(iris, data_dir):
    await iris()
    script = Path(sys.executable).parent / "iris-proxy"
    proc = await asyncio.create_subprocess_exec(
        str(script), "profiles", "list", env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(data_dir)},
        cwd=data_dir.parent, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "no profiles"
    assert f"DATA_DIR is {data_dir}" in err.decode()


async def test_admin_commands_where_no_server_kept_data_say_so_and_create_nothing(tmp_path: Path):
    empty = tmp_path / "elsewhere"
    for args in (("profiles", "add", "alice"), ("profiles", "list"), ("blacklist", "list"),
                 ("activity", "alice"), ("prompt", "alice")):
        code, out, err = await cli(empty, *args)
        assert code == 1 and out == "" and "no Iris data here" in err and str(empty) in err, args
    assert not empty.exists()  # no database, no secrets directory


async def test_a_missing_master_secret_is_not_made_up_by_an_admin_command(iris, data_dir):
    await iris()
    (data_dir / "secrets" / "master-key").unlink()
    code, _, err = await cli(data_dir, "profiles", "list")
    assert code == 2 and "master-key does not exist" in err
    assert not (data_dir / "secrets" / "master-key").exists()


async def test_every_start_says_which_key_files_it_uses(data_dir):
    first = await serve_once(data_dir)
    second = await serve_once(data_dir)
    assert first.count("generated now") == 3 and "access key in" in first and "admin token in" in first
    assert "signing key in" in first
    assert second.count("kept from an earlier start") == 3 and "cat " in second
    for name in ("access-key", "admin-token", "signing-key"):
        assert (data_dir / "secrets" / name).read_text().strip() not in first + second


async def serve_once(data_dir: Path) -> str:
    """Starts ``python -m proxy serve`` on a free port, waits until it answers, stops it: its stderr."""
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATA_DIR": str(data_dir), "PORT": str(port),
           "WORKERS": "1", "POLLINATIONS_URL": "http://127.0.0.1:9"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "proxy", "serve", cwd=data_dir.parent,
                                                env=env, stderr=asyncio.subprocess.PIPE)
    try:
        await wait_up(f"http://127.0.0.1:{port}/healthz", proc)
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    return err.decode()


async def test_worker_processes_share_sessions_and_limits(data_dir):
    """Two workers behind one port: a login on one is a session on both, and guesses spread over
    both still hit one bucket (fresh connections, so the kernel picks a worker each time)."""
    import aiohttp

    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": str(port), "WORKERS": "2",
           "DATA_DIR": str(data_dir), "POLLINATIONS_URL": "http://127.0.0.1:9", "LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", cwd=data_dir.parent, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_up(f"{base}/status", proc)
        _, out, _ = await cli(data_dir, "profiles", "add", "alice")  # on the running server's data
        key = out.strip()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
            async with session.post(f"{base}/auth-{key}") as resp:
                assert resp.status == 200
            statuses = []
            for _ in range(30):
                async with session.get(f"{base}/prompt-alice") as resp:
                    statuses.append(resp.status)
            assert statuses == [200] * 30
            guesses = []
            for guess in range(8):
                async with session.post(f"{base}/auth-wrong-guess-{guess:03d}") as resp:
                    guesses.append(resp.status)
            assert guesses == [401] * 4 + [429] * 4, "one login already took a token: 4 guesses left"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
