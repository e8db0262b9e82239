"""What a new image may cost: the rule for misses. Hits never meet it; a miss meets it only in the
request that really leads a generation (inside single flight, after the store was looked up
again), so identical misses, coalesced, count once.

1. Today's budget (``proxy.security.spend``): 429 ``budget_exhausted`` once DAILY_BUDGET is spent.
2. RATE_LIMIT_GENERATE, per client address and per credential (the access key, or the signing
   key that signed the URL): 429 ``generate_limited`` with an honest Retry-After. The limiter is
   the shared one (SQLite for the host's workers, Redis across instances).
3. A generation slot (MAX_GENERATIONS_IN_FLIGHT over the whole server, ``proxy.cache.slots``):
   a miss waits up to GENERATION_SLOT_WAIT for one, then gets 503 with a Retry-After. Holding
   the slot, it asks the budget once more: misses that waited while the last of it was spent are
   refused, so today's spend passes DAILY_BUDGET by at most the images already in flight.

After a generation, the image's price is added to today's spend (and to ``iris_spend_total``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from proxy.cache.entry import IMAGE, CacheEntry
from proxy.cache.slots import GenerationSlots, wait_for_slot
from proxy.config.spending import SpendingSettings
from proxy.errors import IrisError, RateLimited
from proxy.security.admission import Caller
from proxy.security.limits import RateLimiter
from proxy.security.spend import Budget
from proxy.web.metrics import Metrics

log = logging.getLogger(__name__)


class GenerateLimited(RateLimited):
    """A caller's own limit: another request that was waiting on the same generation may try
    under its own."""

    def __init__(self, message: str, *, retry_after: float, caller: Caller):
        super().__init__(message, retry_after=retry_after, code="generate_limited")
        self.caller = caller


class Allowance:
    def __init__(self, settings: SpendingSettings, limiter: RateLimiter, slots: GenerationSlots | None,
                 budget: Budget, metrics: Metrics):
        self.settings = settings
        self.limiter = limiter
        self.slots = slots  # None: MAX_GENERATIONS_IN_FLIGHT=0
        self.budget = budget
        self.metrics = metrics

    async def admit(self, caller: Caller) -> None:
        """The budget, then the caller's limits; raises the refusal (and counts it)."""
        try:
            await self.budget.check()
            await self._limit(caller)
        except IrisError as exc:
            self.metrics.refused_generations.labels(exc.code).inc()
            raise

    async def _limit(self, caller: Caller) -> None:
        rate = self.settings.rate_generate
        if rate is None:
            return
        for bucket, whose in ((f"generate:address:{caller.address}", "from this address"),
                              (f"generate:{caller.credential}", "with this credential")):
            wait = await self.limiter.hit(bucket, rate)
            if wait > 0:
                raise GenerateLimited(f"too many new images {whose}: at most {rate.count} per "
                                      f"{rate.period:g} s (cached images are not counted)",
                                      retry_after=wait, caller=caller)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Held while the pipeline makes the image. A miss that waited for its slot checks the
        budget again: it may have been spent meanwhile. One that had a slot at once was checked a
        moment ago (``admit``), and holds a slot now: the spend still passes the budget by at most
        the images in flight, and the miss spares a round trip to the ledger."""
        slot = None
        try:
            try:
                waited = False
                if self.slots is not None:
                    slot = await self.slots.take()
                    if slot is None:
                        waited = True
                        slot = await wait_for_slot(self.slots, self.settings.slot_wait)
                if waited and self.settings.daily_budget is not None:
                    await self.budget.check()
            except IrisError as exc:
                self.metrics.refused_generations.labels(exc.code).inc()
                raise
            yield
        finally:
            if slot is not None:
                await slot.release()

    async def made(self, entry: CacheEntry) -> None:
        """A generation ended: an image is counted at its backend's price."""
        if entry.kind != IMAGE:
            return
        backend = str(entry.meta.get("backend") or "unknown")
        self.metrics.generated.labels(backend).inc()
        try:
            price = await self.budget.record(backend)
        except Exception:  # the image is made: a ledger that cannot be written must not lose it
            log.exception("could not count the spend of an image from %s", backend)
            return
        if price:
            self.metrics.spend.labels(backend).inc(price)

    async def status(self) -> dict[str, object]:
        rate = self.settings.rate_generate
        slots = self.slots
        return {
            "rate_generate": None if rate is None else {"count": rate.count, "period": rate.period},
            "in_flight": None if slots is None else {"max": slots.size, "busy": await slots.busy(),
                                                     "wait": self.settings.slot_wait},
            "budget": await self.budget.report(),
        }

    async def close(self) -> None:
        if self.slots is not None:
            await self.slots.close()
