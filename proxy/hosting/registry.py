"""The uploaders by ``IMAGE_HOSTING_PROVIDER`` name."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from proxy.config.hosting import HostingSettings
from proxy.hosting.base import Uploader
from proxy.hosting.cloudflare_imgbed import CloudflareImgbedUploader
from proxy.hosting.picgo import PicgoUploader
from proxy.hosting.smms import SmmsUploader

UPLOADERS: dict[str, Callable[[HostingSettings, aiohttp.ClientSession], Uploader]] = {
    "smms": SmmsUploader,
    "picgo": PicgoUploader,
    "cloudflare_imgbed": CloudflareImgbedUploader,
}


def make_uploader(settings: HostingSettings, session: aiohttp.ClientSession) -> Uploader:
    return UPLOADERS[settings.provider](settings, session)
