"""The ``chat`` kind: an OpenAI-compatible chat endpoint, shown the frame as a data URL and asked for
JSON ``{"answer", "confidence"}`` (read robustly by ``proxy.vision.answers``)."""

from __future__ import annotations

import aiohttp

from proxy.config import Settings
from proxy.config.backends import BackendSpec
from proxy.local.models import LocalModels
from proxy.upstream.openai import OpenAIClient
from proxy.vision.answers import Reading, Unparsable, parse_reply
from proxy.vision.kinds.base import Unusable, scrub
from proxy.vision.questions import Question


class ChatKind:
    def __init__(self, client: OpenAIClient, max_tokens: int):
        self.client = client
        self.max_tokens = max_tokens

    @classmethod
    async def open(cls, settings: Settings, session: aiohttp.ClientSession, local: LocalModels) -> ChatKind:
        return cls(OpenAIClient(session, settings.image.timeouts), settings.vision.max_tokens)

    async def ask(self, spec: BackendSpec, question: Question, limit: float, secrets: list[str]) -> Reading:
        text = await self.client.chat(spec, question.messages(), total=limit, max_tokens=self.max_tokens,
                                      temperature=0.2)
        try:
            return parse_reply(scrub(text, secrets))
        except Unparsable as exc:
            raise Unusable(f"unusable answer ({exc})", backend=spec.label) from None

    async def close(self) -> None:
        return None  # the session is the app's
