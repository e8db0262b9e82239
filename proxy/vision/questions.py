"""What the cascade asks: a task (a question about an image, and the JSON shape the answer must
take), and one question put to a provider (the task, the frame, and for the judge its own text)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from proxy.vision.frames import Frame

ANSWER_FORMAT = (
    'Reply with JSON only, exactly {"answer": "<your answer>", "confidence": <a number from 0 to 1>}. '
    "The confidence is how sure you are that the answer is correct and complete; "
    "be honest, a lower number lets a stronger model help."
)
CLASSIFY_QUESTION = "Classify the main subject of this image."
CLASSIFY_FORMAT = (
    'Reply with JSON only, exactly {"answer": "<the most likely label>", "confidence": <0 to 1>, '
    '"predictions": [{"label": "<label>", "confidence": <0 to 1>}, ...]} with up to 5 predictions, '
    "most likely first, labels of one to three words in Title Case."
)


@dataclass(frozen=True)
class Task:
    question: str
    reply_format: str = ANSWER_FORMAT
    classify: bool = False
    """A classification (``/analyze``): the answer is a label, not a sentence."""

    def messages(self, data_url: str, text: str | None = None, intro: str = "") -> list[dict[str, Any]]:
        return [
            {"role": "system", "content": f"{intro}{self.reply_format}"},
            {"role": "user", "content": [
                {"type": "text", "text": text if text is not None else self.question},
                {"type": "image_url", "image_url": {"url": data_url}},
            ]},
        ]


def classification() -> Task:
    return Task(CLASSIFY_QUESTION, CLASSIFY_FORMAT, classify=True)


@dataclass(frozen=True)
class Question:
    """One question about one frame: the task's own, or (for the judge) ``text`` after ``intro``."""

    task: Task
    frame: Frame
    text: str | None = None
    intro: str = ""

    @cached_property
    def data_url(self) -> str:
        """Encoded when a provider first needs it (a local model reads the JPEG itself)."""
        return self.frame.data_url()

    def messages(self) -> list[dict[str, Any]]:
        return self.task.messages(self.data_url, self.text, self.intro)

    def judged(self, text: str, intro: str) -> Question:
        """The same frame, put to the judge with its own text (the encoded frame is shared)."""
        question = Question(self.task, self.frame, text, intro)
        if "data_url" in self.__dict__:
            question.__dict__["data_url"] = self.__dict__["data_url"]
        return question
