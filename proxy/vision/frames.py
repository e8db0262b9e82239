"""Checking a frame and preparing it for the providers (``proxy.vision.uploads`` says where it runs).

A frame that is already a JPEG within ``max_side`` and of a reasonable size is sent as it is (the
glasses send 256-720 px JPEGs: re-encoding those would cost CPU and quality for nothing); such a
plain JPEG is checked and hashed by libjpeg-turbo directly (``quick``, see ``proxy.vision.jpeg``).
Anything else is decoded by Pillow, turned upright, downscaled so its longest side is ``max_side``
and re-encoded as JPEG. Every frame gets a 64-bit difference hash (dHash) for spotting repeated
scenes, from a grey decode at 1/8 scale or the nearest libjpeg offers.

Large images are what costs: the pixel cap is checked from the header, before any decode; a JPEG
is decoded at the smallest scale libjpeg offers that still covers ``max_side``; any other image is
shrunk right after decoding, before it is turned upright or converted, so at most one full-size
copy exists; and after a decode of ``GIVE_BACK_FROM`` pixels or more the freed memory is given
back to the system (``proxy.memory``). How many decodes run at once is ``proxy.vision.uploads``'s."""

from __future__ import annotations

import base64
import io
import itertools
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from proxy.config.vision import VisionSettings
from proxy.errors import BadRequest, PayloadTooLarge
from proxy.memory import give_back
from proxy.vision import jpeg

ORIENTATION = 0x0112
HASH_SIZE = 8
HASH_SOURCE = ((HASH_SIZE + 1) * 4, HASH_SIZE * 4)  # the least a decode for the hash may give
GIVE_BACK_FROM = 4_000_000  # pixels
PALETTE_TO = {"1": "L", "P": "RGB", "PA": "RGBA"}  # modes Pillow can only shrink by dropping pixels


@dataclass(frozen=True)
class Frame:
    jpeg: bytes
    width: int
    height: int
    dhash: int

    def data_url(self) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(self.jpeg).decode("ascii")


def prepare(data: bytes, cfg: VisionSettings) -> Frame:
    """The frame checked and ready to send (400 when it is not a readable image, 413 when too big)."""
    return quick(data, cfg) or _with_pillow(data, cfg)


def quick(data: bytes, cfg: VisionSettings) -> Frame | None:
    """A plain JPEG that is sent as it is, checked and hashed by libjpeg-turbo; ``None`` for the rest."""
    size = jpeg.plain_size(data)
    if size is None:
        return None
    _check_pixels(*size, cfg)
    if not _fits(size, len(data), cfg):
        return None
    grey = jpeg.grey_thumbnail(data, *HASH_SOURCE)
    return None if grey is None else Frame(data, *size, _dhash(grey))


def _with_pillow(data: bytes, cfg: VisionSettings) -> Frame:
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        _check_pixels(width, height, cfg)
        if _sendable(image, data, cfg):
            return Frame(data, width, height, _dhash(image))
        try:
            return _reencode(image, cfg)
        finally:
            image.close()  # its pixels are freed now, before the memory is given back
            if width * height >= GIVE_BACK_FROM:
                give_back()
    except Image.DecompressionBombError:
        raise PayloadTooLarge(f"the image has more than {cfg.max_pixels} pixels",
                              code="too_many_pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise BadRequest("the upload is not a readable image", code="not_an_image") from None


def _check_pixels(width: int, height: int, cfg: VisionSettings) -> None:
    if width * height > cfg.max_pixels:
        raise PayloadTooLarge(f"the image has more than {cfg.max_pixels} pixels", code="too_many_pixels")


def _sendable(image: Image.Image, data: bytes, cfg: VisionSettings) -> bool:
    """A JPEG already upright, small enough and at most 2 bits a pixel of the largest frame."""
    return (image.format == "JPEG" and image.mode in ("RGB", "L")
            and _fits(image.size, len(data), cfg)
            and image.getexif().get(ORIENTATION, 1) == 1)


def _fits(size: tuple[int, int], length: int, cfg: VisionSettings) -> bool:
    return max(size) <= cfg.max_side and length <= cfg.max_side * cfg.max_side // 4


def _reencode(image: Image.Image, cfg: VisionSettings) -> Frame:
    image.draft("RGB", (cfg.max_side, cfg.max_side))  # a JPEG is decoded at 1/2 to 1/8 scale
    small = image.convert(PALETTE_TO[image.mode]) if image.mode in PALETTE_TO else image
    small.thumbnail((cfg.max_side, cfg.max_side), Image.Resampling.LANCZOS)  # first, in place
    upright = ImageOps.exif_transpose(small).convert("RGB")
    out = io.BytesIO()
    upright.save(out, "JPEG", quality=cfg.jpeg_quality, optimize=False)
    return Frame(out.getvalue(), upright.width, upright.height, _dhash(upright))


def _dhash(image: Image.Image) -> int:
    """Difference hash: 8x9 grey thumbnail, one bit a pixel for "brighter than its right neighbour"."""
    if image.format == "JPEG":
        image.draft("L", HASH_SOURCE)
    grey = image if image.mode == "L" else image.convert("L")
    small = grey.resize((HASH_SIZE + 1, HASH_SIZE), Image.Resampling.BOX)
    pixels = small.tobytes()
    bits = 0
    for row in range(HASH_SIZE):
        line = pixels[row * (HASH_SIZE + 1):(row + 1) * (HASH_SIZE + 1)]
        for left, right in itertools.pairwise(line):
            bits = (bits << 1) | (left > right)
    return bits


def distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()
