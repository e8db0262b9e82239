"""The generation pipeline for one cache miss:

1. prompt enhancement (optional, never fatal);
2. the weighted pool, until a backend answers with a real image or enough refuse the content;
3. after refusals, the safety rewrite and another pass, up to DE_NSFW_MAX_ATTEMPTS times;
4. the Pollinations fallback with the most promising prompt.
It returns a cache entry: the image, or a failure naming every stage (kept only briefly, and not
at all when a stage failed for a reason that is not the prompt's: a backend cooling down, a wait
in Iris's own connection pool).

A prompt the backends refused is remembered (per prompt and model, REFUSAL_CACHE_TTL, in the byte
store every worker and, with Redis, every instance shares), as the Deno proxy does: the next
request for it with another seed or size skips step 2 and goes straight to the safety rewrite,
instead of being refused again by the same backends.

With input images (``image=``), the request is an edit: backends that take edits (EDIT_BACKENDS)
get OpenAI's ``/images/edits`` with the images, fetched once for the whole request through the
same guarded fetch as a backend's url answer (public addresses or IMAGE_FETCH_ALLOW, redirects
checked, at most INPUT_IMAGE_MAX_BYTES, decoded as images); the others are skipped. Pollinations
is given the URLs, which it fetches itself. An input image that cannot be used is the request's
fault: a 400, never kept.

When the request wants the safety check (``proxy.imagegen.safety``), every image is checked as it
arrives, and one that fails is a refusal like a backend's (not remembered as the backends' own:
a request that does not ask for the check still goes to them)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import orjson

from proxy.cache.entry import CacheEntry, failure_entry, image_entry
from proxy.cache.stores.base import ByteStore
from proxy.config import Settings
from proxy.config.backends import BackendSpec
from proxy.config.image import ImageSettings
from proxy.errors import BadRequest, UpstreamFailed
from proxy.imagegen.params import ImageRequest
from proxy.imagegen.prompts import PromptLLM
from proxy.imagegen.safety import STAGE, Made, SafetyCheck, SafetyRefusal
from proxy.upstream.breaker import Breaker
from proxy.upstream.errors import PoolExhausted, PoolRefused, Unsupported, UpstreamError
from proxy.upstream.guarded import GuardedFetcher
from proxy.upstream.inspect import checked_image_type
from proxy.upstream.openai import ImageJob, InputImage, OpenAIClient
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
    inputs: asyncio.Task[tuple[InputImage, ...]] | None = None  # fetched once, when a backend needs them
    checked: bool = False  # every image goes through the safety check
    unsafe: bool = False  # and the check refused one


@dataclass(frozen=True)
class Generated:
    data: bytes
    mime: str
    backend: str
    safety: dict[str, Any] | None = None  # the check's verdict, when it looked


class ImagePipeline:
    def __init__(self, cfg: ImageSettings, pool: BackendPool, fallback: BackendSpec | None,
                 openai: OpenAIClient, pollinations: PollinationsClient, answers: GuardedFetcher,
                 prompts: PromptLLM, inputs: GuardedFetcher, safety: SafetyCheck, *, refusals: ByteStore,
                 refusal_ttl: float = 0.0):
        self.cfg = cfg
        self.pool = pool
        self.fallback = fallback
        self.openai = openai
        self.pollinations = pollinations
        self.answers = answers
        self.prompts = prompts
        self.inputs = inputs
        self.safety = safety
        self.refusals = refusals
        self.refusal_ttl = refusal_ttl
        self.max_pixels = LARGEST_ANSWER * cfg.max_side ** 2
        """The most pixels a backend's answer, or an input image, may have."""

    @classmethod
    def open(cls, settings: Settings, session: aiohttp.ClientSession, memo: ByteStore,
             breaker: Breaker, safety: SafetyCheck) -> ImagePipeline:
        """The backend pool (or Pollinations as the pool), the prompt LLM and the fallback, all
        over the shared session and circuit breaker, and the safety check."""
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
        inputs = GuardedFetcher(session, total=t.backend, connect=t.connect, cap=cfg.input_image_max_bytes,
                                allow=t.fetch_allow)
        return cls(cfg, pool, fallback, openai, pollinations, answers, prompts, inputs, safety, refusals=memo,
                   refusal_ttl=settings.cache.refusal_ttl)

    async def generate(self, req: ImageRequest, *, checked: bool = False,
                       unsafe: CacheEntry | None = None) -> CacheEntry:
        """The image for ``req``; ``checked``: each image goes through the safety check.
        ``unsafe``: a cached image for this request that failed the check, as if the backends had
        just refused: the next stages run (from the prompt it was made from)."""
        if unsafe is None:
            attempt = Attempt(prompt=await self._first_prompt(req), failures=[], checked=checked)
        else:
            attempt = Attempt(prompt=str(unsafe.meta.get("used_prompt") or req.prompt),
                              failures=[f"cache: {STAGE} refused the cached image"],
                              refused=True, checked=True, unsafe=True)
        try:
            if unsafe is None and await self._refused_lately(req):
                attempt.refused = True
                attempt.failures.append("backends: skipped, they refused this prompt lately")
            for stage in self._stages(req, attempt, skip_pool=attempt.refused):
                result = await stage
                if result is not None:
                    return result
        finally:
            if attempt.inputs is not None and not attempt.inputs.done():
                attempt.inputs.cancel()
        if attempt.unsafe:
            message = "no stage gave an image that passed the safety check: " + " | ".join(attempt.failures)
            code = "unsafe_image"
        else:
            message, code = "every stage failed: " + " | ".join(attempt.failures), UpstreamFailed.code
        log.warning("generation failed for %s: %s", req.key()[:12], message)
        entry = failure_entry(UpstreamFailed.status, code, message, transient=attempt.transient)
        return replace(entry, meta={**entry.meta, "checked": True}) if attempt.checked else entry

    def _refusal_key(self, req: ImageRequest) -> str:
        return "refused:" + hashlib.sha256(orjson.dumps([req.model, req.prompt])).hexdigest()

    async def _refused_lately(self, req: ImageRequest) -> bool:
        """The backends refused this prompt and model within REFUSAL_CACHE_TTL, and a rewrite can
        be asked for (without one, there is nothing to go straight to)."""
        if self.refusal_ttl <= 0 or not self.prompts.can_rewrite:
            return False
        return await self.refusals.get(self._refusal_key(req)) is not None

    async def _remember_refusal(self, req: ImageRequest) -> None:
        if self.refusal_ttl > 0:
            await self.refusals.set(self._refusal_key(req), b"1", ttl=self.refusal_ttl)

    def _stages(self, req: ImageRequest, attempt: Attempt, *,
                skip_pool: bool = False) -> Iterator[Awaitable[CacheEntry | None]]:
        if not skip_pool:
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
            image = await self.pool.run(
                lambda spec: self._generate_on(spec, job, req, attempt, stage), model=req.model,
                max_refusals=self.cfg.blocked_retry_attempts)
        except PoolRefused as exc:
            attempt.refused = True
            attempt.transient |= not exc.about_the_request
            attempt.failures.append(f"{stage}: refused ({exc.reason})")
            if stage == "backends" and not attempt.unsafe:  # the backends' own refusal, not the check's
                await self._remember_refusal(req)
            return None
        except PoolExhausted as exc:
            attempt.refused = False
            attempt.transient |= not exc.about_the_request
            attempt.failures.append(f"{stage}: {exc.reason}")
            return None
        return self._entry(req, attempt, image, stage)

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
            image = await self._generate_on(self.fallback, job, req, attempt, "fallback")
        except UpstreamError as exc:
            attempt.transient |= not exc.about_the_request
            attempt.failures.append(f"fallback: {exc.describe()}")
            return None
        return self._entry(req, attempt, image, "fallback")

    def _entry(self, req: ImageRequest, attempt: Attempt, image: Generated, stage: str) -> CacheEntry:
        checked = {} if image.safety is None else {"safety": image.safety}
        return image_entry(image.data, image.mime, prompt=req.prompt, used_prompt=attempt.prompt,
                           backend=image.backend, stage=stage, **checked)

    def _job(self, req: ImageRequest, prompt: str) -> ImageJob:
        return ImageJob(prompt=prompt, width=req.width, height=req.height, model=req.model,
                        seed=req.seed, negative_prompt=req.negative_prompt, quality=req.quality,
                        style=req.style, user=req.user)

    async def _generate_on(self, spec: BackendSpec, job: ImageJob, req: ImageRequest, attempt: Attempt,
                           stage: str) -> Generated:
        if spec.kind == "pollinations":
            extra = {**req.passthrough, "image": ",".join(req.images)} if req.images else req.passthrough
            data = await self.pollinations.generate_image(spec, job, extra)
        else:
            if req.images:
                if not spec.edits:
                    raise Unsupported("takes no image edits (EDIT_BACKENDS)", backend=spec.label)
                if attempt.inputs is None:
                    attempt.inputs = asyncio.ensure_future(self._fetch_inputs(req.images))
                job = replace(job, inputs=await asyncio.shield(attempt.inputs))
            answered, url = await self.openai.generate_image(spec, job)
            data = answered if answered is not None else await self.answers.fetch(
                url or "", trusted=spec.url, label=spec.label)
        assert data is not None
        mime = await checked_image_type(data, spec.label, self.max_pixels)
        if not attempt.checked:
            return Generated(data, mime, spec.label)
        try:
            made = Made(req.key(), req.prompt, job.prompt, stage, spec.label)
            verdict = await self.safety.check(data, made)
        except SafetyRefusal:
            attempt.unsafe = True
            raise
        return Generated(data, mime, spec.label, verdict)

    async def _fetch_inputs(self, urls: tuple[str, ...]) -> tuple[InputImage, ...]:
        """The input images, all at once; ``BadRequest`` naming the first that cannot be used (one of
        more pixels than a backend's answer may have is refused like an answer would be)."""

        async def one(number: int, url: str) -> InputImage:
            label = f"input image {number}"
            try:
                data = await self.inputs.fetch(url, trusted="", label=label)
                return InputImage(data, await checked_image_type(data, label, self.max_pixels))
            except UpstreamError as exc:
                raise BadRequest(f"{exc.describe()}", code="bad_input_image", param="image") from None

        try:
            async with asyncio.TaskGroup() as group:  # the first that fails stops the others
                tasks = [group.create_task(one(n, url)) for n, url in enumerate(urls, 1)]
        except* BadRequest as failed:
            raise failed.exceptions[0] from None
        return tuple(task.result() for task in tasks)
