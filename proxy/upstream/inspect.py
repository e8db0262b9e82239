"""Whatever an upstream sends as an image (a backend's answer, a fetched URL, an image host's copy)
must decode as an image before it is served or cached, and a backend's answer must be of a sensible
size: a few kB of PNG may declare tens of millions of pixels, which every later decode (the
dashboard's thumbnails, the browsers that show it) would pay for. Checking reads the header and
the chunks' checksums, never the pixels."""

from __future__ import annotations

import asyncio
import io
import warnings

from PIL import Image, UnidentifiedImageError

from proxy.upstream.errors import UpstreamError

INLINE_CHECK_BYTES = 64 * 1024


def image_type(data: bytes, label: str = "", max_pixels: int | None = None) -> str:
    """The MIME type read from the bytes themselves; ``UpstreamError`` if they are no image, or
    one of more than ``max_pixels`` pixels."""
    if not data:
        raise UpstreamError("empty image", backend=label)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format
                if max_pixels is not None and img.width * img.height > max_pixels:
                    raise UpstreamError(f"answer is an image of {img.width}x{img.height} pixels, more "
                                        f"than the {max_pixels} allowed", backend=label)
                img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UpstreamError("answer is not a decodable image", backend=label) from None
    mime = Image.MIME.get(fmt or "")
    if not mime:
        raise UpstreamError(f"unsupported image format {fmt}", backend=label)
    return mime


async def checked_image_type(data: bytes, label: str = "", max_pixels: int | None = None) -> str:
    """``image_type`` off the event loop for large bodies (a small one costs tens of microseconds:
    not worth a thread hop)."""
    if len(data) <= INLINE_CHECK_BYTES:
        return image_type(data, label, max_pixels)
    return await asyncio.get_running_loop().run_in_executor(None, image_type, data, label, max_pixels)
