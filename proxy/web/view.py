"""What Iris's hot path reads of a request, as a type: an aiohttp request is one, and so is the
``WireRequest`` a connection makes of a message it has just parsed (``proxy.web.protocol``), which
costs a few attribute reads where building an aiohttp request costs a request, a writer and their
caches. The image fast lane, the admission rule and the access log take either."""

from __future__ import annotations

import asyncio
import socket
from typing import Protocol

from aiohttp.http import HttpVersion
from aiohttp.http_parser import RawRequestMessage
from multidict import CIMultiDictProxy, MultiMapping


class RequestView(Protocol):
    @property
    def method(self) -> str: ...

    @property
    def raw_path(self) -> str: ...

    @property
    def path_qs(self) -> str: ...

    @property
    def query(self) -> MultiMapping[str]: ...

    @property
    def headers(self) -> CIMultiDictProxy[str]: ...

    @property
    def remote(self) -> str | None: ...

    @property
    def transport(self) -> asyncio.Transport | None: ...


class WireRequest:
    """A parsed request in origin form (``/path?query``) on ``transport``, from the peer ``remote``;
    ``sock``: the connection's socket, when sendfile may write to it (a plain TCP socket)."""

    __slots__ = ("headers", "message", "remote", "sock", "transport")

    def __init__(self, message: RawRequestMessage, transport: asyncio.Transport, remote: str | None,
                 sock: socket.socket | None):
        self.message = message
        self.headers: CIMultiDictProxy[str] = message.headers
        self.transport: asyncio.Transport | None = transport
        self.remote = remote
        self.sock = sock

    @property
    def method(self) -> str:
        return self.message.method

    @property
    def raw_path(self) -> str:
        return self.message.path

    @property
    def version(self) -> HttpVersion:  # for aiohttp's own access logger, when it is the one in use
        return self.message.version

    @property
    def path_qs(self) -> str:  # the target as sent: an origin form's is its path and query already
        return self.message.path

    @property
    def query(self) -> MultiMapping[str]:
        return self.message.url.query


def peer_address(peername: object) -> str | None:
    """The address in a transport's ``peername``, as aiohttp's ``request.remote`` gives it."""
    if peername is None:
        return None
    if isinstance(peername, list | tuple):
        return str(peername[0])
    return str(peername)
