"""The safety check of generated images (``SAFETY_CHECK``): a local NSFW classifier
(``proxy.local.nsfw``) looks at an image before it is cached or served.

Which requests want it: every one with ``always``; with ``param``, those that ask Pollinations for
``safe=true``. An image that fails is a refusal like a backend's (``SafetyRefusal``): it is neither
cached nor served, and the safety rewrite and the next stages run. An image that passes is cached
with its score (``meta["safety"]``), so a later request that wants the check is served without a
second look. Requests with and without ``safe=true`` share a cache key: an image made without the
check is checked when a request that wants it finds it; and when no safe image can be made, that
failure is kept under a key of its own (``safe_key``), so it never hides the image from requests
that do not want the check. ``/metrics`` counts the checks by outcome; the dashboard lists the last
refusals (what was asked and by whom it was made, never the image)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from proxy.cache.entry import FAILURE, IMAGE, CacheEntry
from proxy.cache.stores.base import ByteStore
from proxy.config import Settings
from proxy.config.local import EXTRA
from proxy.imagegen.params import ImageRequest
from proxy.imagegen.recent import StoreRing
from proxy.local.models import LocalModels
from proxy.local.nsfw import NsfwModel
from proxy.local.runtime import LocalRunner
from proxy.upstream.errors import Refusal, UpstreamError
from proxy.web.metrics import SAFETY_OUTCOMES, Metrics

log = logging.getLogger(__name__)
STAGE = "safety check"
YES = frozenset({"true", "1", "yes", "on"})
REFUSALS_KEPT = 20


class SafetyRefusal(Refusal):
    """The safety check refused a backend's image: the pool counts it as that backend's refusal."""

    def __init__(self, nsfw: float, threshold: float, *, backend: str = ""):
        super().__init__(f"{STAGE}: NSFW score {nsfw:.2f} (at least {threshold:g} fails)", backend=backend)


class SafetyUnavailable(UpstreamError):
    """The image could not be checked (no verdict in time, or the classifier failed): it is not
    served, but that is neither the backend's fault nor the prompt's."""

    backend_fault = False
    about_the_request = False
    sent = False


@dataclass(frozen=True)
class Made:
    """Where an image to check came from, for the refusals the dashboard lists."""

    key: str
    prompt: str
    used_prompt: str
    stage: str
    backend: str


def safe_key(key: str) -> str:
    """Where a failure to make a safe image is kept, apart from the image others may be served."""
    return f"{key}-safe"


class SafetyCheck:
    def __init__(self, mode: str, threshold: float, model: NsfwModel | None, runner: LocalRunner,
                 metrics: Metrics, refusals: StoreRing):
        self.mode = mode
        self.threshold = threshold
        self.model = model
        self.runner = runner
        self.metrics = metrics
        self.refusals = refusals

    @classmethod
    def open(cls, settings: Settings, local: LocalModels, store: ByteStore, metrics: Metrics) -> SafetyCheck:
        cfg = settings.local
        if cfg.safety_unavailable:
            log.warning("SAFETY_CHECK is off: its classifier is not installed (%s), so safe=true is only "
                        "passed on to Pollinations", EXTRA)
        elif local.nsfw is not None:
            log.info("safety check (%s): %s, images refused at an NSFW score of %g or more",
                     cfg.safety_check, local.nsfw.name, cfg.safety_threshold)
        return cls(cfg.safety_check, cfg.safety_threshold, local.nsfw, local.safety, metrics,
                   StoreRing(store, REFUSALS_KEPT, "safety-refusals"))

    def required(self, req: ImageRequest) -> bool:
        """Does this request want its image checked?"""
        if self.mode == "always":
            return True
        return self.mode == "param" and req.passthrough.get("safe", "").strip().lower() in YES

    def passed(self, entry: CacheEntry) -> bool:
        """A cached image checked before and found safe (under today's threshold)."""
        score = entry.meta.get("safety", {}).get("nsfw") if entry.kind != FAILURE else None
        return isinstance(score, int | float) and score < self.threshold

    def serves(self, entry: CacheEntry) -> bool:
        """May a request that wants the check be answered with this cached entry as it is?"""
        return entry.kind == FAILURE or self.passed(entry)

    async def check(self, data: bytes, made: Made) -> dict[str, Any]:
        """The image's score for ``meta["safety"]`` when it passes; ``SafetyRefusal`` when it fails,
        ``SafetyUnavailable`` when there is no verdict."""
        assert self.model is not None, "SAFETY_CHECK is off"
        try:
            nsfw = await self.runner.run(self.model.score, data)
        except TimeoutError:
            self._count("error")
            raise SafetyUnavailable(f"{STAGE}: no verdict within {self.runner.deadline:g} s",
                                    backend=made.backend) from None
        except Exception as exc:  # noqa: BLE001 - Pillow's and ONNX Runtime's own types: not served
            self._count("error")
            log.warning("the safety check failed on an image from %s: %s", made.backend, exc)
            raise SafetyUnavailable(f"{STAGE} failed ({type(exc).__name__})", backend=made.backend) from None
        if nsfw >= self.threshold:
            self._count("refused")
            self.refusals.add({"time": time.time(), "nsfw": round(nsfw, 4), "key": made.key,
                               "prompt": made.prompt, "used_prompt": made.used_prompt, "stage": made.stage,
                               "backend": made.backend})
            raise SafetyRefusal(nsfw, self.threshold, backend=made.backend)
        self._count("passed")
        return {"nsfw": round(nsfw, 4), "checked": time.time()}

    async def recheck(self, entry: CacheEntry, made: Made) -> CacheEntry | None:
        """A cached image, checked now: marked as passed, or ``None`` when it fails."""
        try:
            verdict = await self.check(entry.body, made)
        except SafetyRefusal:
            return None
        return replace(entry, meta={**entry.meta, "safety": verdict})

    def checkable(self, entry: CacheEntry) -> bool:
        """A cached entry holding its bytes (a hosted one is elsewhere: it is made again, checked)."""
        return entry.kind == IMAGE and bool(entry.body)

    def _count(self, outcome: str) -> None:
        self.metrics.safety_checks.labels(outcome).inc()

    async def report(self) -> dict[str, Any]:
        """For /status and the dashboard: the mode, the checks by outcome (every worker's) and the
        last refusals (newest first; what was asked and who made it, never the image)."""
        counted = await asyncio.get_running_loop().run_in_executor(
            None, self.metrics.counted, "iris_safety_checks")
        checks = dict.fromkeys(SAFETY_OUTCOMES, 0)
        for labels, value in counted:
            checks[labels["outcome"]] = checks.get(labels["outcome"], 0) + int(value)
        return {"mode": self.mode, "threshold": self.threshold,
                "model": self.model.name if self.model else None, "checks": checks,
                "refusals": await self.refusals.items()}
