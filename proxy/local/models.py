"""This worker's local models, loaded once when the app starts (before anything else is opened, so
a model that cannot be used stops start-up at once, with a ``ConfigError`` naming the setting):
the image classifiers of the ``onnx`` vision providers, by provider name, and the NSFW classifier
when the safety check is on. Each use has its own runner (threads, deadline), so a burst of
generated images to check does not hold up the glasses' frames, nor the other way round."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from proxy.config import Settings
from proxy.local.runtime import LocalRunner

if TYPE_CHECKING:  # imported when a model is loaded: numpy and ONNX Runtime come with the extra
    from proxy.local.classifier import ImageClassifier
    from proxy.local.nsfw import NsfwModel


@dataclass
class LocalModels:
    classifiers: dict[str, ImageClassifier]
    nsfw: NsfwModel | None
    vision: LocalRunner
    safety: LocalRunner

    @classmethod
    async def open(cls, settings: Settings) -> LocalModels:
        local = settings.local
        classifiers = {}
        for provider in settings.vision.providers:
            if provider.local is not None:
                from proxy.local.classifier import ImageClassifier

                classifiers[provider.name] = await asyncio.to_thread(ImageClassifier.load, provider.name,
                                                                     provider.local, local.threads)
        nsfw = None
        if local.safety_check != "off":
            from proxy.local.nsfw import NsfwModel

            nsfw = await asyncio.to_thread(NsfwModel.load, local.threads)
        return cls(classifiers, nsfw,
                   vision=LocalRunner("vision", concurrency=local.concurrency, deadline=local.deadline),
                   safety=LocalRunner("safety", concurrency=local.concurrency, deadline=local.safety_timeout))

    def close(self) -> None:
        self.vision.close()
        self.safety.close()
