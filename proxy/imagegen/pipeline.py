"""The generation pipeline for one cache miss:

1. prompt enhancement (optional, never fatal);
2. the weighted pool, until a backend answers with a real image or enough refuse the content;
3. after refusals, the safety rewrite and another pass, up to DE_NSFW_MAX_ATTEMPTS times;
4. the Pollinations fallback with the most promising prompt.
It returns a cache entry: the image, or a failure naming every stage (kept only briefly, and not
at all when a stage failed for a reason that is not the prompt's: a backend cooling down, a wait
in Iris's own connection pool)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass

import aiohttp

from proxy.cache.entry import CacheEntry, failure_entry, image_entry
from proxy.cache.stores.base import ByteStore
from proxy.config import Settings
from proxy.config.backends import BackendSpec
from proxy.config.image import ImageSettings
from proxy.errors import UpstreamFailed
from proxy.imagegen.params import ImageRequest
from proxy.imagegen.prompts import PromptLLM
from proxy.upstream.breaker import Breaker
from proxy.upstream.errors import PoolExhausted, PoolRefused, UpstreamError
from proxy.upstream.guarded import GuardedFetcher
from proxy.upstream.inspect import checked_image_type
from proxy.upstream.openai import ImageJob, OpenAIClient
from proxy.upstream.pollinations import PollinationsClient
from proxy.upstream.pool import BackendPool

log = logging.getLogger(__name__)
LARGEST_ANSWER = 4  # an answer may have up to twice MAX_IMAGE_SIDE on each side (4 times its area)


@dataclass
class Attempt:
    """What happened so far to one request: the prompt to try next and the failed stages."""

    prompt: str
    failures: list[str]
    refused: bool = False
    transient: bool = False  # a stage failed for a reason that is not the prompt's


class ImagePipeline:
    def __init__(self, cfg: ImageSettings, pool: BackendPool, fallback: BackendSpec | None,
                 openai: OpenAIClient, pollinations: PollinationsClient, answers: GuardedFetcher,
                 prompts: PromptLLM):
        self.cfg = cfg
        self.pool = pool
        self.fallback = fallback
        self.openai = openai
        self.pollinations = pollinations
        self.answers = answers
        self.prompts = prompts

    @classmethod
    def open(cls, settings: Settings, session: aiohttp.ClientSession, memo: ByteStore,
             breaker: Breaker) -> ImagePipeline:
        """The backend pool (or Pollinations as the pool), the prompt LLM and the fallback, all
        over the shared session and circuit breaker."""
        cfg = settings.image
        openai = OpenAIClient(session, cfg.timeouts)
        pollinations = PollinationsClient(session, cfg.timeouts)
        polls = BackendSpec(url=cfg.pollinations_url, name="pollinations", kind="pollinations")
        if cfg.pollinations_is_pool:
            log.warning("BACKEND_API_URLS is empty: Pollinations (%s) is the image pool",
                        cfg.pollinations_url)
            pool, fallback = BackendPool("pollinations", [polls], breaker), None
        else:
            pool = BackendPool("backends", cfg.backends, breaker)
            fallback = polls if cfg.pollinations_fallback else None
        llm = cfg.llm.backend
        prompts = PromptLLM(cfg.llm, BackendPool("prompt LLM", [llm] if llm else [], breaker), openai, memo,
                            timeout=cfg.timeouts.llm, memo_ttl=settings.cache.enhance_ttl)
        t = cfg.timeouts
        answers = GuardedFetcher(session, total=t.backend, connect=t.connect, cap=t.fetch_max_bytes,
                                 allow=t.fetch_allow)
        return cls(cfg, pool, fallback, openai, pollinations, answers, prompts)

    async def generate(self, req: ImageRequest) -> CacheEntry:
        attempt = Attempt(prompt=await self._first_prompt(req), failures=[])
        for stage in self._stages(req, attempt):
            result = await stage
            if result is not None:
                return result
        message = "every stage failed: " + " | ".join(attempt.failures)
        log.warning("generation failed for %s: %s", req.key()[:12], message)
        return failure_entry(UpstreamFailed.status, UpstreamFailed.code, message, transient=attempt.transient)

    def _stages(self, req: ImageRequest, attempt: Attempt) -> Iterator[Awaitable[CacheEntry | None]]:
        yield self._pool_pass(req, attempt, "backends")
        if self.prompts.can_rewrite:
            for n in range(self.prompts.settings.de_nsfw_max_attempts):
                if not attempt.refused:
                    break
                yield self._rewrite_pass(req, attempt, n + 1)
        if self.fallback is not None:
            yield self._fallback(req, attempt)

    async def _first_prompt(self, req: ImageRequest) -> str:
        wanted = self.prompts.can_enhance if req.enhance is None else req.enhance and self.prompts.can_enhance
        return await self.prompts.enhance(req.prompt) if wanted else req.prompt

    async def _pool_pass(self, req: ImageRequest, attempt: Attempt, stage: str) -> CacheEntry | None:
        job = self._job(req, attempt.prompt)
        try:
            data, mime, backend = await self.pool.run(
                lambda spec: self._generate_on(spec, job, req), model=req.model,
                max_refusals=self.cfg.blocked_retry_attempts)
        except PoolRefused as exc:
            attempt.refused = True
            attempt.transient |= not exc.about_the_request
            attempt.failures.append(f"{stage}: refused ({exc.reason})")
            return None
        except PoolExhausted as exc:
            attempt.refused = False
            attempt.transient |= not exc.about_the_request
            attempt.failures.append(f"{stage}: {exc.reason}")
            return None
        return image_entry(data, mime, prompt=req.prompt, used_prompt=attempt.prompt,
                           backend=backend, stage=stage)

    async def _rewrite_pass(self, req: ImageRequest, attempt: Attempt, n: int) -> CacheEntry | None:
        safer = await self.prompts.rewrite(attempt.prompt)
        if safer is None:
            attempt.refused = False
            attempt.failures.append(f"safety rewrite {n}: the LLM gave no prompt")
            return None
        attempt.prompt = safer
        return await self._pool_pass(req, attempt, f"rewrite {n}")

    async def _fallback(self, req: ImageRequest, attempt: Attempt) -> CacheEntry | None:
        assert self.fallback is not None
        job = self._job(req, attempt.prompt)
        try:
            data, mime, backend = await self._generate_on(self.fallback, job, req)
        except UpstreamError as exc:
            attempt.transient |= not exc.about_the_request
            attempt.failures.append(f"fallback: {exc.describe()}")
            return None
        return image_entry(data, mime, prompt=req.prompt, used_prompt=attempt.prompt,
                           backend=backend, stage="fallback")

    def _job(self, req: ImageRequest, prompt: str) -> ImageJob:
        return ImageJob(prompt=prompt, width=req.width, height=req.height, model=req.model,
                        seed=req.seed, negative_prompt=req.negative_prompt)

    async def _generate_on(self, spec: BackendSpec, job: ImageJob,
                           req: ImageRequest) -> tuple[bytes, str, str]:
        if spec.kind == "pollinations":
            data = await self.pollinations.generate_image(spec, job, req.passthrough)
        else:
            answered, url = await self.openai.generate_image(spec, job)
            data = answered if answered is not None else await self.answers.fetch(
                url or "", trusted=spec.url, label=spec.label)
        assert data is not None
        cap = LARGEST_ANSWER * self.cfg.max_side ** 2
        return data, await checked_image_type(data, spec.label, cap), spec.label
