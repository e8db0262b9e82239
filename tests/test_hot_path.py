"""The trimmed hit path behaves exactly like the plain one: remembered request targets, large
bodies sent from a memory file with sendfile, and the memory front letting go of those files."""

from __future__ import annotations

import asyncio
import io
import random
import socket

from PIL import Image

from proxy.cache.bodyfile import FILE_FROM, BodyFile
from proxy.imagegen.reply import send_image
from proxy.keys import IMAGE_CACHE
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.support.fakes import FakeImageBackend

Q = f"key={ACCESS_KEY}&width=64&height=64"
ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


def noise_png(side: int = 320) -> bytes:
    """An incompressible PNG larger than FILE_FROM."""
    img = Image.frombytes("RGB", (side, side), random.Random(3).randbytes(side * side * 3))
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=0)
    assert out.tell() > FILE_FROM
    return out.getvalue()


async def test_large_hits_come_whole_from_the_memory_file(iris, serve):
    big = FakeImageBackend(image=noise_png())
    await serve(big)
    client = await iris(BACKEND_API_URLS=big.url)
    first = await client.get(f"/prompt/static?{Q}")
    assert first.headers["X-Cache"] == "MISS" and await first.read() == big.image
    key = first.headers["ETag"].strip('"')
    cache = client.app[IMAGE_CACHE]
    assert key in cache.files  # the front holds the body in a memory file too
    for _ in range(3):
        hit = await client.get(f"/prompt/static?{Q}")
        assert hit.status == 200 and hit.headers["X-Cache"] == "HIT"
        assert hit.headers["Content-Length"] == str(len(big.image))
        assert hit.headers["Content-Type"] == "image/png"
        assert await hit.read() == big.image
    head = await client.head(f"/prompt/static?{Q}")
    assert head.status == 200 and head.headers["Content-Length"] == str(len(big.image))
    assert await head.read() == b""
    cached = await client.get(f"/prompt/static?{Q}", headers={"If-None-Match": f'"{key}"'})
    assert cached.status == 304 and await cached.read() == b""
    assert len(big.calls) == 1


async def test_a_large_hit_leaves_its_keep_alive_connection_uncorked(iris, serve):
    """The socket is corked while the headers and the file go out (as nginx's tcp_nopush); left
    corked, the next answer on that connection would wait up to 200 ms in the kernel."""
    big = FakeImageBackend(image=noise_png())
    await serve(big)
    client = await iris(BACKEND_API_URLS=big.url)
    await (await client.get(f"/prompt/corked?{Q}")).read()
    await asyncio.sleep(0.2)  # the entry reaches the store and its memory file just after the answer
    seen = []
    for _ in range(3):
        hit = await client.get(f"/prompt/corked?{Q}")
        assert hit.headers["X-Cache"] == "HIT" and await hit.read() == big.image
        for handler in client.server.runner.server.connections:
            sock = handler.transport.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK))
    assert seen and set(seen) == {0}


async def test_a_deleted_entry_lets_go_of_its_memory_file(iris, serve):
    big = FakeImageBackend(image=noise_png())
    await serve(big)
    client = await iris(BACKEND_API_URLS=big.url)
    key = (await client.get(f"/prompt/gone?{Q}")).headers["ETag"].strip('"')
    await asyncio.sleep(0.2)  # the entry reaches the store just after the first answer
    file = client.app[IMAGE_CACHE].files[key][1]
    assert (await client.delete(f"/cache/{key}", headers=ADMIN)).status == 200
    assert key not in client.app[IMAGE_CACHE].files
    assert file.send_into(None) == 0
    again = await client.get(f"/prompt/gone?{Q}")
    assert again.headers["X-Cache"] == "MISS" and await again.read() == big.image
    assert len(big.calls) == 2


