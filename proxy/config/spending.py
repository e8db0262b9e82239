"""What new images may cost: how many misses a client or a credential may start (hits never
count), how many generations run at once over the whole server, and the daily budget with the
price of one image from each backend."""

from __future__ import annotations

from dataclasses import dataclass, field

from proxy.config.backends import normalise_base, public_url
from proxy.config.env import Env
from proxy.config.image import ImageSettings
from proxy.config.security import Rate, optional_rate
from proxy.errors import ConfigError

DEFAULT_RATE = Rate(60, 60.0)
POLLINATIONS = "pollinations"  # the fallback's (and a Pollinations pool's) name in BACKEND_PRICES


@dataclass(frozen=True)
class SpendingSettings:
    rate_generate: Rate | None = DEFAULT_RATE
    """RATE_LIMIT_GENERATE: misses per client address and per credential (None: no limit)."""
    max_in_flight: int = 16
    """MAX_GENERATIONS_IN_FLIGHT: generations at once over the whole server (0: no bound)."""
    slot_wait: float = 5.0
    """GENERATION_SLOT_WAIT: how long a miss waits for a free slot before a 503."""
    prices: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    """BACKEND_PRICES by the backend's label (as /status and the metrics name it)."""
    daily_budget: float | None = None
    """DAILY_BUDGET: today's (UTC) spend at which misses are refused until the next day."""

    @property
    def counts_spend(self) -> bool:
        return bool(self.prices) or self.daily_budget is not None

    def price(self, backend: str) -> float:
        return self.prices.get(backend, 0.0)


def load_spending(env: Env, image: ImageSettings) -> SpendingSettings:
    budget = env.number("DAILY_BUDGET", 0.0, lo=0.0) if env.optional("DAILY_BUDGET") else None
    if budget == 0.0:
        raise ConfigError("DAILY_BUDGET", "is 0",
                          "give the most a day may cost, or leave it empty for no budget")
    prices = _prices(env, image)
    if budget is not None:
        unpriced = [public_url(spec.url) for spec in image.backends if spec.label not in prices]
        if unpriced:
            raise ConfigError("BACKEND_PRICES", f"has no price for {', '.join(unpriced)}, so DAILY_BUDGET "
                              "could not count what it costs", "give every URL of BACKEND_API_URLS a price")
    return SpendingSettings(
        rate_generate=optional_rate(env, "RATE_LIMIT_GENERATE", "60/minute"),
        max_in_flight=env.integer("MAX_GENERATIONS_IN_FLIGHT", 16, lo=0, hi=100_000),
        slot_wait=env.number("GENERATION_SLOT_WAIT", 5.0, lo=0.0, hi=600.0),
        prices=prices,
        daily_budget=budget,
    )


def _prices(env: Env, image: ImageSettings) -> dict[str, float]:
    """By the backend's label (``backend-1``, ..., as /status and the metrics name it), or
    ``pollinations``; BACKEND_PRICES names backends by their URLs, as BACKEND_API_URLS does."""
    raw = env.json("BACKEND_PRICES", {}, dict)
    labels = {spec.url: spec.label for spec in image.backends}
    prices = {}
    for name, price in raw.items():
        if isinstance(price, bool) or not isinstance(price, int | float) or price < 0:
            raise ConfigError("BACKEND_PRICES", f"the price for {name!r} is not a number >= 0",
                              'write {"https://api.example.com/v1": 0.04, "pollinations": 0}')
        if name.strip().lower() == POLLINATIONS:
            prices[POLLINATIONS] = float(price)
            continue
        url = normalise_base(name)
        if url not in labels:
            raise ConfigError("BACKEND_PRICES", f"names {url!r}, which is not in BACKEND_API_URLS",
                              "use the same URLs as BACKEND_API_URLS, or pollinations")
        prices[labels[url]] = float(price)
    return prices
