"""The uploader interface, and the HTTP plumbing every host shares.

An uploader makes one attempt: it posts the image as multipart and returns the hosted URL, or
raises ``UploadError`` with a reason safe to show (never a key, an auth code or a host's body)."""

from __future__ import annotations

import mimetypes
import re
from typing import Any, Protocol

import aiohttp
from yarl import URL

from proxy.config.hosting import HostingSettings
from proxy.upstream.errors import UpstreamError
from proxy.upstream.transport import parse_json, read_capped, request, timeout

_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif",
               "image/bmp": "bmp", "image/tiff": "tiff", "image/avif": "avif"}


class UploadError(UpstreamError):
    """One upload attempt failed; ``retryable`` says whether trying again at once may help."""

    def __init__(self, reason: str, *, backend: str = "", retryable: bool = True):
        super().__init__(reason, backend=backend)
        self.retryable = retryable


class Uploader(Protocol):
    name: str

    async def upload(self, data: bytes, filename: str, content_type: str) -> str:
        """The hosted URL of ``data`` (one attempt)."""
        ...


class HttpUploader:
    """Shared by the hosts: a multipart POST with timeouts and a capped, parsed JSON answer."""

    name = "host"
    field = "file"

    def __init__(self, settings: HostingSettings, session: aiohttp.ClientSession):
        self.settings = settings
        self.session = session
        self.limits = timeout(settings.timeout, settings.connect_timeout)

    async def post(self, url: str | URL, data: bytes, filename: str, content_type: str, *,
                   expect: type, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """The HTTP status and the JSON answer, which must be an ``expect`` (dict or list)."""
        form = aiohttp.FormData()
        form.add_field(self.field, data, filename=filename, content_type=content_type)
        async with request(self.session, "POST", str(url), label=self.name, limits=self.limits,
                           data=form, headers=headers or {}) as resp:
            body = await read_capped(resp, self.settings.max_answer_bytes, label=self.name)
            status = resp.status
        if status == 429 or status >= 500:
            raise UploadError(f"HTTP {status}", backend=self.name)
        try:
            answer = parse_json(body, label=self.name)
        except UpstreamError:
            if status >= 400:
                raise self.refused(status) from None
            raise
        if not isinstance(answer, expect):
            if status >= 400:
                raise self.refused(status)
            raise UploadError(f"answer is not a JSON {expect.__name__}", backend=self.name)
        return status, answer

    def refused(self, status: int, reason: str = "") -> UploadError:
        """A 4xx or an explicit refusal: the same upload will not succeed if repeated at once."""
        return UploadError(f"HTTP {status}{f' ({reason})' if reason else ''}", backend=self.name,
                           retryable=False)

    def hosted(self, value: Any, base: URL | None = None) -> str:
        """``value`` as an absolute http(s) URL safe to send in a Location header."""
        if not isinstance(value, str) or not value or _UNSAFE.search(value):
            raise UploadError("answer has no usable image URL", backend=self.name)
        try:
            url = base.join(URL(value)) if base is not None else URL(value)
        except ValueError:
            raise UploadError("answer has no usable image URL", backend=self.name) from None
        if url.scheme not in ("http", "https") or not url.host:
            raise UploadError("answer has no usable image URL", backend=self.name)
        return str(url)


def extension(content_type: str) -> str:
    """The file extension of the real image format (read from the bytes upstream)."""
    known = _EXTENSIONS.get(content_type)
    if known:
        return known
    guessed = mimetypes.guess_extension(content_type) or ".bin"
    return guessed.lstrip(".")


def filename_for(key: str, content_type: str) -> str:
    return f"iris-{key[:32]}.{extension(content_type)}"
