"""What the cascade asks: a question about an image, and the JSON shape the answer must take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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

    def messages(self, data_url: str, text: str | None = None, intro: str = "") -> list[dict[str, Any]]:
        return [
            {"role": "system", "content": f"{intro}{self.reply_format}"},
            {"role": "user", "content": [
                {"type": "text", "text": text if text is not None else self.question},
                {"type": "image_url", "image_url": {"url": data_url}},
            ]},
        ]


def classification() -> Task:
    return Task(CLASSIFY_QUESTION, CLASSIFY_FORMAT)
