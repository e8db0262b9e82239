"""A bounded retry with exponential backoff (and jitter) around one uploader."""

from __future__ import annotations

import asyncio
import logging
import random

from proxy.hosting.base import Uploader, UploadError
from proxy.upstream.errors import UpstreamError

log = logging.getLogger(__name__)


async def upload_with_retry(uploader: Uploader, data: bytes, filename: str, content_type: str, *,
                            attempts: int, backoff: float) -> str:
    """The hosted URL; the last ``UpstreamError`` once ``attempts`` are spent or one is final."""
    delay = backoff
    for attempt in range(1, attempts + 1):
        try:
            return await uploader.upload(data, filename, content_type)
        except UpstreamError as exc:
            final = isinstance(exc, UploadError) and not exc.retryable
            if final or attempt == attempts:
                raise
            log.info("upload to %s failed (%s), attempt %d of %d", uploader.name, exc.reason,
                     attempt, attempts)
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))
        delay *= 2
    raise AssertionError("unreachable: attempts >= 1")
