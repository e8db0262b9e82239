"""The confidence cascade: providers in order, each asked once, until one is confident enough.

With no confident answer and several gathered, the judge decides; if it fails, the most confident
answer wins. Failures escalate and are never the answer. Everything runs under one deadline.
The judge is shown the image, the question and the candidates, and gives the best or a merged
answer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from proxy.config.vision import VisionSettings
from proxy.errors import DeadlineExceeded, UpstreamFailed
from proxy.vision.answers import Reading
from proxy.vision.asking import Asker, Ledger
from proxy.vision.frames import Frame
from proxy.vision.providers import Provider, judge_of, secrets_of
from proxy.vision.questions import Question, Task

MIN_CALL_TIME = 0.05


@dataclass
class Outcome:
    reading: Reading
    provider: str
    candidates: list[tuple[str, Reading]]
    ledger: Ledger
    judged: bool = False
    via: Provider | None = None
    """The provider that answered (or judged)."""


class Cascade:
    def __init__(self, asker: Asker, cfg: VisionSettings):
        self.asker = asker
        self.cfg = cfg

    async def run(self, task: Task, frame: Frame, providers: list[Provider]) -> Outcome:
        ledger = Ledger(secrets_of(providers))
        if not providers:
            raise UpstreamFailed("no vision provider has a key: set one on the server or in the profile",
                                 code="no_provider")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.deadline
        question = Question(task, frame)
        candidates: list[tuple[str, Reading]] = []
        for provider in providers:
            remaining = deadline - loop.time()
            if remaining < MIN_CALL_TIME:
                ledger.note(f"deadline of {self.cfg.deadline:g} s reached, {provider.name} not asked")
                break
            reading = await self.asker.ask(provider, question, min(self.cfg.call_timeout, remaining), ledger)
            if reading is None:
                continue
            ledger.note(f"{provider.name}: confidence {reading.confidence:.2f}")
            candidates.append((provider.name, reading))
            if reading.confidence >= provider.threshold:
                return Outcome(reading, provider.name, candidates, ledger, via=provider)
        return await self._settle(question, providers, candidates, ledger, deadline - loop.time())

    async def _settle(self, question: Question, providers: list[Provider],
                      candidates: list[tuple[str, Reading]], ledger: Ledger, remaining: float) -> Outcome:
        if not candidates:
            message = "no provider answered: " + "; ".join(ledger.notes)
            if remaining < MIN_CALL_TIME:
                raise DeadlineExceeded(message)
            raise UpstreamFailed(message)
        if len(candidates) > 1:
            judged = await self._judge(question, providers, candidates, ledger, remaining)
            if judged is not None:
                return judged
        name, reading = most_confident(candidates)
        ledger.note(f"best of {len(candidates)}: {name}")
        via = next((p for p in providers if p.name == name), None)
        return Outcome(reading, name, candidates, ledger, via=via)

    async def _judge(self, question: Question, providers: list[Provider],
                     candidates: list[tuple[str, Reading]], ledger: Ledger,
                     remaining: float) -> Outcome | None:
        judge = judge_of(self.cfg, providers)
        if judge is None:
            ledger.note("no provider here can judge")
            return None
        if remaining < MIN_CALL_TIME:
            ledger.note("no time left for the judge")
            return None
        asked = question.judged(judge_text(question.task, candidates), INTRO)
        reading = await self.asker.ask(judge, asked, min(self.cfg.call_timeout, remaining), ledger)
        if reading is None:
            ledger.note("judge failed")
            return None
        ledger.note(f"judge {judge.name}: confidence {reading.confidence:.2f}")
        return Outcome(reading, judge.name, candidates, ledger, judged=True, via=judge)


INTRO = ("You judge answers that other assistants gave about the attached image. Look at the image, "
         "then give the best answer, or merge the candidates into a better one. ")


def judge_text(task: Task, candidates: list[tuple[str, Reading]]) -> str:
    lines = [f"Question: {task.question}", "", "Candidate answers:"]
    for i, (name, reading) in enumerate(candidates, 1):
        lines.append(f"{i}. ({name}, confidence {reading.confidence:.2f}) {reading.answer}")
    return "\n".join(lines)


def most_confident(candidates: list[tuple[str, Reading]]) -> tuple[str, Reading]:
    return max(candidates, key=lambda pair: pair[1].confidence)
