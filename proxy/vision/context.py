"""Builds the vision service: the cascade over the shared session, breakers, the dedup store."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from proxy.keys import DATABASE, HTTP, SETTINGS, VISION
from proxy.shared.dedup import shared_dedup
from proxy.upstream.openai import OpenAIClient
from proxy.vision.asking import Asker
from proxy.vision.breakers import Breakers
from proxy.vision.cascade import Cascade
from proxy.vision.dedup import MemoryDedup
from proxy.vision.records import Recorder
from proxy.vision.service import VisionService


async def vision_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    cfg = settings.vision
    asker = Asker(OpenAIClient(app[HTTP], settings.image.timeouts), Breakers(settings.image.breaker),
                  cfg.max_tokens)
    dedup = shared_dedup(app, MemoryDedup(), cfg.dedup_seconds)  # REDIS_URL: shared
    service = VisionService(Cascade(asker, cfg), dedup, cfg, Recorder(app[DATABASE]))
    app[VISION] = service
    yield
    await service.later.close()
    await dedup.close()
