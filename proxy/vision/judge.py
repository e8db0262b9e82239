"""The judge: shown the image, the question and the candidates, it gives the best or a merged answer."""

from __future__ import annotations

from proxy.vision.answers import Reading
from proxy.vision.task import Task

INTRO = ("You judge answers that other assistants gave about the attached image. Look at the image, "
         "then give the best answer, or merge the candidates into a better one. ")


def judge_text(task: Task, candidates: list[tuple[str, Reading]]) -> str:
    lines = [f"Question: {task.question}", "", "Candidate answers:"]
    for i, (name, reading) in enumerate(candidates, 1):
        lines.append(f"{i}. ({name}, confidence {reading.confidence:.2f}) {reading.answer}")
    return "\n".join(lines)


def most_confident(candidates: list[tuple[str, Reading]]) -> tuple[str, Reading]:
    return max(candidates, key=lambda pair: pair[1].confidence)
