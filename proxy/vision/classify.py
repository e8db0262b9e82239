"""The VisionAI shape of an answer: ``{label, confidence 0-100, predictions (top 5), mode, message}``."""

from __future__ import annotations

from typing import Any

from proxy.vision.answers import Prediction
from proxy.vision.cascade import Outcome

TOP = 5


def visionai_body(outcome: Outcome) -> dict[str, Any]:
    reading = outcome.reading
    label = reading.answer
    others = [p for p in reading.predictions if p.label.casefold() != label.casefold()]
    top = [Prediction(label, reading.confidence), *others][:TOP]
    how = "judged from several providers" if outcome.judged else f"answered by {outcome.provider}"
    return {
        "label": label,
        "confidence": _percent(reading.confidence),
        "predictions": [{"label": p.label, "confidence": _percent(p.confidence)} for p in top],
        "mode": "real",
        "message": f"Classified by the Iris vision cascade ({how})",
        "provider": outcome.provider,
        "calls": outcome.ledger.calls,
    }


def _percent(confidence: float) -> float:
    return round(confidence * 100.0, 2)
