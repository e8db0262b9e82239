"""The ``onnx`` kind: image classifiers run on this machine (``proxy.local``), one per provider of
that kind, each loaded once per worker when the app starts (``LocalModels``). No key, no network.

Its confidence is the top label's probability. Asked to classify (``/analyze``), it answers with
the label and its top five; asked a question (``/process``), with a short sentence from the label,
whatever the question, so the cascade goes on to a remote provider when the label is not likely
enough. A frame past ``LOCAL_MODEL_DEADLINE`` (waiting for a free thread included) is a failure
like a remote timeout, so a model that cannot keep up cools down and frames go straight on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp

from proxy.config import Settings
from proxy.config.backends import BackendSpec
from proxy.local.models import LocalModels
from proxy.local.runtime import LocalRunner
from proxy.upstream.errors import UpstreamError
from proxy.vision.answers import Prediction, Reading
from proxy.vision.questions import Question

if TYPE_CHECKING:  # ONNX Runtime comes with the local extra: not imported unless a model is loaded
    from proxy.local.classifier import ImageClassifier


class OnnxKind:
    def __init__(self, models: dict[str, ImageClassifier], runner: LocalRunner):
        self.models = models
        self.runner = runner

    @classmethod
    async def open(cls, settings: Settings, session: aiohttp.ClientSession, local: LocalModels) -> OnnxKind:
        return cls(local.classifiers, local.vision)

    async def ask(self, spec: BackendSpec, question: Question, limit: float, secrets: list[str]) -> Reading:
        model = self.models[spec.name]
        try:
            guesses = await self.runner.run(model.classify, question.frame.jpeg, limit=limit)
        except TimeoutError:
            raise UpstreamError(f"no answer within {min(limit, self.runner.deadline):g} s",
                                backend=spec.label) from None
        except Exception as exc:  # noqa: BLE001 - Pillow's and ONNX Runtime's own types: escalate
            raise UpstreamError(f"the model failed ({type(exc).__name__})", backend=spec.label) from None
        predictions = tuple(Prediction(label, probability) for label, probability in guesses)
        best = predictions[0]
        return Reading(best.label if question.task.classify else sentence(best.label), best.confidence,
                       predictions)

    async def close(self) -> None:
        return None  # the models and their runner are the app's (LocalModels)


def sentence(label: str) -> str:
    article = "an" if label[:1].lower() in "aeiou" else "a"
    return f"This looks like {article} {label}."
