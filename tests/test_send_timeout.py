"""SEND_TIMEOUT, as nginx's ``send_timeout``: a client that takes none of an answer's bytes for that
long is reset, however the answer leaves Iris (answered where the request was parsed, an ordinary
aiohttp answer, sendfile from the store's file); the time counts between two writes the client
takes, so a slow but steady reader gets the whole answer. The real server on 127.0.0.1 and raw
client sockets with small buffers that stop reading."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import aiohttp
import pytest

from bench.harness import Iris
from proxy.app import create_app
from proxy.config import load_settings
from proxy.keys import CONNECTION_LIMITS, IMAGE_CACHE
from proxy.web.protocol import IrisRequestHandler
from tests.conftest import ACCESS_KEY, IrisTestServer
from tests.support.fakes import FakeImageBackend, png
from tests.support.tls_fakes import TestCA
from tests.test_connections import connect, read_answer
from tests.test_fast_lane import lane_of
from tests.test_large_hits import (
    SMALL_FRONT,
    Q,
    all_closed,
    noise_png,
    slow_download,
    small_buffered,
    store_files,
    stored,
    until,
    until_stored,
)

BIG_FRONT = {"CACHE_MEMORY_ITEM_BYTES": str(16 << 20)}
# how an answer leaves Iris: settings, and more header lines for the request
WAYS = {
    "lane": (BIG_FRONT, ""),  # a memory-front hit answered where it was parsed (send_image)
    "response": (BIG_FRONT, 'If-None-Match: "other"\r\n'),  # the full route's ImageResponse
    "store": (SMALL_FRONT, ""),  # StoredImageResponse: sendfile from the store's file (send_range)
}
STALLED = 1450  # a side of noise_png: 6 MB, more than the kernel's buffers hold


async def ready(iris, serve, way: str, side: int, **env: str):
    """Iris with SEND_TIMEOUT=1 whose cache holds an image of about 3 x side² bytes, answered the
    ``way`` given; its URL, the more header lines and the backend."""
    settings, headers = WAYS[way]
    backend = FakeImageBackend(image=noise_png(side))
    await serve(backend)
    client = await iris(BACKEND_API_URLS=backend.url, SEND_TIMEOUT="1", **settings, **env)
    url = f"/prompt/{way}?{Q}"
    key = await stored(client, url)
    if way != "store":  # into the memory front
        await (await client.get(url)).read()
        await until(lambda: client.app[IMAGE_CACHE].peek(key) is not None)
    return client, url, headers, backend


def handler_of(client, transport: asyncio.BaseTransport) -> IrisRequestHandler:
    return next(h for h in client.server.runner.server.connections if h.transport is transport)


def open_connections(client) -> list[IrisRequestHandler]:
    return list(client.server.runner.server.connections)


async def rest_of(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Bytes read until the server ends the connection; whether it ended with a reset."""
    got = 0
    try:
        while chunk := await asyncio.wait_for(reader.read(1 << 20), 10):
            got += len(chunk)
    except ConnectionResetError:
        return got, True
    return got, False


@pytest.mark.parametrize("way", list(WAYS))
async def test_a_client_that_stops_reading_is_reset_after_the_send_timeout(iris, serve, way, caplog):
    caplog.set_level(logging.INFO, logger="proxy.web.protocol")
    client, url, headers, backend = await ready(iris, serve, way, STALLED)
    image = backend.image
    lane = lane_of(client)
    wired = lane.wired
    reader, writer, server_side = await slow_download(client, url, headers)
    handler = handler_of(client, server_side)
    assert lane.wired == wired + (way == "lane")  # the way meant
    if way == "store":
        assert client.app[IMAGE_CACHE].files_open == 1
    loop = asyncio.get_running_loop()
    stopped = loop.time()  # the client reads nothing more
    await until(lambda: handler not in open_connections(client), within=8)
    assert loop.time() - stopped >= 0.9  # not before SEND_TIMEOUT
    [line] = [r.getMessage() for r in caplog.records if "SEND_TIMEOUT" in r.getMessage()]
    assert re.fullmatch(r"reset the connection of 127\.0\.0\.1: it took none of its answer for 1 s "
                        r"\(SEND_TIMEOUT\); \d+ buffered bytes dropped", line), line
    assert ACCESS_KEY not in caplog.text
    got, was_reset = await rest_of(reader)
    assert was_reset and got < len(image)  # the rest was dropped, the kernel's too: a reset
    writer.close()
    await all_closed(client)  # the store's file was let go
    hit = await client.get(url)  # the worker is fine
    assert hit.status == 200 and await hit.read() == image


