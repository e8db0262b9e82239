"""What the benchmarks share: free ports, Iris as a real ``python -m proxy serve`` subprocess,
nginx from a generated config, and wrk with its output parsed. Nothing is installed here."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import timeit
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ACCESS_KEY = "bench-access-key-0123456789"
ADMIN_TOKEN = "bench-admin-token-0123456789"
REPO = Path(__file__).resolve().parents[1]
STARTUP = 30.0  # seconds a server may take to answer
INSTALL_HINT = "install them with: apt-get update && apt-get install -y nginx-light wrk"


def require_tools(*names: str) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        raise SystemExit(f"bench: {', '.join(missing)} not found on PATH; {INSTALL_HINT}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def interpreter() -> str:
    """Which Python runs Iris (the benches start it with their own interpreter), and how fast it
    runs bytecode: a CPython built with profile-guided optimisation (Debian's python3, the
    python:3.11-slim image the Dockerfile uses) runs Iris's hot path about twice as fast as a
    plain source build (pyenv's default). The loop's time is printed for comparing interpreters
    on one machine, never as a result."""
    loop = min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6
    return f"{sys.executable} (Python {platform.python_version()}, sum(range(1000)) in {loop:.1f} us)"


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


async def wait_http(url: str) -> None:
    """Until ``url`` answers (callers bound the wait with ``asyncio.timeout``)."""
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


def stop_process(proc: subprocess.Popen[bytes] | None, sig: signal.Signals) -> None:
    """Ask ``proc`` to stop with ``sig``; kill it if it is still there after 15 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Iris:
    """``python -m proxy serve`` on a free port over a temp DATA_DIR, access log off unless
    ``ACCESS_LOG`` is given; what it logs goes to ``iris.log`` in the work dir (as to a journal)."""

    def __init__(self, backend_url: str, workers: int, workdir: Path, *, tree: Path = REPO, **env: str):
        self.tree = tree  # the checkout whose ``proxy`` runs (another one: to compare versions)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PORT": str(self.port), "HOST": "127.0.0.1", "WORKERS": str(workers),
                    "DATA_DIR": str(workdir / "iris"), "PROXY_ACCESS_KEY": ACCESS_KEY,
                    "ADMIN_TOKEN": ADMIN_TOKEN, "ACCESS_LOG": "false", "LOG_LEVEL": "WARNING",
                    "BACKEND_API_URLS": backend_url, "POLLINATIONS_FALLBACK": "false",
                    "POLLINATIONS_URL": "http://127.0.0.1:9",
                    # counted and checked like any miss, never refused: --samples may exceed the default
                    "RATE_LIMIT_GENERATE": "1000000/minute", **env}
        self.log = workdir / "iris.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def image_url(self, prompt: str, **query: str | int) -> str:
        params = "".join(f"&{k}={v}" for k, v in query.items())
        return f"{self.url}/prompt/{prompt}?key={ACCESS_KEY}{params}"

    def launch(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "proxy", "serve"], env=self.env,
                                         cwd=self.tree, stderr=log)

    async def start(self) -> None:
        self.launch()
        async with asyncio.timeout(STARTUP):
            await wait_http(f"{self.url}/status")
            await wait_listeners(self.port, int(self.env["WORKERS"]))

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM)


NGINX_CONF = """\
worker_processes auto;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
{user}
events {{ worker_connections 4096; }}
http {{
    access_log {access_log};
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    client_body_temp_path {dir}/tmp_body;
    proxy_temp_path {dir}/tmp_proxy;
    fastcgi_temp_path {dir}/tmp_fastcgi;
    uwsgi_temp_path {dir}/tmp_uwsgi;
    scgi_temp_path {dir}/tmp_scgi;
    {upstream}
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {dir}/www;
        location / {{ {location} }}
    }}
}}
"""
SERVE_FILES = "default_type image/png; etag on;"
# a reverse proxy as operators run one: HTTP/1.1 to the upstream, its connections kept alive
PROXY_UPSTREAM = "upstream backend {{ server {host_port}; keepalive 32; }}"
PROXY_PASS = 'proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";'



class Nginx:
    """nginx serving files from a temp dir: one worker per core, sendfile, and an access log
    (combined format, buffered by 64 KB as operators run it) unless ``access_log`` is false.
    ``proxy_to`` (``host:port``): a reverse proxy to that server instead of the files."""

    def __init__(self, workdir: Path, *, access_log: bool = False, proxy_to: str | None = None):
        self.proxy_to = proxy_to
        self.dir = workdir / "nginx"
        self.access_log = f"{self.dir}/access.log combined buffer=64k flush=1s" if access_log else "off"
        (self.dir / "www").mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def add_file(self, name: str, data: bytes) -> str:
        path = self.dir / "www" / name
        path.write_bytes(data)
        path.chmod(0o644)
        return f"{self.url}/{name}"

    async def start(self) -> None:
        user = "user root;" if os.geteuid() == 0 else ""
        conf = self.dir / "nginx.conf"
        proxying = self.proxy_to is not None
        conf.write_text(NGINX_CONF.format(
            dir=self.dir, port=self.port, user=user, access_log=self.access_log,
            upstream=PROXY_UPSTREAM.format(host_port=self.proxy_to) if proxying else "",
            location=PROXY_PASS if proxying else SERVE_FILES))
        self.launch(conf)
        async with asyncio.timeout(STARTUP):
            await wait_http(f"{self.url}/")

    def launch(self, conf: Path) -> None:
        self.proc = subprocess.Popen(["nginx", "-p", str(self.dir), "-c", str(conf)])

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGQUIT)  # nginx's graceful stop


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    latency_p50_ms: float
    bad: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


async def wrk(url: str, *, connections: int = 50, seconds: float = 5.0, threads: int = 2,
              headers: dict[str, str] | None = None) -> WrkResult:
    sent = [arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")]
    proc = await asyncio.create_subprocess_exec(
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", *sent, url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out = (await proc.communicate())[0].decode()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    if rps is None or p50 is None:
        raise SystemExit(f"bench: could not read wrk's output:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    count = int(bad.group(1)) if bad else 0
    count += sum(int(n) for n in errors.groups()) if errors else 0
    return WrkResult(float(rps.group(1)), float(p50.group(1)) * _UNITS[p50.group(2)], count)


def wrk_options(doc: str | None, rounds: str) -> argparse.ArgumentParser:
    """The options of a wrk benchmark: --seconds, --rounds (``rounds`` says what alternates),
    --connections and --workers."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help=rounds)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=cpu_count(), help="Iris WORKERS")
    return parser


def workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="iris-bench-")


def median(values: list[float]) -> float:
    return statistics.median(values)


def child_pids(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def tcp_sockets(port: int, state: str) -> list[str]:
    """Inodes of the IPv4 sockets bound locally to ``port`` in ``state`` (01 established, 0A listen)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
            found.append(fields[9])
    return found


async def wait_listeners(port: int, count: int) -> None:
    """Until ``count`` sockets listen on ``port`` (one per worker with SO_REUSEPORT)."""
    while True:
        if len(tcp_sockets(port, "0A")) >= count:
            return
        await asyncio.sleep(0.05)


def connections_by_process(server_port: int, pids: list[int]) -> dict[int, int]:
    """How many established connections to ``server_port`` each process holds (Linux /proc)."""
    inodes = set(tcp_sockets(server_port, "01"))
    counts = {}
    for pid in pids:
        held = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            held += target.startswith("socket:[") and target[8:-1] in inodes
        counts[pid] = held
    return counts


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")
