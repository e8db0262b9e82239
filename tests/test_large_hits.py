"""Hits of images too large for the memory front (CACHE_MEMORY_ITEM_BYTES): the entry is read from
its header alone and the body sent with sendfile from diskcache's own file of the value, which
stays open until the answer is sent. Every answer is the one the full route always gave (HEAD,
304, signed URLs, variants, the safety check, image hosting); a delete or a new image meanwhile
takes nothing from a download under way, and no file is left open whatever the client does.
The Redis store keeps no files: its hits are read whole as before."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import random
import re
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvloop
from PIL import Image

from bench.harness import ADMIN_TOKEN as BENCH_ADMIN_TOKEN
from bench.harness import Iris
from proxy.app import create_app
from proxy.cache.bodyfile import StoredBody
from proxy.cache.entry import image_entry
from proxy.cache.held import HeldFiles
from proxy.cache.images import ImageCache
from proxy.cache.stores.base import ValueFile
from proxy.keys import FLIGHT, IMAGE_CACHE, SETTINGS
from proxy.logs import AccessLog, AccessLogger
from proxy.security.signing import Signer
from proxy.web.sendfile import send_range
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN, IrisTestServer
from tests.support.fakes import FakeImageBackend
from tests.support.hosting_fakes import FakeSmms
from tests.support.tls_fakes import TestCA
from tests.test_hosting import hosting_env
from tests.test_metrics import scrape, total

pytest_plugins = ["tests.support.redis_fixtures"]

Q = f"key={ACCESS_KEY}&width=64&height=64"
ADMIN = {"X-Admin-Token": ADMIN_TOKEN}
SMALL_FRONT = {"CACHE_MEMORY_ITEM_BYTES": "100000"}  # the images below are 300-600 KB


def noise_png(side: int = 400, seed: int = 3) -> bytes:
    """An incompressible PNG of about 3 x side² bytes (480 KB at 400)."""
    img = Image.frombytes("RGB", (side, side), random.Random(seed).randbytes(side * side * 3))
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=0)
    return out.getvalue()


def blue_png(side: int = 400) -> bytes:
    """A large plain blue PNG (stored uncompressed): the safety check scores it 0.0004."""
    out = io.BytesIO()
    Image.new("RGB", (side, side), (10, 120, 200)).save(out, "PNG", compress_level=0)
    return out.getvalue()


async def until(check: Callable[[], bool], within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, "not within the time allowed"
        await asyncio.sleep(0.02)


def value_files(directory: Path, cache: ImageCache) -> list[str]:
    """Where this process's open descriptors of the store's value files point, but those ``cache``
    holds open between hits (``proxy.cache.held``)."""
    found, held = [], {str(item.value.fileno()) for item in cache.held.items.values()}
    for fd in set(os.listdir("/proc/self/fd")) - held:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target.startswith(str(directory)) and ".val" in target:
            found.append(target)
    return found


async def all_closed(client) -> None:
    """Every stored file let go, each when its answer ended (none left to the garbage collector)."""
    cache = client.app[IMAGE_CACHE]
    await until(lambda: cache.files_open == 0)
    assert cache.files_dropped == 0
    assert value_files(client.app[SETTINGS].cache.directory, cache) == []


async def stored(client, url: str) -> str:
    """The image made (a miss) and in the store; its cache key."""
    first = await client.get(url)
    assert first.status == 200 and first.headers["X-Cache"] == "MISS"
    await first.read()
    key = first.headers["ETag"].strip('"')
    await until_stored(client.app[IMAGE_CACHE], key)
    return key


async def until_stored(cache, key: str) -> None:
    for _ in range(250):  # the answer goes out before the entry is written
        if await cache.store.get(f"img:{key}") is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the image never reached the store")


async def large(iris, serve, image: bytes | None = None, **env: str):
    backend = FakeImageBackend(image=image or noise_png())
    await serve(backend)
    client = await iris(BACKEND_API_URLS=backend.url, **SMALL_FRONT, **env)
    return client, backend


async def small_buffered(host: str, port: int, **tls: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection whose receive buffer is small: what the client does not read soon fills it.
    ``tls``: ``ssl`` and ``server_hostname``, as ``asyncio.open_connection`` takes them."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    return await asyncio.open_connection(sock=sock, limit=16384, **tls)


async def store_files(session: aiohttp.ClientSession, iris: Iris) -> dict[str, int]:
    """``/status``'s count of the store's files, from an Iris served as ``python -m proxy serve``."""
    async with session.get(f"{iris.url}/status", headers={"X-Admin-Token": BENCH_ADMIN_TOKEN}) as resp:
        return (await resp.json())["cache"]["store_files"]


async def slow_download(client, url: str, headers: str = ""):
    """A GET on a raw connection whose both ends have small buffers, its headers read: the server is
    still sending the body while the test reads it bit by bit. ``headers``: more header lines."""
    reader, writer = await small_buffered(client.server.host, client.server.port)
    name = writer.get_extra_info("sockname")
    server_side = None
    for _ in range(250):
        server_side = next((h.transport for h in client.server.runner.server.connections
                            if h.transport is not None and h.transport.get_extra_info("peername") == name), None)
        if server_side is not None:
            break
        await asyncio.sleep(0.01)
    assert server_side is not None
    server_side.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    writer.write(f"GET {url} HTTP/1.1\r\nHost: a\r\n{headers}\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200 "), head
    return reader, writer, server_side


async def test_hits_too_large_for_the_front_come_whole_from_the_store_file(iris, serve):
    client, backend = await large(iris, serve)
    url = f"/prompt/large?{Q}"
    key = await stored(client, url)
    cache = client.app[IMAGE_CACHE]
    for _ in range(4):
        hit = await client.get(url)
        assert hit.status == 200 and hit.headers["X-Cache"] == "HIT"
        assert hit.headers["Content-Length"] == str(len(backend.image))
        assert hit.headers["Content-Type"] == "image/png"
        assert hit.headers["ETag"] == f'"{key}"' and "immutable" in hit.headers["Cache-Control"]
        assert re.fullmatch(r"[0-9a-f]{8}[0-9a-f]{6,}", hit.headers["X-Request-Id"])
        assert await hit.read() == backend.image
    assert key not in cache.front.items and cache.files_opened == 4
    head = await client.head(url)
    assert head.status == 200 and head.headers["X-Cache"] == "HIT"
    assert head.headers["Content-Length"] == str(len(backend.image)) and await head.read() == b""
    same = await client.get(url, headers={"If-None-Match": f'"{key}"'})
    assert same.status == 304 and await same.read() == b""
    assert same.headers["ETag"] == f'"{key}"' and same.headers["X-Cache"] == "HIT"
    status = await (await client.get("/status", headers=ADMIN)).json()
    assert status["cache"]["store_files"] == {"opened": 6, "open": 0, "dropped": 0, "held": 1}
    assert value_files(client.app[SETTINGS].cache.directory, cache) == []
    assert len(backend.calls) == 1


async def test_a_signed_url_s_large_hit_keeps_its_cache_control(iris, serve):
    client, backend = await large(iris, serve, IMAGE_SIGNING_KEYS="test-signing-key-0123456789")
    url = Signer(["test-signing-key-0123456789"]).sign("/prompt/signed?width=64&height=64", expires_in=3600)
    await stored(client, url)
    hit = await client.get(url)
    assert hit.status == 200 and hit.headers["X-Cache"] == "HIT" and await hit.read() == backend.image
    max_age = int(hit.headers["Cache-Control"].removeprefix("public, max-age="))
    assert 3500 < max_age <= 3600  # no cache may keep it past the signature's expiry
    assert client.app[IMAGE_CACHE].files_opened == 1


async def test_large_hits_are_logged_and_counted_with_every_byte(settings_for, serve, aiohttp_client):
    backend = FakeImageBackend(image=noise_png())
    await serve(backend)
    lines: list[str] = []
    access = AccessLog("text", lines.append)
    server = IrisTestServer(create_app(settings_for(BACKEND_API_URLS=backend.url, **SMALL_FRONT)))
    await server.start_server(access_log_class=AccessLogger, access_log=access)
    client = await aiohttp_client(server)
    url = f"/prompt/logged?{Q}"
    await stored(client, url)
    for _ in range(2):
        await (await client.get(url)).read()
    assert client.app[IMAGE_CACHE].files_opened == 2
    access.close()
    sizes = [int(m[1]) for m in re.finditer(r" GET /prompt/logged\?\S+ 200 (\d+) ", "".join(lines))]
    assert len(sizes) == 3 and sizes[1] == sizes[2] > len(backend.image)  # the header block too
    assert sizes[1] == sizes[0] - len("MISS") + len("HIT")  # as the miss, sent whole from memory
    counted = await scrape(client)
    assert total(counted, "iris_cache_lookups_total", result="hit") == 2
    assert total(counted, "iris_http_requests_total", route="prompt_image", status="200") == 3


async def test_a_delete_and_a_new_image_meanwhile_leave_a_slow_download_whole(iris, serve):
    client, backend = await large(iris, serve)
    url = f"/prompt/slow?{Q}"
    key = await stored(client, url)
    cache, directory = client.app[IMAGE_CACHE], client.app[SETTINGS].cache.directory
    old = backend.image
    reader, writer, _ = await slow_download(client, url)
    got = await asyncio.wait_for(reader.readexactly(32768), 10)
    assert cache.files_open == 1 and len(value_files(directory, cache)) == 1  # still sending from the file
    assert (await client.delete(f"/cache/{key}", headers=ADMIN)).status == 200
    assert value_files(directory, cache)[0].endswith(" (deleted)")  # the store let go of it: only we hold it
    backend.image = noise_png(350, seed=4)
    fresh = await client.get(url)  # the same key, made again: a new value, a new file
    assert fresh.headers["X-Cache"] == "MISS" and await fresh.read() == backend.image
    for _ in range(8):  # the rest, slowly
        got += await asyncio.wait_for(reader.read(4096), 10)
        await asyncio.sleep(0.01)
    got += await asyncio.wait_for(reader.readexactly(len(old) - len(got)), 10)
    assert got == old
    writer.close()
    await all_closed(client)
    again = await client.get(url)
    assert again.headers["X-Cache"] == "HIT" and await again.read() == backend.image


async def test_a_client_gone_mid_answer_leaves_no_file_open(iris, serve, caplog):
    caplog.set_level(logging.WARNING)
    client, backend = await large(iris, serve)
    url = f"/prompt/gone?{Q}"
    await stored(client, url)
    cache, directory = client.app[IMAGE_CACHE], client.app[SETTINGS].cache.directory
    for _ in range(2):
        reader, writer, _ = await slow_download(client, url)
        await asyncio.wait_for(reader.readexactly(16384), 10)
        assert len(value_files(directory, cache)) == 1
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
        writer.transport.abort()
        await all_closed(client)
    hit = await client.get(url)  # the worker is fine
    assert await hit.read() == backend.image
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_connection_closed_by_the_server_mid_answer_lets_go_of_the_file(iris, serve):
    """Closed on this side (a stop, a bound on connections): the client does not read, so nothing
    wakes the send but its look at the connection every CHECK_EVERY seconds. (As served: a lost
    connection does not cancel its handler, which aiohttp's test server would.)"""
    client, _ = await large(iris, serve)
    client.server.runner.server.handler_cancellation = False
    url = f"/prompt/closed?{Q}"
    await stored(client, url)
    cache = client.app[IMAGE_CACHE]
    reader, writer, server_side = await slow_download(client, url)
    await asyncio.wait_for(reader.readexactly(16384), 10)
    await asyncio.sleep(0.5)  # the client's buffers fill up, the server's send waits for the socket
    assert cache.files_open == 1
    server_side.close()
    await until(lambda: cache.files_open == 0, within=3)
    await all_closed(client)
    while await asyncio.wait_for(reader.read(65536), 10):  # then the client sees the end
        pass
    writer.close()


async def test_a_format_variant_of_a_large_original_is_converted_from_its_bytes(iris, serve):
    client, backend = await large(iris, serve)
    await stored(client, f"/prompt/webp?{Q}")
    made = await client.get(f"/prompt/webp?{Q}&format=webp")
    assert made.status == 200 and made.headers["Content-Type"] == "image/webp"
    body = await made.read()
    assert Image.open(io.BytesIO(body)).size == Image.open(io.BytesIO(backend.image)).size
    again = await client.get(f"/prompt/webp?{Q}&format=webp")
    assert again.headers["Content-Type"] == "image/webp" and await again.read() == body
    original = await client.get(f"/prompt/webp?{Q}")
    assert await original.read() == backend.image
    await all_closed(client)


async def test_the_safety_check_of_a_large_cached_image_reads_it_and_its_verdict_serves_it(iris, serve):
    image = blue_png()
    client, backend = await large(iris, serve, image, SAFETY_CHECK="param", SAFETY_CHECK_THRESHOLD="0.15")
    cache = client.app[IMAGE_CACHE]
    await stored(client, f"/prompt/lake?{Q}")  # made without the check: nobody asked
    checked = await client.get(f"/prompt/lake?{Q}&safe=true")  # checked now, from its bytes
    assert checked.status == 200 and await checked.read() == image
    flight = client.app[FLIGHT]
    while flight.tasks:  # the image is kept again, with its verdict
        await asyncio.wait(list(flight.tasks))
    for _ in range(3):  # the verdict is in the header: served from the file, not checked again
        resp = await client.get(f"/prompt/lake?{Q}&safe=true")
        assert resp.status == 200 and resp.headers["X-Cache"] == "HIT" and await resp.read() == image
    text = await (await client.get("/metrics", headers=ADMIN)).text()
    assert re.search(r'^iris_safety_checks_total\{outcome="passed"\} 1\.0$', text, re.M)
    assert cache.files_opened >= 3 and len(backend.calls) == 1
    await all_closed(client)


async def test_a_pending_upload_of_a_large_image_is_made_with_its_bytes(iris, serve):
    host = FakeSmms()
    await serve(host)
    host.fail_first = 1
    client, backend = await large(iris, serve, **hosting_env(host, IMAGE_HOSTING_ATTEMPTS="1",
                                                               IMAGE_HOSTING_RETRY_AFTER="0"))
    await stored(client, f"/prompt/pending?{Q}")  # the upload failed: kept as an image, pending
    retried = await client.get(f"/prompt/pending?{Q}", allow_redirects=False)
    assert retried.status == 302 and retried.headers["X-Cache"] == "HIT"
    assert len(host.uploads) == 2 and host.uploads[1].fields["smfile"][2] == backend.image
    await all_closed(client)


async def test_hosted_images_in_proxy_mode_are_whole_for_get_head_and_304(iris, serve):
    host = FakeSmms()
    await serve(host)
    client, backend = await large(iris, serve, **hosting_env(host, IMAGE_HOSTING_RESPONSE="proxy"))
    url = f"/prompt/proxied?{Q}"
    key = await stored(client, url)
    for _ in range(2):  # the host's bytes are too large for the memory front: fetched each time
        hit = await client.get(url)
        assert hit.status == 200 and hit.headers["X-Cache"] == "HIT" and await hit.read() == backend.image
    head = await client.head(url)
    assert head.status == 200 and head.headers["Content-Length"] == str(len(backend.image))
    same = await client.get(url, headers={"If-None-Match": f'"{key}"'})
    assert same.status == 304
    assert client.app[IMAGE_CACHE].files_opened == 0  # a hosted entry is a URL: no file to send


async def test_large_hits_over_tls_are_copied_from_the_file_in_chunks(settings_for, serve, aiohttp_client):
    """No sendfile under TLS: the body is read from the file a chunk at a time and written."""
    backend = FakeImageBackend(image=noise_png(450))
    await serve(backend)
    ca = TestCA()
    server = IrisTestServer(create_app(settings_for(BACKEND_API_URLS=backend.url, **SMALL_FRONT)))
    await server.start_server(ssl=ca.server_context("iris.test"))
    url = str(server.make_url(f"/prompt/tls?{Q}"))
    tls = ca.client_context()
    cache = server.app[IMAGE_CACHE]
    try:
        async with aiohttp.ClientSession() as session:
            async def get() -> tuple[str | None, str, bytes]:
                async with session.get(url, ssl=tls, server_hostname="iris.test") as resp:
                    assert resp.status == 200
                    return resp.headers.get("X-Cache"), resp.headers["ETag"].strip('"'), await resp.read()

            state, key, body = await get()
            assert state == "MISS" and body == backend.image
            await until_stored(cache, key)
            for _ in range(2):
                assert await get() == ("HIT", key, backend.image)
    finally:
        await server.close()
    assert cache.files_opened == 2 and cache.files_open == cache.files_dropped == 0


@pytest.mark.redis
async def test_the_redis_store_has_no_files_and_its_large_hits_stay_whole(instances, serve):
    backend = FakeImageBackend(image=noise_png())
    await serve(backend)
    a, b = await instances(2, BACKEND_API_URLS=backend.url, **SMALL_FRONT)
    url = f"/prompt/shared?{Q}"
    key = await stored(a, url)
    for client in (a, b, a, b):
        hit = await client.get(url)
        assert hit.status == 200 and hit.headers["X-Cache"] == "HIT" and await hit.read() == backend.image
    head = await b.head(url)
    assert head.status == 200 and head.headers["Content-Length"] == str(len(backend.image))
    assert (await b.get(url, headers={"If-None-Match": f'"{key}"'})).status == 304
    assert a.app[IMAGE_CACHE].files_opened == b.app[IMAGE_CACHE].files_opened == 0
    assert len(backend.calls) == 1


@pytest.mark.slow
async def test_large_hits_under_uvloop_as_served(serve, tmp_path: Path):
    """``python -m proxy serve`` (uvloop, the fast lane, the server's own connections): the same
    whole bytes, from the store's file, also to a slow client while the image is deleted."""
    backend = FakeImageBackend(image=noise_png(1450))  # 6 MB: more than the kernel's buffers hold
    await serve(backend)
    iris = Iris(backend.url, 1, tmp_path, **SMALL_FRONT)
    await iris.start()
    try:
        url = iris.image_url("uvloop", width=64, height=64)
        async with aiohttp.ClientSession() as session:
            async def get(**headers: str) -> tuple[int, str | None, bytes]:
                async with session.get(url, headers=headers) as resp:
                    return resp.status, resp.headers.get("X-Cache"), await resp.read()

            status, cache_state, body = await get()
            assert (status, cache_state, body) == (200, "MISS", backend.image)
            for _ in range(250):
                if (await get())[1] == "HIT":
                    break
                await asyncio.sleep(0.02)
            assert await asyncio.gather(*(get() for _ in range(4))) == [(200, "HIT", backend.image)] * 4
            reader, writer = await small_buffered("127.0.0.1", iris.port)
            admin = {"X-Admin-Token": BENCH_ADMIN_TOKEN}
            try:
                writer.write(f"GET {url.removeprefix(iris.url)} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                got = await asyncio.wait_for(reader.readexactly(16384), 10)
                key = re.search(rb'ETag: "(\w+)"', head)[1].decode()
                assert (await store_files(session, iris))["open"] == 1  # still sending
                async with session.delete(f"{iris.url}/cache/{key}", headers=admin) as resp:
                    assert resp.status == 200
                got += await asyncio.wait_for(reader.readexactly(len(backend.image) - len(got)), 20)
                assert got == backend.image
            finally:
                writer.close()
            files = await store_files(session, iris)
            assert files["opened"] >= 5 and files["open"] == files["dropped"] == 0
    finally:
        await asyncio.to_thread(iris.stop)


class Written:
    """What ``send_range`` writes through when it copies (aiohttp's writer, as far as it is used)."""

    def __init__(self, transport: asyncio.Transport):
        self.transport = transport
        self.output_size = 0

    async def write(self, data: bytes) -> None:
        self.output_size += len(data)
        self.transport.write(data)


async def behind_held_bytes(tmp_path: Path, *, plain: bool = True) -> None:
    """An answer's first part the socket did not take, held by the transport; the client then
    empties the socket, so the socket has room while the transport still holds bytes: the file's
    bytes must wait for them (sendfile straight away would put them first)."""
    loop = asyncio.get_running_loop()
    first, body = random.Random(1).randbytes(1 << 20), random.Random(2).randbytes(3 << 20)
    path = tmp_path / "value.val"
    path.write_bytes(b"HEADER" + body)
    closed: list[bool] = []
    source = StoredBody(ValueFile(path.open("rb"), len(body) + 6, b""), 6, closed.append)
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    client.setblocking(False)
    received = bytearray()
    reading = asyncio.Event()
    sent = loop.create_future()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = writer.transport
        try:
            transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
            transport.write(first)
            await asyncio.sleep(0.1)  # nobody reads: the socket is full, the transport holds the rest
            assert transport.get_write_buffer_size() > 0
            with contextlib.suppress(BlockingIOError):
                while True:  # the socket empties at once: room again, the transport not told yet
                    received.extend(client.recv(1 << 20))
            counted = Written(transport)
            sending = asyncio.ensure_future(send_range(counted, transport, transport.get_extra_info("socket")
                                                       if plain else None, source))
            reading.set()
            await sending
            assert counted.output_size == len(body)
            sent.set_result(None)
        except BaseException as exc:
            sent.set_exception(exc)
            raise
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        await loop.sock_connect(client, server.sockets[0].getsockname())
        await asyncio.wait_for(reading.wait(), 10)
        while len(received) < len(first) + len(body):
            chunk = await asyncio.wait_for(loop.sock_recv(client, 1 << 20), 10)
            if not chunk:
                break
            received.extend(chunk)
        await asyncio.wait_for(sent, 10)
    finally:
        client.close()
        server.close()
        await server.wait_closed()
        source.close()
    assert bytes(received[:len(first)]) == first and bytes(received[len(first):]) == body
    assert closed == [False]


async def test_a_file_s_bytes_wait_for_what_the_transport_still_holds(tmp_path: Path):
    await behind_held_bytes(tmp_path)


async def test_without_sendfile_a_file_s_bytes_are_copied_in_order_too(tmp_path: Path):
    await behind_held_bytes(tmp_path, plain=False)


def test_a_file_s_bytes_wait_for_what_the_transport_still_holds_under_uvloop(tmp_path: Path):
    uvloop.run(behind_held_bytes(tmp_path))


def store_file_of(cache: ImageCache, key: str) -> Path:
    """The store's value file the worker holds open for ``key``."""
    held = cache.held.items[key]
    return Path(os.readlink(f"/proc/self/fd/{held.value.fileno()}"))


async def test_hits_are_sent_from_the_file_held_open_without_asking_the_store(iris, serve):
    """As nginx's open_file_cache: the file opened by the first hit serves the next ones, so the
    store is not read (shown by taking its file away: a read would find nothing); after HELD_FOR
    the store is asked again."""
    client, backend = await large(iris, serve)
    url = f"/prompt/held?{Q}"
    key = await stored(client, url)
    cache = client.app[IMAGE_CACHE]
    assert await (await client.get(url)).read() == backend.image  # opens the file, and holds it
    path = store_file_of(cache, key)
    moved = path.rename(path.with_suffix(".away"))  # the store can no longer read the entry
    for _ in range(3):
        hit = await client.get(url)
        assert hit.headers["X-Cache"] == "HIT" and await hit.read() == backend.image
    await all_closed(client)  # each answer let go of its own descriptor; the held one stays
    assert len(cache.held.items) == 1 and cache.files_opened == 4
    moved.rename(path)
    cache.held.hold_for = 0.0  # held long enough: the store is asked again (and records the access)
    assert await (await client.get(url)).read() == backend.image
    assert cache.held.items[key].since > 0 and len(backend.calls) == 1


async def test_a_delete_by_another_worker_lets_go_of_the_held_file(aiohttp_client, serve, settings_for):
    """Two apps on one DATA_DIR stand for two workers: the delete moves the shared generation and
    the other worker's held file is dropped before it answers again."""
    backend = FakeImageBackend(image=noise_png())
    await serve(backend)
    settings = settings_for(BACKEND_API_URLS=backend.url, **SMALL_FRONT)
    one = await aiohttp_client(IrisTestServer(create_app(settings)))
    two = await aiohttp_client(IrisTestServer(create_app(settings)))
    url = f"/prompt/shared?{Q}"
    key = await stored(one, url)
    assert await (await two.get(url)).read() == backend.image
    assert key in two.app[IMAGE_CACHE].held.items
    assert (await one.delete(f"/cache/{key}", headers=ADMIN)).status == 200
    backend.image = noise_png(350, seed=5)
    again = await two.get(url)
    assert again.headers["X-Cache"] == "MISS" and await again.read() == backend.image
    assert len(backend.calls) == 2
    await asyncio.gather(*two.app[FLIGHT].tasks)  # the new image's store write (it follows the answer)
    await all_closed(two)
    assert not two.app[IMAGE_CACHE].held.items  # the old file, let go
    assert value_files(two.app[SETTINGS].cache.directory, two.app[IMAGE_CACHE]) == []


def test_a_worker_holds_a_bounded_number_of_files_and_closes_those_it_lets_go(tmp_path):
    held = HeldFiles(size=2)
    held.sync(1)
    opened = []
    for n in range(3):
        path = tmp_path / f"{n}.val"
        path.write_bytes(b"x" * 100)
        value = ValueFile(path.open("rb"), 100, b"x" * 16)
        held.keep(f"k{n}", image_entry(b"", "image/png"), value, 16, generation=1)
        value.close()  # the caller's own: the held one is a duplicate
        opened.append(held.items[f"k{n}"].value)
    assert list(held.items) == ["k1", "k2"] and opened[0].closed  # the oldest went, closed
    _, copy, offset = held.get("k1")
    assert offset == 16 and copy.read_at(0, 100) == b"x" * 100
    copy.close()
    assert not held.items["k1"].value.closed  # an answer's copy closes alone
    held.keep("stale", image_entry(b"", "image/png"), opened[1], 16, generation=0)
    assert "stale" not in held.items  # read under another generation: not kept
    held.sync(2)
    assert not held.items and opened[1].closed and opened[2].closed
