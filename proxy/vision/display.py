"""The glasses' answer: Frame-Backend's fields, plain-ASCII debug lines, and the failure shape."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from proxy.errors import IrisError
from proxy.vision.service import Answer

FAILED_ANSWER = "No answer right now. Please try again."


def ascii_only(text: str) -> str:
    return text.encode("ascii", "ignore").decode("ascii")


@dataclass
class Debug:
    lines: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime())
        self.lines.append(ascii_only(f"[{stamp}] {text}"))


def success_body(result: Answer, prompt: str, debug: Debug, elapsed: float) -> dict[str, Any]:
    debug.add(f"[TARGET] Using prompt: '{prompt[:40]}'")
    for note in result.notes:
        debug.add(f"[AI] {note}")
    how = "cached" if result.cached else (f"judged by {result.provider}" if result.judged
                                          else f"answered by {result.provider}")
    debug.add(f"[OK] {how}, {result.calls} provider call(s)")
    return {
        "answer": result.answer,
        "ai_responses": result.ai_responses,
        "processing_time": round(elapsed, 4),
        "prompt_used": prompt,
        "debug_messages": debug.lines,
        "success": True,
        "error": None,
        "provider": result.provider,
        "confidence": result.confidence,
        "calls": result.calls,
        "cached": result.cached,
        "judged": result.judged,
    }


def failure_body(exc: IrisError, prompt: str, debug: Debug, elapsed: float) -> dict[str, Any]:
    """The error shape ``{"error": {code, message}}``, plus what the glasses show."""
    debug.add(f"[ERROR] {exc.message}")
    return {
        **exc.body(),
        "answer": FAILED_ANSWER,
        "ai_responses": {},
        "processing_time": round(elapsed, 4),
        "prompt_used": prompt,
        "debug_messages": debug.lines,
        "success": False,
        "provider": None,
        "confidence": 0.0,
        "calls": None,
        "cached": False,
    }
