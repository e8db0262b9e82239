"""The image answer on the hot path.

aiohttp (on Python < 3.12.9) joins the header block and the body into one new buffer before
writing: for a 1 MB image that is a 1 MB copy on every hit. A large body is sent after its
headers instead, straight from the cached bytes; when the memory front also holds it in a
memory file, the kernel takes it from there with sendfile, and only what the socket does not
take at once is written the ordinary way. The headers leave in the body's first segment instead
of a small packet of their own that the client must wake up for (nginx's ``tcp_nopush``): the
socket is corked from the headers to the end of the body.

``send_image`` writes the same answer straight to a connection's transport, for the fast lane's
answers made where the request was parsed (``proxy.web.protocol``). It holds the headers back
with ``MSG_MORE`` on their own send instead of corking around the answer: two system calls fewer
a hit, and the uncorking push was a fifth of a 1 MB hit's CPU.

``StoredImageResponse`` answers with an image too large for the memory front, its body left in
the store's own file (``proxy.cache.bodyfile.StoredBody``): the same headers, then the body sent
from that file (``proxy.web.sendfile``), corked the same way; the file is closed when the answer
ends, however it ends (sent, a HEAD, the client gone, an error)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter

from proxy.cache.bodyfile import BodyFile, StoredBody
from proxy.web.protocol import socket_for
from proxy.web.sendfile import send_range

SEPARATE_FROM = 16 * 1024  # below this, one write of headers + body is cheaper than two


class ImageResponse(web.Response):
    def __init__(self, body: bytes, headers: Mapping[str, str], file: BodyFile | None = None):
        super().__init__(body=body, headers=headers)
        # aiohttp's switch between buffering the headers (to join them with the body) and sending them at once
        self._send_headers_immediately = len(body) >= SEPARATE_FROM
        self._file = file if file is not None and file.size == len(body) else None
        self._request: web.BaseRequest | None = None
        self._sock: socket.socket | None = None  # the connection's socket, asked for once
        self._corked = False

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        self._request = request
        if self._file is not None and request.method == hdrs.METH_GET and self.status == 200:
            self._sock = socket_for(request)
            self._corked = BodyFile.cork(self._sock, True)
        return await super().prepare(request)

    async def write_eof(self, data: bytes = b"") -> None:
        transport = self._request.transport if self._request is not None else None
        try:
            await self._write_eof(data)
        finally:
            if self._corked and transport is not None and not transport.is_closing():  # the fd is still ours
                BodyFile.cork(self._sock, False)
            self._corked, self._sock = False, None

    async def _write_eof(self, data: bytes) -> None:
        request, file, body = self._request, self._file, self.body
        self._file = self._request = None
        if (file is None or request is None or request.method == hdrs.METH_HEAD or self.status != 200
                or not isinstance(body, bytes) or self.prepared is False):
            return await super().write_eof(data)
        sent = file.send_into(request.transport, self._sock)
        if not sent:
            return await super().write_eof(data)
        request.writer.output_size += sent  # counted like any written byte (access log, metrics)
        if sent < len(body):
            await web.StreamResponse.write(self, memoryview(body)[sent:])
        await web.StreamResponse.write_eof(self)


class StoredImageResponse(web.StreamResponse):
    def __init__(self, body: StoredBody, headers: Mapping[str, str]):
        super().__init__(headers=headers)
        self.content_length = body.length
        self.body_file = body
        self._request: web.BaseRequest | None = None
        self._writer: AbstractStreamWriter | None = None
        self._sock: socket.socket | None = None
        self._corked = False

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        try:
            if request.method == hdrs.METH_GET and not self.prepared:
                self._sock = socket_for(request)
                self._corked = BodyFile.cork(self._sock, True)
                self._request = request
            self._writer = await super().prepare(request)
        except BaseException:
            self._done(request.transport)
            raise
        return self._writer

    async def write_eof(self, data: bytes = b"") -> None:
        request, writer, self._request = self._request, self._writer, None
        transport = request.transport if request is not None else None
        try:
            if request is not None and writer is not None:
                await send_range(writer, transport, self._sock, self.body_file)
            await super().write_eof(data)
        finally:
            self._done(transport)

    def _done(self, transport: asyncio.BaseTransport | None) -> None:
        if self._corked and transport is not None and not transport.is_closing():  # the fd is still ours
            BodyFile.cork(self._sock, False)
        self._corked, self._sock = False, None
        self.body_file.close()


def send_image(transport: asyncio.Transport, head: bytes, body: bytes, file: BodyFile | None,
               sock: socket.socket | None) -> None:
    """The header block ``head`` and ``body`` written to ``transport``: one write for a small body;
    a large one from ``file`` with sendfile when the front holds one, the headers held back for
    the body's first segment (``BodyFile.send_into``), else both in one gathered write.
    ``sock``: the connection's socket (``socket_for``), None under TLS."""
    if len(body) < SEPARATE_FROM:
        transport.write(head + body)
        return
    sent = file.send_into(transport, sock, head) if file is not None and sock is not None else 0
    if sent < len(head):
        transport.writelines((memoryview(head)[sent:], body) if sent else (head, body))
    elif sent - len(head) < len(body):
        transport.write(memoryview(body)[sent - len(head):])
