"""Connections as an attacker or a broken client makes them (the real server on 127.0.0.1, raw
sockets): requests the HTTP parser refuses, headers or a body trickled in, too many connections."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.support.fakes import FakeImageBackend


async def read_answer(reader: asyncio.StreamReader, within: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One answer read until the server closes the connection."""
    raw = await asyncio.wait_for(reader.read(), within)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the server closed the connection (EOF or reset) within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def connect(client):
    return await asyncio.open_connection(client.server.host, client.server.port)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_a_request_line_the_parser_refuses_gets_the_json_error_shape(iris, method, caplog):
    client = await iris()
    reader, writer = await connect(client)
    writer.write(f"{method} /prompt/x\u202e?key={ACCESS_KEY} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    status, headers, body = await read_answer(reader)
    writer.close()
    assert status == 400
    assert headers["content-type"].startswith("application/json") and headers["cache-control"] == "no-store"
    if method == "HEAD":
        assert body == b"" and headers.get("content-length", "0") == "0"
    else:
        error = orjson.loads(body)["error"]
        assert error["code"] == "bad_request"
        assert "could not be read" in error["message"]
    assert ACCESS_KEY not in body.decode("latin-1")  # the refused line is not echoed back
    assert ACCESS_KEY not in caplog.text
    assert "Traceback" not in caplog.text


async def test_a_malformed_header_gets_the_json_error_shape_too(iris):
    client = await iris()
    reader, writer = await connect(client)
    writer.write(b"GET /status HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")
    status, _, body = await read_answer(reader)
    writer.close()
    assert status == 400 and orjson.loads(body)["error"]["code"] == "bad_request"


async def test_headers_trickled_in_are_cut_off_at_the_header_timeout(iris):
    client = await iris(HEADER_TIMEOUT="0.5")
    reader, writer = await connect(client)
    writer.write(b"GET /status HTTP/1.1\r\n")
    started = time.monotonic()
    assert await cut_off_while_trickling(reader, writer), "a slowloris kept its connection"
    assert time.monotonic() - started >= 0.4


async def cut_off_while_trickling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Whether the server closes the connection within 3 s while header lines trickle in, one
    every 0.1 s (the request line already sent); ``writer`` is closed after."""

    async def trickle() -> None:
        for n in range(40):
            await asyncio.sleep(0.1)
            writer.write(f"X-Slow-{n}: 1\r\n".encode())

    sender = asyncio.create_task(trickle())
    try:
        return await closed_within(reader, 3.0)
    finally:
        sender.cancel()
        writer.close()


async def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout(iris):
    client = await iris(HEADER_TIMEOUT="0.5")
    reader, writer = await connect(client)
    assert await closed_within(reader, 3.0)
    writer.close()


async def test_a_kept_alive_connection_serves_requests_after_the_header_timeout(iris):
    """The deadline is per request: a connection in use for longer than it is not cut off."""
    client = await iris(HEADER_TIMEOUT="0.3")
    reader, writer = await connect(client)
    for _ in range(4):
        writer.write(b"GET /status HTTP/1.1\r\nHost: a\r\n\r\n")
        line = await asyncio.wait_for(reader.readline(), 5)
        assert line.startswith(b"HTTP/1.1 200")
        length = 0
        while (header := await reader.readline()) != b"\r\n":
            if header.lower().startswith(b"content-length:"):
                length = int(header.split(b":")[1])
        await reader.readexactly(length)
        await asyncio.sleep(0.2)
    writer.close()


async def test_an_idle_connection_is_closed_after_the_keepalive_timeout(iris):
    client = await iris(KEEPALIVE_TIMEOUT="0.5")
    reader, writer = await connect(client)
    writer.write(b"GET /status HTTP/1.1\r\nHost: a\r\n\r\n")
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")
    assert await closed_within(reader, 3.0)
    writer.close()


async def test_a_body_trickled_in_gets_408_at_the_body_timeout(iris):
    client = await iris(BODY_TIMEOUT="0.5")
    reader, writer = await connect(client)
    writer.write(b"POST /cache/delete HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
                 b"X-Admin-Token: " + ADMIN_TOKEN.encode() + b"\r\nContent-Length: 1000\r\n\r\n{")

    async def trickle() -> None:
        for _ in range(100):
            await asyncio.sleep(0.1)
            writer.write(b" ")

    sender = asyncio.create_task(trickle())
    started = time.monotonic()
    try:
        status, _, body = await read_answer(reader, within=4.0)
    finally:
        sender.cancel()
        writer.close()
    assert status == 408
    assert orjson.loads(body)["error"]["code"] == "body_timeout"
    assert time.monotonic() - started < 3.0


async def test_a_body_in_time_is_read_as_usual(iris):
    client = await iris(BODY_TIMEOUT="0.5")
    resp = await client.post("/cache/delete", json={"description": "never made"},
                             headers={"X-Admin-Token": ADMIN_TOKEN})
    assert resp.status == 404


async def test_past_max_connections_the_oldest_waiting_one_makes_room(iris):
    client = await iris(MAX_CONNECTIONS="3")
    idle = [await connect(client) for _ in range(3)]
    await asyncio.sleep(0.1)
    reader, writer = await connect(client)
    writer.write(b"GET /status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    status, _, _ = await read_answer(reader)
    assert status == 200
    assert await closed_within(idle[0][0], 2.0), "the oldest idle connection was kept"
    for _, w in [*idle, (reader, writer)]:
        w.close()


async def test_past_max_connections_with_every_one_busy_a_newcomer_gets_503(iris, serve):
    slow = FakeImageBackend(delay=1.5)
    await serve(slow)
    client = await iris(BACKEND_API_URLS=slow.url, MAX_CONNECTIONS="2")
    busy = []
    for n in range(2):
        reader, writer = await connect(client)
        writer.write(f"GET /prompt/busy{n}?key={ACCESS_KEY} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        busy.append((reader, writer))
    for _ in range(100):  # both requests reached the backend: both connections are busy
        if len(slow.calls) == 2:
            break
        await asyncio.sleep(0.02)
    reader, writer = await connect(client)
    status, headers, body = await read_answer(reader)
    writer.close()
    assert status == 503 and headers["retry-after"] == "1"
    assert orjson.loads(body)["error"]["code"] == "unavailable"
    for busy_reader, busy_writer in busy:  # the busy ones were not disturbed
        assert (await asyncio.wait_for(busy_reader.readline(), 10)).startswith(b"HTTP/1.1 200")
        busy_writer.close()
