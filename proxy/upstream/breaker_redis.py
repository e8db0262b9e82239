"""Backend cool-downs shared between instances: one instance's discovery that a backend is down
opens the breaker everywhere for the rest of that cool-down, sparing the others the timeouts, and
one instance's successful probe closes it everywhere. A message names the health key (role, URL,
model), so a model cooling down on one instance cools down only that model elsewhere."""

from __future__ import annotations

import orjson

from proxy.redis.bus import RedisBus
from proxy.upstream.breaker import Breaker, Health, HealthKey

CHANNEL = "breaker"


class RedisCooldowns:
    def __init__(self, breaker: Breaker, bus: RedisBus):
        self.breaker = breaker
        self.bus = bus
        self.heard = 0
        breaker.listeners.append(self._changed)
        bus.subscribe(CHANNEL, self._peer)

    def _changed(self, key: HealthKey, health: Health) -> None:
        remaining = max(0.0, health.open_until - self.breaker.clock())
        payload = orjson.dumps({"key": list(key), "remaining": remaining, "error": health.last_error})
        self.bus.publish_soon(CHANNEL, payload)

    def _peer(self, payload: bytes) -> None:
        message = orjson.loads(payload)
        raw = message["key"]
        if not (isinstance(raw, list) and len(raw) == len(HealthKey._fields)):
            return  # an instance of another version: its key names nothing here
        key, remaining = HealthKey(*(str(part) for part in raw)), float(message["remaining"])
        self.heard += 1
        if remaining <= 0:
            self.breaker.close_from_peer(key)
            return
        self.breaker.open_from_peer(key, remaining)
        self.breaker.of(key).last_error = f"peer: {str(message['error'])[:180]}"
