"""Starting and stopping ``python -m proxy serve`` when something is wrong: the port is taken (by
another program or another Iris), HOST is not this machine's, the cache database is damaged, or a
worker keeps dying while it starts. Iris must stop at once with one clear line and status 1, or
repair what is disposable and start; never crash-loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from bench.harness import Iris, free_port
from tests.support.fakes import FakeImageBackend

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def iris_env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": str(port), "HOST": "127.0.0.1",
            "DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "INFO", "ACCESS_LOG": "false",
            "POLLINATIONS_URL": "http://127.0.0.1:9", "PROXY_ACCESS_KEY": "k" * 32, "ADMIN_TOKEN": "t" * 32,
            **extra}


def run_iris(env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Runs Iris to its end; a run still going after ``timeout`` s fails the test (and is killed,
    workers included: it runs in a session of its own)."""
    proc = subprocess.Popen([sys.executable, "-m", "proxy", "serve"], env=env, cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        raise AssertionError(f"Iris was still running after {timeout} s:\n{err[-3000:]}") from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # workers a supervisor left behind
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " ERROR " in line]


def listener(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_stops_iris_at_once_with_one_line(tmp_path, workers):
    port = free_port()
    with listener(port):
        done = run_iris(iris_env(tmp_path, port, WORKERS=workers), timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "listening" not in done.stderr  # it never was
    [line] = error_lines(done.stderr)
    assert f"port {port}" in line and "PORT" in line and "Fix:" in line


def test_a_host_that_is_not_this_machines_stops_iris_at_once(tmp_path):
    done = run_iris(iris_env(tmp_path, free_port(), WORKERS="2", HOST="203.0.113.7"), timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = error_lines(done.stderr)
    assert "HOST" in line and "203.0.113.7" in line and "Fix:" in line


async def test_a_second_iris_on_the_same_port_does_not_join_the_first(tmp_path, serve):
    backend = FakeImageBackend()
    await serve(backend)
    first = Iris(backend.url, 2, tmp_path / "first")
    try:
        await first.start()
        env = iris_env(tmp_path / "second", first.port, WORKERS="2", BACKEND_API_URLS=backend.url)
        done = await asyncio.to_thread(run_iris, env, 60)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        [line] = error_lines(done.stderr)
        assert "another Iris" in line and str(first.port) in line
        assert first.proc is not None and first.proc.poll() is None  # the first one serves on
    finally:
        await asyncio.to_thread(first.stop)


async def damage_the_cache(data_dir: Path) -> Path:
    from proxy.cache.stores.disk import DiskStore

    cache_dir = data_dir / "cache"
    store = DiskStore(cache_dir, 10**9)
    await store.close()
    db = cache_dir / "cache.db"
    db.write_bytes(os.urandom(4096) + db.read_bytes()[4096:])  # the header and first page: no database
    return cache_dir


async def test_a_damaged_cache_database_is_moved_aside_and_iris_starts_empty(tmp_path, serve):
    backend = FakeImageBackend()
    await serve(backend)
    iris = Iris(backend.url, 2, tmp_path, LOG_LEVEL="WARNING")
    cache_dir = await damage_the_cache(Path(iris.env["DATA_DIR"]))
    damaged = (cache_dir / "cache.db").read_bytes()
    try:
        await iris.start()  # fails the test if Iris never answers
        async with asyncio.timeout(10), aiohttp.ClientSession() as session, \
                session.get(iris.image_url("after%20repair", width=64, height=64)) as resp:
            assert resp.status == 200
    finally:
        await asyncio.to_thread(iris.stop)
    [aside] = list(cache_dir.parent.glob("cache.damaged-*"))
    assert (aside / "cache.db").read_bytes() == damaged  # kept for inspection, as it was
    assert (cache_dir / "cache.db").read_bytes()[:16] == b"SQLite format 3\0"


async def test_a_damaged_cache_is_repaired_once_by_the_store_that_finds_it(tmp_path, caplog):
    from proxy.cache.stores.disk import DiskStore

    cache_dir = await damage_the_cache(tmp_path)
    store = DiskStore(cache_dir, 10**9)
    try:
        assert store.repaired is not None and store.repaired.name.startswith("cache.damaged-")
        await store.set("k", b"v")
        assert await store.get("k") == b"v"
    finally:
        await store.close()
    assert "damaged" in caplog.text and str(store.repaired) in caplog.text
    again = DiskStore(cache_dir, 10**9)  # the new one is sound: nothing more is moved
    assert again.repaired is None
    await again.close()


def test_a_damaged_profile_database_stops_iris_with_the_fix(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "iris.db").write_bytes(os.urandom(8192))
    done = run_iris(iris_env(tmp_path, free_port(), WORKERS="2"), timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert any("PROFILE_DB" in line and "damaged" in line for line in error_lines(done.stderr))


def test_a_cache_dir_that_is_a_file_stops_iris_with_the_fix(tmp_path):
    not_a_directory = tmp_path / "cache-file"
    not_a_directory.write_text("not a directory")
    done = run_iris(iris_env(tmp_path, free_port(), WORKERS="2", CACHE_DIR=str(not_a_directory)), timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = error_lines(done.stderr)
    assert "CACHE_DIR" in line and "Fix:" in line


def test_a_worker_that_keeps_dying_at_start_up_makes_the_supervisor_give_up(tmp_path):
    """A database path that is a folder: SQLite cannot open it, an error no setting check foresaw."""
    folder = tmp_path / "db-folder"
    folder.mkdir()
    done = run_iris(iris_env(tmp_path, free_port(), WORKERS="2", PROFILE_DB=str(folder)), timeout=120)
    assert done.returncode == 1
    assert "giving up" in done.stderr
    assert "restarting it in 1.0 s" in done.stderr and "restarting it in 4.0 s" in done.stderr  # backing off
    assert done.stderr.count("Traceback") <= 2 * 5  # at most five tries a worker
    assert "listening" not in done.stderr
