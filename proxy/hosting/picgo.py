"""PicGo / Chevereto-style hosts: ``POST {IMAGE_HOSTING_URL}``, multipart field ``source``,
header ``X-API-Key``; the answer is ``{status_code: 200, image: {url}}``."""

from __future__ import annotations

from proxy.hosting.base import HttpUploader
from proxy.upstream.errors import short_code


class PicgoUploader(HttpUploader):
    name = "picgo"
    field = "source"

    async def upload(self, data: bytes, filename: str, content_type: str) -> str:
        status, answer = await self.post(self.settings.url, data, filename, content_type, expect=dict,
                                         headers={"X-API-Key": self.settings.key or ""})
        code = answer.get("status_code", status)
        if status >= 400 or code != 200:
            error = answer.get("error")
            reason = short_code(error.get("code")) if isinstance(error, dict) else ""
            raise self.refused(code if isinstance(code, int) else status, reason)
        image = answer.get("image")
        return self.hosted(image.get("url") if isinstance(image, dict) else None)