@pytest.mark.parametrize("way", list(WAYS))
async def test_a_slow_but_steady_reader_gets_the_whole_image(iris, serve, way, caplog):
    """64 KB every 0.3 s: 480 KB take about 2.5 s, more than twice SEND_TIMEOUT, and are never cut."""
    caplog.set_level(logging.INFO, logger="proxy.web.protocol")
    client, url, headers, backend = await ready(iris, serve, way, 400)
    image = backend.image
    reader, writer, _ = await slow_download(client, url, headers)
    loop = asyncio.get_running_loop()
    started = loop.time()
    got = b""
    while len(got) < len(image):
        got += await asyncio.wait_for(reader.readexactly(min(65536, len(image) - len(got))), 10)
        await asyncio.sleep(0.3)
    assert got == image and loop.time() - started > 2.0
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")  # still open
    status, _, _ = await read_answer(reader)
    writer.close()
    assert status == 200
    assert "SEND_TIMEOUT" not in caplog.text
    await all_closed(client)


@pytest.mark.parametrize("way", ["lane", "store"])
async def test_stalled_connections_give_their_slots_back(iris, serve, way, caplog):
    caplog.set_level(logging.INFO, logger="proxy.web.protocol")
    client, url, headers, _ = await ready(iris, serve, way, STALLED, MAX_CONNECTIONS="2")
    stalled = []
    for _ in range(2):
        reader, writer, server_side = await slow_download(client, url, headers)
        stalled.append((reader, writer, handler_of(client, server_side)))
    if way == "store":  # both busy sending: a newcomer is refused while they stall
        reader, writer = await connect(client)
        status, _, _ = await read_answer(reader)
        writer.close()
        assert status == 503
    await until(lambda: not {h for _, _, h in stalled} & set(open_connections(client)), within=8)
    assert caplog.text.count("(SEND_TIMEOUT)") == 2
    for _ in range(3):  # each new client is served
        reader, writer = await connect(client)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        status, _, _ = await read_answer(reader)
        writer.close()
        assert status == 200
    for _, writer, _ in stalled:
        writer.close()
    await all_closed(client)


async def test_no_timer_runs_while_nothing_waits(iris, serve):
    """A large answer the socket did not take whole is watched, until the client took it all;
    small hits on the kept-alive connection, answered where parsed or the ordinary way, arm none."""
    client, url, _, backend = await ready(iris, serve, "lane", 500)
    image = backend.image
    backend.images["small"] = png()
    small = url.replace("/prompt/lane", "/prompt/small")
    reader, writer, server_side = await slow_download(client, url)
    handler = handler_of(client, server_side)
    got = await asyncio.wait_for(reader.readexactly(65536), 10)
    assert handler._send_timer is not None  # bytes wait: watched
    got += await asyncio.wait_for(reader.readexactly(len(image) - len(got)), 10)
    assert got == image
    await until(lambda: handler._send_timer is None)  # all taken: the next look stops it
    lane = lane_of(client)
    await stored(client, small)
    await (await client.get(small)).read()  # into the front, remembered by the lane
    wired = lane.wired
    for path in [small] * 10 + ["/healthz"] * 10:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(re.search(rb"Content-Length: (\d+)", head)[1])
        await asyncio.wait_for(reader.readexactly(length), 5)
        assert handler._send_timer is None
    assert lane.wired == wired + 10
    writer.close()


