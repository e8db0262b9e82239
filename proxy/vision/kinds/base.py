"""What every kind of vision provider does: answer one question about a frame with a reading, or
raise an ``UpstreamError`` (whose message is safe to show). The pool around it (its breaker, its
health and counts) is the same for every kind (``proxy.vision.asking``)."""

from __future__ import annotations

from typing import Protocol

from proxy.config.backends import BackendSpec
from proxy.upstream.errors import UpstreamError
from proxy.vision.answers import Reading
from proxy.vision.questions import Question


class ProviderKind(Protocol):
    async def ask(self, spec: BackendSpec, question: Question, limit: float, secrets: list[str]) -> Reading:
        """The reading of the provider ``spec`` within ``limit`` seconds. ``secrets``: keys that must
        not appear in what it returns."""
        ...

    async def close(self) -> None: ...


class Unusable(UpstreamError):
    """The provider answered, but with no answer in it: escalate, but the provider is up (its
    reply does not cool it down, so the next call, or a probe, can succeed)."""

    backend_fault = False


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text
