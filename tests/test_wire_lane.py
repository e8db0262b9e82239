"""Hits answered where their connection parsed them (the server's shortcut, ``FastLane.wire``):
the same bytes as the full route's answer, in order with everything else on the connection, kept
alive, counted and logged; and every request the shortcut cannot answer whole left to aiohttp as if
it had not looked. Raw sockets on the real server, so what goes over the wire is what is checked."""

from __future__ import annotations

import asyncio
import logging
import re
import socket

from proxy.app import create_app
from proxy.logs import AccessLog, AccessLogger
from tests.conftest import ACCESS_KEY, IrisTestServer
from tests.support.fakes import FakeImageBackend
from tests.test_connections import closed_within, connect, cut_off_while_trickling
from tests.test_fast_lane import URL, VARYING, lane_of, warmed
from tests.test_hot_path import noise_png
from tests.test_metrics import scrape, total

GET = f"GET {URL} HTTP/1.1\r\nHost: a\r\n\r\n".encode()


async def answer(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    """One answer on a kept-alive connection: its status line, headers and body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:] if ": " in line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 10)
    return lines[0].encode(), headers, body


def without_varying(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in VARYING}


async def test_hits_on_a_kept_alive_connection_are_answered_where_they_were_parsed(iris, backend):
    client, lane = await warmed(iris, backend)
    reader, writer = await connect(client)
    answers = []
    for _ in range(3):
        writer.write(GET)
        answers.append(await answer(reader))
    writer.write(f"GET {URL} HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"other\"\r\n\r\n".encode())  # the full route
    full = await answer(reader)
    writer.close()
    assert lane.wired == 3 and lane.served == 3
    for status, headers, body in answers:
        assert status == full[0] == b"HTTP/1.1 200 OK" and body == full[2] == backend.image
        assert list(headers) == list(full[1])  # the same headers, in the same order
        assert without_varying(headers) == without_varying(full[1])
    assert len({headers["x-request-id"] for _, headers, _ in answers}) == 3


async def test_a_bearer_key_a_given_request_id_and_accept_read_as_on_the_full_way(iris, backend):
    client, lane = await warmed(iris, backend)
    reader, writer = await connect(client)
    bare = URL.replace(f"key={ACCESS_KEY}&", "")
    ask = (f"GET {bare} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ACCESS_KEY}\r\n"
           f"X-Request-Id: trace-7\r\nAccept: image/webp,*/*\r\n\r\n").encode()
    for _ in range(2):  # the first parses the new target on the full way
        writer.write(ask)
        status, headers, body = await answer(reader)
        assert status == b"HTTP/1.1 200 OK" and headers["x-request-id"] == "trace-7"
        assert headers["vary"] == "Accept, Authorization" and headers["x-cache"] == "HIT"
    writer.write(ask.replace(ACCESS_KEY.encode(), b"not-the-key-0123456789"))
    status, _, body = await answer(reader)
    writer.close()
    assert status.startswith(b"HTTP/1.1 401") and b"invalid_key" in body
    assert lane.wired == 1


async def test_pipelined_and_split_requests_are_answered_in_order_by_the_ordinary_way(iris, backend):
    client, lane = await warmed(iris, backend)
    reader, writer = await connect(client)
    writer.write(GET + b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n" + GET)  # three in one packet
    first, second, third = [await answer(reader) for _ in range(3)]
    assert first[2] == third[2] == backend.image and second[0] == b"HTTP/1.1 200 OK" and second[2] != first[2]
    writer.write(GET[:20])  # one request in two packets: the parser holds the first part
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(GET[20:])
    split = await answer(reader)
    writer.write(GET)  # and the next whole one on the same connection takes the shortcut again
    again = await answer(reader)
    writer.close()
    assert split[2] == again[2] == backend.image
    assert lane.served == 4 and lane.wired == 1


async def test_http_1_0_and_connection_close_get_their_answer_and_a_closed_connection(iris, backend):
    client, lane = await warmed(iris, backend)
    for request in (f"GET {URL} HTTP/1.0\r\n\r\n", f"GET {URL} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"):
        reader, writer = await connect(client)
        writer.write(request.encode())
        raw = await asyncio.wait_for(reader.read(), 10)  # to the end: the server closes
        writer.close()
        assert raw.endswith(backend.image) and b" 200 OK\r\n" in raw.split(b"\r\n", 1)[0] + b"\r\n"
    assert lane.served == 2 and lane.wired == 0


async def test_a_request_with_a_body_or_a_head_goes_the_full_way(iris, backend):
    client, lane = await warmed(iris, backend)
    reader, writer = await connect(client)
    writer.write(f"GET {URL} HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc".encode())
    with_body = await answer(reader)
    writer.write(f"HEAD {URL} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.close()
    assert with_body[2] == backend.image and b"X-Cache: HIT" in head
    assert lane.wired == 0


async def test_a_connection_answered_only_by_the_shortcut_is_closed_once_idle(iris, backend):
    client, lane = await warmed(iris, backend, KEEPALIVE_TIMEOUT="0.5")
    reader, writer = await connect(client)
    for _ in range(3):
        writer.write(GET)
        await answer(reader)
        await asyncio.sleep(0.2)  # in use for longer than the keep-alive timeout, never idle that long
    assert lane.wired == 3
    assert await closed_within(reader, 3.0)
    writer.close()


async def test_a_slowloris_after_answered_hits_is_still_cut_off(iris, backend):
    """The header deadline is per request even though the shortcut's requests move no timer."""
    client, lane = await warmed(iris, backend, HEADER_TIMEOUT="0.4")
    reader, writer = await connect(client)
    writer.write(GET)
    await answer(reader)
    await asyncio.sleep(0.6)  # the connection's timer fires with nothing due
    writer.write(GET)
    await answer(reader)
    writer.write(GET[:30])  # then headers that never end
    assert await cut_off_while_trickling(reader, writer), "a slowloris kept its connection"
    assert lane.wired == 2


async def test_while_an_answer_is_still_going_out_the_next_request_waits_its_turn(iris, serve):
    """A client that does not read: its next request is not answered into a full buffer (it goes
    the ordinary way, which waits for the socket), and both answers arrive whole."""
    big = FakeImageBackend(image=noise_png(1100))
    await serve(big)
    client, lane = await warmed(iris, big)
    url = URL.replace("a%20lighthouse%20at%20dusk", "a%20large%20one")
    await (await client.get(url)).read()  # a miss: the target is parsed, the image stored
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a slow reader's small window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (client.server.host, client.server.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    ask = f"GET {url} HTTP/1.1\r\nHost: a\r\n\r\n".encode()
    writer.write(ask)
    await asyncio.sleep(0.3)
    writer.write(ask)
    await asyncio.sleep(0.3)
    answers = [await answer(reader) for _ in range(2)]
    writer.close()
    assert [body == big.image for _, _, body in answers] == [True, True]
    assert lane.wired == 1 and lane.served == 2


async def test_hits_answered_by_the_shortcut_are_logged_and_counted(settings_for, backend, aiohttp_client):
    lines: list[str] = []
    access = AccessLog("text", lines.append)
    app = create_app(settings_for(BACKEND_API_URLS=backend.url))
    server = IrisTestServer(app)
    await server.start_server(access_log_class=AccessLogger, access_log=access)  # as the server runs it
    client = await aiohttp_client(server)
    for _ in range(3):
        await (await client.get(URL)).read()
    assert lane_of(client).wired >= 1
    access.close()
    logged = [line for line in "".join(lines).splitlines() if " GET /prompt/" in line]
    assert len(logged) == 3
    sizes = []
    for line in logged:  # the miss, then the hits: one line each, as on the full way (the key hidden)
        found = re.search(r" 127\.0\.0\.1 GET /prompt/a%20lighthouse%20at%20dusk\?key=\*\*\*&width=64&height=64 "
                          r"200 (\d+) [\d.]+ms$", line)
        assert found, line
        sizes.append(int(found[1]))
    assert sizes[1] == sizes[2] > len(backend.image)  # every byte sent, the header block too, as aiohttp counts
    counted = await scrape(client)
    assert total(counted, "iris_cache_lookups_total", result="hit") == 2
    assert total(counted, "iris_http_requests_total", route="prompt_image", status="200") == 3


async def test_aiohttp_s_own_access_logger_reads_a_shortcut_answer_too(settings_for, backend, aiohttp_client, caplog):
    """Iris's server logs with its own batch, but an app served by a runner of someone else's
    choosing logs with aiohttp's: the request line (method, path, version) and the answer read."""
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    server = IrisTestServer(create_app(settings_for(BACKEND_API_URLS=backend.url)))
    await server.start_server(access_log=logging.getLogger("aiohttp.access"),
                              access_log_format='%r %s %b "%{X-Request-Id}o"')
    client = await aiohttp_client(server)
    for _ in range(3):
        await (await client.get(URL)).read()
    assert lane_of(client).wired >= 1
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access" and " /prompt/" in r.getMessage()]
    assert len(lines) == 3 and not [r for r in caplog.records if "Error in logging" in r.getMessage()]
    assert all(re.fullmatch(r'GET /prompt/\S+ HTTP/1\.1 200 \d+ "\w+"', line) for line in lines), lines