async def test_over_tls_a_client_that_stops_reading_is_reset_too(settings_for, serve, caplog):
    """No sendfile under TLS: the store's file is copied through aiohttp's writer, whose drain waits."""
    caplog.set_level(logging.INFO, logger="proxy.web.protocol")
    backend = FakeImageBackend(image=noise_png(STALLED))
    await serve(backend)
    ca = TestCA()
    server = IrisTestServer(create_app(settings_for(BACKEND_API_URLS=backend.url, SEND_TIMEOUT="1",
                                                    **SMALL_FRONT)))
    await server.start_server(ssl=ca.server_context("iris.test"))
    tls = {"ssl": ca.client_context(), "server_hostname": "iris.test"}
    path = f"/prompt/tls?{Q}"
    cache = server.app[IMAGE_CACHE]
    try:
        async with aiohttp.ClientSession() as session, session.get(str(server.make_url(path)), **tls) as resp:
            assert resp.headers["X-Cache"] == "MISS" and await resp.read() == backend.image
            await until_stored(cache, resp.headers["ETag"].strip('"'))
        reader, writer = await small_buffered(server.host, server.port, **tls)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).startswith(b"HTTP/1.1 200")
        assert cache.files_open == 1
        await until(lambda: "(SEND_TIMEOUT)" in caplog.text, within=8)
        got, was_reset = await rest_of(reader)
        assert was_reset and got < len(backend.image)
        writer.close()
        await until(lambda: cache.files_open == 0)
    finally:
        await server.close()
    assert cache.files_opened == 1 and cache.files_dropped == 0


def test_send_timeout_defaults_to_nginx_s_and_reaches_the_connections(settings_for):
    assert load_settings({}).server.send_timeout == 60.0
    assert create_app(settings_for(SEND_TIMEOUT="2.5"))[CONNECTION_LIMITS].send_timeout == 2.5


@pytest.mark.slow
async def test_stalled_downloads_are_reset_under_uvloop_as_served(serve, tmp_path: Path):
    """``python -m proxy serve`` (uvloop): a client with a small receive buffer that stops reading,
    nothing else shrunk, is reset after SEND_TIMEOUT, from the memory front and from the store."""
    backend = FakeImageBackend()
    backend.images = {"front": noise_png(STALLED, seed=5), "store": noise_png(1750, seed=6)}  # 6 MB, 9 MB
    await serve(backend)
    iris = Iris(backend.url, 1, tmp_path, SEND_TIMEOUT="1", LOG_LEVEL="INFO",
                CACHE_MEMORY_ITEM_BYTES=str(8 << 20))
    await iris.start()
    loop = asyncio.get_running_loop()
    try:
        async with aiohttp.ClientSession() as session:
            for name in ("front", "store"):
                url = iris.image_url(name, width=64, height=64)
                for _ in range(250):  # made, stored, then in the memory front (or not, too large)
                    async with session.get(url) as resp:
                        assert await resp.read() == backend.images[name]
                        if resp.headers["X-Cache"] == "HIT":
                            break
                    await asyncio.sleep(0.02)
                reader, writer = await small_buffered("127.0.0.1", iris.port)
                writer.write(f"GET {url.removeprefix(iris.url)} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
                assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).startswith(b"HTTP/1.1 200")
                if name == "store":
                    assert (await store_files(session, iris))["open"] == 1  # sending
                stopped = loop.time()
                for _ in range(400):
                    if iris.log.read_text().count("(SEND_TIMEOUT)") == ("front", "store").index(name) + 1:
                        break
                    await asyncio.sleep(0.02)
                assert 0.9 <= loop.time() - stopped < 8, iris.log.read_text()
                got, was_reset = await rest_of(reader)
                assert was_reset and got < len(backend.images[name])
                writer.close()
            files = await store_files(session, iris)
            assert files["opened"] >= 2 and files["open"] == files["dropped"] == 0
    finally:
        await asyncio.to_thread(iris.stop)
