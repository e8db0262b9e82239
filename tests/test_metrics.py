"""GET /metrics (Prometheus) and the request-id logs, in one process and across workers."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import aiohttp
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from proxy.logs import REQUEST_ID, AccessLog, AccessLogger, JsonFormatter, RequestIdFilter
from proxy.web.metrics import BUCKETS, Metrics
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.test_serve import free_port, wait_up

ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "pid"))
            found[(s.name, labels)] = found.get((s.name, labels), 0.0) + s.value
    return found


def total(found: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= set(ls))


async def scrape(client) -> dict:
    resp = await client.get("/metrics", headers=ADMIN)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    return samples(await resp.text())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(BUCKETS), st.floats(0, 200, allow_nan=False)), max_size=40))
def test_batched_latencies_expose_what_observing_each_one_would(durations):
    """The hot path counts latencies locally; a flush must leave the same histogram as observe()."""
    metrics = Metrics()
    for seconds in durations:
        metrics.request("prompt_image", "GET", 200, seconds)
    metrics.flush()
    metrics.request("prompt_image", "GET", 200, 0.003)  # after a flush: counted again from zero
    metrics.flush()
    reference = CollectorRegistry()
    direct = Histogram("iris_http_request_duration_seconds", "Time to answer, by route", ["route"],
                       buckets=BUCKETS, registry=reference)
    for seconds in [*durations, 0.003]:
        direct.labels("prompt_image").observe(seconds)
    ours = samples(generate_latest(metrics.registry).decode())
    theirs = samples(generate_latest(reference).decode())
    ours = {k: v for k, v in ours.items() if k[0].startswith("iris_http_request_duration")}
    assert {k for k in ours if not k[0].endswith("_created")} == {k for k in theirs if not k[0].endswith("_created")}
    assert {k: v for k, v in ours.items() if not k[0].endswith("_created")} == pytest.approx(
        {k: v for k, v in theirs.items() if not k[0].endswith("_created")})


async def test_metrics_need_the_admin_token_unless_public(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    resp = await client.get("/metrics")
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "admin_required"
    public = await iris(BACKEND_API_URLS=backend.url, METRICS_PUBLIC="true")
    assert (await public.get("/metrics")).status == 200


async def test_requests_latency_and_cache_results(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    for _ in range(3):
        assert (await client.get(f"/prompt/cat?key={ACCESS_KEY}")).status == 200
    assert (await client.get("/prompt/cat?key=wrong")).status == 401
    found = await scrape(client)
    assert total(found, "iris_http_requests_total", route="prompt_image", status="200") == 3
    assert total(found, "iris_http_requests_total", route="prompt_image", status="401") == 1
    assert total(found, "iris_http_request_duration_seconds_count", route="prompt_image") == 4
    assert total(found, "iris_cache_lookups_total", result="miss") == 1
    assert total(found, "iris_cache_lookups_total", result="hit") == 2
    assert total(found, "iris_dedup_saved_generations_total") == 2
    assert total(found, "iris_cache_hit_ratio") > 0
    assert total(found, "iris_cache_bytes") >= len(backend.image)


async def test_backend_calls_failures_cooldowns_and_coalescing(iris, backend, serve):
    from tests.support.fakes import FakeImageBackend

    broken = FakeImageBackend(mode="error500")
    await serve(broken)
    backend.delay = 0.3
    client = await iris(BACKEND_API_URLS=f"{broken.url},{backend.url}",
                        BACKEND_WEIGHTS=f'{{"{broken.url}": 1000000, "{backend.url}": 1}}',
                        BREAKER_THRESHOLD="1")
    answers = await asyncio.gather(*(client.get(f"/prompt/dog?key={ACCESS_KEY}") for _ in range(5)))
    assert [a.status for a in answers] == [200] * 5
    found: dict = {}
    for _ in range(40):  # breaker counts are copied into the metrics once a second
        found = await scrape(client)
        if total(found, "iris_backend_calls_total", outcome="ok") >= 1:
            break
        await asyncio.sleep(0.1)
    assert total(found, "iris_backend_calls_total", outcome="failure") == 1
    assert total(found, "iris_backend_calls_total", outcome="ok") == 1
    assert total(found, "iris_backend_cooldowns_total") == 1
    assert total(found, "iris_backend_cooling_down", backend=broken.url) == 1
    assert total(found, "iris_coalesced_requests_total") == 4
    assert total(found, "iris_dedup_saved_generations_total") == 4
    text = await (await client.get("/metrics", headers=ADMIN)).text()
    assert ACCESS_KEY not in text and ADMIN_TOKEN not in text


def test_json_log_lines_carry_the_request_id():
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        token = REQUEST_ID.set("req-42")
        logger.warning("inside a request")
        REQUEST_ID.reset(token)
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = (orjson.loads(line) for line in records)
    assert inside["request_id"] == "req-42" and inside["message"] == "inside a request"
    assert outside["request_id"] == "-"


async def test_access_log_line_has_the_response_request_id(aiohttp_client, settings_for):
    from aiohttp.test_utils import TestServer

    from proxy.app import create_app

    written: list[str] = []
    access = AccessLog("json", written.append)
    server = TestServer(create_app(settings_for()))
    await server.start_server(access_log_class=AccessLogger, access_log=access)
    client = await aiohttp_client(server)
    resp = await client.get(f"/prompt/x?key={ACCESS_KEY}&seed=abc")
    await asyncio.sleep(0.3)  # written within ``every`` (0.1 s) of the request's end
    rid = resp.headers["X-Request-Id"]
    line = orjson.loads("".join(written).splitlines()[-1])
    assert line["request_id"] == rid and line["status"] == 400 and line["logger"] == "proxy.access"
    assert ACCESS_KEY not in line["message"] and "key=***" in line["message"] and "key=***" in line["path"]


async def test_workers_share_their_metrics_and_log_json(tmp_path: Path):
    """Two worker processes: /metrics, answered by either, counts every worker's requests."""
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": str(port), "WORKERS": "2",
           "DATA_DIR": str(tmp_path / "data"), "ADMIN_TOKEN": ADMIN_TOKEN, "PROXY_ACCESS_KEY": ACCESS_KEY,
           "POLLINATIONS_URL": "http://127.0.0.1:9", "LOG_FORMAT": "json"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    ids: list[str] = []
    assert proc.stderr is not None
    stderr = asyncio.create_task(proc.stderr.read())  # read all along: a full pipe would stall the server
    try:
        await wait_up(f"{base}/status", proc)  # one counted request
        connector = aiohttp.TCPConnector(force_close=True)  # a new connection, so a fresh worker pick
        async with aiohttp.ClientSession(connector=connector) as session:
            workers: set[str] = set()  # a request id starts with its worker's random prefix
            deadline = asyncio.get_running_loop().time() + 60  # a loaded machine starts workers slowly
            while asyncio.get_running_loop().time() < deadline:
                async with session.get(f"{base}/status") as resp:
                    ids.append(resp.headers["X-Request-Id"])
                    workers.add(ids[-1][:8])
                if len(workers) == 2 and len(ids) >= 40:
                    break
                if len(workers) < 2:
                    await asyncio.sleep(0.05)  # the second worker may still be starting
            assert len(workers) == 2, "both workers should answer"
            expected = 1 + len(ids)
            for _ in range(150):  # other workers hand their counts over once a second
                async with session.get(f"{base}/metrics", headers=ADMIN) as resp:
                    found = samples(await resp.text())
                if total(found, "iris_http_requests_total", route="status", status="200") >= expected:
                    break
                await asyncio.sleep(0.1)
        pids = {p.stem.rsplit("_", 1)[-1] for p in (tmp_path / "data" / "metrics").glob("*.db")}
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
        err = await asyncio.wait_for(stderr, 5)
    assert "Traceback" not in err.decode(), err.decode()[-3000:]
    assert len(pids) >= 2
    assert total(found, "iris_http_requests_total", route="status", status="200") == expected
    lines = [orjson.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    logged = {line["request_id"] for line in lines if line.get("path") == "/status"}
    assert set(ids) <= logged


async def test_vision_provider_calls_are_counted(iris, serve):
    from tests.support.vision_fakes import scene
    from tests.support.vision_rig import SERVER_KEYS, rig_starter

    rig = await rig_starter(iris, serve)()
    await rig.auth()
    resp = await rig.frame(scene(seed=3))
    assert resp.status == 200
    calls = rig.provider_calls
    assert calls >= 1
    found: dict = {}
    for _ in range(40):
        found = await scrape(rig.client)
        urls = [f.url for f in rig.fakes.values()]
        counted = sum(total(found, "iris_backend_calls_total", backend=url) for url in urls)
        if counted >= calls:
            break
        await asyncio.sleep(0.1)
    assert counted == calls
    text = await (await rig.client.get("/metrics", headers=ADMIN)).text()
    assert not any(key in text for key in SERVER_KEYS.values())
