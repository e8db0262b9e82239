"""A range of an open file sent as an answer's body: with sendfile, the kernel moving the bytes
from the page cache to the socket in as many calls as the socket takes, waiting for it in
between; where sendfile cannot be used (TLS, or a file it refuses), in chunks read on a thread and
written the ordinary way, never the whole range in memory at once.

asyncio's ``loop.sendfile`` does the first only on asyncio's own selector loop; uvloop, which Iris
runs on, does not implement it (aiohttp then falls back to reading chunks). So the socket is
watched here through a duplicate of its descriptor (an event loop refuses to watch a descriptor
one of its transports owns), which also keeps the socket and its number from being reused under
a call in progress should the connection close meanwhile. A wait for the socket also looks every
``CHECK_EVERY`` seconds whether the connection was closed on this side (a reset or a hang-up by
the client wakes it at once). As nginx's ``sendfile on``, a page not in the page cache is read
from the disk inside the call: the store asks the kernel to read the file ahead when a worker
first opens it in a while."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from typing import Protocol

from aiohttp.abc import AbstractStreamWriter

from proxy.web.protocol import IrisRequestHandler

log = logging.getLogger(__name__)
CHUNK = 256 * 1024  # bytes read and written at a time without sendfile
CHECK_EVERY = 1.0  # seconds between looks at the connection while the socket takes nothing
REFUSED = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EOVERFLOW})  # sendfile cannot do it


class FileRange(Protocol):
    """``length`` bytes from ``offset`` of an open file."""

    offset: int
    length: int

    def fileno(self) -> int: ...

    async def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes of the range from ``offset`` in it, read off the event loop."""
        ...


async def send_range(writer: AbstractStreamWriter, transport: asyncio.Transport | None,
                     sock: socket.socket | None, source: FileRange) -> None:
    """``source`` written to the connection after what ``writer`` wrote (the headers), counted in
    ``writer.output_size`` as every byte it writes. ``sock``: the transport's plain socket (None
    under TLS). ``ConnectionResetError`` when the connection is gone (or the file ended early,
    which leaves the answer short: the connection must close)."""
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the connection closed before the answer's body")
    done = await _sendfile(writer, transport, sock, source) if sock is not None else 0
    while done < source.length:
        chunk = await source.read_at(done, min(CHUNK, source.length - done))
        if not chunk:
            _short(source, done)
        await writer.write(chunk)  # which waits while the transport's buffer is full
        done += len(chunk)


async def _sendfile(writer: AbstractStreamWriter, transport: asyncio.Transport, sock: socket.socket,
                    source: FileRange) -> int:
    """Bytes sent with sendfile: all of them, or fewer where sendfile refused the file at once."""
    try:
        watch = _Watch(sock, transport)
    except OSError:  # the socket is gone already
        raise ConnectionResetError("the connection closed before the answer's body") from None
    done, length, fd, start = 0, source.length, source.fileno(), source.offset
    try:
        while done < length:
            if transport.is_closing():
                raise ConnectionResetError("the connection closed during the answer")
            if transport.get_write_buffer_size():  # what was written before (the headers) goes first
                await watch.flushed(transport)
                continue
            try:
                sent = os.sendfile(watch.fd, fd, start + done, length - done)
            except BlockingIOError:
                await watch.writable()
                continue
            except OSError as exc:
                if exc.errno in REFUSED and not done:
                    return 0  # a file sendfile cannot send: written the ordinary way
                raise ConnectionResetError(f"the connection failed ({exc.strerror})") from None
            if not sent:
                _short(source, done)
            done += sent
            writer.output_size += sent  # counted as every written byte (access log, metrics)
            if watch.connection is not None:
                watch.connection.wrote_around(sent)
            if done < length:
                await asyncio.sleep(0)  # others run between the socket's gulps
    finally:
        watch.close()
    return done


def _short(source: FileRange, done: int) -> None:
    log.warning("a stored file ended after %d of its %d bytes: the answer was cut short", done, source.length)
    raise ConnectionResetError("the file ended early")


class _Watch:
    """The socket's writability, through a duplicate of its descriptor. The Iris connection the
    transport belongs to, if it is one, hears of each wait and of the bytes each call moved: its send
    timeout (SEND_TIMEOUT, ``proxy.web.protocol``) resets a client that took none for that long,
    which wakes the wait at once."""

    def __init__(self, sock: socket.socket, transport: asyncio.Transport):
        self.loop = asyncio.get_running_loop()
        protocol = transport.get_protocol()
        self.connection = protocol if isinstance(protocol, IrisRequestHandler) else None
        self.fd = os.dup(sock.fileno())

    async def writable(self) -> None:
        """Until the socket takes bytes again (or ``CHECK_EVERY`` seconds passed)."""
        loop, connection = self.loop, self.connection
        waiter = loop.create_future()
        loop.add_writer(self.fd, _wake, waiter)
        check = loop.call_later(CHECK_EVERY, _wake, waiter)
        if connection is not None:
            connection.waits_around(True)
        try:
            await waiter
        finally:
            check.cancel()
            loop.remove_writer(self.fd)
            if connection is not None:
                connection.waits_around(False)

    async def flushed(self, transport: asyncio.Transport) -> None:
        """Until the transport wrote (some of) what it holds: a loop may keep a write for the end
        of its turn; what the socket did not take waits for it."""
        await asyncio.sleep(0)
        if transport.get_write_buffer_size() and not transport.is_closing():
            await self.writable()

    def close(self) -> None:
        os.close(self.fd)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
