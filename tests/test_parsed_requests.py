"""Requests remembered parsed (``proxy.web.parsed``): the same bytes again are answered with the
message aiohttp's parser made of them, on any connection, with every check of the hit made anew;
and never while a connection's parser holds part of another request, whatever bytes come next.
Raw sockets on the real server: what goes over the wire is what is checked."""

from __future__ import annotations

import asyncio
import itertools
import random

from aiohttp.http_parser import HttpRequestParser
from aiohttp.test_utils import TestClient

from proxy.web.parsed import ParsedRequests, whole_request
from proxy.web.protocol import IrisServer
from tests.conftest import ADMIN_TOKEN
from tests.test_connections import connect
from tests.test_fast_lane import URL, VARYING, warmed
from tests.test_wire_lane import GET, answer, without_varying

HEALTH = b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"


def parsed_of(client: TestClient) -> ParsedRequests:
    runner = client.server.runner
    assert runner is not None and isinstance(runner.server, IrisServer)
    return runner.server.parsed


async def remembered(iris, backend) -> tuple[TestClient, ParsedRequests, asyncio.StreamReader,
                                             asyncio.StreamWriter]:
    """A client whose server has remembered ``GET`` parsed and answered it from there once, and
    the connection that asked."""
    client, _ = await warmed(iris, backend)
    parsed = parsed_of(client)
    reader, writer = await connect(client)
    for _ in range(2):
        writer.write(GET)
        await answer(reader)
    assert parsed.reused == 1
    return client, parsed, reader, writer


async def nothing_more(reader: asyncio.StreamReader) -> bool:
    """No more bytes come within a moment (the connection may close)."""
    try:
        return await asyncio.wait_for(reader.read(1), 0.5) == b""
    except TimeoutError:
        return True


async def test_the_same_request_again_is_answered_from_its_remembered_parse_on_any_connection(iris, backend):
    client, lane = await warmed(iris, backend)
    parsed = parsed_of(client)
    full = await client.get(URL, headers={"Host": "a"})  # the full route's answer, for comparison
    wired = lane.wired
    reader, writer = await connect(client)
    answers = []
    for _ in range(3):
        writer.write(GET)
        answers.append(await answer(reader))
    assert parsed.reused == 2  # the first was parsed (and remembered), the next two were not
    other_reader, other_writer = await connect(client)
    other_writer.write(GET)
    answers.append(await answer(other_reader))
    assert parsed.reused == 3
    other_writer.write(GET.replace(b"Host: a", b"Host: b"))  # one byte apart: parsed
    answers.append(await answer(other_reader))
    writer.close()
    other_writer.close()
    assert parsed.reused == 3 and lane.wired == wired + 5
    expected = {k.lower(): v for k, v in full.headers.items()}
    for status, headers, body in answers:
        assert status == b"HTTP/1.1 200 OK" and body == await full.read() == backend.image
        assert without_varying(headers) == {k: v for k, v in expected.items() if k not in VARYING}
    assert len({headers["x-request-id"] for _, headers, _ in answers}) == len(answers)


async def test_a_remembered_request_is_checked_again_every_time(iris, backend):
    """Only the parse is remembered: a deleted image is made again, a wrong key stays wrong."""
    client, _ = await warmed(iris, backend)
    parsed = parsed_of(client)
    reader, writer = await connect(client)
    for _ in range(2):
        writer.write(GET)
        assert (await answer(reader))[1]["x-cache"] == "HIT"
    etag = (await client.get(URL)).headers["ETag"].strip('"')
    assert (await client.delete(f"/cache/{etag}", headers={"X-Admin-Token": ADMIN_TOKEN})).status == 200
    calls = len(backend.calls)
    writer.write(GET)
    status, headers, body = await answer(reader)
    assert status == b"HTTP/1.1 200 OK" and headers["x-cache"] == "MISS" and body == backend.image
    assert len(backend.calls) == calls + 1
    assert parsed.reused == 1
    writer.close()


async def test_bytes_that_end_a_request_the_parser_holds_part_of_are_never_read_as_a_remembered_one(iris, backend):
    """A chunk that ends one request and starts another leaves the parser holding a part: the next
    chunk continues that request, even when its bytes are those of a remembered one."""
    client, parsed, _, writer = await remembered(iris, backend)
    smuggler_reader, smuggler = await connect(client)
    smuggler.write(HEALTH + b"GET /healthz HTTP/1.1\r\nX-Pad: ")  # a whole request and a part of one
    first = await answer(smuggler_reader)
    assert first[0] == b"HTTP/1.1 200 OK" and first[1]["content-type"].startswith("application/json")
    await asyncio.sleep(0.1)  # the connection is idle again, waiting for the rest of the second
    smuggler.write(GET)  # a remembered request's bytes: here, the second one's last header lines
    second = await answer(smuggler_reader)
    assert second[0] == b"HTTP/1.1 200 OK" and second[2] != backend.image  # /healthz, not the image
    assert second[1]["content-type"].startswith("application/json")
    assert await nothing_more(smuggler_reader)
    smuggler.write(GET)  # this connection's parser is never trusted to be between requests again
    assert (await answer(smuggler_reader))[2] == backend.image
    assert parsed.reused == 1
    smuggler.close()
    writer.close()


