"""The daily budget: what new images cost, by UTC day and backend, and the rule that refuses new
images once today's spend reaches DAILY_BUDGET (hits keep working; the next day starts afresh).

Spend is counted once per generated image, at the price BACKEND_PRICES gives its backend, in a
ledger every worker shares: here the host's twin, a row per day and backend in the SQLite file;
``spend_redis`` shares it across instances. ``Budget`` reads the time from an injectable clock,
so a test can cross midnight. Concurrent misses that passed the check before the spend reached the
budget still finish: today's spend can pass the budget by at most MAX_GENERATIONS_IN_FLIGHT
images."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from proxy.config.spending import SpendingSettings
from proxy.db.connection import transaction
from proxy.db.database import Connected, Database
from proxy.errors import RateLimited

KEEP_DAYS = 90  # days of history the ledger keeps (retention purges older rows)
SHOWN_DAYS = 7  # days /status and the dashboard show


@dataclass(frozen=True)
class Spent:
    images: int = 0
    amount: float = 0.0


Days = dict[str, dict[str, Spent]]  # day (YYYY-MM-DD, UTC) -> backend -> spent


class SpendLedger(Protocol):
    async def add(self, day: str, backend: str, amount: float) -> None:
        """One more image from ``backend`` on ``day``, at ``amount``."""
        ...

    async def days(self, days: Sequence[str]) -> Days:
        """What was spent on each of ``days`` (days without spend are left out)."""
        ...


def _add(ctx: Connected, day: str, backend: str, amount: float) -> None:
    with transaction(ctx.conn):
        ctx.conn.execute("INSERT INTO spend VALUES (?, ?, 1, ?) ON CONFLICT(day, backend) DO UPDATE "
                         "SET images = images + 1, amount = amount + excluded.amount", (day, backend, amount))


def _days(ctx: Connected, days: Sequence[str]) -> Days:
    found: Days = {}
    marks = ",".join("?" * len(days))
    for row in ctx.conn.execute(f"SELECT * FROM spend WHERE day IN ({marks})", tuple(days)):
        found.setdefault(row["day"], {})[row["backend"]] = Spent(row["images"], row["amount"])
    return found


def purge(ctx: Connected, now: float) -> None:
    """Days older than ``KEEP_DAYS`` (retention calls this)."""
    ctx.conn.execute("DELETE FROM spend WHERE day < ?", (day_of(now - KEEP_DAYS * 86400),))


class SqliteSpend:
    """The host's ledger: every worker writes its images to the same rows."""

    def __init__(self, db: Database[Any]):
        self.db = db

    async def add(self, day: str, backend: str, amount: float) -> None:
        await self.db.run(_add, day, backend, amount)

    async def days(self, days: Sequence[str]) -> Days:
        return await self.db.run(_days, list(days))


def day_of(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%d")


def seconds_to_midnight(stamp: float) -> float:
    return 86400.0 - stamp % 86400.0  # UTC days have 86,400 s in Unix time


def total(spent: dict[str, Spent]) -> float:
    return sum(s.amount for s in spent.values())


class Budget:
    def __init__(self, settings: SpendingSettings, ledger: SpendLedger,
                 clock: Callable[[], float] = time.time):
        self.settings = settings
        self.ledger = ledger
        self.clock = clock

    async def check(self) -> None:
        """429 ``budget_exhausted`` while today's spend is at or past DAILY_BUDGET."""
        budget = self.settings.daily_budget
        if budget is None:
            return
        now = self.clock()
        today = day_of(now)
        spent = total((await self.ledger.days([today])).get(today, {}))
        if spent >= budget:
            raise RateLimited(f"today's budget for new images ({budget:g}) is spent; cached images still "
                              "work, and new ones can be made again after midnight UTC",
                              retry_after=seconds_to_midnight(now), code="budget_exhausted")

    async def record(self, backend: str) -> float:
        """One image made by ``backend``: its price is added to today's spend (and returned)."""
        if not self.settings.counts_spend:
            return 0.0
        price = self.settings.price(backend)
        await self.ledger.add(day_of(self.clock()), backend, price)
        return price

    async def report(self, shown: int = SHOWN_DAYS) -> dict[str, object]:
        """Today and the days before, newest first: for /status and the dashboard."""
        now = self.clock()
        days = [day_of(now - n * 86400) for n in range(shown)]
        found = await self.ledger.days(days) if self.settings.counts_spend else {}
        budget = self.settings.daily_budget
        today = found.get(days[0], {})
        return {
            "counted": self.settings.counts_spend, "budget": budget, "today": days[0],
            "spent_today": round(total(today), 6),
            "left_today": None if budget is None else round(max(0.0, budget - total(today)), 6),
            "prices": self.settings.prices,
            "days": [{"day": day, "images": sum(s.images for s in found.get(day, {}).values()),
                      "spent": round(total(found.get(day, {})), 6),
                      "backends": {b: {"images": s.images, "spent": round(s.amount, 6)}
                                   for b, s in sorted(found.get(day, {}).items())}}
                     for day in days],
        }
