"""What a cache backend opens for the image cache: the store, the shared delete counter and the
flight lock, chosen together (a registry in ``proxy.cache.context``)."""

from __future__ import annotations

from typing import NamedTuple

from proxy.cache.base import ByteStore
from proxy.cache.images import SharedGeneration
from proxy.cache.locks.base import FlightLock


class Backing(NamedTuple):
    store: ByteStore
    generation: SharedGeneration
    lock: FlightLock
