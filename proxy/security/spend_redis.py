"""The spend ledger shared by every instance: one Redis hash per UTC day (``images:<backend>`` and
``amount:<backend>``, incremented atomically), kept for the ledger's history. Every image is
written through to the host's ledger too, so the host keeps its own record and answers from it
while Redis is down (then with this host's images only)."""

from __future__ import annotations

from collections.abc import Sequence

from proxy.redis.twin import Twin
from proxy.security.spend import KEEP_DAYS, Days, SpendLedger, Spent


class RedisSpend(Twin[SpendLedger]):
    namespace = "spend:"

    async def add(self, day: str, backend: str, amount: float) -> None:
        await self.local.add(day, backend, amount)

        async def shared() -> None:
            key = self.prefix + day
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hincrby(key, f"images:{backend}", 1)
                pipe.hincrbyfloat(key, f"amount:{backend}", amount)
                pipe.expire(key, (KEEP_DAYS + 1) * 86400)
                await pipe.execute()

        await self.shared_only(shared)

    async def days(self, days: Sequence[str]) -> Days:
        async def shared() -> Days:
            async with self.client.pipeline(transaction=False) as pipe:
                for day in days:
                    pipe.hgetall(self.prefix + day)
                answers = await pipe.execute()
            return {day: _spent(fields) for day, fields in zip(days, answers, strict=True) if fields}

        return await self.prefer(shared, lambda: self.local.days(days))


def _spent(fields: dict[bytes, bytes]) -> dict[str, Spent]:
    images: dict[str, int] = {}
    amounts: dict[str, float] = {}
    for raw_name, raw_value in fields.items():
        kind, _, backend = raw_name.decode().partition(":")
        if kind == "images":
            images[backend] = int(raw_value)
        elif kind == "amount":
            amounts[backend] = float(raw_value)
    return {backend: Spent(images.get(backend, 0), amounts.get(backend, 0.0))
            for backend in sorted(images.keys() | amounts.keys())}
