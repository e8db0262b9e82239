"""Builds the image pipeline: the backend pool (or Pollinations as the pool), the prompt LLM and
the fallback, all over the shared session and circuit breaker."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.config.backends import BackendSpec
from proxy.config.image import ImageSettings
from proxy.imagegen.pipeline import ImagePipeline
from proxy.imagegen.prompts import PromptLLM
from proxy.keys import BREAKER, HTTP, PIPELINE, SETTINGS, STORE
from proxy.upstream.answer_urls import AnswerFetcher
from proxy.upstream.breaker import Breaker
from proxy.upstream.openai import OpenAIClient
from proxy.upstream.pollinations import PollinationsClient
from proxy.upstream.pool import BackendPool

log = logging.getLogger(__name__)


def pollinations_spec(cfg: ImageSettings) -> BackendSpec:
    return BackendSpec(url=cfg.pollinations_url, name="pollinations", kind="pollinations")


async def image_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    cfg = settings.image
    breaker = Breaker(cfg.breaker)
    openai = OpenAIClient(app[HTTP], cfg.timeouts)
    pollinations = PollinationsClient(app[HTTP], cfg.timeouts)
    if cfg.pollinations_is_pool:
        log.warning("BACKEND_API_URLS is empty: Pollinations (%s) is the image pool", cfg.pollinations_url)
        pool = BackendPool("pollinations", [pollinations_spec(cfg)], breaker)
        fallback = None
    else:
        pool = BackendPool("backends", cfg.backends, breaker)
        fallback = pollinations_spec(cfg) if cfg.pollinations_fallback else None
    llm_spec = cfg.llm.backend
    llm_pool = BackendPool("prompt LLM", [llm_spec] if llm_spec else [], breaker)
    prompts = PromptLLM(cfg.llm, llm_pool, openai, app[STORE], timeout=cfg.timeouts.llm,
                        memo_ttl=settings.cache.enhance_ttl)
    app[BREAKER] = breaker
    answers = AnswerFetcher(app[HTTP], cfg.timeouts)
    app[PIPELINE] = ImagePipeline(cfg, pool, fallback, openai, pollinations, answers, prompts)
    yield
