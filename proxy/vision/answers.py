"""Reading a provider's reply as ``{"answer": ..., "confidence": 0..1}``, robustly.

Models wrap JSON in code fences, put prose around it, give the confidence as ``"85%"``, ``85`` or
``"0.85"``, or the answer as a bare number. An answer without a usable confidence is an answer of
confidence 0: the cascade escalates, and it is a candidate like any other. A reply that does not
yield an answer is ``Unparsable``: the cascade escalates and never shows it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()


class Unparsable(ValueError):
    """The reply holds no usable answer (the message says why, without quoting the reply)."""


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float


@dataclass(frozen=True)
class Reading:
    answer: str
    confidence: float
    predictions: tuple[Prediction, ...] = ()


def parse_reply(text: str) -> Reading:
    obj = find_object(text)
    if obj is None:
        raise Unparsable("no JSON object in the reply")
    answer = _text(obj.get("answer", obj.get("label")))
    if answer is None:
        raise Unparsable("the reply has no answer")
    confidence = parse_confidence(obj.get("confidence"))
    return Reading(answer, confidence or 0.0, _predictions(obj.get("predictions")))


def find_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in the reply: inside a code fence first, else anywhere in the prose."""
    for chunk in [*_FENCE.findall(text), text]:
        start = chunk.find("{")
        while start != -1:
            try:
                value, _ = _DECODER.raw_decode(chunk, start)
            except ValueError:
                value = None
            if isinstance(value, dict):
                return value
            start = chunk.find("{", start + 1)
    return None


def parse_confidence(value: Any) -> float | None:
    """0..1 from ``0.85``, ``"0.85"``, ``85``, ``"85%"``; ``None`` when it is not a confidence."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        cleaned = value.strip().rstrip("%").strip()
        percent = value.strip().endswith("%")
        try:
            value = float(cleaned)
        except ValueError:
            return None
        if percent:
            value /= 100.0
    if not isinstance(value, int | float) or value != value:
        return None
    number = float(value)
    if 1.0 < number <= 100.0:
        number /= 100.0
    return number if 0.0 <= number <= 1.0 else None


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = f"{value:g}" if isinstance(value, float) else str(value)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def _predictions(value: Any) -> tuple[Prediction, ...]:
    if not isinstance(value, list):
        return ()
    out = []
    for item in value:
        if not isinstance(item, dict):
            continue
        label = _text(item.get("label", item.get("answer")))
        confidence = parse_confidence(item.get("confidence"))
        if label is not None and confidence is not None:
            out.append(Prediction(label, confidence))
    return tuple(sorted(out, key=lambda p: p.confidence, reverse=True))
