"""The glasses' question: answer a user's frame with the cascade, unless it repeats the scene just
answered for the same prompt (then the previous answer, with no provider call)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp

from proxy.accounts.models import AccountsContext
from proxy.config import Settings
from proxy.config.vision import VisionSettings
from proxy.db.database import Database
from proxy.local.models import LocalModels
from proxy.upstream.breaker import Breaker
from proxy.vision.asking import Asker, Breakers
from proxy.vision.cascade import Cascade, Outcome
from proxy.vision.dedup import DedupStore, Remembered, repeats
from proxy.vision.frames import Frame
from proxy.vision.kinds.registry import open_kinds
from proxy.vision.providers import providers_for
from proxy.vision.questions import Task
from proxy.vision.records import Recorder
from proxy.vision.uploads import FrameChecks, Intake


@dataclass(frozen=True)
class Answer:
    answer: str
    provider: str
    confidence: float
    calls: int
    ai_responses: dict[str, str]
    notes: list[str] = field(default_factory=list)
    judged: bool = False
    cached: bool = False

    @classmethod
    def of(cls, outcome: Outcome) -> Answer:
        return cls(outcome.reading.answer, outcome.provider, round(outcome.reading.confidence, 3),
                   outcome.ledger.calls, {name: r.answer for name, r in outcome.candidates},
                   list(outcome.ledger.notes), outcome.judged)


class VisionService:
    def __init__(self, cascade: Cascade, dedup: DedupStore, cfg: VisionSettings, later: Recorder):
        self.cascade = cascade
        self.dedup = dedup
        self.cfg = cfg
        self.later = later
        self.intake = Intake()
        self.checks = FrameChecks(cfg.decode_threads)

    @classmethod
    async def open(cls, settings: Settings, session: aiohttp.ClientSession, local: LocalModels,
                   dedup: DedupStore, db: Database[AccountsContext]) -> VisionService:
        """The cascade over the shared session and this worker's local models, with breakers per
        key owner; answers are recorded in the accounts' database after they went out."""
        asker = Asker(await open_kinds(settings, session, local), Breakers(settings.image.breaker))
        return cls(Cascade(asker, settings.vision), dedup, settings.vision, Recorder(db))

    async def close(self) -> None:
        await self.later.close()
        await self.dedup.close()
        await asyncio.to_thread(self.checks.close)
        await self.cascade.asker.close()

    async def _last_scene(self, username: str, prompt: str, frame: Frame, now: float) -> Remembered | None:
        """The answer this frame repeats: this worker's own last one (no lookup), else the last one
        any worker gave (a lookup in the shared state); None for a new scene or with dedup off."""
        if self.cfg.dedup_seconds <= 0:
            return None
        here = self.dedup.recall_here(username)
        if self._repeats(here, prompt, frame, now):
            return here
        last = await self.dedup.recall(username)
        return last if self._repeats(last, prompt, frame, now) else None

    def _repeats(self, last: Remembered | None, prompt: str, frame: Frame, now: float) -> bool:
        return repeats(last, prompt, frame.dhash, now, seconds=self.cfg.dedup_seconds,
                       max_distance=self.cfg.dedup_distance)

    @property
    def breaker(self) -> Breaker:
        """The breaker of the server's own provider keys (users' own keys have breakers of their own)."""
        return self.cascade.asker.breakers.shared

    async def answer(self, username: str, prompt: str, frame: Frame,
                     own_keys: Mapping[str, str | None]) -> Answer:
        now = time.time()
        last = await self._last_scene(username, prompt, frame, now)
        if last is not None:
            age = now - last.at
            return replace(Answer(**last.result), calls=0, cached=True,
                           notes=[f"same scene as {age:.0f} s ago: previous answer reused"])
        providers = providers_for(self.cfg, username, own_keys)
        result = Answer.of(await self.cascade.run(Task(prompt), frame, providers))
        if self.cfg.dedup_seconds > 0:
            remembered = Remembered(prompt, frame.dhash, time.time(), _plain(result))
            await self.dedup.remember(username, remembered)
        return result


def _plain(answer: Answer) -> dict[str, Any]:
    """The answer's fields (shared, not copied: an ``Answer`` and what it holds are never changed)."""
    return dict(vars(answer))
