"""Prompt enhancement and the safety rewrite, both one LLM call through a (one-backend) pool.

Templates carry ``{ORIGINAL_PROMPT}``, replaced literally everywhere; the LLM answers inside
``<prompt>...</prompt>``. A failure never fails the request: enhancement falls back to the
original prompt, a failed rewrite just ends the rewrite stage. Enhanced prompts are memoised."""

from __future__ import annotations

import hashlib
import logging
import re

from proxy.cache.stores.base import ByteStore
from proxy.config.backends import BackendSpec
from proxy.config.image import LLMSettings
from proxy.upstream.errors import UpstreamError
from proxy.upstream.openai import OpenAIClient
from proxy.upstream.pool import BackendPool

log = logging.getLogger(__name__)
_ANSWER = re.compile(r"<prompt>(.*?)</prompt>", re.DOTALL | re.IGNORECASE)
MAX_ANSWER = 4000


def fill(template: str, prompt: str) -> str:
    return template.replace("{ORIGINAL_PROMPT}", prompt)


def parse_answer(content: str) -> str | None:
    for match in _ANSWER.finditer(content):
        text = match.group(1).strip()
        if text:
            return text[:MAX_ANSWER]
    return None


class PromptLLM:
    def __init__(self, settings: LLMSettings, pool: BackendPool, client: OpenAIClient,
                 memo: ByteStore, *, timeout: float, memo_ttl: float):
        self.settings = settings
        self.pool = pool
        self.client = client
        self.memo = memo
        self.timeout = timeout
        self.memo_ttl = memo_ttl

    @property
    def can_enhance(self) -> bool:
        return self.settings.enabled and bool(self.pool)

    @property
    def can_rewrite(self) -> bool:
        return self.settings.de_nsfw_enabled and bool(self.pool)

    async def enhance(self, prompt: str) -> str:
        """The enhanced prompt, or the original one if the LLM fails or says nothing usable."""
        memo_key = "enh:" + hashlib.sha256(
            f"{self.settings.model}\0{self.settings.optimize_template}\0{prompt}".encode()).hexdigest()
        cached = await self.memo.get(memo_key)
        if cached is not None:
            return cached.decode()
        answer = await self._ask(self.settings.optimize_template, prompt)
        if answer is None:
            return prompt
        await self.memo.set(memo_key, answer.encode(), ttl=self.memo_ttl or None)
        return answer

    async def rewrite(self, prompt: str) -> str | None:
        """A safer rewrite of a refused prompt, or None."""
        return await self._ask(self.settings.de_nsfw_template, prompt)

    async def _ask(self, template: str, prompt: str) -> str | None:
        messages = [{"role": "user", "content": fill(template, prompt)}]

        async def call(spec: BackendSpec) -> str:
            return await self.client.chat(spec, messages, total=self.timeout)

        try:
            content = await self.pool.run(call)
        except UpstreamError as exc:
            log.warning("prompt LLM failed: %s", exc.describe())
            return None
        answer = parse_answer(content)
        if answer is None:
            log.warning("prompt LLM answered without <prompt> tags; keeping the prompt")
        return answer
