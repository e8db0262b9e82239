"""The reverse-proxy example of ``deploy/nginx.conf``, run for real on loopback in front of Iris.

The example is used as written but for what only a real host has: its ports (the upstream
``127.0.0.1:8080`` becomes the test server's, ``listen 80``/``443`` free loopback ports), its
certificate paths (a certificate of the tests' own CA) and the IPv6 listens. nginx runs in the
foreground (``daemon off``) as a child of the test, everything under a temp prefix. As root, its
workers run as root too: nginx's default ``nobody`` cannot reach pytest's 0700 temp directory."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.tls_fakes import TestCA

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HOSTNAME = "iris.example.com"

WRAPPER = """\
daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
{user}
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {prefix}/iris.conf;
}}
"""


@dataclass
class RunningNginx:
    http_port: int
    https_port: int
    ca: TestCA

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"


def example_for(upstream_port: int, http_port: int, https_port: int, chain: Path, key: Path) -> str:
    text = EXAMPLE.read_text()
    replacements = [
        (r"server 127\.0\.0\.1:8080;", f"server 127.0.0.1:{upstream_port};"),
        (r"listen \[::\]:\d+[^;]*;\n", ""),
        (r"listen 80;", f"listen 127.0.0.1:{http_port};"),
        (r"listen 443 ", f"listen 127.0.0.1:{https_port} "),
        (r"/etc/ssl/iris/fullchain\.pem", str(chain)),
        (r"/etc/ssl/iris/privkey\.pem", str(key)),
    ]
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text)
        assert count, f"deploy/nginx.conf no longer has {pattern!r}: update this fixture with it"
    return text


@asynccontextmanager
async def running_nginx(prefix: Path, upstream_port: int, http_port: int,
                        https_port: int) -> AsyncIterator[RunningNginx]:
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    ca = TestCA()
    chain, key = ca.write_pair(prefix, HOSTNAME)
    (prefix / "iris.conf").write_text(example_for(upstream_port, http_port, https_port, chain, key))
    user = "user root root;" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(WRAPPER.format(prefix=prefix, user=user))
    proc = await asyncio.create_subprocess_exec(NGINX, "-p", str(prefix), "-e", str(prefix / "error.log"),
                                                "-c", str(prefix / "nginx.conf"),
                                                stderr=asyncio.subprocess.PIPE)
    try:
        await _listening(https_port, proc, prefix)
        yield RunningNginx(http_port, https_port, ca)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight, then exit
            await asyncio.wait_for(proc.wait(), 10)


async def _listening(port: int, proc: asyncio.subprocess.Process, prefix: Path) -> None:
    for _ in range(200):
        if proc.returncode is not None:
            log = (prefix / "error.log").read_text() if (prefix / "error.log").exists() else ""
            raise AssertionError(f"nginx exited: {log[-2000:]}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError("nginx did not listen")
