"""Pollinations (image.pollinations.ai or a stand-in): GET /prompt/{prompt}?width&height&seed&model
(and its own parameters: ``image`` for image-to-image, which it fetches itself, ``quality``, ...)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode

import aiohttp

from proxy.config.backends import BackendSpec
from proxy.config.image import UpstreamTimeouts
from proxy.upstream import transport
from proxy.upstream.openai import ImageJob


def pollinations_url(base: str, job: ImageJob, extra: Mapping[str, str]) -> str:
    query: dict[str, str] = {"width": str(job.width), "height": str(job.height), "nologo": "true"}
    if job.seed is not None:
        query["seed"] = str(job.seed)
    if job.model:
        query["model"] = job.model
    if job.negative_prompt:
        query["negative_prompt"] = job.negative_prompt
    if job.quality:
        query["quality"] = job.quality
    query.update(extra)
    return f"{base.rstrip('/')}/prompt/{quote(job.prompt, safe='')}?{urlencode(query)}"


class PollinationsClient:
    def __init__(self, session: aiohttp.ClientSession, timeouts: UpstreamTimeouts):
        self.session = session
        self.timeouts = timeouts

    async def generate_image(self, spec: BackendSpec, job: ImageJob,
                             extra: Mapping[str, str] | None = None) -> bytes:
        return await self.fetch(pollinations_url(spec.url, job, extra or {}), label=spec.label)

    async def fetch(self, url: str, *, label: str) -> bytes:
        """Download an image from Pollinations (as configured), capped and timed."""
        t = self.timeouts
        return await transport.get_bytes(self.session, url, label=label, total=t.backend,
                                    connect=t.connect, cap=t.fetch_max_bytes)
