"""Liveness and readiness for load balancers and the container health check, and
``iris-proxy health`` exiting 0 or 1 on what the server answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.keys import DATABASE
from tests.support.account_helpers import cli

pytest_plugins = ["tests.support.redis_fixtures"]


async def test_liveness_answers_without_touching_anything(iris):
    client = await iris()
    resp = await client.get("/healthz")
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "alive" and resp.headers["Cache-Control"] == "no-store"


async def test_readiness_names_each_check(iris):
    client = await iris()
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ready",
                                 "checks": {"shutdown": "ok", "cache": "ok", "database": "ok"}}


async def test_a_broken_database_makes_the_worker_not_ready(iris):
    client = await iris()
    await client.app[DATABASE].run(lambda ctx: ctx.conn.close())
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 503 and body["status"] == "not_ready"
    assert body["checks"]["cache"] == "ok" and body["checks"]["database"].startswith("failed (")


@pytest.mark.redis
async def test_redis_is_checked_when_configured_and_its_outage_is_named(instances, private_redis):
    (client,) = await instances(1, REDIS_URL=private_redis.url)
    body = await (await client.get("/readyz")).json()
    assert body["checks"] == {"shutdown": "ok", "cache": "ok", "database": "ok", "redis": "ok"}
    private_redis.stop()
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 503 and body["checks"]["redis"] != "ok" and body["checks"]["cache"] == "ok"
    assert private_redis.url not in await resp.text()


async def test_the_health_command_exits_0_for_a_ready_server_and_1_otherwise(iris, data_dir: Path):
    client = await iris()
    base = str(client.make_url("")).rstrip("/")
    code, out, err = await cli(data_dir, "health", "--url", f"{base}/readyz")
    assert (code, out) == (0, "")
    await client.app[DATABASE].run(lambda ctx: ctx.conn.close())
    code, _, err = await cli(data_dir, "health", "--url", f"{base}/readyz")
    assert code == 1 and "503" in err
    code, _, err = await cli(data_dir, "health", "--url", "http://127.0.0.1:9/readyz")
    assert code == 1 and "did not answer" in err


async def test_the_health_command_asks_this_servers_port_on_loopback_and_never_exits_2(data_dir: Path):
    code, _, err = await cli(data_dir, "health", HOST="0.0.0.0", PORT="9")
    assert code == 1 and "http://127.0.0.1:9/readyz" in err
    code, _, err = await cli(data_dir, "health", PORT="not-a-port")
    assert code == 1 and "PORT" in err


async def test_version_is_printed(data_dir: Path):
    code, out, _ = await cli(data_dir, "--version")
    assert code == 0 and out.strip() == "iris-proxy 0.1.0"
