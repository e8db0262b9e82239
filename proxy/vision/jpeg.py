"""The glasses' own frames, read by libjpeg-turbo in C (simplejpeg) instead of Pillow.

Almost every frame is a plain JPEG that is sent as it is and only needs checking and a dHash.
Pillow reads a JPEG's markers in Python before its decoder starts, which after a second idle
costs as much as the decode itself; here the header is one C call and the decode one more, at
1/8 scale (libjpeg still reads every coefficient, so a damaged frame is still caught). Anything
unusual - not a JPEG, CMYK, an orientation tag, a decoder warning - is left to Pillow (``None``),
which then decides exactly as before."""

from __future__ import annotations

import simplejpeg
from PIL import Image

SOI = b"\xff\xd8"
COLOUR = frozenset({"YCbCr", "Gray", "RGB"})  # sent as they are (Pillow: modes RGB and L)
ORIENTATION_SIGNS = (b"Exif\x00\x00", b"Orientation")  # EXIF, or XMP's tiff:Orientation


def plain_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` of a JPEG in ordinary colour with no orientation to apply, else ``None``."""
    if not data.startswith(SOI) or any(sign in data for sign in ORIENTATION_SIGNS):
        return None
    try:
        height, width, colourspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    return (width, height) if colourspace in COLOUR else None


def grey_thumbnail(data: bytes, min_width: int, min_height: int) -> Image.Image | None:
    """The frame decoded in grey at the smallest scale at least ``min_width`` x ``min_height``
    (1/8 for any glasses frame), or ``None`` when libjpeg complains."""
    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace="GRAY", min_width=min_width, min_height=min_height)
    except ValueError:
        return None
    height, width = pixels.shape[:2]
    return Image.frombuffer("L", (width, height), pixels.tobytes(), "raw", "L", 0, 1)
