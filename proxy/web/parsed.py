"""Requests a worker remembers parsed, by their exact bytes: a browser or a client asks for the
same image with the same bytes again and again, and parsing them again (aiohttp's parser, its
headers, its URL, and all the hot path then reads of them anew) was a third of a small hit's CPU.

This is no parser of Iris's own: every remembered message is what aiohttp's parser made of those
very bytes, read from a parser that was between requests, where they ended exactly one whole
request (``whole_request``). A connection looks here only while its own parser is between
requests: while every chunk it has read so far was one whole request (or was answered from
here, which the parser never saw). The same bytes from the same state parse the same, so a
remembered message is what parsing them again would give: no request boundary, header or
smuggling trick is judged here, only identity. ``proxy.web.protocol`` keeps the rule; only
requests the shortcut answered are remembered, so what a client cannot get answered at once
cannot fill the memory either."""

from __future__ import annotations

from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import EMPTY_PAYLOAD

KEPT = 256  # requests a worker remembers; the oldest goes first
LONGEST = 4096  # bytes; a longer request is parsed every time (a browser's is well under this)


class ParsedRequests:
    def __init__(self, kept: int = KEPT, longest: int = LONGEST):
        self.kept = kept
        self.longest = longest
        self.messages: dict[bytes, RawRequestMessage] = {}
        self.reused = 0  # requests answered with a remembered message

    def get(self, data: bytes) -> RawRequestMessage | None:
        return self.messages.get(data)

    def used(self) -> None:
        self.reused += 1

    def remember(self, data: bytes, message: RawRequestMessage) -> None:
        if len(data) > self.longest:
            return
        messages = self.messages
        if len(messages) >= self.kept:
            del messages[next(iter(messages))]
        messages[data] = message


def whole_request(data: bytes, message: object, payload: object) -> bool:
    """``data``, read by a parser between requests, was exactly one whole request without a body:
    it parsed to the one ``message`` (with ``payload``), and its only blank line (the end of a
    header block; a bare LF counted as a line end too) ends it. The parser is between requests
    again, and the same bytes read from there parse to the same message."""
    return (payload is EMPTY_PAYLOAD and isinstance(message, RawRequestMessage) and not message.upgrade
            and data.find(b"\n\r\n") == len(data) - 3 and b"\n\n" not in data)
