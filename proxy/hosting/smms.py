"""sm.ms: ``POST /api/v2/upload``, multipart field ``smfile``, header ``Authorization: <token>``.

It answers ``{success, code, message, data: {url}}``; an image uploaded before is
``success: false, code: "image_repeated"`` with the existing URL in ``images``."""

from __future__ import annotations

from typing import Any

from proxy.hosting.base import HttpUploader
from proxy.upstream.errors import short_code


class SmmsUploader(HttpUploader):
    name = "smms"
    field = "smfile"

    async def upload(self, data: bytes, filename: str, content_type: str) -> str:
        status, answer = await self.post(self.settings.url, data, filename, content_type, expect=dict,
                                         headers={"Authorization": self.settings.key or ""})
        if answer.get("success") is True:
            found = answer.get("data")
            return self.hosted(found.get("url") if isinstance(found, dict) else None)
        code = short_code(answer.get("code"))
        if code == "image_repeated":
            return self.hosted(_repeated_url(answer))
        raise self.refused(status, code or "success is false")


def _repeated_url(answer: dict[str, Any]) -> Any:
    images = answer.get("images")
    if isinstance(images, list) and images:  # seen from some mirrors: a list of URLs
        return images[0]
    return images
