"""Frames as they arrive: a multipart file field (/process) or a base64 data URL (/analyze).
Reading, decoding and checking all happen off the event loop."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from typing import IO

from proxy.config.cascade import CascadeSettings
from proxy.errors import BadRequest, PayloadTooLarge
from proxy.vision.frames import Frame, prepare

_DATA_URL = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,", re.IGNORECASE)


async def frame_from_file(file: IO[bytes], cfg: CascadeSettings, max_bytes: int) -> Frame:
    return await asyncio.get_running_loop().run_in_executor(None, _from_file, file, cfg, max_bytes)


async def frame_from_bytes(data: bytes, cfg: CascadeSettings, max_bytes: int) -> Frame:
    return await asyncio.get_running_loop().run_in_executor(None, _from_bytes, data, cfg, max_bytes)


async def frame_from_data_url(text: str, cfg: CascadeSettings, max_bytes: int) -> Frame:
    return await asyncio.get_running_loop().run_in_executor(None, _from_data_url, text, cfg, max_bytes)


def _from_file(file: IO[bytes], cfg: CascadeSettings, max_bytes: int) -> Frame:
    size = file.seek(0, 2)
    file.seek(0)
    _check_size(size, max_bytes)
    return prepare(file.read(), cfg)


def _from_bytes(data: bytes, cfg: CascadeSettings, max_bytes: int) -> Frame:
    _check_size(len(data), max_bytes)
    return prepare(data, cfg)


def _from_data_url(text: str, cfg: CascadeSettings, max_bytes: int) -> Frame:
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
