"""Large cached bodies in files, so a hit can hand them to the kernel with sendfile instead of
copying them through a socket write: ``BodyFile``, an anonymous memory file (memfd) the memory
front keeps beside a large body it holds, and ``StoredBody``, the body of an entry too large for
the front, left in the store's own file of the value (``ValueFile``).

Only Linux has memfd; elsewhere (or when it fails) there is simply no memory file and hits are
written as usual. That file is RAM, not disk: writing it never waits on a device."""

from __future__ import annotations

import asyncio
import os
import socket
import weakref
from collections.abc import Callable

from proxy.cache.stores.base import ValueFile

FILE_FROM = 256 * 1024  # smaller bodies gain nothing from sendfile
TCP_CORK = getattr(socket, "TCP_CORK", None)  # Linux only
MSG_MORE = getattr(socket, "MSG_MORE", 0)  # Linux only, as memfd: there is no file without it


class BodyFile:
    def __init__(self, fd: int, size: int):
        self.fd = fd
        self.size = size
        self._close = weakref.finalize(self, os.close, fd)  # closed with its last reference at the latest

    @classmethod
    def of(cls, body: bytes) -> BodyFile | None:
        if len(body) < FILE_FROM or not hasattr(os, "memfd_create"):
            return None
        try:
            fd = os.memfd_create("iris-body", os.MFD_CLOEXEC)
        except OSError:
            return None
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view):]
        except OSError:
            os.close(fd)
            return None
        return cls(fd, len(body))

    def send_into(self, transport: asyncio.Transport | None, sock: socket.socket | None = None,
                  head: bytes = b"") -> int:
        """Bytes the socket took now (maybe all, maybe none): ``head`` (an answer's header block)
        if given, then the file with sendfile. Only on a plain socket whose transport has nothing
        buffered, so the bytes land in order. It never waits: whatever the socket does not take
        at once is written the ordinary way. ``sock``: the transport's plain socket (``head`` is
        sent only on one given), else the file is sent on the one ``socket_of`` finds.

        ``head`` goes out with ``MSG_MORE``, so the kernel holds it for the body's first segment:
        nginx's ``tcp_nopush`` without the two ``TCP_CORK`` calls around the answer, whose
        uncorking push cost a fifth of a 1 MB answer's CPU."""
        if not self._close.alive or transport is None or transport.is_closing():
            return 0  # a closed file's descriptor number may already belong to something else
        if sock is None and not head:
            sock = self.socket_of(transport)  # (the loop's own: not one to send on)
        if sock is None or transport.get_write_buffer_size():
            return 0
        taken = 0
        try:
            if head:
                taken = sock.send(head, MSG_MORE)
                if taken < len(head):
                    return taken
            return taken + os.sendfile(sock.fileno(), self.fd, 0, self.size)
        except OSError:  # would block, or a broken connection the ordinary write will report
            return taken

    @staticmethod
    def cork(sock: socket.socket | None, on: bool) -> bool:
        """Hold back (``on``) or let go the socket's partial segments around a send from this
        file, as nginx's ``tcp_nopush``; True when the socket took it."""
        if sock is None or TCP_CORK is None:
            return False
        try:
            sock.setsockopt(socket.IPPROTO_TCP, TCP_CORK, int(on))
        except OSError:  # a connection already gone
            return False
        return True

    @staticmethod
    def socket_of(transport: asyncio.Transport | None) -> socket.socket | None:
        """The plain socket sendfile may write to, if the transport has one (asking the event loop
        for it builds a socket object each time: a response asks once)."""
        if transport is None or transport.is_closing() or transport.get_extra_info("sslcontext"):
            return None
        sock: socket.socket | None = transport.get_extra_info("socket")
        return sock

    def close(self) -> None:
        self._close()


class StoredBody:
    """An entry's body left in the store's file of its value: ``length`` bytes from ``offset``.

    Open until ``close`` (once: again does nothing), which ``on_close`` hears of; a close that
    comes while a read is under way on its thread (its reader cancelled, a client gone) waits for
    that read, so the descriptor is never closed under it. Should a path drop it unclosed, it is
    closed with its last reference, and ``on_close`` hears that it was dropped (a bug to report)."""

    def __init__(self, value: ValueFile, offset: int, on_close: Callable[[bool], None]):
        self.value = value
        self.offset = offset
        self.length = value.size - offset
        self.closing = False
        self._reading = 0
        self._close = weakref.finalize(self, _close_value, value, on_close, True)

    def fileno(self) -> int:
        return self.value.fileno()

    async def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes of the body from ``offset`` in it, read on a thread."""
        if self.closing:
            raise ValueError("the stored body was closed")
        size = max(0, min(size, self.length - offset))
        loop = asyncio.get_running_loop()
        read = loop.run_in_executor(None, self.value.read_at, self.offset + offset, size)
        self._reading += 1
        read.add_done_callback(self._read_done)
        return await asyncio.shield(read)  # cancelled, the read still ends before the file closes

    async def read(self) -> bytes:
        """The whole body."""
        return await self.read_at(0, self.length)

    def _read_done(self, read: asyncio.Future[bytes]) -> None:
        self._reading -= 1
        if not read.cancelled():
            read.exception()  # seen by its reader, or by nobody once it was cancelled
        if self.closing and not self._reading:
            self._closed()

    @property
    def closed(self) -> bool:
        return not self._close.alive

    def close(self) -> None:
        self.closing = True
        if not self._reading:
            self._closed()

    def _closed(self) -> None:
        detached = self._close.detach()
        if detached is not None:
            _, close, (value, on_close, _), _ = detached
            close(value, on_close, False)


def _close_value(value: ValueFile, on_close: Callable[[bool], None], dropped: bool) -> None:
    value.close()
    on_close(dropped)
