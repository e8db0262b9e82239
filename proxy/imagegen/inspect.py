"""Whatever a backend sends must decode as an image before it is served or cached."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from proxy.upstream.errors import UpstreamError


def image_type(data: bytes, label: str = "") -> str:
    """The MIME type read from the bytes themselves; ``UpstreamError`` if they are no image."""
    if not data:
        raise UpstreamError("empty image", backend=label)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format
                img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UpstreamError("answer is not a decodable image", backend=label) from None
    mime = Image.MIME.get(fmt or "")
    if not mime:
        raise UpstreamError(f"unsupported image format {fmt}", backend=label)
    return mime
