"""Frames as they arrive: a multipart file field (/process) or a base64 data URL (/analyze).

Decoding and checking happen on the threads of ``FrameChecks``, where the frames of concurrent
users decode in parallel with each other and with the event loop, at most ``VISION_DECODE_THREADS``
at once per worker: a few large images sent together cannot take all the memory and CPU (others
wait their turn). The exception is a plain JPEG of at most
``INLINE_BYTES`` that is the only frame this worker has in flight (``Intake``): nobody waits
behind it, so it is checked right on the event loop (in C, 0.3-0.6 ms after a second idle, the
glasses' usual pace; see ``proxy.vision.jpeg``) instead of paying two thread hand-overs on top
(0.3-0.5 ms)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager

from proxy.config.vision import VisionSettings
from proxy.errors import BadRequest, PayloadTooLarge
from proxy.vision.frames import Frame, prepare, quick

_DATA_URL = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,", re.IGNORECASE)
INLINE_BYTES = 128 * 1024


class Intake:
    """How many frames this worker is answering right now."""

    def __init__(self) -> None:
        self.active = 0

    @contextmanager
    def entered(self) -> Iterator[None]:
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1

    @property
    def alone(self) -> bool:
        return self.active <= 1


class FrameChecks:
    """The threads frames are checked on: at most ``threads`` at once (the rest wait)."""

    def __init__(self, threads: int):
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="frames")

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


async def frame_from_bytes(data: bytes, cfg: VisionSettings, max_bytes: int, *,
                           inline: bool = False, pool: Executor | None = None) -> Frame:
    """``inline``: the caller's frame is alone, so a small plain JPEG may be checked right here;
    anything else is checked on ``pool`` (``FrameChecks.pool``; the loop's default without one)."""
    _check_size(len(data), max_bytes)
    if inline and len(data) <= INLINE_BYTES:
        frame = quick(data, cfg)
        if frame is not None:
            return frame
    return await asyncio.get_running_loop().run_in_executor(pool, prepare, data, cfg)


async def frame_from_data_url(text: str, cfg: VisionSettings, max_bytes: int, *,
                              pool: Executor | None = None) -> Frame:
    return await asyncio.get_running_loop().run_in_executor(pool, _from_data_url, text, cfg, max_bytes)


def _from_data_url(text: str, cfg: VisionSettings, max_bytes: int) -> Frame:
    match = _DATA_URL.match(text)
    encoded = text[match.end():] if match else text
    _check_size(len(encoded) * 3 // 4, max_bytes)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest('"image" must be a base64 data URL (data:image/...;base64,...)',
                         code="not_an_image") from None
    _check_size(len(data), max_bytes)
    return prepare(data, cfg)


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise PayloadTooLarge(f"the image is larger than {max_bytes} bytes", code="image_too_large")
    if size == 0:
        raise BadRequest("the image is empty", code="not_an_image")
