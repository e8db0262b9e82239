"""Large cached bodies also kept in an anonymous memory file (memfd), so a hit can hand them to
the kernel with sendfile instead of copying them through a socket write.

Only Linux has memfd; elsewhere (or when it fails) there is simply no file and hits are written
as usual. The file is RAM, not disk: writing it never waits on a device."""

from __future__ import annotations

import asyncio
import os
import socket
import weakref

FILE_FROM = 256 * 1024  # smaller bodies gain nothing from sendfile
TCP_CORK = getattr(socket, "TCP_CORK", None)  # Linux only


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

    def send_into(self, transport: asyncio.Transport | None, sock: socket.socket | None = None) -> int:
        """Bytes sendfile moved to the client now (maybe all, maybe none). Only on a plain socket
        whose transport has nothing buffered, so the bytes land right after the headers. It never
        waits: whatever the socket does not take at once is written the ordinary way. ``sock``:
        the transport's socket, when the caller already has it (``socket_of``)."""
        if not self._close.alive or transport is None or transport.is_closing():
            return 0  # a closed file's descriptor number may already belong to something else
        sock = sock or self.socket_of(transport)
        if sock is None or transport.get_write_buffer_size():
            return 0
        try:
            return os.sendfile(sock.fileno(), self.fd, 0, self.size)
        except OSError:  # would block, or a broken connection the ordinary write will report
            return 0

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
