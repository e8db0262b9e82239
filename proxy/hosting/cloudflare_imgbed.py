"""Cloudflare ImgBed: ``POST {IMAGE_HOSTING_URL}?authCode=...``, multipart field ``file``; the
answer is ``[{"src": "/file/<name>"}]``, relative to the upload URL's origin."""

from __future__ import annotations

from yarl import URL

from proxy.hosting.base import HttpUploader, UploadError


class CloudflareImgbedUploader(HttpUploader):
    name = "cloudflare_imgbed"
    field = "file"

    async def upload(self, data: bytes, filename: str, content_type: str) -> str:
        base = URL(self.settings.url)
        target = base.update_query(authCode=self.settings.auth_code) if self.settings.auth_code else base
        status, answer = await self.post(target, data, filename, content_type, expect=list)
        if status >= 400:
            raise self.refused(status)
        if not answer or not isinstance(answer[0], dict):
            raise UploadError("answer is not a list of files", backend=self.name)
        return self.hosted(answer[0].get("src"), base.origin())