async def test_a_remembered_target_still_checks_the_key_and_the_cache(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    url = f"/prompt/pear?{Q}"
    assert (await client.get(url)).headers["X-Cache"] == "MISS"
    assert (await client.get(url)).headers["X-Cache"] == "HIT"
    wrong = await client.get(url.replace(ACCESS_KEY, "x" + ACCESS_KEY[1:]))
    assert wrong.status == 401
    key = (await client.get(url)).headers["ETag"].strip('"')
    assert (await client.delete(f"/cache/{key}", headers=ADMIN)).status == 200
    assert (await client.get(url)).headers["X-Cache"] == "MISS"
    assert len(backend.calls) == 2


async def test_a_random_seed_is_drawn_again_for_the_same_url(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    tags = {(await client.get(f"/prompt/dice?{Q}&seed=-1")).headers["ETag"] for _ in range(3)}
    assert len(tags) == 3 and len(backend.calls) == 3


async def test_body_file_sends_over_a_real_socket_and_not_once_closed():
    body = random.Random(5).randbytes(FILE_FROM * 3)
    received = asyncio.get_running_loop().create_future()

    async def reader(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        received.set_result(await r.readexactly(len(body) + 5))
        w.close()

    server = await asyncio.start_server(reader, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    file = BodyFile.of(body)
    assert file is not None and BodyFile.of(body[:FILE_FROM - 1]) is None
    writer.write(b"head:")
    await writer.drain()
    sent = file.send_into(writer.transport)
    assert sent > 0
    writer.write(body[sent:])
    await writer.drain()
    assert await asyncio.wait_for(received, 10) == b"head:" + body
    file.close()
    assert file.send_into(writer.transport) == 0
    writer.close()
    server.close()
    await server.wait_closed()


async def connected_pair(reading: asyncio.Event) -> tuple[asyncio.Future[bytes], asyncio.StreamWriter,
                                                         socket.socket, asyncio.Server]:
    """A connection (its writer, and a plain socket over its descriptor, to ``detach``) to a server
    that reads all it is sent, to the end, once ``reading`` is set."""
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def reader(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await reading.wait()
        received.set_result(await r.read())
        w.close()

    server = await asyncio.start_server(reader, "127.0.0.1", 0)
    _, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    sock = socket.socket(fileno=writer.transport.get_extra_info("socket").fileno())
    return received, writer, sock, server


async def sent_whole(received: asyncio.Future[bytes], writer: asyncio.StreamWriter, sock: socket.socket,
                     server: asyncio.Server) -> bytes:
    """Everything the connection was sent, as its server read it."""
    await writer.drain()
    sock.detach()
    writer.close()
    try:
        return await asyncio.wait_for(received, 10)
    finally:
        server.close()
        await server.wait_closed()


async def test_a_large_answer_s_headers_and_file_go_out_in_order_with_the_socket_taking_what_it_can():
    """``send_image`` as the lane calls it: the header block held back for the file's first bytes,
    sent with sendfile; on a socket that takes everything at once, and on one that takes nothing
    (its transport holding nothing, the kernel's buffers full), where both are written the
    ordinary way, behind what was there before."""
    body = random.Random(6).randbytes(FILE_FROM * 2)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    file = BodyFile.of(body)
    assert file is not None
    reading = asyncio.Event()
    reading.set()
    received, writer, sock, server = await connected_pair(reading)
    send_image(writer.transport, head, body, file, sock)
    assert writer.transport.get_write_buffer_size() == 0  # all of it went to the kernel at once
    assert await sent_whole(received, writer, sock, server) == head + body

    full = asyncio.Event()
    received, writer, sock, server = await connected_pair(full)
    filled = 0
    while True:  # the kernel's buffers filled behind the transport's back
        try:
            filled += sock.send(b"f" * 65536)
        except BlockingIOError:
            break
    send_image(writer.transport, head, body, file, sock)
    assert writer.transport.get_write_buffer_size() == len(head) + len(body)  # the socket took none
    full.set()
    assert await sent_whole(received, writer, sock, server) == b"f" * filled + head + body
    file.close()