async def test_a_body_that_repeats_a_remembered_request_is_read_as_a_body(iris, backend):
    _, parsed, reader, writer = await remembered(iris, backend)
    writer.write(b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: " + str(len(GET)).encode() + b"\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.write(GET)  # the POST's body
    status, _, body = await answer(reader)
    assert status.startswith(b"HTTP/1.1 405") and body != backend.image
    assert await nothing_more(reader)
    assert parsed.reused == 1
    writer.close()


async def test_however_a_connection_s_bytes_are_cut_each_request_gets_its_own_answer(iris, backend):
    """Seeded random runs of requests on one connection, cut into packets at random places (often
    where one request ends, so that whole remembered requests arrive alone, and where a body that
    repeats one begins): the answers are those of the requests sent, in order, remembered parses
    used or not."""
    client, parsed, _, writer = await remembered(iris, backend)
    writer.close()
    post = b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: " + str(len(GET)).encode() + b"\r\n\r\n" + GET
    requests = {"image": GET, "health": HEALTH, "other host": GET.replace(b"Host: a", b"Host: b"), "post": post}
    expected = {"image": "image", "health": "json", "other host": "image", "post": "405"}
    rng = random.Random(20261205)
    for _ in range(30):
        chosen = [rng.choice(list(requests)) for _ in range(rng.randint(1, 5))]
        stream = b"".join(requests[name] for name in chosen)
        ends = [sum(len(requests[name]) for name in chosen[:i + 1]) for i in range(len(chosen))]
        bodies = [end - len(GET) for end, name in zip(ends, chosen, strict=True) if name == "post"]
        cuts = {end for end in ends[:-1] + bodies if rng.random() < 0.7}
        cuts |= {rng.randrange(1, len(stream)) for _ in range(rng.randint(0, 3))}
        bounds = [0, *sorted(cuts), len(stream)]
        reader, writer = await connect(client)
        for start, end in itertools.pairwise(bounds):
            writer.write(stream[start:end])
            await writer.drain()
            await asyncio.sleep(0.1 if end in bodies else 0.005)  # a body waited for: its request answered
        answers = [await answer(reader) for _ in chosen]
        writer.close()
        seen = ["image" if body == backend.image and status == b"HTTP/1.1 200 OK"
                else "json" if status == b"HTTP/1.1 200 OK" and headers["content-type"].startswith("application/json")
                else status.split()[1].decode() for status, headers, body in answers]
        assert seen == [expected[name] for name in chosen], (chosen, bounds)
    assert parsed.reused > 1  # some runs were answered from remembered parses


async def test_a_long_request_is_not_remembered(iris, backend):
    client, lane = await warmed(iris, backend)
    parsed = parsed_of(client)
    reader, writer = await connect(client)
    long = GET.replace(b"Host: a", b"Host: a\r\nX-Pad: " + b"p" * parsed.longest)
    for _ in range(2):
        writer.write(long)
        assert (await answer(reader))[2] == backend.image
    writer.close()
    assert lane.wired == 2 and parsed.reused == 0 and long not in parsed.messages


async def test_a_chunk_is_whole_only_when_it_ends_the_one_request_it_holds():
    parser = HttpRequestParser(None, asyncio.get_running_loop(), 2**16)

    def whole(chunk: bytes) -> bool:
        messages, _, _ = parser.feed_data(chunk)
        return len(messages) == 1 and whole_request(chunk, *messages[0])

    assert whole(HEALTH)
    assert not whole(HEALTH + b"GET /healthz HTTP/1.1\r\nX-Pad: ")  # and part of the next
    assert whole(b"p\r\nHost: a\r\n\r\n")  # which this ends: one whole message, but the parser was not between requests


async def test_the_oldest_remembered_request_goes_first():
    parser = HttpRequestParser(None, asyncio.get_running_loop(), 2**16)
    remembered = ParsedRequests(kept=2)
    chunks = [f"GET /{n} HTTP/1.1\r\nHost: a\r\n\r\n".encode() for n in range(3)]
    for chunk in chunks:
        ((message, payload),), _, _ = parser.feed_data(chunk)
        assert whole_request(chunk, message, payload)
        remembered.remember(chunk, message)
    assert list(remembered.messages) == chunks[1:]
    assert remembered.get(chunks[2]) is not None and remembered.get(chunks[0]) is None
