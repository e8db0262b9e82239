"""The deployment files of deploy/, checked as far as a machine without a container engine or a
running systemd allows: the Dockerfile linted, the compose file parsed by Compose itself, the
systemd unit verified, the Caddyfile validated, and the nginx example run for real in front of
Iris on loopback, where Iris must see the client address nginx passes on (and nothing a client
forges). The wheel the Dockerfile installs is served from the image's environment in
tests/test_packaging.py. .ci/run installs the tools (hadolint and Compose come from PyPI)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from proxy.keys import GUARD
from tests.conftest import ADMIN_TOKEN
from tests.support.reverse_proxy import HOSTNAME, ROOT, running_nginx
from tests.support.tls_fakes import TestCA
from tests.test_serve import free_port

DEPLOY = ROOT / "deploy"
VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name, path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        reason = f"{name} is not installed (bash .ci/run installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return found


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_the_dockerfile_lints_clean():
    done = run(tool("hadolint"), "--failure-threshold", "style", str(DEPLOY / "Dockerfile"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dockerfile_installs_the_wheel_runs_unprivileged_and_checks_health():
    text = (DEPLOY / "Dockerfile").read_text()
    final = text[text.index("AS final"):]
    assert "COPY . ." not in final and "pip install --no-index" in final  # the wheel, not the tree
    assert "USER 10001" in final and "VOLUME /data" in final and "EXPOSE 8080" in final
    assert 'CMD ["iris-proxy", "health"]' in final and "DATA_DIR=/data" in final and "HOST=0.0.0.0" in final


def test_the_compose_file_is_valid_and_keeps_redis_from_evicting_any_key(tmp_path: Path):
    project = tmp_path / "deploy"
    shutil.copytree(DEPLOY, project)
    shutil.copy(DEPLOY / "iris.env.example", project / ".env")
    done = run(tool("docker-compose"), "-f", str(project / "compose.yaml"), "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    iris, redis = config["services"]["iris"], config["services"]["redis"]
    assert iris["environment"]["WORKERS"] == "2" and iris["environment"]["REDIS_URL"].startswith("redis://redis")
    assert iris["healthcheck"]["test"] == ["CMD", "iris-proxy", "health"]
    assert iris["build"]["dockerfile"] == "deploy/Dockerfile"
    command = redis["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "volatile-lru"
    assert not any("allkeys" in part for part in command)
    assert all(port["host_ip"] == "127.0.0.1" for port in iris["ports"])


def test_the_systemd_unit_verifies_clean(tmp_path: Path):
    unit = (DEPLOY / "iris-proxy.service").read_text()
    unit = unit.replace("/opt/iris-proxy/bin/iris-proxy", str(VENV_BIN / "iris-proxy"))
    (tmp_path / "iris-proxy.service").write_text(unit)
    done = run(tool("systemd-analyze"), "verify", str(tmp_path / "iris-proxy.service"))
    # verify exits 0 on unknown keys and bad values too: only silence is clean
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr
    for hardening in ("NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=iris-proxy",
                      "Restart=on-failure"):
        assert hardening in unit


def test_the_caddyfile_validates(tmp_path: Path):
    chain, key = TestCA().write_pair(tmp_path, HOSTNAME)
    text = (DEPLOY / "Caddyfile").read_text()
    text = text.replace("/etc/ssl/iris/fullchain.pem", str(chain)).replace("/etc/ssl/iris/privkey.pem", str(key))
    (tmp_path / "Caddyfile").write_text(text)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run([tool("caddy"), "validate", "--config", str(tmp_path / "Caddyfile"),
                           "--adapter", "caddyfile"], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert done.returncode == 0 and "Valid configuration" in done.stdout + done.stderr, done.stderr


def session_from(address: str, ca: TestCA) -> aiohttp.ClientSession:
    """A client whose connections come from ``address`` (another loopback address than nginx's)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0),
                                                                ssl=ca.client_context()))


async def test_behind_the_nginx_example_iris_sees_the_client_and_the_https_it_used(iris, tmp_path: Path):
    tool("nginx")
    client = await iris(TRUSTED_PROXIES="127.0.0.1")
    async with running_nginx(tmp_path / "nginx", client.port, free_port(), free_port()) as nginx:
        await client.app[GUARD].block("127.0.0.5", "test")
        async with session_from("127.0.0.5", nginx.ca) as blocked, session_from("127.0.0.6", nginx.ca) as other:
            async with blocked.get(f"{nginx.https}/status", server_hostname=HOSTNAME) as resp:
                assert resp.status == 403 and (await resp.json())["error"]["code"] == "blocked"
            async with blocked.get(f"{nginx.https}/status", server_hostname=HOSTNAME,
                                   headers={"X-Forwarded-For": "127.0.0.6"}) as resp:
                assert resp.status == 403  # a forged hop is left of nginx's: the client stays itself
            async with other.get(f"{nginx.https}/status", server_hostname=HOSTNAME) as resp:
                assert resp.status == 200
            async with other.post(f"{nginx.https}/admin/login", server_hostname=HOSTNAME,
                                  data={"token": ADMIN_TOKEN}, allow_redirects=False) as resp:
                assert resp.status == 303 and "Secure" in resp.headers["Set-Cookie"]  # X-Forwarded-Proto
            async with other.get(f"http://127.0.0.1:{nginx.http_port}/status", allow_redirects=False) as resp:
                assert resp.status == 301 and resp.headers["Location"].startswith("https://")


async def test_the_nginx_example_refuses_a_body_beyond_iris_upload_limit(iris, tmp_path: Path):
    tool("nginx")
    client = await iris(TRUSTED_PROXIES="127.0.0.1")
    async with (running_nginx(tmp_path / "nginx", client.port, free_port(), free_port()) as nginx,
                session_from("127.0.0.7", nginx.ca) as session):
        body = io.BytesIO(b"x" * (10 * 1024 * 1024 + 1))  # MAX_UPLOAD_BYTES is 10 MiB
        async with session.post(f"{nginx.https}/analyze", data=body, server_hostname=HOSTNAME) as resp:
            assert resp.status == 413

