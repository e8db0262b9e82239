"""Dedup stores, chosen by ``VISION_DEDUP_STORE`` from this registry."""

from __future__ import annotations

from collections.abc import Callable

from proxy.config import Settings
from proxy.errors import ConfigError
from proxy.vision.dedup.base import DedupStore, Remembered, repeats
from proxy.vision.dedup.memory import MemoryDedup

DEDUP_STORES: dict[str, Callable[[Settings], DedupStore]] = {
    "memory": lambda settings: MemoryDedup(),
}


def open_dedup(settings: Settings, name: str) -> DedupStore:
    try:
        factory = DEDUP_STORES[name]
    except KeyError:
        raise ConfigError("VISION_DEDUP_STORE", f"{name!r} is not a dedup store",
                          f"use one of {', '.join(DEDUP_STORES)}") from None
    return factory(settings)


__all__ = ["DEDUP_STORES", "DedupStore", "MemoryDedup", "Remembered", "open_dedup", "repeats"]
